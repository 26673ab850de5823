//! The one HTML allowlist of kuvert, said once.
//!
//! Both sides of an HTML body are built from these lists: the ammonia policy
//! the mailbox sanitises with on display ([`crate::content::sanitize_html`])
//! and the intake check that refuses a body the display would change
//! ([`crate::html_check::find_unsafe_html`]). So what intake accepts is what
//! the recipient is shown (decision 0004), and the two cannot drift apart.
//!
//! A message body may format text and link to somewhere the reader chooses
//! to go, but never run script, restyle the page, or load anything (a remote
//! image is a read receipt and a tracking pixel).

/// Elements that format text, in the HTML namespace. Anything else is
/// removed on display (its text kept, unless it is in
/// [`DROPPED_WITH_CONTENT`]), so intake refuses it.
pub const ALLOWED_TAGS: &[&str] = &[
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "blockquote",
    "pre",
    "code",
    "a",
    "span",
    "div",
    "hr",
];

/// Elements whose content is code, markup for another engine, or otherwise
/// not message text: removed on display together with everything inside.
pub const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "iframe", "frame", "frameset", "object", "applet", "noscript", "noembed",
    "noframes", "template", "title", "xmp", "svg", "math",
];

/// Attributes allowed on every allowed element. No `style`, `id`, `class`,
/// `src` or `on*`.
pub const GENERIC_ATTRIBUTES: &[&str] = &["title", "lang"];

/// Attributes allowed on one element only, besides [`GENERIC_ATTRIBUTES`].
pub const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href"]),
    ("td", &["colspan", "rowspan"]),
    ("th", &["colspan", "rowspan", "scope"]),
    ("ol", &["start"]),
];

/// The allowed attributes whose value is a URL, checked against
/// [`URL_SCHEMES`] (ammonia treats `href` as a URL on every element; no other
/// allowed attribute holds one).
pub const URL_ATTRIBUTES: &[&str] = &["href"];

/// Link schemes a reader may follow. A link is a navigation the reader
/// chooses, not a resource the page loads, so remote http(s) is fine here.
pub const URL_SCHEMES: &[&str] = &["http", "https", "mailto", "tel"];

/// Whether a relative URL (`/path`, `path`, `#frag`, `//host`) is allowed.
/// It is not: it would resolve against the mailbox's own origin.
pub const RELATIVE_URLS_ALLOWED: bool = false;

/// Whether HTML comments are allowed. They are not: the display strips them,
/// so a sender's comment would be signed but never shown.
pub const COMMENTS_ALLOWED: bool = false;

/// The `rel` the display sets on every `<a>`, replacing any the sender gave.
/// The only difference intake tolerates between what was signed and what is
/// shown, and the only `rel` a sender may write.
pub const LINK_REL: &str = "noopener noreferrer nofollow";

/// Is `tag` (lowercase local name) an allowed element?
pub fn is_allowed_tag(tag: &str) -> bool {
    ALLOWED_TAGS.contains(&tag)
}

/// Is `attribute` (lowercase) allowed on the allowed element `tag`?
pub fn is_allowed_attribute(tag: &str, attribute: &str) -> bool {
    GENERIC_ATTRIBUTES.contains(&attribute)
        || TAG_ATTRIBUTES
            .iter()
            .any(|(t, attrs)| *t == tag && attrs.contains(&attribute))
}

/// The attributes allowed on `tag`, for error messages.
pub fn allowed_attributes(tag: &str) -> Vec<&'static str> {
    let mut all = GENERIC_ATTRIBUTES.to_vec();
    for (t, attrs) in TAG_ATTRIBUTES {
        if *t == tag {
            all.extend_from_slice(attrs);
        }
    }
    all
}

/// Does the display check the value of `attribute` as a URL?
pub fn is_url_attribute(attribute: &str) -> bool {
    URL_ATTRIBUTES.contains(&attribute)
}

/// Why a URL would not be shown as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlVerdict {
    /// Shown as written.
    Allowed,
    /// Relative (no scheme); `RELATIVE_URLS_ALLOWED` is false.
    Relative,
    /// A scheme outside [`URL_SCHEMES`] (lowercase, as the URL parser reads it).
    Scheme(String),
    /// Not a URL at all (for example an empty host or a bad port).
    Invalid(String),
}

/// Judges a URL attribute's value exactly as the display does: with the
/// WHATWG URL parser ammonia itself uses (`ammonia::url`), which, like a
/// browser, drops tabs and newlines inside and control characters and spaces
/// around the URL, so `jav&#x09;ascript:` reads as `javascript:`.
pub fn judge_url(value: &str) -> UrlVerdict {
    use ammonia::url::{ParseError, Url};
    match Url::parse(value) {
        Ok(url) if URL_SCHEMES.contains(&url.scheme()) => UrlVerdict::Allowed,
        Ok(url) => UrlVerdict::Scheme(url.scheme().to_owned()),
        Err(ParseError::RelativeUrlWithoutBase) if RELATIVE_URLS_ALLOWED => UrlVerdict::Allowed,
        Err(ParseError::RelativeUrlWithoutBase) => UrlVerdict::Relative,
        Err(e) => UrlVerdict::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_consistent() {
        for tag in DROPPED_WITH_CONTENT {
            assert!(!is_allowed_tag(tag), "{tag} is both allowed and dropped");
        }
        for (tag, attrs) in TAG_ATTRIBUTES {
            assert!(
                is_allowed_tag(tag),
                "{tag} has attributes but is not allowed"
            );
            assert!(!attrs.contains(&"rel"), "rel is set by the display");
        }
        for attr in URL_ATTRIBUTES {
            assert!(TAG_ATTRIBUTES.iter().any(|(_, a)| a.contains(attr)));
        }
        assert!(!GENERIC_ATTRIBUTES.contains(&"rel"));
    }

    #[test]
    fn urls_are_judged_as_a_browser_reads_them() {
        use UrlVerdict as V;
        for ok in [
            "https://skatteverket.se/x?y=1#z",
            "HTTPS://SKATTEVERKET.SE",
            " https://skatteverket.se ",
            "mailto:info@skatteverket.se",
            "tel:+46771567567",
        ] {
            assert_eq!(judge_url(ok), V::Allowed, "{ok:?}");
        }
        for relative in ["/path", "path", "#frag", "//host.example/x", "", "?q"] {
            assert_eq!(judge_url(relative), V::Relative, "{relative:?}");
        }
        for (url, scheme) in [
            ("file:///etc/passwd", "file"),
            ("jav\tascript:alert(1)", "javascript"),
            ("\u{1}javascript:alert(1)", "javascript"),
            ("java\nscript:alert(1)", "javascript"),
            ("data:text/html,x", "data"),
            ("ftp://example.se", "ftp"),
        ] {
            assert_eq!(judge_url(url), V::Scheme(scheme.to_owned()), "{url:?}");
        }
        assert!(matches!(judge_url("http://"), V::Invalid(_)));
        assert!(matches!(judge_url("https://exa mple.se"), V::Invalid(_)));
    }
}
