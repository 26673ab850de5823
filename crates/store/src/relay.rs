//! The relay's deliveries, work queue towards mailbox operators, paper queue,
//! status events and batches.

use crate::audit::{AuditChain, AuditEntry};
use crate::{Db, Result, StoreError, format_instant, instant, opt_instant};
use kuvert_domain::ids::{BatchId, DeliveryId, OperatorId, TenantId};
use rusqlite::OptionalExtension as _;
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashSet;
use time::OffsetDateTime;

pub use kuvert_domain::status::{DeliveryStatus, StatusCounts};

/// Where an accepted delivery goes next; decided at intake.
#[derive(Debug, Clone)]
pub enum Route {
    /// Queued for the operator; `sealed` is the JSON sealed delivery.
    Operator {
        operator: OperatorId,
        sealed: Vec<u8>,
    },
    /// Unreachable, and the sender asked for paper: content encrypted at rest.
    Paper {
        wrapped_key: Vec<u8>,
        content: Vec<u8>,
        reason: String,
    },
    /// Unreachable, no paper fallback.
    NotDelivered { reason: String },
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub sender_id: String,
    pub recipient_id: String,
    pub idempotency_key: String,
    /// SHA-256 (hex) of the canonical bytes the sender signed: the
    /// request's identity for retries, and unique per sender. (Also stored
    /// as `request_hash`, which migration 0001 describes the same way.)
    pub delivery_digest: String,
    pub message_ids: Vec<String>,
    /// The sender key the delivery is signed with: the worker stops queued
    /// mail of a key revoked since (decision 0014).
    pub sender_key_id: String,
    pub route: Route,
}

/// A bulk submission's row: its id, how many items were refused before
/// the transaction, and its fingerprint (see `0005_evidence.sql`).
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: BatchId,
    pub rejected: i64,
    pub fingerprint: String,
}

/// The answer for one delivery of an intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    Created(DeliveryId),
    /// The idempotency key was used before; this is the first delivery.
    Existing {
        id: DeliveryId,
        same_request: bool,
    },
    /// The same signed delivery was accepted before under another
    /// idempotency key: `id` is that first delivery. Nothing was created.
    Duplicate {
        id: DeliveryId,
    },
}

/// What an intake stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The batch the items belong to: a new one, or, for a batch sent
    /// again, the first one.
    pub batch: Option<BatchId>,
    pub intakes: Vec<Intake>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub sender_id: String,
    pub recipient_id: String,
    pub batch_id: Option<BatchId>,
    pub message_ids: Vec<String>,
    pub status: DeliveryStatus,
    pub status_reason: Option<String>,
    pub operator_id: Option<String>,
    pub received_at: OffsetDateTime,
    pub status_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub receipt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OutboxJob {
    pub delivery_id: DeliveryId,
    /// The sender's message ids, as accepted: the receipt must name these.
    pub message_ids: Vec<String>,
    pub tenant_id: TenantId,
    /// The sending organisation and the recipient, as accepted: the worker
    /// checks the register for this pair again before sending.
    pub sender_id: String,
    pub recipient_id: String,
    pub operator_id: OperatorId,
    pub sealed: Vec<u8>,
    /// Attempts made so far: failed sends, and passes its worker did not
    /// finish (see [`Db::release_leases`]).
    pub attempts: i64,
    /// Why the last attempt did not deliver, if one was made.
    pub last_error: Option<String>,
    /// The sender key it is signed with has been revoked (read with the
    /// claim; false for deliveries stored before their key id was).
    pub sender_key_revoked: bool,
    /// In flight at a crash among others: sent alone until an operator
    /// answers for it (see [`Db::claim_suspect`]).
    pub suspect: bool,
    /// Crashes in a row while it was the only job in flight.
    pub solo_crashes: i64,
}

/// What `release_leases` records as a job's last error: its worker was
/// sending it when the process stopped (a crash, a kill, a power cut).
pub const STOPPED_MID_ATTEMPT: &str =
    "the relay stopped during this attempt (lease released at start-up)";

/// [`STOPPED_MID_ATTEMPT`] for a job that was the only one in flight.
pub const STOPPED_MID_SOLO_ATTEMPT: &str =
    "the relay stopped while this delivery was the only one in flight (lease released at start-up)";

/// What a pass may claim: at most `jobs` jobs and, after the first (which
/// is always taken, however large), at most `bytes` of sealed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimit {
    pub jobs: i64,
    pub bytes: i64,
}

/// What [`Db::release_leases`] found at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Leases a stopped process left behind, all made due now.
    pub jobs: u64,
    /// Of those, jobs that were the only one in flight: each such crash
    /// counts against the job (`solo_crashes`).
    pub alone: u64,
}

/// A queued delivery that ends without being sent.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub job: &'a OutboxJob,
    /// `Failed` or `NotDelivered`.
    pub status: DeliveryStatus,
    pub reason: &'a str,
    /// Recorded in the audit entry when the attempts are what ended it.
    pub attempts: Option<i64>,
}

/// One verified receipt to record.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    pub job: &'a OutboxJob,
    pub delivered_at: OffsetDateTime,
    pub receipt_json: &'a str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusEvent {
    pub seq: i64,
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub at: String,
}

#[derive(Debug, Clone)]
pub struct BatchRecord {
    pub id: BatchId,
    pub created_at: OffsetDateTime,
    pub submitted: i64,
    pub rejected: i64,
    pub counts: StatusCounts,
}

fn delivery_id(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<DeliveryId> {
    let text: String = row.try_get(column)?;
    DeliveryId::parse(&text).map_err(|_| StoreError::Corrupt("delivery id".into()))
}

fn tenant_id(row: &sqlx::sqlite::SqliteRow) -> Result<TenantId> {
    let text: String = row.try_get("tenant_id")?;
    TenantId::parse(&text).map_err(|_| StoreError::Corrupt("tenant id".into()))
}

/// The delivery an item that was not inserted clashed with: the one with
/// its idempotency key (the same request, or the key reused for other
/// content), else the one with the same signed content.
async fn earlier_delivery(
    tx: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    item: &NewDelivery,
) -> Result<Intake> {
    let by_key = sqlx::query(
        "SELECT id, delivery_digest FROM deliveries WHERE tenant_id = ? AND sender_id = ? AND idempotency_key = ?",
    )
    .bind(tenant.as_str())
    .bind(&item.sender_id)
    .bind(&item.idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = by_key {
        let same_request = row
            .try_get::<Option<String>, _>("delivery_digest")?
            .as_deref()
            == Some(item.delivery_digest.as_str());
        return Ok(Intake::Existing {
            id: delivery_id(&row, "id")?,
            same_request,
        });
    }
    let row = sqlx::query("SELECT id FROM deliveries WHERE sender_id = ? AND delivery_digest = ?")
        .bind(&item.sender_id)
        .bind(&item.delivery_digest)
        .fetch_one(&mut *tx)
        .await?;
    Ok(Intake::Duplicate {
        id: delivery_id(&row, "id")?,
    })
}

/// Which due jobs a claim picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Any but suspects: a pass among others.
    Shared,
    /// One suspect, to send alone.
    Suspects,
    /// One suspect that crashed alone before.
    Struck,
}

/// How a job is leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    /// Given back: due at `until`.
    Free,
    /// Among others in flight.
    Shared,
    /// The only job in flight in the process.
    Alone,
}

/// Leases jobs (or gives them back) until `until`: one UPDATE per chunk of
/// ids, not one per job.
async fn set_lease(
    connection: &mut sqlx::SqliteConnection,
    jobs: &[OutboxJob],
    lease: Lease,
    until: &str,
) -> Result<()> {
    for chunk in jobs.chunks(500) {
        let mut update: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE outbox SET leased = ");
        update
            .push_bind(lease != Lease::Free)
            .push(", solo = ")
            .push_bind(lease == Lease::Alone)
            .push(", next_attempt_at = ")
            .push_bind(until)
            .push(" WHERE delivery_id IN (");
        let mut ids = update.separated(", ");
        for job in chunk {
            ids.push_bind(job.delivery_id.to_string());
        }
        update.push(")");
        update.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// Queue rows per multi-row INSERT (each carries a sealed delivery).
const OUTBOX_ROWS_PER_INSERT: usize = 200;

/// Delivery rows per multi-row INSERT (13 values each).
const DELIVERY_ROWS_PER_INSERT: usize = 500;
/// Receipts per UPDATE: 3 bound values each, well under SQLite's 32 766.
const RECEIPTS_PER_UPDATE: usize = 500;

/// The status, reason and operator columns of a routed delivery.
fn route_columns(route: &Route) -> (DeliveryStatus, Option<&str>, Option<&str>) {
    match route {
        Route::Operator { operator, .. } => {
            (DeliveryStatus::Accepted, None, Some(operator.as_str()))
        }
        Route::Paper { reason, .. } => (DeliveryStatus::Paper, Some(reason.as_str()), None),
        Route::NotDelivered { reason } => {
            (DeliveryStatus::NotDelivered, Some(reason.as_str()), None)
        }
    }
}

/// Status events collected in a transaction and written many per statement.
#[derive(Default)]
struct StatusEvents {
    rows: Vec<(String, String, DeliveryStatus, String)>,
}

impl StatusEvents {
    fn push(&mut self, tenant: &str, id: &str, status: DeliveryStatus, at: &str) {
        self.rows
            .push((tenant.to_owned(), id.to_owned(), status, at.to_owned()));
    }

    async fn flush(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<()> {
        for chunk in self.rows.chunks(250) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO status_events (tenant_id, delivery_id, status, at) ",
            );
            insert.push_values(chunk, |mut row, (tenant, id, status, at)| {
                row.push_bind(tenant)
                    .push_bind(id)
                    .push_bind(status.as_str())
                    .push_bind(at);
            });
            insert.build().execute(&mut *conn).await?;
        }
        self.rows.clear();
        Ok(())
    }
}

/// What a request was authorised with, checked again inside the
/// transaction that stores it: a credential revoked, a tenant suspended or a
/// key revoked while a long request was being verified and sealed stops it
/// there, not only the next request.
#[derive(Debug, Clone, Copy)]
pub struct Authority<'a> {
    pub credential: &'a str,
    /// Every signing key the stored deliveries were verified with.
    pub keys: &'a [&'a str],
}

/// Which part of a request's authority was withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Withdrawn {
    #[error("the credential was revoked while the request was checked")]
    CredentialRevoked,
    #[error("the tenant was suspended while the request was checked")]
    TenantSuspended,
    /// Only the deliveries signed with these keys are affected.
    #[error("signing keys were revoked while the request was checked: {0:?}")]
    KeysRevoked(Vec<String>),
}

/// Keys per `IN (…)` list when re-checking a request's keys.
const KEYS_PER_CHECK: usize = 500;

/// The authority check of [`Db::insert_deliveries`], in its transaction.
async fn still_authorised(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    authority: &Authority<'_>,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT c.revoked_at, t.status FROM credentials c JOIN tenants t ON t.id = c.tenant_id
         WHERE c.id = ? AND c.tenant_id = ?",
    )
    .bind(authority.credential)
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::Withdrawn(Withdrawn::CredentialRevoked));
    };
    if row.try_get::<Option<String>, _>("revoked_at")?.is_some() {
        return Err(StoreError::Withdrawn(Withdrawn::CredentialRevoked));
    }
    if row.try_get::<String, _>("status")? != "active" {
        return Err(StoreError::Withdrawn(Withdrawn::TenantSuspended));
    }
    let mut revoked = Vec::new();
    for chunk in authority.keys.chunks(KEYS_PER_CHECK) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT key_id FROM sender_keys WHERE revoked_at IS NOT NULL AND key_id IN (",
        );
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        query.push(")");
        for row in query.build().fetch_all(&mut *conn).await? {
            revoked.push(row.try_get::<String, _>(0)?);
        }
    }
    if revoked.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Withdrawn(Withdrawn::KeysRevoked(revoked)))
    }
}

/// A tenant's deliveries of one day by status: a range on
/// `(tenant_id, received_at)`, which the index serves.
pub(crate) const DAILY_COUNTS_SQL: &str = "SELECT status, COUNT(*) AS n FROM deliveries
     WHERE tenant_id = ? AND received_at >= ? AND received_at < ? GROUP BY status";

impl Db {
    /// Stores a set of accepted deliveries in ONE transaction: delivery rows,
    /// queue or paper rows, status events, audit entries and (for a bulk
    /// submission) the batch row. Returns after the commit, so "accepted"
    /// is only ever said of what is durable. A repeated idempotency key
    /// creates nothing and answers with the first delivery; so does a signed
    /// delivery accepted before under another key (`Intake::Duplicate`). A
    /// batch whose fingerprint was seen before is the same batch sent
    /// again: its items join, and the answer names, the first batch.
    ///
    /// The request's [`Authority`] is checked first, inside the transaction:
    /// anything withdrawn meanwhile is [`StoreError::Withdrawn`] and nothing
    /// is stored. The credential id is the audit entries' actor.
    pub async fn insert_deliveries(
        &self,
        tenant: &TenantId,
        authority: &Authority<'_>,
        batch: Option<&NewBatch>,
        items: &[NewDelivery],
        now: OffsetDateTime,
    ) -> Result<Stored> {
        let at = format_instant(now);
        let actor = authority.credential;
        let mut tx = self.writer().begin().await?;
        still_authorised(&mut tx, tenant, authority).await?;
        let mut chain = AuditChain::head(&mut tx).await?;
        let mut events = StatusEvents::default();
        // (the batch id used, whether it is a batch seen before)
        let mut batch_used: Option<(String, bool)> = None;
        if let Some(batch) = batch {
            let submitted = i64::try_from(items.len()).unwrap_or(i64::MAX) + batch.rejected;
            let created = sqlx::query(
                "INSERT INTO batches (id, tenant_id, created_at, submitted, rejected, fingerprint, credential_id) VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, fingerprint) DO NOTHING RETURNING id",
            )
            .bind(batch.id.to_string())
            .bind(tenant.as_str())
            .bind(&at)
            .bind(submitted)
            .bind(batch.rejected)
            .bind(&batch.fingerprint)
            // The actor of a sender-side intake is its credential.
            .bind(actor)
            .fetch_optional(&mut *tx)
            .await?;
            batch_used = Some(match created {
                Some(_) => (batch.id.to_string(), false),
                None => (
                    sqlx::query_scalar::<_, String>(
                        "SELECT id FROM batches WHERE tenant_id = ? AND fingerprint = ?",
                    )
                    .bind(tenant.as_str())
                    .bind(&batch.fingerprint)
                    .fetch_one(&mut *tx)
                    .await?,
                    true,
                ),
            });
        }
        let batch_text = batch_used.as_ref().map(|(id, _)| id.clone());
        let mut answers = Vec::with_capacity(items.len());
        // Items whose idempotency key belongs to another delivery, or whose
        // signed delivery was accepted before, are refused here; the batch's
        // `rejected` count must include them.
        let mut refused_here = 0_i64;
        // The delivery rows, many per statement; RETURNING names the ones
        // inserted, so an idempotency key seen before (in an earlier request
        // or earlier in this one) is known without a query per row.
        let mut inserted: HashSet<String> = HashSet::with_capacity(items.len());
        for chunk in items.chunks(DELIVERY_ROWS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO deliveries (id, tenant_id, sender_id, recipient_id, idempotency_key, request_hash,
                   delivery_digest, batch_id, message_ids, status, status_reason, operator_id, received_at, status_at,
                   sender_key_id) ",
            );
            let mut encoded = Vec::with_capacity(chunk.len());
            for item in chunk {
                encoded.push(
                    serde_json::to_string(&item.message_ids)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            insert.push_values(
                chunk.iter().zip(&encoded),
                |mut row, (item, message_ids)| {
                    let (status, reason, operator) = route_columns(&item.route);
                    row.push_bind(item.id.to_string())
                        .push_bind(tenant.as_str())
                        .push_bind(&item.sender_id)
                        .push_bind(&item.recipient_id)
                        .push_bind(&item.idempotency_key)
                        .push_bind(&item.delivery_digest)
                        .push_bind(&item.delivery_digest)
                        .push_bind(&batch_text)
                        .push_bind(message_ids)
                        .push_bind(status.as_str())
                        .push_bind(reason)
                        .push_bind(operator)
                        .push_bind(&at)
                        .push_bind(&at)
                        .push_bind(&item.sender_key_id);
                },
            );
            // No conflict target: both the idempotency key and the signed
            // content (sender, delivery_digest) are unique.
            insert.push(" ON CONFLICT DO NOTHING RETURNING id");
            for row in insert.build().fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get(0)?);
            }
        }
        let mut outbox: Vec<(String, &str, &[u8])> = Vec::with_capacity(inserted.len());
        for item in items {
            let (status, reason, _) = route_columns(&item.route);
            let id = item.id.to_string();
            if !inserted.contains(&id) {
                let answer = earlier_delivery(&mut tx, tenant, item).await?;
                if !matches!(
                    answer,
                    Intake::Existing {
                        same_request: true,
                        ..
                    }
                ) {
                    refused_here += 1;
                }
                answers.push(answer);
                continue;
            }
            match &item.route {
                Route::Operator { operator, sealed } => {
                    outbox.push((id.clone(), operator.as_str(), sealed.as_slice()));
                }
                Route::Paper {
                    wrapped_key,
                    content,
                    ..
                } => {
                    sqlx::query(
                        "INSERT INTO paper_queue (delivery_id, recipient_id, wrapped_key, content, queued_at) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(&item.recipient_id)
                    .bind(wrapped_key)
                    .bind(content)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
                }
                Route::NotDelivered { .. } => {}
            }
            events.push(tenant.as_str(), &id, status, &at);
            let detail = serde_json::json!({
                "sender": item.sender_id, "status": status.as_str(), "batch": batch_text, "reason": reason,
            })
            .to_string();
            chain.push(
                now,
                &AuditEntry {
                    tenant: Some(tenant),
                    actor,
                    action: "delivery.accepted",
                    subject: &id,
                    detail: &detail,
                },
            );
            answers.push(Intake::Created(item.id));
        }
        match &batch_used {
            Some((batch_id, false)) if refused_here > 0 => {
                sqlx::query("UPDATE batches SET rejected = rejected + ? WHERE id = ?")
                    .bind(refused_here)
                    .bind(batch_id)
                    .execute(&mut *tx)
                    .await?;
            }
            // A batch sent again: items refused the first time may have
            // been accepted now, so its refused count is what is missing.
            Some((batch_id, true)) => {
                sqlx::query(
                    "UPDATE batches SET rejected = submitted - (SELECT COUNT(*) FROM deliveries WHERE batch_id = ?1) WHERE id = ?1",
                )
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        for chunk in outbox.chunks(OUTBOX_ROWS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO outbox (delivery_id, operator_id, sealed, next_attempt_at) ",
            );
            insert.push_values(chunk, |mut row, (id, operator, sealed)| {
                row.push_bind(id)
                    .push_bind(*operator)
                    .push_bind(*sealed)
                    .push_bind(&at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        events.flush(&mut tx).await?;
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        let batch = batch_used
            .map(|(id, _)| BatchId::parse(&id).map_err(|_| StoreError::Corrupt("batch id".into())))
            .transpose()?;
        Ok(Stored {
            batch,
            intakes: answers,
        })
    }

    /// One delivery, only if it belongs to `tenant`.
    pub async fn delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>> {
        let row = sqlx::query("SELECT * FROM deliveries WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| delivery_from_row(&row)).transpose()
    }

    /// Leases due jobs for `lease`, oldest first, within `limit`: a worker
    /// that dies leaves them to come due again, so nothing is lost. Suspects
    /// (see [`claim_suspect`](Self::claim_suspect)) are not among them, nor
    /// jobs of a suspended tenant.
    pub async fn claim_due_jobs(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: ClaimLimit,
    ) -> Result<Vec<OutboxJob>> {
        self.claim(now, lease, Lane::Shared, limit).await
    }

    /// Leases the one suspect due next, to be sent while nothing else is in
    /// flight in this process (the caller makes sure of that): those that
    /// crashed alone before first, so a poison job is judged at once. With
    /// `struck_only`, only such a job.
    pub async fn claim_suspect(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        struck_only: bool,
    ) -> Result<Option<OutboxJob>> {
        let lane = if struck_only {
            Lane::Struck
        } else {
            Lane::Suspects
        };
        let limit = ClaimLimit { jobs: 1, bytes: 0 };
        Ok(self.claim(now, lease, lane, limit).await?.pop())
    }

    async fn claim(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        lane: Lane,
        limit: ClaimLimit,
    ) -> Result<Vec<OutboxJob>> {
        // The writer only picks and leases the jobs; their sealed blobs are
        // read after the commit, outside the writer. The byte budget is
        // summed from `length(sealed)`, which SQLite answers from the
        // record header without reading the blob: blobs past the budget
        // are never loaded.
        // (Column names in `order` are the outbox's alone, so they read
        // the same in both selects.)
        let (filter, order) = match lane {
            Lane::Shared => ("o.suspect = 0", "next_attempt_at, delivery_id"),
            Lane::Suspects => (
                "o.suspect = 1",
                "solo_crashes DESC, next_attempt_at, delivery_id",
            ),
            Lane::Struck => (
                "o.suspect = 1 AND o.solo_crashes > 0",
                "solo_crashes DESC, next_attempt_at, delivery_id",
            ),
        };
        let sql = format!(
            "WITH due AS (
               SELECT o.delivery_id, d.tenant_id, d.sender_id, d.recipient_id, d.message_ids,
                      o.operator_id, o.attempts, o.last_error, o.suspect, o.solo_crashes,
                      o.next_attempt_at, k.revoked_at IS NOT NULL AS key_revoked,
                      length(o.sealed) AS bytes
               FROM outbox o JOIN deliveries d ON d.id = o.delivery_id
               JOIN tenants t ON t.id = d.tenant_id
               LEFT JOIN sender_keys k ON k.key_id = d.sender_key_id
               WHERE o.next_attempt_at <= ?1 AND t.status = 'active' AND {filter}
               ORDER BY {order} LIMIT ?2
             ), sized AS (
               SELECT *, ROW_NUMBER() OVER w AS n, SUM(bytes) OVER w AS running
               FROM due WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)
             )
             SELECT * FROM sized WHERE n = 1 OR running <= ?3 ORDER BY n"
        );
        let mut tx = self.writer().begin().await?;
        let rows = sqlx::query(&sql)
            .bind(format_instant(now))
            .bind(limit.jobs.max(1))
            .bind(limit.bytes)
            .fetch_all(&mut *tx)
            .await?;
        let lease_until = format_instant(now + lease);
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let operator: String = row.try_get("operator_id")?;
            let message_ids: String = row.try_get("message_ids")?;
            let job = OutboxJob {
                delivery_id: delivery_id(&row, "delivery_id")?,
                message_ids: serde_json::from_str(&message_ids)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                tenant_id: tenant_id(&row)?,
                sender_id: row.try_get("sender_id")?,
                recipient_id: row.try_get("recipient_id")?,
                operator_id: OperatorId::parse(&operator)
                    .map_err(|_| StoreError::Corrupt("operator id".into()))?,
                sealed: Vec::new(),
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
                sender_key_revoked: row.try_get("key_revoked")?,
                suspect: row.try_get("suspect")?,
                solo_crashes: row.try_get("solo_crashes")?,
            };
            jobs.push(job);
        }
        let leased = match lane {
            Lane::Shared => Lease::Shared,
            Lane::Suspects | Lane::Struck => Lease::Alone,
        };
        set_lease(&mut tx, &jobs, leased, &lease_until).await?;
        tx.commit().await?;
        // Leased to this worker, the rows stay until it records or
        // reschedules them, so reading them now sees what was leased.
        let ids: Vec<String> = jobs.iter().map(|j| j.delivery_id.to_string()).collect();
        let read = self
            .direct
            .read(move |connection| {
                let mut sealed = connection
                    .prepare_cached("SELECT sealed FROM outbox WHERE delivery_id = ?1")?;
                ids.iter()
                    .map(|id| {
                        sealed
                            .query_row([id], |row| row.get::<_, Vec<u8>>(0))
                            .optional()
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await;
        let blobs = match read {
            Ok(blobs) => blobs,
            Err(e) => {
                // Give the jobs back at once rather than leave them leased
                // until the lease runs out.
                self.unlease(&jobs, now).await?;
                return Err(e);
            }
        };
        let mut claimed = Vec::with_capacity(jobs.len());
        for (job, sealed) in jobs.into_iter().zip(blobs) {
            match sealed {
                Some(sealed) => claimed.push(OutboxJob { sealed, ..job }),
                // Settled meanwhile by another relay process sharing the
                // queue (see `release_leases`): nothing left to send.
                None => {
                    tracing::warn!(delivery = %job.delivery_id, "a leased job left the queue before it was read")
                }
            }
        }
        Ok(claimed)
    }

    /// Makes claimed jobs due again now.
    async fn unlease(&self, jobs: &[OutboxJob], now: OffsetDateTime) -> Result<()> {
        let mut connection = self.writer().acquire().await?;
        set_lease(&mut connection, jobs, Lease::Free, &format_instant(now)).await
    }

    /// Makes every leased job due now. Only for a relay process starting on
    /// the embedded store, which one process owns: any lease still held was
    /// taken by a predecessor that died, and its jobs would otherwise wait
    /// out the lease. (Should two processes share the queue anyway, the
    /// mailbox answers a redelivery with the first receipt: no duplicate.)
    ///
    /// Each released job counts the unfinished pass as an attempt, with
    /// [`STOPPED_MID_ATTEMPT`] as its last error, and becomes a suspect: it
    /// is sent alone from now on, until an operator answers for it. A job
    /// that was already alone when the process stopped gets a crash counted
    /// against it (`solo_crashes`), which is what quarantines a poison
    /// delivery (decision 0014).
    pub async fn release_leases(&self, now: OffsetDateTime) -> Result<Released> {
        let rows = sqlx::query(
            "UPDATE outbox SET leased = 0, next_attempt_at = ?1, attempts = attempts + 1,
               last_error = CASE WHEN solo = 1 THEN ?2 ELSE ?3 END,
               solo_crashes = solo_crashes + solo, suspect = 1, solo = 0
             WHERE leased = 1 RETURNING last_error = ?2",
        )
        .bind(format_instant(now))
        .bind(STOPPED_MID_SOLO_ATTEMPT)
        .bind(STOPPED_MID_ATTEMPT)
        .fetch_all(self.writer())
        .await?;
        let mut released = Released::default();
        for row in rows {
            released.jobs += 1;
            if row.try_get::<bool, _>(0)? {
                released.alone += 1;
            }
        }
        Ok(released)
    }

    /// An operator answered a lone attempt of these jobs: the process
    /// survived sending them, so they are no longer suspects.
    pub async fn clear_suspicion(&self, jobs: &[OutboxJob]) -> Result<()> {
        for chunk in jobs.chunks(500) {
            let mut update: QueryBuilder<Sqlite> = QueryBuilder::new(
                "UPDATE outbox SET suspect = 0, solo_crashes = 0 WHERE delivery_id IN (",
            );
            let mut ids = update.separated(", ");
            for job in chunk {
                ids.push_bind(job.delivery_id.to_string());
            }
            update.push(")");
            update.build().execute(self.writer()).await?;
        }
        Ok(())
    }

    /// The earliest time a job a pass can claim comes due, if any: not a
    /// suspect, not of a suspended tenant (whose jobs would otherwise be
    /// "due" all the time, and the worker would spin).
    pub async fn next_job_due(&self) -> Result<Option<OffsetDateTime>> {
        self.next_due("o.suspect = 0").await
    }

    /// [`next_job_due`](Self::next_job_due) of the suspects.
    pub async fn next_suspect_due(&self) -> Result<Option<OffsetDateTime>> {
        self.next_due("o.suspect = 1").await
    }

    async fn next_due(&self, filter: &str) -> Result<Option<OffsetDateTime>> {
        let row = sqlx::query(&format!(
            "SELECT MIN(o.next_attempt_at) FROM outbox o JOIN deliveries d ON d.id = o.delivery_id
             JOIN tenants t ON t.id = d.tenant_id WHERE t.status = 'active' AND {filter}"
        ))
        .fetch_one(self.reader())
        .await?;
        let text: Option<String> = row.try_get(0)?;
        text.map(|t| crate::parse_instant(&t).map_err(|_| StoreError::Corrupt("instant".into())))
            .transpose()
    }

    /// Records operators' receipts: each delivery is final, its job leaves
    /// the queue, the sender can see it — all in one transaction (one disk
    /// flush for a whole answer from an operator, not one per delivery).
    pub async fn record_delivered_many(
        &self,
        receipts: &[Delivered<'_>],
        now: OffsetDateTime,
    ) -> Result<()> {
        if receipts.is_empty() {
            return Ok(());
        }
        let at = format_instant(now);
        let mut tx = self.writer().begin().await?;
        let mut chain = AuditChain::head(&mut tx).await?;
        let mut events = StatusEvents::default();
        // One UPDATE per chunk (the rows to change as a VALUES table);
        // RETURNING names the deliveries that were still `accepted`, which
        // get a status event and an audit entry (a redelivery does not).
        let mut changed: HashSet<String> = HashSet::with_capacity(receipts.len());
        for chunk in receipts.chunks(RECEIPTS_PER_UPDATE) {
            let mut update: QueryBuilder<Sqlite> =
                QueryBuilder::new("WITH r (id, delivered_at, receipt) AS (");
            update.push_values(chunk, |mut row, delivered| {
                row.push_bind(delivered.job.delivery_id.to_string())
                    .push_bind(format_instant(delivered.delivered_at))
                    .push_bind(delivered.receipt_json);
            });
            update
                .push(") UPDATE deliveries SET status = ")
                .push_bind(DeliveryStatus::Delivered.as_str())
                .push(", status_at = ")
                .push_bind(&at)
                .push(
                    ", delivered_at = r.delivered_at, receipt = r.receipt FROM r
                     WHERE deliveries.id = r.id AND deliveries.status = ",
                )
                .push_bind(DeliveryStatus::Accepted.as_str())
                .push(" RETURNING deliveries.id");
            for row in update.build().fetch_all(&mut *tx).await? {
                changed.insert(row.try_get(0)?);
            }
        }
        for Delivered {
            job, delivered_at, ..
        } in receipts
        {
            let id = job.delivery_id.to_string();
            // `remove`: the same id twice in one call is recorded once.
            if changed.remove(&id) {
                events.push(job.tenant_id.as_str(), &id, DeliveryStatus::Delivered, &at);
                let detail = serde_json::json!({
                    "operator": job.operator_id.as_str(), "delivered_at": format_instant(*delivered_at),
                })
                .to_string();
                chain.push(
                    now,
                    &AuditEntry {
                        tenant: Some(&job.tenant_id),
                        actor: "relay",
                        action: "delivery.delivered",
                        subject: &id,
                        detail: &detail,
                    },
                );
            }
        }
        // The jobs leave the queue, one DELETE per chunk.
        for chunk in receipts.chunks(500) {
            let mut delete: QueryBuilder<Sqlite> =
                QueryBuilder::new("DELETE FROM outbox WHERE delivery_id IN (");
            let mut ids = delete.separated(", ");
            for receipt in chunk {
                ids.push_bind(receipt.job.delivery_id.to_string());
            }
            delete.push(")");
            delete.build().execute(&mut *tx).await?;
        }
        events.flush(&mut tx).await?;
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn reschedule_job(
        &self,
        job: &OutboxJob,
        next_attempt: OffsetDateTime,
        error: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, leased = 0, solo = 0 WHERE delivery_id = ?")
            .bind(format_instant(next_attempt))
            .bind(error)
            .bind(job.delivery_id.to_string())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The operator refused the delivery for good (not a transient error).
    pub async fn record_failed(
        &self,
        job: &OutboxJob,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.end_jobs(
            &[Ending {
                job,
                status: DeliveryStatus::Failed,
                reason,
                attempts: None,
            }],
            now,
        )
        .await
    }

    /// The delivery used up its attempts (`attempts` of them, the last one
    /// included): it ends `failed` with `reason`, like a refusal, and the
    /// audit entry records how many attempts were made.
    pub async fn record_retries_exhausted(
        &self,
        job: &OutboxJob,
        reason: &str,
        attempts: i64,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.end_jobs(
            &[Ending {
                job,
                status: DeliveryStatus::Failed,
                reason,
                attempts: Some(attempts),
            }],
            now,
        )
        .await
    }

    /// Ends queued deliveries that will not be sent (`failed` or
    /// `not_delivered`, with a reason), in one transaction: the status the
    /// sender sees, a status event and an audit entry for each (only for a
    /// delivery still `accepted`), and the jobs leave the queue.
    pub async fn end_jobs(&self, endings: &[Ending<'_>], now: OffsetDateTime) -> Result<()> {
        if endings.is_empty() {
            return Ok(());
        }
        let at = format_instant(now);
        let mut tx = self.writer().begin().await?;
        let mut chain = AuditChain::head(&mut tx).await?;
        let mut events = StatusEvents::default();
        for ending in endings {
            let Ending {
                job,
                status,
                reason,
                attempts,
            } = *ending;
            let id = job.delivery_id.to_string();
            let updated = sqlx::query(
                "UPDATE deliveries SET status = ?, status_reason = ?, status_at = ? WHERE id = ? AND status = ?",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(&at)
            .bind(&id)
            .bind(DeliveryStatus::Accepted.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM outbox WHERE delivery_id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                continue;
            }
            events.push(job.tenant_id.as_str(), &id, status, &at);
            let detail = match attempts {
                Some(attempts) => serde_json::json!({ "reason": reason, "attempts": attempts }),
                None => serde_json::json!({ "reason": reason }),
            }
            .to_string();
            let action = match status {
                DeliveryStatus::NotDelivered => "delivery.not_delivered",
                _ => "delivery.failed",
            };
            chain.push(
                now,
                &AuditEntry {
                    tenant: Some(&job.tenant_id),
                    actor: "relay",
                    action,
                    subject: &id,
                    detail: &detail,
                },
            );
        }
        events.flush(&mut tx).await?;
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Current statuses of a tenant's deliveries received on `day` (UTC).
    ///
    /// (The SQL is [`DAILY_COUNTS_SQL`].)
    pub async fn daily_counts(&self, tenant: &TenantId, day: time::Date) -> Result<StatusCounts> {
        let mut counts = StatusCounts::default();
        let (from, until) = crate::day_range(day);
        // A range on (tenant_id, received_at), which the index serves; a
        // LIKE on the text instant scanned every row of the tenant.
        for row in sqlx::query(DAILY_COUNTS_SQL)
            .bind(tenant.as_str())
            .bind(from)
            .bind(until)
            .fetch_all(self.reader())
            .await?
        {
            counts.add(
                DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
                row.try_get("n")?,
            );
        }
        Ok(counts)
    }
}

pub(crate) fn delivery_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeliveryRecord> {
    let batch: Option<String> = row.try_get("batch_id")?;
    let message_ids: String = row.try_get("message_ids")?;
    Ok(DeliveryRecord {
        id: delivery_id(row, "id")?,
        tenant_id: tenant_id(row)?,
        sender_id: row.try_get("sender_id")?,
        recipient_id: row.try_get("recipient_id")?,
        batch_id: batch
            .map(|b| BatchId::parse(&b).map_err(|_| StoreError::Corrupt("batch id".into())))
            .transpose()?,
        message_ids: serde_json::from_str(&message_ids)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
        status_reason: row.try_get("status_reason")?,
        operator_id: row.try_get("operator_id")?,
        received_at: instant(row, "received_at")?,
        status_at: instant(row, "status_at")?,
        delivered_at: opt_instant(row, "delivered_at")?,
        receipt: row.try_get("receipt")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::{ClaimLimit, DeliveryStatus, STOPPED_MID_ATTEMPT, STOPPED_MID_SOLO_ATTEMPT};
    use crate::{Db, Schema, parse_instant};
    use sqlx::Row as _;

    /// A core database with one active tenant and `sizes.len()` queued jobs
    /// (sealed blobs of those sizes), due one second apart in that order.
    async fn queue_of(sizes: &[usize]) -> (tempfile::TempDir, Db, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), Schema::Core)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ('demokommun', 'Demo', '2026-12-01T00:00:00.000000Z')")
            .execute(db.writer())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (n, size) in sizes.iter().enumerate() {
            let id = kuvert_domain::ids::DeliveryId::new().to_string();
            let due = format!("2026-12-01T10:00:{n:02}.000000Z");
            sqlx::query(
                "INSERT INTO deliveries (id, tenant_id, sender_id, recipient_id, idempotency_key, request_hash,
                   message_ids, status, received_at, status_at)
                 VALUES (?1, 'demokommun', '162120009994', '198001012387', ?1, 'h', '[\"1\"]', 'accepted', ?2, ?2)",
            )
            .bind(&id)
            .bind(&due)
            .execute(db.writer())
            .await
            .unwrap();
            sqlx::query("INSERT INTO outbox (delivery_id, operator_id, sealed, next_attempt_at) VALUES (?, 'kuvert-brevlada', ?, ?)")
                .bind(&id)
                .bind(vec![b'x'; *size])
                .bind(&due)
                .execute(db.writer())
                .await
                .unwrap();
            ids.push(id);
        }
        (dir, db, ids)
    }

    fn later() -> time::OffsetDateTime {
        parse_instant("2026-12-01T11:00:00.000000Z").unwrap()
    }

    fn ids_of(jobs: &[super::OutboxJob]) -> Vec<String> {
        jobs.iter().map(|j| j.delivery_id.to_string()).collect()
    }

    /// A pass claims jobs, oldest first, only while their sealed bytes fit
    /// the budget (the first always does, however large); the rest stay
    /// due, not leased, and are claimed by the next pass.
    #[tokio::test]
    async fn a_pass_claims_only_as_many_jobs_as_fit_its_byte_budget() {
        let (_dir, db, ids) = queue_of(&[400, 300, 200, 100, 50]).await;
        let lease = time::Duration::minutes(2);
        let budget = ClaimLimit {
            jobs: 500,
            bytes: 800,
        };
        let first = db.claim_due_jobs(later(), lease, budget).await.unwrap();
        assert_eq!(
            ids_of(&first),
            ids[..2],
            "400 + 300 fit 800; + 200 does not"
        );
        assert_eq!(first[0].sealed.len(), 400);
        let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE leased = 1")
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert_eq!(leased, 2, "the others were not leased");
        let second = db.claim_due_jobs(later(), lease, budget).await.unwrap();
        assert_eq!(ids_of(&second), ids[2..], "200 + 100 + 50");
        db.close().await;

        // A job larger than the whole budget still goes, alone.
        let (_dir, db, ids) = queue_of(&[5000, 10]).await;
        let tiny = ClaimLimit {
            jobs: 500,
            bytes: 100,
        };
        let alone = db.claim_due_jobs(later(), lease, tiny).await.unwrap();
        assert_eq!(ids_of(&alone), ids[..1]);
        // And the count still bounds it.
        let one = ClaimLimit {
            jobs: 1,
            bytes: i64::MAX,
        };
        assert_eq!(
            ids_of(&db.claim_due_jobs(later(), lease, one).await.unwrap()),
            ids[1..]
        );
        db.close().await;
    }

    /// Leases left by a stopped process: every job becomes a suspect that
    /// passes do not claim; a job that was alone gets a crash against it
    /// and goes first among the suspects; an operator's answer clears both.
    #[tokio::test]
    async fn released_leases_make_suspects_and_a_lone_one_gets_a_crash_against_it() {
        let (_dir, db, ids) = queue_of(&[10, 10, 10]).await;
        let lease = time::Duration::minutes(2);
        let all = ClaimLimit {
            jobs: 500,
            bytes: i64::MAX,
        };
        // The first two in flight together; then the third alone.
        let group = db
            .claim_due_jobs(later(), lease, ClaimLimit { jobs: 2, ..all })
            .await
            .unwrap();
        assert_eq!(group.len(), 2);
        sqlx::query("UPDATE outbox SET suspect = 1 WHERE delivery_id = ?")
            .bind(&ids[2])
            .execute(db.writer())
            .await
            .unwrap();
        let alone = db
            .claim_suspect(later(), lease, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alone.delivery_id.to_string(), ids[2]);

        let released = db.release_leases(later()).await.unwrap();
        assert_eq!((released.jobs, released.alone), (3, 1));
        assert!(
            db.claim_due_jobs(later(), lease, all)
                .await
                .unwrap()
                .is_empty(),
            "all suspects now"
        );
        assert_eq!(
            db.next_job_due().await.unwrap(),
            None,
            "nothing a pass could claim"
        );
        assert_eq!(db.next_suspect_due().await.unwrap(), Some(later()));

        let struck = db
            .claim_suspect(later(), lease, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(struck.delivery_id.to_string(), ids[2], "the lone one first");
        assert_eq!((struck.solo_crashes, struck.attempts), (1, 1));
        assert_eq!(struck.last_error.as_deref(), Some(STOPPED_MID_SOLO_ATTEMPT));
        assert!(
            db.claim_suspect(later(), lease, true)
                .await
                .unwrap()
                .is_none(),
            "no other was alone"
        );
        let next = db
            .claim_suspect(later(), lease, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.solo_crashes, next.last_error.as_deref()),
            (0, Some(STOPPED_MID_ATTEMPT))
        );

        // Answered: back among the others (due again once rescheduled).
        db.clear_suspicion(std::slice::from_ref(&next))
            .await
            .unwrap();
        db.reschedule_job(&next, later(), "receipt does not verify")
            .await
            .unwrap();
        let claimed = db.claim_due_jobs(later(), lease, all).await.unwrap();
        assert_eq!(ids_of(&claimed), vec![next.delivery_id.to_string()]);
        assert!(!claimed[0].suspect);
        db.close().await;
    }

    /// The statuses the `CHECK` on `deliveries.status` allows, read from the
    /// schema the migrations left (not from a migration file: a later
    /// migration may rebuild the table).
    async fn checked_statuses(db: &Db) -> Vec<String> {
        let sql: String = sqlx::query(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
        )
        .fetch_one(db.reader())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        let column = sql
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("status ") && line.contains("CHECK"))
            .unwrap_or_else(|| panic!("no CHECK on deliveries.status in {sql}"));
        let list = column
            .split_once("IN (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .unwrap_or_else(|| panic!("not a CHECK (status IN (…)): {column}"));
        list.split(',')
            .map(|name| name.trim().trim_matches('\'').to_owned())
            .collect()
    }

    /// Statistics read a day as a range the index serves (a `LIKE` on the
    /// text instant could not use it and scanned every row of the tenant).
    #[tokio::test]
    async fn statistics_queries_are_served_by_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), Schema::Core)
            .await
            .unwrap();
        for (sql, index, range) in [(
            super::DAILY_COUNTS_SQL,
            "deliveries_tenant_received",
            "received_at>? AND received_at<?",
        )] {
            let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind("t")
                .bind("a")
                .bind("b")
                .bind("c")
                .fetch_all(db.reader())
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("detail").unwrap())
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains(index) && step.contains(range)),
                "{sql}: {plan:?}"
            );
        }
        db.close().await;
    }

    #[test]
    fn a_day_is_the_half_open_range_from_its_midnight_to_the_next() {
        let (from, until) = crate::day_range(time::macros::date!(2026 - 12 - 31));
        assert_eq!(from, "2026-12-31T00:00:00.000000Z");
        assert_eq!(until, "2027-01-01T00:00:00.000000Z");
        let last = crate::format_instant(time::macros::datetime!(2026-12-31 23:59:59.999999 UTC));
        assert!(from.as_str() <= last.as_str() && last.as_str() < until.as_str());
    }

    /// The one copy of the status model the code cannot generate: the
    /// database's `CHECK` must allow exactly `DeliveryStatus::ALL`.
    #[tokio::test]
    async fn the_schema_check_allows_exactly_the_delivery_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), Schema::Core)
            .await
            .unwrap();
        let mut checked = checked_statuses(&db).await;
        let mut known: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
        checked.sort_unstable();
        known.sort_unstable();
        assert_eq!(checked, known);
        db.close().await;
    }
}
