//! A recipient's notification contacts, kept by the mailbox operator (it
//! is the one that notifies: "you have new mail", never the content).
//!
//! Encrypted at rest like the messages (decision 0012): a data key of its
//! own, wrapped under the KEK with the recipient id as context, and the
//! contacts as JSON under it with the same binding as associated data. A
//! row copied to another recipient does not decrypt, and the database file
//! holds no address or number.

use crate::accept::{Mailbox, MailboxError};
use crate::at_rest::AtRestError;
use kuvert_domain::contact::NotificationContacts;
use kuvert_domain::identity::RecipientId;
use kuvert_store::audit::AuditEntry;
use kuvert_store::recipient_settings::ContactsRow;

/// First element of the binding: the scheme and its version.
pub const CONTACTS_BINDING_V1: &str = "kuvert-contacts-v1";

fn key_context(recipient: &RecipientId) -> Vec<u8> {
    serde_json::json!([CONTACTS_BINDING_V1, recipient.as_str()])
        .to_string()
        .into_bytes()
}

fn aad(recipient: &RecipientId) -> Vec<u8> {
    serde_json::json!([CONTACTS_BINDING_V1, recipient.as_str(), "contacts"])
        .to_string()
        .into_bytes()
}

fn tampered() -> MailboxError {
    tracing::error!("stored notification contacts do not decrypt with their row");
    MailboxError::AtRest(AtRestError::Tampered {
        message_id: "notification_contacts".to_owned(),
    })
}

impl Mailbox {
    /// The recipient's contacts (both absent when none are stored).
    pub async fn notification_contacts(
        &self,
        recipient: &RecipientId,
    ) -> Result<NotificationContacts, MailboxError> {
        let Some(row) = self.db.notification_contacts(recipient.as_str()).await? else {
            return Ok(NotificationContacts::default());
        };
        let key = self
            .kek
            .unwrap_data_key(&key_context(recipient), &row.wrapped_key)
            .map_err(|_| tampered())?;
        let plain = key
            .decrypt(&aad(recipient), &row.contacts)
            .map_err(|_| tampered())?;
        serde_json::from_slice(&plain).map_err(|_| tampered())
    }

    /// Replaces the recipient's contacts; empty contacts erase the row.
    /// Audited with `subject` (a pseudonym of the recipient, never the
    /// identity number) and which of the two are set, not their values.
    pub async fn set_notification_contacts(
        &self,
        recipient: &RecipientId,
        contacts: &NotificationContacts,
        subject: &str,
    ) -> Result<(), MailboxError> {
        let row = if contacts.is_empty() {
            None
        } else {
            let (key, wrapped_key) = self
                .kek
                .new_data_key(&key_context(recipient))
                .map_err(|_| AtRestError::Encrypt)?;
            let json = serde_json::to_vec(contacts).map_err(|_| AtRestError::Encrypt)?;
            let sealed = key
                .encrypt(&aad(recipient), &json)
                .map_err(|_| AtRestError::Encrypt)?;
            Some(ContactsRow {
                wrapped_key,
                contacts: sealed,
            })
        };
        let detail = serde_json::json!({
            "email": contacts.email.is_some(),
            "phone": contacts.phone.is_some(),
        })
        .to_string();
        self.db
            .set_notification_contacts(
                recipient.as_str(),
                row.as_ref(),
                self.clock.now(),
                &AuditEntry {
                    tenant: None,
                    actor: "recipient",
                    action: "contacts.changed",
                    subject,
                    detail: &detail,
                },
            )
            .await?;
        Ok(())
    }
}
