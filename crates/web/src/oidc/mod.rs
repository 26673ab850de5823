//! kuvert as an OpenID Connect relying party (issue 18, decision 0018):
//! the authorization code flow with PKCE, `state` and `nonce`, against any
//! conformant provider named by its issuer URL. Discovery, the token
//! request and every ID-token check (signature from the provider's JWKS,
//! issuer, audience, expiry, nonce) are the `openidconnect` crate's; kuvert
//! adds the Swedish profile's claims on top ([`claims`]).
//!
//! The provider is discovered at the first login, not at start: a provider
//! that is down delays logins, never the start (and the development
//! provider is served by this very process). Its JWKS is fetched again once
//! when an ID token names a key it does not hold (key rotation).

pub mod claims;
pub mod jwks;

pub use claims::{ClaimNames, Loa, LoaError, LoggedIn};

use crate::session::PENDING_LOGIN_SECONDS;
use kuvert_crypto::jws::JwsSigningKey;
use kuvert_domain::clock::Clock;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AuthType, AuthenticationContextClass, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenVerifier, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    StandardErrorResponse, TokenResponse as _,
};
use std::sync::Arc;

/// How long one request to the provider (discovery, JWKS, token) may take.
pub const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client assertion is valid: one token request, with room for
/// clocks a little apart.
const CLIENT_ASSERTION_SECONDS: i64 = 60;
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithms an ID token may use: asymmetric only. No `none`,
/// and no HMAC, which would make the client secret a signing key.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// How kuvert authenticates itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the client id and secret.
    SecretBasic,
    /// `client_secret_post`: both in the form body.
    SecretPost,
    /// `private_key_jwt` (RFC 7523): a short-lived JWT signed with the
    /// installation's own key ([`OidcSettings::client_key`]), whose public
    /// half kuvert publishes at `GET /login/jwks`. No secret is shared.
    PrivateKeyJwt,
}

impl ClientAuth {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text {
            "client_secret_basic" => Ok(Self::SecretBasic),
            "client_secret_post" => Ok(Self::SecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            other => Err(ConfigError::UnknownClientAuth(other.to_owned())),
        }
    }
}

/// Which provider kuvert logs people in with.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer URL; discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_auth: ClientAuth,
    /// The key of `private_key_jwt` (the key file `oidc-client.ed25519`).
    /// The server sets it whenever it starts the login; it is published at
    /// `GET /login/jwks` even while a secret is used, so a provider can be
    /// given the key before the switch.
    pub client_key: Option<Arc<JwsSigningKey>>,
    pub claims: ClaimNames,
    /// The lowest level of assurance that may log in ([`Loa::Loa3`]: reading
    /// mail needs it).
    pub min_loa: Loa,
    /// Scopes asked for besides `openid` and `profile`.
    pub extra_scopes: Vec<String>,
}

impl OidcSettings {
    pub fn new(issuer: &str, client_id: &str, client_secret: Option<&str>) -> Self {
        Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.map(str::to_owned),
            client_auth: ClientAuth::SecretBasic,
            client_key: None,
            claims: ClaimNames::default(),
            min_loa: Loa::Loa3,
            extra_scopes: Vec::new(),
        }
    }
}

/// A login configuration that cannot work; the start stops on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "the development identity provider (--dev-idp or --demo) cannot run together with a production issuer (--oidc-issuer {0}): test people could log in to real mail"
    )]
    DevIdpWithProductionIssuer(String),
    #[error("the issuer {0:?} is not a URL")]
    Issuer(String),
    #[error("the redirect address {0:?} is not a URL")]
    RedirectUrl(String),
    #[error("the issuer {0:?} is plain HTTP, which is refused outside the demo and tests")]
    PlainHttpIssuer(String),
    #[error(
        "unknown client authentication {0:?}: use client_secret_basic, client_secret_post or private_key_jwt"
    )]
    UnknownClientAuth(String),
    #[error("{0:?} needs a client secret (--oidc-client-secret)")]
    MissingSecret(ClientAuth),
    #[error(
        "private_key_jwt needs the installation's client key (the key file oidc-client.ed25519)"
    )]
    MissingClientKey,
    #[error(
        "private_key_jwt signs with kuvert's key; a client secret (--oidc-client-secret-file) would be ignored: leave it out"
    )]
    SecretWithPrivateKeyJwt,
    #[error(
        "the minimum level of assurance may not be below loa3 (reading mail needs it), got {0}"
    )]
    MinLoaTooLow(&'static str),
    #[error("building the HTTP client for the provider: {0}")]
    Transport(#[from] kuvert_relay::worker::TransportError),
}

/// Why a login did not complete. Each has a stable code, shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider could not be reached or answered nonsense: {0}")]
    ProviderUnavailable(String),
    #[error(
        "no login is under way in this browser, or it is older than 10 minutes or was already used"
    )]
    NoPendingLogin,
    #[error("the state returned by the provider is not the one this login sent")]
    StateMismatch,
    #[error("the provider refused the login: {0}")]
    ProviderRefused(String),
    #[error("the provider refused the authorization code: {0}")]
    CodeRefused(String),
    #[error("the provider's answer holds no ID token")]
    MissingIdToken,
    #[error("the ID token failed a check ({0:?}): {1}")]
    IdToken(IdTokenCheck, String),
    #[error("the ID token holds no identity number")]
    IdentityMissing,
    #[error("the ID token's identity number is malformed")]
    IdentityMalformed,
    #[error("the login's level of assurance ({got}) is below {min}")]
    LoaTooLow { got: String, min: &'static str },
    #[error(transparent)]
    Store(#[from] kuvert_store::StoreError),
}

/// Which ID-token check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenCheck {
    Signature,
    Issuer,
    Audience,
    Expired,
    Nonce,
    Other,
}

impl IdTokenCheck {
    fn of(error: &ClaimsVerificationError) -> Self {
        match error {
            ClaimsVerificationError::SignatureVerification(_) => Self::Signature,
            ClaimsVerificationError::InvalidIssuer(_) => Self::Issuer,
            ClaimsVerificationError::InvalidAudience(_) => Self::Audience,
            ClaimsVerificationError::Expired(_) => Self::Expired,
            ClaimsVerificationError::InvalidNonce(_) => Self::Nonce,
            _ => Self::Other,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Signature => "id_token_signature",
            Self::Issuer => "id_token_issuer",
            Self::Audience => "id_token_audience",
            Self::Expired => "id_token_expired",
            Self::Nonce => "id_token_nonce",
            Self::Other => "id_token_invalid",
        }
    }
}

type IdTokenFields = openidconnect::IdTokenFields<
    claims::ProfileClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type ProfileTokenResponse = openidconnect::StandardTokenResponse<IdTokenFields, CoreTokenType>;
/// The crate's `CoreClient`, with the Swedish profile's claims kept.
type ProfileClient = openidconnect::Client<
    claims::ProfileClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProfileTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A login started: where to send the browser, and what to keep (bound to
/// the pre-login cookie) until it comes back.
pub struct StartedLogin {
    pub authorize_url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub struct RelyingParty {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect_url: RedirectUrl,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The provider's metadata (with its JWKS), once discovered.
    provider: tokio::sync::RwLock<Option<CoreProviderMetadata>>,
}

impl RelyingParty {
    /// `public_url` is where browsers reach kuvert; the callback is
    /// `<public_url>/login/callback`. `transport` is kuvert's one client
    /// policy: rustls, extra roots, https only unless plain HTTP is allowed.
    pub fn new(
        settings: OidcSettings,
        public_url: &str,
        transport: &kuvert_relay::worker::Transport,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|_| ConfigError::Issuer(settings.issuer.clone()))?;
        if issuer.url().scheme() != "https" && !transport.allow_plain_http {
            return Err(ConfigError::PlainHttpIssuer(settings.issuer.clone()));
        }
        let callback = format!("{}/login/callback", public_url.trim_end_matches('/'));
        let redirect_url =
            RedirectUrl::new(callback.clone()).map_err(|_| ConfigError::RedirectUrl(callback))?;
        match settings.client_auth {
            ClientAuth::PrivateKeyJwt if settings.client_key.is_none() => {
                return Err(ConfigError::MissingClientKey);
            }
            ClientAuth::PrivateKeyJwt if settings.client_secret.is_some() => {
                return Err(ConfigError::SecretWithPrivateKeyJwt);
            }
            ClientAuth::PrivateKeyJwt => {}
            auth if settings.client_secret.is_none() => {
                return Err(ConfigError::MissingSecret(auth));
            }
            _ => {}
        }
        if settings.min_loa < Loa::Loa3 {
            return Err(ConfigError::MinLoaTooLow(settings.min_loa.short()));
        }
        Ok(Self {
            settings,
            issuer,
            redirect_url,
            http: transport.client(PROVIDER_TIMEOUT)?,
            clock,
            provider: tokio::sync::RwLock::new(None),
        })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, LoginError> {
        if let Some(metadata) = self.provider.read().await.as_ref() {
            return Ok(metadata.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| LoginError::ProviderUnavailable(error_chain(&e)))?;
        *self.provider.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> ProfileClient {
        ProfileClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect_url.clone())
        .set_auth_type(match self.settings.client_auth {
            // With private_key_jwt there is no secret: the client id goes in
            // the body beside the assertion (RFC 7523 section 3.2).
            ClientAuth::SecretPost | ClientAuth::PrivateKeyJwt => AuthType::RequestBody,
            ClientAuth::SecretBasic => AuthType::BasicAuth,
        })
    }

    /// The public half of the client key as a JWK Set, for `GET
    /// /login/jwks`; `None` without a key.
    pub fn client_jwks(&self) -> Option<serde_json::Value> {
        let key = self.settings.client_key.as_ref()?;
        let jwk: serde_json::Map<String, serde_json::Value> = key
            .public_jwk()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect();
        Some(serde_json::json!({ "keys": [jwk] }))
    }

    /// The client assertion of RFC 7523 for one token request: `iss` and
    /// `sub` are the client id, `aud` the token endpoint, `jti` random (a
    /// provider refuses a replay), `exp` a minute away.
    fn client_assertion(&self, key: &JwsSigningKey, token_endpoint: &str) -> String {
        let now = self.clock.now().unix_timestamp();
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": key.kid() });
        let claims = serde_json::json!({
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": token_endpoint,
            "jti": CsrfToken::new_random().secret(),
            "iat": now,
            "exp": now + CLIENT_ASSERTION_SECONDS,
        });
        key.sign_compact(&header.to_string(), &claims.to_string())
    }

    /// Step 1: the provider's authorization URL, with a fresh `state`,
    /// `nonce` and PKCE challenge (S256), asking for the minimum LoA.
    pub async fn start(&self) -> Result<StartedLogin, LoginError> {
        let client = self.client(self.metadata().await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .add_auth_context_value(AuthenticationContextClass::new(
                self.settings.min_loa.uri().to_owned(),
            ))
            .set_pkce_challenge(challenge);
        for scope in &self.settings.extra_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (authorize_url, state, nonce) = request.url();
        Ok(StartedLogin {
            authorize_url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Step 2: the callback. `pending` is the login taken (once) from the
    /// database; `state` and `code` came back from the provider.
    pub async fn finish(
        &self,
        pending: &kuvert_store::sessions::PendingLoginRow,
        state: &str,
        code: &str,
    ) -> Result<LoggedIn, LoginError> {
        let now = self.clock.now();
        if now.unix_timestamp() - pending.created_at > PENDING_LOGIN_SECONDS {
            return Err(LoginError::NoPendingLogin);
        }
        if !kuvert_crypto::digest::constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(LoginError::StateMismatch);
        }
        let metadata = self.metadata().await?;
        let client = self.client(metadata.clone());
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::ProviderUnavailable(error_chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        if let (ClientAuth::PrivateKeyJwt, Some(key)) =
            (self.settings.client_auth, &self.settings.client_key)
        {
            let token_endpoint = metadata
                .token_endpoint()
                .map(|url| url.as_str().to_owned())
                .ok_or_else(|| {
                    LoginError::ProviderUnavailable("the provider names no token endpoint".into())
                })?;
            request = request
                .add_extra_param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .add_extra_param(
                    "client_assertion",
                    self.client_assertion(key, &token_endpoint),
                );
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(answer) => {
                    LoginError::CodeRefused(answer.error().as_ref().to_owned())
                }
                other => LoginError::ProviderUnavailable(error_chain(&other)),
            })?;
        let id_token = response.id_token().ok_or(LoginError::MissingIdToken)?;
        let nonce = Nonce::new(pending.nonce.clone());
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), 0)
            .unwrap_or_default();
        let verifier = |jwks: CoreJsonWebKeySet| {
            IdTokenVerifier::new_public_client(
                ClientId::new(self.settings.client_id.clone()),
                self.issuer.clone(),
                jwks,
            )
            .set_allowed_algs(ALLOWED_ALGS)
            .set_time_fn(move || at)
        };
        let checked = match id_token.claims(&verifier(metadata.jwks().clone()), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key we do not hold: the provider may have rotated. Its
                // JWKS once more, then the same checks.
                let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
                    .await
                    .map_err(|e| LoginError::ProviderUnavailable(error_chain(&e)))?;
                *self.provider.write().await = Some(metadata.clone().set_jwks(jwks.clone()));
                id_token.claims(&verifier(jwks), &nonce).cloned()
            }
            other => other.cloned(),
        }
        .map_err(|e| LoginError::IdToken(IdTokenCheck::of(&e), e.to_string()))?;
        claims::read(
            &checked,
            &self.settings.claims,
            self.settings.min_loa,
            now.date(),
        )
    }
}

/// An error and its sources, for a log line or a page's detail.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuvert_relay::worker::Transport;

    fn new(settings: OidcSettings, allow_plain_http: bool) -> Result<RelyingParty, ConfigError> {
        let transport = Transport {
            extra_roots_pem: None,
            allow_plain_http,
        };
        RelyingParty::new(
            settings,
            "https://post.example.se",
            &transport,
            Arc::new(kuvert_domain::clock::SystemClock),
        )
    }

    #[test]
    fn configurations_that_cannot_be_right_are_refused_at_start() {
        let good = OidcSettings::new("https://eid.example.se", "kuvert", Some("secret"));
        assert!(new(good.clone(), false).is_ok());
        let plain = OidcSettings::new("http://eid.example.se", "kuvert", Some("secret"));
        assert!(matches!(
            new(plain.clone(), false),
            Err(ConfigError::PlainHttpIssuer(_))
        ));
        assert!(new(plain, true).is_ok(), "a closed test network may");
        let mut low = good.clone();
        low.min_loa = Loa::Loa2;
        assert!(matches!(
            new(low, false),
            Err(ConfigError::MinLoaTooLow("loa2"))
        ));
        let no_secret = OidcSettings::new("https://eid.example.se", "kuvert", None);
        assert!(matches!(
            new(no_secret, false),
            Err(ConfigError::MissingSecret(ClientAuth::SecretBasic))
        ));
        let mut jwt = OidcSettings::new("https://eid.example.se", "kuvert", None);
        jwt.client_auth = ClientAuth::PrivateKeyJwt;
        assert!(matches!(
            new(jwt.clone(), false),
            Err(ConfigError::MissingClientKey)
        ));
        jwt.client_key = Some(Arc::new(JwsSigningKey::from_bytes(&[7; 32])));
        assert!(new(jwt.clone(), false).is_ok());
        let mut both = jwt;
        both.client_secret = Some("secret".to_owned());
        assert!(matches!(
            new(both, false),
            Err(ConfigError::SecretWithPrivateKeyJwt)
        ));
        assert!(matches!(
            ClientAuth::parse("client_secret_jwt"),
            Err(ConfigError::UnknownClientAuth(_))
        ));
    }
}
