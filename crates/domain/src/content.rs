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

/// Why an attachment file name was rejected.
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
    #[error("attachment name starts with a dot")]
    LeadingDot,
    #[error("attachment name starts or ends with whitespace")]
    SurroundingWhitespace,
}

/// An attachment file name that cannot escape a folder or disguise itself:
/// no '/', '\\', NUL or other control characters (including the Unicode
/// bidi controls U+202A..=U+202E and U+2066..=U+2069, which make
/// "x\u{202E}fdp.exe" display as "xexe.pdf"), not "." or "..", not starting
/// with '.', at most 255 bytes, not empty. Rejected, never silently rewritten:
/// the sender must learn that the name they chose is not what the recipient
/// would see.
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
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
                | '\u{FEFF}' // zero-width no-break space
        )
}

impl<'de> Deserialize<'de> for AttachmentName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
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
            ("x\u{2066}.pdf", E::ControlCharacter),
            (" x.pdf", E::SurroundingWhitespace),
        ] {
            assert_eq!(AttachmentName::parse(bad), Err(err), "{bad:?}");
        }
    }

    #[test]
    fn attachment_name_serde() {
        let n: AttachmentName = serde_json::from_str("\"beslut.pdf\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"beslut.pdf\"");
        assert!(serde_json::from_str::<AttachmentName>("\"../etc/passwd\"").is_err());
    }
}
