//! `/register/v1/me`: a recipient's own registration in the register.

use crate::AppState;
use crate::auth::{RecipientAuth, RegistrationRead, RegistrationWrite};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use kuvert_domain::identity::OrganisationNumber;
use kuvert_domain::ids::OperatorId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/register/v1/me",
            get(profile).put(register).delete(deregister),
        )
        .route(
            "/register/v1/me/refused-senders/{sender}",
            put(refuse).delete(accept),
        )
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub recipient_id: String,
    /// `registered`, `pending`, `deregistered` or `none`.
    pub status: String,
    pub operator_id: Option<String>,
    pub refused_senders: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The mailbox operator chosen.
    pub operator_id: String,
}

/// The caller's registration.
#[utoipa::path(get, path = "/register/v1/me", tag = "recipient",
    responses((status = 200, body = Profile), (status = 401, body = Problem)), security(("recipient" = [])))]
pub async fn profile(
    State(state): State<AppState>,
    auth: RecipientAuth<RegistrationRead>,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(load_profile(state.core()?, &auth.recipient).await?))
}

/// A recipient's registration as the register has it: what `GET
/// /register/v1/me` answers and the settings page shows (one read for both).
pub async fn load_profile(
    core: &crate::Core,
    recipient: &kuvert_domain::identity::RecipientId,
) -> Result<Profile, kuvert_store::StoreError> {
    let id = recipient.as_str();
    let record = core.db.recipient(id).await?;
    Ok(Profile {
        recipient_id: id.to_owned(),
        status: record
            .as_ref()
            .map_or("none", |r| r.status.as_str())
            .to_owned(),
        operator_id: record.and_then(|r| r.operator.map(|o| o.to_string())),
        refused_senders: core.db.refused_senders(id).await?,
    })
}

/// Accept digital mail through the chosen mailbox operator.
#[utoipa::path(put, path = "/register/v1/me", tag = "recipient", request_body = RegisterRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("recipient" = [])))]
pub async fn register(
    State(state): State<AppState>,
    auth: RecipientAuth<RegistrationWrite>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<StatusCode, ApiError> {
    let core = state.core()?;
    // An organisation is registered by the people who sign for it (and
    // stays `pending` until enough have): a token alone must not do it.
    if !auth.recipient.is_person() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "organisation_needs_signatories",
            "an organisation's mailbox is registered by its signatories, not with a recipient token",
        ));
    }
    let operator = OperatorId::parse(&request.operator_id).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_operator",
            "unknown mailbox operator",
        )
    })?;
    core.register
        .register(&auth.recipient, &operator, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop receiving digital mail.
#[utoipa::path(delete, path = "/register/v1/me", tag = "recipient",
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)), security(("recipient" = [])))]
pub async fn deregister(
    State(state): State<AppState>,
    auth: RecipientAuth<RegistrationWrite>,
) -> Result<StatusCode, ApiError> {
    state.core()?.register.deregister(&auth.recipient).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn sender(text: &str) -> Result<OrganisationNumber, ApiError> {
    OrganisationNumber::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sender_id",
            format!("sender: {e}"),
        )
    })
}

/// Refuse digital mail from one sender.
#[utoipa::path(put, path = "/register/v1/me/refused-senders/{sender}", tag = "recipient",
    params(("sender" = String, Path, description = "The sender's organisation number")),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("recipient" = [])))]
pub async fn refuse(
    State(state): State<AppState>,
    auth: RecipientAuth<RegistrationWrite>,
    Path(sender_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sender = sender(&sender_id)?;
    state
        .core()?
        .register
        .set_sender_refused(&auth.recipient, &sender, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept digital mail from a sender again.
#[utoipa::path(delete, path = "/register/v1/me/refused-senders/{sender}", tag = "recipient",
    params(("sender" = String, Path, description = "The sender's organisation number")),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("recipient" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    auth: RecipientAuth<RegistrationWrite>,
    Path(sender_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sender = sender(&sender_id)?;
    state
        .core()?
        .register
        .set_sender_refused(&auth.recipient, &sender, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
