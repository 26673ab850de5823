//! `GET /health` (the process answers) and `GET /ready` (its databases do),
//! for whoever runs kuvert: a load balancer, an orchestrator, `kuvert
//! healthcheck`.

use crate::AppState;
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kuvert_store::Db;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// How long a database may take to answer the readiness query.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness: the process serves HTTP.
///
/// Answers `ok` whatever the databases do; `/ready` is about them.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain")))]
pub async fn health() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// The databases of this process's roles, all of which answered:
    /// `core` (register and relay) and `mailbox`.
    pub databases: Vec<String>,
}

/// Readiness: the databases answer, and their audit logs verify.
///
/// Every database of this process's roles answers a trivial query within
/// 2 s; 503 while one does not (`not_ready`), and 503
/// `audit_log_not_verified` once a database's audit checkpointer found its
/// log rewritten, behind its checkpoint file or refused by the witness (it
/// then signs nothing more; the error log says why).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "A database does not answer (`not_ready`; see Retry-After), or an audit log does not verify (`audit_log_not_verified`)", body = Problem)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let databases: Vec<(&str, &Db)> = [
        state.0.core.as_ref().map(|core| ("core", &core.db)),
        state
            .0
            .mailbox
            .as_ref()
            .map(|mailbox| ("mailbox", &mailbox.db)),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (name, db) in &databases {
        let problem = match tokio::time::timeout(READY_TIMEOUT, db.ping()).await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_owned(),
        };
        tracing::warn!(database = name, error = %problem, "not ready");
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "a database does not answer",
        );
        error.retry_after = Some(5);
        return Err(error);
    }
    if let Some((database, _)) = state.0.audit_alarm.raised().into_iter().next() {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_log_not_verified",
            format!(
                "the audit log of the {database} database does not verify: checkpoints are no longer signed (see the error log)"
            ),
        );
        error.retry_after = Some(60);
        return Err(error);
    }
    Ok(Json(Ready {
        databases: databases
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect(),
    }))
}
