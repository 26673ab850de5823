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
            .map(|row| self.summary_of(row))
            .collect::<Result<_, MailboxError>>()?;
        Ok(MessagePage {
            messages,
            total,
            unread,
            page,
            page_size,
        })
    }

    /// Opens a message and marks it read (the recipient opened it).
    pub async fn read(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<MessageView, MailboxError> {
        self.open_message(recipient, id, true).await
    }

    /// Opens a message of `owner` for someone reading it by delegation:
    /// it stays unread for the owner, and no `message.read` entry says the
    /// recipient read it (the delegate's read is audited as theirs,
    /// `delegation.read`, decision 0019).
    pub async fn read_for_delegate(
        &self,
        owner: &RecipientId,
        id: &MailboxMessageId,
    ) -> Result<MessageView, MailboxError> {
        self.open_message(owner, id, false).await
    }

    async fn open_message(
        &self,
        recipient: &RecipientId,
        id: &MailboxMessageId,
        mark_read: bool,
    ) -> Result<MessageView, MailboxError> {
        let row = self.own_message(recipient, id).await?;
        let (summary, content) = decrypt_message(&self.kek, &row)?;
        let now = self.clock.now();
        if mark_read {
            self.db
                .mailbox_mark_read(recipient.as_str(), id, now)
                .await?;
        }
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
            read_at: if mark_read {
                Some(format_instant(row.read_at.unwrap_or(now)))
            } else {
                row.read_at.map(format_instant)
            },
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

/// Messages on one page of the web inbox (and of the API's cursor paging,
/// should it get one): at most this many, whatever is asked.
pub const MAX_CURSOR_PAGE_SIZE: i64 = 100;
/// A cursor is at most this long (a real one is about 90 characters):
/// anything longer is refused before it is decoded.
pub const MAX_CURSOR_LEN: usize = 200;
/// Senders offered in the inbox's sender filter, at most.
pub const MAX_SENDERS_LISTED: i64 = 200;
/// Messages of the same official matter linked from a message, at most.
pub const MAX_SAME_MATTER: i64 = 50;
/// The key label of the official-matter blind index (migration 0008).
const MATTER_TAG_LABEL: &str = "kuvert/mailbox/official-matter/v1";

/// Where a page of the inbox order (unread first, then newest first, the
/// id breaking ties) ends: the position of its last message. The next page
/// is what comes strictly after it, so mail arriving while one pages (it is
/// unread and newest, so before every cursor) shifts nothing and repeats
/// nothing. A message read meanwhile moves to the read part and may be
/// met there again; that is the order the inbox promises.
///
/// Sent as text (`Display`/[`InboxCursor::parse`]): base64url of
/// `v1|u|delivered_at|id` (`u` is 1 for the unread part). It is only a
/// position: the query it feeds is keyed by the recipient as every other,
/// so a forged one can never reach another person's rows; it is still
/// parsed strictly, and anything that is not exactly a cursor is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCursor {
    unread: bool,
    /// As stored (`format_instant`), so it compares as the column does.
    delivered_at: String,
    id: MailboxMessageId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this mailbox gave out")]
pub struct CursorError;

impl InboxCursor {
    fn after(row: &StoredMessage) -> Self {
        Self {
            unread: row.read_at.is_none(),
            delivered_at: format_instant(row.delivered_at),
            id: row.id,
        }
    }

    pub fn parse(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(CursorError);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
        let mut parts = text.split('|');
        let (Some("v1"), Some(unread), Some(delivered_at), Some(id), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CursorError);
        };
        let unread = match unread {
            "1" => true,
            "0" => false,
            _ => return Err(CursorError),
        };
        // Only the stored form: a time that parses but is written another
        // way would compare wrongly against the column.
        let at = kuvert_domain::clock::parse_instant(delivered_at).map_err(|_| CursorError)?;
        if format_instant(at) != delivered_at {
            return Err(CursorError);
        }
        // Likewise the id: only as the column holds it.
        let parsed = MailboxMessageId::parse(id).map_err(|_| CursorError)?;
        if parsed.to_string() != id {
            return Err(CursorError);
        }
        Ok(Self {
            unread,
            delivered_at: delivered_at.to_owned(),
            id: parsed,
        })
    }
}

impl std::fmt::Display for InboxCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = format!(
            "v1|{}|{}|{}",
            if self.unread { 1 } else { 0 },
            self.delivered_at,
            self.id
        );
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain))
    }
}

/// One page of the inbox order, and the cursor of the next (none on the
/// last page).
#[derive(Debug)]
pub struct InboxPage {
    pub messages: Vec<MessageSummary>,
    pub next: Option<InboxCursor>,
    /// Of the whole folder (not only this sender's).
    pub total: i64,
    pub unread: i64,
}

/// A sender of messages in this mailbox, for the sender filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderChoice {
    pub sender_id: String,
    pub sender_name: String,
}

/// The keyed blind index of an official matter: HMAC-SHA256, under a key
/// derived from the KEK, of `[recipient, sender, matter id]` (JSON), hex.
/// A sender names its own matters, so the sender is part of the tag; the
/// recipient too, so equal tags never link two people's mail. Without the
/// key the tag says nothing about the matter id (which may be a case
/// number with personal data in it).
pub fn matter_tag(
    kek: &kuvert_crypto::at_rest::KeyEncryptionKey,
    recipient: &str,
    sender: &str,
    matter_id: &str,
) -> Result<String, MailboxError> {
    let key = kek
        .tag_key(MATTER_TAG_LABEL)
        .map_err(|_| MailboxError::Decrypt)?;
    Ok(key.pseudonym(&serde_json::json!([recipient, sender, matter_id]).to_string()))
}

impl Mailbox {
    /// A page of the recipient's messages in the inbox order (see
    /// [`InboxCursor`]), after `after`, from `sender` only when given; at
    /// most [`MAX_CURSOR_PAGE_SIZE`].
    pub async fn list_after(
        &self,
        recipient: &RecipientId,
        folder: Folder,
        sender: Option<&str>,
        after: Option<&InboxCursor>,
        page_size: i64,
    ) -> Result<InboxPage, MailboxError> {
        let page_size = page_size.clamp(1, MAX_CURSOR_PAGE_SIZE);
        // One more than shown tells whether there is a next page.
        let wanted = page_size + 1;
        let owner = recipient.as_str();
        let mut rows = Vec::new();
        if after.is_none_or(|c| c.unread) {
            let before = after.map(|c| (c.delivered_at.as_str(), &c.id));
            rows = self
                .db
                .mailbox_segment(owner, folder, true, sender, before, wanted)
                .await?;
        }
        if rows.len() < usize::try_from(wanted).unwrap_or(usize::MAX) {
            // The read part: from its top after the unread part, or after
            // the cursor when the cursor is in it.
            let before = after
                .filter(|c| !c.unread)
                .map(|c| (c.delivered_at.as_str(), &c.id));
            let left = wanted - i64::try_from(rows.len()).unwrap_or(wanted);
            rows.extend(
                self.db
                    .mailbox_segment(owner, folder, false, sender, before, left)
                    .await?,
            );
        }
        let more = rows.len() > usize::try_from(page_size).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
        let next = more.then(|| rows.last().map(InboxCursor::after)).flatten();
        let (total, unread) = self.db.mailbox_counts(owner, folder).await?;
        let messages = rows
            .iter()
            .map(|row| self.summary_of(row))
            .collect::<Result<_, MailboxError>>()?;
        Ok(InboxPage {
            messages,
            next,
            total,
            unread,
        })
    }

    /// The senders of the recipient's messages, by name, with the name each
    /// newest message shows (at most [`MAX_SENDERS_LISTED`]).
    pub async fn senders(
        &self,
        recipient: &RecipientId,
    ) -> Result<Vec<SenderChoice>, MailboxError> {
        let rows = self
            .db
            .mailbox_senders(recipient.as_str(), MAX_SENDERS_LISTED)
            .await?;
        let mut senders = rows
            .iter()
            .map(|row| {
                let summary = decrypt_summary(&self.kek, row)?;
                Ok(SenderChoice {
                    sender_id: summary.sender_id,
                    sender_name: summary.sender_name,
                })
            })
            .collect::<Result<Vec<_>, MailboxError>>()?;
        senders.sort_by(|a, b| a.sender_name.cmp(&b.sender_name));
        Ok(senders)
    }

    /// The recipient's other messages of the same official matter as
    /// `message` (newest first, at most [`MAX_SAME_MATTER`]). Found by the
    /// blind index written at acceptance, then each checked against the
    /// matter in its own encrypted summary, so a changed tag column can
    /// only hide a link, never make one. Rows stored before migration 0008
    /// have no tag and are not linked.
    pub async fn same_matter(
        &self,
        recipient: &RecipientId,
        message: &MessageView,
    ) -> Result<Vec<MessageSummary>, MailboxError> {
        let Some(matter) = &message.official_matter else {
            return Ok(Vec::new());
        };
        let tag = matter_tag(
            &self.kek,
            recipient.as_str(),
            &message.sender_id,
            &matter.id,
        )?;
        let rows = self
            .db
            .mailbox_by_matter(recipient.as_str(), &tag, MAX_SAME_MATTER + 1)
            .await?;
        let mut linked = Vec::new();
        for row in rows.iter().filter(|row| row.id != message.id) {
            let summary = decrypt_summary(&self.kek, row)?;
            if summary.official_matter.as_deref() == Some(matter.id.as_str())
                && summary.sender_id == message.sender_id
            {
                linked.push(self.summary_of(row)?);
            }
        }
        linked.truncate(usize::try_from(MAX_SAME_MATTER).unwrap_or(usize::MAX));
        Ok(linked)
    }

    fn summary_of(&self, row: &StoredMessage) -> Result<MessageSummary, MailboxError> {
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
    }
}

#[cfg(test)]
mod cursor_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let cursor = InboxCursor {
            unread: true,
            delivered_at: "2026-12-01T10:00:00.000123Z".into(),
            id: MailboxMessageId::new(),
        };
        let text = cursor.to_string();
        assert_eq!(InboxCursor::parse(&text), Ok(cursor.clone()));
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let id = cursor.id.to_string();
        for forged in [
            String::new(),
            "not base64!".into(),
            "A".repeat(MAX_CURSOR_LEN + 1),
            encode("v2|1|2026-12-01T10:00:00.000123Z|x"),
            encode(&format!("v1|2|2026-12-01T10:00:00.000123Z|{id}")),
            encode(&format!("v1|1|2026-12-01T10:00:00Z|{id}")),
            encode(&format!("v1|1|yesterday|{id}")),
            encode("v1|1|2026-12-01T10:00:00.000123Z|not-an-id"),
            encode(&format!("v1|1|2026-12-01T10:00:00.000123Z|{id}|more")),
            encode(&format!(
                "v1|1|2026-12-01T10:00:00.000123Z|{}",
                id.to_uppercase()
            )),
            encode(&format!("v1|1|2026-12-01T10:00:00.000123Z' OR 1=1 --|{id}")),
        ] {
            assert_eq!(InboxCursor::parse(&forged), Err(CursorError), "{forged}");
        }
    }
}
