//! Per-tenant quotas that hold (decision 0015): the tenant's explicit
//! settings, the installation's defaults for what it did not set, and the
//! usage that enforces them, all in the database, so every node sees the
//! same counts and a restart forgives nothing.
//!
//! A request reserves what it asks for (deliveries, messages, bytes, looked
//! up ids) in one short write transaction *before* any costly work, and is
//! refused whole when that would pass a limit; afterwards what was not
//! accepted is given back ([`Db::settle`]). The per-second limits are token
//! buckets that may go into debt, stored as (tokens, instant) per tenant.

use crate::audit::AuditEntry;
use crate::{Db, Result, StoreError, commit_audited, format_instant, parse_instant};
use kuvert_domain::ids::TenantId;
use sqlx::Row;
use time::OffsetDateTime;

/// What a quota limits. The text form is the stored one and the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    DeliveriesPerDay,
    DeliveriesPerSecond,
    MessagesPerDay,
    BytesPerDay,
    BatchSize,
    LookupIdsPerDay,
    LookupIdsPerSecond,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Self::DeliveriesPerDay,
        Self::DeliveriesPerSecond,
        Self::MessagesPerDay,
        Self::BytesPerDay,
        Self::BatchSize,
        Self::LookupIdsPerDay,
        Self::LookupIdsPerSecond,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeliveriesPerDay => "deliveries_per_day",
            Self::DeliveriesPerSecond => "deliveries_per_second",
            Self::MessagesPerDay => "messages_per_day",
            Self::BytesPerDay => "bytes_per_day",
            Self::BatchSize => "batch_size",
            Self::LookupIdsPerDay => "lookup_ids_per_day",
            Self::LookupIdsPerSecond => "lookup_ids_per_second",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }

    /// What a refusal says of this limit.
    pub fn describe(self, limit: i64) -> String {
        match self {
            Self::DeliveriesPerDay => format!("at most {limit} deliveries per day (UTC)"),
            Self::DeliveriesPerSecond => format!("at most {limit} deliveries per second"),
            Self::MessagesPerDay => format!("at most {limit} messages per day (UTC)"),
            Self::BytesPerDay => format!("at most {limit} bytes of deliveries per day (UTC)"),
            Self::BatchSize => format!("a batch may hold at most {limit} deliveries"),
            Self::LookupIdsPerDay => {
                format!("at most {limit} recipient ids looked up per day (UTC)")
            }
            Self::LookupIdsPerSecond => {
                format!("at most {limit} recipient ids looked up per second")
            }
        }
    }
}

/// A tenant's setting for one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Setting {
    /// The installation's default ([`QuotaDefaults`]).
    #[default]
    Default,
    /// No limit at all, said explicitly by the platform operator.
    Unlimited,
    /// At most this many (positive).
    Max(i64),
}

/// A tenant's explicit settings; what it does not set is [`Setting::Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    settings: [Setting; 7],
}

impl Quota {
    pub fn get(&self, dimension: Dimension) -> Setting {
        self.settings[dimension.index()]
    }

    pub fn set(&mut self, dimension: Dimension, setting: Setting) {
        self.settings[dimension.index()] = setting;
    }

    pub fn with(mut self, dimension: Dimension, setting: Setting) -> Self {
        self.set(dimension, setting);
        self
    }

    /// The limit that applies (`None`: unlimited).
    pub fn limit(&self, dimension: Dimension, defaults: &QuotaDefaults) -> Option<i64> {
        match self.get(dimension) {
            Setting::Default => defaults.get(dimension),
            Setting::Unlimited => None,
            Setting::Max(max) => Some(max),
        }
    }
}

/// The audit entry's detail: each explicit setting (a number or
/// `"unlimited"`); a dimension left out takes the default.
impl serde::Serialize for Quota {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let explicit: Vec<(Dimension, Setting)> = Dimension::ALL
            .into_iter()
            .map(|d| (d, self.get(d)))
            .filter(|(_, s)| *s != Setting::Default)
            .collect();
        let mut map = serializer.serialize_map(Some(explicit.len()))?;
        for (dimension, setting) in explicit {
            match setting {
                Setting::Max(max) => map.serialize_entry(dimension.as_str(), &max)?,
                _ => map.serialize_entry(dimension.as_str(), "unlimited")?,
            }
        }
        map.end()
    }
}

/// The installation's limits for a tenant that has no setting of its own:
/// small enough that one tenant (or its buggy integration) cannot take a
/// small installation down, large enough for a municipality's ordinary
/// day. `None` is unlimited. Documented in docs/reliability.md ("Quotas").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDefaults {
    values: [Option<i64>; 7],
}

/// 50 deliveries per second, 100 000 per day.
pub const DEFAULT_DELIVERIES_PER_SECOND: i64 = 50;
pub const DEFAULT_DELIVERIES_PER_DAY: i64 = 100_000;
/// A delivery holds up to 100 messages; most hold one or two.
pub const DEFAULT_MESSAGES_PER_DAY: i64 = 500_000;
/// 10 GiB of deliveries (canonical size) per day.
pub const DEFAULT_BYTES_PER_DAY: i64 = 10 * 1024 * 1024 * 1024;
/// Deliveries in one batch request (the API's own maximum is 10 000).
pub const DEFAULT_BATCH_SIZE: i64 = 1_000;
/// Recipient ids looked up: twice the deliveries a day (a sender looks up
/// before it sends), and one full lookup request (1000 ids) per second.
pub const DEFAULT_LOOKUP_IDS_PER_DAY: i64 = 200_000;
pub const DEFAULT_LOOKUP_IDS_PER_SECOND: i64 = 1_000;

impl Default for QuotaDefaults {
    fn default() -> Self {
        let mut defaults = Self { values: [None; 7] };
        for (dimension, value) in [
            (Dimension::DeliveriesPerDay, DEFAULT_DELIVERIES_PER_DAY),
            (
                Dimension::DeliveriesPerSecond,
                DEFAULT_DELIVERIES_PER_SECOND,
            ),
            (Dimension::MessagesPerDay, DEFAULT_MESSAGES_PER_DAY),
            (Dimension::BytesPerDay, DEFAULT_BYTES_PER_DAY),
            (Dimension::BatchSize, DEFAULT_BATCH_SIZE),
            (Dimension::LookupIdsPerDay, DEFAULT_LOOKUP_IDS_PER_DAY),
            (Dimension::LookupIdsPerSecond, DEFAULT_LOOKUP_IDS_PER_SECOND),
        ] {
            defaults.values[dimension.index()] = Some(value);
        }
        defaults
    }
}

impl QuotaDefaults {
    /// No default limit at all (tests and benchmarks that send a lot).
    pub fn unlimited() -> Self {
        Self { values: [None; 7] }
    }

    pub fn get(&self, dimension: Dimension) -> Option<i64> {
        self.values[dimension.index()]
    }

    pub fn with(mut self, dimension: Dimension, value: Option<i64>) -> Self {
        self.values[dimension.index()] = value;
        self
    }
}

/// What is counted per tenant and UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Deliveries,
    Messages,
    Bytes,
    LookupIds,
}

impl Counter {
    pub const ALL: [Counter; 4] = [
        Self::Deliveries,
        Self::Messages,
        Self::Bytes,
        Self::LookupIds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deliveries => "deliveries",
            Self::Messages => "messages",
            Self::Bytes => "bytes",
            Self::LookupIds => "lookup_ids",
        }
    }

    /// The daily limit on this counter.
    pub fn daily(self) -> Dimension {
        match self {
            Self::Deliveries => Dimension::DeliveriesPerDay,
            Self::Messages => Dimension::MessagesPerDay,
            Self::Bytes => Dimension::BytesPerDay,
            Self::LookupIds => Dimension::LookupIdsPerDay,
        }
    }
}

/// A per-second token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Deliveries,
    LookupIds,
}

impl Bucket {
    fn as_str(self) -> &'static str {
        match self {
            Self::Deliveries => "deliveries",
            Self::LookupIds => "lookup_ids",
        }
    }

    pub fn dimension(self) -> Dimension {
        match self {
            Self::Deliveries => Dimension::DeliveriesPerSecond,
            Self::LookupIds => Dimension::LookupIdsPerSecond,
        }
    }
}

/// What a request asks for: amounts per daily counter and per bucket, each
/// with the limit that applies (`None`: unlimited, counted all the same).
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub daily: Vec<(Counter, i64, Option<i64>)>,
    /// A bucket with no limit is not touched.
    pub rate: Option<(Bucket, i64, Option<i64>)>,
}

/// Why a request was refused: the limit it would pass, and when to retry
/// (0: retrying the same request cannot succeed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub dimension: Dimension,
    pub limit: i64,
    pub retry_after_seconds: u64,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} for this tenant; nothing of the request was done",
            self.dimension.describe(self.limit)
        )
    }
}

/// What a request holds of its tenant's day: given back by [`Db::settle`]
/// for what was not accepted. It names its day, so a request that ends
/// after midnight settles the day it was counted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub tenant: TenantId,
    pub day: time::Date,
    pub reserved: Vec<(Counter, i64)>,
}

/// A tenant's counts on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub deliveries: i64,
    pub messages: i64,
    pub bytes: i64,
    pub lookup_ids: i64,
}

/// (sender, key) pairs per query of [`Db::known_idempotency_keys`]: two
/// parameters each, well under SQLite's limit.
const KNOWN_KEYS_PER_QUERY: usize = 500;

/// Seconds from `now` to the next UTC midnight (at least 1): when a daily
/// allowance is fresh again.
pub fn seconds_to_midnight(now: OffsetDateTime) -> u64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.date()
        .next_day()
        .map(|d| d.midnight().assume_utc())
        .and_then(|midnight| u64::try_from((midnight - now).as_seconds_f64().ceil() as i64).ok())
        .unwrap_or(86_400)
        .max(1)
}

/// Takes `amount` from a bucket of `per_second` that held `state` (tokens,
/// when) and refills continuously up to one second's worth. A request is
/// let through while the bucket is positive and may leave it in debt: a
/// batch larger than a second's allowance passes, and the tenant then waits
/// until the debt is paid, so the average rate holds. `Err(seconds)` to wait.
fn take(
    state: Option<(f64, OffsetDateTime)>,
    now: OffsetDateTime,
    per_second: i64,
    amount: i64,
) -> Result<(f64, OffsetDateTime), u64> {
    let rate = per_second.max(1) as f64;
    let (tokens, at) = state.unwrap_or((rate, now));
    let elapsed = (now - at).as_seconds_f64().max(0.0);
    let tokens = (tokens + elapsed * rate).min(rate);
    if tokens <= 0.0 {
        return Err(((-tokens) / rate).ceil().max(1.0) as u64);
    }
    // A node whose clock is behind does not move the bucket back (which
    // would refill it twice).
    Ok((tokens - amount as f64, at.max(now)))
}

impl Db {
    /// The tenant's explicit settings (a tenant with no rows has only
    /// defaults). A plain read: from the reader, not the writer.
    pub async fn quota(&self, tenant: &TenantId) -> Result<Quota> {
        let rows = sqlx::query("SELECT dimension, quota FROM tenant_quotas WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await?;
        let mut quota = Quota::default();
        for row in rows {
            let text: String = row.try_get("dimension")?;
            let dimension = Dimension::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("quota dimension {text:?}")))?;
            let max: Option<i64> = row.try_get("quota")?;
            quota.set(dimension, max.map_or(Setting::Unlimited, Setting::Max));
        }
        Ok(quota)
    }

    /// Replaces the tenant's settings: a dimension at [`Setting::Default`]
    /// has no row.
    pub async fn set_quota(
        &self,
        tenant: &TenantId,
        quota: &Quota,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let exists = sqlx::query("SELECT 1 FROM tenants WHERE id = ?")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM tenant_quotas WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        for dimension in Dimension::ALL {
            let max = match quota.get(dimension) {
                Setting::Default => continue,
                Setting::Unlimited => None,
                Setting::Max(max) if max > 0 => Some(max),
                Setting::Max(_) => {
                    return Err(StoreError::Corrupt("a quota is a positive number".into()));
                }
            };
            sqlx::query("INSERT INTO tenant_quotas (tenant_id, dimension, quota) VALUES (?, ?, ?)")
                .bind(tenant.as_str())
                .bind(dimension.as_str())
                .bind(max)
                .execute(&mut *tx)
                .await?;
        }
        commit_audited(tx, now, audit).await
    }

    /// Reserves what `ask` asks of the tenant's day and bucket, in one
    /// short write transaction: all of it, or (over any limit) nothing, as
    /// [`StoreError::QuotaExceeded`]. Daily limits are checked first, so a
    /// refusal for both says when the day ends.
    pub async fn reserve(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
        ask: &Ask,
    ) -> Result<Reservation> {
        let now = now.to_offset(time::UtcOffset::UTC);
        let day = now.date();
        let day_text = day.to_string();
        let mut tx = self.writer().begin().await?;
        for &(counter, amount, limit) in &ask.daily {
            // Nothing asked (a replay): nothing to refuse, even at the limit.
            if amount == 0 {
                continue;
            }
            let used: i64 = sqlx::query_scalar(
                "INSERT INTO quota_usage (tenant_id, day, counter, used) VALUES (?, ?, ?, ?)
                 ON CONFLICT (tenant_id, day, counter) DO UPDATE SET used = used + excluded.used
                 RETURNING used",
            )
            .bind(tenant.as_str())
            .bind(&day_text)
            .bind(counter.as_str())
            .bind(amount)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(limit) = limit
                && used > limit
            {
                tx.rollback().await?;
                return Err(StoreError::QuotaExceeded(Refusal {
                    dimension: counter.daily(),
                    limit,
                    retry_after_seconds: seconds_to_midnight(now),
                }));
            }
        }
        if let Some((bucket, amount, Some(per_second))) = ask.rate {
            let row = sqlx::query(
                "SELECT tokens, at FROM rate_buckets WHERE tenant_id = ? AND bucket = ?",
            )
            .bind(tenant.as_str())
            .bind(bucket.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let state = match row {
                Some(row) => {
                    let at: String = row.try_get("at")?;
                    let at = parse_instant(&at)
                        .map_err(|_| StoreError::Corrupt("bad instant in rate_buckets".into()))?;
                    Some((row.try_get::<f64, _>("tokens")?, at))
                }
                None => None,
            };
            match take(state, now, per_second, amount) {
                Ok((tokens, at)) => {
                    sqlx::query(
                        "INSERT INTO rate_buckets (tenant_id, bucket, tokens, at) VALUES (?, ?, ?, ?)
                         ON CONFLICT (tenant_id, bucket) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                    )
                    .bind(tenant.as_str())
                    .bind(bucket.as_str())
                    .bind(tokens)
                    .bind(format_instant(at))
                    .execute(&mut *tx)
                    .await?;
                }
                Err(wait) => {
                    tx.rollback().await?;
                    return Err(StoreError::QuotaExceeded(Refusal {
                        dimension: bucket.dimension(),
                        limit: per_second,
                        retry_after_seconds: wait,
                    }));
                }
            }
        }
        tx.commit().await?;
        Ok(Reservation {
            tenant: tenant.clone(),
            day,
            reserved: ask
                .daily
                .iter()
                .map(|&(c, amount, _)| (c, amount))
                .collect(),
        })
    }

    /// Settles a reservation to what was `used` (a counter not named: none):
    /// the rest is given back to the day it was reserved on. The buckets are
    /// not refunded: they meter the work a request caused, done for a
    /// refused or replayed item as for an accepted one.
    pub async fn settle(&self, reservation: &Reservation, used: &[(Counter, i64)]) -> Result<()> {
        let deltas: Vec<(Counter, i64)> = reservation
            .reserved
            .iter()
            .map(|&(counter, reserved)| {
                let used = used
                    .iter()
                    .find(|(c, _)| *c == counter)
                    .map_or(0, |(_, n)| *n);
                (counter, used - reserved)
            })
            .filter(|(_, delta)| *delta != 0)
            .collect();
        if deltas.is_empty() {
            return Ok(());
        }
        let day = reservation.day.to_string();
        let mut tx = self.writer().begin().await?;
        for (counter, delta) in deltas {
            // A positive delta (an item taken for a replay that was new)
            // may find no row yet.
            sqlx::query(
                "INSERT INTO quota_usage (tenant_id, day, counter, used) VALUES (?1, ?2, ?3, MAX(0, ?4))
                 ON CONFLICT (tenant_id, day, counter) DO UPDATE SET used = MAX(0, used + ?4)",
            )
            .bind(reservation.tenant.as_str())
            .bind(&day)
            .bind(counter.as_str())
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which of `items` (sender id, idempotency key) the tenant has already
    /// stored a delivery under, from the reader: a replay of an accepted
    /// request is answered with the first delivery, so it reserves nothing
    /// (even at the limit) and never counts twice.
    pub async fn known_idempotency_keys(
        &self,
        tenant: &TenantId,
        items: &[(&str, &str)],
    ) -> Result<std::collections::HashSet<(String, String)>> {
        let mut known = std::collections::HashSet::new();
        for chunk in items.chunks(KNOWN_KEYS_PER_QUERY) {
            let mut query: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "SELECT sender_id, idempotency_key FROM deliveries WHERE tenant_id = ",
            );
            query.push_bind(tenant.as_str());
            query.push(" AND (sender_id, idempotency_key) IN (VALUES ");
            let mut values = query.separated(", ");
            for (sender, key) in chunk {
                values.push("(");
                values.push_bind_unseparated(*sender);
                values.push_unseparated(", ");
                values.push_bind_unseparated(*key);
                values.push_unseparated(")");
            }
            query.push(")");
            for row in query.build().fetch_all(self.reader()).await? {
                known.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(known)
    }

    /// The tenant's counts on `day` (UTC), from the reader.
    pub async fn quota_usage(&self, tenant: &TenantId, day: time::Date) -> Result<Usage> {
        let rows =
            sqlx::query("SELECT counter, used FROM quota_usage WHERE tenant_id = ? AND day = ?")
                .bind(tenant.as_str())
                .bind(day.to_string())
                .fetch_all(self.reader())
                .await?;
        let mut usage = Usage::default();
        for row in rows {
            let counter: String = row.try_get("counter")?;
            let used: i64 = row.try_get("used")?;
            match counter.as_str() {
                "deliveries" => usage.deliveries = used,
                "messages" => usage.messages = used,
                "bytes" => usage.bytes = used,
                "lookup_ids" => usage.lookup_ids = used,
                other => return Err(StoreError::Corrupt(format!("quota counter {other:?}"))),
            }
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_average_rate_holds_and_a_big_batch_pays_its_debt() {
        let t0 = datetime!(2026-11-24 12:00 UTC);
        let full = take(None, t0, 10, 10).unwrap();
        assert_eq!(full.0, 0.0);
        assert_eq!(take(Some(full), t0, 10, 1), Err(1), "allowance used up");
        // A batch of 50 at 10/s with 10 in hand: allowed, then 4 s of debt.
        let t1 = t0 + time::Duration::seconds(1);
        let debt = take(Some(full), t1, 10, 50).unwrap();
        assert_eq!(debt.0, -40.0);
        let at = |ms| t1 + time::Duration::milliseconds(ms);
        assert_eq!(take(Some(debt), at(2000), 10, 1), Err(2));
        assert_eq!(take(Some(debt), at(3900), 10, 1), Err(1));
        assert!(take(Some(debt), at(4100), 10, 1).is_ok());
    }

    #[test]
    fn a_clock_behind_does_not_refill_the_bucket() {
        let t0 = datetime!(2026-11-24 12:00 UTC);
        let empty = take(None, t0, 10, 10).unwrap();
        let behind = t0 - time::Duration::seconds(5);
        assert_eq!(take(Some(empty), behind, 10, 1), Err(1));
        let (_, at) = take(Some((5.0, t0)), behind, 10, 1).unwrap();
        assert_eq!(at, t0);
    }

    #[test]
    fn midnight_is_counted_from_utc() {
        assert_eq!(seconds_to_midnight(datetime!(2026-12-01 23:59:59 UTC)), 1);
        assert_eq!(seconds_to_midnight(datetime!(2026-12-02 00:00 UTC)), 86_400);
        assert_eq!(
            seconds_to_midnight(datetime!(2026-12-01 23:59:59.5 UTC)),
            1,
            "never 0"
        );
        assert_eq!(
            seconds_to_midnight(datetime!(2026-12-02 00:30 +01:00)),
            1800
        );
    }

    async fn tenant(db: &Db, id: &str) -> TenantId {
        let tenant = TenantId::parse(id).unwrap();
        db.create_tenant(
            &tenant,
            "T",
            OffsetDateTime::now_utc(),
            &crate::audit::TEST_ENTRY,
        )
        .await
        .unwrap();
        tenant
    }

    /// A request over a limit reserves nothing of any counter or bucket; a
    /// settlement gives back to the reservation's day, not to today.
    #[tokio::test]
    async fn a_refused_reservation_leaves_nothing_and_settling_names_its_day() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), crate::Schema::Core)
            .await
            .unwrap();
        let t = tenant(&db, "quotat").await;
        let evening = datetime!(2026-11-24 23:59:59 UTC);
        let ask = |deliveries, bytes| Ask {
            daily: vec![
                (Counter::Deliveries, deliveries, Some(10)),
                (Counter::Bytes, bytes, Some(1000)),
            ],
            rate: Some((Bucket::Deliveries, deliveries, Some(100))),
        };
        let held = db.reserve(&t, evening, &ask(4, 400)).await.unwrap();
        // Deliveries fit, bytes do not: refused whole.
        let refused = db.reserve(&t, evening, &ask(4, 700)).await;
        assert!(matches!(
            refused,
            Err(StoreError::QuotaExceeded(Refusal {
                dimension: Dimension::BytesPerDay,
                limit: 1000,
                retry_after_seconds: 1
            }))
        ));
        let day = evening.date();
        let usage = db.quota_usage(&t, day).await.unwrap();
        assert_eq!((usage.deliveries, usage.bytes), (4, 400));
        let tokens: f64 = sqlx::query_scalar("SELECT tokens FROM rate_buckets")
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert_eq!(tokens, 96.0, "the refused request took no tokens");
        // Settled after midnight: the evening's day gets it back.
        let next = db
            .reserve(&t, evening + time::Duration::seconds(1), &ask(1, 10))
            .await
            .unwrap();
        db.settle(&held, &[(Counter::Deliveries, 1), (Counter::Bytes, 100)])
            .await
            .unwrap();
        let usage = db.quota_usage(&t, day).await.unwrap();
        assert_eq!((usage.deliveries, usage.bytes), (1, 100));
        let usage = db.quota_usage(&t, next.day).await.unwrap();
        assert_eq!((usage.deliveries, usage.bytes), (1, 10));
    }

    /// What tenants had set in the old columns becomes their rows; what
    /// they had left unset takes the defaults.
    #[tokio::test]
    async fn migration_0010_keeps_what_tenants_had_set() {
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let (before, after): (Vec<_>, Vec<_>) =
            crate::CORE_MIGRATIONS.iter().partition(|m| m.version < 10);
        for migration in before {
            sqlx::raw_sql(migration.sql).execute(&pool).await.unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO tenants (id, name, status, created_at, max_per_day, max_batch)
             VALUES ('a', 'A', 'active', '2026-11-24T00:00:00.000000Z', 3, 7),
                    ('b', 'B', 'active', '2026-11-24T00:00:00.000000Z', NULL, NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(after[0].sql).execute(&pool).await.unwrap();
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT tenant_id, dimension, quota FROM tenant_quotas ORDER BY tenant_id, dimension",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                ("a".into(), "batch_size".into(), Some(7)),
                ("a".into(), "deliveries_per_day".into(), Some(3)),
            ]
        );
    }

    #[test]
    fn a_setting_overrides_the_default_and_unlimited_is_explicit() {
        let defaults = QuotaDefaults::default();
        let quota = Quota::default()
            .with(Dimension::DeliveriesPerDay, Setting::Max(3))
            .with(Dimension::BytesPerDay, Setting::Unlimited);
        assert_eq!(quota.limit(Dimension::DeliveriesPerDay, &defaults), Some(3));
        assert_eq!(quota.limit(Dimension::BytesPerDay, &defaults), None);
        assert_eq!(
            quota.limit(Dimension::LookupIdsPerDay, &defaults),
            Some(DEFAULT_LOOKUP_IDS_PER_DAY)
        );
        assert_eq!(
            serde_json::to_string(&quota).unwrap(),
            r#"{"deliveries_per_day":3,"bytes_per_day":"unlimited"}"#
        );
        for dimension in Dimension::ALL {
            assert_eq!(Dimension::parse(dimension.as_str()), Some(dimension));
            assert!(defaults.get(dimension).is_some(), "{dimension:?}");
        }
    }
}
