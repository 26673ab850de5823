//! The development identity provider (demo only, decision 0018): real
//! OpenID Connect endpoints under `/dev-idp` (discovery, JWKS, authorize,
//! token), so kuvert's relying party logs in against it over HTTP exactly
//! as against a production provider; no code path of the RP differs.
//!
//! The authorize page lists test people to pick, with no check at all:
//! it runs only with `--demo` or `--dev-idp`, never beside a production
//! issuer (the start refuses: [`crate::oidc::ConfigError`]), and every page
//! then shows a "Testinloggning / test login" banner.
//!
//! Its signing key (Ed25519, `EdDSA`) and client secret are made anew at
//! each start: a restart invalidates nothing kuvert keeps (sessions are
//! kuvert's own), and the RP fetches the new JWKS on the unknown `kid`.
//! Codes are single use, live [`CODE_LIFETIME_SECONDS`], are bound to the
//! PKCE challenge (S256 only), and at most [`MAX_PENDING_CODES`] wait.

use crate::AppState;
use crate::oidc::{Loa, OidcSettings};
use crate::pages::{Lang, PageError};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use kuvert_crypto::digest::constant_time_eq;
use kuvert_domain::clock::Clock;
use kuvert_domain::identity::{PersonalIdentityKind, PersonalIdentityNumber};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where the provider's endpoints live under kuvert's public URL.
pub const DEV_IDP_PATH: &str = "/dev-idp";
/// The one client it knows: kuvert itself.
pub const DEV_CLIENT_ID: &str = "kuvert-demo";
/// An authorization code is worth this long.
pub const CODE_LIFETIME_SECONDS: i64 = 60;
/// An ID token's `exp` is this far after its `iat`.
pub const ID_TOKEN_LIFETIME_SECONDS: i64 = 300;
/// Codes issued and not yet redeemed, at most (memory stays bounded).
pub const MAX_PENDING_CODES: usize = 1000;

/// Someone to log in as.
#[derive(Debug, Clone)]
pub struct TestPerson {
    pub given_name: String,
    pub family_name: String,
    /// The canonical 12 digits.
    pub identity_number: String,
    pub loa: Loa,
    /// What is special about them, shown on the page.
    pub note: String,
}

struct IssuedCode {
    person: usize,
    nonce: Option<String>,
    code_challenge: String,
    issued_at: i64,
}

pub struct DevIdp {
    issuer: String,
    redirect_uri: String,
    client_secret: String,
    key: ed25519_dalek::SigningKey,
    kid: String,
    people: Vec<TestPerson>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    clock: Arc<dyn Clock>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl DevIdp {
    /// `public_url` is kuvert's; the issuer is `<public_url>/dev-idp` and
    /// the one redirect URI allowed `<public_url>/login/callback`.
    pub fn new(public_url: &str, people: Vec<TestPerson>, clock: Arc<dyn Clock>) -> Self {
        let base = public_url.trim_end_matches('/');
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = b64(&sha2::Sha256::digest(key.verifying_key().as_bytes())[..8]);
        Self {
            issuer: format!("{base}{DEV_IDP_PATH}"),
            redirect_uri: format!("{base}/login/callback"),
            client_secret: crate::session::new_secret(),
            key,
            kid,
            people,
            codes: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn people(&self) -> &[TestPerson] {
        &self.people
    }

    /// The relying party's settings for this provider.
    pub fn oidc_settings(&self) -> OidcSettings {
        OidcSettings::new(&self.issuer, DEV_CLIENT_ID, Some(&self.client_secret))
    }

    fn codes(&self) -> std::sync::MutexGuard<'_, HashMap<String, IssuedCode>> {
        self.codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dev-idp/.well-known/openid-configuration", get(discovery))
        .route("/dev-idp/jwks", get(jwks))
        .route("/dev-idp/authorize", get(authorize_page).post(authorize))
        .route("/dev-idp/token", axum::routing::post(token))
}

fn idp(state: &AppState) -> Result<&Arc<DevIdp>, PageError> {
    state.dev_idp().ok_or(PageError::NotFound)
}

async fn discovery(State(state): State<AppState>) -> Result<Json<serde_json::Value>, PageError> {
    let idp = idp(&state)?;
    let issuer = &idp.issuer;
    Ok(Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [Loa::Loa2.uri(), Loa::Loa3.uri(), Loa::Loa4.uri()],
        "claims_supported": [
            "sub", "given_name", "family_name", "name", "acr",
            crate::oidc::claims::PERSONAL_IDENTITY_NUMBER_CLAIM,
            crate::oidc::claims::COORDINATION_NUMBER_CLAIM,
        ],
    })))
}

async fn jwks(State(state): State<AppState>) -> Result<Json<serde_json::Value>, PageError> {
    let idp = idp(&state)?;
    Ok(Json(json!({"keys": [{
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
        "kid": idp.kid,
        "x": b64(idp.key.verifying_key().as_bytes()),
    }]})))
}

/// What the relying party sends to the authorize endpoint (and the page
/// sends back with the person picked).
#[derive(Debug, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    response_type: Option<String>,
    client_id: String,
    redirect_uri: String,
    state: String,
    #[serde(default)]
    nonce: String,
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    person: Option<usize>,
}

impl AuthorizeRequest {
    /// Refused on the page, never by a redirect: only the registered
    /// redirect URI is ever sent anything.
    fn check(&self, idp: &DevIdp) -> Result<(), PageError> {
        if self.client_id != DEV_CLIENT_ID {
            return Err(PageError::DevIdpRequest("unknown client_id"));
        }
        if self.redirect_uri != idp.redirect_uri {
            return Err(PageError::DevIdpRequest(
                "redirect_uri is not the registered one",
            ));
        }
        if self.code_challenge.is_empty() || self.state.is_empty() {
            return Err(PageError::DevIdpRequest("PKCE and state are required"));
        }
        Ok(())
    }
}

#[derive(Template)]
#[template(path = "dev_idp_authorize.html")]
struct AuthorizePage<'a> {
    lang: Lang,
    test_login: bool,
    action: String,
    request: &'a AuthorizeRequest,
    people: &'a [TestPerson],
}

async fn authorize_page(
    State(state): State<AppState>,
    lang: Lang,
    Query(request): Query<AuthorizeRequest>,
) -> Result<Html<String>, PageError> {
    let idp = idp(&state)?;
    request.check(idp)?;
    if request.response_type.as_deref() != Some("code")
        || request.code_challenge_method.as_deref() != Some("S256")
    {
        return Err(PageError::DevIdpRequest(
            "only response_type=code with code_challenge_method=S256",
        ));
    }
    let page = AuthorizePage {
        lang,
        test_login: true,
        action: format!("{}/authorize", idp.issuer),
        request: &request,
        people: &idp.people,
    };
    Ok(Html(page.render()?))
}

/// The person was picked: a code, and back to the relying party.
async fn authorize(
    State(state): State<AppState>,
    Form(request): Form<AuthorizeRequest>,
) -> Result<Response, PageError> {
    let idp = idp(&state)?;
    request.check(idp)?;
    let person = request
        .person
        .filter(|&p| p < idp.people.len())
        .ok_or(PageError::DevIdpRequest("no such test person"))?;
    let now = idp.clock.now().unix_timestamp();
    let code = crate::session::new_secret();
    {
        let mut codes = idp.codes();
        codes.retain(|_, c| now - c.issued_at <= CODE_LIFETIME_SECONDS);
        if codes.len() >= MAX_PENDING_CODES {
            return Err(PageError::DevIdpRequest("too many logins under way"));
        }
        codes.insert(
            code.clone(),
            IssuedCode {
                person,
                nonce: (!request.nonce.is_empty()).then(|| request.nonce.clone()),
                code_challenge: request.code_challenge.clone(),
                issued_at: now,
            },
        );
    }
    let mut back =
        url::Url::parse(&idp.redirect_uri).map_err(|_| PageError::DevIdpRequest("redirect_uri"))?;
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &request.state);
    Ok(Redirect::to(back.as_str()).into_response())
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `client_secret_basic` or `client_secret_post`.
fn client_authenticated(idp: &DevIdp, headers: &HeaderMap, form: &TokenRequest) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let (id, secret) = match (&basic, &form.client_id, &form.client_secret) {
        (Some(pair), _, _) => match pair.split_once(':') {
            Some((id, secret)) => (id.to_owned(), secret.to_owned()),
            None => return false,
        },
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => return false,
    };
    id == DEV_CLIENT_ID && constant_time_eq(secret.as_bytes(), idp.client_secret.as_bytes())
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Response {
    let Some(idp) = state.dev_idp() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !client_authenticated(idp, &headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Taken out whatever follows: a code is tried once.
    let Some(issued) = idp.codes().remove(&form.code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let now = idp.clock.now().unix_timestamp();
    let challenge = form
        .code_verifier
        .as_deref()
        .map(|v| b64(&sha2::Sha256::digest(v.as_bytes())));
    let pkce_ok = challenge
        .as_deref()
        .is_some_and(|c| constant_time_eq(c.as_bytes(), issued.code_challenge.as_bytes()));
    if now - issued.issued_at > CODE_LIFETIME_SECONDS
        || form.redirect_uri != idp.redirect_uri
        || !pkce_ok
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let Some(person) = idp.people.get(issued.person) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let number_claim =
        match PersonalIdentityNumber::parse(&person.identity_number, idp.clock.today())
            .map(|p| p.kind())
        {
            Ok(PersonalIdentityKind::Samordningsnummer) => {
                crate::oidc::claims::COORDINATION_NUMBER_CLAIM
            }
            _ => crate::oidc::claims::PERSONAL_IDENTITY_NUMBER_CLAIM,
        };
    let mut claims = json!({
        "iss": idp.issuer,
        "sub": b64(&sha2::Sha256::digest(person.identity_number.as_bytes())[..16]),
        "aud": DEV_CLIENT_ID,
        "iat": now,
        "auth_time": now,
        "exp": now + ID_TOKEN_LIFETIME_SECONDS,
        "acr": person.loa.uri(),
        "given_name": person.given_name,
        "family_name": person.family_name,
        "name": format!("{} {}", person.given_name, person.family_name),
        number_claim: person.identity_number,
    });
    if let (Some(nonce), Some(map)) = (issued.nonce, claims.as_object_mut()) {
        map.insert("nonce".to_owned(), json!(nonce));
    }
    let id_token = idp.sign(&claims);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": crate::session::new_secret(),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_LIFETIME_SECONDS,
            "id_token": id_token,
        })),
    )
        .into_response()
}
