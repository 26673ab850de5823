//! Delegations in the mailbox database (decision 0019): who may read whose
//! mail, until when, and the audit entries of what delegates read. The
//! rules (which numbers, which dates, how many) are the mailbox's
//! (`kuvert_mailbox::delegation`); this module stores, counts and reads,
//! every change with its audit entry in the same transaction.

use crate::audit::{AuditEntry, append};
use crate::{Db, Result, StoreError, commit_audited, format_instant, instant, opt_instant};
use sqlx::Row;
use time::OffsetDateTime;

/// The audit action of a delegate's read (the owner's page lists them).
pub const READ_ACTION: &str = "delegation.read";

/// A delegation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRow {
    pub id: String,
    /// The owner's canonical identity number.
    pub owner_id: String,
    pub owner_name: String,
    pub delegate_id: String,
    pub delegate_name: Option<String>,
    /// `read` or `manage`.
    pub rights: String,
    /// `YYYY-MM-DD`, the last Swedish day of the right.
    pub until_date: Option<String>,
    /// When the right ends (the end of `until_date` in Sweden).
    pub ends_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// One read by a delegate, from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateReadRow {
    pub at: OffsetDateTime,
    /// The audit entry's detail (JSON: what was read).
    pub detail: String,
    pub delegate_id: String,
    pub delegate_name: Option<String>,
}

/// Active at `now`: not revoked and not ended.
const ACTIVE: &str = "revoked_at IS NULL AND (ends_at IS NULL OR ends_at > ?)";

fn row_to_delegation(row: &sqlx::sqlite::SqliteRow) -> Result<DelegationRow> {
    Ok(DelegationRow {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        delegate_id: row.try_get("delegate_id")?,
        delegate_name: row.try_get("delegate_name")?,
        rights: row.try_get("rights")?,
        until_date: row.try_get("until_date")?,
        ends_at: opt_instant(row, "ends_at")?,
        created_at: instant(row, "created_at")?,
        revoked_at: opt_instant(row, "revoked_at")?,
    })
}

impl Db {
    /// Stores a new delegation with its audit entry, unless the owner
    /// already has `max_active` active ones (`ListFull`) or one to the same
    /// delegate (`Conflict`): both counted in the transaction that inserts,
    /// so two grants at once cannot pass the limit together.
    pub async fn insert_delegation(
        &self,
        row: &DelegationRow,
        max_active: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let now = format_instant(row.created_at);
        let mut tx = self.writer().begin().await?;
        let (active, same): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), COALESCE(SUM(delegate_id = ?), 0) FROM delegations
             WHERE owner_id = ? AND {ACTIVE}"
        ))
        .bind(&row.delegate_id)
        .bind(&row.owner_id)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        if same > 0 {
            return Err(StoreError::Conflict);
        }
        if active >= max_active {
            return Err(StoreError::ListFull { limit: max_active });
        }
        sqlx::query(
            "INSERT INTO delegations (id, owner_id, owner_name, delegate_id, delegate_name, rights,
               until_date, ends_at, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&row.id)
        .bind(&row.owner_id)
        .bind(&row.owner_name)
        .bind(&row.delegate_id)
        .bind(&row.delegate_name)
        .bind(&row.rights)
        .bind(&row.until_date)
        .bind(row.ends_at.map(format_instant))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, row.created_at, audit).await
    }

    /// Revokes the owner's delegation `id` (with its audit entry). Another
    /// owner's id, an unknown one or one revoked already is `NotFound`.
    pub async fn revoke_delegation(
        &self,
        owner_id: &str,
        id: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE delegations SET revoked_at = ? WHERE id = ? AND owner_id = ? AND revoked_at IS NULL",
        )
        .bind(format_instant(now))
        .bind(id)
        .bind(owner_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        commit_audited(tx, now, audit).await
    }

    /// The owner's delegations active at `now`, oldest first (at most the
    /// per-owner limit exist).
    pub async fn delegations_by_owner(
        &self,
        owner_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<DelegationRow>> {
        sqlx::query(&format!(
            "SELECT * FROM delegations WHERE owner_id = ? AND {ACTIVE} ORDER BY created_at, id"
        ))
        .bind(owner_id)
        .bind(format_instant(now))
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(row_to_delegation)
        .collect()
    }

    /// Delegations to this person active at `now`, newest first, at most `limit`.
    pub async fn delegations_to(
        &self,
        delegate_id: &str,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<DelegationRow>> {
        sqlx::query(&format!(
            "SELECT * FROM delegations WHERE delegate_id = ? AND {ACTIVE}
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(delegate_id)
        .bind(format_instant(now))
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(row_to_delegation)
        .collect()
    }

    /// The delegation `id` if it is to `delegate_id` and active at `now`.
    /// (In WAL mode a read begun after a commit sees it: a revocation
    /// answered a moment ago applies here.)
    pub async fn active_delegation(
        &self,
        id: &str,
        delegate_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<DelegationRow>> {
        sqlx::query(&format!(
            "SELECT * FROM delegations WHERE id = ? AND delegate_id = ? AND {ACTIVE}"
        ))
        .bind(id)
        .bind(delegate_id)
        .bind(format_instant(now))
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(row_to_delegation)
        .transpose()
    }

    /// The delegate's name as their e-ID gives it (shown to the owner).
    pub async fn set_delegate_name(&self, id: &str, name: &str) -> Result<()> {
        sqlx::query("UPDATE delegations SET delegate_name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Appends the audit entry of a delegate's read.
    pub async fn record_delegate_read(
        &self,
        now: OffsetDateTime,
        entry: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        append(&mut tx, now, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` reads by delegates of the owner's mail, newest
    /// first, from the audit log (revoked delegations' reads included).
    pub async fn delegate_reads(&self, owner_id: &str, limit: i64) -> Result<Vec<DelegateReadRow>> {
        sqlx::query(
            "SELECT a.at, a.detail, d.delegate_id, d.delegate_name
             FROM delegations d JOIN audit_log a ON a.subject = d.id
             WHERE d.owner_id = ? AND a.action = ?
             ORDER BY a.seq DESC LIMIT ?",
        )
        .bind(owner_id)
        .bind(READ_ACTION)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(DelegateReadRow {
                at: instant(row, "at")?,
                detail: row.try_get("detail")?,
                delegate_id: row.try_get("delegate_id")?,
                delegate_name: row.try_get("delegate_name")?,
            })
        })
        .collect()
    }
}
