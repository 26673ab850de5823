//! `GET /v1/status-feed`: a tenant's status changes in order, from a cursor.

use crate::AppState;
use crate::auth::SenderAuth;
use crate::error::{ApiError, Problem};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use kuvert_domain::status::DeliveryStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/status-feed", get(feed))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous page; 0 (the default) starts at the beginning.
    #[serde(default)]
    pub after: i64,
    /// At most this many events (1–1000, default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusEventView {
    pub cursor: i64,
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusFeed {
    pub events: Vec<StatusEventView>,
    /// Pass as `after` to get the next page; unchanged when there is nothing new.
    pub next_cursor: i64,
}

/// Status changes of the caller's deliveries, oldest first: those of the
/// senders the credential may act for that are still the tenant's.
#[utoipa::path(get, path = "/v1/status-feed", tag = "sender", params(FeedQuery),
    responses((status = 200, body = StatusFeed), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("sender" = [])))]
pub async fn feed(
    State(state): State<AppState>,
    auth: SenderAuth,
    Query(query): Query<FeedQuery>,
) -> Result<Json<StatusFeed>, ApiError> {
    let core = state.core()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let events = core
        .db
        .status_events(&auth.viewer(), query.after.max(0), limit)
        .await?;
    let next_cursor = events.last().map_or(query.after.max(0), |e| e.seq);
    Ok(Json(StatusFeed {
        events: events
            .into_iter()
            .map(|e| StatusEventView {
                cursor: e.seq,
                delivery_id: e.delivery_id,
                status: e.status,
                at: e.at,
            })
            .collect(),
        next_cursor,
    }))
}
