//! Message content rules: the HTML body sanitiser and attachment file names.
//!
//! A message body is written by a sender we trust only to be an authority, and
//! read in a recipient's mailbox next to other authorities' mail. So it may
//! format text, but never run script, restyle the page, or load anything
//! (a remote image is a read receipt and a tracking pixel).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use serde::Deserialize;

use crate::html_policy;

/// Built once from [`html_policy`], the allowlist intake checks against too:
/// ammonia's builder is immutable after configuration and `Sync`.
static POLICY: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut b = Builder::default();
    b.tags(html_policy::ALLOWED_TAGS.iter().copied().collect())
        .clean_content_tags(html_policy::DROPPED_WITH_CONTENT.iter().copied().collect())
        // Start attributes from nothing: no `style`, `id`, `class`, `src`, on*.
        .generic_attributes(html_policy::GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(
            html_policy::TAG_ATTRIBUTES
                .iter()
                .map(|(tag, attrs)| (*tag, attrs.iter().copied().collect::<HashSet<_>>()))
                .collect(),
        )
        .tag_attribute_values(HashMap::new())
        .set_tag_attribute_values(HashMap::new())
        .allowed_classes(HashMap::new())
        .url_schemes(html_policy::URL_SCHEMES.iter().copied().collect())
        // A relative URL would resolve against the mailbox's own origin.
        .url_relative(if html_policy::RELATIVE_URLS_ALLOWED {
            UrlRelative::PassThrough
        } else {
            UrlRelative::Deny
        })
        .link_rel(Some(html_policy::LINK_REL))
        .strip_comments(!html_policy::COMMENTS_ALLOWED);
    b
});

/// Sanitises a text/html message body with ammonia, strictly, by the
/// allowlist in [`html_policy`]: text/formatting tags only (p, br, b, strong,
/// i, em, u, ul, ol, li, h1-h6, table/thead/tbody/tr/th/td, blockquote, pre,
/// code, a, span, div, hr); no script/style/iframe/object/embed/form/svg/
/// math/img/video/audio/link/meta/base; attributes title and lang anywhere,
/// href on a, colspan/rowspan on td and th, scope on th, start on ol, and
/// nothing else (no `style`, no on*, nothing that loads a remote resource:
/// no src, srcset, background, poster, etc.); links only absolute, with
/// http/https/mailto/tel schemes and rel="noopener noreferrer nofollow"; no
/// comments.
///
/// Intake refuses every body this would change
/// ([`crate::html_check::find_unsafe_html`]), so for a stored body it is
/// defence in depth: the output is the body as signed, apart from the `rel`
/// on links.
pub fn sanitize_html(input: &str) -> String {
    POLICY.clean(input).to_string()
}

/// Longest file name most file systems accept, in bytes.
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 255;

/// Characters Windows does not allow in a file name (besides '/', '\\' and
/// the control characters, refused on their own). ':' would also name an
/// NTFS alternate data stream.
pub const WINDOWS_RESERVED_CHARS: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Names Windows keeps for devices, whatever the extension: `NUL.pdf` opens
/// the null device, not a file. Compared case-insensitively with the part of
/// the name before its first dot (trailing spaces removed, as Windows does).
/// COM0/LPT0, the superscript digits and the console names are devices too.
pub const WINDOWS_DEVICE_NAMES: &[&str] = &[
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "COM0",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "COM\u{B9}",
    "COM\u{B2}",
    "COM\u{B3}",
    "LPT0",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "LPT\u{B9}",
    "LPT\u{B2}",
    "LPT\u{B3}",
    "CONIN$",
    "CONOUT$",
];

/// Why an attachment file name was rejected. Each has a stable `code()`;
/// the messages never repeat the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentNameError {
    #[error("attachment name is empty")]
    Empty,
    #[error("attachment name is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("attachment name contains a path separator")]
    PathSeparator,
    #[error("attachment name is a dot segment")]
    DotSegment,
    #[error("attachment name contains a control or text-direction character")]
    ControlCharacter,
    #[error(
        "attachment name contains an invisible character (zero-width, soft hyphen or another \
         format character) that makes it look like a different name"
    )]
    InvisibleCharacter,
    #[error(
        "attachment name contains {character:?}, which Windows does not allow in file names \
         (< > : \" | ? *)"
    )]
    ReservedCharacter { character: char },
    #[error("attachment name starts with a dot")]
    LeadingDot,
    #[error("attachment name ends with a dot, which Windows removes")]
    TrailingDot,
    #[error("attachment name starts or ends with whitespace")]
    SurroundingWhitespace,
    #[error(
        "attachment name is a Windows device name (CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9, ...), \
         with or without an extension"
    )]
    DeviceName,
}

impl AttachmentNameError {
    /// Stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "attachment_name_empty",
            Self::TooLong { .. } => "attachment_name_too_long",
            Self::PathSeparator => "attachment_name_path_separator",
            Self::DotSegment => "attachment_name_dot_segment",
            Self::ControlCharacter => "attachment_name_control_character",
            Self::InvisibleCharacter => "attachment_name_invisible_character",
            Self::ReservedCharacter { .. } => "attachment_name_reserved_character",
            Self::LeadingDot => "attachment_name_leading_dot",
            Self::TrailingDot => "attachment_name_trailing_dot",
            Self::SurroundingWhitespace => "attachment_name_surrounding_whitespace",
            Self::DeviceName => "attachment_name_device_name",
        }
    }
}

/// An attachment file name that cannot escape a folder or disguise itself,
/// and that every common file system can store as it is:
/// - not empty, at most 255 bytes;
/// - no '/', '\\', NUL or other control characters (C0, DEL, C1), no bidi
///   controls (U+200E/F, U+061C, U+202A..=U+202E, U+2066..=U+2069, which make
///   "x\u{202E}fdp.exe" display as "xexe.pdf"), no line or paragraph
///   separator;
/// - no invisible characters: zero-width space/joiners (U+200B..=U+200D),
///   word joiner (U+2060), soft hyphen (U+00AD), byte-order mark, and the
///   other format characters (Unicode category Cf) and default-ignorable
///   code points (variation selectors, Hangul fillers, tag characters, ...):
///   two names that look the same must be the same;
/// - none of the characters Windows refuses (`< > : " | ? *`);
/// - not "." or "..", not starting with '.', not ending with '.' (Windows
///   drops it), no surrounding whitespace;
/// - not a Windows device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`..`COM9`,
///   `LPT0`..`LPT9`, ...: [`WINDOWS_DEVICE_NAMES`], case-insensitive), also
///   not with an extension (`nul.pdf`).
///
/// Rejected, never silently rewritten: the sender must learn that the name
/// they chose is not what the recipient would see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct AttachmentName(String);

impl AttachmentName {
    pub fn parse(s: &str) -> Result<Self, AttachmentNameError> {
        if s.trim().is_empty() {
            return Err(AttachmentNameError::Empty);
        }
        if s.len() > MAX_ATTACHMENT_NAME_BYTES {
            return Err(AttachmentNameError::TooLong {
                max: MAX_ATTACHMENT_NAME_BYTES,
            });
        }
        if s.contains(['/', '\\']) {
            return Err(AttachmentNameError::PathSeparator);
        }
        if s.chars().any(is_forbidden_char) {
            return Err(AttachmentNameError::ControlCharacter);
        }
        if s.chars().any(is_invisible_char) {
            return Err(AttachmentNameError::InvisibleCharacter);
        }
        if let Some(character) = s.chars().find(|c| WINDOWS_RESERVED_CHARS.contains(c)) {
            return Err(AttachmentNameError::ReservedCharacter { character });
        }
        if s == "." || s == ".." {
            return Err(AttachmentNameError::DotSegment);
        }
        if s.starts_with('.') {
            return Err(AttachmentNameError::LeadingDot);
        }
        // " beslut.pdf" and "beslut.pdf " look identical to a reader, and
        // Windows drops the trailing space: keep names unambiguous.
        if s.trim() != s {
            return Err(AttachmentNameError::SurroundingWhitespace);
        }
        if s.ends_with('.') {
            return Err(AttachmentNameError::TrailingDot);
        }
        if is_device_name(s) {
            return Err(AttachmentNameError::DeviceName);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What follows the last dot, as written (`"PDF"` for `"beslut.PDF"`);
    /// `None` without a dot. A valid name never starts or ends with a dot,
    /// so both sides of it are non-empty.
    pub fn extension(&self) -> Option<&str> {
        self.0.rsplit_once('.').map(|(_, extension)| extension)
    }
}

/// Whether the part of `name` before its first dot, less trailing spaces,
/// is a Windows device name.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    // ASCII case only: the superscript digits have no other case.
    WINDOWS_DEVICE_NAMES
        .iter()
        .any(|device| device.eq_ignore_ascii_case(stem))
}

/// Control characters (C0, DEL, C1), the bidi embedding/override/isolate
/// controls, and the invisible marks that also reorder or hide text.
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' // LRM, RLM
                | '\u{061C}' // Arabic letter mark
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}' // line/paragraph separators
        )
}

/// Characters that are not drawn, or drawn as nothing, so that two names
/// that look the same differ: the format characters (general category Cf,
/// Unicode 16) and the other default-ignorable code points
/// (DerivedCoreProperties.txt), assigned or reserved. The bidi controls among
/// them are [`is_forbidden_char`]'s.
fn is_invisible_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{0600}'..='\u{0605}' // Arabic number signs
            | '\u{06DD}' | '\u{070F}' | '\u{0890}' | '\u{0891}' | '\u{08E2}'
            | '\u{115F}' | '\u{1160}' // Hangul choseong/jungseong fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors, vowel separator
            | '\u{200B}'..='\u{200D}' // zero-width space, non-joiner, joiner
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, deprecated formats
            | '\u{3164}' // Hangul filler
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}' // zero-width no-break space, byte-order mark
            | '\u{FFA0}' // halfwidth Hangul filler
            | '\u{FFF0}'..='\u{FFFB}' // reserved, interlinear annotation
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
}

impl<'de> Deserialize<'de> for AttachmentName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Attachment types and their content
// ---------------------------------------------------------------------------

/// Why an attachment's bytes are not what its declared type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the content is not {what}: {reason}")]
pub struct ContentMismatch {
    /// What the type promises, e.g. "a PDF".
    pub what: &'static str,
    /// What is wrong with the bytes.
    pub reason: String,
}

/// What kuvert knows of one attachment type: the file-name extensions that
/// fit it and how its bytes are checked. An installation allows a subset
/// (`DeliveryLimits::allowed_attachment_types`); a type that is not in
/// [`ATTACHMENT_TYPES`] cannot be accepted, because its content could not be
/// checked. To support a type, add a row here with its content check.
#[derive(Debug, Clone, Copy)]
pub struct AttachmentType {
    /// The MIME type, lowercase.
    pub content_type: &'static str,
    /// Extensions a file name of this type may end in, lowercase, no dot
    /// (compared case-insensitively).
    pub extensions: &'static [&'static str],
    /// What the content must be, for messages: "a PDF".
    pub what: &'static str,
    /// Checks the decoded bytes; `Err` says what is wrong. May be costly
    /// (it parses): run it after the cheap checks.
    pub check: fn(&[u8]) -> Result<(), String>,
}

/// Every attachment type kuvert can check.
pub const ATTACHMENT_TYPES: &[AttachmentType] = &[AttachmentType {
    content_type: "application/pdf",
    extensions: &["pdf"],
    what: "a PDF",
    check: check_pdf,
}];

impl AttachmentType {
    /// The row for a MIME type (case-insensitive), if kuvert knows it.
    pub fn find(content_type: &str) -> Option<&'static Self> {
        ATTACHMENT_TYPES
            .iter()
            .find(|t| t.content_type.eq_ignore_ascii_case(content_type))
    }

    /// Whether the name's extension is one of this type's (case-insensitive);
    /// a name without an extension fits no type.
    pub fn fits_name(&self, name: &AttachmentName) -> bool {
        name.extension().is_some_and(|extension| {
            self.extensions
                .iter()
                .any(|e| e.eq_ignore_ascii_case(extension))
        })
    }

    /// The extensions as a reader would write them: ".pdf".
    pub fn extensions_shown(&self) -> String {
        self.extensions
            .iter()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// Whether the bytes are what this type says.
    pub fn check_content(&self, bytes: &[u8]) -> Result<(), ContentMismatch> {
        (self.check)(bytes).map_err(|reason| ContentMismatch {
            what: self.what,
            reason,
        })
    }
}

/// Largest size, in bytes, that one stream of a PDF may decompress to while
/// it is loaded (object and cross-reference streams). A delivery is at most
/// 2 MB, and real object streams are far smaller; lopdf's own default
/// (256 MiB) would let a small crafted file take that much memory per stream.
pub const MAX_PDF_STREAM_BYTES: usize = 16 * 1024 * 1024;

/// How far from the end a PDF's `%%EOF` marker may be: readers require it
/// within the last 1024 bytes, and a file cut short has none there.
const PDF_EOF_WINDOW: usize = 1024;

/// A PDF: the header `%PDF-1.0` .. `%PDF-1.7` or `%PDF-2.0` at offset 0, a
/// `%%EOF` marker within the last 1024 bytes (so not cut short), and a
/// structure lopdf loads from memory (cross-reference data, trailer,
/// objects; a damaged cross-reference table is repaired as readers do), with
/// a document catalog and at least one page. An encrypted PDF that needs a
/// password is refused: it cannot be checked, and the recipient could not
/// open it without one. The two byte checks come first; only then is the
/// file parsed.
fn check_pdf(bytes: &[u8]) -> Result<(), String> {
    if !has_pdf_header(bytes) {
        return Err(if bytes.starts_with(b"MZ") {
            "it starts like a Windows executable (MZ), not with a %PDF-1.x or %PDF-2.0 header"
                .to_owned()
        } else {
            "it does not start with a %PDF-1.x or %PDF-2.0 header".to_owned()
        });
    }
    let tail = &bytes[bytes.len().saturating_sub(PDF_EOF_WINDOW)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err(
            "its structure is incomplete: no %%EOF marker at the end (the file may be cut short)"
                .to_owned(),
        );
    }
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(MAX_PDF_STREAM_BYTES),
        ..lopdf::LoadOptions::default()
    };
    // A parser bug must refuse the attachment, not take the request down.
    let loaded =
        std::panic::catch_unwind(|| lopdf::Document::load_mem_with_options(bytes, options))
            .map_err(|_| "its structure could not be read".to_owned())?;
    let document = loaded.map_err(|e| match e {
        lopdf::Error::InvalidPassword | lopdf::Error::Decryption(_) => {
            "it is encrypted with a password".to_owned()
        }
        e => format!("its structure does not parse ({})", error_chain(&e)),
    })?;
    // With a user password lopdf loads the file but cannot decrypt its
    // objects, so the catalog is where that shows.
    document.catalog().map_err(|e| {
        if document.is_encrypted() {
            "it is encrypted with a password".to_owned()
        } else {
            format!("it has no document catalog ({})", error_chain(&e))
        }
    })?;
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err("it has no pages".to_owned());
    }
    if let Some((number, _)) = pages
        .iter()
        .find(|(_, id)| document.get_dictionary(**id).is_err())
    {
        return Err(format!("its page {number} does not load"));
    }
    Ok(())
}

/// `%PDF-1.0` .. `%PDF-1.7` or `%PDF-2.0` at offset 0.
fn has_pdf_header(bytes: &[u8]) -> bool {
    match bytes.get(..8) {
        Some([b'%', b'P', b'D', b'F', b'-', b'1', b'.', minor]) => (b'0'..=b'7').contains(minor),
        Some(header) => header == b"%PDF-2.0",
        None => false,
    }
}

/// An error and its sources, "a: b: c".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn keeps_formatting_drops_script_and_loads() {
        let out = sanitize_html(
            "<p onclick=\"x()\" style=\"color:red\">Hej <b>du</b><script>alert(1)</script>\
             <img src=\"https://t.example/p.gif\"><a href=\"https://skatteverket.se\">länk</a>\
             <a href=\"javascript:alert(1)\">x</a><a href=\"/relative\">r</a></p>",
        );
        assert!(out.contains("<b>du</b>"), "{out}");
        assert!(!out.contains("script") && !out.contains("alert"), "{out}");
        assert!(!out.contains("img") && !out.contains("t.example"), "{out}");
        assert!(!out.contains("onclick") && !out.contains("style"), "{out}");
        assert!(
            out.contains(
                "<a href=\"https://skatteverket.se\" rel=\"noopener noreferrer nofollow\">länk</a>"
            ),
            "{out}"
        );
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("/relative"), "{out}");
    }

    #[test]
    fn attachment_names() {
        for ok in [
            "beslut.pdf",
            "Beslut 2026-11-24 (kopia).pdf",
            "åäö.pdf",
            "a..b.pdf",
        ] {
            assert_eq!(AttachmentName::parse(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(252) + ".pdf";
        assert_eq!(
            AttachmentName::parse(&long),
            Err(AttachmentNameError::TooLong { max: 255 })
        );
        assert!(AttachmentName::parse(&long[1..]).is_ok());
        use AttachmentNameError as E;
        for (bad, err) in [
            ("../x.pdf", E::PathSeparator),
            ("a/b.pdf", E::PathSeparator),
            ("a\\b.pdf", E::PathSeparator),
            (".hidden", E::LeadingDot),
            (".", E::DotSegment),
            ("..", E::DotSegment),
            ("", E::Empty),
            ("   ", E::Empty),
            ("x\u{0}.pdf", E::ControlCharacter),
            ("x\n.pdf", E::ControlCharacter),
            ("x\u{202E}fdp.exe", E::ControlCharacter),
            ("faktura\u{202E}fdp.exe", E::ControlCharacter),
            ("x\u{200B}.pdf", E::InvisibleCharacter),
            ("CON.pdf", E::DeviceName),
            ("nul", E::DeviceName),
            ("a<b.pdf", E::ReservedCharacter { character: '<' }),
            ("beslut.pdf.", E::TrailingDot),
            ("x\u{2066}.pdf", E::ControlCharacter),
            (" x.pdf", E::SurroundingWhitespace),
        ] {
            assert_eq!(AttachmentName::parse(bad), Err(err), "{bad:?}");
        }
    }

    #[test]
    fn windows_device_names_are_refused_with_or_without_extension() {
        for bad in [
            "CON",
            "con",
            "CON.pdf",
            "con.PDF",
            "nul",
            "NUL.pdf",
            "nul.tar.gz",
            "Prn.pdf",
            "aux",
            "COM1",
            "com9.pdf",
            "LPT1.pdf",
            "lpt9",
            "COM0.pdf",
            "LPT\u{B9}.pdf",
            "com\u{B3}",
            "CON .pdf",
            "CONIN$.pdf",
            "conout$",
        ] {
            assert_eq!(
                AttachmentName::parse(bad),
                Err(AttachmentNameError::DeviceName),
                "{bad:?}"
            );
        }
        for ok in [
            "CONFIG.pdf",
            "console.pdf",
            "COM10.pdf",
            "LPT10.pdf",
            "nullpunkt.pdf",
            "aux-beslut.pdf",
            "beslut.con",
            "beslut.nul.pdf",
        ] {
            assert!(AttachmentName::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn windows_reserved_characters_and_trailing_dots_are_refused() {
        for c in ['<', '>', ':', '"', '|', '?', '*'] {
            for bad in [
                format!("a{c}b.pdf"),
                format!("{c}.pdf"),
                format!("a.pdf{c}"),
            ] {
                assert_eq!(
                    AttachmentName::parse(&bad),
                    Err(AttachmentNameError::ReservedCharacter { character: c }),
                    "{bad:?}"
                );
            }
        }
        for bad in ["beslut.pdf.", "beslut.", "beslut.pdf..", "a."] {
            assert_eq!(
                AttachmentName::parse(bad),
                Err(AttachmentNameError::TrailingDot),
                "{bad:?}"
            );
        }
        assert_eq!(
            AttachmentName::parse("..."),
            Err(AttachmentNameError::LeadingDot)
        );
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{00AD}',
            '\u{FEFF}',
            '\u{2064}',
            '\u{206A}',
            '\u{180E}',
            '\u{034F}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{FE0F}',
            '\u{0600}',
            '\u{FFF9}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E0100}',
            '\u{1D173}',
        ] {
            let name = format!("x{c}.pdf");
            assert_eq!(
                AttachmentName::parse(&name),
                Err(AttachmentNameError::InvisibleCharacter),
                "U+{:04X}",
                c as u32
            );
        }
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{2028}', '\u{2029}',
            '\u{85}', '\u{7F}',
        ] {
            let name = format!("x{c}.pdf");
            assert_eq!(
                AttachmentName::parse(&name),
                Err(AttachmentNameError::ControlCharacter),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            AttachmentName::parse("faktura\u{202E}fdp.exe"),
            Err(AttachmentNameError::ControlCharacter)
        );
        // Visible non-ASCII letters and marks are fine.
        for ok in [
            "Ärende för Åsa.pdf",
            "café.pdf",
            "cafe\u{301}.pdf",
            "Überweisung.pdf",
            "日本.pdf",
        ] {
            assert!(AttachmentName::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn name_error_codes_are_distinct_and_messages_do_not_repeat_the_name() {
        use AttachmentNameError as E;
        let all = [
            E::Empty,
            E::TooLong { max: 255 },
            E::PathSeparator,
            E::DotSegment,
            E::ControlCharacter,
            E::InvisibleCharacter,
            E::ReservedCharacter { character: '<' },
            E::LeadingDot,
            E::TrailingDot,
            E::SurroundingWhitespace,
            E::DeviceName,
        ];
        let codes: HashSet<&str> = all.iter().map(AttachmentNameError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| c.starts_with("attachment_name_")));
        assert_eq!(E::DeviceName.code(), "attachment_name_device_name");
        for e in &all {
            assert!(e.to_string().starts_with("attachment name "), "{e}");
        }
    }

    #[test]
    fn extensions() {
        let ext = |s: &str| {
            AttachmentName::parse(s)
                .unwrap()
                .extension()
                .map(str::to_owned)
        };
        assert_eq!(ext("beslut.pdf").as_deref(), Some("pdf"));
        assert_eq!(ext("beslut.PDF").as_deref(), Some("PDF"));
        assert_eq!(ext("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(ext("beslut"), None);
        let pdf = AttachmentType::find("application/pdf").unwrap();
        assert!(AttachmentType::find("Application/PDF").is_some());
        assert!(AttachmentType::find("text/plain").is_none());
        assert_eq!(pdf.extensions_shown(), ".pdf");
        let fits = |s: &str| pdf.fits_name(&AttachmentName::parse(s).unwrap());
        for ok in ["beslut.pdf", "beslut.PDF", "beslut.Pdf", "a.exe.pdf"] {
            assert!(fits(ok), "{ok}");
        }
        for bad in [
            "a.exe",
            "beslut",
            "pdf",
            "beslut.pdf.exe",
            "beslut.pdfx",
            "beslut_pdf",
        ] {
            assert!(!fits(bad), "{bad}");
        }
    }

    /// `docs/examples/beslut.pdf`: `kuvert::client::minimal_pdf`'s output,
    /// committed (a test in the server crate keeps the two equal).
    const EXAMPLE_PDF: &[u8] = include_bytes!("../../../docs/examples/beslut.pdf");

    fn pdf_check(bytes: &[u8]) -> Result<(), ContentMismatch> {
        AttachmentType::find("application/pdf")
            .unwrap()
            .check_content(bytes)
    }

    fn refused_because(bytes: &[u8]) -> String {
        let e = pdf_check(bytes).unwrap_err();
        assert_eq!(e.what, "a PDF");
        let message = e.to_string();
        assert!(
            message.starts_with("the content is not a PDF: "),
            "{message}"
        );
        e.reason
    }

    #[test]
    fn a_real_pdf_is_accepted() {
        assert_eq!(pdf_check(EXAMPLE_PDF), Ok(()));
        // Other header versions with the same structure.
        for version in [b"%PDF-1.0", b"%PDF-1.7", b"%PDF-2.0"] {
            let mut pdf = EXAMPLE_PDF.to_vec();
            pdf[..8].copy_from_slice(version);
            assert_eq!(
                pdf_check(&pdf),
                Ok(()),
                "{}",
                String::from_utf8_lossy(version)
            );
        }
    }

    #[test]
    fn pdfs_from_another_writer_are_read() {
        let fixture = |name: &str| {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        // Cross-reference and object streams (PDF 1.5), compressed.
        assert_eq!(pdf_check(&fixture("object-streams.pdf")), Ok(()));
        // Encrypted for permissions only: opens without a password.
        assert_eq!(
            pdf_check(&fixture("encrypted-no-user-password.pdf")),
            Ok(())
        );
        // Opens only with a password: refused, and the reason says so.
        assert_eq!(
            refused_because(&fixture("encrypted-user-password.pdf")),
            "it is encrypted with a password"
        );
    }

    #[test]
    fn a_windows_executable_declared_as_pdf_is_refused() {
        let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
        exe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
        exe.resize(512, 0);
        let reason = refused_because(&exe);
        assert!(reason.contains("Windows executable"), "{reason}");
        // A PDF inside an executable is still an executable.
        let mut polyglot = exe.clone();
        polyglot.extend_from_slice(EXAMPLE_PDF);
        assert!(refused_because(&polyglot).contains("Windows executable"));
    }

    #[test]
    fn a_header_without_structure_is_refused() {
        for bytes in [
            &b"%PDF-1.4\n"[..],
            b"%PDF-1.4\n% kuvert smoke test\n",
            b"%PDF-1.4\n%%EOF\n",
            b"%PDF-1.7\nthis is not a pdf at all\n%%EOF\n",
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
        ] {
            let reason = refused_because(bytes);
            assert!(reason.starts_with("its structure"), "{bytes:?}: {reason}");
        }
    }

    #[test]
    fn the_header_must_be_a_pdf_version_at_offset_zero() {
        for header in [
            &b""[..],
            b"%PDF",
            b"%PDF-1.",
            b"%PDF-1.8",
            b"%PDF-2.1",
            b"%PDF-3.0",
            b"%pdf-1.4",
            b" %PDF-1.4",
            b"\xEF\xBB\xBF%PDF-1.4",
        ] {
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&EXAMPLE_PDF[8..]);
            let reason = refused_because(&bytes);
            assert!(reason.contains("header"), "{header:?}: {reason}");
        }
        assert!(refused_because(b"").contains("header"));
        assert!(refused_because(b"plain text").contains("header"));
    }

    /// A PDF with the given objects (1 is the catalog) and a right xref.
    fn pdf_of(objects: &[&str]) -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
        }
        let xref = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for offset in offsets {
            pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        pdf
    }

    #[test]
    fn a_pdf_without_pages_is_refused() {
        let pdf = pdf_of(&[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [] /Count 0 >>",
        ]);
        assert_eq!(refused_because(&pdf), "it has no pages");
        let one_page = pdf_of(&[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]);
        assert_eq!(pdf_check(&one_page), Ok(()));
    }

    #[test]
    fn broken_pdfs_are_refused_not_panicked_on() {
        // Cut short anywhere: refused (no %%EOF), never a panic.
        let eof = EXAMPLE_PDF.len() - b"%%EOF\n".len();
        for cut in 0..eof + 4 {
            assert!(
                pdf_check(&EXAMPLE_PDF[..cut]).is_err(),
                "accepted the first {cut} bytes"
            );
        }
        assert_eq!(pdf_check(&EXAMPLE_PDF[..eof + 5]), Ok(()));
        // One byte changed anywhere: refused or accepted, never a panic.
        for at in 0..EXAMPLE_PDF.len() {
            let mut changed = EXAMPLE_PDF.to_vec();
            changed[at] ^= 0x55;
            let _ = pdf_check(&changed);
        }
        // Every cross-reference offset 3 bytes off: repaired, as readers do.
        let mut shifted = EXAMPLE_PDF[..9].to_vec();
        shifted.extend_from_slice(b"%x\n");
        shifted.extend_from_slice(&EXAMPLE_PDF[9..]);
        assert_eq!(pdf_check(&shifted), Ok(()));
        // A deep nest of arrays in the catalog.
        let deep = format!(
            "<< /Type /Catalog /Pages 2 0 R /X {}{} >>",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let _ = pdf_check(&pdf_of(&[&deep, "<< /Type /Pages /Kids [] /Count 0 >>"]));
    }

    #[test]
    fn attachment_name_serde() {
        let n: AttachmentName = serde_json::from_str("\"beslut.pdf\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"beslut.pdf\"");
        assert!(serde_json::from_str::<AttachmentName>("\"../etc/passwd\"").is_err());
    }
}
