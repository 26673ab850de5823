//! `POST /v1/reachability`: the register's answer for up to 1000 recipients.

use crate::AppState;
use crate::auth::SenderAuth;
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use kuvert_domain::identity::OrganisationNumber;
use kuvert_register::ReachabilityAnswer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/reachability", post(lookup))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReachabilityRequest {
    /// The sender asking (one the credential may send for): whether each
    /// recipient accepts mail is answered for this sender.
    pub sender: String,
    /// 1 to 1000 identity numbers, in any written form.
    pub recipients: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReachabilityResponse {
    /// One answer per recipient asked, in the same order.
    pub results: Vec<ReachabilityAnswer>,
}

/// Reachability lookup (kontrollsökning). Invalid ids get their own answer.
/// Every id asked counts against the tenant's lookup quotas (per UTC day
/// and per second); over one, 429 `quota_exceeded` with Retry-After and
/// nothing is looked up.
#[utoipa::path(post, path = "/v1/reachability", tag = "sender", request_body = ReachabilityRequest,
    responses((status = 200, body = ReachabilityResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Over the tenant's lookup quota; see Retry-After", body = Problem)),
    security(("sender" = [])))]
pub async fn lookup(
    State(state): State<AppState>,
    auth: SenderAuth,
    ApiJson(request): ApiJson<ReachabilityRequest>,
) -> Result<Json<ReachabilityResponse>, ApiError> {
    let core = state.core()?;
    let sender = OrganisationNumber::parse(&request.sender).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sender_id",
            format!("sender: {e}"),
        )
    })?;
    // Whether recipients refuse a sender is answered only to a credential
    // that may act for it (not a removed sender, not outside its scope).
    if !core.db.may_act_for(&auth.viewer(), sender.as_str()).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sender_not_allowed",
            "this credential may not act for that sender",
        ));
    }
    if request.recipients.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_recipients",
            "ask for at least one recipient",
        ));
    }
    let results = core
        .register
        .lookup(&auth.tenant, &sender, &request.recipients)
        .await?;
    Ok(Json(ReachabilityResponse { results }))
}
