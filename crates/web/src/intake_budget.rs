//! A bound on send requests in flight. Each request to a send endpoint is
//! charged its body size (its `Content-Length`, or the endpoint's limit when
//! it gives none) against one budget for the process *before* its body is
//! read, and holds the charge until it is answered: verification, sealing
//! and the transaction included. So however many senders push at once, the
//! bodies and the work on them stay within the budget; a request that finds
//! no room within [`IntakeBudget::wait`] gets 503 `intake_busy` with
//! `Retry-After`, having cost nothing.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Request bodies being checked at once, in bytes: four of the largest
/// batches (32 MiB each), or about 40 of the largest single deliveries.
pub const DEFAULT_INTAKE_BUDGET_BYTES: usize = 128 * 1024 * 1024;
/// How long a request waits for room before it is answered 503.
pub const DEFAULT_INTAKE_WAIT: Duration = Duration::from_secs(5);

/// What a process may hold of send requests at once.
#[derive(Debug, Clone, Copy)]
pub struct IntakeBudgetSettings {
    pub bytes: usize,
    pub wait: Duration,
}

impl Default for IntakeBudgetSettings {
    fn default() -> Self {
        Self {
            bytes: DEFAULT_INTAKE_BUDGET_BYTES,
            wait: DEFAULT_INTAKE_WAIT,
        }
    }
}

/// The budget, counted in KiB (a semaphore's permits are `u32`).
#[derive(Debug)]
pub struct IntakeBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
}

impl IntakeBudget {
    pub fn new(settings: IntakeBudgetSettings) -> Self {
        let total_kib = u32::try_from(settings.bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait: settings.wait,
        }
    }

    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// KiB a request of `bytes` is charged: at least 1, at most the whole
    /// budget (a request larger than the budget runs alone).
    fn charge(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib)
    }
}

fn content_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Middleware for a send endpoint whose bodies are at most `limit` bytes.
pub async fn charge(
    State((state, limit)): State<(AppState, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let budget = &state.0.intake_budget;
    let bytes = content_length(&request).unwrap_or(limit).min(limit);
    let permits = budget.charge(bytes);
    let acquired = tokio::time::timeout(
        budget.wait,
        budget.permits.clone().acquire_many_owned(permits),
    )
    .await;
    match acquired {
        Ok(Ok(permit)) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        _ => {
            let mut busy = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "intake_busy",
                "too many send requests are being checked at once; nothing was read or stored, retry after Retry-After",
            );
            busy.retry_after = Some(1);
            busy.into_response()
        }
    }
}
