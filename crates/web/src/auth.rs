//! Who is calling, as typed extractors: a handler that takes [`SenderAuth`]
//! cannot run without a valid, unrevoked credential of an active tenant.
//!
//! - Senders: `Authorization: Bearer kvt_<credential id>.<secret>`; only the
//!   SHA-256 of the secret is stored, compared in constant time, and looked
//!   up on every request so a revocation applies to the very next one.
//! - Recipients: `Authorization: Bearer kvr1.<payload>.<mac>`, a short-lived
//!   token HMAC-signed by the installation (the e-ID login of a later issue
//!   issues the same token after an OpenID Connect login).
//! - Platform operator: `Authorization: Bearer kva_<secret>` for the admin API.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use kuvert_crypto::digest::{constant_time_eq, hash_secret};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::TenantId;
use kuvert_relay::Caller;
use kuvert_store::tenants::TenantStatus;
use sha2::Sha256;

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A sender-side caller: a tenant, authenticated by one of its credentials.
#[derive(Debug, Clone)]
pub struct SenderAuth {
    pub tenant: TenantId,
    pub credential_id: String,
}

impl SenderAuth {
    pub fn caller(&self) -> Caller {
        Caller {
            tenant: self.tenant.clone(),
            credential: self.credential_id.clone(),
        }
    }
}

/// Splits `kvt_<id>.<secret>`.
pub fn parse_sender_token(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix("kvt_")?.split_once('.')
}

impl FromRequestParts<AppState> for SenderAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let core = state.core()?;
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("a sender credential is required (Authorization: Bearer kvt_…)")
        })?;
        let (id, secret) = parse_sender_token(token)
            .ok_or_else(|| ApiError::unauthorized("malformed credential"))?;
        let record = core.db.credential(id).await?;
        let valid = record
            .as_ref()
            .is_some_and(|r| !r.revoked && constant_time_eq(&r.secret_hash, &hash_secret(secret)));
        let Some(record) = record.filter(|_| valid) else {
            return Err(ApiError::unauthorized("unknown or revoked credential"));
        };
        if record.tenant_status == TenantStatus::Suspended {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "this tenant is suspended; contact the platform operator",
            ));
        }
        Ok(SenderAuth {
            tenant: record.tenant_id,
            credential_id: record.id,
        })
    }
}

/// An authenticated recipient.
#[derive(Debug, Clone)]
pub struct RecipientAuth {
    pub recipient: RecipientId,
}

impl FromRequestParts<AppState> for RecipientAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("a recipient token is required (Authorization: Bearer kvr1.…)")
        })?;
        let now = state.clock().now().unix_timestamp();
        let recipient = state
            .recipient_tokens()
            .verify(token, now)
            .ok_or_else(|| ApiError::unauthorized("invalid or expired recipient token"))?;
        Ok(RecipientAuth { recipient })
    }
}

/// A relay delivering to this mailbox operator: `Authorization: Bearer
/// kvm_<secret>`, one credential per relay (mutual TLS can stand in front in
/// production). Checked before the body is read; each delivery's seal
/// signature is checked after, as before.
#[derive(Debug, Clone)]
pub struct RelayAuth;

/// The prefix of a relay's credential at a mailbox operator.
pub const RELAY_CREDENTIAL_PREFIX: &str = "kvm_";

impl FromRequestParts<AppState> for RelayAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mailbox = state.mailbox()?;
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("a relay credential is required (Authorization: Bearer kvm_…)")
        })?;
        let presented = hash_secret(token);
        let known = token.starts_with(RELAY_CREDENTIAL_PREFIX)
            && mailbox.relay_credentials.iter().fold(false, |found, hash| {
                found | constant_time_eq(hash, &presented)
            });
        if known {
            Ok(RelayAuth)
        } else {
            Err(ApiError::unauthorized("unknown relay credential"))
        }
    }
}

/// The platform operator.
#[derive(Debug, Clone)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("an operator credential is required"))?;
        // Without a configured admin token no credential is valid: the
        // answer is the same 401 as for a wrong token, so a caller cannot
        // tell how the installation is configured.
        let presented = hash_secret(token);
        let valid = state.admin_token_hash().is_some_and(|expected| {
            token.starts_with("kva_") && constant_time_eq(&presented, expected)
        });
        if valid {
            Ok(AdminAuth)
        } else {
            Err(ApiError::unauthorized("invalid operator credential"))
        }
    }
}

/// Mints and checks recipient tokens: `kvr1.<b64url(sub:exp)>.<b64url(hmac)>`.
#[derive(Clone)]
pub struct RecipientTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for RecipientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecipientTokens(<key>)")
    }
}

const TOKEN_PREFIX: &str = "kvr1";

impl RecipientTokens {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; a 32-byte key cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(TOKEN_PREFIX.as_bytes());
                mac.update(b".");
                mac.update(payload.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// A token for `recipient` valid until `expires_at` (unix seconds).
    pub fn mint(&self, recipient: &RecipientId, expires_at: i64) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(format!("{}:{expires_at}", recipient.as_str()));
        let mac = b64.encode(self.mac(&payload));
        format!("{TOKEN_PREFIX}.{payload}.{mac}")
    }

    pub fn verify(&self, token: &str, now: i64) -> Option<RecipientId> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = token.split('.');
        let (prefix, payload, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if prefix != TOKEN_PREFIX || parts.next().is_some() {
            return None;
        }
        if !constant_time_eq(&b64.decode(mac).ok()?, &self.mac(payload)) {
            return None;
        }
        let decoded = String::from_utf8(b64.decode(payload).ok()?).ok()?;
        let (subject, expires_at) = decoded.split_once(':')?;
        if expires_at.parse::<i64>().ok()? <= now {
            return None;
        }
        RecipientId::parse_canonical(subject).ok()
    }
}
