//! The recipient register (förmedlingsadressregister) and mailbox operators.

use crate::audit::AuditEntry;
use crate::{Db, Result, StoreError, commit_audited, format_instant};
use kuvert_domain::ids::OperatorId;
use rusqlite::OptionalExtension as _;
use sqlx::Row;
use std::collections::HashMap;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub delivery_url: String,
    pub ui_url: String,
    /// Base64 X25519 public key content is sealed to.
    pub sealing_key: String,
    /// Base64 Ed25519 key the operator signs receipts with.
    pub receipt_key: String,
    /// The register's certificate of the fields above (JSON
    /// `OperatorCertificate`): relays use the row only when it verifies.
    pub certificate: Option<String>,
}

/// What [`Db::upsert_operator`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorChange {
    Unchanged,
    Added,
    /// Address, keys or certificate changed: audited, and the caller says
    /// so to the platform operator.
    Changed {
        previous: Box<Operator>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    Registered,
    /// An organisation whose registration awaits more signatories.
    Pending,
    Deregistered,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Pending => "pending",
            Self::Deregistered => "deregistered",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "registered" => Ok(Self::Registered),
            "pending" => Ok(Self::Pending),
            "deregistered" => Ok(Self::Deregistered),
            other => Err(StoreError::Corrupt(format!("recipient status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecipientRecord {
    pub status: RecipientStatus,
    pub operator: Option<OperatorId>,
}

/// What the register knows of one recipient, as seen by one sender.
#[derive(Debug, Clone)]
pub struct Reachability {
    pub record: RecipientRecord,
    pub refuses_sender: bool,
}

fn operator_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Operator> {
    let id: String = row.try_get("id")?;
    Ok(Operator {
        id: OperatorId::parse(&id).map_err(|_| StoreError::Corrupt("operator id".into()))?,
        name: row.try_get("name")?,
        delivery_url: row.try_get("delivery_url")?,
        ui_url: row.try_get("ui_url")?,
        sealing_key: row.try_get("sealing_key")?,
        receipt_key: row.try_get("receipt_key")?,
        certificate: row.try_get("certificate")?,
    })
}

/// One row of `published_keys`: a key an owner uses or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// `receipt`, `sealing`, `relay_seal` or `audit_checkpoint`.
    pub purpose: String,
    pub key_id: String,
    /// Base64 of the raw public key.
    pub public_key: String,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
}

/// A key to publish: what it is for and its public half.
#[derive(Debug, Clone, Copy)]
pub struct KeyToPublish<'a> {
    pub purpose: &'a str,
    pub key_id: &'a str,
    pub public_key: &'a str,
}

/// The owner of an operator's keys in `published_keys`.
pub fn operator_key_owner(id: &OperatorId) -> String {
    format!("operator:{}", id.as_str())
}

/// The key id of a base64 Ed25519 key, or what is wrong with it.
fn key_id_of(base64: &str) -> String {
    kuvert_crypto::signing::PublicKey::from_base64(base64)
        .map_or_else(|_| "invalid".to_owned(), |k| k.key_id())
}

/// The owner of the installation's own keys (relay seal, audit checkpoints).
pub const INSTALLATION_KEY_OWNER: &str = "installation";

/// Makes `key` the current key of its purpose for `owner`: the key that
/// was current until now stays listed, valid until `now`. Publishing the
/// current key again changes nothing.
async fn publish_key(
    conn: &mut sqlx::SqliteConnection,
    owner: &str,
    key: &KeyToPublish<'_>,
    now: &str,
) -> Result<()> {
    let current: Option<String> = sqlx::query_scalar(
        "SELECT key_id FROM published_keys WHERE owner = ? AND purpose = ? AND valid_until IS NULL",
    )
    .bind(owner)
    .bind(key.purpose)
    .fetch_optional(&mut *conn)
    .await?;
    if current.as_deref() == Some(key.key_id) {
        return Ok(());
    }
    sqlx::query(
        "UPDATE published_keys SET valid_until = ? WHERE owner = ? AND purpose = ? AND valid_until IS NULL",
    )
    .bind(now)
    .bind(owner)
    .bind(key.purpose)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO published_keys (owner, purpose, key_id, public_key, valid_from) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(owner)
    .bind(key.purpose)
    .bind(key.key_id)
    .bind(key.public_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Db {
    /// Publishes keys of `owner` (see [`publish_key`]), in one transaction.
    pub async fn publish_keys(
        &self,
        owner: &str,
        keys: &[KeyToPublish<'_>],
        now: OffsetDateTime,
    ) -> Result<()> {
        let at = format_instant(now);
        let mut tx = self.writer().begin().await?;
        for key in keys {
            publish_key(&mut tx, owner, key, &at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every key `owner` uses or used, newest first within each purpose.
    pub async fn published_keys(&self, owner: &str) -> Result<Vec<KeyRecord>> {
        sqlx::query(
            "SELECT purpose, key_id, public_key, valid_from, valid_until FROM published_keys
             WHERE owner = ? ORDER BY purpose, valid_from DESC",
        )
        .bind(owner)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(KeyRecord {
                purpose: row.try_get("purpose")?,
                key_id: row.try_get("key_id")?,
                public_key: row.try_get("public_key")?,
                valid_from: crate::instant(row, "valid_from")?,
                valid_until: crate::opt_instant(row, "valid_until")?,
            })
        })
        .collect()
    }

    /// Adds an operator or updates its address, keys and certificate; the
    /// keys are published (with the earlier ones kept) and the change is
    /// audited, with the key ids before and after, in the same transaction.
    /// The same values again change nothing.
    pub async fn upsert_operator(
        &self,
        op: &Operator,
        now: OffsetDateTime,
    ) -> Result<OperatorChange> {
        let receipt_key_id = kuvert_crypto::signing::PublicKey::from_base64(&op.receipt_key)
            .map_err(|_| StoreError::Corrupt("operator receipt key".into()))?
            .key_id();
        let sealing_key_id = kuvert_crypto::sealing::SealingPublicKey::from_base64(&op.sealing_key)
            .map_err(|_| StoreError::Corrupt("operator sealing key".into()))?
            .key_id();
        let keys = [
            KeyToPublish {
                purpose: "receipt",
                key_id: &receipt_key_id,
                public_key: &op.receipt_key,
            },
            KeyToPublish {
                purpose: "sealing",
                key_id: &sealing_key_id,
                public_key: &op.sealing_key,
            },
        ];
        let mut tx = self.writer().begin().await?;
        let previous = sqlx::query("SELECT * FROM operators WHERE id = ?")
            .bind(op.id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| operator_from_row(&row))
            .transpose()?;
        let change = match previous {
            Some(previous) if previous == *op => return Ok(OperatorChange::Unchanged),
            Some(previous) => OperatorChange::Changed {
                previous: Box::new(previous),
            },
            None => OperatorChange::Added,
        };
        sqlx::query(
            "INSERT INTO operators (id, name, delivery_url, ui_url, sealing_key, receipt_key, certificate, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, delivery_url = excluded.delivery_url,
               ui_url = excluded.ui_url, sealing_key = excluded.sealing_key,
               receipt_key = excluded.receipt_key, certificate = excluded.certificate,
               updated_at = excluded.updated_at",
        )
        .bind(op.id.as_str())
        .bind(&op.name)
        .bind(&op.delivery_url)
        .bind(&op.ui_url)
        .bind(&op.sealing_key)
        .bind(&op.receipt_key)
        .bind(&op.certificate)
        .bind(format_instant(now))
        .execute(&mut *tx)
        .await?;
        let owner = operator_key_owner(&op.id);
        for key in &keys {
            publish_key(&mut tx, &owner, key, &format_instant(now)).await?;
        }
        let (action, before) = match &change {
            OperatorChange::Changed { previous } => (
                "operator.changed",
                serde_json::json!({
                    "delivery_url": previous.delivery_url,
                    "receipt_key_id": key_id_of(&previous.receipt_key),
                    "sealing_key": previous.sealing_key,
                }),
            ),
            _ => ("operator.registered", serde_json::Value::Null),
        };
        let detail = serde_json::json!({
            "delivery_url": op.delivery_url,
            "receipt_key_id": receipt_key_id,
            "sealing_key_id": sealing_key_id,
            "before": before,
        })
        .to_string();
        let audit = AuditEntry {
            tenant: None,
            actor: "register",
            action,
            subject: op.id.as_str(),
            detail: &detail,
        };
        commit_audited(tx, now, &audit).await?;
        self.direct.register_changed();
        Ok(change)
    }

    /// The audited registrations and changes of an operator, oldest first:
    /// `(at, action, detail)`.
    pub async fn operator_changes(&self, id: &OperatorId) -> Result<Vec<(String, String, String)>> {
        sqlx::query(
            "SELECT at, action, detail FROM audit_log
             WHERE subject = ? AND action IN ('operator.registered', 'operator.changed') ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
    }

    pub async fn operator(&self, id: &OperatorId) -> Result<Option<Operator>> {
        let row = sqlx::query("SELECT * FROM operators WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| operator_from_row(&row)).transpose()
    }

    pub async fn operators(&self) -> Result<Vec<Operator>> {
        sqlx::query("SELECT * FROM operators ORDER BY id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    /// Sets a recipient's registration (creating the row if needed), with
    /// its audit entry in the same transaction.
    pub async fn set_recipient(
        &self,
        recipient: &str,
        status: RecipientStatus,
        operator: Option<&OperatorId>,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO recipients (id, status, operator_id, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
               operator_id = excluded.operator_id, updated_at = excluded.updated_at",
        )
        .bind(recipient)
        .bind(status.as_str())
        .bind(operator.map(OperatorId::as_str))
        .bind(format_instant(now))
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, now, audit).await?;
        self.direct.register_changed();
        Ok(())
    }

    pub async fn recipient(&self, recipient: &str) -> Result<Option<RecipientRecord>> {
        let row = sqlx::query("SELECT status, operator_id FROM recipients WHERE id = ?")
            .bind(recipient)
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| record_from_row(&row)).transpose()
    }

    /// Refuses (or, with `refuse = false`, accepts again) mail from one
    /// sender, with its audit entry in the same transaction.
    /// Refuses (or accepts again) a sender for a recipient. A recipient
    /// refuses at most `max_refused` senders: counted in the transaction
    /// that adds, so two requests at once cannot pass the limit.
    pub async fn set_sender_refused(
        &self,
        recipient: &str,
        sender: &str,
        refuse: bool,
        max_refused: i64,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let query = if refuse {
            sqlx::query(
                "INSERT INTO refused_senders (recipient_id, sender_id, created_at) VALUES (?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )
            .bind(recipient)
            .bind(sender)
            .bind(format_instant(now))
        } else {
            sqlx::query("DELETE FROM refused_senders WHERE recipient_id = ? AND sender_id = ?")
                .bind(recipient)
                .bind(sender)
        };
        let mut tx = self.writer().begin().await?;
        if refuse {
            let (count, already): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(sender_id = ?), 0) FROM refused_senders WHERE recipient_id = ?",
            )
            .bind(sender)
            .bind(recipient)
            .fetch_one(&mut *tx)
            .await?;
            if already == 0 && count >= max_refused {
                return Err(StoreError::ListFull { limit: max_refused });
            }
        }
        query.execute(&mut *tx).await?;
        commit_audited(tx, now, audit).await?;
        self.direct.register_changed();
        Ok(())
    }

    pub async fn refused_senders(&self, recipient: &str) -> Result<Vec<String>> {
        sqlx::query(
            "SELECT sender_id FROM refused_senders WHERE recipient_id = ? ORDER BY sender_id",
        )
        .bind(recipient)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0).map_err(Into::into))
        .collect()
    }

    /// Answers for many recipients at once, as seen by `sender`. The ids are
    /// looked up in sorted order (neighbouring ids share index pages), in
    /// parallel halves on blocking threads, one prepared statement per id
    /// (ids are bound, never spliced into the SQL).
    pub async fn reachability(
        &self,
        recipients: &[String],
        sender: &str,
    ) -> Result<HashMap<String, Reachability>> {
        if recipients.is_empty() {
            return Ok(HashMap::new());
        }
        let mut ids = recipients.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let rows = if ids.len() >= PARALLEL_LOOKUP_FROM {
            let second = ids.split_off(ids.len() / 2);
            let (mut first, second) = tokio::join!(
                self.look_up_sorted(ids, sender),
                self.look_up_sorted(second, sender)
            );
            if let Ok(rows) = &mut first {
                rows.extend(second?);
            }
            first?
        } else {
            self.look_up_sorted(ids, sender).await?
        };
        let mut answers = HashMap::with_capacity(rows.len());
        for (id, status, operator, refuses_sender) in rows {
            answers.insert(
                id,
                Reachability {
                    record: record_from_columns(&status, operator)?,
                    refuses_sender,
                },
            );
        }
        Ok(answers)
    }

    /// (recipient id, status, operator, refuses the sender) for each id
    /// that is in the register.
    async fn look_up_sorted(
        &self,
        ids: Vec<String>,
        sender: &str,
    ) -> Result<Vec<(String, String, Option<String>, bool)>> {
        let sender = sender.to_owned();
        self.direct
            .read_register(move |connection| {
                let mut find = connection.prepare_cached(
                    "SELECT r.status, r.operator_id,
                            EXISTS (SELECT 1 FROM refused_senders f
                                    WHERE f.recipient_id = r.id AND f.sender_id = ?2)
                     FROM recipients r WHERE r.id = ?1",
                )?;
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    let found = find
                        .query_row((&id, &sender), |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, Option<String>>(1)?,
                                row.get::<_, bool>(2)?,
                            ))
                        })
                        .optional()?;
                    if let Some((status, operator, refuses_sender)) = found {
                        rows.push((id, status, operator, refuses_sender));
                    }
                }
                Ok(rows)
            })
            .await
    }
}

/// Lookups of at least this many ids are split over two threads.
const PARALLEL_LOOKUP_FROM: usize = 200;

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RecipientRecord> {
    record_from_columns(
        &row.try_get::<String, _>("status")?,
        row.try_get("operator_id")?,
    )
}

fn record_from_columns(status: &str, operator: Option<String>) -> Result<RecipientRecord> {
    Ok(RecipientRecord {
        status: RecipientStatus::parse(status)?,
        operator: operator
            .map(|o| OperatorId::parse(&o).map_err(|_| StoreError::Corrupt("operator id".into())))
            .transpose()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Schema;

    const ANNA: &str = "198001012387";
    const SENDER: &str = "162120000019";

    async fn status(db: &Db) -> Option<RecipientStatus> {
        db.reachability(&[ANNA.to_owned()], SENDER)
            .await
            .unwrap()
            .get(ANNA)
            .map(|r| r.record.status)
    }

    /// A recipient's refused senders are bounded in the transaction that
    /// adds one: the next new one is refused, refusing one again is not.
    #[tokio::test]
    async fn the_refused_senders_list_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), Schema::Core)
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        db.set_recipient(
            ANNA,
            RecipientStatus::Registered,
            None,
            now,
            &crate::audit::TEST_ENTRY,
        )
        .await
        .unwrap();
        let refuse = |sender: &'static str| {
            let db = db.clone();
            async move {
                db.set_sender_refused(ANNA, sender, true, 2, now, &crate::audit::TEST_ENTRY)
                    .await
            }
        };
        refuse("162120000019").await.unwrap();
        refuse("162120000027").await.unwrap();
        assert!(matches!(
            refuse("162120000035").await,
            Err(StoreError::ListFull { limit: 2 })
        ));
        refuse("162120000019").await.unwrap();
        assert_eq!(db.refused_senders(ANNA).await.unwrap().len(), 2);
    }

    /// Register reads keep a snapshot (see `direct`): a change made through
    /// this `Db` is seen by the very next read; a change made behind its
    /// back (another process) within `SNAPSHOT_MAX_AGE`.
    #[tokio::test]
    async fn register_reads_see_changes_made_here_at_once_and_elsewhere_within_the_snapshot_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kuvert.db");
        let db = Db::open(&path, Schema::Core).await.unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(status(&db).await, None);
        db.set_recipient(
            ANNA,
            RecipientStatus::Registered,
            None,
            now,
            &crate::audit::TEST_ENTRY,
        )
        .await
        .unwrap();
        assert_eq!(status(&db).await, Some(RecipientStatus::Registered));
        db.set_recipient(
            ANNA,
            RecipientStatus::Pending,
            None,
            now,
            &crate::audit::TEST_ENTRY,
        )
        .await
        .unwrap();
        assert_eq!(status(&db).await, Some(RecipientStatus::Pending));
        db.set_sender_refused(ANNA, SENDER, true, 1000, now, &crate::audit::TEST_ENTRY)
            .await
            .unwrap();
        let refused = db.reachability(&[ANNA.to_owned()], SENDER).await.unwrap();
        assert!(refused.get(ANNA).unwrap().refuses_sender);

        // Another process (here: another connection) deregisters Anna.
        let other = Db::open(&path, Schema::Core).await.unwrap();
        other
            .set_recipient(
                ANNA,
                RecipientStatus::Deregistered,
                None,
                now,
                &crate::audit::TEST_ENTRY,
            )
            .await
            .unwrap();
        tokio::time::sleep(crate::direct::SNAPSHOT_MAX_AGE + std::time::Duration::from_millis(200))
            .await;
        assert_eq!(status(&db).await, Some(RecipientStatus::Deregistered));
        other.close().await;
        db.close().await;
    }
}
