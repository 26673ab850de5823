//! Web sessions and pending logins (e-ID login, decision 0018). Rows are
//! keyed by the SHA-256 of the cookie's random id, never the id itself.
//! Expiry is decided by the caller (the web crate knows the limits); the
//! store reads, touches and deletes.

use crate::audit::AuditEntry;
use crate::{Db, Result, commit_audited};
use time::OffsetDateTime;

/// A logged-in person, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRow {
    /// The canonical 12 digits.
    pub recipient: String,
    pub given_name: String,
    pub family_name: String,
    pub loa: String,
    pub csrf_token: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// A login under way: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoginRow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl Db {
    /// Stores a new session, with its audit entry (a login).
    pub async fn insert_web_session(
        &self,
        id_hash: &[u8; 32],
        row: &WebSessionRow,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, recipient, given_name, family_name, loa, csrf_token, created_at, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id_hash[..])
        .bind(&row.recipient)
        .bind(&row.given_name)
        .bind(&row.family_name)
        .bind(&row.loa)
        .bind(&row.csrf_token)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, now, audit).await
    }

    /// The session with this id hash, if there is one (expired or not).
    pub async fn web_session(&self, id_hash: &[u8; 32]) -> Result<Option<WebSessionRow>> {
        let row: Option<(String, String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT recipient, given_name, family_name, loa, csrf_token, created_at, last_seen_at
             FROM web_sessions WHERE id_hash = ?",
        )
        .bind(&id_hash[..])
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(
            |(recipient, given_name, family_name, loa, csrf_token, created_at, last_seen_at)| {
                WebSessionRow {
                    recipient,
                    given_name,
                    family_name,
                    loa,
                    csrf_token,
                    created_at,
                    last_seen_at,
                }
            },
        ))
    }

    /// Moves the session's idle clock to `now`.
    pub async fn touch_web_session(&self, id_hash: &[u8; 32], now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE web_sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?",
        )
        .bind(now)
        .bind(&id_hash[..])
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Ends a session at its person's request, with its audit entry (a
    /// logout). Returns whether it existed; nothing is logged if not.
    pub async fn end_web_session(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?")
            .bind(&id_hash[..])
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        commit_audited(tx, now, audit).await?;
        Ok(true)
    }

    /// Removes a session found expired. Returns whether it existed.
    pub async fn delete_web_session(&self, id_hash: &[u8; 32]) -> Result<bool> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?")
            .bind(&id_hash[..])
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes sessions idle since before `idle_before` or created before
    /// `created_before`, and logins started before `pending_before`.
    pub async fn prune_web_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
        pending_before: i64,
    ) -> Result<u64> {
        let sessions =
            sqlx::query("DELETE FROM web_sessions WHERE last_seen_at < ? OR created_at < ?")
                .bind(idle_before)
                .bind(created_before)
                .execute(self.writer())
                .await?;
        let pending = sqlx::query("DELETE FROM pending_logins WHERE created_at < ?")
            .bind(pending_before)
            .execute(self.writer())
            .await?;
        Ok(sessions.rows_affected() + pending.rows_affected())
    }

    /// Logins under way (expired ones included until pruned).
    pub async fn pending_logins(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM pending_logins")
            .fetch_one(self.reader())
            .await?)
    }

    pub async fn insert_pending_login(
        &self,
        id_hash: &[u8; 32],
        row: &PendingLoginRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pending_logins (id_hash, state, nonce, pkce_verifier, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&id_hash[..])
        .bind(&row.state)
        .bind(&row.nonce)
        .bind(&row.pkce_verifier)
        .bind(row.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Takes a pending login: it is deleted in the same statement, so a
    /// second callback with the same cookie finds nothing (single use).
    pub async fn take_pending_login(&self, id_hash: &[u8; 32]) -> Result<Option<PendingLoginRow>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "DELETE FROM pending_logins WHERE id_hash = ?
             RETURNING state, nonce, pkce_verifier, created_at",
        )
        .bind(&id_hash[..])
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(
            |(state, nonce, pkce_verifier, created_at)| PendingLoginRow {
                state,
                nonce,
                pkce_verifier,
                created_at,
            },
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Schema;

    #[tokio::test]
    async fn a_pending_login_is_taken_once() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("core.db"), Schema::Core).await?;
        let row = PendingLoginRow {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            created_at: 10,
        };
        db.insert_pending_login(&[1; 32], &row).await?;
        assert_eq!(db.take_pending_login(&[1; 32]).await?, Some(row));
        assert_eq!(db.take_pending_login(&[1; 32]).await?, None);
        Ok(())
    }
}
