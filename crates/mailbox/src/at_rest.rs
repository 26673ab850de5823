//! What a stored message row is bound to (decision 0012).
//!
//! A row of `mailbox_messages` keeps a few plain columns for lookup and
//! ordering (id, delivery id, position, recipient, sender, delivered_at) and
//! two ciphertexts under the row's own data key: the *summary* (what a list
//! shows) in the `subject` column and the *content* (what the message view
//! shows) in `content`. Every plain column a reader relies on is bound into
//! the ciphertexts' associated data and into the context the data key is
//! wrapped under, so a row whose recipient, sender, time or delivery was
//! changed, or whose ciphertexts or wrapped key came from another row, does
//! not decrypt ([`AtRestError::Tampered`]). What is shown comes from the
//! ciphertexts, never from the plain columns.
//!
//! The binding is the JSON array (serde_json, no whitespace)
//!
//! ```text
//! ["kuvert-mailbox-row-v2", message_id, delivery_id, position, recipient_id, sender_id, delivered_at]
//! ```
//!
//! (`position` a JSON number, `delivered_at` RFC 3339 as stored). It is the
//! wrap context of the data key as it stands; each ciphertext's associated
//! data is the same array with the part appended (`"summary"` or
//! `"content"`), so the two ciphertexts of a row cannot trade places either.
//! JSON escaping keeps the encoding unambiguous whatever the fields hold.

use kuvert_crypto::at_rest::{DataKey, KeyEncryptionKey};
use kuvert_domain::clock::format_instant;
use kuvert_domain::delivery::SecureMessage;
use kuvert_store::mailbox::{ROW_FORMAT_BOUND, ROW_FORMAT_LEGACY, StoredMessage};
use serde::{Deserialize, Serialize};

/// First element of every binding: names the scheme and its version.
pub const ROW_BINDING_V2: &str = "kuvert-mailbox-row-v2";

#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    /// The row does not decrypt with its own fields: a plain column was
    /// changed, or a ciphertext or wrapped key came from elsewhere.
    #[error("stored message {message_id} does not match its row (tampered or damaged)")]
    Tampered { message_id: String },
    #[error("stored message {message_id} has unknown format {format}")]
    UnknownFormat { message_id: String, format: i64 },
    #[error("encryption at rest failed")]
    Encrypt,
}

/// The plain columns of a row that a reader relies on.
#[derive(Debug, Clone, Copy)]
pub struct RowBinding<'a> {
    pub message_id: &'a str,
    pub delivery_id: &'a str,
    pub position: i64,
    pub recipient_id: &'a str,
    pub sender_id: &'a str,
    /// As stored (RFC 3339, `format_instant`).
    pub delivered_at: &'a str,
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Summary,
    Content,
}

impl Part {
    fn label(self) -> &'static str {
        match self {
            Part::Summary => "summary",
            Part::Content => "content",
        }
    }
}

impl RowBinding<'_> {
    fn fields(&self) -> Vec<serde_json::Value> {
        vec![
            ROW_BINDING_V2.into(),
            self.message_id.into(),
            self.delivery_id.into(),
            self.position.into(),
            self.recipient_id.into(),
            self.sender_id.into(),
            self.delivered_at.into(),
        ]
    }

    /// The context the row's data key is wrapped under.
    pub fn key_context(&self) -> Vec<u8> {
        serde_json::Value::Array(self.fields())
            .to_string()
            .into_bytes()
    }

    fn aad(&self, part: Part) -> Vec<u8> {
        let mut fields = self.fields();
        fields.push(part.label().into());
        serde_json::Value::Array(fields).to_string().into_bytes()
    }
}

/// What the list shows, encrypted in the `subject` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub subject: String,
    pub sender_id: String,
    /// The name the recipient sees for the sender.
    pub sender_name: String,
    /// The legal moment of delivery.
    pub delivered_at: String,
    /// The relay's seal time.
    pub received_at: String,
    /// The sender's id of the official matter (ärende), if any: what a
    /// lookup by the row's plain matter tag is checked against (a tag is
    /// only an index; what links messages is this, from the ciphertext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub official_matter: Option<String>,
}

/// What the message view shows, encrypted in the `content` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredContent {
    pub sender_name: String,
    pub message: SecureMessage,
    pub reference: Option<String>,
    pub received_at: String,
    /// Whether an HTML body was sanitised when it was accepted (rows stored
    /// before that are sanitised when read).
    #[serde(default)]
    pub body_sanitised: bool,
}

/// The three blobs of a row.
#[derive(Debug, Clone)]
pub struct EncryptedRow {
    pub wrapped_key: Vec<u8>,
    pub summary: Vec<u8>,
    pub content: Vec<u8>,
}

/// Encrypts a new row: a fresh data key wrapped under the row's binding,
/// summary and content under it with the binding as associated data.
pub fn encrypt_row(
    kek: &KeyEncryptionKey,
    binding: &RowBinding<'_>,
    summary: &Summary,
    content: &StoredContent,
) -> Result<EncryptedRow, AtRestError> {
    let (key, wrapped_key) = kek
        .new_data_key(&binding.key_context())
        .map_err(|_| AtRestError::Encrypt)?;
    let seal = |part: Part, plain: &[u8]| {
        key.encrypt(&binding.aad(part), plain)
            .map_err(|_| AtRestError::Encrypt)
    };
    let summary_json = serde_json::to_vec(summary).map_err(|_| AtRestError::Encrypt)?;
    let content_json = serde_json::to_vec(content).map_err(|_| AtRestError::Encrypt)?;
    Ok(EncryptedRow {
        wrapped_key,
        summary: seal(Part::Summary, &summary_json)?,
        content: seal(Part::Content, &content_json)?,
    })
}

fn binding_of(row: &StoredMessage) -> (String, String) {
    (row.id.to_string(), format_instant(row.delivered_at))
}

fn tampered(row: &StoredMessage) -> AtRestError {
    let message_id = row.id.to_string();
    // Loud: an operator must look at this row (see docs/architecture.md).
    tracing::error!(
        message_id,
        "stored message does not decrypt with its own row: tampered or damaged"
    );
    AtRestError::Tampered { message_id }
}

fn row_key(kek: &KeyEncryptionKey, row: &StoredMessage) -> Result<DataKey, AtRestError> {
    if row.format != ROW_FORMAT_BOUND {
        // Rows of the first scheme are upgraded at start-up
        // (`upgrade_legacy_row`); one still here was not, or its marker was
        // changed: refused, never read the old way.
        tracing::error!(
            message_id = %row.id,
            format = row.format,
            "stored message is not in the bound format"
        );
        return Err(AtRestError::UnknownFormat {
            message_id: row.id.to_string(),
            format: row.format,
        });
    }
    let (id, delivered_at) = binding_of(row);
    let binding = row_binding(row, &id, &delivered_at);
    kek.unwrap_data_key(&binding.key_context(), &row.wrapped_key)
        .map_err(|_| tampered(row))
}

fn row_binding<'a>(row: &'a StoredMessage, id: &'a str, delivered_at: &'a str) -> RowBinding<'a> {
    RowBinding {
        message_id: id,
        delivery_id: &row.delivery_id,
        position: row.position,
        recipient_id: &row.recipient_id,
        sender_id: &row.sender_id,
        delivered_at,
    }
}

fn open_part<T: for<'de> Deserialize<'de>>(
    key: &DataKey,
    row: &StoredMessage,
    part: Part,
    ciphertext: &[u8],
) -> Result<T, AtRestError> {
    let (id, delivered_at) = binding_of(row);
    let plain = key
        .decrypt(&row_binding(row, &id, &delivered_at).aad(part), ciphertext)
        .map_err(|_| tampered(row))?;
    serde_json::from_slice(&plain).map_err(|_| tampered(row))
}

/// The summary of a row, checked against all of its bound columns.
pub fn decrypt_summary(
    kek: &KeyEncryptionKey,
    row: &StoredMessage,
) -> Result<Summary, AtRestError> {
    open_part(&row_key(kek, row)?, row, Part::Summary, &row.subject)
}

/// The content of a row read with its content, checked likewise.
pub fn decrypt_content(
    kek: &KeyEncryptionKey,
    row: &StoredMessage,
) -> Result<StoredContent, AtRestError> {
    let ciphertext = row.content.as_deref().ok_or_else(|| tampered(row))?;
    open_part(&row_key(kek, row)?, row, Part::Content, ciphertext)
}

/// Summary and content of a row (the message view), the key unwrapped once.
pub fn decrypt_message(
    kek: &KeyEncryptionKey,
    row: &StoredMessage,
) -> Result<(Summary, StoredContent), AtRestError> {
    let ciphertext = row.content.as_deref().ok_or_else(|| tampered(row))?;
    let key = row_key(kek, row)?;
    Ok((
        open_part(&key, row, Part::Summary, &row.subject)?,
        open_part(&key, row, Part::Content, ciphertext)?,
    ))
}

/// Re-encrypts a row of the first scheme (data key wrapped under the KEK
/// alone, subject and content bound to the message id only) into the bound
/// format. What it binds is what the row holds at upgrade time: a row moved
/// before its upgrade stays moved (decision 0012). `None` when the row does
/// not decrypt under the first scheme either (logged by the caller).
pub fn upgrade_legacy_row(
    kek: &KeyEncryptionKey,
    row: &StoredMessage,
) -> Result<Option<EncryptedRow>, AtRestError> {
    if row.format != ROW_FORMAT_LEGACY {
        return Ok(None);
    }
    let Some(content_ct) = row.content.as_deref() else {
        return Ok(None);
    };
    let Ok(key) = kek.unwrap_legacy_data_key(&row.wrapped_key) else {
        return Ok(None);
    };
    let id = row.id.to_string();
    let legacy_open = |ct: &[u8]| key.decrypt(id.as_bytes(), ct).ok();
    let (Some(subject), Some(content)) = (legacy_open(&row.subject), legacy_open(content_ct))
    else {
        return Ok(None);
    };
    let (Ok(subject), Ok(content)) = (
        String::from_utf8(subject),
        serde_json::from_slice::<StoredContent>(&content),
    ) else {
        return Ok(None);
    };
    let delivered_at = format_instant(row.delivered_at);
    let summary = Summary {
        subject,
        sender_id: row.sender_id.clone(),
        sender_name: content.sender_name.clone(),
        delivered_at: delivered_at.clone(),
        received_at: content.received_at.clone(),
        official_matter: content
            .message
            .header
            .official_matter
            .as_ref()
            .map(|m| m.id.clone()),
    };
    let binding = row_binding(row, &id, &delivered_at);
    encrypt_row(kek, &binding, &summary, &content).map(Some)
}

impl crate::Mailbox {
    /// Upgrades every row of the first format (see [`upgrade_legacy_row`]),
    /// page by page. A row that does not decrypt under the first scheme
    /// either is logged and left as it is: reading refuses it loudly.
    /// Returns how many rows were upgraded.
    pub async fn upgrade_legacy_rows(&self) -> Result<u64, crate::MailboxError> {
        const PAGE: i64 = 500;
        let mut upgraded = 0;
        let mut after = None;
        loop {
            let rows = self
                .db
                .mailbox_legacy_messages(after.as_ref(), PAGE)
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.id);
            let mut page = Vec::with_capacity(rows.len());
            for row in &rows {
                match upgrade_legacy_row(&self.kek, row)? {
                    Some(new) => page.push(kuvert_store::mailbox::UpgradedMessage {
                        id: row.id,
                        wrapped_key: new.wrapped_key,
                        summary: new.summary,
                        content: new.content,
                    }),
                    None => tracing::error!(
                        message_id = %row.id,
                        "a stored message of the first format does not decrypt; left as it is"
                    ),
                }
            }
            upgraded += self.db.mailbox_store_upgraded(&page).await?;
        }
        if upgraded > 0 {
            tracing::info!(upgraded, "stored messages bound to their rows");
        }
        Ok(upgraded)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use kuvert_domain::clock::parse_instant;
    use kuvert_domain::ids::MailboxMessageId;

    /// A row as the store would hand it back, encrypted by `encrypt_row`.
    fn stored_row(kek: &KeyEncryptionKey) -> StoredMessage {
        let id = MailboxMessageId::new();
        let delivered_at = format_instant(time::OffsetDateTime::now_utc());
        let message_id = id.to_string();
        let binding = RowBinding {
            message_id: &message_id,
            delivery_id: "d-1",
            position: 0,
            recipient_id: "198001012380",
            sender_id: "162120009994",
            delivered_at: &delivered_at,
        };
        let message: SecureMessage = serde_json::from_value(serde_json::json!({
            "header": {"id": "1", "subject": "Beslut", "support_info": {"text": "x"}, "language": "sv"},
            "body": {"content_type": "text/plain", "body": "Brödtext"}
        }))
        .unwrap();
        let summary = Summary {
            subject: "Beslut".into(),
            sender_id: "162120009994".into(),
            sender_name: "Demo kommun".into(),
            delivered_at: delivered_at.clone(),
            received_at: delivered_at.clone(),
            official_matter: None,
        };
        let content = StoredContent {
            sender_name: "Demo kommun".into(),
            message,
            reference: None,
            received_at: delivered_at.clone(),
            body_sanitised: true,
        };
        let row = encrypt_row(kek, &binding, &summary, &content).unwrap();
        StoredMessage {
            id,
            delivery_id: "d-1".into(),
            position: 0,
            recipient_id: "198001012380".into(),
            sender_id: "162120009994".into(),
            delivered_at: parse_instant(&delivered_at).unwrap(),
            read_at: None,
            archived_at: None,
            format: ROW_FORMAT_BOUND,
            wrapped_key: row.wrapped_key,
            subject: row.summary,
            content: Some(row.content),
        }
    }

    /// One change of a row's plain columns.
    type Change = fn(&mut StoredMessage);

    #[test]
    fn every_bound_column_changed_is_tampering() {
        let kek = KeyEncryptionKey::generate();
        let row = stored_row(&kek);
        assert_eq!(decrypt_summary(&kek, &row).unwrap().subject, "Beslut");
        assert_eq!(
            decrypt_content(&kek, &row).unwrap().message.body.body,
            "Brödtext"
        );
        let changes: [(&str, Change); 6] = [
            ("id", |r| r.id = MailboxMessageId::new()),
            ("delivery_id", |r| r.delivery_id = "d-2".into()),
            ("position", |r| r.position = 1),
            ("recipient_id", |r| r.recipient_id = "197505053170".into()),
            ("sender_id", |r| r.sender_id = "162120001111".into()),
            ("delivered_at", |r| {
                r.delivered_at += time::Duration::microseconds(1);
            }),
        ];
        for (column, change) in changes {
            let mut changed = stored_row(&kek);
            change(&mut changed);
            assert!(
                matches!(
                    decrypt_summary(&kek, &changed),
                    Err(AtRestError::Tampered { .. })
                ),
                "{column}: summary"
            );
            assert!(
                matches!(
                    decrypt_content(&kek, &changed),
                    Err(AtRestError::Tampered { .. })
                ),
                "{column}: content"
            );
        }
    }

    #[test]
    fn a_row_not_in_the_bound_format_is_refused() {
        let kek = KeyEncryptionKey::generate();
        let mut row = stored_row(&kek);
        row.format = ROW_FORMAT_LEGACY;
        assert!(matches!(
            decrypt_summary(&kek, &row),
            Err(AtRestError::UnknownFormat { format: 1, .. })
        ));
        // Nor does the upgrade take a bound row for one of the first scheme.
        assert!(upgrade_legacy_row(&kek, &row).unwrap().is_none());
    }

    /// Fields whose plain concatenation would be equal still bind
    /// differently: the encoding is a JSON array, not a joined string.
    #[test]
    fn the_binding_is_unambiguous() {
        let base = RowBinding {
            message_id: "m",
            delivery_id: "ab",
            position: 0,
            recipient_id: "c",
            sender_id: "s",
            delivered_at: "t",
        };
        let shifted = RowBinding {
            delivery_id: "a",
            recipient_id: "bc",
            ..base
        };
        let quoted = RowBinding {
            delivery_id: "ab\",\"c",
            recipient_id: "",
            ..base
        };
        assert_ne!(base.key_context(), shifted.key_context());
        assert_ne!(base.key_context(), quoted.key_context());
        assert_eq!(
            String::from_utf8(base.key_context()).unwrap(),
            r#"["kuvert-mailbox-row-v2","m","ab",0,"c","s","t"]"#
        );
        assert_eq!(
            String::from_utf8(base.aad(Part::Summary)).unwrap(),
            r#"["kuvert-mailbox-row-v2","m","ab",0,"c","s","t","summary"]"#
        );
    }
}
