//! The test harness: [`TestApp::spawn`] starts the production wiring
//! (`kuvert::app::start`) on port 0 with a fresh temporary data folder and
//! the demo data, and offers typed helpers over real HTTP. Nothing is mocked:
//! the relay delivers to the mailbox over loopback HTTP, as it would to
//! another operator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kuvert::app::{Running, Settings};
use kuvert::demo::{DemoData, DemoSender, DemoTenant};
use kuvert_domain::delivery::{SecureDelivery, SignedDelivery};
use kuvert_store::Db;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use kuvert::client;

pub mod crash;

/// `main` of the testkit's binaries (`kuvert-crashtest`, `kuvert-bench`):
/// builds the runtime; when the first argument is `node`, runs the rest as
/// the `kuvert` command line (so a harness starts real `kuvert serve`
/// processes from its own executable) and returns its exit code; otherwise
/// runs `harness` on the runtime.
pub fn harness_main(
    harness: impl FnOnce(&tokio::runtime::Runtime) -> std::process::ExitCode,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut raw = std::env::args_os();
    let program = raw.next();
    let rest: Vec<_> = raw.collect();
    if rest.first().is_none_or(|a| a != "node") {
        return harness(&runtime);
    }
    kuvert::cli::init_tracing();
    let args = program.into_iter().chain(rest.into_iter().skip(1));
    match runtime.block_on(kuvert::cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
pub mod proxy;

pub const ADMIN_TOKEN: &str = "kva_test-platform-operator-token";

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub demo: DemoData,
    running: Option<Running>,
    data: tempfile::TempDir,
    configure: fn(&mut Settings),
    /// The relay reaches the mailbox through this URL (a fault proxy).
    mailbox_via: Option<String>,
}

fn no_change(_: &mut Settings) {}

impl TestApp {
    /// A fresh instance with demo data and fast retries.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(no_change).await
    }

    /// Like [`spawn`](Self::spawn), with settings adjusted first.
    pub async fn spawn_with(configure: fn(&mut Settings)) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        Self::spawn_in(data, configure, None).await
    }

    /// An instance whose relay reaches its mailbox through `proxy` (and a
    /// 1 s request timeout, so a hanging mailbox is noticed).
    pub async fn spawn_behind(proxy: &proxy::FaultProxy) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let app = Self::spawn_in(data, no_change, Some(proxy.url.clone())).await;
        proxy.set_upstream(&app.url);
        app
    }

    /// An instance with its data folder under `parent` (a small file
    /// system, say).
    pub async fn spawn_on(parent: &Path) -> TestApp {
        let data = tempfile::tempdir_in(parent).expect("temp dir");
        Self::spawn_in(data, no_change, None).await
    }

    async fn spawn_in(
        data: tempfile::TempDir,
        configure: fn(&mut Settings),
        mailbox_via: Option<String>,
    ) -> TestApp {
        let running = start(data.path(), configure, mailbox_via.as_deref()).await;
        let demo = running.demo.clone().expect("demo data");
        TestApp {
            url: running.url.clone(),
            http: reqwest::Client::new(),
            demo,
            running: Some(running),
            data,
            configure,
            mailbox_via,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn core_db(&self) -> &Db {
        self.running().core_db.as_ref().expect("core role")
    }

    pub fn mailbox_db(&self) -> &Db {
        self.running().mailbox_db.as_ref().expect("mailbox role")
    }

    pub fn audit_public_key(&self) -> kuvert_crypto::signing::PublicKey {
        self.running().keys.audit.public_key()
    }

    /// The relay's credential at the built-in mailbox (`kvm_…`).
    pub fn relay_credential(&self) -> &str {
        &self.running().keys.relay_mailbox_credential
    }

    /// Posts sealed deliveries to the mailbox as the installation's relay.
    pub async fn deliver_sealed(
        &self,
        deliveries: Vec<kuvert_mailbox::protocol::SealedDelivery>,
    ) -> (StatusCode, Value) {
        self.post(
            "/mailbox/v1/deliveries",
            Some(self.relay_credential()),
            &kuvert_mailbox::protocol::DeliverRequest { deliveries },
        )
        .await
    }

    /// Stops the instance (as a shutdown would) and starts it again on the
    /// same data folder, on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = start(
            self.data.path(),
            self.configure,
            self.mailbox_via.as_deref(),
        )
        .await;
        self.url = running.url.clone();
        self.running = Some(running);
    }

    /// Ends the instance as a crash would (`Running::abort`: no last audit
    /// checkpoint, databases not closed); [`restart`](Self::restart) starts
    /// it again on the same data folder.
    pub fn crash(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }

    /// Stops the instance; the data folder stays until the TestApp drops.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Puts the mailbox in (or out of) maintenance: deliveries get 503.
    pub fn set_mailbox_open(&self, open: bool) {
        self.running().state.set_mailbox_open(open);
    }

    pub fn tenant(&self, name: &str) -> &DemoTenant {
        self.demo
            .tenants
            .iter()
            .find(|t| t.tenant == name)
            .expect("demo tenant")
    }

    /// The demo municipality's first sender.
    pub fn kommun(&self) -> (&DemoTenant, &DemoSender) {
        let t = self.tenant("demokommun");
        (t, &t.senders[0])
    }

    pub fn recipient(&self, state: &str) -> &kuvert::demo::DemoRecipient {
        self.demo
            .recipients
            .iter()
            .find(|r| r.state == state)
            .expect("demo recipient")
    }

    /// A one-message delivery from `sender` with a fresh reference.
    pub fn delivery(&self, sender: &DemoSender, recipient: &str, subject: &str) -> SecureDelivery {
        client::simple_delivery(
            &sender.id,
            &sender.name,
            recipient,
            Some(format!("ref-{}", kuvert_crypto::digest::random_token(12))),
            subject,
            &format!("Brödtext för {subject}"),
            false,
            Vec::new(),
        )
    }

    pub fn sign(&self, sender: &DemoSender, delivery: SecureDelivery) -> SignedDelivery {
        client::sign(delivery, &sender.key().expect("demo key"))
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl serde::Serialize,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn send(&self, token: &str, signed: &SignedDelivery) -> (StatusCode, Value) {
        self.post("/v1/deliveries", Some(token), signed).await
    }

    /// Sends with an `Idempotency-Key` header.
    pub async fn send_with_key(
        &self,
        token: &str,
        key: &str,
        signed: &SignedDelivery,
    ) -> (StatusCode, Value) {
        let request = self
            .http
            .post(format!("{}/v1/deliveries", self.url))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(signed);
        into_parts(request.send().await.expect("request")).await
    }

    /// A signed one-message delivery from the demo municipality to `recipient`.
    pub fn kommun_signed(&self, recipient: &str, subject: &str) -> SignedDelivery {
        let (_, sender) = self.kommun();
        self.sign(sender, self.delivery(sender, recipient, subject))
    }

    /// Sends as the demo municipality and returns the delivery id.
    pub async fn send_ok(&self, recipient: &str, subject: &str) -> String {
        let (tenant, sender) = self.kommun();
        let signed = self.sign(sender, self.delivery(sender, recipient, subject));
        let (status, body) = self.send(&tenant.token, &signed).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["delivery_id"].as_str().expect("id").to_owned()
    }

    /// Polls a delivery until its status is final (with a generous deadline).
    pub async fn wait_final(&self, token: &str, delivery_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self
                .get(&format!("/v1/deliveries/{delivery_id}"), Some(token))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] != "accepted" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery {delivery_id} still accepted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the relay's queue is empty.
    pub async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.outbox_len().await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "queue did not drain"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Jobs in the relay's queue towards mailbox operators.
    pub async fn outbox_len(&self) -> i64 {
        self.query("kuvert.db", "SELECT COUNT(*) FROM outbox").await
    }

    /// Deliveries the mailbox holds (each delivery id at most once by
    /// construction; tests count them to prove "never twice").
    pub async fn mailbox_delivery_count(&self) -> i64 {
        self.query("mailbox.db", "SELECT COUNT(*) FROM mailbox_deliveries")
            .await
    }

    /// A recipient token minted with the installation's key.
    pub fn recipient_token(&self, canonical_id: &str) -> String {
        let id = kuvert_domain::identity::RecipientId::parse_canonical(canonical_id).expect("id");
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        self.running().state.recipient_tokens().mint(&id, exp)
    }

    /// One value from a read-only query of `kuvert.db` or `mailbox.db`
    /// (`Option<T>` for a column that may be NULL).
    pub async fn query<T>(&self, file: &str, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
    {
        self.query_all(file, sql)
            .await
            .into_iter()
            .next()
            .expect(sql)
    }

    /// Every row of a one-column query, on a read-only connection.
    pub async fn query_all<T>(&self, file: &str, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
    {
        let pool = self.read_only(file).await;
        let values = sqlx::query_scalar::<_, T>(sql)
            .fetch_all(&pool)
            .await
            .expect(sql);
        pool.close().await;
        values
    }

    /// With the mailbox closed, sends one message to `recipient` and returns
    /// the sealed delivery the relay queued for it (the mailbox is open
    /// again on return; the relay will deliver it too).
    pub async fn queued_sealed_delivery(&self, recipient: &str, subject: &str) -> Vec<u8> {
        self.set_mailbox_open(false);
        self.send_ok(recipient, subject).await;
        let sealed = self
            .query::<Vec<u8>>("kuvert.db", "SELECT sealed FROM outbox LIMIT 1")
            .await;
        self.set_mailbox_open(true);
        sealed
    }

    async fn read_only(&self, file: &str) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.data.path().join(file))
            .read_only(true);
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open read-only")
    }

    /// Every database file (with WAL) in the data folder.
    pub fn database_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data.path())
            .expect("data dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains(".db"))
            .collect()
    }
}

/// Asserts a problem+json answer (RFC 9457) with `status` and `code`, and
/// returns its body.
pub fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> Value {
    let (got, body) = answer;
    assert_eq!(*got, status, "want {status} {code}: {body}");
    assert_eq!(body["code"], code, "want {status} {code}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    body.clone()
}

/// Polls `probe` every 20 ms until it gives a value, failing after
/// `deadline` with `what` (a test never waits for a fixed time).
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(data: &Path, configure: fn(&mut Settings), mailbox_via: Option<&str>) -> Running {
    let mut settings = Settings::new(data.to_path_buf());
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    settings.demo = true;
    settings.retry.base = Duration::from_millis(20);
    settings.retry.max = Duration::from_millis(200);
    settings.retry.lease = Duration::from_secs(2);
    settings.admin_token = Some(ADMIN_TOKEN.to_owned());
    if let Some(url) = mailbox_via {
        settings.mailbox_url = Some(url.to_owned());
        settings.retry.request_timeout = Duration::from_secs(1);
    }
    configure(&mut settings);
    kuvert::app::start(settings).await.expect("kuvert starts")
}

async fn into_parts(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
