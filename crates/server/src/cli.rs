//! `kuvert`: the command line. Each subcommand is a thin call into the
//! library functions the HTTP API uses. It lives in the library so that the
//! crash-test harness can run exactly this command line as its child
//! processes without a second build.

use crate::app::{Roles, Settings};
use crate::client;
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kuvert_crypto::signing::PublicKey;
use kuvert_domain::clock::{Clock, SystemClock, format_instant};
use kuvert_domain::delivery::SecureDelivery;
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::TenantId;
use kuvert_mailbox::evidence::{KeyPurpose, KeysDocument, check_receipt};
use kuvert_mailbox::protocol::Receipt;
use kuvert_relay::tenancy::Tenancy;
use kuvert_store::{Db, Schema};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kuvert",
    version,
    about = "Secure digital mail between the public sector and the people it serves"
)]
struct Cli {
    /// The data folder: databases, keys, demo credentials. Accepted before
    /// or after the subcommand.
    #[arg(
        long = "data",
        env = "KUVERT_DATA",
        default_value = "data",
        global = true
    )]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run kuvert: register, relay and mailbox in one process (or the roles given).
    Serve(ServeArgs),
    /// Sign and send a message (with attachments) as a sender.
    Send(SendArgs),
    /// Check a delivery receipt against what you signed and the operator's published keys.
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Check the tamper-evident audit logs with the installation's public key.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run an audit witness: countersign the checkpoints of the logs given,
    /// each only when it extends the last one (for a party other than the
    /// installation's operator to run).
    Witness(WitnessArgs),
    /// Print the OpenAPI document of every API.
    Openapi,
    /// Recipients: tokens for the mailbox API, registration in the register.
    Recipient {
        #[command(subcommand)]
        command: RecipientCommand,
    },
    /// Recipient tokens: revoke one by its id.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The installation's own keys: create the missing ones, list them by key id.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Tenants (one per sending organisation or förmedlare): create, suspend, credentials, keys.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Exit 0 when the instance at --url answers /health.
    Healthcheck {
        /// The instance's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// PEM certificates to trust besides the web PKI roots (an
        /// instance serving HTTPS with a private CA's certificate).
        #[arg(long, env = "KUVERT_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "KUVERT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The URL others reach this instance at (default: the bound address).
    #[arg(long, env = "KUVERT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Roles to run: all, core (register + relay), mailbox; comma-separated.
    #[arg(long, env = "KUVERT_ROLES", default_value = "all")]
    roles: String,
    /// Base URL of the built-in mailbox when it runs in another process.
    #[arg(long, env = "KUVERT_MAILBOX_URL")]
    mailbox_url: Option<String>,
    /// Base URL of the register when the mailbox runs without the core
    /// role: where it fetches sender-key revocations.
    #[arg(long, env = "KUVERT_REGISTER_URL")]
    register_url: Option<String>,
    /// Create demo tenants, senders and recipients (never in production).
    /// Also allows plain HTTP towards mailbox operators.
    #[arg(long, env = "KUVERT_DEMO")]
    demo: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, env = "KUVERT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KUVERT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates to trust for mailbox operators besides the built-in
    /// web PKI roots (a private CA).
    #[arg(long, env = "KUVERT_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Deliver to mailbox operators over plain http:// (for a closed test
    /// network; --demo implies it). Off by default: plain HTTP carries
    /// identity numbers and receipts.
    #[arg(long, env = "KUVERT_ALLOW_PLAIN_HTTP")]
    allow_plain_http: bool,
    /// File holding the platform operator's admin token (`kva_…`).
    #[arg(long, env = "KUVERT_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// First retry delay towards an unreachable mailbox, in milliseconds.
    #[arg(long, env = "KUVERT_RETRY_BASE_MS", default_value_t = 1000)]
    retry_base_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    #[arg(long, env = "KUVERT_RETRY_MAX_MS", default_value_t = 300_000)]
    retry_max_ms: u64,
    /// Attempts a delivery gets before it ends `failed` with
    /// `retries_exhausted: <last error>` (20: about an hour with the
    /// default delays; a pass cut short by a crash counts as one).
    #[arg(long, env = "KUVERT_RETRY_MAX_ATTEMPTS", default_value_t = kuvert_relay::worker::DEFAULT_MAX_ATTEMPTS)]
    retry_max_attempts: u32,
    /// Send request bodies being checked at once, in MiB (a request that
    /// finds no room within 5 s is answered 503 `intake_busy`).
    #[arg(long, env = "KUVERT_INTAKE_BUDGET_MIB", default_value_t = 128)]
    intake_budget_mib: usize,
    /// The longest time, in seconds, between two signed audit checkpoints
    /// (one is also signed after every 1000 new entries and at start-up).
    #[arg(long, env = "KUVERT_AUDIT_CHECKPOINT_SECONDS", default_value_t = 10)]
    audit_checkpoint_seconds: u64,
    /// The audit witness's base URL: every checkpoint is sent there to be
    /// countersigned (queued while it is unreachable).
    #[arg(long, env = "KUVERT_WITNESS_URL", requires = "witness_key")]
    witness: Option<String>,
    /// The witness's Ed25519 public key (standard base64), pinned: a
    /// cosignature by any other key is refused.
    #[arg(long, env = "KUVERT_WITNESS_KEY", requires = "witness")]
    witness_key: Option<String>,
    /// Run the development identity provider at <public URL>/dev-idp and log
    /// in with it: anyone can log in as a test person (--demo implies it).
    /// Refused together with --oidc-issuer.
    #[arg(long, env = "KUVERT_DEV_IDP")]
    dev_idp: bool,
    /// The e-ID provider's issuer URL (OpenID Connect discovery at
    /// <issuer>/.well-known/openid-configuration).
    #[arg(long, env = "KUVERT_OIDC_ISSUER", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// kuvert's client id at the provider.
    #[arg(long, env = "KUVERT_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    oidc_client_id: Option<String>,
    /// File holding the client secret (mode 0600, like a key file).
    #[arg(long, env = "KUVERT_OIDC_CLIENT_SECRET_FILE")]
    oidc_client_secret_file: Option<PathBuf>,
    /// client_secret_basic, client_secret_post, or private_key_jwt (signed
    /// with the key file oidc-client.ed25519, public at <public URL>/login/jwks;
    /// no client secret then).
    #[arg(
        long,
        env = "KUVERT_OIDC_CLIENT_AUTH",
        default_value = "client_secret_basic"
    )]
    oidc_client_auth: String,
    /// The lowest level of assurance that may log in: loa3 or loa4.
    #[arg(long, env = "KUVERT_OIDC_MIN_LOA", default_value = "loa3")]
    oidc_min_loa: String,
    /// The claim holding the personal identity number.
    #[arg(long, env = "KUVERT_OIDC_PERSONAL_NUMBER_CLAIM", default_value = kuvert_web::oidc::claims::PERSONAL_IDENTITY_NUMBER_CLAIM)]
    oidc_personal_number_claim: String,
    /// The claim holding a coordination number.
    #[arg(long, env = "KUVERT_OIDC_COORDINATION_NUMBER_CLAIM", default_value = kuvert_web::oidc::claims::COORDINATION_NUMBER_CLAIM)]
    oidc_coordination_number_claim: String,
    /// A scope to ask for besides openid and profile (repeatable), e.g.
    /// https://id.oidc.se/scope/naturalPersonNumber.
    #[arg(long = "oidc-scope", env = "KUVERT_OIDC_SCOPES", value_delimiter = ',')]
    oidc_scopes: Vec<String>,
    /// A web session ends after this many minutes without a request.
    #[arg(long, env = "KUVERT_SESSION_IDLE_MINUTES", default_value_t = 30)]
    session_idle_minutes: i64,
    /// ... and this many hours after the login.
    #[arg(long, env = "KUVERT_SESSION_MAX_HOURS", default_value_t = 12)]
    session_max_hours: i64,
}

#[derive(Args)]
struct WitnessArgs {
    /// Address to listen on.
    #[arg(long, env = "KUVERT_WITNESS_LISTEN", default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    /// A log to witness and its audit checkpoint public key (the
    /// `audit_checkpoint` key of the installation's `/register/v1/keys`):
    /// `LOG_ID=BASE64`. Repeatable; `kuvert audit verify` prints the log ids.
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
}

#[derive(Args)]
struct SendArgs {
    /// Recipient identity number (personnummer, samordningsnummer or
    /// organisationsnummer) in any written form; it is signed in the
    /// canonical 12-digit form.
    #[arg(long)]
    to: String,
    /// The message's subject (at most 255 characters).
    #[arg(long)]
    subject: String,
    /// The message body (or use --body-file).
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the message body from this file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// The body is HTML (script, event handlers and remote resources are refused).
    #[arg(long)]
    html: bool,
    /// Attach a file (repeatable); PDF by default policy.
    #[arg(long = "attach")]
    attachments: Vec<PathBuf>,
    /// Print and post when the recipient has no digital mailbox.
    #[arg(long)]
    paper: bool,
    /// Your reference; also the idempotency key (default: a new random one).
    #[arg(long)]
    reference: Option<String>,
    /// Instance URL (default: from the demo credentials).
    #[arg(long, env = "KUVERT_URL")]
    url: Option<String>,
    /// API credential `kvt_…` (default: the demo tenant's).
    #[arg(long, env = "KUVERT_TOKEN")]
    token: Option<String>,
    /// Sender organisation number (default: the demo tenant's first sender).
    #[arg(long)]
    sender: Option<String>,
    /// The sender's name as the recipient sees it (with --sender).
    #[arg(long, default_value = "Avsändare")]
    sender_name: String,
    /// File with the sender's Ed25519 secret key, base64 (default: the demo sender's).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Which demo tenant to send as.
    #[arg(long, default_value = "demokommun")]
    demo_tenant: String,
    /// Wait until the delivery has a final status and print that (one JSON
    /// document: the delivery's status, with the signed receipt once delivered).
    #[arg(long)]
    wait: bool,
    /// Write the signed delivery, exactly as sent, to this file (for
    /// `kuvert receipt verify --delivery`).
    #[arg(long)]
    save: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Verify a receipt: signed by a published key of the operator it names,
    /// in use at the moment of delivery, and bound to the delivery you signed
    /// (digest, recipient, sender, message ids). Says exactly what fails.
    Verify {
        /// The receipt: its JSON, or the delivery status (`GET /v1/deliveries/{id}`, `send --wait`) holding it.
        #[arg(long)]
        receipt: PathBuf,
        /// The signed delivery you sent (`send --save`), or the bare delivery.
        #[arg(long)]
        delivery: PathBuf,
        /// The operator's keys document: a URL (`…/register/v1/operators/{id}/keys`) or a file.
        #[arg(long)]
        keys: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify both audit chains in the data folder (read-only); names the first bad entry.
    Verify {
        /// The installation's published keys document (a URL,
        /// `…/register/v1/keys`, or a file): the audit checkpoint keys are
        /// taken from it, never from a private key file.
        #[arg(long)]
        keys: String,
        /// The witness's public key (base64): cosignatures must verify with it.
        #[arg(long)]
        witness_key: Option<String>,
        /// The witness's base URL: each database must hold the witness's
        /// latest checkpoint of its log (an old copy or a truncated log fails).
        #[arg(long, requires = "witness_key")]
        witness: Option<String>,
    },
}

#[derive(Subcommand)]
enum RecipientCommand {
    /// Print a recipient token (`kvr2.…`): for mail at a mailbox operator
    /// (`--for mail`, the default) or for the register (`--for registration`),
    /// valid one hour unless asked otherwise (at most 24 hours). Its id is
    /// printed to stderr, for `kuvert token revoke`.
    Token {
        /// The recipient's identity number, in any written form.
        id: String,
        /// `mail` (read and manage mail at --operator) or `registration`
        /// (read and change the registration in the register).
        #[arg(long = "for", default_value = "mail")]
        service: String,
        /// The scopes, comma-separated (default: all of the service's:
        /// mail.read,mail.manage or registration.read,registration.write).
        #[arg(long)]
        scopes: Option<String>,
        /// The mailbox operator the mail token is for.
        #[arg(long, default_value = crate::app::BUILT_IN_OPERATOR)]
        operator: String,
        /// How many minutes the token is valid (at most 1440).
        #[arg(long, default_value_t = 60)]
        lifetime_minutes: i64,
    },
    /// Register a recipient with a mailbox operator.
    Register {
        /// The recipient's identity number, in any written form.
        id: String,
        /// The mailbox operator's id.
        #[arg(long, default_value = crate::app::BUILT_IN_OPERATOR)]
        operator: String,
        /// An organisation awaiting more signatories.
        #[arg(long)]
        pending: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Revoke a recipient token (its id, or the whole token): the mailbox
    /// and the register refuse it from their next request on. Recorded in
    /// each database of the data folder.
    Revoke {
        /// The token's id (printed when it was minted) or the token itself.
        id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the key files that are missing in `<data>/keys/` (mode 0600)
    /// and print their ids; a key file that exists is never changed. Run it
    /// once for a new installation: `serve` refuses to start without keys.
    Init,
    /// Every key file with its purpose and key id (never the secret).
    List,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        /// The tenant id: lowercase letters, digits and '-'.
        id: String,
        /// The tenant's name.
        name: String,
    },
    /// List every tenant with its status.
    List,
    /// A tenant's senders and credentials.
    Show {
        /// The tenant id.
        id: String,
    },
    /// Suspend a tenant: its credentials stop working and nothing of it is delivered.
    Suspend {
        /// The tenant id.
        id: String,
    },
    /// Set quotas: each a number or `unlimited`; one left out takes the
    /// installation's default (docs/reliability.md, "Quotas").
    Quota {
        /// The tenant id.
        id: String,
        /// Deliveries per day (UTC).
        #[arg(long, alias = "per-day", value_parser = quota_setting)]
        deliveries_per_day: Option<QuotaSetting>,
        /// Deliveries per second.
        #[arg(long, alias = "per-second", value_parser = quota_setting)]
        deliveries_per_second: Option<QuotaSetting>,
        /// Messages per day (UTC).
        #[arg(long, value_parser = quota_setting)]
        messages_per_day: Option<QuotaSetting>,
        /// Bytes of deliveries (canonical form) per day (UTC).
        #[arg(long, value_parser = quota_setting)]
        bytes_per_day: Option<QuotaSetting>,
        /// Deliveries per batch request.
        #[arg(long, alias = "max-batch", value_parser = quota_setting)]
        batch_size: Option<QuotaSetting>,
        /// Recipient ids looked up per day (UTC).
        #[arg(long, value_parser = quota_setting)]
        lookup_ids_per_day: Option<QuotaSetting>,
        /// Recipient ids looked up per second.
        #[arg(long, value_parser = quota_setting)]
        lookup_ids_per_second: Option<QuotaSetting>,
        /// Every dimension not given is unlimited, not the default.
        #[arg(long)]
        unlimited: bool,
    },
    /// Resume a suspended tenant.
    Resume {
        /// The tenant id.
        id: String,
    },
    /// Today's (or --day's) delivery statistics.
    Stats {
        /// The tenant id.
        id: String,
        /// The day, YYYY-MM-DD (UTC).
        #[arg(long)]
        day: Option<String>,
    },
    /// Senders (organisation numbers) the tenant may send for.
    Sender {
        #[command(subcommand)]
        command: SenderCommand,
    },
    /// API credentials of a tenant.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Senders' signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// People (e-ID) who may send by hand from the sender pages.
    WebSender {
        #[command(subcommand)]
        command: WebSenderCommand,
    },
    /// The key the server signs web deliveries with, per sender.
    WebKey {
        #[command(subcommand)]
        command: WebKeyCommand,
    },
}

#[derive(Subcommand)]
enum WebSenderCommand {
    /// Give a person the sender role for one of the tenant's senders.
    Grant {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        sender: String,
        /// The person's personal identity or coordination number.
        person: String,
    },
    /// Take the role away: the person's next request is refused.
    Revoke {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        sender: String,
        /// The person's personal identity or coordination number.
        person: String,
    },
}

#[derive(Subcommand)]
enum WebKeyCommand {
    /// Generate the sender's web sending key: its public half is registered
    /// and certified like any sender key, its private half kept encrypted.
    Create {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        sender: String,
    },
}

#[derive(Subcommand)]
enum SenderCommand {
    /// Add a sender the tenant may send for.
    Add {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        id: String,
        /// The sender's registered name.
        name: String,
        /// Bring back a sender that was removed from a tenant (this or another).
        #[arg(long)]
        reinstate: bool,
    },
    /// Remove a sender: its keys are revoked, sends as it refused, and its
    /// history hidden from the tenant (kept, not deleted).
    Remove {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        id: String,
    },
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Create a credential; the token is printed once.
    Create {
        /// The tenant id.
        tenant: String,
        /// What the credential is for.
        #[arg(long, default_value = "api")]
        label: String,
        /// Scope it to this sender (repeat for several); default: every sender.
        #[arg(long = "sender")]
        senders: Vec<String>,
    },
    /// Revoke a credential: the next request with it is refused.
    Revoke {
        /// The tenant id.
        tenant: String,
        /// The credential id (`kuvert tenant show`).
        id: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Register a sender's Ed25519 public key (base64).
    Add {
        /// The tenant id.
        tenant: String,
        /// The sender's organisation number.
        sender: String,
        /// The Ed25519 public key, standard base64 of the 32 bytes.
        public_key: String,
    },
    /// Revoke a signing key: deliveries signed with it are refused from now on.
    Revoke {
        /// The tenant id.
        tenant: String,
        /// The key id, `ed25519:…`.
        key_id: String,
    },
}

/// Logs to stderr; `RUST_LOG` overrides the default filter.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the command line given (the first item is the program name).
pub async fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // A usage error (and --help) is returned as the `clap::Error`, never an
    // exit of the process: `run` is also called in-process, by tests that
    // share one process. The binary's `main` exits with clap's code.
    let cli = Cli::try_parse_from(args)?;
    let data = cli.data.as_path();
    match cli.command {
        Command::Serve(args) => serve(args, data).await,
        Command::Send(args) => send(args, data).await,
        Command::Receipt {
            command:
                ReceiptCommand::Verify {
                    receipt,
                    delivery,
                    keys,
                },
        } => receipt_verify(&receipt, &delivery, &keys).await,
        Command::Audit {
            command:
                AuditCommand::Verify {
                    keys,
                    witness_key,
                    witness,
                },
        } => audit_verify(data, &keys, witness_key.as_deref(), witness.as_deref()).await,
        Command::Witness(args) => witness(args, data).await,
        Command::Openapi => {
            println!("{}", kuvert_web::openapi::document());
            Ok(())
        }
        Command::Recipient { command } => recipient(command, data).await,
        Command::Keys { command } => keys(command, data),
        Command::Token {
            command: TokenCommand::Revoke { id },
        } => token_revoke(&id, data).await,
        Command::Tenant { command } => tenant(command, data).await,
        Command::Healthcheck { url, ca_file } => {
            let response = http_client(ca_file.as_deref())?
                .get(format!("{}/health", url.trim_end_matches('/')))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "unhealthy: HTTP {}",
                response.status()
            );
            println!("ok");
            Ok(())
        }
    }
}

/// A client trusting the web PKI roots and, when given, the PEM
/// certificates of `ca_file`; redirects are not followed.
fn http_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not PEM certificates", path.display()))?;
        anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    Ok(builder.build()?)
}

async fn serve(args: ServeArgs, data: &Path) -> anyhow::Result<()> {
    let mut settings = Settings::new(data.to_path_buf());
    settings.listen = args.listen;
    settings.public_url = args.public_url;
    settings.roles = Roles::parse(&args.roles)?;
    settings.mailbox_url = args.mailbox_url;
    settings.register_url = args.register_url;
    settings.demo = args.demo;
    // The demo is the README's first command: it may create its keys; a
    // production start never does.
    settings.create_missing_keys = args.demo;
    settings.tls_cert = args.tls_cert;
    settings.tls_key = args.tls_key;
    settings.ca_file = args.ca_file;
    settings.allow_plain_http = args.allow_plain_http || args.demo;
    settings.retry.base = Duration::from_millis(args.retry_base_ms.max(1));
    settings.retry.max = Duration::from_millis(args.retry_max_ms.max(args.retry_base_ms).max(1));
    settings.retry.max_attempts = args.retry_max_attempts.max(1);
    settings.intake_budget.bytes = args.intake_budget_mib.max(1).saturating_mul(1024 * 1024);
    settings.audit_checkpoint_every = Duration::from_secs(args.audit_checkpoint_seconds.max(1));
    if let (Some(url), Some(key)) = (args.witness, args.witness_key) {
        settings.witness = Some(crate::audit_log::WitnessConfig {
            url,
            key: PublicKey::from_base64(&key)
                .context("--witness-key is not an Ed25519 public key (standard base64)")?,
        });
    }
    if let Some(path) = args.admin_token_file {
        settings.admin_token = Some(read_admin_token(&path)?);
    }
    settings.dev_idp = args.dev_idp || args.demo;
    settings.sessions.idle_seconds = args.session_idle_minutes.max(1) * 60;
    settings.sessions.absolute_seconds = args.session_max_hours.max(1) * 3600;
    if let (Some(issuer), Some(client_id)) = (args.oidc_issuer, args.oidc_client_id) {
        let secret = match &args.oidc_client_secret_file {
            Some(path) => Some(
                kuvert_crypto::keyfile::read_private_text(path)
                    .with_context(|| format!("client secret file {}", path.display()))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let mut oidc = kuvert_web::oidc::OidcSettings::new(&issuer, &client_id, secret.as_deref());
        oidc.client_auth = kuvert_web::oidc::ClientAuth::parse(&args.oidc_client_auth)?;
        oidc.min_loa = kuvert_web::oidc::Loa::parse_short(&args.oidc_min_loa)?;
        oidc.claims.personal_identity_number = args.oidc_personal_number_claim;
        oidc.claims.coordination_number = args.oidc_coordination_number_claim;
        oidc.extra_scopes = args.oidc_scopes;
        settings.oidc = Some(oidc);
    }
    let running = crate::app::start(settings).await?;
    println!("kuvert is running at {}", running.url);
    println!(
        "  sender API:      {}/v1/  (OpenAPI: {}/openapi.json)",
        running.url, running.url
    );
    println!("  mailbox API:     {}/mailbox/v1/", running.url);
    println!("  register API:    {}/register/v1/", running.url);
    println!("  published keys:  {}/register/v1/keys", running.url);
    println!("  data folder:     {}", data.display());
    if running.state.login().is_some() {
        println!(
            "  web mailbox:     {}/  (log in: {}/login)",
            running.url, running.url
        );
    }
    if let Some(demo) = &running.demo {
        println!("\nDemo data ({}):", crate::demo::demo_file(data).display());
        for t in &demo.tenants {
            let senders: Vec<&str> = t.senders.iter().map(|s| s.name.as_str()).collect();
            println!("  tenant {:<15} sends for {}", t.tenant, senders.join(", "));
        }
        for r in &demo.recipients {
            println!("  recipient {}  {:<20} {}", r.id, r.name, r.state);
        }
        println!(
            "\nTry:  cargo run -- send --to {} --subject \"Hej\" --body \"Ett första brev\" --wait",
            demo.recipients.first().map_or("", |r| r.id.as_str())
        );
    }
    stop_requested().await?;
    println!("stopping…");
    running.stop().await;
    Ok(())
}

/// The platform operator's admin token from its file, which must be as
/// private as a key file (mode 0600): whoever reads it administers every tenant.
pub fn read_admin_token(path: &Path) -> anyhow::Result<String> {
    let token = kuvert_crypto::keyfile::read_private_text(path)
        .with_context(|| format!("admin token file {}", path.display()))?;
    anyhow::ensure!(
        token.starts_with("kva_"),
        "admin token file {}: the token must start with kva_",
        path.display()
    );
    Ok(token.as_str().to_owned())
}

fn keys(command: KeysCommand, data_dir: &Path) -> anyhow::Result<()> {
    let folder = crate::keys::key_dir(data_dir);
    match command {
        KeysCommand::Init => {
            let created = crate::keys::init(data_dir)?;
            if created.is_empty() {
                println!(
                    "{}: every key file exists; nothing created",
                    folder.display()
                );
            }
            for key in &created {
                println!(
                    "created {:<34} {:<32} {}",
                    key.file,
                    key.key_id.as_deref().unwrap_or(""),
                    key.purpose
                );
            }
            let existing_data = ["kuvert.db", "mailbox.db"]
                .iter()
                .any(|f| data_dir.join(f).exists());
            if !created.is_empty() && existing_data {
                println!(
                    "warning: {} already holds databases: mail stored under a key that was \
                     missing cannot be read with the new one",
                    data_dir.display()
                );
            }
        }
        KeysCommand::List => {
            for key in crate::keys::list(data_dir)? {
                println!(
                    "{:<34} {:<32} {}",
                    key.file,
                    key.key_id.as_deref().unwrap_or("MISSING"),
                    key.purpose
                );
            }
        }
    }
    Ok(())
}

async fn send(args: SendArgs, data: &Path) -> anyhow::Result<()> {
    let demo = crate::demo::load(data).ok();
    let demo_tenant = demo.as_ref().and_then(|d| {
        d.tenants
            .iter()
            .find(|t| t.tenant == args.demo_tenant)
            .cloned()
    });
    let url = args
        .url
        .or_else(|| demo.as_ref().map(|d| d.url.clone()))
        .context("--url is required (no demo data found)")?;
    let token = args
        .token
        .or_else(|| demo_tenant.as_ref().map(|t| t.token.clone()))
        .context("--token is required (no demo data found)")?;
    let demo_sender = demo_tenant
        .as_ref()
        .and_then(|t| t.senders.first().cloned());
    let key = match &args.key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            crate::demo::DemoSender {
                id: String::new(),
                name: String::new(),
                key_id: String::new(),
                signing_key: text.trim().to_owned(),
            }
            .key()?
        }
        None => demo_sender
            .as_ref()
            .context("--key-file is required (no demo data found)")?
            .key()?,
    };
    let (sender_id, sender_name) = match (&args.sender, &demo_sender) {
        (Some(id), _) => (id.clone(), args.sender_name.clone()),
        (None, Some(s)) => (s.id.clone(), s.name.clone()),
        (None, None) => anyhow::bail!("--sender is required (no demo data found)"),
    };
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)?,
        (None, None) => anyhow::bail!("give --body or --body-file"),
    };
    let mut attachments = Vec::new();
    for path in &args.attachments {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("attachment name")?;
        attachments.push(client::attachment(
            name,
            client::content_type_for(name),
            &bytes,
        ));
    }
    let reference = args
        .reference
        .unwrap_or_else(|| format!("cli-{}", kuvert_crypto::digest::random_token(12)));
    // Signed deliveries name the recipient in the 12-digit form only.
    let recipient = client::canonical_recipient(&args.to, SystemClock.today())
        .with_context(|| "--to is not a valid identity number")?;
    let mut delivery = client::simple_delivery(
        &sender_id,
        &sender_name,
        &recipient,
        Some(reference),
        &args.subject,
        &body,
        args.html,
        attachments,
    );
    delivery.paper_fallback = args.paper;
    let signed = client::sign(delivery, &key);
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_vec_pretty(&signed)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let response = http
        .post(format!("{base}/v1/deliveries"))
        .bearer_auth(&token)
        .json(&signed)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    if !status.is_success() || !args.wait {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    anyhow::ensure!(status.is_success(), "refused: HTTP {status}");
    if args.wait {
        let id = answer["delivery_id"].as_str().context("no delivery id")?;
        for _ in 0..600 {
            let view: serde_json::Value = http
                .get(format!("{base}/v1/deliveries/{id}"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            if view["status"] != "accepted" {
                println!("{}", serde_json::to_string_pretty(&view)?);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::bail!(
            "no final status after two minutes (the delivery stays queued and will be retried)"
        );
    }
    Ok(())
}

async fn witness(args: WitnessArgs, data: &Path) -> anyhow::Result<()> {
    let mut settings = crate::witness::WitnessSettings::new(data.to_path_buf(), args.listen);
    for pin in &args.logs {
        let (log, key) = crate::witness::parse_log_pin(pin)?;
        settings.logs.insert(log, key);
    }
    let logs: Vec<String> = settings.logs.keys().cloned().collect();
    let running = crate::witness::start(settings).await?;
    println!("kuvert witness is running at {}", running.url);
    println!("  witness key:  {}", running.public_key.to_base64());
    println!("  key id:       {}", running.public_key.key_id());
    for log in logs {
        println!("  witnesses:    {log}");
    }
    stop_requested().await?;
    running.stop().await;
    Ok(())
}

/// Every audit checkpoint key the keys document lists (rotated ones too:
/// old checkpoints keep verifying), each checked against its key id.
async fn audit_keys_from(source: &str) -> anyhow::Result<Vec<PublicKey>> {
    let document = read_keys_document(source).await?;
    let mut keys = Vec::new();
    for listed in document
        .keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::AuditCheckpoint)
    {
        let key = PublicKey::from_base64(&listed.public_key)
            .context("an audit checkpoint key is not an Ed25519 key")?;
        anyhow::ensure!(
            key.key_id() == listed.key_id,
            "the audit checkpoint key does not derive to its key id {}",
            listed.key_id
        );
        keys.push(key);
    }
    anyhow::ensure!(!keys.is_empty(), "{source} lists no audit checkpoint key");
    Ok(keys)
}

/// The witness's latest countersigned checkpoint of `log`, cosignature
/// checked; none when the witness has none of this log.
async fn witnessed_latest(
    base: &str,
    log: &str,
    witness_key: &PublicKey,
) -> anyhow::Result<Option<kuvert_store::audit::Checkpoint>> {
    let url = format!(
        "{}/witness/v1/logs/{log}/latest",
        base.trim_end_matches('/')
    );
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("fetching {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered HTTP {}",
        response.status()
    );
    let record: crate::audit_log::CheckpointRecord = response
        .json()
        .await
        .with_context(|| format!("{url} is not a witnessed checkpoint"))?;
    let cosignature = record
        .cosignature
        .context("the witness answered a checkpoint without its cosignature")?;
    cosignature
        .verify(&record.checkpoint, witness_key)
        .context("the witness's cosignature does not verify with the witness key given")?;
    Ok(Some(record.checkpoint))
}

async fn audit_verify(
    data_dir: &Path,
    keys: &str,
    witness_key: Option<&str>,
    witness: Option<&str>,
) -> anyhow::Result<()> {
    let audit_keys = audit_keys_from(keys).await?;
    let witness_key = witness_key
        .map(PublicKey::from_base64)
        .transpose()
        .context("--witness-key is not an Ed25519 public key (standard base64)")?;
    for key in &audit_keys {
        println!("audit key {}", key.key_id());
    }
    if let Some(key) = &witness_key {
        println!("witness key {}", key.key_id());
    }
    anyhow::ensure!(
        ["kuvert.db", "mailbox.db"]
            .iter()
            .any(|f| data_dir.join(f).is_file()),
        "{} holds no kuvert database",
        data_dir.display()
    );
    let mut failed = false;
    for (file, kind) in [("kuvert.db", "core/"), ("mailbox.db", "mailbox/")] {
        let path = data_dir.join(file);
        if !path.exists() {
            continue;
        }
        let db = Db::open_read_only(&path)
            .await
            .with_context(|| format!("opening {} read-only", path.display()))?;
        let report = db
            .verify_audit(kuvert_store::audit::AuditKeys {
                checkpoint: &audit_keys,
                witness: witness_key.as_ref(),
            })
            .await?;
        let log = report.log_id.clone().unwrap_or_default();
        let mut problem = report.problem.as_ref().map(ToString::to_string);
        if problem.is_none() && report.checkpoints > 0 && !log.starts_with(kind) {
            problem = Some(format!(
                "the database names the log {log:?}, not a {kind}… log"
            ));
        }
        let mut witnessed = String::new();
        if let (None, Some(base), Some(key)) = (&problem, witness, &witness_key) {
            match witnessed_latest(base, &log, key).await? {
                None => witnessed = ", the witness has no checkpoint of it yet".to_owned(),
                Some(latest) => match db.audit_checkpoint(latest.seq).await? {
                    Some(held) if held == latest => {
                        witnessed = format!(
                            ", the witness's latest checkpoint (entry {}) is held",
                            latest.seq
                        );
                    }
                    _ => {
                        problem = Some(format!(
                            "the database does not hold the witness's latest checkpoint (entry {}): an older copy, truncated or rewritten",
                            latest.seq
                        ));
                    }
                },
            }
        }
        match problem {
            None => println!(
                "{file}: OK — log {log}, {} entries, {} checkpoints ({} cosigned), {} entries after the last checkpoint{witnessed}",
                report.entries, report.checkpoints, report.cosigned, report.unsigned_tail
            ),
            Some(problem) => {
                failed = true;
                println!("{file}: TAMPERED — log {log}: {problem}");
            }
        }
        db.close().await;
    }
    anyhow::ensure!(!failed, "the audit log does not verify");
    Ok(())
}

async fn recipient(command: RecipientCommand, data_dir: &Path) -> anyhow::Result<()> {
    let keys = crate::keys::Keys::load_existing(data_dir)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        RecipientCommand::Token {
            id,
            service,
            scopes,
            operator,
            lifetime_minutes,
        } => {
            use kuvert_web::auth::{REGISTER_AUDIENCE, Scope};
            let id = RecipientId::parse(&id, clock.today())?;
            let (audience, all) = match service.as_str() {
                "mail" => (
                    kuvert_domain::ids::OperatorId::parse(&operator)?.to_string(),
                    vec![Scope::MailRead, Scope::MailManage],
                ),
                "registration" => (
                    REGISTER_AUDIENCE.to_owned(),
                    vec![Scope::RegistrationRead, Scope::RegistrationWrite],
                ),
                other => anyhow::bail!("--for {other:?}: use mail or registration"),
            };
            let scopes = match scopes {
                None => all,
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .map(|s| Scope::parse(s).with_context(|| format!("unknown scope {s:?}")))
                    .collect::<anyhow::Result<Vec<_>>>()?,
            };
            let tokens = kuvert_web::auth::RecipientTokens::new(keys.recipient_token);
            let minted = tokens.mint(
                &id,
                &audience,
                &scopes,
                clock.now().unix_timestamp(),
                lifetime_minutes.saturating_mul(60),
            )?;
            eprintln!(
                "token {} for {audience}, valid until {} (unix)",
                minted.id, minted.expires_at
            );
            println!("{}", minted.token);
        }
        RecipientCommand::Register {
            id,
            operator,
            pending,
        } => {
            let db = Db::open(&data_dir.join("kuvert.db"), Schema::Core).await?;
            let register = kuvert_register::Register {
                db: db.clone(),
                clock: clock.clone(),
                pseudonyms: Arc::new(keys.pseudonymizer()),
                quota_defaults: Default::default(),
            };
            let id = RecipientId::parse(&id, clock.today())?;
            register
                .register(
                    &id,
                    &kuvert_domain::ids::OperatorId::parse(&operator)?,
                    pending,
                )
                .await?;
            println!("registered {}", id.masked());
            db.close().await;
        }
    }
    Ok(())
}

/// Records a recipient token's id as revoked in every database of the data
/// folder: the mailbox checks mail tokens, the register registration tokens.
async fn token_revoke(id_or_token: &str, data_dir: &Path) -> anyhow::Result<()> {
    let id = kuvert_web::auth::RecipientTokens::token_id(id_or_token)
        .unwrap_or_else(|| id_or_token.trim().to_owned());
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id:?} is not a token id"
    );
    let databases: Vec<(PathBuf, Schema)> =
        [("kuvert.db", Schema::Core), ("mailbox.db", Schema::Mailbox)]
            .into_iter()
            .map(|(file, schema)| (data_dir.join(file), schema))
            .filter(|(path, _)| path.is_file())
            .collect();
    anyhow::ensure!(
        !databases.is_empty(),
        "{} holds no kuvert database",
        data_dir.display()
    );
    let now = SystemClock.now();
    // No token with this id lives past the maximum lifetime from now.
    let valid_until = now + time::Duration::seconds(kuvert_web::auth::MAX_TOKEN_LIFETIME_SECONDS);
    let entry = kuvert_store::audit::AuditEntry {
        tenant: None,
        actor: "cli",
        action: "recipient_token.revoke",
        subject: &id,
        detail: "",
    };
    for (path, schema) in databases {
        let db = Db::open(&path, schema).await?;
        let new = db
            .revoke_recipient_token(&id, now, valid_until, &entry)
            .await?;
        db.close().await;
        println!(
            "{}: token {id} {}",
            path.display(),
            if new {
                "revoked"
            } else {
                "was already revoked"
            }
        );
    }
    Ok(())
}

/// A quota on the command line: a positive number or `unlimited`.
#[derive(Debug, Clone, Copy)]
struct QuotaSetting(kuvert_store::quotas::Setting);

fn quota_setting(text: &str) -> Result<QuotaSetting, String> {
    use kuvert_store::quotas::Setting;
    if text == "unlimited" {
        return Ok(QuotaSetting(Setting::Unlimited));
    }
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(QuotaSetting(Setting::Max(n))),
        _ => Err("a positive number or `unlimited`".to_owned()),
    }
}

async fn tenant(command: TenantCommand, data_dir: &Path) -> anyhow::Result<()> {
    // Adding a key issues its certificate with the register's key.
    let keys = crate::keys::Keys::load_existing(data_dir)?;
    let db = Db::open(&data_dir.join("kuvert.db"), Schema::Core).await?;
    let tenancy = Tenancy {
        db: db.clone(),
        clock: Arc::new(SystemClock),
        register_key: Arc::new(kuvert_crypto::signing::SigningKey::from_bytes(
            &keys.register.to_bytes(),
        )),
    };
    let actor = "cli";
    let tid = |s: &str| TenantId::parse(s).map_err(|e| anyhow::anyhow!("tenant id: {e}"));
    match command {
        TenantCommand::Create { id, name } => {
            tenancy.create_tenant(actor, &tid(&id)?, &name).await?;
            println!("created tenant {id}");
        }
        TenantCommand::List => {
            for t in db.tenants().await? {
                println!("{:<20} {:<10} {}", t.id, t.status.as_str(), t.name);
            }
        }
        TenantCommand::Show { id } => {
            let t = db.tenant(&tid(&id)?).await?.context("no such tenant")?;
            println!("{} ({}) — {}", t.id, t.status.as_str(), t.name);
            for s in db.senders(&t.id).await? {
                let removed = s
                    .removed_at
                    .map(|at| format!(" (removed {})", format_instant(at)))
                    .unwrap_or_default();
                println!("  sender {} {}{removed}", s.id, s.name);
            }
            for c in db.credentials(&t.id).await? {
                let state = if c.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let scope = c
                    .senders
                    .map_or_else(|| "all senders".to_owned(), |s| s.join(","));
                println!("  credential {} {} {state} senders: {scope}", c.id, c.label);
            }
            for g in db.web_grants(&t.id).await? {
                let state = if g.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let person = RecipientId::parse_canonical(&g.person)
                    .map_or_else(|_| "?".to_owned(), |p| p.masked());
                println!(
                    "  web sender {} for {} person {person} {state}",
                    g.credential_id, g.sender_id
                );
            }
        }
        TenantCommand::Suspend { id } => tenancy.set_suspended(actor, &tid(&id)?, true).await?,
        TenantCommand::Resume { id } => tenancy.set_suspended(actor, &tid(&id)?, false).await?,
        TenantCommand::Quota {
            id,
            deliveries_per_day,
            deliveries_per_second,
            messages_per_day,
            bytes_per_day,
            batch_size,
            lookup_ids_per_day,
            lookup_ids_per_second,
            unlimited,
        } => {
            use kuvert_store::quotas::{Dimension, Quota, Setting};
            let otherwise = if unlimited {
                Setting::Unlimited
            } else {
                Setting::Default
            };
            let mut quota = Quota::default();
            for (dimension, given) in [
                (Dimension::DeliveriesPerDay, deliveries_per_day),
                (Dimension::DeliveriesPerSecond, deliveries_per_second),
                (Dimension::MessagesPerDay, messages_per_day),
                (Dimension::BytesPerDay, bytes_per_day),
                (Dimension::BatchSize, batch_size),
                (Dimension::LookupIdsPerDay, lookup_ids_per_day),
                (Dimension::LookupIdsPerSecond, lookup_ids_per_second),
            ] {
                quota.set(dimension, given.map_or(otherwise, |g| g.0));
            }
            tenancy.set_quota(actor, &tid(&id)?, &quota).await?;
            println!("quota set");
        }
        TenantCommand::Stats { id, day } => {
            let day = match day {
                Some(d) => time::Date::parse(
                    &d,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )?,
                None => SystemClock.today(),
            };
            let counts = db.daily_counts(&tid(&id)?, day).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "tenant": id, "day": day.to_string(), "deliveries": counts })
                )?
            );
        }
        TenantCommand::Sender {
            command:
                SenderCommand::Add {
                    tenant,
                    id,
                    name,
                    reinstate,
                },
        } => {
            tenancy
                .add_sender(
                    actor,
                    &tid(&tenant)?,
                    &OrganisationNumber::parse(&id)?,
                    &name,
                    reinstate,
                )
                .await?;
            println!("added sender");
        }
        TenantCommand::Sender {
            command: SenderCommand::Remove { tenant, id },
        } => {
            let revoked = tenancy
                .remove_sender(actor, &tid(&tenant)?, &OrganisationNumber::parse(&id)?)
                .await?;
            println!("removed sender; {} key(s) revoked", revoked.len());
        }
        TenantCommand::Credential { command } => match command {
            CredentialCommand::Create {
                tenant,
                label,
                senders,
            } => {
                let scope = senders
                    .iter()
                    .map(|s| OrganisationNumber::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let created = tenancy
                    .create_scoped_credential(
                        actor,
                        &tid(&tenant)?,
                        &label,
                        (!scope.is_empty()).then_some(scope.as_slice()),
                    )
                    .await?;
                println!("credential {} (shown once):\n{}", created.id, created.token);
            }
            CredentialCommand::Revoke { tenant, id } => {
                tenancy
                    .revoke_credential(actor, &tid(&tenant)?, &id)
                    .await?;
                println!("revoked");
            }
        },
        TenantCommand::Key { command } => match command {
            KeyCommand::Add {
                tenant,
                sender,
                public_key,
            } => {
                let key_id = tenancy
                    .add_key(
                        actor,
                        &tid(&tenant)?,
                        &OrganisationNumber::parse(&sender)?,
                        &public_key,
                    )
                    .await?;
                println!("key {key_id}");
            }
            KeyCommand::Revoke { tenant, key_id } => {
                tenancy.revoke_key(actor, &tid(&tenant)?, &key_id).await?;
                println!("revoked");
            }
        },
        TenantCommand::WebSender { command } => {
            let (tenant, sender, person, grant) = match command {
                WebSenderCommand::Grant {
                    tenant,
                    sender,
                    person,
                } => (tenant, sender, person, true),
                WebSenderCommand::Revoke {
                    tenant,
                    sender,
                    person,
                } => (tenant, sender, person, false),
            };
            let tenant = tid(&tenant)?;
            let sender = OrganisationNumber::parse(&sender)?;
            let RecipientId::Person(person) = RecipientId::parse(&person, SystemClock.today())?
            else {
                anyhow::bail!(
                    "the sender role is for a person: give a personal identity or coordination number"
                );
            };
            if grant {
                let pseudonym = keys.pseudonymizer().pseudonym(person.as_str());
                let id = tenancy
                    .grant_web_sender(actor, &tenant, &sender, &person, &pseudonym)
                    .await?;
                println!("granted (grant {id})");
            } else {
                let id = db
                    .web_grant_id(&tenant, sender.as_str(), person.as_str())
                    .await?
                    .context("this person holds no sender role for this sender")?;
                tenancy.revoke_web_sender(actor, &tenant, &id).await?;
                println!("revoked (grant {id})");
            }
        }
        TenantCommand::WebKey {
            command: WebKeyCommand::Create { tenant, sender },
        } => {
            let key_id = tenancy
                .create_web_key(
                    actor,
                    &tid(&tenant)?,
                    &OrganisationNumber::parse(&sender)?,
                    &keys.web_sender_kek,
                )
                .await?;
            println!("web key {key_id}");
        }
    }
    db.close().await;
    Ok(())
}

/// Reads a file, or fetches a URL (`http://`, `https://`).
async fn read_source(source: &str) -> anyhow::Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let response = reqwest::get(source)
            .await
            .with_context(|| format!("fetching {source}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "{source} answered HTTP {}",
            response.status()
        );
        Ok(response.bytes().await?.to_vec())
    } else {
        std::fs::read(source).with_context(|| format!("reading {source}"))
    }
}

async fn read_keys_document(source: &str) -> anyhow::Result<KeysDocument> {
    serde_json::from_slice(&read_source(source).await?)
        .with_context(|| format!("{source} is not a kuvert keys document"))
}

async fn receipt_verify(receipt: &Path, delivery: &Path, keys: &str) -> anyhow::Result<()> {
    let receipt_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(receipt).with_context(|| format!("reading {}", receipt.display()))?,
    )
    .with_context(|| format!("{} is not JSON", receipt.display()))?;
    // A delivery status (or `send --wait` output) holds the receipt.
    let receipt_json = match receipt_json.get("receipt") {
        Some(inner) if inner.is_object() => inner.clone(),
        Some(_) => anyhow::bail!(
            "{} holds no receipt yet (not delivered?)",
            receipt.display()
        ),
        None => receipt_json,
    };
    let receipt: Receipt = serde_json::from_value(receipt_json)
        .with_context(|| format!("{} is not a kuvert receipt", receipt.display()))?;
    let delivery_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(delivery).with_context(|| format!("reading {}", delivery.display()))?,
    )
    .with_context(|| format!("{} is not JSON", delivery.display()))?;
    let delivery_json = delivery_json
        .get("delivery")
        .cloned()
        .unwrap_or(delivery_json);
    let delivery: SecureDelivery = serde_json::from_value(delivery_json)
        .with_context(|| format!("{} is not a kuvert delivery", delivery.display()))?;
    let document = read_keys_document(keys).await?;
    let checks = check_receipt(&receipt, &delivery, &document);
    for check in &checks {
        let mark = if check.ok { "ok    " } else { "FAILED" };
        println!("{mark} {}: {}", check.name, check.detail);
    }
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    anyhow::ensure!(
        failed.is_empty(),
        "the receipt does not verify: {}",
        failed.join(", ")
    );
    println!(
        "the receipt is genuine: delivery {} was delivered to the mailbox at {}",
        receipt.delivery_id, receipt.delivered_at
    );
    Ok(())
}

/// Ctrl-C, or SIGTERM (what service managers and container runtimes send).
async fn stop_requested() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}
