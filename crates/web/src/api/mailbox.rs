//! The mailbox operator's two faces: the delivery API relays call
//! (`POST /mailbox/v1/deliveries`, authenticated by the relay's seal on each
//! delivery) and the recipient API (`/mailbox/v1/messages`).

use crate::AppState;
use crate::auth::{MailManage, MailRead, RecipientAuth, RelayAuth};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use kuvert_domain::ids::MailboxMessageId;
use kuvert_mailbox::protocol::{DeliverRequest, DeliverResponse};
use kuvert_mailbox::reading::{MessagePage, MessageView};
use kuvert_store::mailbox::Folder;
use serde::Deserialize;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::IntoParams;

/// The largest request a relay may send (a relay keeps each request to
/// 32 MiB of sealed deliveries, plus JSON framing). A larger
/// `Content-Length` is refused with 413 before anything is read.
pub const DELIVER_BODY_LIMIT: usize = 40 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/mailbox/v1/deliveries",
            post(deliver)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
                .layer(RequestBodyLimitLayer::new(DELIVER_BODY_LIMIT)),
        )
        .route("/mailbox/v1/messages", get(list))
        .route("/mailbox/v1/messages/{id}", get(read).delete(delete))
        .route(
            "/mailbox/v1/messages/{id}/attachments/{index}",
            get(attachment),
        )
        .route(
            "/mailbox/v1/messages/{id}/archive",
            post(archive).delete(unarchive),
        )
}

/// Accept sealed deliveries from a relay; answers a signed receipt per
/// delivery (the legal moment of delivery) or a permanent refusal. The
/// relay's credential is checked before the body is read (at most 40 MiB);
/// each delivery's seal is checked before anything is answered for it, and
/// a delivery id seen before is answered with its first receipt.
#[utoipa::path(post, path = "/mailbox/v1/deliveries", tag = "mailbox-operator", request_body = DeliverRequest,
    responses((status = 200, body = DeliverResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 413, description = "Over 40 MiB", body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("relay" = [])))]
pub async fn deliver(
    State(state): State<AppState>,
    _relay: RelayAuth,
    ApiJson(request): ApiJson<DeliverRequest>,
) -> Result<Json<DeliverResponse>, ApiError> {
    if !state.mailbox_open() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "maintenance",
            "the mailbox is in maintenance; retry later",
        ));
    }
    let results = state.mailbox()?.accept(request.deliveries).await?;
    Ok(Json(DeliverResponse { results }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `inbox` (default) or `archive`.
    pub folder: Option<String>,
    /// 1-based page number.
    pub page: Option<i64>,
    /// 1–100, default 20.
    pub page_size: Option<i64>,
}

fn message_id(text: &str) -> Result<MailboxMessageId, ApiError> {
    MailboxMessageId::parse(text).map_err(|_| ApiError::not_found())
}

/// The caller's messages, newest first, with the unread count.
#[utoipa::path(get, path = "/mailbox/v1/messages", tag = "recipient", params(ListQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("recipient" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: RecipientAuth<MailRead>,
    Query(query): Query<ListQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let folder = match query.folder.as_deref() {
        None | Some("inbox") => Folder::Inbox,
        Some("archive") => Folder::Archive,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_folder",
                "folder is inbox or archive",
            ));
        }
    };
    let page = state
        .mailbox()?
        .list(
            &auth.recipient,
            folder,
            query.page.unwrap_or(1),
            query.page_size.unwrap_or(20),
        )
        .await?;
    Ok(Json(page))
}

/// Open one message (marks it read). Another recipient's message answers 404.
#[utoipa::path(get, path = "/mailbox/v1/messages/{id}", tag = "recipient",
    params(("id" = String, Path, description = "The message id")),
    responses((status = 200, body = MessageView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("recipient" = [])))]
pub async fn read(
    State(state): State<AppState>,
    auth: RecipientAuth<MailRead>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(
        state
            .mailbox()?
            .read(&auth.recipient, &message_id(&id)?)
            .await?,
    ))
}

/// Download an attachment.
#[utoipa::path(get, path = "/mailbox/v1/messages/{id}/attachments/{index}", tag = "recipient",
    params(("id" = String, Path, description = "The message id"), ("index" = usize, Path, description = "0-based")),
    responses((status = 200, description = "The file, with the media type it was sent with", content_type = "*/*"),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("recipient" = [])))]
pub async fn attachment(
    State(state): State<AppState>,
    auth: RecipientAuth<MailRead>,
    Path((id, index)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let file = state
        .mailbox()?
        .attachment(&auth.recipient, &message_id(&id)?, index)
        .await?;
    attachment_response(file).map_err(|_| ApiError::internal())
}

/// An attachment as both the API and the web pages send it: downloaded
/// under its name, never sniffed or shown inline.
pub(crate) fn attachment_response(
    file: kuvert_mailbox::reading::AttachmentFile,
) -> Result<Response, axum::http::Error> {
    // The name was checked at intake (no separators, quotes or controls are
    // possible in a valid name except '"', which is escaped here).
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.filename.replace('"', "_")
    );
    Response::builder()
        .header(header::CONTENT_TYPE, file.content_type)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // Mail content stays out of every cache (a shared computer's too).
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(file.bytes))
}

/// Move to the archive.
#[utoipa::path(post, path = "/mailbox/v1/messages/{id}/archive", tag = "recipient",
    params(("id" = String, Path, description = "The message id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("recipient" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    auth: RecipientAuth<MailManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .mailbox()?
        .archive(&auth.recipient, &message_id(&id)?, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Move back to the inbox.
#[utoipa::path(delete, path = "/mailbox/v1/messages/{id}/archive", tag = "recipient",
    params(("id" = String, Path, description = "The message id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("recipient" = [])))]
pub async fn unarchive(
    State(state): State<AppState>,
    auth: RecipientAuth<MailManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .mailbox()?
        .archive(&auth.recipient, &message_id(&id)?, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a message: its content and key are erased.
#[utoipa::path(delete, path = "/mailbox/v1/messages/{id}", tag = "recipient",
    params(("id" = String, Path, description = "The message id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("recipient" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: RecipientAuth<MailManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .mailbox()?
        .delete(&auth.recipient, &message_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
