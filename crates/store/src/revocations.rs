//! The mailbox operator's copy of the register's sender-key revocations:
//! statements the mailbox checked against a register key it trusts before
//! storing them here (the store does not check signatures).

use crate::{Db, Result, format_instant};
use time::OffsetDateTime;

/// One revocation as the mailbox learned it.
#[derive(Debug, Clone)]
pub struct LearnedRevocation<'a> {
    pub key_id: &'a str,
    pub sender_id: &'a str,
    pub revoked_at: &'a str,
    /// The signed statement (JSON), kept as received.
    pub statement: &'a str,
}

impl Db {
    /// Stores revocations not known yet, each audited; returns how many
    /// were new.
    pub async fn learn_revocations(
        &self,
        revocations: &[LearnedRevocation<'_>],
        now: OffsetDateTime,
    ) -> Result<u64> {
        let mut tx = self.writer().begin().await?;
        let mut added = 0;
        for r in revocations {
            let new = sqlx::query(
                "INSERT INTO sender_key_revocations (key_id, sender_id, revoked_at, statement, learned_at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(r.key_id)
            .bind(r.sender_id)
            .bind(r.revoked_at)
            .bind(r.statement)
            .bind(format_instant(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new > 0 {
                let detail =
                    serde_json::json!({ "sender_id": r.sender_id, "revoked_at": r.revoked_at })
                        .to_string();
                let entry = crate::audit::AuditEntry {
                    tenant: None,
                    actor: "register",
                    action: "sender_key.revocation_learned",
                    subject: r.key_id,
                    detail: &detail,
                };
                crate::audit::append(&mut tx, now, &entry).await?;
            }
            added += new;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The key ids of every revoked sender key this mailbox knows of.
    pub async fn revoked_sender_keys(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT key_id FROM sender_key_revocations")
                .fetch_all(self.reader())
                .await?,
        )
    }
}
