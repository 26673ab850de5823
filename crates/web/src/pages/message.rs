//! One message (`GET /messages/{id}`), its body (`GET /messages/{id}/body`)
//! and its attachments (`GET /messages/{id}/attachments/{index}`); the same
//! under `/for/{delegation}/…` for a delegate. Each calls the mailbox's own
//! [`Mailbox::read`](kuvert_mailbox::Mailbox::read) /
//! [`attachment`](kuvert_mailbox::Mailbox::attachment) with the owner's id,
//! as the recipient API does, so another person's message answers exactly
//! as a missing one (the same 404 page).
//!
//! An HTML body was sanitised at acceptance; it is still never put into
//! the message page. It is served from its own URL with its own CSP
//! ([`BODY_CONTENT_SECURITY_POLICY`]: no script, nothing fetched, a
//! sandbox) and shown in an `<iframe sandbox>` without `allow-scripts` or
//! `allow-same-origin`, so what the sanitiser might have missed can neither
//! run nor load anything, nor reach the page or its cookies.

use super::access::MailboxAccess;
use super::inbox::{MailFrame, mailbox, message_id};
use super::{Lang, PageError};
use crate::AppState;
use crate::session::WebSession;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use kuvert_domain::delivery::BodyContentType;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_mailbox::reading::MessageView;

/// The body frame's policy: nothing but inline style and `data:` images,
/// no script, no form, no base; framed only by kuvert's own pages; and a
/// sandbox on top (an opaque origin, even opened on its own). The page
/// around it keeps the strict policy of `session::CONTENT_SECURITY_POLICY`,
/// whose `default-src 'self'` already lets it frame this URL.
pub const BODY_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

/// The body frame's own style: kuvert's type and colours, nothing wider
/// than the frame.
const BODY_STYLE: &str = "body{margin:1rem;font:1.0625rem/1.5 system-ui,sans-serif;color:#1b1b1b;background:#fff;overflow-wrap:anywhere}\
     a{color:#0b5394}img,table{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #c8c8c8;padding:.25rem .5rem}";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/messages/{id}", get(own_message))
        .route("/for/{delegation}/messages/{id}", get(delegated_message))
        .route("/messages/{id}/body", get(own_body))
        .route("/for/{delegation}/messages/{id}/body", get(delegated_body))
        .route("/messages/{id}/attachments/{index}", get(own_attachment))
        .route(
            "/for/{delegation}/messages/{id}/attachments/{index}",
            get(delegated_attachment),
        )
}

struct AttachmentRow {
    index: usize,
    filename: String,
    content_type: String,
    size: String,
}

struct Support {
    text: String,
    phone: Option<(String, String)>,
    url: Option<String>,
    email: Option<String>,
}

struct Linked {
    id: String,
    subject: String,
    delivered: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    lang: Lang,
    test_login: bool,
    frame: MailFrame,
    nav_current: &'static str,
    id: String,
    subject: String,
    sender_name: String,
    delivered: String,
    delivered_iso: String,
    html_body: bool,
    body: String,
    attachments: Vec<AttachmentRow>,
    support: Support,
    matter: Option<String>,
    linked: Vec<Linked>,
    archived: bool,
}

async fn own_message(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    show_message(&state, MailboxAccess::own(session), lang, &id).await
}

async fn delegated_message(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path((delegation, id)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    let access = super::delegation::resolve(&state, session, &delegation).await?;
    show_message(&state, access, lang, &id).await
}

async fn show_message(
    state: &AppState,
    access: MailboxAccess,
    lang: Lang,
    id: &str,
) -> Result<Html<String>, PageError> {
    let id = message_id(id)?;
    let mailbox = mailbox(state)?;
    let view = open(mailbox, &access, &id).await?;
    super::delegation::record_read(state, &access, &id, "message").await?;
    let linked = mailbox
        .same_matter(&access.owner, &view)
        .await?
        .into_iter()
        .map(|m| Linked {
            id: m.id.to_string(),
            subject: m.subject,
            delivered: local_time(&m.delivered_at, lang, false),
            unread: !m.read,
        })
        .collect();
    let frame = MailFrame::of(state, &access, lang);
    let page = page_of(view, lang, frame, linked);
    Ok(Html(page.render()?))
}

fn page_of(view: MessageView, lang: Lang, frame: MailFrame, linked: Vec<Linked>) -> MessagePage {
    let support = &view.support_info;
    let phone = support.phone_number.as_ref().map(|shown| {
        // `tel:` wants the number without spaces or dashes.
        let dial: String = shown
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        (shown.clone(), dial)
    });
    // Only a web address is a link: a `javascript:` or other scheme a
    // sender wrote is shown as text, never followed.
    let url = support
        .url
        .clone()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    MessagePage {
        lang,
        test_login: frame.test_login,
        // A message is neither list: no link is marked as this page.
        nav_current: "",
        id: view.id.to_string(),
        subject: view.subject,
        sender_name: view.sender_name,
        delivered: local_time(&view.delivered_at, lang, true),
        delivered_iso: view.delivered_at,
        html_body: view.content_type == BodyContentType::TextHtml,
        body: view.body,
        attachments: view
            .attachments
            .into_iter()
            .map(|a| AttachmentRow {
                index: a.index,
                size: human_size(a.size, lang),
                filename: a.filename,
                content_type: a.content_type,
            })
            .collect(),
        support: Support {
            text: support.text.clone(),
            phone,
            url,
            email: support.email_address.clone(),
        },
        matter: view.official_matter.map(|m| m.name.unwrap_or(m.id)),
        linked,
        archived: view.archived,
        frame,
    }
}

async fn own_body(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    body(&state, MailboxAccess::own(session), lang, &id).await
}

async fn delegated_body(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path((delegation, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let access = super::delegation::resolve(&state, session, &delegation).await?;
    body(&state, access, lang, &id).await
}

/// The body alone, for the message page's frame. An HTML body goes out
/// with [`BODY_CONTENT_SECURITY_POLICY`] and may be framed by kuvert's own
/// pages (`SAMEORIGIN`): the one response that may be framed at all
/// (`session::security_headers` keeps the policy a handler set). A plain
/// text body goes out as `text/plain` (the page shows it itself).
async fn body(
    state: &AppState,
    access: MailboxAccess,
    lang: Lang,
    id: &str,
) -> Result<Response, PageError> {
    let id = message_id(id)?;
    let view = open(mailbox(state)?, &access, &id).await?;
    // The body alone is a read too: a delegate fetching it directly is in
    // the owner's list of reads like one opening the page.
    super::delegation::record_read(state, &access, &id, "body").await?;
    if view.content_type != BodyContentType::TextHtml {
        // Mail content: never cached, never sniffed into something else.
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(BODY_CONTENT_SECURITY_POLICY),
                ),
            ],
            view.body,
        )
            .into_response());
    }
    // The frame cannot load kuvert.css (its policy allows nothing from
    // anywhere), so its few rules are inline, which that policy allows.
    let document = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{BODY_STYLE}</style></head><body>{}</body></html>",
        lang.code(),
        lang.pick("Meddelandets innehåll", "The message's content"),
        view.body
    );
    let mut response = Html(document).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(BODY_CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

/// Opening marks a message read when its recipient opens it, as the API's
/// read does; a delegate's opening leaves it unread for the owner.
async fn open(
    mailbox: &kuvert_mailbox::accept::Mailbox,
    access: &MailboxAccess,
    id: &kuvert_domain::ids::MailboxMessageId,
) -> Result<kuvert_mailbox::reading::MessageView, PageError> {
    let view = if access.delegated.is_some() {
        mailbox.read_for_delegate(&access.owner, id).await?
    } else {
        mailbox.read(&access.owner, id).await?
    };
    Ok(view)
}

async fn own_attachment(
    State(state): State<AppState>,
    session: WebSession,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, PageError> {
    attachment(&state, MailboxAccess::own(session), &id, &index).await
}

async fn delegated_attachment(
    State(state): State<AppState>,
    session: WebSession,
    Path((delegation, id, index)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let access = super::delegation::resolve(&state, session, &delegation).await?;
    attachment(&state, access, &id, &index).await
}

/// The file as the API sends it (`Content-Disposition: attachment`,
/// `nosniff`): it is downloaded, never shown in kuvert's origin.
async fn attachment(
    state: &AppState,
    access: MailboxAccess,
    id: &str,
    index: &str,
) -> Result<Response, PageError> {
    let id: MailboxMessageId = message_id(id)?;
    // An index that is not a number is an attachment that is not there.
    let index: usize = index.parse().map_err(|_| PageError::NotFound)?;
    let file = mailbox(state)?
        .attachment(&access.owner, &id, index)
        .await?;
    if access.delegated.is_some() {
        super::delegation::record_read(state, &access, &id, "attachment").await?;
    }
    crate::api::mailbox::attachment_response(file).map_err(|_| PageError::NotFound)
}

/// A size as people read it: bytes, kB or MB (powers of 1000, one decimal,
/// a decimal comma in Swedish).
pub(crate) fn human_size(bytes: usize, lang: Lang) -> String {
    let (value, unit) = match bytes {
        0..1_000 => return format!("{bytes} {}", lang.pick("byte", "bytes")),
        1_000..1_000_000 => (bytes as f64 / 1e3, "kB"),
        _ => (bytes as f64 / 1e6, "MB"),
    };
    let text = format!("{value:.1}");
    let text = if lang.is_swedish() {
        text.replace('.', ",")
    } else {
        text
    };
    format!("{text} {unit}")
}

/// An instant (RFC 3339, UTC) in Swedish time, as in "1 december 2026 kl.
/// 18:35" (`with_seconds` adds them: the legal moment of delivery is shown
/// to the second), by [`kuvert_domain::swedish_time`] (CET, and CEST by the
/// EU rule). A string that does not parse is shown as it is.
pub(crate) fn local_time(instant: &str, lang: Lang, with_seconds: bool) -> String {
    let Ok(at) = kuvert_domain::clock::parse_instant(instant) else {
        return instant.to_owned();
    };
    let offset = kuvert_domain::swedish_time::offset_at(at);
    let summer = offset.whole_hours() == 2;
    let local = at.to_offset(offset);
    let month = usize::from(u8::from(local.month())).saturating_sub(1);
    const SV: [&str; 12] = [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let clock = if with_seconds {
        format!(
            "{:02}:{:02}:{:02}",
            local.hour(),
            local.minute(),
            local.second()
        )
    } else {
        format!("{:02}:{:02}", local.hour(), local.minute())
    };
    match lang {
        Lang::Sv => format!(
            "{} {} {} kl. {clock}",
            local.day(),
            SV.get(month).copied().unwrap_or_default(),
            local.year()
        ),
        Lang::En => format!(
            "{} {} {}, {clock} {}",
            local.day(),
            EN.get(month).copied().unwrap_or_default(),
            local.year(),
            if summer { "CEST" } else { "CET" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_swedish_with_summer_time() {
        // 2026: CEST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        let at = |s| local_time(s, Lang::Sv, false);
        assert_eq!(at("2026-03-29T00:59:00.000000Z"), "29 mars 2026 kl. 01:59");
        assert_eq!(at("2026-03-29T01:00:00.000000Z"), "29 mars 2026 kl. 03:00");
        assert_eq!(
            at("2026-10-25T00:59:00.000000Z"),
            "25 oktober 2026 kl. 02:59"
        );
        assert_eq!(
            at("2026-10-25T01:00:00.000000Z"),
            "25 oktober 2026 kl. 02:00"
        );
        assert_eq!(
            local_time("2026-12-01T17:35:58.000000Z", Lang::En, true),
            "1 December 2026, 18:35:58 CET"
        );
        assert_eq!(at("garbage"), "garbage");
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human_size(999, Lang::Sv), "999 byte");
        assert_eq!(human_size(12_345, Lang::Sv), "12,3 kB");
        assert_eq!(human_size(12_345, Lang::En), "12.3 kB");
        assert_eq!(human_size(4_200_000, Lang::En), "4.2 MB");
    }
}
