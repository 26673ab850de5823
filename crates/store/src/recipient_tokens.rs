//! Revoked recipient tokens, in the database of the role that checks them
//! (the mailbox for mail tokens, the core for registration tokens): a token
//! is a signed claim, so revoking one is a row its checker reads.

use crate::audit::AuditEntry;
use crate::{Db, Result, commit_audited};
use kuvert_domain::clock::format_instant;
use time::OffsetDateTime;

impl Db {
    /// Records `token_id` as revoked from `now` on; `valid_until` is the
    /// latest moment a token with that id could still be valid (after it
    /// the row may be pruned). Revoking twice changes nothing. Returns
    /// whether the id was new.
    pub async fn revoke_recipient_token(
        &self,
        token_id: &str,
        now: OffsetDateTime,
        valid_until: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_recipient_tokens (token_id, revoked_at, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (token_id) DO NOTHING",
        )
        .bind(token_id)
        .bind(format_instant(now))
        .bind(format_instant(valid_until))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        commit_audited(tx, now, audit).await?;
        Ok(true)
    }

    /// Whether a recipient token's id is revoked (one indexed read per
    /// request, so a revocation applies to the next one).
    pub async fn recipient_token_revoked(&self, token_id: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM revoked_recipient_tokens WHERE token_id = ?")
                .bind(token_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(found.is_some())
    }
}
