//! Sending by hand from the web (decision 0020): who may send for which
//! sender (grants, each backed by a credential scoped to that sender), the
//! key the server signs with on their behalf (private half encrypted), and
//! what the sender pages read: the sent list and the chart's counts, both
//! through the same [`Viewer`] filter as every sender-side read.

use crate::audit::AuditEntry;
use crate::relay::{DeliveryRecord, delivery_from_row};
use crate::tenants::{VISIBLE_SENDERS, Viewer};
use crate::{
    Db, Result, StoreError, commit_audited, format_instant, inserted_once, instant, opt_instant,
    updated_one,
};
use kuvert_domain::ids::TenantId;
use kuvert_domain::status::DeliveryStatus;
use sqlx::Row;
use time::OffsetDateTime;

/// A grant as the platform operator makes it.
#[derive(Debug, Clone, Copy)]
pub struct NewWebSenderGrant<'a> {
    pub tenant: &'a TenantId,
    pub sender_id: &'a str,
    /// The canonical 12 digits.
    pub person: &'a str,
    /// The backing credential's id and the hash of its (never shown) secret.
    pub credential_id: &'a str,
    pub secret_hash: &'a [u8],
}

/// An active grant: the person may send for `sender_id` of `tenant`, as
/// the credential `credential_id`.
#[derive(Debug, Clone)]
pub struct WebSenderGrant {
    pub credential_id: String,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub sender_id: String,
    pub sender_name: String,
    pub granted_at: OffsetDateTime,
}

impl WebSenderGrant {
    /// The filter every read of the sender pages goes through.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            tenant: &self.tenant_id,
            credential: &self.credential_id,
        }
    }
}

/// A grant as `kuvert tenant show` lists it (the person's number is the
/// caller's to mask).
#[derive(Debug, Clone)]
pub struct WebSenderGrantInfo {
    pub credential_id: String,
    pub sender_id: String,
    pub person: String,
    pub granted_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A web sending key as stored: the public half is the sender key
/// `key_id`; the private half is `private_key`, encrypted under a data key
/// that `wrapped_key` holds wrapped by the installation's web-sender KEK.
#[derive(Debug, Clone)]
pub struct StoredWebKey {
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub private_key: Vec<u8>,
}

/// A new web sending key with its sender-key row (the register's certificate).
#[derive(Debug, Clone, Copy)]
pub struct NewWebKey<'a> {
    pub sender_key: crate::tenants::NewSenderKey<'a>,
    pub wrapped_key: &'a [u8],
    pub private_key: &'a [u8],
}

/// One bar of the chart: deliveries received on `day` (UTC, `YYYY-MM-DD`)
/// that now have `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyOutcome {
    pub day: String,
    pub status: DeliveryStatus,
    pub count: i64,
}

/// Where a page of the sent list starts: after this delivery (newest first).
#[derive(Debug, Clone)]
pub struct SentCursor {
    pub received_at: String,
    pub id: String,
}

const ACTIVE_GRANT: &str =
    "SELECT g.credential_id, g.tenant_id, t.name AS tenant_name, g.sender_id,
        s.name AS sender_name, g.granted_at
   FROM web_sender_grants g
   JOIN credentials c ON c.id = g.credential_id AND c.revoked_at IS NULL
   JOIN tenants t ON t.id = g.tenant_id AND t.status = 'active'
   JOIN senders s ON s.id = g.sender_id AND s.tenant_id = g.tenant_id AND s.removed_at IS NULL
  WHERE g.revoked_at IS NULL AND g.person = ?";

fn grant_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<WebSenderGrant> {
    let tenant: String = row.try_get("tenant_id")?;
    Ok(WebSenderGrant {
        credential_id: row.try_get("credential_id")?,
        tenant_id: TenantId::parse(&tenant).map_err(|_| StoreError::Corrupt("tenant id".into()))?,
        tenant_name: row.try_get("tenant_name")?,
        sender_id: row.try_get("sender_id")?,
        sender_name: row.try_get("sender_name")?,
        granted_at: instant(row, "granted_at")?,
    })
}

impl Db {
    /// Grants a person the sender role for one sender: the backing
    /// credential (scoped to the sender), its scope row and the grant, in
    /// one transaction with the audit entry. A sender that is not the
    /// tenant's (or was removed) is `NotFound`; an active grant for the same
    /// person and sender is `Conflict`. Nothing is stored in either case.
    pub async fn grant_web_sender(
        &self,
        grant: &NewWebSenderGrant<'_>,
        label: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let at = format_instant(now);
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, label, secret_hash, created_at, all_senders) VALUES (?, ?, ?, ?, ?, 0)",
        )
        .bind(grant.credential_id)
        .bind(grant.tenant.as_str())
        .bind(label)
        .bind(grant.secret_hash)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        updated_one(
            sqlx::query(
                "INSERT INTO credential_senders (credential_id, sender_id)
                 SELECT ?, id FROM senders WHERE id = ? AND tenant_id = ? AND removed_at IS NULL",
            )
            .bind(grant.credential_id)
            .bind(grant.sender_id)
            .bind(grant.tenant.as_str())
            .execute(&mut *tx)
            .await?,
        )?;
        inserted_once(
            sqlx::query(
                "INSERT INTO web_sender_grants (credential_id, tenant_id, sender_id, person, granted_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(grant.credential_id)
            .bind(grant.tenant.as_str())
            .bind(grant.sender_id)
            .bind(grant.person)
            .bind(&at)
            .execute(&mut *tx)
            .await,
        )?;
        commit_audited(tx, now, audit).await
    }

    /// Revokes a grant and its credential together: the person's next
    /// request is refused, and a send under way is refused at its commit.
    pub async fn revoke_web_sender(
        &self,
        tenant: &TenantId,
        credential_id: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let at = format_instant(now);
        let mut tx = self.writer().begin().await?;
        updated_one(
            sqlx::query(
                "UPDATE web_sender_grants SET revoked_at = ? WHERE credential_id = ? AND tenant_id = ? AND revoked_at IS NULL",
            )
            .bind(&at)
            .bind(credential_id)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?,
        )?;
        sqlx::query(
            "UPDATE credentials SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL",
        )
        .bind(&at)
        .bind(credential_id)
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, now, audit).await
    }

    /// The person's active grant for `sender`, if any: the grant and its
    /// credential unrevoked, the tenant active, the sender not removed.
    /// Read from the writer, so that a revocation applies to the very next
    /// request.
    pub async fn active_web_grant(
        &self,
        person: &str,
        sender_id: &str,
    ) -> Result<Option<WebSenderGrant>> {
        let sql = format!("{ACTIVE_GRANT} AND g.sender_id = ?");
        let row = sqlx::query(&sql)
            .bind(person)
            .bind(sender_id)
            .fetch_optional(self.writer())
            .await?;
        row.map(|row| grant_from_row(&row)).transpose()
    }

    /// Every active grant of the person, by sender name.
    pub async fn active_web_grants(&self, person: &str) -> Result<Vec<WebSenderGrant>> {
        let sql = format!("{ACTIVE_GRANT} ORDER BY s.name, g.sender_id");
        sqlx::query(&sql)
            .bind(person)
            .fetch_all(self.writer())
            .await?
            .iter()
            .map(grant_from_row)
            .collect()
    }

    /// The active grant of `person` for `sender` of `tenant` (for revoking
    /// by person), or `None`.
    pub async fn web_grant_id(
        &self,
        tenant: &TenantId,
        sender_id: &str,
        person: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT credential_id FROM web_sender_grants
              WHERE tenant_id = ? AND sender_id = ? AND person = ? AND revoked_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(sender_id)
        .bind(person)
        .fetch_optional(self.writer())
        .await?)
    }

    /// A tenant's grants, revoked ones included, oldest first.
    pub async fn web_grants(&self, tenant: &TenantId) -> Result<Vec<WebSenderGrantInfo>> {
        sqlx::query(
            "SELECT credential_id, sender_id, person, granted_at, revoked_at FROM web_sender_grants
              WHERE tenant_id = ? ORDER BY granted_at, credential_id",
        )
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(WebSenderGrantInfo {
                credential_id: row.try_get("credential_id")?,
                sender_id: row.try_get("sender_id")?,
                person: row.try_get("person")?,
                granted_at: instant(row, "granted_at")?,
                revoked_at: opt_instant(row, "revoked_at")?,
            })
        })
        .collect()
    }

    /// Stores a web sending key: its sender-key row (with the register's
    /// certificate) and its encrypted private half, in one transaction.
    pub async fn add_web_sender_key(
        &self,
        key: &NewWebKey<'_>,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let at = format_instant(now);
        let public = &key.sender_key;
        let mut tx = self.writer().begin().await?;
        inserted_once(
            sqlx::query(
                "INSERT INTO sender_keys (key_id, tenant_id, sender_id, public_key, certificate, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(public.key_id)
            .bind(public.tenant.as_str())
            .bind(public.sender_id)
            .bind(public.public_key)
            .bind(public.certificate)
            .bind(&at)
            .execute(&mut *tx)
            .await,
        )?;
        sqlx::query(
            "INSERT INTO web_sender_keys (key_id, tenant_id, sender_id, wrapped_key, private_key, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(public.key_id)
        .bind(public.tenant.as_str())
        .bind(public.sender_id)
        .bind(key.wrapped_key)
        .bind(key.private_key)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, now, audit).await
    }

    /// The sender's newest web sending key whose sender key is not revoked.
    pub async fn web_sender_key(
        &self,
        tenant: &TenantId,
        sender_id: &str,
    ) -> Result<Option<StoredWebKey>> {
        let row = sqlx::query(
            "SELECT w.key_id, w.wrapped_key, w.private_key FROM web_sender_keys w
               JOIN sender_keys k ON k.key_id = w.key_id AND k.revoked_at IS NULL
              WHERE w.tenant_id = ? AND w.sender_id = ?
              ORDER BY w.created_at DESC, w.key_id LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(sender_id)
        .fetch_optional(self.writer())
        .await?;
        row.map(|row| {
            Ok(StoredWebKey {
                key_id: row.try_get("key_id")?,
                wrapped_key: row.try_get("wrapped_key")?,
                private_key: row.try_get("private_key")?,
            })
        })
        .transpose()
    }

    /// A page of what `sender` sent, newest first, as the viewer sees it
    /// (nothing of a sender outside its scope): `limit` rows after `after`.
    pub async fn sent_page(
        &self,
        viewer: &Viewer<'_>,
        sender_id: &str,
        after: Option<&SentCursor>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        let cursor = if after.is_some() {
            "AND (received_at < ? OR (received_at = ? AND id < ?))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT * FROM deliveries
              WHERE tenant_id = ? AND sender_id = ? AND sender_id IN ({VISIBLE_SENDERS}) {cursor}
              ORDER BY received_at DESC, id DESC LIMIT ?"
        );
        let mut query = sqlx::query(&sql)
            .bind(viewer.tenant.as_str())
            .bind(sender_id)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str());
        if let Some(cursor) = after {
            query = query
                .bind(&cursor.received_at)
                .bind(&cursor.received_at)
                .bind(&cursor.id);
        }
        query
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    /// The deliveries of `sender` received on the days `[from, until)`
    /// (UTC), counted by day and current status, as the viewer sees them.
    pub async fn daily_outcomes(
        &self,
        viewer: &Viewer<'_>,
        sender_id: &str,
        from: time::Date,
        until: time::Date,
    ) -> Result<Vec<DailyOutcome>> {
        let (from, _) = crate::day_range(from);
        let (until, _) = crate::day_range(until);
        let sql = format!(
            "SELECT substr(received_at, 1, 10) AS day, status, COUNT(*) AS n FROM deliveries
              WHERE tenant_id = ? AND sender_id = ? AND sender_id IN ({VISIBLE_SENDERS})
                AND received_at >= ? AND received_at < ?
              GROUP BY day, status ORDER BY day, status"
        );
        sqlx::query(&sql)
            .bind(viewer.tenant.as_str())
            .bind(sender_id)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .bind(from)
            .bind(until)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| {
                Ok(DailyOutcome {
                    day: row.try_get("day")?,
                    status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }
}
