//! Published keys: `GET /register/v1/operators/{id}/keys` (a mailbox
//! operator's receipt and sealing keys), `GET /register/v1/keys` (this
//! installation's relay seal, audit checkpoint and register certificate
//! keys), and the register's certificates: `GET
//! /register/v1/senders/{id}/certificates` and `GET /register/v1/revocations`. Public, so that a
//! sender or a court can verify a receipt or a checkpoint without any
//! credential; keys rotated out stay listed with their validity period.

use crate::AppState;
use crate::error::{ApiError, Problem};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use kuvert_domain::clock::format_instant;
use kuvert_domain::identity::OrganisationNumber;
use kuvert_domain::ids::OperatorId;
use kuvert_mailbox::certificate::{SenderKeyCertificate, SenderKeyRevocation};
use kuvert_mailbox::evidence::{
    KEYS_FORMAT, KeyOwner, KeyPurpose, KeysDocument, OwnerKind, PublishedKey,
};
use kuvert_store::register::{INSTALLATION_KEY_OWNER, KeyRecord, operator_key_owner};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register/v1/keys", get(installation_keys))
        .route("/register/v1/operators/{id}/keys", get(operator_keys))
        .route(
            "/register/v1/senders/{id}/certificates",
            get(sender_certificates),
        )
        .route("/register/v1/revocations", get(revocations))
}

/// The `format` of a [`SenderCertificates`] document.
pub const SENDER_CERTIFICATES_FORMAT: &str = "kuvert-sender-certificates-v1";

/// Every key the register has certified for one sender, each with its
/// revocation once revoked. Each is signed by the register's certificate
/// key (`/register/v1/keys`, purpose `register_certificate`): check them
/// with that key, not with this document's word.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SenderCertificates {
    /// Always `kuvert-sender-certificates-v1`.
    pub format: String,
    pub sender_id: String,
    pub certificates: Vec<CertifiedKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertifiedKey {
    pub certificate: SenderKeyCertificate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<SenderKeyRevocation>,
}

/// Every sender-key revocation, oldest first: what mailbox operators fetch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revocations {
    pub revocations: Vec<SenderKeyRevocation>,
}

fn parse_stored<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, ApiError> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(error = %e, "a stored certificate does not parse");
        ApiError::internal()
    })
}

/// A sender's key certificates: what a recipient's mailbox checked the
/// sender's signature against, and the sender name it shows.
#[utoipa::path(get, path = "/register/v1/senders/{id}/certificates", tag = "register",
    params(("id" = String, Path, description = "The sender's organisation number, in any written form")),
    responses((status = 200, body = SenderCertificates), (status = 404, body = Problem)))]
pub async fn sender_certificates(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SenderCertificates>, ApiError> {
    let core = state.core()?;
    let sender = OrganisationNumber::parse(&id).map_err(|_| ApiError::not_found())?;
    let rows = core.db.sender_certificates(sender.as_str()).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found());
    }
    let certificates = rows
        .iter()
        .map(|(certificate, revocation)| {
            Ok(CertifiedKey {
                certificate: parse_stored(certificate)?,
                revocation: revocation.as_deref().map(parse_stored).transpose()?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(SenderCertificates {
        format: SENDER_CERTIFICATES_FORMAT.to_owned(),
        sender_id: sender.as_str().to_owned(),
        certificates,
    }))
}

/// Every sender key the register has revoked, as signed statements.
#[utoipa::path(get, path = "/register/v1/revocations", tag = "register",
    responses((status = 200, body = Revocations)))]
pub async fn revocations(State(state): State<AppState>) -> Result<Json<Revocations>, ApiError> {
    let core = state.core()?;
    let revocations = core
        .db
        .sender_key_revocations()
        .await?
        .iter()
        .map(|json| parse_stored(json))
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Revocations { revocations }))
}

/// The path of an operator's keys document, relative to the register's base URL.
pub fn operator_keys_path(operator: &str) -> String {
    format!("/register/v1/operators/{operator}/keys")
}

fn published(records: Vec<KeyRecord>) -> Result<Vec<PublishedKey>, ApiError> {
    records
        .into_iter()
        .map(|r| {
            let purpose = KeyPurpose::parse(&r.purpose).ok_or_else(ApiError::internal)?;
            Ok(PublishedKey {
                purpose,
                algorithm: purpose.algorithm().to_owned(),
                key_id: r.key_id,
                public_key: r.public_key,
                valid_from: format_instant(r.valid_from),
                valid_until: r.valid_until.map(format_instant),
            })
        })
        .collect()
}

/// A mailbox operator's keys: `receipt` (Ed25519, signs delivery receipts)
/// and `sealing` (X25519, content is sealed to it), current and past.
#[utoipa::path(get, path = "/register/v1/operators/{id}/keys", tag = "register",
    params(("id" = String, Path, description = "The operator id, as in a reachability answer's service_supplier.id and a receipt's operator_id")),
    responses((status = 200, body = KeysDocument), (status = 404, body = Problem)))]
pub async fn operator_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KeysDocument>, ApiError> {
    let core = state.core()?;
    let id = OperatorId::parse(&id).map_err(|_| ApiError::not_found())?;
    let operator = core
        .db
        .operator(&id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let keys = published(core.db.published_keys(&operator_key_owner(&id)).await?)?;
    Ok(Json(KeysDocument {
        format: KEYS_FORMAT.to_owned(),
        owner: KeyOwner {
            kind: OwnerKind::Operator,
            id: operator.id.to_string(),
            name: operator.name,
        },
        keys,
    }))
}

/// This installation's keys: `relay_seal` (Ed25519, the relay's seal on
/// each delivery it forwards) and `audit_checkpoint` (Ed25519, signs the
/// audit log's checkpoints; `kuvert audit verify --keys` takes this
/// document), current and past.
#[utoipa::path(get, path = "/register/v1/keys", tag = "register",
    responses((status = 200, body = KeysDocument)))]
pub async fn installation_keys(
    State(state): State<AppState>,
) -> Result<Json<KeysDocument>, ApiError> {
    let core = state.core()?;
    let keys = published(core.db.published_keys(INSTALLATION_KEY_OWNER).await?)?;
    Ok(Json(KeysDocument {
        format: KEYS_FORMAT.to_owned(),
        owner: KeyOwner {
            kind: OwnerKind::Installation,
            id: INSTALLATION_KEY_OWNER.to_owned(),
            name: "kuvert".to_owned(),
        },
        keys,
    }))
}
