//! The properties the fuzz targets assert, one function per target. Each
//! takes the raw fuzzer input and panics when kuvert breaks a promise, so a
//! crash file in `fuzz/artifacts/` is always either a panic inside kuvert or a
//! property violation. The same properties run as proptest tests in the
//! domain crate (`cargo test -p kuvert-domain`); docs/fuzzing.md lists them.
//!
//! The checks are written independently of the code they test (their own
//! Luhn, their own JCS serialiser, a real HTML parser instead of the
//! sanitiser's), so a test cannot pass by repeating a mistake.

use std::path::{Component, Path};
use std::sync::LazyLock;

use html5ever::tendril::TendrilSink;
use html5ever::{ParseOpts, parse_document};
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::content::{AttachmentName, MAX_ATTACHMENT_NAME_BYTES, sanitize_html};
use kuvert_domain::delivery::{DeliveryLimits, SIGNED_DELIVERY_DOMAIN, SecureDelivery};
use kuvert_domain::html_check::find_unsafe_html;
use kuvert_domain::identity::{OrganisationNumber, PersonalIdentityNumber, RecipientId};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use serde_json::Value;
use time::{Date, Duration, Month};

/// The reference date of the test vectors; the intake target validates on it.
pub const TODAY: Date = match Date::from_calendar_date(2026, Month::November, 24) {
    Ok(d) => d,
    Err(_) => panic!("2026-11-24 is a date"),
};

// ---------------------------------------------------------------------------
// identity
// ---------------------------------------------------------------------------

/// Identity numbers. Input: two bytes pick `today` (1900-01-01 plus up to
/// 65 535 days, so 1900..2079), the rest is the written number (UTF-8).
///
/// Properties: whatever is accepted is 12 ASCII digits that carry a correct
/// Luhn digit and a valid date, keeps the digits as written, picks the century
/// the documented way, reads back identically with `parse_canonical` and on
/// any other day, and is masked in `Display`/`Debug`; `RecipientId::parse`
/// agrees with the two specific parsers, which never both accept; an error
/// message never contains a digit.
pub fn identity(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let today = date(1900, 1, 1) + Duration::days(i64::from(u16::from_le_bytes([*a, *b])));
    let other_day = date(2101, 7, 15);

    let written: Vec<u8> = input.bytes().filter(u8::is_ascii_digit).collect();
    let plus = input.contains('+');

    let person = PersonalIdentityNumber::parse(input, today);
    let organisation = OrganisationNumber::parse(input);
    let recipient = RecipientId::parse(input, today);

    for e in [person.err(), organisation.err(), recipient.err()]
        .into_iter()
        .flatten()
    {
        let message = e.to_string();
        assert!(!message.bytes().any(|c| c.is_ascii_digit()), "{message}");
    }

    if let Ok(p) = person {
        let s = p.as_str();
        assert_canonical_shape(s, &written);
        let (year, month, raw_day) = (
            num(&s[0..4]) as i32,
            num(&s[4..6]) as u8,
            num(&s[6..8]) as u8,
        );
        assert!(year >= 1800, "{s}: year {year}");
        if raw_day >= 60 {
            assert!(month <= 12 && raw_day <= 91, "{s}: samordningsnummer range");
        } else {
            let m = Month::try_from(month).unwrap_or_else(|_| panic!("{s}: month"));
            assert!(
                Date::from_calendar_date(year, m, raw_day).is_ok(),
                "{s}: date"
            );
            assert_eq!(p.birth_date().map(|d| d.year()), Some(year), "{s}");
        }
        assert_ne!(&s[8..11], "000", "{s}: serial 000");
        if written.len() == 10 {
            // By calendar year (folkbokföringslagen 18 §): '-' is someone who
            // turns 0..=99 this year, '+' someone who turns 100..=199.
            let shift = if plus { 100 } else { 0 };
            let turns = today.year() - year;
            assert!((shift..shift + 100).contains(&turns), "{s} on {today}");
        }
        assert_eq!(PersonalIdentityNumber::parse(s, other_day), Ok(p));
        assert_eq!(RecipientId::parse_canonical(s), Ok(RecipientId::Person(p)));
        assert_masked(s, &[format!("{p}"), format!("{p:?}"), p.masked()]);
    }

    if let Ok(o) = organisation {
        let s = o.as_str();
        assert_canonical_shape(s, &written);
        assert!(s.starts_with("16"), "{s}");
        assert!(s.as_bytes()[4] >= b'2', "{s}: group digit");
        assert!(!plus, "{input:?}: '+' accepted for an organisation");
        assert_eq!(OrganisationNumber::parse(s), Ok(o));
        assert_eq!(
            RecipientId::parse_canonical(s),
            Ok(RecipientId::Organisation(o))
        );
        assert_masked(s, &[format!("{o}"), format!("{o:?}"), o.masked()]);
    }

    assert!(
        !(person.is_ok() && organisation.is_ok()),
        "{input:?} is both a personal and an organisation number"
    );
    match recipient {
        Ok(RecipientId::Person(p)) => assert_eq!(person, Ok(p)),
        Ok(RecipientId::Organisation(o)) => assert_eq!(organisation, Ok(o)),
        Err(_) => assert!(person.is_err() && organisation.is_err(), "{input:?}"),
    }
    if let Ok(r) = recipient {
        assert_eq!(RecipientId::parse_canonical(r.as_str()), Ok(r));
        assert_masked(r.as_str(), &[format!("{r}"), format!("{r:?}"), r.masked()]);
    }

    if let Ok(r) = RecipientId::parse_canonical(input) {
        assert_eq!(r.as_str(), input, "parse_canonical rewrote its input");
    }
}

/// 12 ASCII digits, with a Luhn digit over the last ten, ending in the last
/// ten digits as written (12 written digits are kept as they are).
fn assert_canonical_shape(s: &str, written: &[u8]) {
    assert!(
        s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit()),
        "{s:?}"
    );
    assert!(luhn_ok(&s.as_bytes()[2..]), "{s}: check digit");
    if written.len() == 12 {
        assert_eq!(s.as_bytes(), written, "12 written digits rewritten");
    } else {
        assert!(s.as_bytes().ends_with(written), "{s}: digits rewritten");
    }
}

/// Debug, Display and `masked` show the date part and nothing after it.
fn assert_masked(s: &str, shown: &[String]) {
    let mask = format!("{}-****", &s[..8]);
    for text in shown {
        assert!(text.contains(&mask), "{text}");
        assert!(!text.contains(&s[2..]), "{text} shows every digit");
    }
}

/// Luhn over ten ASCII digits (weights 2,1,2,1,...), written independently.
fn luhn_ok(ten: &[u8]) -> bool {
    let sum: u32 = ten
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0') * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    ten.len() == 10 && sum % 10 == 0
}

fn num(digits: &str) -> u32 {
    digits.parse().unwrap_or_else(|_| panic!("{digits:?}"))
}

fn date(y: i32, m: u8, d: u8) -> Date {
    Month::try_from(m)
        .ok()
        .and_then(|m| Date::from_calendar_date(y, m, d).ok())
        .unwrap_or_else(|| panic!("{y}-{m}-{d}"))
}

// ---------------------------------------------------------------------------
// intake
// ---------------------------------------------------------------------------

/// A fixed test key: the property is about the bytes that are signed, not
/// about the key.
static TEST_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[0x42; 32]));

/// The delivery intake: bytes as JSON → `SecureDelivery` → `validate` →
/// canonical bytes → signature.
///
/// Properties: the canonical form of any parsed delivery parses back to an
/// equal delivery, canonicalises again to the same bytes, and is exactly what
/// an independent RFC 8785 serialiser makes of it; validation is
/// deterministic across that round trip; a validated delivery keeps those
/// same bytes, holds no `null`, `false` or empty list, and its signature
/// verifies over the canonical form of the re-parsed delivery but not once
/// any one byte is changed; and a changed byte never yields a different
/// delivery with the same canonical form.
pub fn intake(data: &[u8]) {
    let Ok(delivery) = serde_json::from_slice::<SecureDelivery>(data) else {
        return;
    };
    let canonical = delivery.canonical_bytes();
    assert!(!canonical.is_empty());
    let again: SecureDelivery = serde_json::from_slice(&canonical).unwrap_or_else(|e| {
        panic!(
            "canonical form does not parse: {e}\n{}",
            String::from_utf8_lossy(&canonical)
        )
    });
    assert_eq!(again, delivery, "canonical form changed the delivery");
    assert_eq!(again.canonical_bytes(), canonical, "not a fixed point");
    let value: Value = serde_json::from_slice(&canonical).unwrap_or_else(|e| panic!("{e}"));
    let mut jcs = String::new();
    write_jcs(&value, &mut jcs);
    assert_eq!(
        jcs.as_bytes(),
        canonical.as_slice(),
        "canonical form is not RFC 8785"
    );

    let limits = DeliveryLimits::default();
    let first = delivery.validate(&limits, TODAY);
    let second = again.clone().validate(&limits, TODAY);
    match (first, second) {
        (Ok(v), Ok(w)) => {
            assert_eq!(v.canonical, canonical);
            assert_eq!(w.canonical, canonical);
            assert_eq!(v.recipient, w.recipient);
            assert_eq!(v.sender, w.sender);
            assert_no_omittable_values(&value);

            let signature = TEST_KEY.sign(SIGNED_DELIVERY_DOMAIN, &v.canonical);
            let public = TEST_KEY.public_key();
            assert!(
                public
                    .verify(
                        SIGNED_DELIVERY_DOMAIN,
                        &w.delivery.canonical_bytes(),
                        &signature
                    )
                    .is_ok(),
                "signature over the canonical form does not verify"
            );
            let mut tampered = v.canonical.clone();
            let at = data.len().wrapping_mul(31).wrapping_add(data[0] as usize) % tampered.len();
            tampered[at] ^= 1 << (data.len() % 8);
            assert!(
                public
                    .verify(SIGNED_DELIVERY_DOMAIN, &tampered, &signature)
                    .is_err(),
                "signature verifies after byte {at} changed"
            );
        }
        (Err(e), Err(f)) => assert_eq!(e, f, "validation differs after the round trip"),
        (a, b) => panic!(
            "validation differs after the round trip: {:?} vs {:?}",
            a.map(|v| v.canonical.len()),
            b.map(|v| v.canonical.len())
        ),
    }

    // What the signature relies on: with one byte changed, the canonical form
    // is refused, or reads back as the same delivery, or as a different one
    // with a different canonical form (two deliveries never share one).
    let mut changed = canonical.clone();
    let at = data
        .len()
        .wrapping_mul(7)
        .wrapping_add(data[data.len() / 2] as usize)
        % changed.len();
    changed[at] ^= 1 << (data[0] % 8);
    if let Ok(other) = serde_json::from_slice::<SecureDelivery>(&changed) {
        assert_eq!(
            other == again,
            other.canonical_bytes() == canonical,
            "canonical form does not bind the delivery (byte {at})"
        );
    }
}

/// RFC 8785 written out by hand: object members sorted by their UTF-16 code
/// units, no whitespace, the JSON short escapes and `\u00xx` (lowercase) for
/// the other control characters, everything else literal. kuvert's model has
/// integers at most, never floats.
fn write_jcs(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            assert!(n.is_i64() || n.is_u64(), "a float in a delivery: {n}");
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_jcs_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jcs(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, value)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jcs_string(key, out);
                out.push(':');
                write_jcs(value, out);
            }
            out.push('}');
        }
    }
}

fn write_jcs_string(s: &str, out: &mut String) {
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

/// The signed form leaves out absent, `null`, `false` and empty-list fields.
fn assert_no_omittable_values(v: &Value) {
    match v {
        Value::Null | Value::Bool(false) => panic!("omittable value in canonical form: {v}"),
        Value::Array(items) => {
            assert!(!items.is_empty(), "empty list in canonical form");
            items.iter().for_each(assert_no_omittable_values);
        }
        Value::Object(map) => map.values().for_each(assert_no_omittable_values),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// sanitizer
// ---------------------------------------------------------------------------

/// The HTML sanitiser: any UTF-8 input, sanitised, then parsed by a real
/// HTML parser (html5ever building a DOM, the way a browser would).
///
/// Properties: only the formatting elements of the policy and the
/// parser's own html/head/body remain; only the policy's attributes (so no
/// `on*` handler and nothing that loads a resource: no src, srcset, style,
/// background, ...); every link has an http, https, mailto or tel scheme (so
/// no javascript:, vbscript: or data:, and no relative URL); no comments;
/// and kuvert's own intake check (`find_unsafe_html`) finds nothing in the
/// output. Sanitising the output again keeps all of this.
pub fn sanitizer(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let out = sanitize_html(input);
    let found = html_violations(&out);
    assert!(found.is_empty(), "{input:?}\n -> {out:?}\n{found:?}");
    // What the sanitiser leaves is inside the allowlist. It may still be
    // refused at intake as shown differently (re-serialising mis-nested
    // markup is not stable) or too deep; nothing else.
    let outside = find_unsafe_html(&out).filter(|r| {
        !matches!(
            r,
            kuvert_domain::html_check::UnsafeHtml::ShownDifferently(_)
                | kuvert_domain::html_check::UnsafeHtml::TooDeep
        )
    });
    assert_eq!(outside, None, "{input:?}\n -> {out:?}");
    let twice = sanitize_html(&out);
    let found = html_violations(&twice);
    assert!(
        found.is_empty(),
        "second pass: {out:?} -> {twice:?}: {found:?}"
    );
}

/// The elements the sanitiser may leave, and what a document parser adds.
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

/// Attributes that neither run script nor load anything.
const ALLOWED_ATTRIBUTES: &[&str] = &[
    "title", "lang", "href", "rel", "colspan", "rowspan", "scope", "start",
];

/// Schemes a link may carry (navigation the reader chooses, never a load).
const LINK_SCHEMES: &[&str] = &["http", "https", "mailto", "tel"];

/// Every breach of the policy in `html` once parsed as a document.
pub fn html_violations(html: &str) -> Vec<String> {
    let dom = parse_document(RcDom::default(), ParseOpts::default())
        .from_utf8()
        .read_from(&mut html.as_bytes())
        .unwrap_or_else(|e| panic!("reading from memory failed: {e}"));
    let mut found = Vec::new();
    walk(&dom.document, &mut found);
    found
}

fn walk(node: &Handle, found: &mut Vec<String>) {
    match &node.data {
        NodeData::Element {
            name,
            attrs,
            template_contents,
            ..
        } => {
            let tag = name.local.to_string().to_ascii_lowercase();
            if !ALLOWED_ELEMENTS.contains(&&*tag) || &*name.ns != "http://www.w3.org/1999/xhtml" {
                found.push(format!("element <{tag}> in {:?}", name.ns));
            }
            for attr in attrs.borrow().iter() {
                let local = attr.name.local.to_string().to_ascii_lowercase();
                if attr.name.prefix.is_some() || !ALLOWED_ATTRIBUTES.contains(&&*local) {
                    found.push(format!("attribute {:?} on <{tag}>", attr.name));
                }
                if local.starts_with("on") {
                    found.push(format!("event handler {local}"));
                }
                if local == "href" {
                    let value = attr.value.to_string();
                    match url_scheme(&value) {
                        Some(s) if LINK_SCHEMES.contains(&s.as_str()) => {}
                        other => found.push(format!("href {value:?} (scheme {other:?})")),
                    }
                }
            }
            if let Some(contents) = template_contents.borrow().as_ref() {
                walk(contents, found);
            }
        }
        NodeData::Comment { contents } => found.push(format!("comment {contents:?}")),
        NodeData::ProcessingInstruction { .. } => found.push("processing instruction".into()),
        _ => {}
    }
    for child in node.children.borrow().iter() {
        walk(child, found);
    }
}

/// The scheme of a URL as a browser reads it: surrounding C0 controls and
/// spaces trimmed, tabs and newlines inside removed, lowercased; `None` for a
/// relative URL.
fn url_scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, _) = cleaned.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------
// attachment_name
// ---------------------------------------------------------------------------

/// Attachment file names: any UTF-8 input.
///
/// Properties: an accepted name is exactly the input (never rewritten); it
/// holds what `AttachmentName` promises (no '/', '\\', no control, bidi or
/// invisible character, none of `< > : " | ? *`, not "." or "..", no leading
/// or trailing dot, not a Windows device name with or without extension,
/// 1..=255 bytes, not blank, no surrounding whitespace), so joined to a
/// folder it is one plain component
/// of that folder; and `parse` accepts exactly the names that an independent
/// statement of those rules accepts (nothing is refused without a reason).
/// Deserialising agrees with `parse`.
pub fn attachment_name(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = AttachmentName::parse(s);
    assert_eq!(
        parsed.is_ok(),
        name_allowed(s),
        "{s:?}: parse says {parsed:?}"
    );
    let json = serde_json::to_string(s).unwrap_or_else(|e| panic!("{e}"));
    let via_serde = serde_json::from_str::<AttachmentName>(&json);
    assert_eq!(via_serde.as_ref().ok(), parsed.as_ref().ok(), "{s:?}");

    if let Ok(name) = parsed {
        let n = name.as_str();
        assert_eq!(n, s, "accepted name was rewritten");
        assert!(!n.is_empty() && n.len() <= MAX_ATTACHMENT_NAME_BYTES);
        assert!(!n.contains(['/', '\\']), "{n:?}: separator");
        assert!(n != "." && n != ".." && !n.starts_with('.'), "{n:?}: dot");
        assert!(!n.ends_with('.'), "{n:?}: trailing dot");
        assert!(!n.chars().any(is_hidden_char), "{n:?}: control character");
        assert!(
            !n.chars().any(is_invisible_char),
            "{n:?}: invisible character"
        );
        assert!(
            !n.contains(WINDOWS_RESERVED),
            "{n:?}: Windows-reserved character"
        );
        assert!(!is_windows_device(n), "{n:?}: Windows device name");
        let folder = Path::new("inbox");
        let joined = folder.join(n);
        let parts: Vec<Component> = joined.components().collect();
        assert_eq!(
            parts,
            [
                Component::Normal("inbox".as_ref()),
                Component::Normal(n.as_ref())
            ],
            "{n:?} escapes its folder"
        );
        assert_eq!(joined.parent(), Some(folder));
        assert_eq!(
            serde_json::to_string(&name).unwrap_or_else(|e| panic!("{e}")),
            json
        );
    }
}

/// The rules of `AttachmentName`, stated again from its documentation.
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

/// The characters Windows refuses in file names besides '/' and '\\'.
const WINDOWS_RESERVED: [char; 7] = ['<', '>', ':', '"', '|', '?', '*'];

/// CON, PRN, AUX, NUL, COM0-9, LPT0-9 (also with superscript 1-3), CONIN$
/// and CONOUT$, in any ASCII case, as the part before the first dot with
/// trailing spaces dropped.
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

/// Format characters (Unicode 16 category Cf) and the other
/// default-ignorable code points, as listed in the UCD.
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

/// Control characters (Unicode category Cc) and the characters that reorder
/// text: bidi marks, embeddings, overrides and isolates, and the line and
/// paragraph separators.
fn is_hidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{200E}' | '\u{200F}' | '\u{061C}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_checker_sees_attacks() {
        assert!(!html_violations("<img src=x onerror=alert(1)>").is_empty());
        assert!(!html_violations("<a href=' jav\tascript:alert(1)'>x</a>").is_empty());
        assert!(!html_violations("<a href='/relative'>x</a>").is_empty());
        assert!(!html_violations("<svg><a xlink:href='https://x'>x</a></svg>").is_empty());
        assert!(!html_violations("<p style='background:url(x)'>x</p>").is_empty());
        assert!(!html_violations("<p><!-- x --></p>").is_empty());
        assert!(html_violations("<p><a href='https://example.se' rel=x>x</a></p>").is_empty());
    }

    #[test]
    fn jcs_of_a_known_object() {
        let v: Value = serde_json::from_str(r#"{"b":"\u0001\n\"","a":[1,true,null]}"#).unwrap();
        let mut out = String::new();
        write_jcs(&v, &mut out);
        assert_eq!(out, r#"{"a":[1,true,null],"b":"\u0001\n\""}"#);
    }

    #[test]
    fn the_valid_intake_seeds_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/intake");
        for seed in ["minimal", "full", "escapes"] {
            let data = std::fs::read(dir.join(seed)).unwrap();
            let delivery: SecureDelivery = serde_json::from_slice(&data).unwrap();
            let result = delivery.validate(&DeliveryLimits::default(), TODAY);
            assert!(result.is_ok(), "{seed}: {:?}", result.err());
        }
    }

    /// Guards the corpus: enough of it gets past validation that the
    /// signature half of the `intake` property is exercised.
    #[test]
    fn the_intake_corpus_reaches_the_signature() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/intake");
        let valid = std::fs::read_dir(dir)
            .unwrap()
            .filter(|entry| {
                let data = std::fs::read(entry.as_ref().unwrap().path()).unwrap();
                serde_json::from_slice::<SecureDelivery>(&data)
                    .is_ok_and(|d| d.validate(&DeliveryLimits::default(), TODAY).is_ok())
            })
            .count();
        assert!(valid >= 10, "only {valid} corpus deliveries validate");
    }

    #[test]
    fn the_seeds_hold() {
        for target in ["identity", "intake", "sanitizer", "attachment_name"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("corpus")
                .join(target);
            for entry in std::fs::read_dir(&dir).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                match target {
                    "identity" => identity(&data),
                    "intake" => intake(&data),
                    "sanitizer" => sanitizer(&data),
                    _ => attachment_name(&data),
                }
            }
        }
    }
}
