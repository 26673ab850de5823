//! Refuses HTML bodies that would run script or load anything when shown.
//!
//! The sender signs the body, so kuvert cannot rewrite it on intake without
//! breaking the signature the mailbox checks. Instead intake *refuses* a body
//! with script, event handlers or resource-loading markup (a clear error for
//! the sender), and the mailbox still sanitises on display
//! ([`crate::content::sanitize_html`]) as a second line. The check runs the
//! browser's own tokenizer (html5ever), not a regular expression, so entity
//! tricks and odd spacing are seen the way a browser would see them.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagToken, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use std::cell::RefCell;

/// Why an HTML body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeHtml {
    #[error(
        "the element <{0}> is not allowed (script, embedded content, forms and styles are refused)"
    )]
    ForbiddenElement(String),
    #[error("the event-handler attribute {0:?} is not allowed")]
    EventHandler(String),
    #[error("the attribute {0:?} is not allowed (it loads a resource or carries style)")]
    ResourceAttribute(String),
    #[error("a link uses a forbidden URL scheme (javascript:, vbscript: or data:)")]
    DangerousUrl,
}

const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "option",
    "svg",
    "math",
    "img",
    "image",
    "video",
    "audio",
    "source",
    "track",
    "picture",
    "link",
    "meta",
    "base",
    "template",
    "noscript",
    "xmp",
    "plaintext",
    "noembed",
    "noframes",
    "portal",
    "canvas",
    "map",
    "area",
    "param",
];

const RESOURCE_ATTRIBUTES: &[&str] = &[
    "src",
    "srcset",
    "style",
    "background",
    "poster",
    "formaction",
    "action",
    "data",
    "lowsrc",
    "dynsrc",
    "ping",
    "xlink:href",
    "codebase",
    "cite",
    "longdesc",
    "manifest",
    "icon",
    "srcdoc",
    "imagesrcset",
];

/// The first unsafe construct in `html`, or `None` when it is safe to store.
pub fn find_unsafe_html(html: &str) -> Option<UnsafeHtml> {
    let sink = Checker {
        found: RefCell::new(None),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.found.into_inner()
}

struct Checker {
    found: RefCell<Option<UnsafeHtml>>,
}

impl TokenSink for Checker {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        if self.found.borrow().is_some() {
            return TokenSinkResult::Continue;
        }
        if let TagToken(tag) = token {
            let name = tag.name.to_string().to_ascii_lowercase();
            let verdict = if FORBIDDEN_ELEMENTS.contains(&name.as_str()) {
                Some(UnsafeHtml::ForbiddenElement(name))
            } else {
                tag.attrs.iter().find_map(check_attribute)
            };
            if verdict.is_some() {
                *self.found.borrow_mut() = verdict;
            }
        }
        TokenSinkResult::Continue
    }
}

fn check_attribute(attr: &html5ever::Attribute) -> Option<UnsafeHtml> {
    let name = attr.name.local.to_string().to_ascii_lowercase();
    let full_name = match &attr.name.prefix {
        Some(prefix) => format!("{}:{name}", prefix.to_string().to_ascii_lowercase()),
        None => name.clone(),
    };
    if name.starts_with("on") {
        return Some(UnsafeHtml::EventHandler(full_name));
    }
    if RESOURCE_ATTRIBUTES.contains(&full_name.as_str())
        || RESOURCE_ATTRIBUTES.contains(&name.as_str())
    {
        return Some(UnsafeHtml::ResourceAttribute(full_name));
    }
    if (name == "href" || full_name == "xlink:href") && is_dangerous_url(&attr.value) {
        return Some(UnsafeHtml::DangerousUrl);
    }
    None
}

/// Browsers ignore whitespace and control characters inside a scheme
/// (`java\tscript:`), so they are dropped before comparing.
fn is_dangerous_url(url: &str) -> bool {
    let compact: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|scheme| compact.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_formatting_and_links_pass() {
        let html = r#"<h1>Beslut</h1><p>Hej, <b>du</b> har fått <a href="https://skatteverket.se/x">ett beslut</a>.</p><ul><li>ett</li></ul>"#;
        assert_eq!(find_unsafe_html(html), None);
    }

    #[test]
    fn script_handlers_and_resources_are_refused() {
        let cases = [
            ("<p>x</p><script>alert(1)</script>", "script"),
            ("<SCRIPT>alert(1)</SCRIPT>", "script"),
            ("<p onclick=alert(1)>x</p>", "onclick"),
            ("<p ONMOUSEOVER='x'>x</p>", "onmouseover"),
            ("<img src=https://evil.example/t.gif>", "img"),
            (
                "<p style=\"background:url(https://evil.example)\">x</p>",
                "style",
            ),
            ("<a href=\"java\tscript:alert(1)\">x</a>", "javascript"),
            ("<a href=\" JAVASCRIPT:alert(1)\">x</a>", "javascript"),
            (
                "<a href=\"&#106;avascript:alert(1)\">x</a>",
                "entity javascript",
            ),
            ("<a href=\"data:text/html,<script>\">x</a>", "data"),
            (
                "<svg><a xlink:href=\"javascript:alert(1)\">x</a></svg>",
                "svg",
            ),
            (
                "<div background=\"https://evil.example/x.png\">x</div>",
                "background",
            ),
        ];
        for (html, why) in cases {
            assert!(find_unsafe_html(html).is_some(), "{why}: {html}");
        }
    }
}
