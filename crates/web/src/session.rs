//! Web sessions (e-ID login, decision 0018): a random id in a cookie, the
//! session itself in the core database (only the id's SHA-256), so several
//! nodes share them and a logout ends one everywhere at once.
//!
//! - The cookie is `HttpOnly; SameSite=Lax; Path=/`, and over TLS `Secure`
//!   with the `__Host-` prefix (no `Domain`: bound to this origin).
//! - A new id at every login (the pre-login cookie is another one): no
//!   fixation.
//! - Idle ([`DEFAULT_IDLE_SECONDS`]) and absolute ([`DEFAULT_ABSOLUTE_SECONDS`])
//!   expiry, on kuvert's clock.
//! - A CSRF token per session, sent back in every form as the field `csrf`
//!   and checked with [`WebSession::check_csrf`] by every state-changing
//!   handler.
//! - [`security_headers`]: the strict CSP and friends on every HTML answer.

use crate::AppState;
use crate::oidc::Loa;
use crate::pages::PageError;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use kuvert_crypto::digest::{constant_time_eq, hash_secret};
use kuvert_domain::identity::{PersonalIdentityNumber, RecipientId};
use rand::RngCore as _;

/// A session ends after 30 minutes without a request.
pub const DEFAULT_IDLE_SECONDS: i64 = 30 * 60;
/// ... and 12 hours after the login, whatever happens.
pub const DEFAULT_ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// A login started at `/login` must come back within 10 minutes.
pub const PENDING_LOGIN_SECONDS: i64 = 10 * 60;
/// Logins under way at once, at most (each is a row until its callback or
/// 10 minutes): more are refused with 503 `logins_busy`, so `GET /login`
/// in a loop cannot fill the database.
pub const DEFAULT_MAX_PENDING_LOGINS: i64 = 10_000;
/// Random bytes in a session id, a pre-login id and a CSRF token (256 bits).
const SECRET_BYTES: usize = 32;

/// The session limits, and whether cookies are marked `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    pub idle_seconds: i64,
    pub absolute_seconds: i64,
    /// See [`DEFAULT_MAX_PENDING_LOGINS`].
    pub max_pending_logins: i64,
    /// Served over HTTPS: cookies get `Secure` and the `__Host-` prefix.
    pub secure_cookies: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_seconds: DEFAULT_IDLE_SECONDS,
            absolute_seconds: DEFAULT_ABSOLUTE_SECONDS,
            max_pending_logins: DEFAULT_MAX_PENDING_LOGINS,
            secure_cookies: false,
        }
    }
}

impl SessionSettings {
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-kuvert_session"
        } else {
            "kuvert_session"
        }
    }

    pub fn login_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-kuvert_login"
        } else {
            "kuvert_login"
        }
    }

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure_cookies {
            cookie.push_str("; Secure");
        }
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        // The value is base64url and the rest is ASCII we wrote.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn clear_cookie(&self, name: &str) -> HeaderValue {
        self.set_cookie(name, "", Some(0))
    }
}

/// A fresh random secret (session id, pre-login id, CSRF token), base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keys a cookie's id by.
pub fn id_hash(secret: &str) -> [u8; 32] {
    hash_secret(secret)
}

/// The value of the cookie `name`, if the request carries it.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A logged-in person: what every page handler takes. It resolves to the
/// same [`RecipientId`] the recipient API's tokens carry, so pages call the
/// same mailbox functions with it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub person: PersonalIdentityNumber,
    pub given_name: String,
    pub family_name: String,
    pub loa: Loa,
    /// Sent back as the form field `csrf`.
    pub csrf_token: String,
    id_hash: [u8; 32],
}

impl WebSession {
    pub fn recipient(&self) -> RecipientId {
        RecipientId::Person(self.person)
    }

    /// The hash the session is stored under (for logout).
    pub fn id_hash(&self) -> &[u8; 32] {
        &self.id_hash
    }

    /// Every state-changing request presents the session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), PageError> {
        match presented {
            Some(token) if constant_time_eq(token.as_bytes(), self.csrf_token.as_bytes()) => Ok(()),
            _ => Err(PageError::CsrfInvalid),
        }
    }
}

/// The session of the request, if it has a valid one; an expired one is
/// deleted on the way.
pub async fn current_session(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<WebSession>, PageError> {
    let settings = state.sessions();
    let Some(secret) = read_cookie(&parts.headers, settings.session_cookie()) else {
        return Ok(None);
    };
    let db = &state.core().map_err(|_| PageError::NotFound)?.db;
    let hash = id_hash(secret);
    let Some(row) = db.web_session(&hash).await? else {
        return Ok(None);
    };
    let now = state.clock().now().unix_timestamp();
    let idle = now - row.last_seen_at > settings.idle_seconds;
    let too_old = now - row.created_at > settings.absolute_seconds;
    if idle || too_old {
        db.delete_web_session(&hash).await?;
        return Ok(None);
    }
    // Rows are written by the callback from parsed values; a row that no
    // longer parses is treated as no session rather than trusted.
    let (Ok(RecipientId::Person(person)), Ok(loa)) = (
        RecipientId::parse_canonical(&row.recipient),
        Loa::parse_short(&row.loa),
    ) else {
        db.delete_web_session(&hash).await?;
        return Ok(None);
    };
    db.touch_web_session(&hash, now).await?;
    Ok(Some(WebSession {
        person,
        given_name: row.given_name,
        family_name: row.family_name,
        loa,
        csrf_token: row.csrf_token,
        id_hash: hash,
    }))
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        current_session(parts, state)
            .await?
            .ok_or(PageError::NotLoggedIn)
    }
}

/// A page that shows something else to a visitor who is not logged in.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<WebSession>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Ok(MaybeSession(current_session(parts, state).await?))
    }
}

/// No script at all, nothing from elsewhere, never framed; forms post only
/// here (the login leaves by a redirect, not a form).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'; img-src 'self'; style-src 'self'";

/// Adds the security headers to every HTML answer (and `no-store`: pages
/// show personal data, which no cache keeps).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        let headers = response.headers_mut();
        // A handler's own policy stands: only the message body's frame
        // (`pages::message`) sets one, stricter than this, which may be
        // framed by kuvert's pages and nothing else.
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_tls_cookies_are_secure_and_host_prefixed() {
        let tls = SessionSettings {
            secure_cookies: true,
            ..Default::default()
        };
        let line = tls.set_cookie(tls.session_cookie(), "abc", None);
        assert_eq!(
            line.to_str().ok(),
            Some("__Host-kuvert_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        let plain = SessionSettings::default();
        let line = plain.clear_cookie(plain.login_cookie());
        assert_eq!(
            line.to_str().ok(),
            Some("kuvert_login=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xkuvert_session=no; kuvert_session=yes"),
        );
        assert_eq!(read_cookie(&headers, "kuvert_session"), Some("yes"));
        assert_eq!(read_cookie(&headers, "kuvert_login"), None);
    }

    #[test]
    fn secrets_are_256_bits_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
