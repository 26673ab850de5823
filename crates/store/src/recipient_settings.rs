//! What the settings pages need from the stores: a recipient's notification
//! contacts (mailbox database, ciphertext only: see
//! `kuvert_mailbox::contacts`), a walk over all of a recipient's messages
//! for the export (mailbox database, page by page, oldest first), and the
//! register's list of senders a recipient may refuse (core database).

use crate::audit::{AuditEntry, append};
use crate::{Db, Result, StoreError, format_instant};
use kuvert_domain::ids::MailboxMessageId;
use sqlx::Row;
use time::OffsetDateTime;

/// A recipient's stored contacts: the data key wrapped under the KEK and
/// the encrypted JSON, both bound to the recipient id.
#[derive(Debug, Clone)]
pub struct ContactsRow {
    pub wrapped_key: Vec<u8>,
    pub contacts: Vec<u8>,
}

/// Where a walk over a recipient's messages stands: the last message
/// given, by (delivery time as stored, id), the order of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCursor {
    pub delivered_at: String,
    pub id: MailboxMessageId,
}

/// A sender as the register lists it to a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSender {
    /// Canonical organisation number.
    pub id: String,
    pub name: String,
}

impl Db {
    pub async fn notification_contacts(&self, recipient: &str) -> Result<Option<ContactsRow>> {
        let row = sqlx::query(
            "SELECT wrapped_key, contacts FROM notification_contacts WHERE recipient_id = ?",
        )
        .bind(recipient)
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(ContactsRow {
                wrapped_key: row.try_get("wrapped_key")?,
                contacts: row.try_get("contacts")?,
            })
        })
        .transpose()
    }

    /// Stores (`Some`) or erases (`None`) a recipient's contacts, with an
    /// audit entry in the same transaction.
    pub async fn set_notification_contacts(
        &self,
        recipient: &str,
        contacts: Option<&ContactsRow>,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        match contacts {
            Some(row) => {
                sqlx::query(
                    "INSERT INTO notification_contacts (recipient_id, wrapped_key, contacts, updated_at)
                     VALUES (?, ?, ?, ?)
                     ON CONFLICT (recipient_id) DO UPDATE SET wrapped_key = excluded.wrapped_key,
                       contacts = excluded.contacts, updated_at = excluded.updated_at",
                )
                .bind(recipient)
                .bind(&row.wrapped_key)
                .bind(&row.contacts)
                .bind(format_instant(now))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM notification_contacts WHERE recipient_id = ?")
                    .bind(recipient)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        append(&mut tx, now, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` of a recipient's messages (inbox and archive, not
    /// deleted) after `after`, oldest first: ids only, so a page costs no
    /// content in memory; each message is read on its own afterwards.
    pub async fn mailbox_message_walk(
        &self,
        recipient: &str,
        after: Option<&MessageCursor>,
        limit: i64,
    ) -> Result<Vec<MessageCursor>> {
        let (at, id) = match after {
            Some(c) => (c.delivered_at.clone(), c.id.to_string()),
            None => (String::new(), String::new()),
        };
        sqlx::query(
            "SELECT id, delivered_at FROM mailbox_messages
             WHERE recipient_id = ? AND deleted_at IS NULL AND (delivered_at, id) > (?, ?)
             ORDER BY delivered_at, id LIMIT ?",
        )
        .bind(recipient)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(MessageCursor {
                delivered_at: row.try_get("delivered_at")?,
                id: MailboxMessageId::parse(&id)
                    .map_err(|_| StoreError::Corrupt("message id".into()))?,
            })
        })
        .collect()
    }

    /// The register's senders that are not removed, by name, at most
    /// `limit` (a recipient may refuse any of them).
    pub async fn listed_senders(&self, limit: i64) -> Result<Vec<ListedSender>> {
        sqlx::query(
            "SELECT id, name FROM senders WHERE removed_at IS NULL ORDER BY name, id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(ListedSender {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .collect()
    }
}
