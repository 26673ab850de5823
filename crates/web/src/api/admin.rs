//! `/admin/v1`: the platform operator manages tenants. It sees tenants and
//! their totals, never content or recipients.

use crate::AppState;
use crate::auth::AdminAuth;
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kuvert_domain::identity::OrganisationNumber;
use kuvert_domain::ids::TenantId;
use kuvert_domain::status::StatusCounts;
use kuvert_relay::tenancy::{Tenancy, TenancyError};
use kuvert_store::quotas::{Dimension, Quota, Setting};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/tenants", get(list).post(create))
        .route("/admin/v1/operators", get(operators))
        .route("/admin/v1/tenants/{id}/suspend", post(suspend))
        .route("/admin/v1/tenants/{id}/resume", post(resume))
        .route("/admin/v1/tenants/{id}/quota", get(quota).put(set_quota))
        .route(
            "/admin/v1/tenants/{id}/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/admin/v1/tenants/{id}/credentials/{credential}",
            delete(revoke_credential),
        )
        .route("/admin/v1/tenants/{id}/senders", post(add_sender))
        .route(
            "/admin/v1/tenants/{id}/senders/{sender}",
            delete(remove_sender),
        )
        .route("/admin/v1/tenants/{id}/keys", post(add_key))
        .route("/admin/v1/tenants/{id}/keys/{key}", delete(revoke_key))
        .route("/admin/v1/tenants/{id}/web-senders", post(grant_web_sender))
        .route(
            "/admin/v1/tenants/{id}/web-senders/{grant}",
            delete(revoke_web_sender),
        )
        .route("/admin/v1/tenants/{id}/web-keys", post(create_web_key))
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Store(s) => s.into(),
            TenancyError::UnknownTenant | TenancyError::UnknownSender => ApiError::not_found(),
            TenancyError::BadPublicKey => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_public_key",
                e.to_string(),
            ),
            TenancyError::BadSenderScope => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_sender_scope",
                e.to_string(),
            ),
            TenancyError::SenderRemoved => {
                ApiError::new(StatusCode::CONFLICT, "sender_removed", e.to_string())
            }
            TenancyError::SenderTaken => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            TenancyError::SenderChanged => {
                ApiError::new(StatusCode::CONFLICT, "sender_changed", e.to_string())
            }
            TenancyError::AlreadyGranted => {
                ApiError::new(StatusCode::CONFLICT, "already_granted", e.to_string())
            }
        }
    }
}

fn tenancy(state: &AppState) -> Result<Tenancy, ApiError> {
    let core = state.core()?;
    Ok(Tenancy {
        db: core.db.clone(),
        clock: state.0.clock.clone(),
        register_key: core.register_key.clone(),
    })
}

fn tenant_id(text: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(text).map_err(|_| ApiError::not_found())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: String,
    /// Today's delivery totals (UTC).
    pub today: StatusCounts,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// A slug: 2–64 of a-z, 0-9, '-'.
    pub id: String,
    pub name: String,
}

/// All tenants with today's totals.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "admin",
    responses((status = 200, body = Vec<TenantView>), (status = 401, body = Problem)), security(("admin" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: AdminAuth,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    let core = state.core()?;
    let today = state.clock().today();
    let mut views = Vec::new();
    for t in core.db.tenants().await? {
        let counts = core.db.daily_counts(&t.id, today).await?;
        views.push(TenantView {
            id: t.id.to_string(),
            name: t.name,
            status: t.status.as_str().to_owned(),
            created_at: kuvert_domain::clock::format_instant(t.created_at),
            today: counts,
        });
    }
    Ok(Json(views))
}

/// A mailbox operator as the relay sees it, and every audited change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorView {
    pub id: String,
    pub name: String,
    pub delivery_url: String,
    pub receipt_key_id: String,
    pub sealing_key_id: String,
    /// Whether the row verifies under the register's certificate: a row
    /// that does not gets no mail (someone changed it behind the register).
    pub certified: bool,
    /// Registrations and changes, oldest first, from the audit log.
    pub changes: Vec<OperatorChangeView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorChangeView {
    pub at: String,
    /// `operator.registered` or `operator.changed`.
    pub action: String,
    /// Address and key ids after the change (and before, for a change).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Mailbox operators: address, key ids, whether the register's certificate
/// still verifies, and every change of address or keys (none is taken
/// silently).
#[utoipa::path(get, path = "/admin/v1/operators", tag = "admin",
    responses((status = 200, body = Vec<OperatorView>), (status = 401, body = Problem)), security(("admin" = [])))]
pub async fn operators(
    State(state): State<AppState>,
    _: AdminAuth,
) -> Result<Json<Vec<OperatorView>>, ApiError> {
    let core = state.core()?;
    let trusted =
        kuvert_mailbox::certificate::TrustedRegisters::new(vec![core.register_key.public_key()]);
    let key_id = |b64: &str, sealing: bool| {
        if sealing {
            kuvert_crypto::sealing::SealingPublicKey::from_base64(b64).map(|k| k.key_id())
        } else {
            kuvert_crypto::signing::PublicKey::from_base64(b64).map(|k| k.key_id())
        }
        .unwrap_or_else(|_| "invalid".to_owned())
    };
    let mut views = Vec::new();
    for operator in core.db.operators().await? {
        let changes = core
            .db
            .operator_changes(&operator.id)
            .await?
            .into_iter()
            .map(|(at, action, detail)| OperatorChangeView {
                at,
                action,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        views.push(OperatorView {
            certified: kuvert_relay::intake::operator_certified(&operator, &trusted),
            receipt_key_id: key_id(&operator.receipt_key, false),
            sealing_key_id: key_id(&operator.sealing_key, true),
            id: operator.id.to_string(),
            name: operator.name,
            delivery_url: operator.delivery_url,
            changes,
        });
    }
    Ok(Json(views))
}

/// Create a tenant.
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "admin", request_body = CreateTenant,
    responses((status = 201), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("admin" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    ApiJson(request): ApiJson<CreateTenant>,
) -> Result<StatusCode, ApiError> {
    let id = TenantId::parse(&request.id).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_tenant_id",
            e.to_string(),
        )
    })?;
    tenancy(&state)?
        .create_tenant("platform-operator", &id, &request.name)
        .await?;
    Ok(StatusCode::CREATED)
}

/// Suspend a tenant: its requests are refused, its queued deliveries held.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/suspend", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("admin" = [])))]
pub async fn suspend(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tenancy(&state)?
        .set_suspended("platform-operator", &tenant_id(&id)?, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resume a suspended tenant; held deliveries go out.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/resume", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("admin" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tenancy(&state)?
        .set_suspended("platform-operator", &tenant_id(&id)?, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    pub label: String,
    /// The only senders (organisation numbers, 1 to 100) the credential may
    /// send as and read the deliveries of; absent = every sender of the tenant.
    #[serde(default)]
    pub senders: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialCreated {
    pub id: String,
    /// Shown once: `Authorization: Bearer <token>`.
    pub token: String,
    /// The senders it is scoped to (canonical, sorted); `null` = all.
    pub senders: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The senders it is scoped to; `null` = every sender of the tenant.
    pub senders: Option<Vec<String>>,
}

/// Parses organisation numbers, naming the first bad one.
fn organisation_numbers(texts: &[String]) -> Result<Vec<OrganisationNumber>, ApiError> {
    texts
        .iter()
        .map(|text| {
            OrganisationNumber::parse(text).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_sender_id",
                    format!("sender {text:?}: {e}"),
                )
            })
        })
        .collect()
}

/// Create an API credential for a tenant, for all its senders or only the
/// named ones (each must be a sender of the tenant: 422 `unknown_sender`).
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/credentials", tag = "admin", request_body = CreateCredential,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, body = CredentialCreated), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("admin" = [])))]
pub async fn create_credential(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CredentialCreated>), ApiError> {
    let tenant = tenant_id(&id)?;
    // The count first: a list of a million ids is refused before parsing.
    let max = kuvert_store::tenants::MAX_CREDENTIAL_SENDERS;
    if let Some(senders) = &request.senders
        && (senders.is_empty() || senders.len() > max)
    {
        return Err(TenancyError::BadSenderScope.into());
    }
    let senders = request
        .senders
        .as_deref()
        .map(organisation_numbers)
        .transpose()?;
    let created = tenancy(&state)?
        .create_scoped_credential(
            "platform-operator",
            &tenant,
            &request.label,
            senders.as_deref(),
        )
        .await
        .map_err(|e| match e {
            TenancyError::UnknownSender => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sender",
                "a named sender is not a sender of this tenant (or was removed from it)",
            ),
            e => e.into(),
        })?;
    let mut scope: Option<Vec<String>> =
        senders.map(|list| list.iter().map(|s| s.as_str().to_owned()).collect());
    if let Some(list) = &mut scope {
        list.sort_unstable();
        list.dedup();
    }
    Ok((
        StatusCode::CREATED,
        Json(CredentialCreated {
            id: created.id,
            token: created.token,
            senders: scope,
        }),
    ))
}

/// A tenant's credentials, oldest first, with their sender scope (never a
/// secret: only its hash is stored).
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/credentials", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("admin" = [])))]
pub async fn list_credentials(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    let core = state.core()?;
    let tenant = tenant_id(&id)?;
    if core.db.tenant(&tenant).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let views = core
        .db
        .credentials(&tenant)
        .await?
        .into_iter()
        .map(|c| CredentialView {
            id: c.id,
            label: c.label,
            created_at: kuvert_domain::clock::format_instant(c.created_at),
            revoked_at: c.revoked_at.map(kuvert_domain::clock::format_instant),
            senders: c.senders,
        })
        .collect();
    Ok(Json(views))
}

/// Revoke a credential; the next request with it is refused.
#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/credentials/{credential}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id"), ("credential" = String, Path, description = "Credential id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("admin" = [])))]
pub async fn revoke_credential(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((id, credential)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tenancy(&state)?
        .revoke_credential("platform-operator", &tenant_id(&id)?, &credential)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSender {
    /// The sender's organisation number.
    pub id: String,
    pub name: String,
    /// Bring back a sender removed from a tenant (this one or another);
    /// without it such a sender is refused with 409 `sender_removed`.
    #[serde(default)]
    pub reinstate: bool,
}

/// Add a sender the tenant may send for. A sender of another tenant is 409
/// `conflict`; one removed from a tenant is 409 `sender_removed` unless
/// `reinstate` is set (its old history stays hidden from the new tenant).
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/senders", tag = "admin", request_body = AddSender,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)), security(("admin" = [])))]
pub async fn add_sender(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AddSender>,
) -> Result<StatusCode, ApiError> {
    let sender = OrganisationNumber::parse(&request.id).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sender_id",
            format!("sender: {e}"),
        )
    })?;
    tenancy(&state)?
        .add_sender(
            "platform-operator",
            &tenant_id(&id)?,
            &sender,
            &request.name,
            request.reinstate,
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// Remove a sender from a tenant: its signing keys are revoked (with the
/// register's signed revocations, so mailbox operators refuse what they
/// have not received yet), sends as it are refused with 403
/// `sender_not_allowed`, and its deliveries, status events and statistics
/// are no longer shown to the tenant. Nothing is deleted: the rows stay as
/// evidence. Its queued deliveries are ended by the delivery worker, as for
/// any revoked key.
#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/senders/{sender}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id"), ("sender" = String, Path, description = "The sender's organisation number")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("admin" = [])))]
pub async fn remove_sender(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((id, sender)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let sender = OrganisationNumber::parse(&sender).map_err(|_| ApiError::not_found())?;
    let revocations = tenancy(&state)?
        .remove_sender("platform-operator", &tenant_id(&id)?, &sender)
        .await?;
    learn_revocations(&state, &revocations).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the built-in mailbox of revocations at once; it also learns them
/// from the register's list on its next fetch, so a failure is only logged.
async fn learn_revocations(
    state: &AppState,
    revocations: &[kuvert_mailbox::certificate::SenderKeyRevocation],
) {
    if revocations.is_empty() {
        return;
    }
    if let Some(mailbox) = &state.0.mailbox
        && let Err(e) = mailbox.learn_revocations(revocations).await
    {
        tracing::warn!(error = %e, "the built-in mailbox could not store a revocation now");
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    pub sender: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyAdded {
    pub key_id: String,
}

/// Register a sender's signing key.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/keys", tag = "admin", request_body = AddKey,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, body = KeyAdded), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)), security(("admin" = [])))]
pub async fn add_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<KeyAdded>), ApiError> {
    let sender = OrganisationNumber::parse(&request.sender).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sender_id",
            format!("sender: {e}"),
        )
    })?;
    let key_id = tenancy(&state)?
        .add_key(
            "platform-operator",
            &tenant_id(&id)?,
            &sender,
            &request.public_key,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(KeyAdded { key_id })))
}

/// Revoke a signing key; the next delivery signed with it is refused, and
/// mailbox operators refuse what was signed with it and has not reached them
/// yet (they learn the register's signed revocation at once in one process,
/// within seconds otherwise: `GET /register/v1/revocations`).
#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/keys/{key}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id"), ("key" = String, Path, description = "Key id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("admin" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let revocation = tenancy(&state)?
        .revoke_key("platform-operator", &tenant_id(&id)?, &key)
        .await?;
    learn_revocations(&state, &[revocation]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// One quota setting: a positive number, or `"unlimited"`. Absent or
/// `null` in a request: the installation's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum QuotaValue {
    Limit(u64),
    Unlimited(Unlimited),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unlimited {
    Unlimited,
}

/// A tenant's quotas, each replaced by what is given (absent or `null`: the
/// installation's default; see docs/reliability.md, "Quotas").
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaRequest {
    /// Deliveries accepted per UTC day (default 100 000).
    #[serde(default, alias = "max_per_day")]
    pub deliveries_per_day: Option<QuotaValue>,
    /// Deliveries per second, on average (default 50).
    #[serde(default, alias = "max_per_second")]
    pub deliveries_per_second: Option<QuotaValue>,
    /// Messages accepted per UTC day; a delivery holds up to 100 (default 500 000).
    #[serde(default)]
    pub messages_per_day: Option<QuotaValue>,
    /// Bytes of deliveries (canonical form) accepted per UTC day (default 10 GiB).
    #[serde(default)]
    pub bytes_per_day: Option<QuotaValue>,
    /// Deliveries in one batch request (default 1000; the API's own maximum is 10 000).
    #[serde(default, alias = "max_batch")]
    pub batch_size: Option<QuotaValue>,
    /// Recipient ids asked in reachability lookups per UTC day (default 200 000).
    #[serde(default)]
    pub lookup_ids_per_day: Option<QuotaValue>,
    /// Recipient ids asked in reachability lookups per second (default 1000).
    #[serde(default)]
    pub lookup_ids_per_second: Option<QuotaValue>,
}

impl QuotaRequest {
    fn fields(&self) -> [(Dimension, Option<QuotaValue>); 7] {
        [
            (Dimension::DeliveriesPerDay, self.deliveries_per_day),
            (Dimension::DeliveriesPerSecond, self.deliveries_per_second),
            (Dimension::MessagesPerDay, self.messages_per_day),
            (Dimension::BytesPerDay, self.bytes_per_day),
            (Dimension::BatchSize, self.batch_size),
            (Dimension::LookupIdsPerDay, self.lookup_ids_per_day),
            (Dimension::LookupIdsPerSecond, self.lookup_ids_per_second),
        ]
    }

    /// The settings, or why not: every number is positive.
    pub fn quota(&self) -> Result<Quota, ApiError> {
        let mut quota = Quota::default();
        for (dimension, value) in self.fields() {
            let setting = match value {
                None => Setting::Default,
                Some(QuotaValue::Unlimited(_)) => Setting::Unlimited,
                Some(QuotaValue::Limit(n)) => match i64::try_from(n) {
                    Ok(n) if n > 0 => Setting::Max(n),
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "bad_quota",
                            format!(
                                "{}: a quota is a number from 1 to {}, or \"unlimited\"",
                                dimension.as_str(),
                                i64::MAX
                            ),
                        ));
                    }
                },
            };
            quota.set(dimension, setting);
        }
        Ok(quota)
    }
}

/// Set a tenant's quotas: every dimension at once, a dimension left out takes
/// the installation's default. Exceeding one answers 429 `quota_exceeded`
/// with Retry-After, and the request is refused whole before any work.
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/quota", tag = "admin", request_body = QuotaRequest,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("admin" = [])))]
pub async fn set_quota(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<QuotaRequest>,
) -> Result<StatusCode, ApiError> {
    let quota = request.quota()?;
    tenancy(&state)?
        .set_quota("platform-operator", &tenant_id(&id)?, &quota)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One dimension of a tenant's quota.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotaLine {
    /// `deliveries_per_day`, `deliveries_per_second`, `messages_per_day`,
    /// `bytes_per_day`, `batch_size`, `lookup_ids_per_day` or
    /// `lookup_ids_per_second`.
    pub dimension: String,
    /// The tenant's own setting; `null`: the installation's default.
    pub setting: Option<QuotaValue>,
    /// The limit that applies; `null`: unlimited.
    pub effective: Option<i64>,
}

/// What a tenant used on a UTC day (deliveries, messages and bytes
/// accepted; recipient ids looked up).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsage {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub deliveries: i64,
    pub messages: i64,
    pub bytes: i64,
    pub lookup_ids: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    pub quotas: Vec<QuotaLine>,
    /// Today's use (UTC).
    pub today: QuotaUsage,
}

/// A tenant's quotas (its settings and what applies) and today's use.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/quota", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = QuotaView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("admin" = [])))]
pub async fn quota(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<QuotaView>, ApiError> {
    let core = state.core()?;
    let tenant = tenant_id(&id)?;
    if core.db.tenant(&tenant).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let quota = core.db.quota(&tenant).await?;
    let defaults = &core.relay.quota_defaults;
    let quotas = Dimension::ALL
        .into_iter()
        .map(|dimension| QuotaLine {
            dimension: dimension.as_str().to_owned(),
            setting: match quota.get(dimension) {
                Setting::Default => None,
                Setting::Unlimited => Some(QuotaValue::Unlimited(Unlimited::Unlimited)),
                Setting::Max(n) => Some(QuotaValue::Limit(n.unsigned_abs())),
            },
            effective: quota.limit(dimension, defaults),
        })
        .collect();
    let day = state.clock().today();
    let used = core.db.quota_usage(&tenant, day).await?;
    Ok(Json(QuotaView {
        quotas,
        today: QuotaUsage {
            day: day.to_string(),
            deliveries: used.deliveries,
            messages: used.messages,
            bytes: used.bytes,
            lookup_ids: used.lookup_ids,
        },
    }))
}

fn sender_number(text: &str) -> Result<OrganisationNumber, ApiError> {
    OrganisationNumber::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sender_id",
            format!("sender: {e}"),
        )
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantWebSender {
    /// The sender's organisation number (a sender of the tenant).
    pub sender: String,
    /// The person's personal identity or coordination number, any usual form.
    pub person: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebSenderGranted {
    /// The grant's id: revoke it with `DELETE …/web-senders/{grant}`.
    pub grant: String,
}

/// Give a person (logged in with e-ID) the sender role for one of the
/// tenant's senders: they may then send by hand from `/sender` and see
/// that sender's deliveries (decision 0020). 409 `already_granted` if they
/// hold it; 422 `unknown_sender` for a sender not the tenant's.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/web-senders", tag = "admin", request_body = GrantWebSender,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, body = WebSenderGranted), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("admin" = [])))]
pub async fn grant_web_sender(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<GrantWebSender>,
) -> Result<(StatusCode, Json<WebSenderGranted>), ApiError> {
    let tenant = tenant_id(&id)?;
    let sender = sender_number(&request.sender)?;
    let person =
        match kuvert_domain::identity::RecipientId::parse(&request.person, state.clock().today()) {
            Ok(kuvert_domain::identity::RecipientId::Person(person)) => person,
            Ok(_) | Err(_) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_person",
                    "person: not a valid personal identity or coordination number",
                ));
            }
        };
    let pseudonym = state.core()?.register.pseudonyms.pseudonym(person.as_str());
    let grant = tenancy(&state)?
        .grant_web_sender("platform-operator", &tenant, &sender, &person, &pseudonym)
        .await
        .map_err(|e| match e {
            TenancyError::UnknownSender => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sender",
                "the sender is not a sender of this tenant (or was removed from it)",
            ),
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(WebSenderGranted { grant })))
}

/// Take a person's sender role away: their very next request to the sender
/// pages is refused, and a send under way is refused at its commit.
#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/web-senders/{grant}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id"), ("grant" = String, Path, description = "The grant's id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)), security(("admin" = [])))]
pub async fn revoke_web_sender(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((id, grant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tenancy(&state)?
        .revoke_web_sender("platform-operator", &tenant_id(&id)?, &grant)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebKey {
    /// The sender's organisation number.
    pub sender: String,
}

/// Generate a sender's web sending key: the server keeps its private half
/// (encrypted) and signs what is sent from the sender pages with it; its
/// public half is a sender key certified by the register like any other.
/// The newest unrevoked one is used; revoke one like any key.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/web-keys", tag = "admin", request_body = CreateWebKey,
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, body = KeyAdded), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)), security(("admin" = [])))]
pub async fn create_web_key(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CreateWebKey>,
) -> Result<(StatusCode, Json<KeyAdded>), ApiError> {
    let sender = sender_number(&request.sender)?;
    let kek = state.core()?.web_sender_kek.clone();
    let key_id = tenancy(&state)?
        .create_web_key("platform-operator", &tenant_id(&id)?, &sender, &kek)
        .await?;
    Ok((StatusCode::CREATED, Json(KeyAdded { key_id })))
}
