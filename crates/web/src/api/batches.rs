//! `POST /v1/batches` (send many) and `GET /v1/batches/{id}` (progress).

use crate::AppState;
use crate::auth::SenderAuth;
use crate::error::{ApiError, Problem};
use crate::json::require_json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use kuvert_domain::clock::format_instant;
use kuvert_domain::delivery::{DeliveryError, DeliverySignature, SecureDelivery, SignedDelivery};
use kuvert_domain::ids::{BatchId, DeliveryId};
use kuvert_domain::status::{DeliveryStatus, StatusCounts};
use kuvert_relay::{IntakeError, Submission};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::ToSchema;

/// At most this many deliveries per batch request; send more as several.
pub const MAX_BATCH: usize = 10_000;
/// The largest item of a batch, as written in the request: the single
/// endpoint's body limit. A larger item is refused (`delivery_too_large`)
/// from its raw length, before it is parsed; the other items go on.
pub const MAX_BATCH_ITEM_BYTES: usize = crate::api::deliveries::SINGLE_BODY_LIMIT;
/// The largest batch request; a larger `Content-Length` is refused with
/// 413 before anything is read. Send more as several batches.
pub const BATCH_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The send endpoint (charged against the intake budget by the caller).
pub fn send_router() -> Router<AppState> {
    Router::new().route(
        "/v1/batches",
        post(submit)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(BATCH_BODY_LIMIT)),
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/batches/{id}", get(progress))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub delivery: SecureDelivery,
    pub signature: DeliverySignature,
    /// Makes a retry of this item safe; defaults to `delivery.header.reference`.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub deliveries: Vec<BatchItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchItemResult {
    pub index: usize,
    pub delivery_id: Option<DeliveryId>,
    pub status: Option<DeliveryStatus>,
    #[serde(default)]
    pub replayed: bool,
    /// Why this item was not accepted; the others are unaffected.
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub batch_id: BatchId,
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<BatchItemResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchView {
    pub batch_id: BatchId,
    pub created_at: String,
    pub submitted: i64,
    pub rejected: i64,
    /// Current statuses of the batch's accepted deliveries.
    pub counts: StatusCounts,
    /// True when no accepted delivery is still on its way.
    pub done: bool,
}

/// Send many deliveries in one request: 1 to 10 000 deliveries, at most
/// 32 MiB of request body. Each item is checked on its own: the valid ones
/// are stored together (one transaction) and answered with ids; each
/// invalid one gets its own error and nothing of it is stored (an item that
/// repeats an earlier signed delivery under another key is refused with
/// `duplicate_delivery`, as on the single path).
///
/// The same batch sent again (the same items with the same idempotency keys,
/// say after the answer was lost) creates nothing new and is answered with
/// the FIRST batch id, its items `replayed`.
#[utoipa::path(post, path = "/v1/batches", tag = "sender", request_body = BatchRequest,
    responses((status = 202, body = BatchResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 413, description = "Over 32 MiB", body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 429, description = "Over the tenant's quota; see Retry-After", body = Problem), (status = 503, body = Problem)),
    security(("sender" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    auth: SenderAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    let core = state.core()?;
    require_json(&headers)?;
    // Parsing 32 MiB is CPU work: off the async runtime's threads.
    let submissions = tokio::task::spawn_blocking(move || read_batch(&body))
        .await
        .map_err(|_| ApiError::internal())??;
    let (batch_id, results) = core
        .relay
        .submit_items(&auth.caller(), submissions, true)
        .await?;
    let batch_id = batch_id.ok_or_else(ApiError::internal)?;
    let results: Vec<BatchItemResult> = results
        .into_iter()
        .enumerate()
        .map(|(index, r)| match r {
            Ok(a) => BatchItemResult {
                index,
                delivery_id: Some(a.delivery_id),
                status: Some(a.status),
                replayed: a.replayed,
                error: None,
            },
            Err(e) => BatchItemResult {
                index,
                delivery_id: None,
                status: None,
                replayed: false,
                error: Some(ApiError::from(e).problem()),
            },
        })
        .collect();
    let accepted = results.iter().filter(|r| r.error.is_none()).count();
    Ok((
        StatusCode::ACCEPTED,
        Json(BatchResponse {
            batch_id,
            accepted,
            rejected: results.len() - accepted,
            results,
        }),
    ))
}

/// How far a batch has come, counting the deliveries the credential may
/// see (not those of senders outside its scope or removed from the tenant).
/// Another tenant's batch, and one with nothing the credential may see,
/// answers 404.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "sender",
    params(("id" = String, Path, description = "The batch id")),
    responses((status = 200, body = BatchView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("sender" = [])))]
pub async fn progress(
    State(state): State<AppState>,
    auth: SenderAuth,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    let core = state.core()?;
    let id = BatchId::parse(&id).map_err(|_| ApiError::not_found())?;
    let batch = core
        .db
        .batch(&auth.viewer(), &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(BatchView {
        batch_id: batch.id,
        created_at: format_instant(batch.created_at),
        submitted: batch.submitted,
        rejected: batch.rejected,
        done: batch.counts.open() == 0,
        counts: batch.counts,
    }))
}

/// The request with its items still raw (borrowed from the body): the item
/// count is checked while the list is read, and each item's size before it
/// is parsed, so no item's values are built beyond the limits.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch<'a> {
    #[serde(borrow, deserialize_with = "at_most_max_batch")]
    deliveries: Vec<&'a RawValue>,
}

fn at_most_max_batch<'de, D>(deserializer: D) -> Result<Vec<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of 1 to {MAX_BATCH} deliveries")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                if items.len() == MAX_BATCH {
                    return Err(serde::de::Error::custom(TOO_MANY));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Bounded)
}

/// The marker of the bounded list's refusal, to answer it as such.
const TOO_MANY: &str = "kuvert: more deliveries than a batch holds";

fn bad_batch_size() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_batch_size",
        format!("a batch holds 1 to {MAX_BATCH} deliveries"),
    )
}

/// Reads a batch request body: the list bounded, each item refused on its
/// own (too large, or not a delivery), in parallel.
fn read_batch(body: &[u8]) -> Result<Vec<Result<Submission, IntakeError>>, ApiError> {
    let raw: RawBatch<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.to_string().contains(TOO_MANY) {
            bad_batch_size()
        } else if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", e.to_string())
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            )
        }
    })?;
    if raw.deliveries.is_empty() {
        return Err(bad_batch_size());
    }
    Ok(raw
        .deliveries
        .into_par_iter()
        .with_min_len(64)
        .map(|item| {
            let text = item.get();
            if text.len() > MAX_BATCH_ITEM_BYTES {
                return Err(IntakeError::Invalid(DeliveryError::TooLarge {
                    size: text.len(),
                    limit: MAX_BATCH_ITEM_BYTES,
                }));
            }
            let item: BatchItem =
                serde_json::from_str(text).map_err(|e| IntakeError::Unreadable(e.to_string()))?;
            Ok(Submission {
                signed: SignedDelivery {
                    delivery: item.delivery,
                    signature: item.signature,
                },
                idempotency_key: item.idempotency_key,
            })
        })
        .collect())
}
