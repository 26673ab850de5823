//! What a recipient sees: their own messages only. Every query is keyed by
//! the authenticated recipient's id, so another recipient's message id
//! answers exactly like an id that does not exist.

use crate::accept::{Mailbox, MailboxError};
use crate::at_rest::{decrypt_content, decrypt_message, decrypt_summary};
use base64::Engine as _;
use kuvert_domain::clock::format_instant;
use kuvert_domain::content::sanitize_html;
use kuvert_domain::delivery::{BodyContentType, Metadata, OfficialMatter, SupportInfo};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_store::mailbox::{Folder, StoredMessage};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSummary {
    pub id: MailboxMessageId,
    pub sender_id: String,
    pub sender_name: String,
    pub subject: String,
    /// The legal moment of delivery.
    pub delivered_at: String,
    /// When the relay sealed the delivery.
    pub received_at: String,
    pub read: bool,
    pub archived: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    pub total: i64,
    pub unread: i64,
    pub page: i64,
    pub page_size: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentInfo {
    pub index: usize,
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    pub checksum: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: MailboxMessageId,
    pub delivery_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub subject: String,
    /// The legal moment of delivery.
    pub delivered_at: String,
    /// When the relay sealed the delivery.
    pub received_at: String,
    pub read_at: Option<String>,
    pub archived: bool,
    pub content_type: BodyContentType,
    /// For `text/html`, as sanitised when the mailbox accepted it (the
    /// intake also refuses HTML the sanitiser would change).
    pub body: String,
    pub support_info: SupportInfo,
    pub official_matter: Option<OfficialMatter>,
    pub metadata: Vec<Metadata>,
    pub language: String,
    pub reference: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
}

pub struct AttachmentFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Mailbox {
    pub async fn list(
        &self,
        recipient: &RecipientId,
        folder: Folder,
        page: i64,
        page_size: i64,
    ) -> Result<MessagePage, MailboxError> {
        let page = page.max(1);
        let page_size = page_size.clamp(1, 100);
        // A huge `page` must not overflow (a panic in debug builds, a
        // wrapped offset in release): past the end is simply empty.
        let offset = (page - 1).saturating_mul(page_size);
        let rows = self
            .db
            .mailbox_page(recipient.as_str(), folder, offset, page_size)
            .await?;
        let (total, unread) = self.db.mailbox_counts(recipient.as_str(), folder).await?;
        // What is shown comes from the ciphertext; a row that does not
        // decrypt with its own fields fails the whole answer (never skipped).
        let messages = rows
            .iter()
            .map(|row| {
                let summary = decrypt_summary(&self.kek, row)?;
                Ok(MessageSummary {
                    id: row.id,
                    sender_id: summary.sender_id,
                    sender_name: summary.sender_name,
                    subject: summary.subject,
                    delivered_at: summary.delivered_at,
                    received_at: summary.received_at,
                    read: row.read_at.is_some(),
                    archived: row.archived_at.is_some(),
                })
            })
            .collect::<Result<_, MailboxError>>()?;
        Ok(MessagePage {
            messages,
            total,
            unread,
            page,
            page_size,
        })
    }

    /// Opens a message and marks it read.
    pub async fn read(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<MessageView, MailboxError> {
        let row = self.own_message(recipient, id).await?;
        let (summary, content) = decrypt_message(&self.kek, &row)?;
        let now = self.clock.now();
        self.db
            .mailbox_mark_read(recipient.as_str(), id, now)
            .await?;
        let message = content.message;
        let body = match message.body.content_type {
            BodyContentType::TextHtml if !content.body_sanitised => {
                sanitize_html(&message.body.body)
            }
            _ => message.body.body,
        };
        let attachments = message
            .attachments
            .iter()
            .enumerate()
            .map(|(index, a)| AttachmentInfo {
                index,
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: base64::engine::general_purpose::STANDARD
                    .decode(&a.body)
                    .map_or(0, |b| b.len()),
                checksum: a.checksum.clone(),
            })
            .collect();
        Ok(MessageView {
            id: row.id,
            // Bound into the ciphertexts, so the plain column is the one
            // the sender's delivery had.
            delivery_id: row.delivery_id,
            sender_id: summary.sender_id,
            sender_name: summary.sender_name,
            subject: summary.subject,
            delivered_at: summary.delivered_at,
            received_at: summary.received_at,
            read_at: Some(format_instant(row.read_at.unwrap_or(now))),
            archived: row.archived_at.is_some(),
            content_type: message.body.content_type,
            body,
            support_info: message.header.support_info,
            official_matter: message.header.official_matter,
            metadata: message.header.metadata,
            language: message.header.language,
            reference: content.reference,
            attachments,
        })
    }

    pub async fn attachment(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
        index: usize,
    ) -> Result<AttachmentFile, MailboxError> {
        let row = self.own_message(recipient, id).await?;
        let content = decrypt_content(&self.kek, &row)?;
        let attachment = content
            .message
            .attachments
            .into_iter()
            .nth(index)
            .ok_or(MailboxError::NotFound)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&attachment.body)
            .map_err(|_| MailboxError::Decrypt)?;
        Ok(AttachmentFile {
            filename: attachment.filename,
            content_type: attachment.content_type,
            bytes,
        })
    }

    pub async fn archive(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
        archived: bool,
    ) -> Result<(), MailboxError> {
        self.db
            .mailbox_set_archived(recipient.as_str(), id, archived, self.clock.now())
            .await
            .map_err(not_found)
    }

    pub async fn delete(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<(), MailboxError> {
        self.db
            .mailbox_delete(recipient.as_str(), id, self.clock.now())
            .await
            .map_err(not_found)
    }

    async fn own_message(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<StoredMessage, MailboxError> {
        self.db
            .mailbox_message(recipient.as_str(), id)
            .await?
            .ok_or(MailboxError::NotFound)
    }
}

fn not_found(e: kuvert_store::StoreError) -> MailboxError {
    match e {
        kuvert_store::StoreError::NotFound => MailboxError::NotFound,
        other => MailboxError::Store(other),
    }
}
