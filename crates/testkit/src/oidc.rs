//! For the login tests: [`Browser`], a cookie-keeping client that does not
//! follow redirects, and [`TestProvider`], an OpenID provider on port 0
//! that misbehaves on purpose ([`Tamper`]): kuvert's relying party is
//! configured with its issuer and talks to it as to any provider.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A response as a test looks at it.
#[derive(Debug)]
pub struct Seen {
    pub status: StatusCode,
    pub location: Option<String>,
    /// Every `Set-Cookie` line.
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Seen {
    /// The value a `Set-Cookie` gives the cookie `name` (empty: deleted).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies.iter().find_map(|line| {
            let first = line.split(';').next()?;
            let (key, value) = first.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }

    /// The whole `Set-Cookie` line of `name`.
    pub fn cookie_line(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|line| line.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }

    /// The value of the hidden form field `name` on this page.
    pub fn hidden_field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }
}

/// A browser: cookies kept per origin, redirects shown, not followed.
pub struct Browser {
    pub base: String,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self::trusting(base, None)
    }

    /// A browser that also trusts the PEM certificates `roots` (a test CA).
    pub fn trusting(base: &str, roots: Option<&[u8]>) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none());
        for root in roots
            .map(|pem| reqwest::Certificate::from_pem_bundle(pem).expect("PEM roots"))
            .unwrap_or_default()
        {
            builder = builder.add_root_certificate(root);
        }
        let http = builder.build().expect("browser client");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            jar,
            http,
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        }
    }

    async fn seen(response: reqwest::Response) -> Seen {
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let body = response.text().await.unwrap_or_default();
        Seen {
            status,
            location,
            set_cookies,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Seen {
        Self::seen(self.http.get(self.absolute(url)).send().await.expect("GET")).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Seen {
        Self::seen(
            self.http
                .post(self.absolute(url))
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// A `multipart/form-data` POST, as a form with a file input sends it.
    pub async fn post_multipart(&self, url: &str, form: reqwest::multipart::Form) -> Seen {
        Self::seen(
            self.http
                .post(self.absolute(url))
                .multipart(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Starts a login: `GET /login`, whose redirect goes to the provider.
    pub async fn start_login(&self) -> Seen {
        let seen = self.get("/login").await;
        assert_eq!(seen.status, StatusCode::SEE_OTHER, "{}", seen.body);
        seen
    }

    /// A whole login through the development provider as the test person
    /// `person` (its index on the provider's page). Returns the callback's
    /// answer (a redirect to `/` when it worked).
    pub async fn login_dev_idp(&self, person: usize) -> Seen {
        let start = self.start_login().await;
        let authorize = start.location.expect("to the provider");
        let page = self.get(&authorize).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let picked = self.pick_person(&authorize, person).await;
        assert_eq!(picked.status, StatusCode::SEE_OTHER, "{}", picked.body);
        self.get(&picked.location.expect("back to kuvert")).await
    }

    /// What the provider's page does when a person is picked: the
    /// authorization request's fields back, with the person.
    pub async fn pick_person(&self, authorize: &str, person: usize) -> Seen {
        let url = reqwest::Url::parse(authorize).expect("authorize URL");
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let field = |name: &str| query.get(name).cloned().unwrap_or_default();
        let person = person.to_string();
        let form = [
            ("person", person.as_str()),
            ("client_id", &field("client_id")),
            ("redirect_uri", &field("redirect_uri")),
            ("state", &field("state")),
            ("nonce", &field("nonce")),
            ("code_challenge", &field("code_challenge")),
        ];
        let action = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ) + url.path();
        self.post_form(&action, &form).await
    }

    /// A whole login through a provider that answers the authorization
    /// request at once ([`TestProvider`]). Returns the callback's answer.
    pub async fn login_auto(&self) -> Seen {
        let start = self.start_login().await;
        let at_provider = self.get(&start.location.expect("to the provider")).await;
        assert_eq!(
            at_provider.status,
            StatusCode::SEE_OTHER,
            "{}",
            at_provider.body
        );
        self.get(&at_provider.location.expect("back to kuvert"))
            .await
    }

    /// The start page's logout CSRF token (logged in), if shown.
    pub async fn csrf(&self) -> Option<String> {
        self.get("/").await.hidden_field("csrf")
    }
}

/// How the next ID token of a [`TestProvider`] is wrong.
#[derive(Debug, Clone, Default)]
pub struct Tamper {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// `exp` this many seconds from now (default 300); negative: expired.
    pub expires_in: Option<i64>,
    pub nonce: Option<String>,
    /// `alg: none`, no signature.
    pub alg_none: bool,
    /// Signed by a key the provider never published, under its `kid`.
    pub unknown_key: bool,
    /// `acr` (default loa3).
    pub acr: Option<String>,
    /// The personal identity number claim's value (default a valid one).
    pub identity_number: Option<Value>,
    /// Redirect back with this `state` instead of the one received.
    pub state: Option<String>,
}

struct Issued {
    nonce: String,
    challenge: String,
}

struct ProviderState {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: Mutex<(ed25519_dalek::SigningKey, String)>,
    codes: Mutex<HashMap<String, Issued>>,
    tamper: Mutex<Tamper>,
    /// How the last token request authenticated: `client_secret_basic`,
    /// `client_secret_post` or `private_key_jwt`.
    last_client_auth: Mutex<Option<&'static str>>,
    /// Where kuvert's client keys are (`private_key_jwt`); none: assertions
    /// are refused.
    client_jwks_uri: Mutex<Option<String>>,
    /// The claims of every client assertion accepted, in order.
    assertions: Mutex<Vec<Value>>,
}

/// An OpenID provider for tests: discovery, JWKS, an authorize endpoint
/// that logs in at once, a token endpoint with PKCE and single-use codes,
/// and ID tokens as [`Tamper`] says.
pub struct TestProvider {
    pub issuer: String,
    state: Arc<ProviderState>,
}

/// The person a [`TestProvider`] logs in by default.
pub const TEST_PERSON: &str = "198001012387";

fn new_key() -> (ed25519_dalek::SigningKey, String) {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let kid = b64(&sha2::Sha256::digest(key.verifying_key().as_bytes())[..8]);
    (key, kid)
}

impl TestProvider {
    pub const CLIENT_ID: &'static str = "kuvert-test";
    pub const CLIENT_SECRET: &'static str = "test-client-secret";

    pub async fn start() -> TestProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(ProviderState {
            issuer: issuer.clone(),
            client_id: Self::CLIENT_ID.to_owned(),
            client_secret: Self::CLIENT_SECRET.to_owned(),
            key: Mutex::new(new_key()),
            codes: Mutex::new(HashMap::new()),
            tamper: Mutex::new(Tamper::default()),
            last_client_auth: Mutex::new(None),
            client_jwks_uri: Mutex::new(None),
            assertions: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestProvider { issuer, state }
    }

    /// kuvert's settings for this provider (dev IdP off).
    pub fn configure(&self) -> impl Fn(&mut kuvert::app::Settings) + Send + Sync + 'static {
        let issuer = self.issuer.clone();
        move |settings| {
            settings.dev_idp = false;
            settings.oidc = Some(kuvert_web::oidc::OidcSettings::new(
                &issuer,
                Self::CLIENT_ID,
                Some(Self::CLIENT_SECRET),
            ));
        }
    }

    /// The same, authenticating with `client_secret_post`.
    pub fn configure_post(&self) -> impl Fn(&mut kuvert::app::Settings) + Send + Sync + 'static {
        let basic = self.configure();
        move |settings| {
            basic(settings);
            if let Some(oidc) = settings.oidc.as_mut() {
                oidc.client_auth = kuvert_web::oidc::ClientAuth::SecretPost;
            }
        }
    }

    /// The same, authenticating with `private_key_jwt` (no secret). The
    /// provider checks the assertions against the JWKS at `jwks_uri`
    /// ([`TestProvider::trust_client_jwks`]).
    pub fn configure_private_key_jwt(
        &self,
    ) -> impl Fn(&mut kuvert::app::Settings) + Send + Sync + 'static {
        let basic = self.configure();
        move |settings| {
            basic(settings);
            if let Some(oidc) = settings.oidc.as_mut() {
                oidc.client_auth = kuvert_web::oidc::ClientAuth::PrivateKeyJwt;
                oidc.client_secret = None;
            }
        }
    }

    /// Client assertions are checked with the keys at `jwks_uri` (fetched
    /// at each token request, as a provider with a short cache would).
    pub fn trust_client_jwks(&self, jwks_uri: &str) {
        *self.state.client_jwks_uri.lock().expect("lock") = Some(jwks_uri.to_owned());
    }

    /// The claims of the client assertions accepted so far.
    pub fn assertions(&self) -> Vec<Value> {
        self.state.assertions.lock().expect("lock").clone()
    }

    /// How the last token request authenticated itself.
    pub fn last_client_auth(&self) -> Option<&'static str> {
        *self.state.last_client_auth.lock().expect("lock")
    }

    /// How the next ID tokens are wrong (until set again).
    pub fn tamper(&self, tamper: Tamper) {
        *self.state.tamper.lock().expect("lock") = tamper;
    }

    /// A new signing key (and `kid`), published in the JWKS from now on.
    pub fn rotate_key(&self) {
        *self.state.key.lock().expect("lock") = new_key();
    }

    /// Redeems `code` at the token endpoint as kuvert would (for a test of
    /// replay at the provider).
    pub async fn redeem(&self, code: &str, verifier: &str) -> StatusCode {
        reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(Self::CLIENT_ID, Some(Self::CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", "x"),
            ])
            .send()
            .await
            .expect("token request")
            .status()
    }
}

async fn discovery(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
    }))
}

async fn jwks(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let (key, kid) = &*state.key.lock().expect("lock");
    Json(json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
        "x": b64(key.verifying_key().as_bytes()),
    }]}))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
}

async fn authorize(
    State(state): State<Arc<ProviderState>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let code = b64(&rand::random::<[u8; 16]>());
    state.codes.lock().expect("lock").insert(
        code.clone(),
        Issued {
            nonce: query.nonce,
            challenge: query.code_challenge,
        },
    );
    let returned_state = state
        .tamper
        .lock()
        .expect("lock")
        .state
        .clone()
        .unwrap_or(query.state);
    let mut back = reqwest::Url::parse(&query.redirect_uri).expect("redirect_uri");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &returned_state);
    Redirect::to(back.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    code: String,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// Checks a `private_key_jwt` client assertion as a provider does (RFC
/// 7523 section 3): signed (EdDSA) by a key of the client's JWKS, `iss` and
/// `sub` the client id, `aud` the token endpoint, not expired, a `jti` not
/// seen before. The claims when it holds.
async fn check_assertion(state: &ProviderState, form: &TokenForm) -> Option<Value> {
    if form.client_assertion_type.as_deref()
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return None;
    }
    let jwt = form.client_assertion.as_deref()?;
    let jwks_uri = state.client_jwks_uri.lock().expect("lock").clone()?;
    let jwks: Value = reqwest::get(jwks_uri).await.ok()?.json().await.ok()?;
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()
    };
    let mut parts = jwt.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let header_json: Value = serde_json::from_slice(&decode(header)?).ok()?;
    let claims_json: Value = serde_json::from_slice(&decode(claims)?).ok()?;
    if header_json["alg"] != "EdDSA" {
        return None;
    }
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == header_json["kid"] && k["kty"] == "OKP")?;
    let public: [u8; 32] = decode(jwk["x"].as_str()?)?.try_into().ok()?;
    let signature: [u8; 64] = decode(signature)?.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .ok()?
        .verify_strict(
            format!("{header}.{claims}").as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .ok()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let jti = claims_json["jti"].as_str()?;
    let mut seen = state.assertions.lock().expect("lock");
    let fresh = claims_json["iss"] == state.client_id.as_str()
        && claims_json["sub"] == state.client_id.as_str()
        && claims_json["aud"] == format!("{}/token", state.issuer).as_str()
        && claims_json["exp"].as_i64().is_some_and(|exp| exp > now)
        && !seen.iter().any(|earlier| earlier["jti"] == jti);
    if !fresh {
        return None;
    }
    seen.push(claims_json.clone());
    Some(claims_json)
}

async fn token(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", state.client_id, state.client_secret))
    );
    let basic =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let post = form.client_id.as_deref() == Some(state.client_id.as_str())
        && form.client_secret.as_deref() == Some(state.client_secret.as_str());
    let assertion = form.client_assertion.is_some();
    let assertion_ok = assertion
        && form
            .client_id
            .as_deref()
            .is_none_or(|id| id == state.client_id)
        && check_assertion(&state, &form).await.is_some();
    *state.last_client_auth.lock().expect("lock") = match (basic, post, assertion) {
        (true, false, false) => Some("client_secret_basic"),
        (false, true, false) => Some("client_secret_post"),
        (false, false, true) if assertion_ok => Some("private_key_jwt"),
        _ => None,
    };
    if state.last_client_auth.lock().expect("lock").is_none() {
        // Neither, or both at once (RFC 6749 2.3: one method per request).
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let issued = state.codes.lock().expect("lock").remove(&form.code);
    let pkce_ok = |issued: &Issued| {
        form.code_verifier
            .as_deref()
            .is_some_and(|v| b64(&sha2::Sha256::digest(v.as_bytes())) == issued.challenge)
    };
    let Some(issued) = issued.filter(pkce_ok) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let tamper = state.tamper.lock().expect("lock").clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": tamper.issuer.clone().unwrap_or_else(|| state.issuer.clone()),
        "sub": "test-subject",
        "aud": tamper.audience.clone().unwrap_or_else(|| state.client_id.clone()),
        "iat": now,
        "exp": now + tamper.expires_in.unwrap_or(300),
        "nonce": tamper.nonce.clone().unwrap_or(issued.nonce),
        "acr": tamper.acr.clone().unwrap_or_else(|| "http://id.elegnamnden.se/loa/1.0/loa3".to_owned()),
        "given_name": "Anna",
        "family_name": "Andersson",
        "https://id.oidc.se/claim/personalIdentityNumber":
            tamper.identity_number.clone().unwrap_or_else(|| json!(TEST_PERSON)),
    });
    let (key, kid) = {
        let guard = state.key.lock().expect("lock");
        (guard.0.clone(), guard.1.clone())
    };
    let alg = if tamper.alg_none { "none" } else { "EdDSA" };
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = if tamper.alg_none {
        String::new()
    } else if tamper.unknown_key {
        b64(&new_key().0.sign(input.as_bytes()).to_bytes())
    } else {
        b64(&key.sign(input.as_bytes()).to_bytes())
    };
    Json(json!({
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": format!("{input}.{signature}"),
    }))
    .into_response()
}
