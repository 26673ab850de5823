//! `POST /v1/deliveries` (send one) and `GET /v1/deliveries/{id}` (status).

use crate::AppState;
use crate::auth::SenderAuth;
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use kuvert_domain::clock::format_instant;
use kuvert_domain::delivery::SignedDelivery;
use kuvert_domain::ids::DeliveryId;
use kuvert_domain::status::DeliveryStatus;
use kuvert_mailbox::protocol::Receipt;
use kuvert_relay::Submission;
use serde::{Deserialize, Serialize};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::ToSchema;

/// A single delivery request may be a little over the 2 MiB delivery limit
/// (signature, JSON framing); the delivery itself is checked exactly. A
/// larger `Content-Length` is refused with 413 before anything is read.
pub const SINGLE_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The send endpoint (charged against the intake budget by the caller).
pub fn send_router() -> Router<AppState> {
    Router::new().route(
        "/v1/deliveries",
        post(send)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(SINGLE_BODY_LIMIT)),
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/deliveries/{id}", get(status))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendResponse {
    pub delivery_id: DeliveryId,
    /// `accepted` (queued for the mailbox), `paper` or `not_delivered`.
    pub status: DeliveryStatus,
    /// True when this answers a retry: a request with an idempotency key
    /// (and signed delivery) seen before. `status` is then the delivery's
    /// status now, e.g. `delivered`, not the status first answered.
    pub replayed: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub delivery_id: DeliveryId,
    pub sender_id: String,
    pub recipient_id: String,
    pub batch_id: Option<String>,
    pub message_ids: Vec<String>,
    pub status: DeliveryStatus,
    /// Why a delivery went to paper, was not delivered, or failed.
    pub reason: Option<String>,
    pub operator_id: Option<String>,
    pub received_at: String,
    pub status_at: String,
    /// The legal moment of delivery, from the operator's receipt.
    pub delivered_at: Option<String>,
    /// The mailbox operator's signed receipt.
    pub receipt: Option<Receipt>,
}

/// Send one signed delivery (the request body is at most 3 MiB, the
/// delivery's canonical form at most 2 MiB).
///
/// Answers only after the delivery is durably stored. A retry with the same
/// `Idempotency-Key` (or, without the header, the same `header.reference`)
/// and the same signed delivery creates nothing and answers 200 with the
/// first delivery's id and its status now (`replayed: true`).
///
/// One signed delivery is delivered once: the same signed delivery sent
/// again under another idempotency key is refused with 409
/// `duplicate_delivery`, naming the first delivery in `delivery_id`. To send
/// the same letter twice on purpose, sign a new delivery with new message
/// ids (`header.id`). The same key with other content is 409
/// `idempotency_key_reused`.
#[utoipa::path(post, path = "/v1/deliveries", tag = "sender",
    request_body = SignedDelivery,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; defaults to header.reference")),
    responses(
        (status = 202, description = "Accepted and durably stored", body = SendResponse),
        (status = 200, description = "A retry: the first delivery, with its status now", body = SendResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`duplicate_delivery` or `idempotency_key_reused`; `delivery_id` names the first delivery", body = Problem),
        (status = 413, description = "Over 3 MiB of request, or a delivery over 2 MiB", body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Over the tenant's quota; see Retry-After", body = Problem), (status = 503, body = Problem)),
    security(("sender" = [])))]
pub async fn send(
    State(state): State<AppState>,
    auth: SenderAuth,
    headers: HeaderMap,
    ApiJson(signed): ApiJson<SignedDelivery>,
) -> Result<(StatusCode, Json<SendResponse>), ApiError> {
    let core = state.core()?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        "bad_idempotency_key",
                        "the Idempotency-Key header must be text",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let (_, mut results) = core
        .relay
        .submit(
            &auth.caller(),
            vec![Submission {
                signed,
                idempotency_key,
            }],
            false,
        )
        .await?;
    let accepted = results.pop().ok_or_else(ApiError::internal)??;
    let code = if accepted.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        code,
        Json(SendResponse {
            delivery_id: accepted.delivery_id,
            status: accepted.status,
            replayed: accepted.replayed,
        }),
    ))
}

/// A delivery's status, with the operator's signed receipt once delivered.
/// Another tenant's delivery, one of a sender outside the credential's
/// scope and one of a sender removed from the tenant answer 404, exactly
/// like one that does not exist.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "sender",
    params(("id" = String, Path, description = "The delivery id")),
    responses((status = 200, body = DeliveryView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("sender" = [])))]
pub async fn status(
    State(state): State<AppState>,
    auth: SenderAuth,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let core = state.core()?;
    let id = DeliveryId::parse(&id).map_err(|_| ApiError::not_found())?;
    let d = core
        .db
        .visible_delivery(&auth.viewer(), &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let receipt = d
        .receipt
        .as_deref()
        .map(serde_json::from_str::<Receipt>)
        .transpose()
        .map_err(|_| ApiError::internal())?;
    Ok(Json(DeliveryView {
        delivery_id: d.id,
        sender_id: d.sender_id,
        recipient_id: d.recipient_id,
        batch_id: d.batch_id.map(|b| b.to_string()),
        message_ids: d.message_ids,
        status: d.status,
        reason: d.status_reason,
        operator_id: d.operator_id,
        received_at: format_instant(d.received_at),
        status_at: format_instant(d.status_at),
        delivered_at: d.delivered_at.map(format_instant),
        receipt,
    }))
}
