//! A tenant's view of itself: statistics and its own audit entries.

use crate::AppState;
use crate::auth::SenderAuth;
use crate::error::{ApiError, Problem};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use kuvert_domain::status::StatusCounts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/statistics", get(statistics))
        .route("/v1/audit", get(audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The day (UTC, `YYYY-MM-DD`); today by default.
    pub day: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Statistics {
    pub tenant: String,
    pub day: String,
    /// Current statuses of the deliveries received that day, of the senders
    /// the credential may act for (a removed sender's are not counted).
    pub deliveries: StatusCounts,
    /// Reachability lookups made that day, for the same senders.
    pub reachability_lookups: i64,
}

/// Per-day statistics of the caller's tenant.
#[utoipa::path(get, path = "/v1/statistics", tag = "sender", params(DayQuery),
    responses((status = 200, body = Statistics), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("sender" = [])))]
pub async fn statistics(
    State(state): State<AppState>,
    auth: SenderAuth,
    Query(query): Query<DayQuery>,
) -> Result<Json<Statistics>, ApiError> {
    let core = state.core()?;
    let day = match query.day {
        Some(text) => time::Date::parse(
            &text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| ApiError::bad_request("bad_day", "day must be YYYY-MM-DD"))?,
        None => state.clock().today(),
    };
    let counts = core.db.visible_daily_counts(&auth.viewer(), day).await?;
    let lookups = core.db.visible_lookups(&auth.viewer(), day).await?;
    Ok(Json(Statistics {
        tenant: auth.tenant.to_string(),
        day: day.to_string(),
        deliveries: counts,
        reachability_lookups: lookups,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[serde(default)]
    pub after: i64,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    /// The entry's chain hash; checkable against the installation's signed checkpoints.
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    pub next_cursor: i64,
}

/// The audit entries about the caller's own tenant, in order: the tenant's
/// whole record (every sender, credential and key), so a credential scoped
/// to named senders is refused with 403 `credential_scoped`.
#[utoipa::path(get, path = "/v1/audit", tag = "sender", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("sender" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    auth: SenderAuth,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let core = state.core()?;
    if !auth.all_senders {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "credential_scoped",
            "the audit log covers every sender of the tenant; use a credential for all of them",
        ));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = core
        .db
        .audit_entries(Some(&auth.tenant), query.after.max(0), limit)
        .await?;
    let next_cursor = entries.last().map_or(query.after.max(0), |e| e.seq);
    Ok(Json(AuditPage {
        entries: entries
            .into_iter()
            .map(|e| AuditEntryView {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                detail: e.detail,
                hash: e.hash,
            })
            .collect(),
        next_cursor,
    }))
}
