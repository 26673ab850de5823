//! The HTML sanitiser checked by property: its output is parsed again with a
//! real HTML parser (html5ever + rcdom), the way a browser would see it, and
//! must hold no script, no event handler, no dangerous URL and nothing that
//! loads a resource; and only the policy's own elements, attributes and link
//! schemes may remain (an allowlist, so "loads a resource" is not left to a
//! list of known attributes). kuvert's intake check (`find_unsafe_html`) must
//! find nothing outside the allowlist in the output either (the same
//! allowlist, `html_policy`, builds both). And the other way round: a body intake
//! accepts is shown as signed, the sanitiser's output parsing to the same tree
//! as the body (decision 0004), checked here with a tree comparison of its
//! own. Plus attachment-name properties. The `sanitizer` and
//! `attachment_name` fuzz targets assert the sanitiser and attachment-name
//! properties (see docs/fuzzing.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use html5ever::tendril::TendrilSink;
use html5ever::{
    ParseOpts, QualName, local_name, namespace_url, ns, parse_document, parse_fragment,
};
use kuvert_domain::content::{AttachmentName, MAX_ATTACHMENT_NAME_BYTES, sanitize_html};
use kuvert_domain::html_check::{UnsafeHtml, find_unsafe_html};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use proptest::prelude::*;

const XSS_VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/xss/dompurify-payloads.json"
);

const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script", "style", "iframe", "object", "embed", "svg", "math", "img", "link", "meta", "base",
    "form", "video", "audio", "source", "frame", "frameset", "applet", "input", "button",
    "textarea", "select", "image", "picture", "track", "template",
];
const FORBIDDEN_ATTRIBUTES: &[&str] = &[
    "src",
    "srcset",
    "style",
    "background",
    "poster",
    "formaction",
    "action",
    "xlink:href",
    "data",
    "codebase",
    "dynsrc",
    "lowsrc",
];

/// What the sanitiser may leave, plus the html/head/body a document parser adds.
const ALLOWED_ELEMENTS: &[&str] = &[
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
    "html",
    "head",
    "body",
];
const ALLOWED_ATTRIBUTES: &[&str] = &[
    "title", "lang", "href", "rel", "colspan", "rowspan", "scope", "start",
];
const LINK_SCHEMES: &[&str] = &["http", "https", "mailto", "tel"];

/// The scheme of a URL as a browser reads it: leading/trailing whitespace
/// trimmed, tabs/newlines/controls inside removed, lowercased.
fn scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c.is_whitespace() || c.is_control())
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    cleaned.split_once(':').map(|(s, _)| s.to_owned())
}

/// Every violation of the policy found in `html` once parsed.
fn violations(html: &str) -> Vec<String> {
    let dom = parse_document(RcDom::default(), ParseOpts::default())
        .from_utf8()
        .read_from(&mut html.as_bytes())
        .unwrap();
    let mut found = Vec::new();
    walk(&dom.document, &mut found);
    found
}

fn walk(node: &Handle, found: &mut Vec<String>) {
    if let NodeData::Comment { contents } = &node.data {
        found.push(format!("comment {contents:?}"));
    }
    if let NodeData::Element { name, attrs, .. } = &node.data {
        let tag = name.local.to_string().to_ascii_lowercase();
        if FORBIDDEN_ELEMENTS.contains(&tag.as_str()) {
            found.push(format!("element <{tag}>"));
        }
        if !ALLOWED_ELEMENTS.contains(&tag.as_str()) || &*name.ns != "http://www.w3.org/1999/xhtml"
        {
            found.push(format!(
                "element <{tag}> outside the allowlist ({:?})",
                name.ns
            ));
        }
        for attr in attrs.borrow().iter() {
            let attr_name = match &attr.name.prefix {
                Some(prefix) => format!("{}:{}", &**prefix, &*attr.name.local),
                None => attr.name.local.to_string(),
            }
            .to_ascii_lowercase();
            let local = attr.name.local.to_string().to_ascii_lowercase();
            if attr.name.prefix.is_some() || !ALLOWED_ATTRIBUTES.contains(&local.as_str()) {
                found.push(format!("attribute {attr_name} outside the allowlist"));
            }
            if local.starts_with("on") || attr_name.starts_with("on") {
                found.push(format!("event attribute {attr_name}"));
            }
            if FORBIDDEN_ATTRIBUTES.contains(&attr_name.as_str())
                || FORBIDDEN_ATTRIBUTES.contains(&local.as_str())
            {
                found.push(format!("attribute {attr_name}"));
            }
            if local == "href" || attr_name.ends_with("href") {
                let value = attr.value.to_string();
                let dangerous = scheme(&value)
                    .filter(|s| ["javascript", "vbscript", "data"].contains(&s.as_str()));
                if let Some(s) = dangerous {
                    found.push(format!("href with scheme {s}: {value:?}"));
                }
                if !scheme(&value).is_some_and(|s| LINK_SCHEMES.contains(&s.as_str())) {
                    found.push(format!("href not http(s)/mailto/tel: {value:?}"));
                }
            }
        }
    }
    // Template contents and children both count.
    let template = match &node.data {
        NodeData::Element {
            template_contents, ..
        } => template_contents.borrow().clone(),
        _ => None,
    };
    if let Some(contents) = template {
        walk(&contents, found);
    }
    for child in node.children.borrow().iter() {
        walk(child, found);
    }
}

/// What intake refuses in the sanitiser's output, other than a tree that
/// would change when parsed again: serialising a parsed tree is not always
/// stable (a link nested in a link comes back as two, a second newline after
/// `<pre>` is lost), so intake may refuse the output of mis-nested input as
/// [`UnsafeHtml::ShownDifferently`] (or as too deep, for deep input). Every
/// element, attribute, URL and comment in it must pass the allowlist.
fn outside_the_allowlist(out: &str) -> Option<UnsafeHtml> {
    find_unsafe_html(out)
        .filter(|r| !matches!(r, UnsafeHtml::ShownDifferently(_) | UnsafeHtml::TooDeep))
}

#[derive(serde::Deserialize)]
struct Payload {
    #[serde(default)]
    title: String,
    payload: String,
}

#[test]
fn dompurify_payloads_are_neutralised() {
    let text = std::fs::read_to_string(XSS_VECTORS).unwrap_or_else(|e| {
        panic!("XSS vectors missing: cannot read {XSS_VECTORS}: {e} (shared/ must sit beside the repository)")
    });
    let payloads: Vec<Payload> = serde_json::from_str(&text).unwrap();
    assert!(
        payloads.len() >= 200,
        "expected the DOMPurify list, got {}",
        payloads.len()
    );
    let mut failures = Vec::new();
    for p in &payloads {
        let out = sanitize_html(&p.payload);
        let mut v = violations(&out);
        if let Some(unsafe_html) = outside_the_allowlist(&out) {
            v.push(format!("find_unsafe_html: {unsafe_html}"));
        }
        if !v.is_empty() {
            failures.push(format!("{}: {v:?}\n  output: {out}", p.title));
        }
        // Sanitising is idempotent: a second pass changes nothing harmful.
        assert!(violations(&sanitize_html(&out)).is_empty());
    }
    assert!(
        failures.is_empty(),
        "{} payloads got through:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_checker_itself_sees_attacks() {
    // Guard against a checker that passes everything.
    assert!(!violations("<img src=x onerror=alert(1)>").is_empty());
    assert!(!violations("<a href=' jav\tascript:alert(1)'>x</a>").is_empty());
    assert!(!violations("<svg><a xlink:href='javascript:1'>x</a></svg>").is_empty());
    assert!(!violations("<p style='background:url(x)'>x</p>").is_empty());
    assert!(!violations("<a href='/relative'>x</a>").is_empty());
    assert!(!violations("<p><!-- x --></p>").is_empty());
    assert!(!violations("<video poster=x></video>").is_empty());
    assert!(violations("<p><a href='https://example.se' rel='noopener'>x</a></p>").is_empty());
}

/// The tree a browser builds from `html` put inside a `<div>`, written out
/// one node a line: elements with their attributes sorted, text quoted.
/// The `rel` the display sets on every link is left out, the one change the
/// display may make to an accepted body.
fn fragment_tree(html: &str) -> String {
    let context = QualName::new(None, ns!(html), local_name!("div"));
    let dom = parse_fragment(RcDom::default(), ParseOpts::default(), context, Vec::new()).one(html);
    let mut out = String::new();
    let root = dom.document.children.borrow()[0].clone();
    for child in root.children.borrow().iter() {
        write_tree(child, 0, &mut out);
    }
    out
}

fn write_tree(node: &Handle, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match &node.data {
        NodeData::Element { name, attrs, .. } => {
            let mut attrs: Vec<String> = attrs
                .borrow()
                .iter()
                .filter(|a| {
                    !(&*name.local == "a"
                        && &*a.name.local == "rel"
                        && &*a.value == "noopener noreferrer nofollow")
                })
                .map(|a| format!("{}:{}={:?}", &*a.name.ns, &*a.name.local, &*a.value))
                .collect();
            attrs.sort();
            out.push_str(&format!(
                "{indent}<{}:{} {attrs:?}>\n",
                &*name.ns, &*name.local
            ));
        }
        NodeData::Text { contents } => {
            out.push_str(&format!("{indent}{:?}\n", &**contents.borrow()));
        }
        NodeData::Comment { contents } => {
            out.push_str(&format!("{indent}<!--{:?}-->\n", &**contents));
        }
        other => out.push_str(&format!("{indent}{other:?}\n")),
    }
    for child in node.children.borrow().iter() {
        write_tree(child, depth + 1, out);
    }
}

/// What the outside client found: accepted bodies shown differently from
/// what was signed, links silently removed. Every peer payload intake
/// accepts must now be shown as signed.
#[test]
fn dompurify_payloads_accepted_at_intake_are_shown_as_signed() {
    let text = std::fs::read_to_string(XSS_VECTORS).unwrap();
    let payloads: Vec<Payload> = serde_json::from_str(&text).unwrap();
    let (mut accepted, mut with_link) = (0, 0);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    let mut changed = Vec::new();
    for p in &payloads {
        match find_unsafe_html(&p.payload) {
            Some(reason) => {
                let variant = format!("{reason:?}");
                let variant = variant.split(['(', ' ']).next().unwrap().to_owned();
                *reasons.entry(variant).or_default() += 1;
            }
            None => {
                accepted += 1;
                let signed = fragment_tree(&p.payload);
                with_link += usize::from(signed.contains(":a ["));
                let shown = fragment_tree(&sanitize_html(&p.payload));
                if signed != shown {
                    changed.push(format!(
                        "{}: {:?}\n  signed:\n{signed}  shown:\n{shown}",
                        p.title, p.payload
                    ));
                }
            }
        }
    }
    println!(
        "XSS vectors at intake: {} in total, {accepted} accepted ({with_link} with a link), {} refused: {reasons:?}",
        payloads.len(),
        payloads.len() - accepted
    );
    assert!(
        changed.is_empty(),
        "{} accepted payloads are shown differently:\n{}",
        changed.len(),
        changed.join("\n")
    );
    // Most payloads are attacks or carry class, id or style; a few are plain
    // formatting. Guard against an intake that refuses everything.
    assert!(accepted > 0, "none accepted");
}

#[test]
fn the_tree_comparison_itself_sees_changes() {
    let same = |a: &str, b: &str| fragment_tree(a) == fragment_tree(b);
    assert!(same("<P>a&amp;b<BR/></P>", "<p>a&#38;b<br></p>"));
    assert!(same(
        "<a href=https://a.se>x</a>",
        "<a href=\"https://a.se\" rel=\"noopener noreferrer nofollow\">x</a>"
    ));
    assert!(!same("<a href=\"/x\">x</a>", "<a>x</a>"));
    assert!(!same("<p class=x>a</p>", "<p>a</p>"));
    assert!(!same("<p>a<!--c--></p>", "<p>a</p>"));
    assert!(!same("<font>a</font>", "a"));
    assert!(!same("<p>a </p>", "<p>a</p>"));
}

/// Markup that is mostly allowed, so that intake accepts a good share of it:
/// allowed and disallowed tags and attributes, links of every kind, entities,
/// whitespace, comments and the parser's corner cases.
fn mostly_allowed_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<p>".to_owned()),
        Just("</p>".to_owned()),
        Just("<b>".to_owned()),
        Just("</b>".to_owned()),
        Just("<I>".to_owned()),
        Just("</i>".to_owned()),
        Just("<ul><li>".to_owned()),
        Just("<li>".to_owned()),
        Just("</ul>".to_owned()),
        Just("<table>".to_owned()),
        Just("<tr>".to_owned()),
        Just("<td colspan=2>".to_owned()),
        Just("</td>".to_owned()),
        Just("</table>".to_owned()),
        Just("<pre>".to_owned()),
        Just("</pre>".to_owned()),
        Just("<br>".to_owned()),
        Just("<br/>".to_owned()),
        Just("</br>".to_owned()),
        Just("<hr>".to_owned()),
        Just("<div title=\"t\">".to_owned()),
        Just("</div>".to_owned()),
        Just("<span lang=sv>".to_owned()),
        Just("<a href=\"https://skatteverket.se/x\">".to_owned()),
        Just("<a href='mailto:a@b.se' rel=\"noopener noreferrer nofollow\">".to_owned()),
        Just("<a href=\"/relative\">".to_owned()),
        Just("<a href=\"jav&#x09;ascript:x\">".to_owned()),
        Just("<a href=\"file:///x\">".to_owned()),
        Just("<a>".to_owned()),
        Just("</a>".to_owned()),
        Just("<font>".to_owned()),
        Just("<p class=x>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("&amp;".to_owned()),
        Just("&nbsp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&".to_owned()),
        Just("<".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("text".to_owned()),
        "[a-zåäö ]{0,6}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

/// Fragments of HTML worth combining: tags, attributes, schemes, entities.
fn html_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<script>".to_owned()),
        Just("</script>".to_owned()),
        Just("<svg>".to_owned()),
        Just("<math>".to_owned()),
        Just("<img".to_owned()),
        Just("<a".to_owned()),
        Just("<p".to_owned()),
        Just("<style>".to_owned()),
        Just("<iframe".to_owned()),
        Just("<!--".to_owned()),
        Just("-->".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just(" href=".to_owned()),
        Just(" src=".to_owned()),
        Just(" onerror=".to_owned()),
        Just(" style=".to_owned()),
        Just(" xlink:href=".to_owned()),
        Just("javascript:".to_owned()),
        Just("java\tscript:".to_owned()),
        Just("&#106;avascript:".to_owned()),
        Just("data:text/html,".to_owned()),
        Just("vbscript:".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just(">".to_owned()),
        Just("/>".to_owned()),
        Just("alert(1)".to_owned()),
        "\\PC{0,8}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_strings_sanitise_safely(s in "\\PC{0,200}") {
        let out = sanitize_html(&s);
        prop_assert!(violations(&out).is_empty(), "{:?}", out);
        prop_assert_eq!(outside_the_allowlist(&out), None, "{:?}", out);
    }

    #[test]
    fn html_soup_sanitises_safely(s in html_soup()) {
        let out = sanitize_html(&s);
        let v = violations(&out);
        prop_assert!(v.is_empty(), "{:?} -> {:?}: {:?}", s, out, v);
        prop_assert_eq!(outside_the_allowlist(&out), None, "{:?} -> {:?}", s, out);
    }

    /// The guarantee of intake: an accepted body is shown as signed.
    #[test]
    fn accepted_bodies_are_shown_as_signed(s in prop_oneof![mostly_allowed_soup(), html_soup()]) {
        match find_unsafe_html(&s) {
            None => prop_assert_eq!(
                fragment_tree(&s),
                fragment_tree(&sanitize_html(&s)),
                "accepted {:?}, shown as {:?}",
                s,
                sanitize_html(&s)
            ),
            // The generic refusal is only ever for a real difference.
            Some(UnsafeHtml::ShownDifferently(why)) => prop_assert_ne!(
                fragment_tree(&s),
                fragment_tree(&sanitize_html(&s)),
                "{:?} refused for {}",
                s,
                why
            ),
            Some(_) => {}
        }
    }

    #[test]
    fn accepted_attachment_names_cannot_escape(
        s in "\\PC{0,40}|[./\\\\a-z\u{0}\u{85}\u{200E}\u{202E}\u{2066}\u{2028}\u{FEFF}\u{A0}\u{200B}\u{AD}\u{2060}<:*\" ]{0,8}|(con|CON|nul|Aux|prn|com[019¹]|LPT[09²]|conin\\$)( *)(\\.[a-z]{0,3}){0,2}"
    ) {
        let parsed = AttachmentName::parse(&s);
        // Exactly the names the documented rules allow: nothing is refused
        // without a reason, nothing slips through.
        prop_assert_eq!(parsed.is_ok(), name_allowed(&s), "{:?}: {:?}", s, parsed);
        let via_serde = serde_json::from_str::<AttachmentName>(&serde_json::to_string(&s).unwrap());
        prop_assert_eq!(via_serde.ok(), parsed.clone().ok());
        if let Ok(name) = parsed {
            let n = name.as_str();
            prop_assert_eq!(n, s.as_str());
            prop_assert!(!n.contains(['/', '\\']));
            prop_assert!(!n.chars().any(is_hidden_char));
            prop_assert!(!n.chars().any(is_invisible_char));
            prop_assert!(!n.contains(WINDOWS_RESERVED));
            prop_assert!(!is_windows_device(n));
            prop_assert!(n != "." && n != ".." && !n.starts_with('.') && !n.ends_with('.'));
            prop_assert!(!n.trim().is_empty() && n.len() <= 255);
            // Joined to a folder, it is one plain component inside it.
            let joined = std::path::Path::new("inbox").join(n);
            let parts: Vec<_> = joined.components().collect();
            prop_assert_eq!(
                parts,
                vec![
                    std::path::Component::Normal("inbox".as_ref()),
                    std::path::Component::Normal(n.as_ref()),
                ]
            );
        }
    }
}

/// `AttachmentName`'s rules, stated again from its documentation.
fn name_allowed(s: &str) -> bool {
    !s.chars().all(char::is_whitespace)
        && s.len() <= MAX_ATTACHMENT_NAME_BYTES
        && !s.contains(['/', '\\'])
        && !s.chars().any(is_hidden_char)
        && !s.chars().any(is_invisible_char)
        && !s.contains(WINDOWS_RESERVED)
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !is_windows_device(s)
}

/// Control characters (Cc) and the characters that reorder text.
fn is_hidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{200E}' | '\u{200F}' | '\u{061C}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}')
}

/// Format characters (Unicode 16 category Cf) and the other
/// default-ignorable code points, as the UCD lists them.
fn is_invisible_char(c: char) -> bool {
    matches!(c,
        '\u{AD}' | '\u{34F}' | '\u{600}'..='\u{605}' | '\u{6DD}' | '\u{70F}'
        | '\u{890}' | '\u{891}' | '\u{8E2}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// The characters Windows refuses in file names besides '/' and '\\'.
const WINDOWS_RESERVED: [char; 7] = ['<', '>', ':', '"', '|', '?', '*'];

/// CON, PRN, AUX, NUL, COM0-9, LPT0-9 (also superscript 1-3), CONIN$ and
/// CONOUT$, any ASCII case, as the part before the first dot less trailing
/// spaces.
fn is_windows_device(name: &str) -> bool {
    let stem = name[..name.find('.').unwrap_or(name.len())]
        .trim_end_matches(' ')
        .to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => match (stem.get(..3), stem.get(3..)) {
            (Some("COM" | "LPT"), Some(rest)) => matches!(
                rest,
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            ),
            _ => false,
        },
    }
}

#[test]
fn long_names_are_rejected() {
    assert!(AttachmentName::parse(&"a".repeat(255)).is_ok());
    assert!(AttachmentName::parse(&"a".repeat(256)).is_err());
    // 128 two-byte characters: 256 bytes, counted in bytes not chars.
    assert!(AttachmentName::parse(&"å".repeat(128)).is_err());
}
