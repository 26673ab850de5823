//! The sender pages (issue 18, decision 0020): a person the tenant's
//! administrator gave the sender role for one of its senders writes and
//! sends a message by hand, and follows what the sender sent.
//!
//! - `GET /sender`: the senders this person may send for.
//! - `GET /sender/{sender}/new`, `POST` (multipart, CSRF first): write and
//!   send; a 303 to the delivery's page, "Skickat".
//! - `GET /sender/{sender}/sent`: what the sender sent, newest first,
//!   cursor-paged, with a chart of the last 30 days by outcome.
//! - `GET /sender/{sender}/sent/{delivery}`: one delivery's status.
//!
//! One authorization path: the grant is looked up on every request (a
//! revocation applies to the next one), and everything after goes through
//! the grant's credential, scoped to that one sender: sends through
//! [`kuvert_relay::Relay::submit_by_hand`] (the API's intake) and reads
//! through the same [`kuvert_store::tenants::Viewer`] filter as the sender
//! API. A sender the person holds no role for answers exactly like one
//! that does not exist.

use super::sender_chart::Chart;
use super::{Lang, PageError};
use crate::AppState;
use crate::session::{self, WebSession};
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kuvert_domain::clock::format_instant;
use kuvert_domain::delivery::{Attachment, MAX_ATTACHMENTS, MAX_SUBJECT_CHARS};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::DeliveryId;
use kuvert_domain::status::DeliveryStatus;
use kuvert_relay::IntakeError;
use kuvert_relay::web_sending::WebSendError;
use kuvert_store::relay::DeliveryRecord;
use kuvert_store::web_senders::{SentCursor, WebSenderGrant};
use serde::Deserialize;

/// The whole form, attachments included, at most (1.5 MiB): their base64
/// in the signed delivery then stays within the relay's 2 MiB delivery
/// limit. A larger body is refused while it is read, before anything is
/// parsed, signed or stored.
pub const MAX_FORM_BYTES: usize = 1536 * 1024;
/// Rows per page of the sent list.
pub const SENT_PAGE_SIZE: i64 = 25;
/// Days the chart covers, today included.
pub const CHART_DAYS: i64 = 30;
/// The longest message text accepted from the form (characters).
pub const MAX_BODY_CHARS: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sender", get(senders))
        .route("/sender/{sender}/new", get(new_form))
        .route("/sender/{sender}/sent", get(sent))
        .route("/sender/{sender}/sent/{delivery}", get(delivery))
}

/// `POST /sender/{sender}/new`, merged apart from the other pages: it takes
/// bodies up to [`MAX_FORM_BYTES`] (the others at most 64 KiB), and the
/// server charges it against the intake budget as it does an API send.
pub fn send_router() -> Router<AppState> {
    Router::new().route(
        "/sender/{sender}/new",
        post(send).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
    )
}

/// The person's grant for `sender`, now; none is [`PageError::NotFound`],
/// as for a sender that does not exist.
async fn grant(
    state: &AppState,
    session: &WebSession,
    sender: &str,
) -> Result<WebSenderGrant, PageError> {
    let core = state.core().map_err(|_| PageError::NotFound)?;
    core.db
        .active_web_grant(session.person.as_str(), sender)
        .await?
        .ok_or(PageError::NotFound)
}

/// `?lang=en` to carry on links and redirects, or nothing.
fn lang_query(lang: Lang, first: bool) -> &'static str {
    match (lang, first) {
        (Lang::Sv, _) => "",
        (Lang::En, true) => "?lang=en",
        (Lang::En, false) => "&lang=en",
    }
}

// ---------------------------------------------------------------------------
// GET /sender

struct SenderLink {
    id: String,
    name: String,
    tenant: String,
}

#[derive(Template)]
#[template(path = "sender_list.html")]
struct SendersPage {
    lang: Lang,
    test_login: bool,
    senders: Vec<SenderLink>,
    lq: &'static str,
}

async fn senders(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
) -> Result<Html<String>, PageError> {
    let core = state.core().map_err(|_| PageError::NotFound)?;
    let senders = core
        .db
        .active_web_grants(session.person.as_str())
        .await?
        .into_iter()
        .map(|g| SenderLink {
            id: g.sender_id,
            name: g.sender_name,
            tenant: g.tenant_name,
        })
        .collect();
    let page = SendersPage {
        lang,
        test_login: state.dev_idp().is_some(),
        senders,
        lq: lang_query(lang, true),
    };
    Ok(Html(page.render()?))
}

// ---------------------------------------------------------------------------
// GET and POST /sender/{sender}/new

/// What the person wrote, shown again when the form is refused (files are
/// not: a browser never pre-fills a file input).
#[derive(Debug, Default, Clone)]
struct Draft {
    recipient: String,
    subject: String,
    body: String,
    paper: bool,
    /// Makes the same form sent twice (a double click, a reload) one delivery.
    idempotency: String,
}

/// Why the form was refused, in both languages, next to the form.
struct FormError {
    status: StatusCode,
    code: &'static str,
    sv: String,
    en: String,
    /// The field it is about, for `aria-describedby` and the link to it.
    field: Option<&'static str>,
}

impl FormError {
    fn new(status: StatusCode, code: &'static str, sv: &str, en: &str) -> Self {
        Self {
            status,
            code,
            sv: sv.to_owned(),
            en: en.to_owned(),
            field: None,
        }
    }

    fn on(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

#[derive(Template)]
#[template(path = "sender_new.html")]
struct NewPage {
    lang: Lang,
    test_login: bool,
    sender_id: String,
    sender_name: String,
    csrf: String,
    draft: Draft,
    error: Option<FormError>,
    max_attachments: usize,
    max_form_mib: &'static str,
    max_subject: usize,
    lq: &'static str,
}

impl NewPage {
    fn error_on(&self, field: &str) -> bool {
        self.error.as_ref().and_then(|e| e.field) == Some(field)
    }

    fn error_text(&self) -> &str {
        match &self.error {
            Some(e) => self.lang.pick(&e.sv, &e.en),
            None => "",
        }
    }
}

fn new_page(
    state: &AppState,
    lang: Lang,
    session: &WebSession,
    grant: &WebSenderGrant,
    draft: Draft,
    error: Option<FormError>,
) -> NewPage {
    NewPage {
        lang,
        test_login: state.dev_idp().is_some(),
        sender_id: grant.sender_id.clone(),
        sender_name: grant.sender_name.clone(),
        csrf: session.csrf_token.clone(),
        draft,
        error,
        max_attachments: MAX_ATTACHMENTS,
        max_form_mib: "1,5",
        max_subject: MAX_SUBJECT_CHARS,
        lq: lang_query(lang, true),
    }
}

async fn new_form(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(sender): Path<String>,
) -> Result<Html<String>, PageError> {
    let grant = grant(&state, &session, &sender).await?;
    let draft = Draft {
        idempotency: session::new_secret(),
        ..Draft::default()
    };
    Ok(Html(
        new_page(&state, lang, &session, &grant, draft, None).render()?,
    ))
}

fn too_large() -> FormError {
    FormError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "form_too_large",
        "Meddelandet med bilagor är större än 1,5 MiB. Ta bort eller förminska en bilaga och försök igen. Inget har skickats.",
        "The message with its attachments is larger than 1.5 MiB. Remove or shrink an attachment and try again. Nothing was sent.",
    )
    .on("attachments")
}

fn unreadable() -> FormError {
    FormError::new(
        StatusCode::BAD_REQUEST,
        "form_unreadable",
        "Formuläret kunde inte läsas. Försök igen. Inget har skickats.",
        "The form could not be read. Try again. Nothing was sent.",
    )
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> FormError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        unreadable()
    }
}

/// Reads the rest of the form (after the CSRF field). The body's size is
/// bounded by [`MAX_FORM_BYTES`]; attachments are counted as they come.
async fn read_form(
    multipart: &mut Multipart,
    draft: &mut Draft,
) -> Result<Vec<Attachment>, FormError> {
    let mut attachments = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "attachments" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
            // An empty file input sends one part with no name and no bytes.
            if filename.is_empty() && bytes.is_empty() {
                continue;
            }
            if attachments.len() == MAX_ATTACHMENTS {
                return Err(FormError {
                    sv: format!(
                        "Högst {MAX_ATTACHMENTS} bilagor per meddelande. Inget har skickats."
                    ),
                    en: format!(
                        "At most {MAX_ATTACHMENTS} attachments per message. Nothing was sent."
                    ),
                    ..FormError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "too_many_attachments",
                        "",
                        "",
                    )
                }
                .on("attachments"));
            }
            attachments.push(kuvert_relay::compose::attachment(
                &filename,
                content_type_for(&filename),
                &bytes,
            ));
            continue;
        }
        let text = field.text().await.map_err(|e| multipart_error(&e))?;
        match name.as_str() {
            "recipient" => draft.recipient = text,
            "subject" => draft.subject = text,
            "body" => draft.body = text,
            "paper" => draft.paper = text == "1",
            "idempotency" => draft.idempotency = text,
            _ => {}
        }
    }
    Ok(attachments)
}

/// The content type kuvert checks an attachment as, from its name (as
/// `kuvert send --attach` does); the relay then checks the content.
fn content_type_for(filename: &str) -> &'static str {
    if filename.to_ascii_lowercase().ends_with(".pdf") {
        "application/pdf"
    } else {
        "application/octet-stream"
    }
}

async fn send(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(sender): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    // A body that is not multipart cannot be this form: it carries no
    // token we could read, so it is refused as one without its token.
    let Ok(mut multipart) = multipart else {
        return Err(PageError::CsrfInvalid);
    };
    // The CSRF token is the form's first field: checked before anything
    // else is read, let alone a file.
    let first = multipart.next_field().await.ok().flatten();
    let csrf = match first {
        Some(field) if field.name() == Some("csrf") => field.text().await.ok(),
        _ => None,
    };
    session.check_csrf(csrf.as_deref())?;
    let grant = grant(&state, &session, &sender).await?;
    let mut draft = Draft::default();
    let attachments = match read_form(&mut multipart, &mut draft).await {
        Ok(attachments) => attachments,
        Err(error) => return refuse(&state, lang, &session, &grant, draft, error),
    };
    if draft.idempotency.trim().is_empty() || draft.idempotency.len() > 255 {
        draft.idempotency = session::new_secret();
    }
    let today = state.clock().today();
    let recipient = match RecipientId::parse(&draft.recipient, today) {
        Ok(id) => id,
        Err(_) => {
            let error = FormError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_recipient",
                "Mottagarens nummer är inte ett giltigt person-, samordnings- eller organisationsnummer. Skriv till exempel 19800101-2387. Inget har skickats.",
                "The recipient's number is not a valid personal identity, coordination or organisation number. Write for example 19800101-2387. Nothing was sent.",
            )
            .on("recipient");
            return refuse(&state, lang, &session, &grant, draft, error);
        }
    };
    if draft.body.chars().count() > MAX_BODY_CHARS {
        let error = FormError {
            sv: format!("Texten får vara högst {MAX_BODY_CHARS} tecken. Inget har skickats."),
            en: format!("The text may be at most {MAX_BODY_CHARS} characters. Nothing was sent."),
            ..FormError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_too_long", "", "")
        }
        .on("body");
        return refuse(&state, lang, &session, &grant, draft, error);
    }
    let mut delivery = kuvert_relay::compose::simple_delivery(
        &grant.sender_id,
        &grant.sender_name,
        recipient.as_str(),
        None,
        draft.subject.trim(),
        &draft.body,
        false,
        attachments,
    );
    delivery.paper_fallback = draft.paper;
    let core = state.core().map_err(|_| PageError::NotFound)?;
    let answer = core
        .relay
        .submit_by_hand(
            &grant,
            &core.web_sender_kek,
            delivery,
            draft.idempotency.clone(),
        )
        .await;
    match answer {
        Ok(accepted) => {
            tracing::info!(
                delivery = %accepted.delivery_id,
                grant = %grant.credential_id,
                "sent by hand from the sender pages"
            );
            let to = format!(
                "/sender/{}/sent/{}?sent=1{}",
                grant.sender_id,
                accepted.delivery_id,
                lang_query(lang, false)
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(WebSendError::Store(e)) => Err(PageError::Store(e)),
        Err(WebSendError::Intake(IntakeError::Store(e))) => Err(PageError::Store(e)),
        Err(e) => {
            let error = send_refused(&e);
            refuse(&state, lang, &session, &grant, draft, error)
        }
    }
}

/// The form again, with what was written and why it was not sent.
fn refuse(
    state: &AppState,
    lang: Lang,
    session: &WebSession,
    grant: &WebSenderGrant,
    draft: Draft,
    error: FormError,
) -> Result<Response, PageError> {
    let status = error.status;
    let page = new_page(state, lang, session, grant, draft, Some(error));
    Ok((status, Html(page.render()?)).into_response())
}

/// What the relay's refusal means for the person at the form.
fn send_refused(error: &WebSendError) -> FormError {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let detail = error.to_string();
    let with_detail = |code, sv: &str, field| {
        let e = FormError {
            sv: format!("{sv} Inget har skickats. ({detail})"),
            en: format!("{detail}. Nothing was sent."),
            ..FormError::new(unprocessable, code, "", "")
        };
        match field {
            Some(f) => e.on(f),
            None => e,
        }
    };
    match error {
        WebSendError::NoKey => FormError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_web_key",
            "Avsändaren har ingen nyckel för att skicka från webben ännu. Kontakta den som administrerar er organisation i Kuvert. Inget har skickats.",
            "The sender has no key for sending from the web yet. Contact whoever administers your organisation in Kuvert. Nothing was sent.",
        ),
        WebSendError::Intake(IntakeError::Invalid(invalid)) => match invalid.code() {
            "empty_subject" | "subject_too_long" => with_detail(
                invalid.code(),
                "Ämnet saknas eller är för långt.",
                Some("subject"),
            ),
            "delivery_too_large" => too_large(),
            code if code.starts_with("attachment")
                || code == "bad_attachment_name"
                || code == "checksum_mismatch" =>
            {
                with_detail(
                    invalid.code(),
                    "En bilaga godtas inte: bara PDF-filer som är giltiga PDF kan skickas.",
                    Some("attachments"),
                )
            }
            code => with_detail(code, "Meddelandet godtas inte.", None),
        },
        WebSendError::Intake(IntakeError::QuotaExceeded { .. }) => FormError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            "Er organisation har skickat så mycket som den får just nu. Försök igen senare. Inget har skickats.",
            "Your organisation has sent as much as it may right now. Try again later. Nothing was sent.",
        ),
        WebSendError::Intake(
            IntakeError::IdempotencyKeyReused(_) | IntakeError::DuplicateDelivery(_),
        ) => FormError::new(
            StatusCode::CONFLICT,
            "already_sent",
            "Det här formuläret har redan skickats med ett annat innehåll. Öppna ett nytt formulär för ett nytt meddelande.",
            "This form was already sent with other content. Open a new form for a new message.",
        ),
        WebSendError::Intake(IntakeError::Withdrawn(_) | IntakeError::SenderNotAllowed(_)) => {
            FormError::new(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "Du får inte längre skicka för den här avsändaren. Inget har skickats.",
                "You may no longer send for this sender. Nothing was sent.",
            )
        }
        WebSendError::Intake(e) => with_detail(e.code(), "Meddelandet kunde inte skickas.", None),
        WebSendError::KeyUnreadable(_) | WebSendError::Store(_) => FormError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Något gick fel hos oss. Inget har skickats. Försök igen om en stund.",
            "Something went wrong on our side. Nothing was sent. Try again in a while.",
        ),
    }
}

// ---------------------------------------------------------------------------
// GET /sender/{sender}/sent and /sender/{sender}/sent/{delivery}

/// A delivery as a row of the sent list or its own page.
struct SentRow {
    id: String,
    recipient: String,
    received: String,
    status: DeliveryStatus,
    /// The receipt's time (the legal moment of delivery), when delivered.
    delivered: Option<String>,
    reason: Option<String>,
}

impl SentRow {
    fn of(d: &DeliveryRecord) -> Self {
        Self {
            id: d.id.to_string(),
            // Enough to recognise the letter; the full number is the
            // sender's own record, not for every screen.
            recipient: RecipientId::parse_canonical(&d.recipient_id)
                .map_or_else(|_| "?".to_owned(), |r| r.masked()),
            received: shown_time(d.received_at),
            status: d.status,
            delivered: d
                .delivered_at
                .filter(|_| d.status == DeliveryStatus::Delivered)
                .map(shown_time),
            reason: d.status_reason.clone(),
        }
    }

    /// The status in words, with the class that gives it its marker.
    fn status_text(&self, lang: &Lang) -> &'static str {
        status_text(self.status, *lang)
    }

    fn status_class(&self) -> &'static str {
        super::sender_chart::Outcome::of(self.status).class()
    }

    fn reason_text(&self, lang: &Lang) -> String {
        let Some(reason) = &self.reason else {
            return String::new();
        };
        let (sv, en) = match reason.as_str() {
            "not_registered" => (
                "mottagaren har ingen digital brevlåda",
                "the recipient has no digital mailbox",
            ),
            "sender_refused" => (
                "mottagaren har valt att inte ta emot digital post från avsändaren",
                "the recipient refuses digital mail from this sender",
            ),
            "no_mailbox" => (
                "mottagarens brevlåda kan inte nås",
                "the recipient's mailbox cannot be reached",
            ),
            other => (other, other),
        };
        lang.pick(sv, en).to_owned()
    }
}

fn status_text(status: DeliveryStatus, lang: Lang) -> &'static str {
    match status {
        DeliveryStatus::Accepted => lang.pick("på väg", "on its way"),
        DeliveryStatus::Delivered => lang.pick("levererat", "delivered"),
        DeliveryStatus::Paper => lang.pick("på papper", "by paper"),
        DeliveryStatus::NotDelivered => lang.pick("inte levererat", "not delivered"),
        DeliveryStatus::Failed => lang.pick("misslyckades", "failed"),
    }
}

/// `2026-12-01 14:03 UTC`: the instant as stored, in UTC, said so.
fn shown_time(at: time::OffsetDateTime) -> String {
    let text = format_instant(at);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

#[derive(Template)]
#[template(path = "sender_sent.html")]
struct SentPage {
    lang: Lang,
    test_login: bool,
    sender_id: String,
    sender_name: String,
    rows: Vec<SentRow>,
    next: Option<String>,
    first_page: bool,
    chart: Chart,
    lq: &'static str,
    lq_and: &'static str,
}

#[derive(Debug, Deserialize)]
struct SentQuery {
    after: Option<String>,
}

async fn sent(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path(sender): Path<String>,
    Query(query): Query<SentQuery>,
) -> Result<Html<String>, PageError> {
    let grant = grant(&state, &session, &sender).await?;
    let core = state.core().map_err(|_| PageError::NotFound)?;
    let viewer = grant.viewer();
    // The cursor is a delivery id the viewer sees; anything else starts over.
    let cursor = match query.after.as_deref().map(DeliveryId::parse) {
        Some(Ok(id)) => core
            .db
            .visible_delivery(&viewer, &id)
            .await?
            .filter(|d| d.sender_id == grant.sender_id)
            .map(|d| SentCursor {
                received_at: format_instant(d.received_at),
                id: d.id.to_string(),
            }),
        _ => None,
    };
    let mut records = core
        .db
        .sent_page(
            &viewer,
            &grant.sender_id,
            cursor.as_ref(),
            SENT_PAGE_SIZE + 1,
        )
        .await?;
    let more = records.len() > usize::try_from(SENT_PAGE_SIZE).unwrap_or(usize::MAX);
    records.truncate(usize::try_from(SENT_PAGE_SIZE).unwrap_or(usize::MAX));
    let next = more
        .then(|| records.last().map(|d| d.id.to_string()))
        .flatten();
    let today = state.clock().today();
    let from = today - time::Duration::days(CHART_DAYS - 1);
    let outcomes = core
        .db
        .daily_outcomes(
            &viewer,
            &grant.sender_id,
            from,
            today + time::Duration::days(1),
        )
        .await?;
    let page = SentPage {
        lang,
        test_login: state.dev_idp().is_some(),
        sender_id: grant.sender_id.clone(),
        sender_name: grant.sender_name.clone(),
        rows: records.iter().map(SentRow::of).collect(),
        next,
        first_page: cursor.is_none(),
        chart: Chart::new(from, today, &outcomes, lang),
        lq: lang_query(lang, true),
        lq_and: lang_query(lang, false),
    };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "sender_delivery.html")]
struct DeliveryPage {
    lang: Lang,
    test_login: bool,
    sender_id: String,
    sender_name: String,
    row: SentRow,
    just_sent: bool,
    lq: &'static str,
}

#[derive(Debug, Deserialize)]
struct DeliveryQuery {
    sent: Option<String>,
}

async fn delivery(
    State(state): State<AppState>,
    lang: Lang,
    session: WebSession,
    Path((sender, id)): Path<(String, String)>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Html<String>, PageError> {
    let grant = grant(&state, &session, &sender).await?;
    let core = state.core().map_err(|_| PageError::NotFound)?;
    let id = DeliveryId::parse(&id).map_err(|_| PageError::NotFound)?;
    let record = core
        .db
        .visible_delivery(&grant.viewer(), &id)
        .await?
        .filter(|d| d.sender_id == grant.sender_id)
        .ok_or(PageError::NotFound)?;
    let page = DeliveryPage {
        lang,
        test_login: state.dev_idp().is_some(),
        sender_id: grant.sender_id.clone(),
        sender_name: grant.sender_name.clone(),
        row: SentRow::of(&record),
        just_sent: query.sent.as_deref() == Some("1"),
        lq: lang_query(lang, true),
    };
    Ok(Html(page.render()?))
}
