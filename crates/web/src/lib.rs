//! kuvert's HTTP surface. Each resource is a module with its own `router()`;
//! [`router`] merges those of the roles this process runs. Errors map to HTTP
//! in [`error`], callers are typed extractors in [`auth`], and the whole
//! contract is published as OpenAPI ([`openapi`]), committed and checked for
//! drift by the tests.

pub mod api;
pub mod auth;
pub mod dev_idp;
pub mod error;
pub mod intake_budget;
pub mod json;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod session;
pub mod tokens;

use auth::RecipientTokens;
use axum::Router;
use axum::routing::get;
use error::ApiError;
use kuvert_domain::clock::Clock;
use kuvert_mailbox::Mailbox;
use kuvert_register::Register;
use kuvert_relay::Relay;
use kuvert_store::Db;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The largest request body of every endpoint without a limit of its own
/// (documented in the OpenAPI): 64 KiB; a lookup of 1000 ids is ~25 KiB.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// The register and relay roles, which share the core database.
pub struct Core {
    /// The register's certificate key (sender keys, operators, revocations).
    pub register_key: Arc<kuvert_crypto::signing::SigningKey>,
    pub db: Db,
    pub register: Arc<Register>,
    pub relay: Arc<Relay>,
    /// Opens the web sending keys the sender pages sign with (decision 0020).
    pub web_sender_kek: Arc<kuvert_crypto::at_rest::KeyEncryptionKey>,
}

pub struct Inner {
    pub clock: Arc<dyn Clock>,
    pub core: Option<Core>,
    pub mailbox: Option<Arc<Mailbox>>,
    pub recipient_tokens: RecipientTokens,
    /// SHA-256 of the platform operator's admin token, if one is set.
    pub admin_token_hash: Option<[u8; 32]>,
    /// Off while the mailbox is in maintenance: deliveries get 503 and the
    /// relay retries later.
    pub mailbox_open: AtomicBool,
    /// Audit logs whose checkpointer stopped signing (`/ready` says so).
    pub audit_alarm: Arc<AuditAlarm>,
    /// Send requests in flight, bounded (see [`intake_budget`]).
    pub intake_budget: intake_budget::IntakeBudget,
    /// The e-ID login's relying party (none: no `/login`).
    pub login: Option<Arc<oidc::RelyingParty>>,
    /// The development identity provider (demo only).
    pub dev_idp: Option<Arc<dev_idp::DevIdp>>,
    /// Web session limits and cookie flags.
    pub sessions: session::SessionSettings,
    /// Mail exports running on this node (see
    /// [`pages::export::MAX_CONCURRENT_EXPORTS`]).
    pub export_slots: Arc<tokio::sync::Semaphore>,
}

/// Which audit logs no longer verify at their checkpointer, and why: it
/// then signs nothing more, and `/ready` answers 503 until someone looks.
#[derive(Debug, Default)]
pub struct AuditAlarm(std::sync::Mutex<std::collections::BTreeMap<String, String>>);

impl AuditAlarm {
    pub fn raise(&self, database: &str, reason: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(database.to_owned(), reason.into());
    }

    /// The databases raised, with their reasons.
    pub fn raised(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl AppState {
    pub fn core(&self) -> Result<&Core, ApiError> {
        self.0.core.as_ref().ok_or_else(ApiError::not_found)
    }
    pub fn mailbox(&self) -> Result<&Arc<Mailbox>, ApiError> {
        self.0.mailbox.as_ref().ok_or_else(ApiError::not_found)
    }
    pub fn clock(&self) -> &dyn Clock {
        self.0.clock.as_ref()
    }
    pub fn recipient_tokens(&self) -> &RecipientTokens {
        &self.0.recipient_tokens
    }
    pub fn admin_token_hash(&self) -> Option<&[u8; 32]> {
        self.0.admin_token_hash.as_ref()
    }
    pub fn set_mailbox_open(&self, open: bool) {
        self.0.mailbox_open.store(open, Ordering::SeqCst);
    }
    pub fn mailbox_open(&self) -> bool {
        self.0.mailbox_open.load(Ordering::SeqCst)
    }
    pub fn login(&self) -> Option<&Arc<oidc::RelyingParty>> {
        self.0.login.as_ref()
    }
    pub fn dev_idp(&self) -> Option<&Arc<dev_idp::DevIdp>> {
        self.0.dev_idp.as_ref()
    }
    pub fn sessions(&self) -> &session::SessionSettings {
        &self.0.sessions
    }
}

/// Every body not given a limit of its own (deliveries, batches, the
/// mailbox's delivery endpoint) is small: registration, reachability, admin
/// calls. A larger `Content-Length` is refused with 413 before anything is
/// read (axum's own limit would read up to it first).
fn small_bodies(router: Router<AppState>) -> Router<AppState> {
    router.layer(tower_http::limit::RequestBodyLimitLayer::new(
        SMALL_BODY_LIMIT,
    ))
}

/// All routes of the roles present in `state`.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .merge(api::health::router())
        .route("/openapi.json", get(openapi::serve));
    if state.0.core.is_some() {
        // Send requests are charged against the intake budget before their
        // bodies are read.
        let charged = |router: Router<AppState>, limit: usize| {
            router.layer(axum::middleware::from_fn_with_state(
                (state.clone(), limit),
                intake_budget::charge,
            ))
        };
        app = app
            .merge(charged(
                api::deliveries::send_router(),
                api::deliveries::SINGLE_BODY_LIMIT,
            ))
            .merge(api::deliveries::router())
            .merge(charged(
                api::batches::send_router(),
                api::batches::BATCH_BODY_LIMIT,
            ))
            .merge(api::batches::router())
            .merge(api::status_feed::router())
            .merge(small_bodies(api::reachability::router()))
            .merge(api::keys::router())
            .merge(small_bodies(api::tenant::router()))
            .merge(small_bodies(api::recipient_profile::router()))
            .merge(small_bodies(api::admin::router()));
    }
    if state.0.mailbox.is_some() {
        app = app.merge(api::mailbox::router());
    }
    // The APIs answer problems; the pages (and the development provider's
    // OAuth errors) answer as browsers and OAuth clients expect, so they
    // are merged outside that layer.
    let mut app = app.layer(axum::middleware::from_fn(error::problems_only));
    if state.0.core.is_some() {
        // The sender pages' form carries attachments: its own limit, and
        // charged against the intake budget like an API send.
        let send_form = pages::sender::send_router().layer(axum::middleware::from_fn_with_state(
            (state.clone(), pages::sender::MAX_FORM_BYTES),
            intake_budget::charge,
        ));
        let mut web = small_bodies(pages::router())
            .merge(send_form)
            .merge(oidc::jwks::router());
        if state.0.dev_idp.is_some() {
            web = web.merge(small_bodies(dev_idp::router()));
        }
        app = app.merge(web.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::render_errors,
        )));
    }
    app.layer(axum::middleware::from_fn(session::security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
