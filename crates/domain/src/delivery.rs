//! The delivery model, shaped after Mina meddelanden v3 `SecureDelivery`, so
//! that a later SOAP adapter is a translation and not a redesign.
//!
//! A sender submits a [`SignedDelivery`]: the [`SecureDelivery`] plus its
//! signature over the delivery's canonical form ([`SecureDelivery::canonical_bytes`]).
//! [`SecureDelivery::validate`] turns the wire form into a [`ValidatedDelivery`]
//! or names the first problem; nothing that fails it is stored.

use crate::content::{AttachmentName, AttachmentType, ContentMismatch};
use crate::html_check::{self, UnsafeHtml};
use crate::identity::{IdentityError, OrganisationNumber, RecipientId};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Domain-separation label for sender signatures over a delivery.
pub const SIGNED_DELIVERY_DOMAIN: &[u8] = b"kuvert/v1/signed-delivery";

pub const MAX_SUBJECT_CHARS: usize = 255;
pub const MAX_SUPPORT_TEXT_CHARS: usize = 1024;
/// The longest short text field (a name, reference, correlation id,
/// attention line, case id, support URL, phone or e-mail address, metadata
/// tag): 255 characters, as Mina meddelanden's subject.
pub const MAX_SHORT_TEXT_CHARS: usize = 255;
/// The longest metadata value.
pub const MAX_METADATA_VALUE_CHARS: usize = 1024;
/// Messages in one delivery (one recipient).
pub const MAX_MESSAGES: usize = 100;
/// Metadata entries per message.
pub const MAX_METADATA_ENTRIES: usize = 50;
/// Attachments per message.
pub const MAX_ATTACHMENTS: usize = 20;
/// Mina meddelanden's limit: a delivery is at most 2 MB, attachments included.
pub const DEFAULT_MAX_DELIVERY_BYTES: usize = 2 * 1024 * 1024;

/// A delivery as the sender signs it: one recipient, one or more messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecureDelivery {
    pub header: DeliveryHeader,
    pub messages: Vec<SecureMessage>,
    /// Print and post the delivery when the recipient cannot be reached digitally.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paper_fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryHeader {
    pub sender: SenderInfo,
    /// The recipient's identity number (personnummer, samordningsnummer or
    /// organisationsnummer) in the canonical 12-digit form without
    /// separators: `YYYYMMDDNNNC`, or `16` and the 10 digits of an
    /// organisation number. Any other form (10 digits, a hyphen or `+`) is
    /// refused with `recipient_not_canonical`: relay and mailbox would each
    /// choose a 10-digit number's century from their own clock.
    pub recipient: String,
    /// The sender's own reference; also the idempotency key when no
    /// `Idempotency-Key` header is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderInfo {
    /// Organisation number of the sending authority (`16` + 10 digits, or 10 digits).
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecureMessage {
    pub header: MessageHeader,
    pub body: MessageBody,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageHeader {
    /// The sender's id of this message; unique within the delivery.
    pub id: String,
    pub subject: String,
    pub support_info: SupportInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub official_matter: Option<OfficialMatter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<Metadata>,
    /// BCP 47 language tag, e.g. `sv` or `en`.
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportInfo {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
}

/// Groups messages that belong to the same case (ärende).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficialMatter {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub tag: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum BodyContentType {
    #[serde(rename = "text/plain")]
    TextPlain,
    #[serde(rename = "text/html")]
    TextHtml,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub content_type: BodyContentType,
    /// The message text. For `text/html`, an HTML fragment (what goes inside
    /// `<body>`) that the mailbox shows exactly as signed, so anything it
    /// would not show as written is refused with `unsafe_html`, the message
    /// naming the element or attribute. Allowed: the elements p, br, b,
    /// strong, i, em, u, ul, ol, li, h1–h6, table, thead, tbody, tr, th, td,
    /// blockquote, pre, code, a, span, div and hr; the attributes title and
    /// lang on each of them, href on a (an absolute http, https, mailto or
    /// tel URL: no relative links), colspan and rowspan on td and th, scope
    /// on th, start on ol; rel on a only as `noopener noreferrer nofollow`,
    /// which the mailbox sets on every link. Not allowed: any other element
    /// or attribute (class, id, style, on*, src, …), comments, `<!DOCTYPE>`,
    /// `<html>`, `<head>` and `<body>`, markup the HTML parser would
    /// rearrange, and nesting more than 256 elements deep. How the markup is
    /// spelled is free: entities, letter case, attribute quoting, `<br>` or
    /// `<br/>`, and whitespace inside tags.
    pub body: String,
}

/// A file sent with a message. Checked in this order, each refusal with its
/// own error code: the file name, the type, the name's extension, the
/// base64, the checksum, and (after every cheap check of the delivery) the
/// content itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The MIME type of the content (case-insensitive). It must be one the
    /// installation allows, by default only `application/pdf`
    /// (`attachment_type_not_allowed`), and the bytes must be of that type
    /// (`attachment_content_mismatch`): for `application/pdf` a `%PDF-1.0`
    /// to `%PDF-1.7` or `%PDF-2.0` header at offset 0, a `%%EOF` marker in
    /// the last 1024 bytes, and a PDF structure that parses, with a document
    /// catalog and at least one page, not encrypted with a password.
    pub content_type: String,
    /// The file name the recipient sees, kept exactly as sent. Its extension
    /// must fit the type, in any case (`.pdf` for `application/pdf`; no
    /// extension or another is `attachment_extension_mismatch`). Refused as
    /// `bad_attachment_name`: empty or over 255 bytes; `/` or `\`; control,
    /// bidirectional-control or invisible characters (zero-width, soft
    /// hyphen, other format or default-ignorable characters); the characters
    /// Windows refuses (`< > : " | ? *`); `.` or `..`, a leading or trailing
    /// dot, leading or trailing white space; a Windows device name (`CON`,
    /// `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, any case), also
    /// with an extension (`nul.pdf`).
    pub filename: String,
    /// SHA-256 of the decoded content, lowercase hex (`checksum_mismatch`).
    pub checksum: String,
    /// The content, standard base64 with padding (`attachment_not_base64`).
    pub body: String,
}

/// Which signature scheme a sender used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureAlgorithm {
    Ed25519,
}

/// A sender's signature over [`SecureDelivery::canonical_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverySignature {
    pub algorithm: SignatureAlgorithm,
    /// The registered key's id, `ed25519:` + 16 hex digits.
    pub key_id: String,
    /// Standard base64 of the 64-byte signature.
    pub value: String,
}

/// What a sender submits: the delivery and its signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedDelivery {
    pub delivery: SecureDelivery,
    pub signature: DeliverySignature,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The first problem found in a delivery. Each has a stable `code()` that
/// the API returns, so senders can act on it without parsing prose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("recipient: {0}")]
    InvalidRecipient(IdentityError),
    /// A valid number written in another form than the canonical 12 digits
    /// (10 digits, a separator, spaces): relay and mailbox would each choose
    /// the century of a 10-digit number from their own clock.
    #[error(
        "the recipient must be written as 12 digits without separators (for example \
         198001012384, or 16 and the 10 digits of an organisation number); sign the \
         delivery again with that form"
    )]
    RecipientNotCanonical,
    #[error("sender id: {0}")]
    InvalidSenderId(IdentityError),
    #[error("a delivery holds at least one message")]
    NoMessages,
    #[error("message {index}: the subject is empty")]
    EmptySubject { index: usize },
    #[error("message {index}: the subject is longer than {max} characters")]
    SubjectTooLong { index: usize, max: usize },
    #[error("message {index}: the support text is longer than {max} characters")]
    SupportTextTooLong { index: usize, max: usize },
    #[error("message {index}: the message id is empty or repeated")]
    BadMessageId { index: usize },
    #[error("message {index}: the language is not a language tag")]
    BadLanguage { index: usize },
    #[error("message {index}: the HTML body is not allowed: {reason}")]
    UnsafeHtml { index: usize, reason: UnsafeHtml },
    #[error("message {index}, attachment {attachment}: file name: {reason}")]
    BadAttachmentName {
        index: usize,
        attachment: usize,
        reason: crate::content::AttachmentNameError,
    },
    #[error(
        "message {index}, attachment {attachment}: content type {content_type:?} is not allowed"
    )]
    AttachmentTypeNotAllowed {
        index: usize,
        attachment: usize,
        content_type: String,
    },
    #[error(
        "message {index}, attachment {attachment}: the file name does not fit the type \
         {content_type:?}: it needs the extension {expected}, {}",
        found_extension(.found)
    )]
    AttachmentExtensionMismatch {
        index: usize,
        attachment: usize,
        content_type: String,
        /// The extensions that fit, as shown: ".pdf".
        expected: String,
        /// The name's extension, without the dot; `None` if it has none.
        found: Option<String>,
    },
    #[error("message {index}, attachment {attachment}: the body is not valid base64")]
    AttachmentNotBase64 { index: usize, attachment: usize },
    #[error("message {index}, attachment {attachment}: the checksum does not match the content")]
    ChecksumMismatch { index: usize, attachment: usize },
    #[error("message {index}, attachment {attachment}: {reason}")]
    AttachmentContentMismatch {
        index: usize,
        attachment: usize,
        reason: ContentMismatch,
    },
    #[error("the delivery is {size} bytes; at most {limit} are allowed")]
    TooLarge { size: usize, limit: usize },
    /// A text field over its documented length (the field named as a path).
    #[error("{field} is longer than {max} characters")]
    FieldTooLong { field: String, max: usize },
    /// A list over its documented count.
    #[error("{list} holds more than {max} entries")]
    TooManyItems { list: String, max: usize },
}

impl DeliveryError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRecipient(_) => "invalid_recipient",
            Self::RecipientNotCanonical => "recipient_not_canonical",
            Self::InvalidSenderId(_) => "invalid_sender_id",
            Self::NoMessages => "no_messages",
            Self::EmptySubject { .. } => "empty_subject",
            Self::SubjectTooLong { .. } => "subject_too_long",
            Self::SupportTextTooLong { .. } => "support_text_too_long",
            Self::BadMessageId { .. } => "bad_message_id",
            Self::BadLanguage { .. } => "bad_language",
            Self::UnsafeHtml { .. } => "unsafe_html",
            Self::BadAttachmentName { .. } => "bad_attachment_name",
            Self::AttachmentTypeNotAllowed { .. } => "attachment_type_not_allowed",
            Self::AttachmentExtensionMismatch { .. } => "attachment_extension_mismatch",
            Self::AttachmentNotBase64 { .. } => "attachment_not_base64",
            Self::ChecksumMismatch { .. } => "checksum_mismatch",
            Self::AttachmentContentMismatch { .. } => "attachment_content_mismatch",
            Self::TooLarge { .. } => "delivery_too_large",
            Self::FieldTooLong { .. } => "field_too_long",
            Self::TooManyItems { .. } => "too_many_items",
        }
    }
}

/// "and has none" / "not .exe", for [`DeliveryError::AttachmentExtensionMismatch`].
fn found_extension(found: &Option<String>) -> String {
    match found {
        Some(extension) => format!("not .{extension}"),
        None => "and has none".to_owned(),
    }
}

/// Limits an installation sets (configurable).
#[derive(Debug, Clone)]
pub struct DeliveryLimits {
    pub max_delivery_bytes: usize,
    /// Lowercase MIME types allowed for attachments (default: only
    /// `application/pdf`). Only types in
    /// [`crate::content::ATTACHMENT_TYPES`] can be allowed, since kuvert
    /// checks each attachment's extension and content against that table; a
    /// type listed here but not there is refused all the same.
    pub allowed_attachment_types: Vec<String>,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        Self {
            max_delivery_bytes: DEFAULT_MAX_DELIVERY_BYTES,
            allowed_attachment_types: vec!["application/pdf".to_owned()],
        }
    }
}

/// A delivery that passed every check; the parsed ids travel with it.
#[derive(Debug, Clone)]
pub struct ValidatedDelivery {
    pub delivery: SecureDelivery,
    pub recipient: RecipientId,
    pub sender: OrganisationNumber,
    /// The canonical bytes the sender signed.
    pub canonical: Vec<u8>,
}

/// What [`SecureDelivery::check`] keeps of a delivery that passed every
/// check (the delivery itself stays where it was: no copy).
#[derive(Debug, Clone)]
pub struct CheckedDelivery {
    pub recipient: RecipientId,
    pub sender: OrganisationNumber,
    /// The canonical bytes the sender signed.
    pub canonical: Vec<u8>,
}

impl SecureDelivery {
    /// The canonical form the sender signs: RFC 8785 (JCS) JSON of the delivery
    /// as kuvert parses it — object keys sorted, no whitespace, and absent,
    /// `null`, `false` and empty-list fields left out. kuvert's model has no
    /// floating-point numbers and only ASCII keys, so sorting serde_json's
    /// `BTreeMap` by bytes is exactly JCS's ordering.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising a plain struct of strings, bools and lists to a Value
        // cannot fail; fall back to an empty form that no signature matches.
        match serde_json::to_value(self) {
            Ok(value) => value.to_string().into_bytes(),
            Err(_) => Vec::new(),
        }
    }

    /// Checks every rule of a delivery (identity numbers, subject, language,
    /// HTML bodies shown as signed, attachment names, types, extensions,
    /// base64 and checksums, size, and last the attachments' content) and
    /// keeps the parsed ids and canonical bytes for the relay. The content
    /// check parses (a PDF), so it runs only once everything cheap has passed.
    pub fn validate(
        self,
        limits: &DeliveryLimits,
        today: time::Date,
    ) -> Result<ValidatedDelivery, DeliveryError> {
        let CheckedDelivery {
            recipient,
            sender,
            canonical,
        } = self.check(limits, today)?;
        Ok(ValidatedDelivery {
            delivery: self,
            recipient,
            sender,
            canonical,
        })
    }

    /// [`validate`](Self::validate) without taking the delivery: the
    /// parsed ids and canonical bytes, the delivery left with its caller.
    pub fn check(
        &self,
        limits: &DeliveryLimits,
        today: time::Date,
    ) -> Result<CheckedDelivery, DeliveryError> {
        let (recipient, sender) = self.check_bounds(today)?;
        let canonical = self.canonical_bytes();
        self.check_size_and_content(limits, canonical.len())?;
        Ok(CheckedDelivery {
            recipient,
            sender,
            canonical,
        })
    }

    /// Every rule of [`validate`](Self::validate), for a delivery whose
    /// canonical form is already known to be `canonical_len` bytes (a
    /// mailbox operator checking, against its own limits, what it opened).
    pub fn check_content(
        &self,
        limits: &DeliveryLimits,
        today: time::Date,
        canonical_len: usize,
    ) -> Result<(), DeliveryError> {
        self.check_bounds(today)?;
        self.check_size_and_content(limits, canonical_len)
    }

    /// Identity numbers, then counts and lengths: nothing here costs more
    /// than reading the fields.
    fn check_bounds(
        &self,
        today: time::Date,
    ) -> Result<(RecipientId, OrganisationNumber), DeliveryError> {
        // A number that parses in a written form but is not canonical is
        // refused as such, so the sender learns what to change.
        let recipient = RecipientId::parse_canonical(&self.header.recipient).map_err(|_| {
            match RecipientId::parse(&self.header.recipient, today) {
                Ok(_) => DeliveryError::RecipientNotCanonical,
                Err(e) => DeliveryError::InvalidRecipient(e),
            }
        })?;
        let sender = OrganisationNumber::parse(&self.header.sender.id)
            .map_err(DeliveryError::InvalidSenderId)?;
        if self.messages.is_empty() {
            return Err(DeliveryError::NoMessages);
        }
        // Counts and lengths first, then the size, then the costly checks
        // (HTML, base64, checksums, content): nothing expensive runs on a
        // request over a documented limit.
        max_items("messages", self.messages.len(), MAX_MESSAGES)?;
        let header = &self.header;
        max_chars(
            "header.sender.name",
            &header.sender.name,
            MAX_SHORT_TEXT_CHARS,
        )?;
        for (field, value) in [
            ("header.reference", &header.reference),
            ("header.correlation_id", &header.correlation_id),
            ("header.attention", &header.attention),
        ] {
            if let Some(value) = value {
                max_chars(field, value, MAX_SHORT_TEXT_CHARS)?;
            }
        }
        for (index, message) in self.messages.iter().enumerate() {
            message_bounds(index, message)?;
        }
        Ok((recipient, sender))
    }

    /// The size, then the costly checks, the content parse last.
    fn check_size_and_content(
        &self,
        limits: &DeliveryLimits,
        canonical_len: usize,
    ) -> Result<(), DeliveryError> {
        if canonical_len > limits.max_delivery_bytes {
            return Err(DeliveryError::TooLarge {
                size: canonical_len,
                limit: limits.max_delivery_bytes,
            });
        }
        let mut seen_ids = std::collections::HashSet::new();
        let mut contents = Vec::new();
        for (index, message) in self.messages.iter().enumerate() {
            validate_message(index, message, limits, &mut seen_ids, &mut contents)?;
        }
        for content in contents {
            content.check()?;
        }
        Ok(())
    }
}

fn max_chars(field: &str, value: &str, max: usize) -> Result<(), DeliveryError> {
    // Bytes bound characters from above: count only when it could matter.
    if value.len() > max && value.chars().count() > max {
        return Err(DeliveryError::FieldTooLong {
            field: field.to_owned(),
            max,
        });
    }
    Ok(())
}

fn max_items(list: &str, count: usize, max: usize) -> Result<(), DeliveryError> {
    if count > max {
        return Err(DeliveryError::TooManyItems {
            list: list.to_owned(),
            max,
        });
    }
    Ok(())
}

/// The counts and lengths of one message's lists and short fields (the
/// subject and support text have their own codes, in `validate_message`).
fn message_bounds(index: usize, message: &SecureMessage) -> Result<(), DeliveryError> {
    let at = |path: &str| format!("messages[{index}].{path}");
    let header = &message.header;
    max_items(
        &at("attachments"),
        message.attachments.len(),
        MAX_ATTACHMENTS,
    )?;
    max_items(
        &at("header.metadata"),
        header.metadata.len(),
        MAX_METADATA_ENTRIES,
    )?;
    for (n, entry) in header.metadata.iter().enumerate() {
        max_chars(
            &at(&format!("header.metadata[{n}].tag")),
            &entry.tag,
            MAX_SHORT_TEXT_CHARS,
        )?;
        max_chars(
            &at(&format!("header.metadata[{n}].value")),
            &entry.value,
            MAX_METADATA_VALUE_CHARS,
        )?;
    }
    let support = &header.support_info;
    for (field, value) in [
        ("header.support_info.url", &support.url),
        ("header.support_info.phone_number", &support.phone_number),
        ("header.support_info.email_address", &support.email_address),
    ] {
        if let Some(value) = value {
            max_chars(&at(field), value, MAX_SHORT_TEXT_CHARS)?;
        }
    }
    if let Some(matter) = &header.official_matter {
        max_chars(
            &at("header.official_matter.id"),
            &matter.id,
            MAX_SHORT_TEXT_CHARS,
        )?;
        if let Some(name) = &matter.name {
            max_chars(
                &at("header.official_matter.name"),
                name,
                MAX_SHORT_TEXT_CHARS,
            )?;
        }
    }
    Ok(())
}

/// An attachment that passed the cheap checks; its content is checked last.
struct PendingContent {
    index: usize,
    attachment: usize,
    kind: &'static AttachmentType,
    bytes: Vec<u8>,
}

impl PendingContent {
    fn check(&self) -> Result<(), DeliveryError> {
        self.kind.check_content(&self.bytes).map_err(|reason| {
            DeliveryError::AttachmentContentMismatch {
                index: self.index,
                attachment: self.attachment,
                reason,
            }
        })
    }
}

/// The cheap checks of one message; its attachments' decoded bytes go to
/// `contents` for the content check.
fn validate_message(
    index: usize,
    message: &SecureMessage,
    limits: &DeliveryLimits,
    seen_ids: &mut std::collections::HashSet<String>,
    contents: &mut Vec<PendingContent>,
) -> Result<(), DeliveryError> {
    let header = &message.header;
    if header.id.trim().is_empty() || header.id.len() > 255 || !seen_ids.insert(header.id.clone()) {
        return Err(DeliveryError::BadMessageId { index });
    }
    if header.subject.trim().is_empty() {
        return Err(DeliveryError::EmptySubject { index });
    }
    if header.subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(DeliveryError::SubjectTooLong {
            index,
            max: MAX_SUBJECT_CHARS,
        });
    }
    if header.support_info.text.chars().count() > MAX_SUPPORT_TEXT_CHARS {
        return Err(DeliveryError::SupportTextTooLong {
            index,
            max: MAX_SUPPORT_TEXT_CHARS,
        });
    }
    if !is_language_tag(&header.language) {
        return Err(DeliveryError::BadLanguage { index });
    }
    if message.body.content_type == BodyContentType::TextHtml
        && let Some(reason) = html_check::find_unsafe_html(&message.body.body)
    {
        return Err(DeliveryError::UnsafeHtml { index, reason });
    }
    for (attachment, file) in message.attachments.iter().enumerate() {
        let name = AttachmentName::parse(&file.filename).map_err(|reason| {
            DeliveryError::BadAttachmentName {
                index,
                attachment,
                reason,
            }
        })?;
        let content_type = file.content_type.to_ascii_lowercase();
        let kind = AttachmentType::find(&content_type)
            .filter(|_| limits.allowed_attachment_types.contains(&content_type))
            .ok_or_else(|| DeliveryError::AttachmentTypeNotAllowed {
                index,
                attachment,
                content_type: file.content_type.clone(),
            })?;
        if !kind.fits_name(&name) {
            return Err(DeliveryError::AttachmentExtensionMismatch {
                index,
                attachment,
                content_type: kind.content_type.to_owned(),
                expected: kind.extensions_shown(),
                found: name.extension().map(str::to_owned),
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.body)
            .map_err(|_| DeliveryError::AttachmentNotBase64 { index, attachment })?;
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(file.checksum.trim()) {
            return Err(DeliveryError::ChecksumMismatch { index, attachment });
        }
        contents.push(PendingContent {
            index,
            attachment,
            kind,
            bytes,
        });
    }
    Ok(())
}

/// A loose BCP 47 check: letters, digits and hyphens, starting with 2–3 letters.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    //! The delivery intake by property (the same properties as the `intake`
    //! fuzz target, see docs/fuzzing.md): the canonical form round-trips, is
    //! RFC 8785 as written out independently below, and binds the delivery.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const TODAY: time::Date = time::macros::date!(2026 - 11 - 24);

    /// Any text, control characters, quotes, backslashes and astral
    /// characters included.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
            "[a-zA-Zåäö0-9 .-]{1,12}",
            Just("\u{0}\u{1f}\"\\/\u{7f}\u{2028}\u{1F600}".to_owned()),
        ]
    }

    fn maybe(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(s)
    }

    /// `docs/examples/beslut.pdf`, a valid PDF made by `minimal_pdf`.
    const EXAMPLE_PDF: &[u8] = include_bytes!("../../../docs/examples/beslut.pdf");

    fn attachment() -> impl Strategy<Value = Attachment> {
        (
            prop_oneof![3 => Just("application/pdf".to_owned()), 1 => text()],
            prop_oneof![3 => Just("beslut.pdf".to_owned()), 1 => text()],
            prop_oneof![
                2 => Just(EXAMPLE_PDF.to_vec()),
                1 => proptest::collection::vec(any::<u8>(), 0..16),
            ],
            proptest::bool::weighted(0.8),
        )
            .prop_map(
                |(content_type, filename, bytes, right_checksum)| Attachment {
                    content_type,
                    filename,
                    checksum: if right_checksum {
                        hex(&Sha256::digest(&bytes))
                    } else {
                        "00".repeat(32)
                    },
                    body: base64::engine::general_purpose::STANDARD.encode(&bytes),
                },
            )
    }

    fn message() -> impl Strategy<Value = SecureMessage> {
        let header = (
            prop_oneof![3 => "m[0-9]{1,4}", 1 => text()],
            prop_oneof![3 => Just("Beslut".to_owned()), 1 => text()],
            (text(), maybe(text()), maybe(text()), maybe(text())),
            proptest::option::of((text(), maybe(text()))),
            proptest::collection::vec((text(), text()), 0..2),
            prop_oneof![2 => Just("sv".to_owned()), 2 => Just("en-GB".to_owned()), 1 => text()],
        )
            .prop_map(
                |(
                    id,
                    subject,
                    (text, url, phone_number, email_address),
                    matter,
                    meta,
                    language,
                )| {
                    MessageHeader {
                        id,
                        subject,
                        support_info: SupportInfo {
                            text,
                            url,
                            phone_number,
                            email_address,
                        },
                        official_matter: matter.map(|(id, name)| OfficialMatter { id, name }),
                        metadata: meta
                            .into_iter()
                            .map(|(tag, value)| Metadata { tag, value })
                            .collect(),
                        language,
                    }
                },
            );
        let body = (
            prop_oneof![
                Just(BodyContentType::TextPlain),
                Just(BodyContentType::TextHtml)
            ],
            prop_oneof![
                2 => text(),
                2 => Just("<p>Hej <a href=\"https://example.se\">du</a></p>".to_owned()),
                1 => Just("<img src=x onerror=alert(1)>".to_owned()),
            ],
        )
            .prop_map(|(content_type, body)| MessageBody { content_type, body });
        (header, body, proptest::collection::vec(attachment(), 0..2)).prop_map(
            |(header, body, attachments)| SecureMessage {
                header,
                body,
                attachments,
            },
        )
    }

    fn delivery() -> impl Strategy<Value = SecureDelivery> {
        (
            prop_oneof![
                3 => Just("556016-0680".to_owned()),
                1 => Just("165560160680".to_owned()),
                1 => text()
            ],
            text(),
            maybe(text()),
            prop_oneof![
                3 => Just("19900101-1239".to_owned()),
                1 => Just("556016-0680".to_owned()),
                1 => text()
            ],
            (maybe(text()), maybe(text()), maybe(text())),
            proptest::collection::vec(message(), 0..=2),
            any::<bool>(),
        )
            .prop_map(
                |(
                    id,
                    name,
                    sender_attention,
                    recipient,
                    (reference, correlation_id, attention),
                    messages,
                    paper_fallback,
                )| {
                    SecureDelivery {
                        header: DeliveryHeader {
                            sender: SenderInfo {
                                id,
                                name,
                                attention: sender_attention,
                            },
                            recipient,
                            reference,
                            correlation_id,
                            attention,
                        },
                        messages,
                        paper_fallback,
                    }
                },
            )
    }

    /// RFC 8785 written out by hand: members sorted by UTF-16 code units, no
    /// whitespace, short escapes and lowercase `\u00xx` for other controls.
    fn jcs(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                assert!(n.is_i64() || n.is_u64(), "float {n}");
                out.push_str(&n.to_string());
            }
            Value::String(s) => jcs_string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    jcs(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                out.push('{');
                for (i, (key, value)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    jcs_string(key, out);
                    out.push(':');
                    jcs(value, out);
                }
                out.push('}');
            }
        }
    }

    fn jcs_string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Absent, `null`, `false` and empty-list fields are left out.
    fn has_omittable(v: &Value) -> bool {
        match v {
            Value::Null | Value::Bool(false) => true,
            Value::Array(items) => items.is_empty() || items.iter().any(has_omittable),
            Value::Object(map) => map.values().any(has_omittable),
            _ => false,
        }
    }

    fn outcome(d: SecureDelivery) -> Result<Vec<u8>, DeliveryError> {
        d.validate(&DeliveryLimits::default(), TODAY)
            .map(|v| v.canonical)
    }

    #[test]
    fn canonical_form_of_a_known_delivery() {
        let json = r#"{"messages":[{"header":{"id":"m1","subject":"S","language":"sv",
            "support_info":{"text":"t\u0001","url":null}},"attachments":[],
            "body":{"body":"b","content_type":"text/plain"}}],"paper_fallback":false,
            "header":{"recipient":"19900101-1239","sender":{"name":"N","id":"556016-0680"}}}"#;
        let d: SecureDelivery = serde_json::from_str(json).unwrap();
        assert_eq!(
            String::from_utf8(d.canonical_bytes()).unwrap(),
            r#"{"header":{"recipient":"19900101-1239","sender":{"id":"556016-0680","name":"N"}},"messages":[{"body":{"body":"b","content_type":"text/plain"},"header":{"id":"m1","language":"sv","subject":"S","support_info":{"text":"t\u0001"}}}]}"#
        );
    }

    fn pdf(filename: &str, bytes: &[u8]) -> Attachment {
        Attachment {
            content_type: "application/pdf".to_owned(),
            filename: filename.to_owned(),
            checksum: hex(&Sha256::digest(bytes)),
            body: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// A valid delivery with two messages, the second carrying `attachments`.
    fn with_attachments(attachments: Vec<Attachment>) -> SecureDelivery {
        let message = |id: &str, attachments| SecureMessage {
            header: MessageHeader {
                id: id.to_owned(),
                subject: "Beslut".to_owned(),
                support_info: SupportInfo {
                    text: "Ring oss".to_owned(),
                    url: None,
                    phone_number: None,
                    email_address: None,
                },
                official_matter: None,
                metadata: Vec::new(),
                language: "sv".to_owned(),
            },
            body: MessageBody {
                content_type: BodyContentType::TextPlain,
                body: "Hej".to_owned(),
            },
            attachments,
        };
        SecureDelivery {
            header: DeliveryHeader {
                sender: SenderInfo {
                    id: "556016-0680".to_owned(),
                    name: "Exempel kommun".to_owned(),
                    attention: None,
                },
                recipient: "199001011239".to_owned(),
                reference: None,
                correlation_id: None,
                attention: None,
            },
            messages: vec![
                message("m1", vec![pdf("först.pdf", EXAMPLE_PDF)]),
                message("m2", attachments),
            ],
            paper_fallback: false,
        }
    }

    /// The refusal of one attachment (message 1, attachment 1, after a good one).
    fn refusal(file: Attachment) -> DeliveryError {
        outcome(with_attachments(vec![pdf("ok.pdf", EXAMPLE_PDF), file])).unwrap_err()
    }

    fn exe() -> Vec<u8> {
        let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec();
        exe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
        exe.resize(1024, 0);
        exe
    }

    #[test]
    fn a_recipient_not_in_the_canonical_form_is_refused_as_such() {
        let today = TODAY;
        for written in [
            "9001011239",
            "900101-1239",
            "19900101-1239",
            " 199001011239",
        ] {
            let mut delivery = with_attachments(Vec::new());
            delivery.header.recipient = written.to_owned();
            let refused = delivery
                .validate(&DeliveryLimits::default(), today)
                .unwrap_err();
            assert_eq!(refused, DeliveryError::RecipientNotCanonical, "{written}");
            assert_eq!(refused.code(), "recipient_not_canonical");
        }
        // A number that is wrong in any form keeps its own reason.
        let mut delivery = with_attachments(Vec::new());
        delivery.header.recipient = "199001011238".to_owned();
        assert!(matches!(
            delivery.validate(&DeliveryLimits::default(), today),
            Err(DeliveryError::InvalidRecipient(_))
        ));
        let mut delivery = with_attachments(Vec::new());
        delivery.header.recipient = "199001011239".to_owned();
        assert!(delivery.validate(&DeliveryLimits::default(), today).is_ok());
    }

    #[test]
    fn valid_pdfs_are_accepted() {
        for name in [
            "beslut.pdf",
            "beslut.PDF",
            "Beslut 2026 (kopia).Pdf",
            "a.exe.pdf",
        ] {
            assert!(
                outcome(with_attachments(vec![pdf(name, EXAMPLE_PDF)])).is_ok(),
                "{name}"
            );
        }
        let mut upper = pdf("beslut.pdf", EXAMPLE_PDF);
        upper.content_type = "Application/PDF".to_owned();
        assert!(outcome(with_attachments(vec![upper])).is_ok());
    }

    #[test]
    fn an_executable_declared_as_pdf_is_refused() {
        let e = refusal(pdf("beslut.pdf", &exe()));
        assert_eq!(e.code(), "attachment_content_mismatch");
        let message = e.to_string();
        assert!(
            message.starts_with(
                "message 1, attachment 1: the content is not a PDF: it starts like a Windows executable"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_pdf_header_alone_is_refused() {
        let e = refusal(pdf("beslut.pdf", b"%PDF-1.4\n"));
        assert_eq!(e.code(), "attachment_content_mismatch");
        assert!(
            e.to_string()
                .starts_with("message 1, attachment 1: the content is not a PDF: its structure"),
            "{e}"
        );
    }

    #[test]
    fn the_extension_must_fit_the_type() {
        let e = refusal(pdf("a.exe", EXAMPLE_PDF));
        assert_eq!(e.code(), "attachment_extension_mismatch");
        assert_eq!(
            e.to_string(),
            "message 1, attachment 1: the file name does not fit the type \"application/pdf\": \
             it needs the extension .pdf, not .exe"
        );
        let e = refusal(pdf("beslut", EXAMPLE_PDF));
        assert_eq!(e.code(), "attachment_extension_mismatch");
        assert!(
            e.to_string()
                .ends_with("it needs the extension .pdf, and has none"),
            "{e}"
        );
        for name in ["beslut.txt", "beslut.pdf.exe", "beslut.pdfx"] {
            assert_eq!(
                refusal(pdf(name, EXAMPLE_PDF)).code(),
                "attachment_extension_mismatch"
            );
        }
        // The name is checked before the extension, the extension before the bytes.
        assert_eq!(
            refusal(pdf("a.exe", &exe())).code(),
            "attachment_extension_mismatch"
        );
        assert_eq!(
            refusal(pdf("CON.exe", &exe())).code(),
            "bad_attachment_name"
        );
    }

    #[test]
    fn unsafe_names_are_refused_with_their_reason() {
        use crate::content::AttachmentNameError as E;
        for (name, reason) in [
            ("CON.pdf", E::DeviceName),
            ("nul", E::DeviceName),
            ("nul.pdf", E::DeviceName),
            ("a<b.pdf", E::ReservedCharacter { character: '<' }),
            ("a:b.pdf", E::ReservedCharacter { character: ':' }),
            ("x\u{200B}.pdf", E::InvisibleCharacter),
            ("x\u{00AD}.pdf", E::InvisibleCharacter),
            ("faktura\u{202E}fdp.exe", E::ControlCharacter),
            ("beslut.pdf.", E::TrailingDot),
        ] {
            let e = refusal(pdf(name, EXAMPLE_PDF));
            assert_eq!(
                e,
                DeliveryError::BadAttachmentName {
                    index: 1,
                    attachment: 1,
                    reason: reason.clone(),
                },
                "{name:?}"
            );
            assert_eq!(e.code(), "bad_attachment_name");
            assert_eq!(
                e.to_string(),
                format!("message 1, attachment 1: file name: {reason}")
            );
        }
    }

    #[test]
    fn only_types_both_allowed_and_known_pass() {
        let mut text = pdf("a.txt", b"hej");
        text.content_type = "text/plain".to_owned();
        assert_eq!(refusal(text.clone()).code(), "attachment_type_not_allowed");
        // An installation that lists a type kuvert cannot check still refuses it.
        let limits = DeliveryLimits {
            allowed_attachment_types: vec!["application/pdf".to_owned(), "text/plain".to_owned()],
            ..DeliveryLimits::default()
        };
        let e = with_attachments(vec![text])
            .validate(&limits, TODAY)
            .unwrap_err();
        assert_eq!(e.code(), "attachment_type_not_allowed");
        // And one that does not allow PDF refuses PDFs.
        let limits = DeliveryLimits {
            allowed_attachment_types: Vec::new(),
            ..DeliveryLimits::default()
        };
        let e = with_attachments(Vec::new())
            .validate(&limits, TODAY)
            .unwrap_err();
        assert_eq!(e.code(), "attachment_type_not_allowed");
    }

    #[test]
    fn cheap_checks_come_before_the_content_check() {
        // A non-PDF in message 0 and a bad checksum in message 1: the
        // checksum is reported, the content was not parsed yet.
        let mut d = with_attachments(Vec::new());
        d.messages[0].attachments = vec![pdf("a.pdf", &exe())];
        let mut bad_sum = pdf("b.pdf", EXAMPLE_PDF);
        bad_sum.checksum = "00".repeat(32);
        d.messages[1].attachments = vec![bad_sum];
        assert_eq!(
            outcome(d).unwrap_err(),
            DeliveryError::ChecksumMismatch {
                index: 1,
                attachment: 0
            }
        );
        // Base64 and size likewise.
        let mut not_b64 = pdf("b.pdf", EXAMPLE_PDF);
        not_b64.body = "***".to_owned();
        let mut d = with_attachments(vec![not_b64]);
        d.messages[0].attachments = vec![pdf("a.pdf", &exe())];
        assert_eq!(outcome(d).unwrap_err().code(), "attachment_not_base64");
        let big = vec![b'%'; DEFAULT_MAX_DELIVERY_BYTES];
        let d = with_attachments(vec![pdf("stor.pdf", &big)]);
        assert_eq!(outcome(d).unwrap_err().code(), "delivery_too_large");
        // With everything cheap in order, the content is what is refused.
        let d = with_attachments(vec![pdf("b.pdf", EXAMPLE_PDF), pdf("c.pdf", &exe())]);
        assert_eq!(
            outcome(d).unwrap_err(),
            DeliveryError::AttachmentContentMismatch {
                index: 1,
                attachment: 1,
                reason: crate::content::ContentMismatch {
                    what: "a PDF",
                    reason: "it starts like a Windows executable (MZ), not with a %PDF-1.x or \
                             %PDF-2.0 header"
                        .to_owned(),
                },
            }
        );
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            DeliveryError::NoMessages,
            DeliveryError::AttachmentExtensionMismatch {
                index: 0,
                attachment: 0,
                content_type: String::new(),
                expected: String::new(),
                found: None,
            },
            DeliveryError::AttachmentContentMismatch {
                index: 0,
                attachment: 0,
                reason: crate::content::ContentMismatch {
                    what: "a PDF",
                    reason: String::new(),
                },
            },
            DeliveryError::AttachmentTypeNotAllowed {
                index: 0,
                attachment: 0,
                content_type: String::new(),
            },
            DeliveryError::AttachmentNotBase64 {
                index: 0,
                attachment: 0,
            },
            DeliveryError::ChecksumMismatch {
                index: 0,
                attachment: 0,
            },
            DeliveryError::BadAttachmentName {
                index: 0,
                attachment: 0,
                reason: crate::content::AttachmentNameError::Empty,
            },
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(DeliveryError::code).collect();
        assert_eq!(codes.len(), all.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn canonical_form_round_trips(d in delivery()) {
            let canonical = d.canonical_bytes();
            let again: SecureDelivery = serde_json::from_slice(&canonical).unwrap();
            prop_assert_eq!(&again, &d);
            prop_assert_eq!(again.canonical_bytes(), canonical.clone());
            let value: Value = serde_json::from_slice(&canonical).unwrap();
            let mut written = String::new();
            jcs(&value, &mut written);
            prop_assert_eq!(written.as_bytes(), canonical.as_slice());
            let first = outcome(d);
            prop_assert_eq!(&first, &outcome(again));
            if let Ok(signed) = first {
                prop_assert_eq!(&signed, &canonical);
                prop_assert!(!has_omittable(&value), "{}", String::from_utf8_lossy(&canonical));
            }
        }

        /// What a signature over the canonical form relies on: changing any
        /// one byte either breaks the JSON, or reads back as the same
        /// delivery, or as a different delivery with a different canonical
        /// form. Two deliveries never share one.
        #[test]
        fn canonical_form_binds_the_delivery(d in delivery(), at in any::<usize>(), bit in 0u8..8) {
            let canonical = d.canonical_bytes();
            let mut changed = canonical.clone();
            let at = at % changed.len();
            changed[at] ^= 1 << bit;
            if let Ok(other) = serde_json::from_slice::<SecureDelivery>(&changed) {
                prop_assert_eq!(other == d, other.canonical_bytes() == canonical);
            }
        }
    }
}
