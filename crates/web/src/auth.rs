//! Who is calling, as typed extractors: a handler that takes [`SenderAuth`]
//! cannot run without a valid, unrevoked credential of an active tenant.
//!
//! - Senders: `Authorization: Bearer kvt_<credential id>.<secret>`; only the
//!   SHA-256 of the secret is stored, compared in constant time, and looked
//!   up on every request so a revocation applies to the very next one.
//! - Recipients: `Authorization: Bearer kvr2.<claims>.<mac>`, a short-lived
//!   token HMAC-signed by the installation for one audience (a mailbox
//!   operator, or the register) with scopes, a revocable id and a key id
//!   ([`crate::tokens`]); the e-ID login sessions of a later issue replace
//!   them for people, apps keep them.
//! - Platform operator: `Authorization: Bearer kva_<secret>` for the admin API.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use kuvert_crypto::digest::{constant_time_eq, hash_secret};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::TenantId;
use kuvert_relay::Caller;
use kuvert_store::tenants::{TenantStatus, Viewer};

pub use crate::tokens::{
    DEFAULT_TOKEN_LIFETIME_SECONDS, MAX_TOKEN_LIFETIME_SECONDS, MintedToken, REGISTER_AUDIENCE,
    RecipientTokens, Scope, TokenClaims, TokenError,
};

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
/// What it may send as and read is the credential's sender scope
/// ([`SenderAuth::viewer`]), applied in each query.
#[derive(Debug, Clone)]
pub struct SenderAuth {
    pub tenant: TenantId,
    pub credential_id: String,
    /// False for a credential scoped to named senders.
    pub all_senders: bool,
}

impl SenderAuth {
    pub fn caller(&self) -> Caller {
        Caller {
            tenant: self.tenant.clone(),
            credential: self.credential_id.clone(),
        }
    }

    /// The filter for reads of the tenant's deliveries.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            tenant: &self.tenant,
            credential: &self.credential_id,
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
            all_senders: record.all_senders,
        })
    }
}

/// An authenticated recipient, holding a token for this service with the
/// scope `S` ([`MailRead`], [`MailManage`], [`RegistrationRead`],
/// [`RegistrationWrite`]). The token's audience must be this service (the
/// mailbox operator's id for mail, [`REGISTER_AUDIENCE`] for the register)
/// and its id must not be revoked in this role's database.
#[derive(Debug, Clone)]
pub struct RecipientAuth<S> {
    pub recipient: RecipientId,
    /// The token's id (for revocation and the audit log).
    pub token_id: String,
    scope: std::marker::PhantomData<S>,
}

/// A scope an endpoint requires, as a type.
pub trait RequiredScope {
    const SCOPE: Scope;
}

macro_rules! scope_marker {
    ($name:ident, $scope:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Scope = $scope;
        }
    };
}
scope_marker!(
    MailRead,
    Scope::MailRead,
    "List and read mail, download attachments."
);
scope_marker!(MailManage, Scope::MailManage, "Archive and delete mail.");
scope_marker!(
    RegistrationRead,
    Scope::RegistrationRead,
    "Read one's own registration."
);
scope_marker!(
    RegistrationWrite,
    Scope::RegistrationWrite,
    "Register, deregister, refuse senders."
);

impl<S: RequiredScope + Send + Sync> FromRequestParts<AppState> for RecipientAuth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("a recipient token is required (Authorization: Bearer kvr2.…)")
        })?;
        let now = state.clock().now().unix_timestamp();
        let claims = state
            .recipient_tokens()
            .verify(token, now)
            .map_err(|e| ApiError::unauthorized(&e.to_string()))?;
        // The service this endpoint belongs to, and the database that
        // records its revocations.
        let (audience, db) = if S::SCOPE.is_mail() {
            let mailbox = state.mailbox()?;
            (mailbox.operator_id.to_string(), &mailbox.db)
        } else {
            let core = state.core()?;
            (REGISTER_AUDIENCE.to_owned(), &core.db)
        };
        if claims.audience != audience {
            return Err(ApiError::unauthorized(&format!(
                "this token's audience is {:?}, not this service ({audience:?}); ask for a token for it",
                claims.audience
            )));
        }
        if !claims.scopes.contains(&S::SCOPE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "this request needs a token with the scope {}",
                    S::SCOPE.as_str()
                ),
            ));
        }
        if db.recipient_token_revoked(&claims.id).await? {
            return Err(ApiError::unauthorized("this token has been revoked"));
        }
        Ok(RecipientAuth {
            recipient: claims.recipient,
            token_id: claims.id,
            scope: std::marker::PhantomData,
        })
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
