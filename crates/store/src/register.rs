//! The recipient register (förmedlingsadressregister) and mailbox operators.

use crate::{Db, Result, StoreError, format_instant};
use kuvert_domain::ids::OperatorId;
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::{HashMap, HashSet};
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
    })
}

impl Db {
    /// Adds an operator or updates its address and keys.
    pub async fn upsert_operator(&self, op: &Operator, now: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO operators (id, name, delivery_url, ui_url, sealing_key, receipt_key, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, delivery_url = excluded.delivery_url,
               ui_url = excluded.ui_url, sealing_key = excluded.sealing_key,
               receipt_key = excluded.receipt_key, updated_at = excluded.updated_at",
        )
        .bind(op.id.as_str())
        .bind(&op.name)
        .bind(&op.delivery_url)
        .bind(&op.ui_url)
        .bind(&op.sealing_key)
        .bind(&op.receipt_key)
        .bind(format_instant(now))
        .execute(self.writer())
        .await?;
        Ok(())
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

    /// Sets a recipient's registration (creating the row if needed).
    pub async fn set_recipient(
        &self,
        recipient: &str,
        status: RecipientStatus,
        operator: Option<&OperatorId>,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO recipients (id, status, operator_id, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
               operator_id = excluded.operator_id, updated_at = excluded.updated_at",
        )
        .bind(recipient)
        .bind(status.as_str())
        .bind(operator.map(OperatorId::as_str))
        .bind(format_instant(now))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn recipient(&self, recipient: &str) -> Result<Option<RecipientRecord>> {
        let row = sqlx::query("SELECT status, operator_id FROM recipients WHERE id = ?")
            .bind(recipient)
            .fetch_optional(self.writer())
            .await?;
        row.map(|row| record_from_row(&row)).transpose()
    }

    /// Refuses (or, with `refuse = false`, accepts again) mail from one sender.
    pub async fn set_sender_refused(
        &self,
        recipient: &str,
        sender: &str,
        refuse: bool,
        now: OffsetDateTime,
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
        query.execute(self.writer()).await?;
        Ok(())
    }

    pub async fn refused_senders(&self, recipient: &str) -> Result<Vec<String>> {
        sqlx::query(
            "SELECT sender_id FROM refused_senders WHERE recipient_id = ? ORDER BY sender_id",
        )
        .bind(recipient)
        .fetch_all(self.writer())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0).map_err(Into::into))
        .collect()
    }

    /// Answers for many recipients at once, as seen by `sender`: two queries
    /// whatever the count (ids are bound, never spliced into the SQL).
    pub async fn reachability(
        &self,
        recipients: &[String],
        sender: &str,
    ) -> Result<HashMap<String, Reachability>> {
        let mut answers = HashMap::new();
        if recipients.is_empty() {
            return Ok(answers);
        }
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT id, status, operator_id FROM recipients WHERE id IN (");
        let mut list = query.separated(", ");
        for id in recipients {
            list.push_bind(id);
        }
        query.push(")");
        for row in query.build().fetch_all(self.reader()).await? {
            let id: String = row.try_get("id")?;
            answers.insert(
                id,
                Reachability {
                    record: record_from_row(&row)?,
                    refuses_sender: false,
                },
            );
        }
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT recipient_id FROM refused_senders WHERE sender_id = ");
        query.push_bind(sender).push(" AND recipient_id IN (");
        let mut list = query.separated(", ");
        for id in recipients {
            list.push_bind(id);
        }
        query.push(")");
        let refused: HashSet<String> = query
            .build()
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        for id in refused {
            if let Some(answer) = answers.get_mut(&id) {
                answer.refuses_sender = true;
            }
        }
        Ok(answers)
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RecipientRecord> {
    let operator: Option<String> = row.try_get("operator_id")?;
    Ok(RecipientRecord {
        status: RecipientStatus::parse(&row.try_get::<String, _>("status")?)?,
        operator: operator
            .map(|o| OperatorId::parse(&o).map_err(|_| StoreError::Corrupt("operator id".into())))
            .transpose()?,
    })
}
