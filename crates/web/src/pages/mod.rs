//! The HTML side: the start page and the e-ID login (`/login`,
//! `/login/callback`, `/logout`). Swedish first (`lang="sv"`), English with
//! `?lang=en`; templates compiled with the code (askama, HTML-escaped); no
//! JavaScript, no asset from elsewhere. Errors become pages in one place:
//! a handler returns [`PageError`], and [`render_errors`] turns it into the
//! page, in the request's language, with the test-login banner when the
//! development provider runs.

pub mod access;
pub mod delegation;
pub mod export;
pub mod inbox;
pub mod message;
pub mod sender;
pub mod sender_chart;
pub mod settings;

use crate::AppState;
use crate::oidc::LoginError;
use crate::session::{self, MaybeSession, PENDING_LOGIN_SECONDS, WebSession};
use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kuvert_store::audit::AuditEntry;
use kuvert_store::sessions::{PendingLoginRow, WebSessionRow};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(start))
        .route("/login", get(login))
        .route("/login/callback", get(callback))
        .route("/logout", post(logout))
        .route("/static/kuvert.css", get(stylesheet))
        .merge(settings::router())
        .merge(delegation::router())
        .merge(inbox::router())
        .merge(message::router())
        .merge(sender::router())
}

/// The page language: Swedish unless `?lang=en`, or unless the person
/// chose English before (the choice is kept in the cookie [`LANG_COOKIE`],
/// set by [`render_errors`] whenever a page is asked for with `?lang=`), so
/// the links and forms of the pages need not carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sv,
    En,
}

/// The language chosen last (`sv` or `en`); not personal data, a year long.
pub const LANG_COOKIE: &str = "kuvert_lang";

impl Lang {
    pub fn of(parts: &Parts) -> Self {
        Self::of_request(parts.uri.query(), &parts.headers)
    }

    fn of_request(query: Option<&str>, headers: &HeaderMap) -> Self {
        Self::asked(query)
            .or_else(|| session::read_cookie(headers, LANG_COOKIE).and_then(Self::parse))
            .unwrap_or(Self::Sv)
    }

    /// The language the query asks for, if it asks (`lang=sv` or `lang=en`).
    fn asked(query: Option<&str>) -> Option<Self> {
        query
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("lang=").and_then(Self::parse))
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "sv" => Some(Self::Sv),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Sv => "sv",
            Self::En => "en",
        }
    }

    pub fn other_code(&self) -> &'static str {
        match self {
            Self::Sv => "en",
            Self::En => "sv",
        }
    }

    pub fn is_swedish(&self) -> bool {
        *self == Self::Sv
    }

    pub fn pick<'a>(&self, sv: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Sv => sv,
            Self::En => en,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// Why a page could not be shown. Each has a status, a stable code (shown
/// on the page, for support) and a text in both languages.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not logged in, or the session has ended")]
    NotLoggedIn,
    #[error("the form's CSRF token is missing or wrong")]
    CsrfInvalid,
    #[error("no such page")]
    NotFound,
    #[error("too many logins are under way")]
    LoginsBusy,
    #[error("the request to the test provider is invalid: {0}")]
    DevIdpRequest(&'static str),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Store(#[from] kuvert_store::StoreError),
    #[error("rendering a page: {0}")]
    Template(#[from] askama::Error),
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(transparent)]
    Delegation(kuvert_mailbox::delegation::DelegationError),
    /// A delegate who may read but not manage tried to archive.
    #[error("this access may read the mailbox but not change it")]
    MayNotManage,
    /// A list's parameter (cursor, folder, sender) or a form field is not
    /// one kuvert gave out; the code names which.
    #[error("invalid list query or form: {0}")]
    BadListQuery(&'static str),
    #[error(transparent)]
    Mailbox(kuvert_mailbox::accept::MailboxError),
}

/// What a page error says: status, code, (Swedish, English), and whether
/// logging in again is the way on.
struct Said {
    status: StatusCode,
    code: &'static str,
    title: (&'static str, &'static str),
    text: (String, String),
    retry: bool,
}

impl PageError {
    fn said(&self) -> Said {
        let plain = |status, code, title, sv: &str, en: &str, retry| Said {
            status,
            code,
            title,
            text: (sv.to_owned(), en.to_owned()),
            retry,
        };
        let refused = ("Inloggningen misslyckades", "The login failed");
        match self {
            Self::NotLoggedIn => plain(
                StatusCode::UNAUTHORIZED,
                "not_logged_in",
                ("Du är inte inloggad", "You are not logged in"),
                "Du är inte inloggad, eller så har din inloggning gått ut (efter 30 minuter utan aktivitet eller 12 timmar) eller avslutats.",
                "You are not logged in, or your session has ended (after 30 minutes without activity, or 12 hours) or was logged out.",
                true,
            ),
            Self::CsrfInvalid => plain(
                StatusCode::FORBIDDEN,
                "csrf_invalid",
                (
                    "Formuläret kunde inte tas emot",
                    "The form could not be accepted",
                ),
                "Formuläret saknade sin säkerhetskod eller hade fel kod. Gå tillbaka, ladda om sidan och försök igen.",
                "The form lacked its security code or had a wrong one. Go back, reload the page and try again.",
                false,
            ),
            Self::NotFound | Self::DevIdpRequest(_) => plain(
                if matches!(self, Self::NotFound) {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_REQUEST
                },
                if matches!(self, Self::NotFound) {
                    "not_found"
                } else {
                    "invalid_request"
                },
                ("Sidan finns inte", "No such page"),
                "Sidan eller begäran finns inte här.",
                "The page or request does not exist here.",
                false,
            ),
            Self::LoginsBusy => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "logins_busy",
                (
                    "För många inloggningar just nu",
                    "Too many logins right now",
                ),
                "Väldigt många inloggningar pågår just nu. Försök igen om en minut.",
                "Very many logins are under way right now. Try again in a minute.",
                true,
            ),
            Self::Login(LoginError::LoaTooLow { got, .. }) => Said {
                status: StatusCode::FORBIDDEN,
                code: "loa_too_low",
                title: ("Din e-legitimation räcker inte", "Your e-ID is not enough"),
                text: (
                    format!(
                        "För att läsa post i e-brevlådan krävs e-legitimation med tillitsnivå 3 eller högre (till exempel BankID eller Freja+). Du loggade in med en lägre nivå ({got}), så du har inte loggats in."
                    ),
                    format!(
                        "Reading mail in the mailbox needs an e-ID at level of assurance 3 or higher (for example BankID or Freja+). You logged in at a lower level ({got}), so you have not been logged in."
                    ),
                ),
                retry: true,
            },
            Self::Login(LoginError::NoPendingLogin) => plain(
                StatusCode::BAD_REQUEST,
                "login_expired",
                refused,
                "Inloggningen har gått ut (efter 10 minuter) eller redan använts. Börja om.",
                "The login has expired (after 10 minutes) or was already used. Start again.",
                true,
            ),
            Self::Login(LoginError::StateMismatch) => plain(
                StatusCode::BAD_REQUEST,
                "state_mismatch",
                refused,
                "Svaret från e-legitimationen hör inte till inloggningen i den här webbläsaren. Börja om.",
                "The answer from the e-ID does not belong to the login in this browser. Start again.",
                true,
            ),
            Self::Login(LoginError::ProviderRefused(_) | LoginError::CodeRefused(_)) => plain(
                StatusCode::BAD_REQUEST,
                if matches!(self, Self::Login(LoginError::CodeRefused(_))) {
                    "code_refused"
                } else {
                    "provider_refused"
                },
                refused,
                "Inloggningstjänsten godtog inte inloggningen. Börja om.",
                "The login service did not accept the login. Start again.",
                true,
            ),
            Self::Login(LoginError::ProviderUnavailable(_)) => plain(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                refused,
                "Inloggningstjänsten svarar inte som den ska just nu. Försök igen om en stund.",
                "The login service is not answering as it should right now. Try again in a while.",
                true,
            ),
            Self::Login(LoginError::IdToken(check, _)) => plain(
                StatusCode::UNAUTHORIZED,
                check.code(),
                refused,
                "Beviset från inloggningstjänsten klarade inte kontrollen, så du har inte loggats in.",
                "The proof from the login service did not pass the check, so you have not been logged in.",
                true,
            ),
            Self::Login(LoginError::MissingIdToken) => plain(
                StatusCode::UNAUTHORIZED,
                "id_token_missing",
                refused,
                "Inloggningstjänsten skickade inget bevis, så du har inte loggats in.",
                "The login service sent no proof, so you have not been logged in.",
                true,
            ),
            Self::Login(LoginError::IdentityMissing | LoginError::IdentityMalformed) => plain(
                StatusCode::FORBIDDEN,
                if matches!(self, Self::Login(LoginError::IdentityMissing)) {
                    "identity_missing"
                } else {
                    "identity_malformed"
                },
                refused,
                "Inloggningstjänsten skickade inget giltigt svenskt person- eller samordningsnummer.",
                "The login service sent no valid Swedish personal identity or coordination number.",
                false,
            ),
            Self::Login(LoginError::Store(_)) | Self::Store(_) | Self::Template(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                ("Något gick fel", "Something went wrong"),
                "Något gick fel hos oss. Försök igen om en stund.",
                "Something went wrong on our side. Try again in a while.",
                false,
            ),
            Self::Settings(e) => e.said(),
            Self::Delegation(e) => delegation::said(e),
            Self::MayNotManage => plain(
                StatusCode::FORBIDDEN,
                "read_only_access",
                ("Du får bara läsa", "You may only read"),
                "Din behörighet till den här brevlådan gäller bara läsning. Meddelanden kan inte arkiveras eller flyttas härifrån.",
                "Your access to this mailbox is for reading only. Messages cannot be archived or moved from here.",
                false,
            ),
            Self::BadListQuery(code) => plain(
                StatusCode::BAD_REQUEST,
                code,
                ("Länken fungerar inte", "The link does not work"),
                "Länken eller formuläret innehöll något som inte kommer från den här tjänsten (till exempel en sidmarkör som ändrats). Gå till inkorgen och försök igen.",
                "The link or form held something that does not come from this service (for example a changed page marker). Go to the inbox and try again.",
                false,
            ),
            Self::Mailbox(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                ("Något gick fel", "Something went wrong"),
                "Något gick fel hos oss. Försök igen om en stund.",
                "Something went wrong on our side. Try again in a while.",
                false,
            ),
        }
    }
}

/// The error a handler returned, carried in the response to
/// [`render_errors`], which knows the language and the banner.
#[derive(Clone)]
struct Failed(std::sync::Arc<PageError>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let said = self.said();
        match &self {
            PageError::Store(e) | PageError::Login(LoginError::Store(e)) => {
                tracing::error!(error = %e, "page failed")
            }
            PageError::Template(e) => tracing::error!(error = %e, "page failed"),
            PageError::Settings(e) if e.is_internal() => {
                tracing::error!(error = %e, "settings page failed")
            }
            PageError::Mailbox(e) => tracing::error!(error = %e, "page failed"),
            PageError::Login(e) => tracing::info!(code = said.code, error = %e, "login refused"),
            _ => {}
        }
        let mut response = said.status.into_response();
        response
            .extensions_mut()
            .insert(Failed(std::sync::Arc::new(self)));
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    test_login: bool,
    title: &'a str,
    message: &'a str,
    other_language: Option<&'a str>,
    code: &'a str,
    retry: bool,
}

/// Turns a [`PageError`] into its page (the one place that does), and
/// keeps a language asked for with `?lang=` in [`LANG_COOKIE`].
pub async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let asked = Lang::asked(request.uri().query());
    let lang = Lang::of_request(request.uri().query(), request.headers());
    let response = next.run(request).await;
    let keep_language = |mut response: Response| {
        if let Some(asked) = asked {
            let cookie = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
                asked.code()
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    };
    let Some(Failed(error)) = response.extensions().get::<Failed>().cloned() else {
        return keep_language(response);
    };
    let said = error.said();
    let (message, other) = match lang {
        Lang::Sv => (&said.text.0, &said.text.1),
        Lang::En => (&said.text.1, &said.text.0),
    };
    let page = ErrorPage {
        lang,
        test_login: state.dev_idp().is_some(),
        title: lang.pick(said.title.0, said.title.1),
        message,
        other_language: Some(other),
        code: said.code,
        retry: said.retry,
    };
    let mut response = match page.render() {
        Ok(html) => (said.status, Html(html)).into_response(),
        Err(_) => said.status.into_response(),
    };
    if said.status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    keep_language(response)
}

pub(crate) struct PersonView {
    name: String,
    number: String,
    loa: &'static str,
    csrf: String,
    /// Holds a sender role: the start page links the sender pages.
    sends: bool,
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    lang: Lang,
    test_login: bool,
    /// No provider configured: no login link to a page that is not there.
    login_available: bool,
    person: Option<PersonView>,
}

async fn start(
    State(state): State<AppState>,
    lang: Lang,
    MaybeSession(session): MaybeSession,
) -> Result<Html<String>, PageError> {
    let person = match session {
        None => None,
        Some(s) => {
            // The sender pages are offered to whoever holds a sender role
            // (they check the role again themselves, on every request).
            let sends = match state.core() {
                Ok(core) => !core
                    .db
                    .active_web_grants(s.person.as_str())
                    .await?
                    .is_empty(),
                Err(_) => false,
            };
            Some(PersonView {
                name: format!("{} {}", s.given_name, s.family_name),
                number: s.person.masked(),
                loa: s.loa.short(),
                csrf: s.csrf_token.clone(),
                sends,
            })
        }
    };
    let page = StartPage {
        lang,
        test_login: state.dev_idp().is_some(),
        login_available: state.login().is_some(),
        person,
    };
    Ok(Html(page.render()?))
}

/// `GET /login`: a fresh `state`, `nonce` and PKCE verifier kept
/// server-side under a pre-login cookie (not the session id to come), and
/// a redirect to the provider.
async fn login(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
) -> Result<Response, PageError> {
    if session.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let rp = state.login().ok_or(PageError::NotFound)?;
    let db = &state.core().map_err(|_| PageError::NotFound)?.db;
    let now = state.clock().now().unix_timestamp();
    let settings = state.sessions();
    // What has expired goes now and then (here: once per login started).
    db.prune_web_sessions(
        now - settings.idle_seconds,
        now - settings.absolute_seconds,
        now - PENDING_LOGIN_SECONDS,
    )
    .await?;
    if db.pending_logins().await? >= settings.max_pending_logins {
        return Err(PageError::LoginsBusy);
    }
    let started = rp.start().await?;
    let secret = session::new_secret();
    db.insert_pending_login(
        &session::id_hash(&secret),
        &PendingLoginRow {
            state: started.state,
            nonce: started.nonce,
            pkce_verifier: started.pkce_verifier,
            created_at: now,
        },
    )
    .await?;
    let mut response = Redirect::to(started.authorize_url.as_str()).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        settings.set_cookie(
            settings.login_cookie(),
            &secret,
            Some(PENDING_LOGIN_SECONDS),
        ),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/callback`: the pending login is taken (once), the code
/// exchanged and the ID token checked; then a new session id.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let rp = state.login().ok_or(PageError::NotFound)?;
    let db = &state.core().map_err(|_| PageError::NotFound)?.db;
    let settings = state.sessions();
    let secret = session::read_cookie(&headers, settings.login_cookie())
        .ok_or(LoginError::NoPendingLogin)?;
    let pending = db
        .take_pending_login(&session::id_hash(secret))
        .await?
        .ok_or(LoginError::NoPendingLogin)?;
    if let Some(error) = query.error {
        return Err(LoginError::ProviderRefused(error).into());
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(LoginError::ProviderRefused("no code or state".to_owned()).into());
    };
    let person = rp.finish(&pending, &returned_state, &code).await?;
    let at = state.clock().now();
    let now = at.unix_timestamp();
    let session_id = session::new_secret();
    let pseudonym = state
        .core()
        .map_err(|_| PageError::NotFound)?
        .register
        .pseudonyms
        .pseudonym(person.person.as_str());
    let detail = serde_json::json!({ "loa": person.loa.short() }).to_string();
    db.insert_web_session(
        &session::id_hash(&session_id),
        &WebSessionRow {
            recipient: person.person.as_str().to_owned(),
            given_name: person.given_name,
            family_name: person.family_name,
            loa: person.loa.short().to_owned(),
            csrf_token: session::new_secret(),
            created_at: now,
            last_seen_at: now,
        },
        at,
        &AuditEntry {
            tenant: None,
            actor: "recipient",
            action: "web.login",
            subject: &pseudonym,
            detail: &detail,
        },
    )
    .await?;
    tracing::info!(person = %person.person.masked(), loa = person.loa.short(), "logged in");
    let mut response = Redirect::to("/").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        settings.set_cookie(settings.session_cookie(), &session_id, None),
    );
    cookies.append(
        header::SET_COOKIE,
        settings.clear_cookie(settings.login_cookie()),
    );
    Ok(response)
}

/// Every form's CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfField {
    pub csrf: Option<String>,
}

/// `POST /logout`: ends the session in the database (the cookie is worth
/// nothing afterwards, wherever it was copied to).
async fn logout(
    State(state): State<AppState>,
    session: WebSession,
    Form(form): Form<CsrfField>,
) -> Result<Response, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let core = state.core().map_err(|_| PageError::NotFound)?;
    let pseudonym = core.register.pseudonyms.pseudonym(session.person.as_str());
    core.db
        .end_web_session(
            session.id_hash(),
            state.clock().now(),
            &AuditEntry {
                tenant: None,
                actor: "recipient",
                action: "web.logout",
                subject: &pseudonym,
                detail: "{}",
            },
        )
        .await?;
    let settings = state.sessions();
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        settings.clear_cookie(settings.session_cookie()),
    );
    Ok(response)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("kuvert.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_chooses_the_language_then_the_cookie_then_swedish() {
        let mut english = HeaderMap::new();
        english.insert(header::COOKIE, HeaderValue::from_static("kuvert_lang=en"));
        let none = HeaderMap::new();
        assert_eq!(Lang::of_request(None, &none), Lang::Sv);
        assert_eq!(Lang::of_request(Some("cursor=x&lang=en"), &none), Lang::En);
        assert_eq!(Lang::of_request(None, &english), Lang::En);
        assert_eq!(Lang::of_request(Some("lang=sv"), &english), Lang::Sv);
        // Anything else is no choice at all.
        assert_eq!(Lang::of_request(Some("lang=de"), &none), Lang::Sv);
        assert_eq!(Lang::asked(Some("xlang=en")), None);
    }
}
