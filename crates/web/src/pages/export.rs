//! "Download all my mail" (issue 18, decision 0022): `POST /settings/export`
//! answers one zip, streamed as it is written.
//!
//! A blocking task walks the person's messages (inbox and archive, oldest
//! first) through the mailbox's export functions, a page of ids at a time,
//! reads and decrypts one message, writes its files into a
//! [`zip::ZipWriter::new_stream`] over a [`ChannelWriter`], and goes on to the
//! next. The channel is bounded ([`CHANNEL_CHUNKS`] × [`CHUNK_BYTES`]), so a
//! slow download slows the walk instead of filling memory: what is held at
//! once is one message, a few chunks, and the index (a line per message).
//! A download that breaks off stops the walk; an error after the first
//! byte aborts the response, so a browser never keeps a silently short zip.
//!
//! The zip (names in the page's language; Swedish shown):
//!
//! ```text
//! kuvert-post/index.html                        every message, with links
//! kuvert-post/0001_2026-12-01_Subject/meddelande.html   (or .txt for plain text)
//! kuvert-post/0001_2026-12-01_Subject/kvitto.json       the signed receipt
//! kuvert-post/0001_2026-12-01_Subject/bilagor/<name>    the attachments
//! ```
//!
//! The HTML files are opened locally, outside kuvert's CSP, so each carries
//! its own in a `<meta http-equiv>`: nothing loads, nothing runs.

use super::settings::pseudonym;
use super::{CsrfField, Lang, PageError, settings::SettingsError};
use crate::AppState;
use crate::session::WebSession;
use askama::Template;
use axum::body::Body;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use kuvert_domain::clock::parse_instant;
use kuvert_domain::delivery::BodyContentType;
use kuvert_domain::identity::RecipientId;
use kuvert_mailbox::Mailbox;
use kuvert_mailbox::export::{ExportedMessage, WALK_PAGE};
use sha2::Digest as _;
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;

/// Bytes gathered before a chunk goes to the response.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the writer and the response at most.
pub const CHANNEL_CHUNKS: usize = 4;

/// Exports one node runs at once, at most: each holds a blocking thread and
/// a reader connection while its download lasts, so one person scripting
/// exports cannot take them all. More are refused with 503 `exports_busy`
/// (`Retry-After`), before anything is audited or read.
pub const MAX_CONCURRENT_EXPORTS: usize = 8;

/// The slots of one node, for [`crate::Inner::export_slots`].
pub fn export_slots() -> std::sync::Arc<tokio::sync::Semaphore> {
    std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_EXPORTS))
}

/// Takes every export slot of this node until the permit is dropped (for
/// tests of the refusal, like `Db::hold_writer`).
pub fn hold_all_export_slots(state: &AppState) -> Option<tokio::sync::OwnedSemaphorePermit> {
    state
        .0
        .export_slots
        .clone()
        .try_acquire_many_owned(u32::try_from(MAX_CONCURRENT_EXPORTS).ok()?)
        .ok()
}
/// The longest file or folder name written (characters, extension kept).
pub const MAX_NAME_CHARS: usize = 80;

/// The export's top folder.
const ROOT: &str = "kuvert-post";

/// The stylesheet of the exported HTML files, allowed by its hash.
const STYLE: &str = "body{font:1.0625rem/1.5 system-ui,sans-serif;max-width:45rem;margin:1rem auto;padding:0 1rem;color:#1b1b1b}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ccc;vertical-align:top}\
.body{border-top:2px solid #1b1b1b;margin-top:1rem;padding-top:1rem;overflow-wrap:anywhere}a{color:#0b5394}";

/// The CSP of every exported HTML file: its own stylesheet, nothing else.
fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; form-action 'none'; base-uri 'none'"
    )
}

/// The file names, in the page's language.
struct Names {
    message: &'static str,
    receipt: &'static str,
    attachments: &'static str,
    attachment: &'static str,
    untitled: &'static str,
}

impl Names {
    fn of(lang: Lang) -> Self {
        Self {
            message: lang.pick("meddelande", "message"),
            receipt: lang.pick("kvitto.json", "receipt.json"),
            attachments: lang.pick("bilagor", "attachments"),
            attachment: lang.pick("bilaga", "attachment"),
            untitled: lang.pick("utan-rubrik", "untitled"),
        }
    }
}

/// `POST /settings/export` (CSRF): the zip. Audited before the first byte.
pub async fn download(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<CsrfField>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let mailbox = state.0.mailbox.clone().ok_or(PageError::NotFound)?;
    // Held by the writing task until the zip is written or broken off.
    let slot = state
        .0
        .export_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| SettingsError::ExportsBusy)?;
    let recipient = session.recipient();
    let subject = pseudonym(&state, &recipient)?;
    let count = mailbox
        .message_count(&recipient)
        .await
        .map_err(SettingsError::from)?;
    mailbox
        .record_export(&subject, count)
        .await
        .map_err(SettingsError::from)?;
    let (chunks, received) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    let runtime = tokio::runtime::Handle::current();
    let person = format!("{} {}", session.given_name, session.family_name);
    let today = state.clock().today().to_string();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let failed = chunks.clone();
        let writer = ChannelWriter::new(chunks);
        if let Err(error) = write_zip(&runtime, &mailbox, &recipient, lang, &person, writer) {
            // Told to the response, which then breaks off: a download that
            // ended early is visibly incomplete, not a short zip.
            if failed.is_closed() {
                tracing::info!("export stopped: the download was broken off");
            } else {
                tracing::error!(error = %error, "export failed");
                let _ = failed.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let stream = futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|chunk| (chunk, received))
    });
    let filename = format!("{}-{today}.zip", lang.pick("kuvert-post", "kuvert-mail"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Mailbox(#[from] kuvert_mailbox::MailboxError),
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Template(#[from] askama::Error),
}

/// A `Write` that hands [`CHUNK_BYTES`] at a time to the bounded channel,
/// waiting while it is full; a closed channel (download gone) is an error.
pub struct ChannelWriter {
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    pub fn new(chunks: mpsc::Sender<Result<Bytes, std::io::Error>>) -> Self {
        Self {
            buffer: Vec::with_capacity(CHUNK_BYTES),
            chunks,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.chunks
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK_BYTES.saturating_sub(self.buffer.len()).max(1);
        let taken = data.len().min(room);
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// One line of the index.
struct IndexLine {
    href: String,
    subject: String,
    sender_name: String,
    delivered_at: String,
    archived: bool,
    attachments: usize,
}

#[derive(Template)]
#[template(path = "settings_export_index.html")]
struct IndexFile<'a> {
    lang: Lang,
    csp: &'a str,
    style: &'a str,
    person: &'a str,
    lines: &'a [IndexLine],
}

struct AttachmentLink {
    href: String,
    name: String,
    size: usize,
}

#[derive(Template)]
#[template(path = "settings_export_message.html")]
struct MessageFile<'a> {
    lang: Lang,
    csp: &'a str,
    style: &'a str,
    message: &'a ExportedMessage,
    delivered_at: String,
    attachments: &'a [AttachmentLink],
    receipt_file: Option<&'a str>,
}

/// Runs on a blocking thread; the mailbox reads are driven on `runtime`.
fn write_zip(
    runtime: &tokio::runtime::Handle,
    mailbox: &Arc<Mailbox>,
    recipient: &RecipientId,
    lang: Lang,
    person: &str,
    writer: ChannelWriter,
) -> Result<(), ExportError> {
    let names = Names::of(lang);
    let csp = content_security_policy();
    let mut zip = zip::ZipWriter::new_stream(writer);
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let page = runtime.block_on(mailbox.walk_messages(recipient, after.as_ref(), WALK_PAGE))?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for entry in &page {
            let message = match runtime.block_on(mailbox.export_message(recipient, &entry.id)) {
                Ok(message) => message,
                // Deleted between the walk and the read: not in the export.
                Err(kuvert_mailbox::MailboxError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            };
            let number = lines.len() + 1;
            lines.push(write_message(
                &mut zip, &names, &csp, lang, number, &message,
            )?);
        }
        after = Some(last);
    }
    let index = IndexFile {
        lang,
        csp: &csp,
        style: STYLE,
        person,
        lines: &lines,
    }
    .render()?;
    zip.start_file(format!("{ROOT}/index.html"), deflated())?;
    zip.write_all(index.as_bytes())?;
    let mut writer = zip.finish()?.into_inner();
    writer.flush()?;
    Ok(())
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

/// Attachments (PDF, mostly compressed already) are stored as they are.
fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
}

/// `2026-12-01T09:30:00Z` as `2026-12-01 09:30:00 UTC` (as given if it
/// does not parse).
fn readable_instant(text: &str) -> String {
    match parse_instant(text) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => text.to_owned(),
    }
}

fn zip_time(text: &str) -> Option<zip::DateTime> {
    let at = parse_instant(text).ok()?;
    zip::DateTime::from_date_and_time(
        u16::try_from(at.year()).ok()?,
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
    )
    .ok()
}

fn write_message<W: Write>(
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    names: &Names,
    csp: &str,
    lang: Lang,
    number: usize,
    message: &ExportedMessage,
) -> Result<IndexLine, ExportError> {
    let day = message.delivered_at.get(..10).unwrap_or("0000-00-00");
    let title = safe_name(&message.subject, names.untitled, 50);
    let folder = format!("{number:04}_{}_{title}", safe_name(day, "0000-00-00", 10));
    let modified = zip_time(&message.delivered_at);
    let with_time = |options: SimpleFileOptions| match modified {
        Some(at) => options.last_modified_time(at),
        None => options,
    };
    let mut taken = HashSet::new();
    let attachments: Vec<AttachmentLink> = message
        .attachments
        .iter()
        .map(|a| {
            let name = unique(
                &safe_name(&a.filename, names.attachment, MAX_NAME_CHARS),
                &mut taken,
            );
            AttachmentLink {
                href: format!("{}/{}", names.attachments, percent_encode(&name)),
                name,
                size: a.bytes.len(),
            }
        })
        .collect();
    let receipt_file = message.receipt.as_ref().map(|_| names.receipt);
    let message_file = match message.content_type {
        BodyContentType::TextHtml => {
            let html = MessageFile {
                lang,
                csp,
                style: STYLE,
                message,
                delivered_at: readable_instant(&message.delivered_at),
                attachments: &attachments,
                receipt_file,
            }
            .render()?;
            let file = format!("{}.html", names.message);
            zip.start_file(format!("{ROOT}/{folder}/{file}"), with_time(deflated()))?;
            zip.write_all(html.as_bytes())?;
            file
        }
        BodyContentType::TextPlain => {
            let text = plain_text(lang, message, &attachments, receipt_file);
            let file = format!("{}.txt", names.message);
            zip.start_file(format!("{ROOT}/{folder}/{file}"), with_time(deflated()))?;
            zip.write_all(text.as_bytes())?;
            file
        }
    };
    if let Some(receipt) = &message.receipt {
        zip.start_file(
            format!("{ROOT}/{folder}/{}", names.receipt),
            with_time(deflated()),
        )?;
        zip.write_all(receipt.as_bytes())?;
    }
    for (link, attachment) in attachments.iter().zip(&message.attachments) {
        zip.start_file(
            format!("{ROOT}/{folder}/{}/{}", names.attachments, link.name),
            with_time(stored()),
        )?;
        zip.write_all(&attachment.bytes)?;
    }
    Ok(IndexLine {
        href: format!(
            "{}/{}",
            percent_encode(&folder),
            percent_encode(&message_file)
        ),
        subject: message.subject.clone(),
        sender_name: message.sender_name.clone(),
        delivered_at: readable_instant(&message.delivered_at),
        archived: message.archived,
        attachments: message.attachments.len(),
    })
}

/// A plain-text message as a `.txt` file: a short header, then the body
/// exactly as sent.
fn plain_text(
    lang: Lang,
    message: &ExportedMessage,
    attachments: &[AttachmentLink],
    receipt_file: Option<&str>,
) -> String {
    let mut text = String::new();
    let mut line = |label: &str, value: &str| {
        text.push_str(label);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    };
    line(lang.pick("Ämne", "Subject"), &message.subject);
    line(
        lang.pick("Avsändare", "Sender"),
        &format!("{} ({})", message.sender_name, message.sender_id),
    );
    line(
        lang.pick(
            "Levererat (rättsligt leveransögonblick)",
            "Delivered (legal moment of delivery)",
        ),
        &readable_instant(&message.delivered_at),
    );
    if let Some(matter) = &message.official_matter {
        let name = matter.name.as_deref().unwrap_or_default();
        line(
            lang.pick("Ärende", "Case"),
            &format!("{} {name}", matter.id),
        );
    }
    if let Some(reference) = &message.reference {
        line(lang.pick("Referens", "Reference"), reference);
    }
    line(
        lang.pick("Meddelande-id", "Message id"),
        &message.id.to_string(),
    );
    line(
        lang.pick("Leverans-id", "Delivery id"),
        &message.delivery_id,
    );
    for a in attachments {
        line(lang.pick("Bilaga", "Attachment"), &a.href);
    }
    if let Some(file) = receipt_file {
        line(lang.pick("Kvitto", "Receipt"), file);
    }
    line(lang.pick("Support", "Support"), &message.support_info.text);
    text.push_str("\r\n");
    text.push_str(&message.body);
    text.push_str("\r\n");
    text
}

/// Windows' reserved device names, refused as file names there.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A name that is one safe path component on every system: no separators,
/// no `..`, no control or bidirectional-control characters or characters
/// Windows refuses, no
/// leading or trailing dots and spaces, not a reserved device name, at most
/// `max` characters (the extension kept), never empty (`fallback`).
pub fn safe_name(name: &str, fallback: &str, max: usize) -> String {
    let replaced: String = name
        .chars()
        .map(|c| {
            // Bidirectional controls too: they can make `x.exe` look like
            // `exe.pdf` in a file manager.
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let (stem, extension) = match trimmed.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 10 => (stem, Some(ext)),
        _ => (trimmed, None),
    };
    let room = max.saturating_sub(extension.map_or(0, |e| e.chars().count() + 1));
    let stem: String = stem.chars().take(room.max(1)).collect();
    let stem = stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let mut safe = match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem.to_owned(),
    };
    if safe.is_empty() || stem.is_empty() {
        safe = fallback.to_owned();
    }
    let device = safe
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if RESERVED.contains(&device.as_str()) {
        safe.insert(0, '_');
    }
    safe
}

/// `name`, or `name (2)`, `name (3)`, … if a name equal but for case is
/// taken (case-insensitive file systems would merge them).
pub fn unique(name: &str, taken: &mut HashSet<String>) -> String {
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    let mut candidate = name.to_owned();
    let mut n = 2;
    while !taken.insert(candidate.to_lowercase()) {
        candidate = format!("{stem} ({n}){extension}");
        n += 1;
    }
    candidate
}

/// A path component as a relative link (RFC 3986 unreserved kept).
fn percent_encode(component: &str) -> String {
    let mut out = String::new();
    for byte in component.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_are_one_safe_component() {
        assert_eq!(safe_name("beslut.pdf", "bilaga", 80), "beslut.pdf");
        assert_eq!(
            safe_name("../../etc/passwd", "bilaga", 80),
            "_.._etc_passwd"
        );
        assert_eq!(safe_name("..", "bilaga", 80), "bilaga");
        assert_eq!(safe_name(" .hidden. ", "bilaga", 80), "hidden");
        assert_eq!(safe_name("a\\b:c*?.pdf", "bilaga", 80), "a_b_c__.pdf");
        assert_eq!(safe_name("CON.pdf", "bilaga", 80), "_CON.pdf");
        assert_eq!(
            safe_name("beslut\u{202e}fdp.exe", "bilaga", 80),
            "beslut_fdp.exe"
        );
        assert_eq!(
            safe_name("Beslut om bostadsbidrag – Åsa", "x", 80),
            "Beslut om bostadsbidrag – Åsa"
        );
        let long = format!("{}.pdf", "å".repeat(200));
        let cut = safe_name(&long, "bilaga", 80);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with(".pdf"));
        for hostile in ["a/../b", "/abs", "x\u{0}y", "..\\..\\win"] {
            let safe = safe_name(hostile, "bilaga", 80);
            assert!(!safe.contains('/') && !safe.contains('\\') && !safe.contains('\0'));
            assert!(!safe.starts_with('.'), "{safe}");
        }
    }

    #[test]
    fn duplicates_are_numbered_whatever_their_case() {
        let mut taken = HashSet::new();
        assert_eq!(unique("beslut.pdf", &mut taken), "beslut.pdf");
        assert_eq!(unique("Beslut.PDF", &mut taken), "Beslut (2).PDF");
        assert_eq!(unique("beslut.pdf", &mut taken), "beslut (3).pdf");
        assert_eq!(unique("noext", &mut taken), "noext");
        assert_eq!(unique("noext", &mut taken), "noext (2)");
    }

    #[test]
    fn links_are_percent_encoded() {
        assert_eq!(percent_encode("a b/å.pdf"), "a%20b%2F%C3%A5.pdf");
    }

    #[test]
    fn the_channel_writer_sends_bounded_chunks() {
        let (tx, mut rx) = mpsc::channel(CHANNEL_CHUNKS);
        let handle = std::thread::spawn(move || {
            let mut writer = ChannelWriter::new(tx);
            writer.write_all(&vec![7u8; CHUNK_BYTES * 2 + 10]).unwrap();
            writer.flush().unwrap();
        });
        let mut sizes = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            sizes.push(chunk.unwrap().len());
        }
        handle.join().unwrap();
        assert_eq!(sizes, vec![CHUNK_BYTES, CHUNK_BYTES, 10]);
    }
}
