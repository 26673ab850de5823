//! One error type for every API, mapped to HTTP once: `application/problem+json`
//! with a stable `code` a client can act on. A 5xx reveals nothing of the
//! cause; it is logged instead.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kuvert_mailbox::MailboxError;
use kuvert_register::RegisterError;
use kuvert_relay::IntakeError;
use kuvert_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// The delivery the refusal points to (see [`Problem::delivery_id`]).
    pub delivery_id: Option<String>,
}

/// The body of every error answer (RFC 9457).
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable reason, e.g. `signature_invalid`.
    pub code: String,
    pub detail: String,
    /// For `duplicate_delivery` and `idempotency_key_reused`: the delivery
    /// accepted first, which the refused one would have repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            delivery_id: None,
        }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }
    pub fn unavailable() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "storage is not accepting writes; nothing was stored, retry later",
        );
        error.retry_after = Some(5);
        error
    }
    pub fn problem(&self) -> Problem {
        Problem {
            title: self.status.canonical_reason().unwrap_or("error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
            delivery_id: self.delivery_id.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let retry_after = match (self.retry_after, self.status) {
            (Some(seconds), _) => Some(seconds),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        if let Some(seconds) = retry_after.filter(|s| *s > 0) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict => {
                Self::new(StatusCode::CONFLICT, "conflict", "it already exists")
            }
            StoreError::ListFull { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "list_full", e.to_string())
            }
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "storage unavailable");
                Self::unavailable()
            }
            e => {
                tracing::error!(error = %e, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        let status = match &e {
            IntakeError::Invalid(kuvert_domain::delivery::DeliveryError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IntakeError::Invalid(_)
            | IntakeError::Unreadable(_)
            | IntakeError::UnknownKey(_)
            | IntakeError::BadSignature
            | IntakeError::MissingIdempotencyKey
            | IntakeError::BadIdempotencyKey => StatusCode::UNPROCESSABLE_ENTITY,
            IntakeError::SenderNotAllowed(_)
            | IntakeError::KeyNotForSender(_)
            | IntakeError::KeyRevoked(_)
            | IntakeError::KeyNotCertified(_) => StatusCode::FORBIDDEN,
            IntakeError::Withdrawn(kuvert_store::relay::Withdrawn::TenantSuspended) => {
                StatusCode::FORBIDDEN
            }
            IntakeError::Withdrawn(_) => StatusCode::UNAUTHORIZED,
            // The installation cannot vouch for where the mail would go:
            // nothing is sealed; the sender may try again later.
            IntakeError::OperatorNotCertified(_) => StatusCode::SERVICE_UNAVAILABLE,
            IntakeError::IdempotencyKeyReused(first) | IntakeError::DuplicateDelivery(first) => {
                let mut error = Self::new(StatusCode::CONFLICT, e.code(), e.to_string());
                error.delivery_id = Some(first.to_string());
                return error;
            }
            IntakeError::QuotaExceeded {
                retry_after_seconds,
                ..
            } => {
                let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, e.code(), e.to_string());
                error.retry_after = Some(*retry_after_seconds);
                return error;
            }
            IntakeError::Store(_)
            | IntakeError::Register(_)
            | IntakeError::Sealing(_)
            | IntakeError::Interrupted(_) => {
                return match e {
                    IntakeError::Store(s) => s.into(),
                    IntakeError::Register(r) => r.into(),
                    other => {
                        tracing::error!(error = %other, "intake failed");
                        Self::internal()
                    }
                };
            }
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Store(s) => s.into(),
            RegisterError::TooManyRecipients { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_recipients",
                e.to_string(),
            ),
            RegisterError::TooYoung { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "too_young", e.to_string())
            }
            RegisterError::UnknownOperator => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_operator",
                e.to_string(),
            ),
            RegisterError::NotRegistered => {
                Self::new(StatusCode::CONFLICT, "not_registered", e.to_string())
            }
            RegisterError::QuotaExceeded(refusal) => {
                let mut error = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exceeded",
                    e.to_string(),
                );
                error.retry_after = Some(refusal.retry_after_seconds);
                error
            }
        }
    }
}

impl From<MailboxError> for ApiError {
    fn from(e: MailboxError) -> Self {
        match e {
            MailboxError::Store(s) => s.into(),
            MailboxError::NotFound => Self::not_found(),
            MailboxError::Decrypt => {
                tracing::error!("stored message could not be decrypted");
                Self::internal()
            }
            // Logged where it was found, with the message id; the recipient
            // learns that this message of theirs cannot be shown, and why.
            MailboxError::AtRest(
                kuvert_mailbox::at_rest::AtRestError::Tampered { message_id }
                | kuvert_mailbox::at_rest::AtRestError::UnknownFormat { message_id, .. },
            ) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "stored_message_integrity",
                format!(
                    "message {message_id} does not match what the mailbox stored for it \
                     and is not shown; the error is logged for the mailbox operator"
                ),
            ),
            MailboxError::TooManyDeliveries { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_deliveries",
                e.to_string(),
            ),
            MailboxError::AtRest(kuvert_mailbox::at_rest::AtRestError::Encrypt) => {
                tracing::error!("encryption at rest failed");
                Self::internal()
            }
        }
    }
}

/// Makes every error answer a problem, including those axum gives before a
/// handler runs (a path segment or query string that does not parse, an
/// unknown path or method), which are plain text or empty. Found by the
/// contract fuzzing: `?limit=x` answered `400 text/plain`.
pub async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, detail) = match status {
        _ if status.is_server_error() => ("internal", "an internal error occurred".to_owned()),
        StatusCode::BAD_REQUEST => ("bad_request", text),
        StatusCode::NOT_FOUND => ("not_found", "no such resource".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => ("request_too_large", text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_request", text),
        _ => ("error", text),
    };
    let mut problem = ApiError::new(status, code, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}
