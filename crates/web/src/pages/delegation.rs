//! Delegation (issue 18, decision 0019): a person gives another person the
//! right to read, or to read and manage, their mail, optionally until a
//! date. `GET /delegations` is the owner's page (who may read my mail, the
//! form to give the right, who has read my mail) and the list of mailboxes
//! delegated to the person logged in; `GET /for/{id}` is the delegate's
//! separate view of one owner's mail ("Post till Anna Andersson"), whose
//! inbox and messages the mailbox pages serve under `/for/{id}/…` through
//! [`resolve`]. The rules live in `kuvert_mailbox::delegation`; these
//! handlers call the same functions an API would, with the session's person.

use super::access::{Delegated, MailboxAccess};
use super::{CsrfField, Lang, PageError, Said};
use crate::AppState;
use crate::session::WebSession;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_domain::swedish_time;
use kuvert_mailbox::Mailbox;
use kuvert_mailbox::delegation::{
    DelegateRead, Delegation, DelegationError, DelegationId, GrantRequest, LISTED_READS,
    MAX_ACTIVE_DELEGATIONS, Rights,
};
use serde::Deserialize;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/delegations", get(page).post(grant))
        .route("/delegations/{id}/revoke", post(revoke))
        .route("/for/{id}", get(delegated_view))
}

/// The access a logged-in person has through the delegation `id`, looked up
/// now (never cached): a delegation that does not exist, is not to this
/// person, has been revoked or has expired answers [`PageError::NotFound`],
/// like a page that is not there.
pub async fn resolve(
    state: &AppState,
    session: WebSession,
    id: &str,
) -> Result<MailboxAccess, PageError> {
    let mailbox = mailbox(state)?;
    let name = full_name(&session);
    let delegation = mailbox
        .delegation_for(&session.person, &name, id)
        .await
        .map_err(page_error)?
        .ok_or(PageError::NotFound)?;
    Ok(MailboxAccess {
        session,
        owner: RecipientId::Person(delegation.owner),
        delegated: Some(Delegated {
            id: delegation.id.as_str().to_owned(),
            owner_name: delegation.owner_name,
            manage: delegation.rights == Rights::Manage,
        }),
    })
}

/// Called by the mailbox pages after a delegate opened a message
/// (`what` = `message`) or downloaded an attachment (`attachment`): the
/// owner sees every such read. One's own reads are not recorded here.
pub async fn record_read(
    state: &AppState,
    access: &MailboxAccess,
    message: &MailboxMessageId,
    what: &str,
) -> Result<(), PageError> {
    let Some(delegated) = &access.delegated else {
        return Ok(());
    };
    let id = DelegationId::parse(&delegated.id).ok_or(PageError::NotFound)?;
    mailbox(state)?
        .record_delegate_read(&id, message, what)
        .await
        .map_err(page_error)
}

fn mailbox(state: &AppState) -> Result<&Arc<Mailbox>, PageError> {
    state.mailbox().map_err(|_| PageError::NotFound)
}

fn full_name(session: &WebSession) -> String {
    format!("{} {}", session.given_name, session.family_name)
        .trim()
        .to_owned()
}

/// Not found and store failures answer as every page does; the rest are
/// refusals with their own text.
fn page_error(e: DelegationError) -> PageError {
    match e {
        DelegationError::NotFound => PageError::NotFound,
        DelegationError::Store(e) => PageError::Store(e),
        other => PageError::Delegation(other),
    }
}

/// What a refused grant says (see [`PageError::said`]).
pub(super) fn said(e: &DelegationError) -> Said {
    let refused = ("Rätten kunde inte ges", "The right could not be given");
    let back_sv = " Gå tillbaka och ändra uppgiften.";
    let back_en = " Go back and change it.";
    let (status, code, sv, en) = match e {
        DelegationError::InvalidIdentity(_) => (
            StatusCode::BAD_REQUEST,
            "delegate_invalid",
            "Personnumret är inte ett giltigt person- eller samordningsnummer (12 siffror, till exempel 19750505-3178).".to_owned(),
            "The number is not a valid Swedish personal identity or coordination number (12 digits, for example 19750505-3178).".to_owned(),
        ),
        DelegationError::ToSelf => (
            StatusCode::BAD_REQUEST,
            "delegate_self",
            "Du kan inte ge dig själv rätt att läsa din egen post.".to_owned(),
            "You cannot give yourself the right to read your own mail.".to_owned(),
        ),
        DelegationError::TooYoung { min } => (
            StatusCode::BAD_REQUEST,
            "delegate_too_young",
            format!("Den som får läsa din post måste ha fyllt {min} år."),
            format!("The person who reads your mail must be at least {min} years old."),
        ),
        DelegationError::InvalidRights => (
            StatusCode::BAD_REQUEST,
            "rights_invalid",
            "Välj om personen ska få läsa eller läsa och hantera din post.".to_owned(),
            "Choose whether the person may read, or read and manage, your mail.".to_owned(),
        ),
        DelegationError::InvalidDate => (
            StatusCode::BAD_REQUEST,
            "until_invalid",
            "Slutdatumet är inte ett datum. Skriv det som ÅÅÅÅ-MM-DD, till exempel 2027-06-30, eller lämna det tomt.".to_owned(),
            "The end date is not a date. Write it as YYYY-MM-DD, for example 2027-06-30, or leave it empty.".to_owned(),
        ),
        DelegationError::DateInPast => (
            StatusCode::BAD_REQUEST,
            "until_past",
            "Slutdatumet har redan passerat. Välj dagens datum eller ett senare.".to_owned(),
            "The end date has already passed. Choose today or a later date.".to_owned(),
        ),
        DelegationError::DateTooFar { max_days } => (
            StatusCode::BAD_REQUEST,
            "until_too_far",
            format!("Slutdatumet får ligga högst {max_days} dagar (ungefär fem år) fram. Lämna det tomt för en rätt som gäller tills du återkallar den."),
            format!("The end date may be at most {max_days} days (about five years) ahead. Leave it empty for a right that lasts until you revoke it."),
        ),
        DelegationError::TooMany { limit } => (
            StatusCode::CONFLICT,
            "delegations_full",
            format!("Högst {limit} personer kan ha rätt att läsa din post samtidigt. Återkalla någon först."),
            format!("At most {limit} people can have the right to read your mail at once. Revoke one first."),
        ),
        DelegationError::AlreadyDelegated => (
            StatusCode::CONFLICT,
            "delegate_exists",
            "Personen har redan rätt att läsa din post. Återkalla den rätten först om du vill ändra den.".to_owned(),
            "This person already has the right to read your mail. Revoke it first if you want to change it.".to_owned(),
        ),
        // Not reached (see `page_error`), answered as those pages are.
        DelegationError::NotFound => return PageError::NotFound.said(),
        DelegationError::Store(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Något gick fel hos oss. Försök igen om en stund.".to_owned(),
            "Something went wrong on our side. Try again in a while.".to_owned(),
        ),
    };
    let (sv, en) = match status {
        StatusCode::BAD_REQUEST => (sv + back_sv, en + back_en),
        _ => (sv, en),
    };
    Said {
        status,
        code,
        title: refused,
        text: (sv, en),
        retry: false,
    }
}

/// `?lang=en` on the links and form actions of an English page.
fn lang_query(lang: Lang) -> &'static str {
    if lang.is_swedish() { "" } else { "?lang=en" }
}

fn date_text(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// An instant as people in Sweden read it: "2026-12-01 14:05".
fn swedish_time_text(at: time::OffsetDateTime) -> String {
    let local = at.to_offset(swedish_time::offset_at(at));
    format!(
        "{} {:02}:{:02}",
        date_text(local.date()),
        local.hour(),
        local.minute()
    )
}

fn rights_text(lang: Lang, rights: Rights) -> &'static str {
    match rights {
        Rights::Read => lang.pick("Läsa", "Read"),
        Rights::Manage => lang.pick("Läsa och hantera", "Read and manage"),
    }
}

fn until_text(lang: Lang, until: Option<time::Date>) -> String {
    match until {
        None => lang.pick("Tills vidare", "Until revoked").to_owned(),
        Some(date) => format!(
            "{} {}",
            lang.pick("Till och med", "Until and including"),
            date_text(date)
        ),
    }
}

/// "Bertil Berg (19750505-****)", or the masked number alone before the
/// delegate has used the right (the owner typed only the number).
fn who(name: Option<&str>, masked: String) -> String {
    match name {
        Some(name) if !name.is_empty() => format!("{name} ({masked})"),
        _ => masked,
    }
}

struct GivenRow {
    id: String,
    who: String,
    rights: &'static str,
    until: String,
}

struct ReadRow {
    at: String,
    who: String,
    what: &'static str,
    /// The owner's own message page, if the id is known.
    message_link: Option<String>,
}

struct ReceivedRow {
    inbox: String,
    view: String,
    owner_name: String,
    rights: &'static str,
    until: String,
}

#[derive(Template)]
#[template(path = "delegations.html")]
struct DelegationsPage {
    lang: Lang,
    test_login: bool,
    csrf: String,
    query: &'static str,
    /// After a redirect: what was just done.
    notice: Option<&'static str>,
    given: Vec<GivenRow>,
    full: bool,
    max_active: i64,
    reads: Vec<ReadRow>,
    listed_reads: i64,
    received: Vec<ReceivedRow>,
    today: String,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    done: Option<String>,
}

fn given_row(lang: Lang, d: &Delegation) -> GivenRow {
    GivenRow {
        id: d.id.as_str().to_owned(),
        who: who(d.delegate_name.as_deref(), d.delegate.masked()),
        rights: rights_text(lang, d.rights),
        until: until_text(lang, d.until),
    }
}

fn read_row(lang: Lang, r: &DelegateRead) -> ReadRow {
    let what = match r.what.as_str() {
        "message" => lang.pick("Öppnade ett meddelande", "Opened a message"),
        "attachment" => lang.pick("Hämtade en bilaga", "Downloaded an attachment"),
        "body" => lang.pick(
            "Läste ett meddelandes innehåll",
            "Read the content of a message",
        ),
        "archived" => lang.pick("Arkiverade ett meddelande", "Archived a message"),
        "unarchived" => lang.pick(
            "Flyttade tillbaka ett meddelande till inkorgen",
            "Moved a message back to the inbox",
        ),
        _ => lang.pick("Läste", "Read"),
    };
    ReadRow {
        at: swedish_time_text(r.at),
        who: who(r.delegate_name.as_deref(), r.delegate.masked()),
        what,
        message_link: r
            .message
            .map(|m| format!("/messages/{m}{}", lang_query(lang))),
    }
}

fn received_row(lang: Lang, d: &Delegation) -> ReceivedRow {
    ReceivedRow {
        inbox: format!("/for/{}/inbox{}", d.id.as_str(), lang_query(lang)),
        view: format!("/for/{}{}", d.id.as_str(), lang_query(lang)),
        owner_name: d.owner_name.clone(),
        rights: rights_text(lang, d.rights),
        until: until_text(lang, d.until),
    }
}

/// `GET /delegations`.
async fn page(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let mailbox = mailbox(&state)?;
    let given = mailbox
        .delegations_by(&session.person)
        .await
        .map_err(page_error)?;
    let reads = mailbox
        .delegate_reads(&session.person)
        .await
        .map_err(page_error)?;
    let received = mailbox
        .delegations_to(&session.person)
        .await
        .map_err(page_error)?;
    let notice = match query.done.as_deref() {
        Some("granted") => Some(lang.pick(
            "Klart: personen kan nu läsa din post efter att ha loggat in med sin e-legitimation.",
            "Done: the person can now read your mail after logging in with their e-ID.",
        )),
        Some("revoked") => Some(lang.pick(
            "Klart: rätten är återkallad och gäller inte längre.",
            "Done: the right is revoked and no longer applies.",
        )),
        _ => None,
    };
    let page = DelegationsPage {
        lang,
        test_login: state.dev_idp().is_some(),
        csrf: session.csrf_token.clone(),
        query: lang_query(lang),
        notice,
        full: i64::try_from(given.len()).unwrap_or(i64::MAX) >= MAX_ACTIVE_DELEGATIONS,
        given: given.iter().map(|d| given_row(lang, d)).collect(),
        max_active: MAX_ACTIVE_DELEGATIONS,
        reads: reads.iter().map(|r| read_row(lang, r)).collect(),
        listed_reads: LISTED_READS,
        received: received.iter().map(|d| received_row(lang, d)).collect(),
        today: date_text(swedish_time::date_at(state.clock().now())),
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Deserialize)]
struct GrantForm {
    csrf: Option<String>,
    delegate: Option<String>,
    rights: Option<String>,
    until: Option<String>,
}

/// `POST /delegations`: gives the right, or a page that says why not.
async fn grant(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<GrantForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let request = GrantRequest {
        delegate: form.delegate.as_deref().unwrap_or_default(),
        rights: form.rights.as_deref().unwrap_or("read"),
        until: form.until.as_deref().unwrap_or_default(),
    };
    mailbox(&state)?
        .grant_delegation(&session.person, &full_name(&session), &request)
        .await
        .map_err(page_error)?;
    Ok(done(lang, "granted"))
}

/// `POST /delegations/{id}/revoke`: another person's delegation (or none)
/// answers exactly like a page that does not exist.
async fn revoke(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfField>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    mailbox(&state)?
        .revoke_delegation(&session.person, &id)
        .await
        .map_err(page_error)?;
    Ok(done(lang, "revoked"))
}

fn done(lang: Lang, what: &str) -> Response {
    let to = match lang {
        Lang::Sv => format!("/delegations?done={what}"),
        Lang::En => format!("/delegations?lang=en&done={what}"),
    };
    Redirect::to(&to).into_response()
}

#[derive(Template)]
#[template(path = "delegated.html")]
struct DelegatedPage {
    lang: Lang,
    test_login: bool,
    owner_name: String,
    rights: &'static str,
    manage: bool,
    until: String,
    inbox: String,
    query: &'static str,
}

/// `GET /for/{id}`: the start of the delegate's separate view.
async fn delegated_view(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let mailbox = mailbox(&state)?;
    let name = full_name(&session);
    let delegation = mailbox
        .delegation_for(&session.person, &name, &id)
        .await
        .map_err(page_error)?
        .ok_or(PageError::NotFound)?;
    let page = DelegatedPage {
        lang,
        test_login: state.dev_idp().is_some(),
        owner_name: delegation.owner_name.clone(),
        rights: rights_text(lang, delegation.rights),
        manage: delegation.rights == Rights::Manage,
        until: until_text(lang, delegation.until),
        inbox: format!("/for/{}/inbox{}", delegation.id.as_str(), lang_query(lang)),
        query: lang_query(lang),
    };
    Ok(Html(page.render()?))
}
