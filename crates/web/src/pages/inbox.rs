//! The inbox and the archive (`GET /inbox`, `?folder=archive`), and moving
//! a message between them (`POST /messages/{id}/archive`); the same under
//! `/for/{delegation}/…` for a delegate ([`super::access`]). The list is the
//! mailbox's own [`Mailbox::list_after`] with the owner's id, the same
//! authorization path as the recipient API: unread first, then newest
//! first, paged by cursor ([`InboxCursor`]), [`INBOX_PAGE_SIZE`] a page.

use super::access::MailboxAccess;
use super::{Lang, PageError};
use crate::AppState;
use crate::session::WebSession;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kuvert_domain::ids::MailboxMessageId;
use kuvert_mailbox::Mailbox;
use kuvert_mailbox::accept::MailboxError;
use kuvert_mailbox::reading::{InboxCursor, MAX_CURSOR_LEN, SenderChoice};
use kuvert_store::mailbox::Folder;
use serde::Deserialize;

/// Messages on one inbox page unless `?page_size=` asks otherwise (a phone
/// screen or two; the cursor brings the next).
pub const INBOX_PAGE_SIZE: i64 = 25;
/// `?page_size=` may ask for 1 to this many
/// ([`kuvert_mailbox::reading::MAX_CURSOR_PAGE_SIZE`]); outside that is a
/// 400, not a silent clamp.
pub const MAX_INBOX_PAGE_SIZE: i64 = kuvert_mailbox::reading::MAX_CURSOR_PAGE_SIZE;
/// A sender id in the filter is at most this long (the register's ids are
/// shorter); longer is refused before any lookup.
const MAX_SENDER_LEN: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(own_inbox))
        .route("/for/{delegation}/inbox", get(delegated_inbox))
        .route("/messages/{id}/archive", post(own_archive))
        .route(
            "/for/{delegation}/messages/{id}/archive",
            post(delegated_archive),
        )
}

/// A mailbox error as a page: a message that is not the owner's answers
/// exactly as one that does not exist.
impl From<MailboxError> for PageError {
    fn from(e: MailboxError) -> Self {
        match e {
            MailboxError::NotFound => PageError::NotFound,
            other => PageError::Mailbox(other),
        }
    }
}

/// The mailbox role of this node (a node without it has no mail pages).
pub(crate) fn mailbox(state: &AppState) -> Result<&Mailbox, PageError> {
    state
        .mailbox()
        .map(AsRef::as_ref)
        .map_err(|_| PageError::NotFound)
}

/// A message id from the URL; one that does not parse is simply not there.
pub(crate) fn message_id(text: &str) -> Result<MailboxMessageId, PageError> {
    MailboxMessageId::parse(text).map_err(|_| PageError::NotFound)
}

/// What every mail page shows around its content: whose mail, the links'
/// prefix and language, the CSRF token of its forms.
pub(crate) struct MailFrame {
    pub test_login: bool,
    /// `""` or `/for/{delegation}`.
    pub prefix: String,
    /// `Some(owner's name)` in a delegate's view.
    pub owner_name: Option<String>,
    pub may_manage: bool,
    pub csrf: String,
    /// Appended to links: `""` or `lang=en` (with `?` or `&` by the link).
    pub lang_param: &'static str,
}

impl MailFrame {
    pub fn of(state: &AppState, access: &MailboxAccess, lang: Lang) -> Self {
        Self {
            test_login: state.dev_idp().is_some(),
            prefix: access.prefix(),
            owner_name: access.delegated.as_ref().map(|d| d.owner_name.clone()),
            may_manage: access.may_manage(),
            csrf: access.session.csrf_token.clone(),
            lang_param: if lang.is_swedish() { "" } else { "lang=en" },
        }
    }

    /// `?lang=en` or nothing: for a link without other parameters.
    pub fn q(&self) -> String {
        if self.lang_param.is_empty() {
            String::new()
        } else {
            format!("?{}", self.lang_param)
        }
    }

    /// `&lang=en` or nothing: after a link's own parameters.
    pub fn amp(&self) -> String {
        if self.lang_param.is_empty() {
            String::new()
        } else {
            format!("&{}", self.lang_param)
        }
    }
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    folder: Option<String>,
    sender: Option<String>,
    cursor: Option<String>,
    page_size: Option<String>,
}

pub(crate) struct Row {
    id: String,
    subject: String,
    sender_name: String,
    unread: bool,
    delivered: String,
    delivered_iso: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    lang: Lang,
    test_login: bool,
    frame: MailFrame,
    /// Which link of the mail navigation is this page.
    nav_current: &'static str,
    archive: bool,
    rows: Vec<Row>,
    total: i64,
    unread: i64,
    senders: Vec<SenderChoice>,
    sender: String,
    /// The next page's link (query), if there is one.
    next: Option<String>,
    /// Whether this is a later page (a link back to the first is shown).
    paged: bool,
    /// The folder's own link, with the sender filter kept.
    first: String,
}

async fn own_inbox(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Query(query): Query<InboxQuery>,
) -> Result<Html<String>, PageError> {
    show_inbox(&state, MailboxAccess::own(session), lang, query).await
}

async fn delegated_inbox(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(delegation): Path<String>,
    Query(query): Query<InboxQuery>,
) -> Result<Html<String>, PageError> {
    let access = super::delegation::resolve(&state, session, &delegation).await?;
    show_inbox(&state, access, lang, query).await
}

async fn show_inbox(
    state: &AppState,
    access: MailboxAccess,
    lang: Lang,
    query: InboxQuery,
) -> Result<Html<String>, PageError> {
    // Every parameter is checked before the mailbox is asked anything.
    let folder = match query.folder.as_deref() {
        None | Some("") | Some("inbox") => Folder::Inbox,
        Some("archive") => Folder::Archive,
        Some(_) => return Err(PageError::BadListQuery("invalid_folder")),
    };
    let sender = match query.sender.as_deref() {
        None | Some("") => None,
        Some(s) if s.len() <= MAX_SENDER_LEN => Some(s),
        Some(_) => return Err(PageError::BadListQuery("invalid_sender")),
    };
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) if text.len() <= MAX_CURSOR_LEN => {
            Some(InboxCursor::parse(text).map_err(|_| PageError::BadListQuery("invalid_cursor"))?)
        }
        Some(_) => return Err(PageError::BadListQuery("invalid_cursor")),
    };
    let page_size = match query.page_size.as_deref() {
        None | Some("") => None,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_INBOX_PAGE_SIZE).contains(&n) => Some(n),
            _ => return Err(PageError::BadListQuery("invalid_page_size")),
        },
    };
    let mailbox = mailbox(state)?;
    let page = mailbox
        .list_after(
            &access.owner,
            folder,
            sender,
            cursor.as_ref(),
            page_size.unwrap_or(INBOX_PAGE_SIZE),
        )
        .await?;
    let senders = mailbox.senders(&access.owner).await?;
    let frame = MailFrame::of(state, &access, lang);
    let archive = folder == Folder::Archive;
    let mut base = Vec::new();
    if archive {
        base.push("folder=archive".to_owned());
    }
    if let Some(sender) = sender {
        base.push(format!("sender={}", query_escape(sender)));
    }
    if let Some(size) = page_size {
        base.push(format!("page_size={size}"));
    }
    if !frame.lang_param.is_empty() {
        base.push(frame.lang_param.to_owned());
    }
    let link = |extra: Option<String>| {
        let mut parts = base.clone();
        parts.extend(extra);
        let path = format!("{}/inbox", frame.prefix);
        if parts.is_empty() {
            path
        } else {
            format!("{path}?{}", parts.join("&"))
        }
    };
    let rows = page
        .messages
        .into_iter()
        .map(|m| Row {
            id: m.id.to_string(),
            delivered: super::message::local_time(&m.delivered_at, lang, false),
            delivered_iso: m.delivered_at,
            subject: m.subject,
            sender_name: m.sender_name,
            unread: !m.read,
        })
        .collect();
    let view = InboxPage {
        lang,
        test_login: frame.test_login,
        nav_current: if archive { "archive" } else { "inbox" },
        archive,
        rows,
        total: page.total,
        unread: page.unread,
        senders,
        sender: sender.unwrap_or_default().to_owned(),
        next: page.next.map(|c| link(Some(format!("cursor={c}")))),
        paged: cursor.is_some(),
        first: link(None),
        frame,
    };
    Ok(Html(view.render()?))
}

/// Percent-encodes a query value (a sender id is plain ASCII in practice;
/// anything else is encoded rather than trusted).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct ArchiveForm {
    csrf: Option<String>,
    /// `1` to archive, `0` to move back to the inbox.
    archived: Option<String>,
    /// Where to go afterwards: `inbox` (default), `archive` or `message`.
    back: Option<String>,
}

async fn own_archive(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(id): Path<String>,
    Form(form): Form<ArchiveForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    archive(&state, MailboxAccess::own(session), lang, &id, form).await
}

async fn delegated_archive(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path((delegation, id)): Path<(String, String)>,
    Form(form): Form<ArchiveForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let access = super::delegation::resolve(&state, session, &delegation).await?;
    archive(&state, access, lang, &id, form).await
}

/// Archives or moves back, then 303 to where the form came from (one of
/// three fixed places: never a URL from the form).
async fn archive(
    state: &AppState,
    access: MailboxAccess,
    lang: Lang,
    id: &str,
    form: ArchiveForm,
) -> Result<Response, PageError> {
    if !access.may_manage() {
        return Err(PageError::MayNotManage);
    }
    let archived = match form.archived.as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(PageError::BadListQuery("invalid_form")),
    };
    let id = message_id(id)?;
    mailbox(state)?
        .archive(&access.owner, &id, archived)
        .await?;
    // What a delegate with the right to manage did is the owner's to see.
    let what = if archived { "archived" } else { "unarchived" };
    super::delegation::record_read(state, &access, &id, what).await?;
    let prefix = access.prefix();
    let en = !lang.is_swedish();
    let to = match form.back.as_deref() {
        Some("message") => format!("{prefix}/messages/{id}{}", if en { "?lang=en" } else { "" }),
        Some("archive") => format!(
            "{prefix}/inbox?folder=archive{}",
            if en { "&lang=en" } else { "" }
        ),
        _ => format!("{prefix}/inbox{}", if en { "?lang=en" } else { "" }),
    };
    Ok(Redirect::to(&to).into_response())
}
