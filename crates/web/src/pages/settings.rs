//! The recipient's settings (issue 18): the registration as the register
//! has it, registering a mailbox (accepting the terms, choosing the
//! operator), refusing or accepting individual senders, the notification
//! contacts the mailbox keeps, deregistration with a confirmation, and the
//! "download all my mail" button ([`super::export`]).
//!
//! One authorization path: every handler acts on the session's own
//! [`RecipientId`] through the functions `/register/v1/me` calls
//! ([`Register::register`], [`Register::deregister`],
//! [`Register::set_sender_refused`], [`load_profile`]) and the mailbox's
//! own contact functions. Every form posts with the session's CSRF token,
//! checked before anything else; a change answers 303 back to the page
//! (post/redirect/get). Bad input shows the page again with the error next
//! to its field (422) and changes nothing.
//!
//! [`Register::register`]: kuvert_register::Register::register
//! [`Register::deregister`]: kuvert_register::Register::deregister
//! [`Register::set_sender_refused`]: kuvert_register::Register::set_sender_refused

use super::{Lang, PageError, Said};
use crate::api::recipient_profile::load_profile;
use crate::session::WebSession;
use crate::{AppState, Core};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kuvert_domain::contact::{ContactError, EmailAddress, NotificationContacts, PhoneNumber};
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::OperatorId;
use kuvert_mailbox::MailboxError;
use kuvert_register::RegisterError;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(show))
        .route("/settings/register", post(register))
        .route("/settings/senders", post(sender))
        .route("/settings/contacts", post(contacts))
        .route(
            "/settings/deregister",
            get(confirm_deregister).post(deregister),
        )
        .route("/settings/export", post(super::export::download))
}

/// Why a settings action could not be done (bad input in a visible field
/// is shown on the form instead, see [`FieldErrors`]).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// A hidden field of a form (the sender, the action) is missing or
    /// malformed: not something a person typed.
    #[error("the form is incomplete or malformed: {0}")]
    InvalidForm(&'static str),
    /// As many exports as this node runs at once are under way
    /// ([`super::export::MAX_CONCURRENT_EXPORTS`]).
    #[error("too many exports are under way")]
    ExportsBusy,
}

impl SettingsError {
    pub(super) fn said(&self) -> Said {
        let plain = |status, code, title, sv: &str, en: &str| Said {
            status,
            code,
            title,
            text: (sv.to_owned(), en.to_owned()),
            retry: false,
        };
        match self {
            Self::Register(RegisterError::NotRegistered) => plain(
                StatusCode::CONFLICT,
                "not_registered",
                (
                    "Du har ingen digital brevlåda",
                    "You have no digital mailbox",
                ),
                "Det här går bara när du har registrerat en digital brevlåda. Registrera dig först på sidan Inställningar.",
                "This needs a registered digital mailbox. Register first on the Settings page.",
            ),
            Self::Register(RegisterError::TooYoung { .. }) => plain(
                StatusCode::FORBIDDEN,
                "too_young",
                ("Du kan inte registrera dig än", "You cannot register yet"),
                "Man måste ha fyllt 18 år för att ha en digital brevlåda.",
                "You must be 18 or older to hold a digital mailbox.",
            ),
            Self::Register(RegisterError::UnknownOperator) => plain(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_operator",
                ("Okänd brevlådeoperatör", "Unknown mailbox operator"),
                "Brevlådeoperatören finns inte. Gå tillbaka och välj en i listan.",
                "The mailbox operator does not exist. Go back and choose one from the list.",
            ),
            Self::InvalidForm(_) => plain(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_form",
                (
                    "Formuläret kunde inte tas emot",
                    "The form could not be accepted",
                ),
                "Formuläret var ofullständigt eller felaktigt, så inget har ändrats. Gå tillbaka, ladda om sidan och försök igen.",
                "The form was incomplete or malformed, so nothing was changed. Go back, reload the page and try again.",
            ),
            Self::ExportsBusy => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "exports_busy",
                (
                    "Många hämtar sin post just nu",
                    "Many are downloading their mail right now",
                ),
                "Just nu hämtar många sin post på en gång. Inget har ändrats; försök igen om en minut.",
                "Very many are downloading their mail at once right now. Nothing was changed; try again in a minute.",
            ),
            Self::Register(_) | Self::Mailbox(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                ("Något gick fel", "Something went wrong"),
                "Något gick fel hos oss, och inget har ändrats. Försök igen om en stund.",
                "Something went wrong on our side, and nothing was changed. Try again in a while.",
            ),
        }
    }

    /// Whether this is our fault (logged as an error).
    pub(super) fn is_internal(&self) -> bool {
        !matches!(self, Self::ExportsBusy) && self.said().status.is_server_error()
    }
}

/// The core roles this page needs (register): not here, no page.
fn core(state: &AppState) -> Result<&Core, PageError> {
    state.core().map_err(|_| PageError::NotFound)
}

/// `?lang=en` for links and form actions of an English page.
fn lang_query(lang: Lang) -> &'static str {
    if lang.is_swedish() { "" } else { "?lang=en" }
}

/// 303 back to the settings page, saying what was done.
fn saved(lang: Lang, what: &str, anchor: &str) -> Response {
    let lang = if lang.is_swedish() { "" } else { "lang=en&" };
    Redirect::to(&format!("/settings?{lang}saved={what}#{anchor}")).into_response()
}

/// An organisation number as people write it: NNNNNN-NNNN.
fn written_org_number(canonical: &str) -> String {
    match canonical.strip_prefix("16") {
        Some(ten) if ten.len() == 10 && ten.is_ascii() => format!("{}-{}", &ten[..6], &ten[6..]),
        _ => canonical.to_owned(),
    }
}

/// Errors shown next to the fields they are about.
#[derive(Debug, Default)]
struct FieldErrors {
    terms: Option<&'static str>,
    operator: Option<&'static str>,
    email: Option<&'static str>,
    phone: Option<&'static str>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.terms.is_some()
            || self.operator.is_some()
            || self.email.is_some()
            || self.phone.is_some()
    }
}

struct OperatorChoice {
    id: String,
    name: String,
    checked: bool,
}

struct SenderRow {
    id: String,
    name: String,
    number: String,
    refused: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    lang: Lang,
    test_login: bool,
    q: &'static str,
    csrf: String,
    name: String,
    /// `registered`, `pending`, `deregistered` or `none`, as the API says.
    status: String,
    operator_name: Option<String>,
    operators: Vec<OperatorChoice>,
    senders: Vec<SenderRow>,
    /// The mailbox runs here: contacts and the export are offered.
    mailbox_here: bool,
    email: String,
    phone: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

impl SettingsPage {
    fn registered(&self) -> bool {
        self.status == "registered"
    }

    fn status_text(&self) -> &'static str {
        match self.status.as_str() {
            "registered" => self.lang.pick(
                "Du tar emot digital post från myndigheter i din digitala brevlåda.",
                "You receive digital mail from authorities in your digital mailbox.",
            ),
            "pending" => self.lang.pick(
                "Registreringen väntar på fler firmatecknare.",
                "The registration awaits more signatories.",
            ),
            "deregistered" => self.lang.pick(
                "Du är avregistrerad. Post från myndigheter kommer på papper.",
                "You are deregistered. Mail from authorities comes on paper.",
            ),
            _ => self.lang.pick(
                "Du har ingen digital brevlåda. Post från myndigheter kommer på papper.",
                "You have no digital mailbox. Mail from authorities comes on paper.",
            ),
        }
    }
}

/// What the page was asked to show besides the settings themselves.
struct Shown {
    errors: FieldErrors,
    /// Typed values to show again (a form with an error).
    typed: Option<(String, String)>,
    chosen_operator: Option<String>,
    notice: Option<&'static str>,
}

async fn render(
    state: &AppState,
    session: &WebSession,
    lang: Lang,
    shown: Shown,
) -> Result<Html<String>, PageError> {
    let core = core(state)?;
    let recipient = session.recipient();
    let profile = load_profile(core, &recipient).await?;
    let operators = core
        .register
        .operators()
        .await
        .map_err(SettingsError::from)?;
    let operator_name = profile.operator_id.as_ref().and_then(|id| {
        operators
            .iter()
            .find(|o| o.id.as_str() == id)
            .map(|o| o.name.clone())
    });
    let single = operators.len() == 1;
    let operators = operators
        .into_iter()
        .map(|o| OperatorChoice {
            checked: single || shown.chosen_operator.as_deref() == Some(o.id.as_str()),
            id: o.id.to_string(),
            name: o.name,
        })
        .collect();
    let listed = core
        .register
        .listed_senders()
        .await
        .map_err(SettingsError::from)?;
    let mut senders: Vec<SenderRow> = listed
        .into_iter()
        .map(|s| SenderRow {
            refused: profile.refused_senders.contains(&s.id),
            number: written_org_number(&s.id),
            id: s.id,
            name: s.name,
        })
        .collect();
    // A refused sender the register no longer lists (removed) stays
    // visible, so the refusal can be taken back.
    for id in &profile.refused_senders {
        if !senders.iter().any(|s| &s.id == id) {
            senders.push(SenderRow {
                id: id.clone(),
                name: written_org_number(id),
                number: written_org_number(id),
                refused: true,
            });
        }
    }
    let mailbox = state.0.mailbox.as_ref();
    let (email, phone) = match (shown.typed, mailbox) {
        (Some(typed), _) => typed,
        (None, Some(mailbox)) => {
            let stored = mailbox
                .notification_contacts(&recipient)
                .await
                .map_err(SettingsError::from)?;
            (
                stored.email.map(String::from).unwrap_or_default(),
                stored.phone.map(String::from).unwrap_or_default(),
            )
        }
        (None, None) => (String::new(), String::new()),
    };
    let page = SettingsPage {
        lang,
        test_login: state.dev_idp().is_some(),
        q: lang_query(lang),
        csrf: session.csrf_token.clone(),
        name: format!("{} {}", session.given_name, session.family_name),
        status: profile.status,
        operator_name,
        operators,
        senders,
        mailbox_here: mailbox.is_some(),
        email,
        phone,
        errors: shown.errors,
        notice: shown.notice,
    };
    Ok(Html(page.render()?))
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    saved: Option<String>,
}

/// `GET /settings`.
async fn show(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Query(query): Query<ShowQuery>,
) -> Result<Html<String>, PageError> {
    let notice = match query.saved.as_deref() {
        Some("registered") => Some(lang.pick(
            "Klart: du tar nu emot digital post här.",
            "Done: you now receive digital mail here.",
        )),
        Some("refused") => Some(lang.pick(
            "Klart: post från avsändaren kommer inte längre hit.",
            "Done: mail from the sender no longer comes here.",
        )),
        Some("accepted") => Some(lang.pick(
            "Klart: du tar emot digital post från avsändaren igen.",
            "Done: you receive digital mail from the sender again.",
        )),
        Some("contacts") => Some(lang.pick(
            "Klart: dina kontaktuppgifter för aviseringar är sparade.",
            "Done: your contact details for notifications are saved.",
        )),
        Some("deregistered") => Some(lang.pick(
            "Klart: du är avregistrerad. Post från myndigheter kommer på papper.",
            "Done: you are deregistered. Mail from authorities comes on paper.",
        )),
        _ => None,
    };
    render(
        &state,
        &session,
        lang,
        Shown {
            errors: FieldErrors::default(),
            typed: None,
            chosen_operator: None,
            notice,
        },
    )
    .await
}

/// The form shown again with its errors: 422, nothing changed.
async fn refused_form(
    state: &AppState,
    session: &WebSession,
    lang: Lang,
    shown: Shown,
) -> Result<Response, PageError> {
    let page = render(state, session, lang, shown).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    csrf: Option<String>,
    /// The terms checkbox: `accepted` when ticked.
    terms: Option<String>,
    operator: Option<String>,
}

/// `POST /settings/register`: accept the terms, choose the operator.
async fn register(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<RegisterForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let core = core(&state)?;
    let operators = core
        .register
        .operators()
        .await
        .map_err(SettingsError::from)?;
    let chosen = form
        .operator
        .as_deref()
        .and_then(|o| OperatorId::parse(o).ok())
        .filter(|o| operators.iter().any(|known| &known.id == o));
    let mut errors = FieldErrors::default();
    if form.terms.as_deref() != Some("accepted") {
        errors.terms = Some(lang.pick(
            "Kryssa i att du godkänner villkoren för att kunna registrera dig.",
            "Tick that you accept the terms to register.",
        ));
    }
    if chosen.is_none() {
        errors.operator = Some(lang.pick(
            "Välj en brevlådeoperatör i listan.",
            "Choose a mailbox operator from the list.",
        ));
    }
    let Some(operator) = chosen.filter(|_| !errors.any()) else {
        return refused_form(
            &state,
            &session,
            lang,
            Shown {
                errors,
                typed: None,
                chosen_operator: form.operator,
                notice: None,
            },
        )
        .await;
    };
    core.register
        .register(&session.recipient(), &operator, false)
        .await
        .map_err(SettingsError::from)?;
    Ok(saved(lang, "registered", "registrering"))
}

#[derive(Debug, Deserialize)]
struct SenderForm {
    csrf: Option<String>,
    sender: Option<String>,
    /// `yes` to refuse, `no` to accept again.
    refuse: Option<String>,
}

/// `POST /settings/senders`: refuse one sender, or accept it again.
async fn sender(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<SenderForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let sender = form
        .sender
        .as_deref()
        .and_then(|s| OrganisationNumber::parse(s).ok())
        .ok_or(SettingsError::InvalidForm("sender"))?;
    let refuse = match form.refuse.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(SettingsError::InvalidForm("refuse").into()),
    };
    core(&state)?
        .register
        .set_sender_refused(&session.recipient(), &sender, refuse)
        .await
        .map_err(SettingsError::from)?;
    let what = if refuse { "refused" } else { "accepted" };
    Ok(saved(lang, what, "avsandare"))
}

#[derive(Debug, Deserialize)]
struct ContactsForm {
    csrf: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// A field left empty clears it; anything else must parse.
fn optional<T>(
    typed: &str,
    parse: impl Fn(&str) -> Result<T, ContactError>,
) -> Result<Option<T>, ContactError> {
    if typed.trim().is_empty() {
        Ok(None)
    } else {
        parse(typed).map(Some)
    }
}

fn contact_error(lang: Lang, error: ContactError) -> &'static str {
    match error {
        ContactError::EmailTooLong => lang.pick(
            "E-postadressen får vara högst 254 tecken.",
            "The email address may be at most 254 characters.",
        ),
        ContactError::EmailMalformed => lang.pick(
            "Skriv e-postadressen som namn@exempel.se.",
            "Write the email address as name@example.se.",
        ),
        ContactError::PhoneTooLong => lang.pick(
            "Telefonnumret får vara högst 32 tecken.",
            "The phone number may be at most 32 characters.",
        ),
        ContactError::PhoneMalformed => lang.pick(
            "Skriv ett mobilnummer som 070-123 45 67 eller med landsnummer som +46 70 123 45 67.",
            "Write a mobile number as 070-123 45 67, or with the country code as +46 70 123 45 67.",
        ),
    }
}

/// `POST /settings/contacts`: the notification email address and mobile
/// number, kept by the mailbox (encrypted); empty fields clear them.
async fn contacts(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<ContactsForm>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let mailbox = state.0.mailbox.clone().ok_or(PageError::NotFound)?;
    let typed_email = form.email.unwrap_or_default();
    let typed_phone = form.phone.unwrap_or_default();
    let email = optional(&typed_email, EmailAddress::parse);
    let phone = optional(&typed_phone, PhoneNumber::parse);
    let (Ok(email), Ok(phone)) = (&email, &phone) else {
        let errors = FieldErrors {
            email: email.as_ref().err().map(|e| contact_error(lang, *e)),
            phone: phone.as_ref().err().map(|e| contact_error(lang, *e)),
            ..FieldErrors::default()
        };
        return refused_form(
            &state,
            &session,
            lang,
            Shown {
                errors,
                typed: Some((typed_email, typed_phone)),
                chosen_operator: None,
                notice: None,
            },
        )
        .await;
    };
    let recipient = session.recipient();
    let contacts = NotificationContacts {
        email: email.clone(),
        phone: phone.clone(),
    };
    mailbox
        .set_notification_contacts(&recipient, &contacts, &pseudonym(&state, &recipient)?)
        .await
        .map_err(SettingsError::from)?;
    Ok(saved(lang, "contacts", "aviseringar"))
}

/// The keyed pseudonym the audit log names a person by.
pub(super) fn pseudonym(state: &AppState, recipient: &RecipientId) -> Result<String, PageError> {
    Ok(core(state)?
        .register
        .pseudonyms
        .pseudonym(recipient.as_str()))
}

#[derive(Template)]
#[template(path = "settings_deregister.html")]
struct DeregisterPage {
    lang: Lang,
    test_login: bool,
    q: &'static str,
    csrf: String,
    registered: bool,
}

/// `GET /settings/deregister`: what deregistering means, and the button.
async fn confirm_deregister(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
) -> Result<Html<String>, PageError> {
    let profile = load_profile(core(&state)?, &session.recipient()).await?;
    let page = DeregisterPage {
        lang,
        test_login: state.dev_idp().is_some(),
        q: lang_query(lang),
        csrf: session.csrf_token.clone(),
        registered: profile.status == "registered",
    };
    Ok(Html(page.render()?))
}

/// `POST /settings/deregister`: the register stops routing mail here (the
/// API's `DELETE /register/v1/me`), and the notification contacts are
/// erased, since nothing will be notified any more. Mail already received
/// stays readable.
async fn deregister(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Form(form): Form<super::CsrfField>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let recipient = session.recipient();
    core(&state)?
        .register
        .deregister(&recipient)
        .await
        .map_err(SettingsError::from)?;
    if let Some(mailbox) = state.0.mailbox.as_ref() {
        mailbox
            .set_notification_contacts(
                &recipient,
                &NotificationContacts::default(),
                &pseudonym(&state, &recipient)?,
            )
            .await
            .map_err(SettingsError::from)?;
    }
    Ok(saved(lang, "deregistered", "registrering"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn organisation_numbers_are_written_with_a_dash() {
        assert_eq!(written_org_number("162120000142"), "212000-0142");
        assert_eq!(written_org_number("oddity"), "oddity");
    }
}
