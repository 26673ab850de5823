//! "Download all my mail": what the export reads, through the same
//! recipient-keyed queries as [`crate::reading`] (another recipient's
//! message is never found). The walk gives ids only, a page at a time, and
//! each message is then read and decrypted on its own, so an export holds
//! one message in memory however large the mailbox is. Nothing is marked
//! read: an export is not a reading.

use crate::accept::{Mailbox, MailboxError};
use crate::at_rest::decrypt_message;
use crate::reading::AttachmentFile;
use base64::Engine as _;
use kuvert_domain::content::sanitize_html;
use kuvert_domain::delivery::{BodyContentType, Metadata, OfficialMatter, SupportInfo};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_store::audit::AuditEntry;
use kuvert_store::mailbox::Folder;
use kuvert_store::recipient_settings::MessageCursor;

/// Message ids per page of the walk.
pub const WALK_PAGE: i64 = 200;

/// One message as the export writes it: everything the message view shows,
/// the attachments' bytes and the delivery's signed receipt (no `Debug`:
/// it is all content).
pub struct ExportedMessage {
    pub id: MailboxMessageId,
    pub delivery_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub subject: String,
    /// The legal moment of delivery.
    pub delivered_at: String,
    pub received_at: String,
    pub read: bool,
    pub archived: bool,
    pub content_type: BodyContentType,
    /// For `text/html`, as sanitised (as the message view shows it).
    pub body: String,
    pub support_info: SupportInfo,
    pub official_matter: Option<OfficialMatter>,
    pub metadata: Vec<Metadata>,
    pub language: String,
    pub reference: Option<String>,
    pub attachments: Vec<AttachmentFile>,
    /// The mailbox's signed receipt of the delivery (JSON, as given to the
    /// relay), if the mailbox has it.
    pub receipt: Option<String>,
}

impl Mailbox {
    /// The next page of the recipient's messages (inbox and archive),
    /// oldest first, after `after`.
    pub async fn walk_messages(
        &self,
        recipient: &RecipientId,
        after: Option<&MessageCursor>,
        limit: i64,
    ) -> Result<Vec<MessageCursor>, MailboxError> {
        Ok(self
            .db
            .mailbox_message_walk(recipient.as_str(), after, limit.clamp(1, WALK_PAGE))
            .await?)
    }

    /// How many messages the recipient has (inbox and archive).
    pub async fn message_count(&self, recipient: &RecipientId) -> Result<i64, MailboxError> {
        let (inbox, _) = self
            .db
            .mailbox_counts(recipient.as_str(), Folder::Inbox)
            .await?;
        let (archive, _) = self
            .db
            .mailbox_counts(recipient.as_str(), Folder::Archive)
            .await?;
        Ok(inbox + archive)
    }

    /// One of the recipient's messages, decrypted, with its attachments and
    /// receipt; [`MailboxError::NotFound`] when it is not theirs (or gone).
    pub async fn export_message(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<ExportedMessage, MailboxError> {
        let row = self
            .db
            .mailbox_message(recipient.as_str(), id)
            .await?
            .ok_or(MailboxError::NotFound)?;
        let (summary, content) = decrypt_message(&self.kek, &row)?;
        let receipt = self
            .db
            .mailbox_receipts(&[row.delivery_id.as_str()])
            .await?
            .remove(&row.delivery_id);
        let message = content.message;
        let body = match message.body.content_type {
            BodyContentType::TextHtml if !content.body_sanitised => {
                sanitize_html(&message.body.body)
            }
            _ => message.body.body,
        };
        let attachments = message
            .attachments
            .into_iter()
            .map(|a| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&a.body)
                    .map_err(|_| MailboxError::Decrypt)?;
                Ok(AttachmentFile {
                    filename: a.filename,
                    content_type: a.content_type,
                    bytes,
                })
            })
            .collect::<Result<_, MailboxError>>()?;
        Ok(ExportedMessage {
            id: row.id,
            delivery_id: row.delivery_id,
            sender_id: summary.sender_id,
            sender_name: summary.sender_name,
            subject: summary.subject,
            delivered_at: summary.delivered_at,
            received_at: summary.received_at,
            read: row.read_at.is_some(),
            archived: row.archived_at.is_some(),
            content_type: message.body.content_type,
            body,
            support_info: message.header.support_info,
            official_matter: message.header.official_matter,
            metadata: message.header.metadata,
            language: message.header.language,
            reference: content.reference,
            attachments,
            receipt,
        })
    }

    /// The audit entry of an export, written before its first byte goes
    /// out (`subject`: a pseudonym of the recipient).
    pub async fn record_export(&self, subject: &str, messages: i64) -> Result<(), MailboxError> {
        let detail = serde_json::json!({ "messages": messages }).to_string();
        self.db
            .append_audit(
                self.clock.now(),
                &AuditEntry {
                    tenant: None,
                    actor: "recipient",
                    action: "mailbox.exported",
                    subject,
                    detail: &detail,
                },
            )
            .await?;
        Ok(())
    }
}
