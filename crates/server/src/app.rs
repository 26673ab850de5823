//! Start-up and shutdown: open the databases, load keys, wire the roles,
//! register the built-in mailbox operator, start the delivery worker and the
//! audit checkpointer, and serve HTTP.

use crate::audit_log::{AuditGuard, WitnessClient, WitnessConfig, checkpoint_file};
use crate::keys::Keys;
use anyhow::Context as _;
use kuvert_crypto::digest::hash_secret;
use kuvert_domain::clock::{Clock, SystemClock};
use kuvert_domain::delivery::DeliveryLimits;
use kuvert_domain::ids::OperatorId;
use kuvert_mailbox::Mailbox;
use kuvert_mailbox::certificate::TrustedRegisters;
use kuvert_register::Register;
use kuvert_relay::worker::{Transport, TransportError, check_delivery_url};
use kuvert_relay::{DeliveryWorker, Relay, RetryPolicy};
use kuvert_store::register::{INSTALLATION_KEY_OWNER, KeyToPublish, Operator};
use kuvert_store::{Db, Schema};
use kuvert_web::auth::RecipientTokens;
use kuvert_web::{AppState, AuditAlarm, Core, Inner};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The id of the mailbox operator kuvert ships.
pub const BUILT_IN_OPERATOR: &str = "kuvert-brevlada";

/// An audit checkpoint is signed once this many entries follow the last one,
/// even before [`Settings::audit_checkpoint_every`] has passed: a busy node
/// (or one restarted more often than the interval) never leaves a long
/// unsigned tail, whose truncation would go unnoticed.
pub const AUDIT_CHECKPOINT_AFTER_ENTRIES: i64 = 1000;

/// How long one fetch of the register's revocations may take.
const REVOCATION_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the audit checkpointer looks at the number of unsigned entries
/// (one cheap read, not one per write).
const AUDIT_CHECKPOINT_POLL: Duration = Duration::from_secs(1);

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Register and relay (they share the core database).
    pub core: bool,
    /// The built-in mailbox operator.
    pub mailbox: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        core: true,
        mailbox: true,
    };

    /// Parses `core,mailbox` (also `register`/`relay` for `core`, and `all`).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut roles = Roles {
            core: false,
            mailbox: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => roles = Roles::ALL,
                "core" | "register" | "relay" => roles.core = true,
                "mailbox" => roles.mailbox = true,
                other => anyhow::bail!(
                    "unknown role {other:?}: use core (register + relay), mailbox or all"
                ),
            }
        }
        anyhow::ensure!(roles.core || roles.mailbox, "no role given");
        Ok(roles)
    }
}

#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The URL others reach this process at; defaults to the bound address.
    pub public_url: Option<String>,
    pub roles: Roles,
    /// Where the relay delivers to the built-in mailbox, when the mailbox
    /// runs in another process; defaults to this process's URL.
    pub mailbox_url: Option<String>,
    /// Create demo tenants, senders and recipients on start (idempotent).
    pub demo: bool,
    /// Create the key files that are missing before loading them (what
    /// `kuvert keys init` does). Only `--demo` sets it: otherwise a missing
    /// key file stops the start, naming the file.
    pub create_missing_keys: bool,
    pub retry: RetryPolicy,
    pub limits: DeliveryLimits,
    /// Send requests in flight at once (bytes of body) and how long one
    /// waits for room.
    pub intake_budget: kuvert_web::intake_budget::IntakeBudgetSettings,
    /// The quotas of a tenant that set none (decision 0015; the documented
    /// numbers unless changed here).
    pub quota_defaults: kuvert_store::quotas::QuotaDefaults,
    /// The platform operator's admin token (`kva_…`); no admin API without it.
    pub admin_token: Option<String>,
    /// Where the mailbox fetches the register's revocations; defaults to
    /// this process's URL when it runs the core role too.
    pub register_url: Option<String>,
    /// How often the mailbox fetches them.
    pub revocation_poll: Duration,
    /// The longest time between two audit checkpoints (while entries come).
    pub audit_checkpoint_every: Duration,
    /// Sign a checkpoint once this many entries are unsigned
    /// ([`AUDIT_CHECKPOINT_AFTER_ENTRIES`] by default).
    pub audit_checkpoint_entries: i64,
    /// The witness each audit checkpoint is sent to, and its pinned key;
    /// none: checkpoints stay on this host (a warning says so at start).
    pub witness: Option<WitnessConfig>,
    pub clock: Arc<dyn Clock>,
    /// Serve HTTPS with this PEM certificate chain (leaf first) and
    /// [`tls_key`](Self::tls_key); both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM certificates the relay trusts for mailbox operators besides the
    /// built-in webpki roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Deliver to `http://` operator addresses. Off outside the demo and
    /// tests: plain HTTP carries identity numbers, sender ids and receipts.
    /// Also lets the e-ID relying party talk to an `http://` issuer.
    pub allow_plain_http: bool,
    /// The production e-ID provider (`--oidc-issuer` and friends); none and
    /// no [`dev_idp`](Self::dev_idp): no `/login`.
    pub oidc: Option<kuvert_web::oidc::OidcSettings>,
    /// Run the development identity provider at `<public URL>/dev-idp` and
    /// log in with it (`--dev-idp`; `--demo` sets it). Refused together
    /// with [`oidc`](Self::oidc).
    pub dev_idp: bool,
    /// Web session limits (idle, absolute); the cookie flags follow the
    /// public URL's scheme.
    pub sessions: kuvert_web::session::SessionSettings,
}

impl Settings {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            roles: Roles::ALL,
            mailbox_url: None,
            demo: false,
            create_missing_keys: false,
            retry: RetryPolicy::default(),
            limits: DeliveryLimits::default(),
            intake_budget: Default::default(),
            quota_defaults: Default::default(),
            admin_token: None,
            register_url: None,
            revocation_poll: Duration::from_secs(5),
            audit_checkpoint_every: Duration::from_secs(10),
            audit_checkpoint_entries: AUDIT_CHECKPOINT_AFTER_ENTRIES,
            witness: None,
            clock: Arc::new(SystemClock),
            tls_cert: None,
            tls_key: None,
            ca_file: None,
            allow_plain_http: false,
            oidc: None,
            dev_idp: false,
            sessions: Default::default(),
        }
    }
}

/// A running instance.
pub struct Running {
    pub url: String,
    pub state: AppState,
    pub core_db: Option<Db>,
    pub mailbox_db: Option<Db>,
    pub keys: Arc<Keys>,
    pub demo: Option<crate::demo::DemoData>,
    /// One per database: its checkpointer's state.
    pub audit: Vec<Arc<AuditGuard>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Ends at once, as a crash would: the tasks are aborted, no last audit
    /// checkpoint is signed and the databases are not closed (for tests of
    /// what the next start finds).
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Stops serving, lets the worker finish its pass, signs a last audit
    /// checkpoint and closes the databases.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        for guard in &self.audit {
            guard.checkpoint(&SystemClock).await;
        }
        for db in [&self.core_db, &self.mailbox_db].into_iter().flatten() {
            db.close().await;
        }
    }
}

pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
    // The settings are checked before any key or database is touched.
    if let (true, Some(oidc)) = (settings.dev_idp, &settings.oidc) {
        return Err(
            kuvert_web::oidc::ConfigError::DevIdpWithProductionIssuer(oidc.issuer.clone()).into(),
        );
    }
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together: give both or neither"),
    };
    let transport = Transport {
        extra_roots_pem: match &settings.ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        },
        allow_plain_http: settings.allow_plain_http,
    };
    // Built once here: unusable trust roots stop the start before any key
    // or database is touched.
    let role_client = transport.client(REVOCATION_FETCH_TIMEOUT)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{bound}"));
    let mailbox_base = settings.mailbox_url.clone().unwrap_or_else(|| url.clone());
    let delivery_url = format!(
        "{}/mailbox/v1/deliveries",
        mailbox_base.trim_end_matches('/')
    );
    if settings.roles.core {
        // Refused here, at start-up, rather than by every delivery later.
        check_delivery_url(&delivery_url, settings.allow_plain_http).map_err(|error| {
            let hint = match error {
                TransportError::PlainHttp(_) => {
                    ": serve HTTPS (--tls-cert and --tls-key), give an https \
                     --public-url or --mailbox-url, or allow plain HTTP \
                     (--allow-plain-http, as --demo does)"
                }
                _ => "",
            };
            anyhow::anyhow!("the built-in mailbox's delivery address: {error}{hint}")
        })?;
    }
    if settings.create_missing_keys {
        for created in crate::keys::init(&settings.data_dir)? {
            tracing::info!(file = created.file, key_id = ?created.key_id, "created a missing key file");
        }
    }
    let keys = Arc::new(Keys::load_existing(&settings.data_dir)?);
    let clock = settings.clock.clone();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let alarm = Arc::new(AuditAlarm::default());
    let witness = match &settings.witness {
        Some(config) => Some(WitnessClient::new(config.clone())?),
        None => {
            tracing::warn!(
                "no audit witness configured (--witness): checkpoints stay on this host, so whoever can write both the databases and the data folder's audit/ files can rewrite the audit log unnoticed"
            );
            None
        }
    };
    let mut audit: Vec<Arc<AuditGuard>> = Vec::new();
    let guard_for = |name: &'static str, db: &Db| {
        Arc::new(AuditGuard::open(
            name,
            db.clone(),
            kuvert_crypto::signing::SigningKey::from_bytes(&keys.audit.to_bytes()),
            checkpoint_file(&settings.data_dir, name),
            alarm.clone(),
            witness.clone(),
        ))
    };

    let mailbox_db = if settings.roles.mailbox {
        Some(
            open_db(
                &settings.data_dir.join("mailbox.db"),
                Schema::Mailbox,
                &format!("mailbox/{BUILT_IN_OPERATOR}"),
                clock.as_ref(),
            )
            .await?,
        )
    } else {
        None
    };
    // What the last run left unsigned (a run that ended without a clean stop
    // signs no final checkpoint) is signed before this run writes anything,
    // after the log is checked against the checkpoint file.
    if let Some(db) = &mailbox_db {
        let guard = guard_for("mailbox", db);
        guard.checkpoint(clock.as_ref()).await;
        audit.push(guard);
    }
    let mailbox = match &mailbox_db {
        Some(db) => Some(Arc::new(Mailbox {
            db: db.clone(),
            clock: clock.clone(),
            operator_id: operator_id()?,
            sealing_key: kuvert_crypto::sealing::SealingPrivateKey::from_bytes(
                &keys.mailbox_sealing.to_bytes(),
            )?,
            receipt_key: kuvert_crypto::signing::SigningKey::from_bytes(
                &keys.mailbox_receipt.to_bytes(),
            ),
            kek: kuvert_crypto::at_rest::KeyEncryptionKey::from_bytes(&keys.mailbox_kek.to_bytes()),
            trusted_relays: vec![keys.relay_seal.public_key()],
            trusted_registers: trusted_registers(&keys),
            revoked_keys: Default::default(),
            relay_credentials: vec![hash_secret(&keys.relay_mailbox_credential)],
            limits: settings.limits.clone(),
        })),
        None => None,
    };
    if let Some(mailbox) = &mailbox {
        // Rows of the first encryption-at-rest format are bound to their
        // row before anything is served (decision 0012).
        mailbox.upgrade_legacy_rows().await?;
        mailbox.load_revocations().await?;
        // The register's revocations, fetched from it: in one process they
        // are also handed over at once (the admin API), but a revocation
        // made with the command line or by a register elsewhere arrives here.
        let register_url = settings
            .register_url
            .clone()
            .or_else(|| settings.roles.core.then(|| url.clone()));
        match register_url {
            Some(register_url) => tasks.push(tokio::spawn(revocation_sync(
                mailbox.clone(),
                role_client.clone(),
                register_url,
                settings.revocation_poll,
                shutdown_rx.clone(),
            ))),
            None => tracing::warn!(
                "the mailbox runs without the core role and no --register-url: it will not learn of revoked sender keys"
            ),
        }
    }

    let mut demo = None;
    let core_db = if settings.roles.core {
        Some(
            open_db(
                &settings.data_dir.join("kuvert.db"),
                Schema::Core,
                "core",
                clock.as_ref(),
            )
            .await?,
        )
    } else {
        None
    };
    if let Some(db) = &core_db {
        let guard = guard_for("core", db);
        guard.checkpoint(clock.as_ref()).await;
        audit.push(guard);
    }
    let core = match &core_db {
        Some(db) => {
            // Certified by the register's key, so that the relay seals to
            // and takes receipts from exactly these keys; a change is audited
            // and logged, never taken silently.
            kuvert_register::register_operator(
                db,
                &keys.register,
                Operator {
                    id: operator_id()?,
                    name: "Kuvert brevlåda".to_owned(),
                    delivery_url,
                    ui_url: mailbox_base.clone(),
                    sealing_key: keys.mailbox_sealing.public_key().to_base64(),
                    receipt_key: keys.mailbox_receipt.public_key().to_base64(),
                    certificate: None,
                },
                clock.now(),
            )
            .await?;
            // The installation's own keys, in the register's keys document.
            let seal_key_id = keys.relay_seal.public_key().key_id();
            let seal_key = keys.relay_seal.public_key().to_base64();
            let audit_key_id = keys.audit.public_key().key_id();
            let audit_key = keys.audit.public_key().to_base64();
            let register_key_id = keys.register.public_key().key_id();
            let register_key = keys.register.public_key().to_base64();
            db.publish_keys(
                INSTALLATION_KEY_OWNER,
                &[
                    KeyToPublish {
                        purpose: "relay_seal",
                        key_id: &seal_key_id,
                        public_key: &seal_key,
                    },
                    KeyToPublish {
                        purpose: "audit_checkpoint",
                        key_id: &audit_key_id,
                        public_key: &audit_key,
                    },
                    KeyToPublish {
                        purpose: "register_certificate",
                        key_id: &register_key_id,
                        public_key: &register_key,
                    },
                ],
                clock.now(),
            )
            .await?;
            // What start-up itself changed (the built-in operator's address
            // after a move, its keys after a rotation) is signed at once too.
            if let Some(guard) = audit.iter().find(|g| g.database() == "core") {
                guard.checkpoint(clock.as_ref()).await;
            }
            let register = Arc::new(Register {
                db: db.clone(),
                clock: clock.clone(),
                pseudonyms: Arc::new(keys.pseudonymizer()),
                quota_defaults: settings.quota_defaults,
            });
            let wake = Arc::new(Notify::new());
            let relay = Arc::new(Relay {
                db: db.clone(),
                clock: clock.clone(),
                register: register.clone(),
                limits: settings.limits.clone(),
                seal_key: kuvert_crypto::signing::SigningKey::from_bytes(
                    &keys.relay_seal.to_bytes(),
                ),
                trusted_registers: trusted_registers(&keys),
                paper_kek: kuvert_crypto::at_rest::KeyEncryptionKey::from_bytes(
                    &keys.paper_kek.to_bytes(),
                ),
                wake: wake.clone(),
                quota_defaults: settings.quota_defaults,
            });
            let credentials =
                HashMap::from([(operator_id()?, keys.relay_mailbox_credential.clone())]);
            let worker = DeliveryWorker::new(
                db.clone(),
                register.clone(),
                clock.clone(),
                settings.retry,
                wake,
                credentials,
                trusted_registers(&keys),
                &transport,
            )?;
            tasks.push(tokio::spawn(worker.run(shutdown_rx.clone())));
            let register_key = Arc::new(kuvert_crypto::signing::SigningKey::from_bytes(
                &keys.register.to_bytes(),
            ));
            let web_sender_kek = Arc::new(kuvert_crypto::at_rest::KeyEncryptionKey::from_bytes(
                &keys.web_sender_kek.to_bytes(),
            ));
            if settings.demo {
                demo = Some(
                    crate::demo::seed(
                        &register,
                        &register_key,
                        &web_sender_kek,
                        &operator_id()?,
                        &RecipientTokens::new(keys.recipient_token),
                        &settings.data_dir,
                        &url,
                        clock.as_ref(),
                    )
                    .await?,
                );
            }
            Some(Core {
                register_key,
                db: db.clone(),
                register,
                relay,
                web_sender_kek,
            })
        }
        None => None,
    };

    // The e-ID login, with the core role (sessions live in its database).
    let mut sessions = settings.sessions;
    sessions.secure_cookies = url.starts_with("https://");
    let (login, dev_idp) = match (settings.roles.core, settings.dev_idp, settings.oidc.clone()) {
        (true, true, _) => {
            let people = crate::demo::test_people(demo.as_ref(), clock.today());
            let idp = Arc::new(kuvert_web::dev_idp::DevIdp::new(
                &url,
                people,
                clock.clone(),
            ));
            tracing::warn!(
                issuer = idp.issuer(),
                "the development identity provider runs: anyone can log in as a test person"
            );
            let mut oidc = idp.oidc_settings();
            oidc.client_key = Some(keys.oidc_client.clone());
            let rp = kuvert_web::oidc::RelyingParty::new(oidc, &url, &transport, clock.clone())?;
            (Some(Arc::new(rp)), Some(idp))
        }
        (true, false, Some(mut oidc)) => {
            oidc.client_key = Some(keys.oidc_client.clone());
            let rp = kuvert_web::oidc::RelyingParty::new(oidc, &url, &transport, clock.clone())?;
            (Some(Arc::new(rp)), None)
        }
        _ => (None, None),
    };

    for guard in &audit {
        tasks.push(tokio::spawn(checkpointer(
            guard.clone(),
            clock.clone(),
            settings.audit_checkpoint_every,
            settings.audit_checkpoint_entries,
            shutdown_rx.clone(),
        )));
    }

    let state = AppState(Arc::new(Inner {
        clock: clock.clone(),
        core,
        mailbox,
        recipient_tokens: RecipientTokens::new(keys.recipient_token),
        admin_token_hash: settings.admin_token.as_deref().map(hash_secret),
        mailbox_open: AtomicBool::new(true),
        audit_alarm: alarm,
        intake_budget: kuvert_web::intake_budget::IntakeBudget::new(settings.intake_budget),
        login,
        dev_idp,
        sessions,
        export_slots: kuvert_web::pages::export::export_slots(),
    }));
    let app = kuvert_web::router(state.clone());
    let mut server_shutdown = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        let stopped = async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        };
        // One `axum::serve` either way, so HTTPS shuts down as gracefully.
        let served = match tls {
            Some(config) => {
                axum::serve(crate::tls::TlsListener::new(listener, config), app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped with an error");
        }
    }));
    tracing::info!(%url, roles = ?settings.roles, "kuvert is running");
    Ok(Running {
        url,
        state,
        core_db,
        mailbox_db,
        keys,
        demo,
        audit,
        shutdown,
        tasks,
    })
}

/// The register keys relay and mailbox trust: in one installation, the
/// register's own key from the key folder (never a database row).
fn trusted_registers(keys: &Keys) -> TrustedRegisters {
    TrustedRegisters::new(vec![keys.register.public_key()])
}

/// Fetches the register's revocations now and then and hands them to the
/// mailbox, which checks each against the register keys it trusts.
async fn revocation_sync(
    mailbox: Arc<Mailbox>,
    http: reqwest::Client,
    register_url: String,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let url = format!(
        "{}/register/v1/revocations",
        register_url.trim_end_matches('/')
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let fetched = async {
            let response = http.get(&url).send().await?.error_for_status()?;
            response.json::<kuvert_web::api::keys::Revocations>().await
        }
        .await;
        match fetched {
            Ok(list) => match mailbox.learn_revocations(&list.revocations).await {
                Ok(0) => {}
                Ok(new) => tracing::info!(new, "learned sender-key revocations from the register"),
                Err(e) => tracing::warn!(error = %e, "could not store revocations"),
            },
            Err(e) => {
                tracing::warn!(%url, error = %e, "could not fetch the register's revocations; will retry")
            }
        }
    }
}

fn operator_id() -> anyhow::Result<OperatorId> {
    OperatorId::parse(BUILT_IN_OPERATOR).context("built-in operator id")
}

/// Opens a database and names its audit log (once, at its first start).
async fn open_db(
    path: &std::path::Path,
    schema: Schema,
    log_kind: &str,
    clock: &dyn Clock,
) -> anyhow::Result<Db> {
    let db = Db::open(path, schema).await?;
    let log_id = db.init_audit_log(log_kind, clock.now()).await?;
    tracing::info!(%log_id, ?schema, "audit log");
    Ok(db)
}

/// Signs the audit chain's head now and then, so tampering is caught even
/// by someone holding only the public key: `every` at the longest while
/// entries come, and as soon as `after_entries` are unsigned. Between
/// checkpoints it sends what the witness has not countersigned yet.
async fn checkpointer(
    guard: Arc<AuditGuard>,
    clock: Arc<dyn Clock>,
    every: Duration,
    after_entries: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let poll = AUDIT_CHECKPOINT_POLL.min(every);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let due = last.elapsed() >= every
            || match guard.db().audit_unsigned().await {
                Ok(unsigned) => unsigned >= after_entries,
                Err(e) => {
                    tracing::warn!(error = %e, "could not count unsigned audit entries");
                    false
                }
            };
        if !due {
            guard.send_to_witness().await;
            continue;
        }
        guard.checkpoint(clock.as_ref()).await;
        last = tokio::time::Instant::now();
    }
}
