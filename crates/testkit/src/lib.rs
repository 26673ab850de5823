//! The test harness: [`TestApp::spawn`] starts the production wiring
//! (`kuvert::app::start`) on port 0 with a fresh temporary data folder and
//! the demo data, and offers typed helpers over real HTTP. Nothing is mocked:
//! the relay delivers to the mailbox over loopback HTTP, as it would to
//! another operator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kuvert::app::{Running, Settings};
use kuvert::demo::{DemoData, DemoSender, DemoTenant};
use kuvert_domain::clock::ManualClock;
use kuvert_domain::delivery::{Attachment, SecureDelivery, SignedDelivery};
use kuvert_domain::status::DeliveryStatus;
use kuvert_store::Db;
use kuvert_web::api::batches::BatchItem;
use kuvert_web::api::status_feed::{StatusEventView, StatusFeed};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use kuvert::client;

pub mod crash;
pub mod oidc;

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

/// How long the helpers wait for something that happens in the background
/// (a delivery becoming final, the queue draining): generous, so a slow CI
/// machine does not fail a test that is merely slow.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub demo: DemoData,
    running: Option<Running>,
    data: tempfile::TempDir,
    configure: fn(&mut Settings),
    /// The relay reaches the mailbox through this URL (a fault proxy).
    mailbox_via: Option<String>,
    /// Settings applied after `configure` at each start (see
    /// [`restart_with`](Self::restart_with)).
    extra: Option<Arc<SettingsChange>>,
    /// The instance's clock when the test holds it (see
    /// [`spawn_with_clock`](Self::spawn_with_clock)); kept across restarts.
    clock: Option<Arc<ManualClock>>,
}

fn no_change(_: &mut Settings) {}

/// A change to the settings, applied at each start.
type SettingsChange = dyn Fn(&mut Settings) + Send + Sync;

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

    /// Like [`spawn_with`](Self::spawn_with), on a clock that stands at
    /// `at` until the test moves it ([`advance`](Self::advance)), at this
    /// and every later start. Pick an instant in the past: the last audit
    /// checkpoint at a stop is signed on the real clock.
    pub async fn spawn_with_clock(
        at: time::OffsetDateTime,
        configure: fn(&mut Settings),
    ) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(at));
        Self::spawn_in_with(data, configure, None, None, Some(clock)).await
    }

    /// Like [`spawn`](Self::spawn), with `extra` applied to the settings at
    /// this and every later start (a closure: it may hold a test
    /// provider's URL), and on a test clock standing at `at` if given.
    pub async fn spawn_configured(
        at: Option<time::OffsetDateTime>,
        extra: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let extra: Arc<SettingsChange> = Arc::new(extra);
        let clock = at.map(|at| Arc::new(ManualClock::new(at)));
        Self::spawn_in_with(data, no_change, None, Some(extra), clock).await
    }

    /// The settings a test would start with (`extra` applied last), for
    /// tests of what the start refuses.
    pub fn test_settings(data: &Path, extra: impl Fn(&mut Settings)) -> Settings {
        let mut settings = settings(data, no_change, None, None);
        extra(&mut settings);
        settings
    }

    /// The development identity provider's test people, in its page's order.
    pub fn dev_idp_people(&self) -> Vec<kuvert_web::dev_idp::TestPerson> {
        self.running()
            .state
            .dev_idp()
            .map(|idp| idp.people().to_vec())
            .unwrap_or_default()
    }

    /// The relying party's settings for the development provider (its
    /// client secret included), for tests that call its token endpoint.
    pub fn dev_idp_client(&self) -> kuvert_web::oidc::OidcSettings {
        self.running()
            .state
            .dev_idp()
            .expect("the development provider runs")
            .oidc_settings()
    }

    /// A browser-like client for the pages: its own cookie jar, redirects
    /// not followed (each step of a login is seen).
    pub fn browser(&self) -> oidc::Browser {
        oidc::Browser::new(&self.url)
    }

    /// Moves the test clock (see [`spawn_with_clock`](Self::spawn_with_clock)).
    pub fn advance(&self, by: time::Duration) {
        self.clock
            .as_ref()
            .expect("an instance spawned with a clock")
            .advance(by);
    }

    /// The instant the instance's clock shows.
    pub fn now(&self) -> time::OffsetDateTime {
        self.running().state.clock().now()
    }

    /// An instance whose relay reaches its mailbox through `proxy` (and a
    /// 1 s request timeout, so a hanging mailbox is noticed).
    pub async fn spawn_behind(proxy: &proxy::FaultProxy) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let app = Self::spawn_in(data, no_change, Some(proxy.url.clone())).await;
        proxy.set_upstream(&app.url);
        app
    }

    /// An instance whose relay delivers to its built-in mailbox at `url`
    /// (a stub or proxy in the test; 1 s request timeout), with `configure`.
    pub async fn spawn_with_mailbox_at(url: &str, configure: fn(&mut Settings)) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        Self::spawn_in(data, configure, Some(url.to_owned())).await
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
        Self::spawn_in_with(data, configure, mailbox_via, None, None).await
    }

    /// Starts an instance on `data` and keeps what a restart needs: the
    /// settings change, the mailbox address, the extra change and the clock.
    async fn spawn_in_with(
        data: tempfile::TempDir,
        configure: fn(&mut Settings),
        mailbox_via: Option<String>,
        extra: Option<Arc<SettingsChange>>,
        clock: Option<Arc<ManualClock>>,
    ) -> TestApp {
        let mut settings = settings(
            data.path(),
            configure,
            mailbox_via.as_deref(),
            extra.as_deref(),
        );
        if let Some(clock) = &clock {
            settings.clock = clock.clone();
        }
        let http = http_client(&settings);
        let running = kuvert::app::start(settings).await.expect("kuvert starts");
        let demo = running.demo.clone().expect("demo data");
        TestApp {
            url: running.url.clone(),
            http,
            demo,
            running: Some(running),
            data,
            configure,
            mailbox_via,
            extra,
            clock,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// The running instance's state, for tests that call a page module's
    /// functions (as the delegation interface's) the way handlers do.
    pub fn app_state(&self) -> &kuvert_web::AppState {
        &self.running().state
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
        let mut settings = settings(
            self.data.path(),
            self.configure,
            self.mailbox_via.as_deref(),
            self.extra.as_deref(),
        );
        if let Some(clock) = &self.clock {
            settings.clock = clock.clone();
        }
        let running = kuvert::app::start(settings).await.expect("kuvert starts");
        self.url = running.url.clone();
        self.running = Some(running);
    }

    /// Like [`restart`](Self::restart), with `extra` applied to the
    /// settings at this and every later start (a witness, say).
    pub async fn restart_with(&mut self, extra: impl Fn(&mut Settings) + Send + Sync + 'static) {
        self.extra = Some(Arc::new(extra));
        self.restart().await;
    }

    /// The checkpointer state of each database (`core`, `mailbox`).
    pub fn audit_guards(&self) -> &[Arc<kuvert::audit_log::AuditGuard>] {
        &self.running().audit
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

    /// The id of the demo recipient called `name` (say "Bertil Berg").
    pub fn person(&self, name: &str) -> String {
        self.demo
            .recipients
            .iter()
            .find(|r| r.name == name)
            .expect("demo person")
            .id
            .clone()
    }

    /// A one-message delivery from `sender` with a fresh reference, naming
    /// the recipient in the canonical 12-digit form as a sender must (a
    /// number that does not parse is kept as written, for tests of refusals).
    pub fn delivery(&self, sender: &DemoSender, recipient: &str, subject: &str) -> SecureDelivery {
        let today = time::OffsetDateTime::now_utc().date();
        let recipient =
            client::canonical_recipient(recipient, today).unwrap_or_else(|_| recipient.to_owned());
        client::simple_delivery(
            &sender.id,
            &sender.name,
            &recipient,
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

    /// A request to `path` on this instance, with `token` as the bearer
    /// credential when given; add headers or a body, then [`exchange`] it.
    pub fn http_request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Any request, with an optional JSON body; the answer as it came.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> RawAnswer {
        let mut request = self.http_request(method, path, token);
        if let Some(body) = body {
            request = request.json(body);
        }
        exchange(request).await
    }

    /// Any request, with an optional JSON body; the status and the body
    /// (JSON, or the text as a JSON string).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.request_raw(method, path, token, body).await.parts()
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl serde::Serialize,
    ) -> (StatusCode, Value) {
        exchange(self.http_request(Method::POST, path, token).json(body))
            .await
            .parts()
    }

    /// The register's certificate of a demo sender's key, as published.
    pub async fn certificate(
        &self,
        sender: &kuvert::demo::DemoSender,
    ) -> kuvert_mailbox::certificate::SenderKeyCertificate {
        let (status, document) = self
            .get(
                &format!("/register/v1/senders/{}/certificates", sender.id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{document}");
        let certified = document["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .find(|c| c["certificate"]["key_id"] == sender.key_id.as_str())
            .expect("the sender's key is certified");
        serde_json::from_value(certified["certificate"].clone()).expect("a certificate")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, token, None).await
    }

    /// A delivery from `sender` to `recipient`, to change before signing
    /// (see [`Letter`]).
    pub fn letter<'a>(
        &'a self,
        sender: &'a DemoSender,
        recipient: &str,
        subject: &str,
    ) -> Letter<'a> {
        Letter {
            app: self,
            sender,
            delivery: self.delivery(sender, recipient, subject),
        }
    }

    /// A [`letter`](Self::letter) from the demo municipality's first sender.
    pub fn kommun_letter(&self, recipient: &str, subject: &str) -> Letter<'_> {
        let (_, sender) = self.kommun();
        self.letter(sender, recipient, subject)
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
        self.send_raw(token, Some(key), signed).await.parts()
    }

    /// Sends, with an `Idempotency-Key` header when `key` is given; the
    /// answer as it came (for its headers, say `Retry-After`).
    pub async fn send_raw(
        &self,
        token: &str,
        key: Option<&str>,
        signed: &SignedDelivery,
    ) -> RawAnswer {
        let mut request = self
            .http_request(Method::POST, "/v1/deliveries", Some(token))
            .json(signed);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        exchange(request).await
    }

    /// Sends, asserts 202 and returns the delivery id.
    pub async fn send_accepted(&self, token: &str, signed: &SignedDelivery) -> String {
        let (status, body) = self.send(token, signed).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["delivery_id"].as_str().expect("id").to_owned()
    }

    /// Sends, asserts 202, waits until the delivery is final, asserts it
    /// was delivered and returns its status view.
    pub async fn send_delivered(&self, token: &str, signed: &SignedDelivery) -> Value {
        let id = self.send_accepted(token, signed).await;
        self.wait_delivered(token, &id).await
    }

    /// A signed one-message delivery from the demo municipality to `recipient`.
    pub fn kommun_signed(&self, recipient: &str, subject: &str) -> SignedDelivery {
        self.kommun_letter(recipient, subject).signed()
    }

    /// Sends as the demo municipality and returns the delivery id.
    pub async fn send_ok(&self, recipient: &str, subject: &str) -> String {
        let (tenant, _) = self.kommun();
        self.send_accepted(&tenant.token, &self.kommun_signed(recipient, subject))
            .await
    }

    /// `GET /v1/deliveries/{id}`: the status and the delivery's view.
    pub async fn delivery_view(&self, token: &str, delivery_id: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/deliveries/{delivery_id}"), Some(token))
            .await
    }

    /// Polls a delivery until its status is final (within [`PATIENCE`]) and
    /// returns its view.
    pub async fn wait_final(&self, token: &str, delivery_id: &str) -> Value {
        let what = format!("delivery {delivery_id} leaves `accepted`");
        eventually(&what, PATIENCE, move || async move {
            let (status, body) = self.delivery_view(token, delivery_id).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            (body["status"] != "accepted").then_some(body)
        })
        .await
    }

    /// [`wait_final`](Self::wait_final), and asserts the final status is
    /// `delivered`.
    pub async fn wait_delivered(&self, token: &str, delivery_id: &str) -> Value {
        let view = self.wait_final(token, delivery_id).await;
        assert_eq!(view["status"], "delivered", "{view}");
        view
    }

    /// Waits until the relay's queue is empty.
    pub async fn drain(&self) {
        eventually("the relay's queue drains", PATIENCE, move || async move {
            (self.outbox_len().await == 0).then_some(())
        })
        .await
    }

    /// `POST /v1/batches` with these items: the status and the answer.
    pub async fn batch(&self, token: &str, items: &[BatchItem]) -> (StatusCode, Value) {
        self.post("/v1/batches", Some(token), &json!({ "deliveries": items }))
            .await
    }

    /// [`batch`](Self::batch), asserting 202; returns the answer.
    pub async fn batch_accepted(&self, token: &str, items: &[BatchItem]) -> Value {
        let (status, body) = self.batch(token, items).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    /// `GET /v1/batches/{id}`, asserting 200: the batch's progress.
    pub async fn batch_view(&self, token: &str, batch_id: &str) -> Value {
        let (status, progress) = self
            .get(&format!("/v1/batches/{batch_id}"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{progress}");
        progress
    }

    /// The tenant's status events (up to 1000), oldest first; asserts 200.
    pub async fn status_events(&self, token: &str) -> Vec<StatusEventView> {
        let (status, feed) = self.get("/v1/status-feed?limit=1000", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{feed}");
        let feed: StatusFeed = serde_json::from_value(feed).expect("a status feed");
        feed.events
    }

    /// The tenant's [`status_events`](Self::status_events) grouped per
    /// delivery id, each delivery's statuses in order.
    pub async fn statuses_by_delivery(&self, token: &str) -> BTreeMap<String, Vec<DeliveryStatus>> {
        let mut out: BTreeMap<String, Vec<DeliveryStatus>> = BTreeMap::new();
        for event in self.status_events(token).await {
            out.entry(event.delivery_id).or_default().push(event.status);
        }
        out
    }

    /// `POST /v1/reachability` as `token` for `sender`: the status and the
    /// answer.
    pub async fn reachability(
        &self,
        token: &str,
        sender: &str,
        recipients: &[impl AsRef<str>],
    ) -> (StatusCode, Value) {
        let recipients: Vec<&str> = recipients.iter().map(AsRef::as_ref).collect();
        self.post(
            "/v1/reachability",
            Some(token),
            &json!({ "sender": sender, "recipients": recipients }),
        )
        .await
    }

    /// `GET /mailbox/v1/messages?{query}` (no query when it is empty) with
    /// a recipient token, asserting 200.
    pub async fn messages(&self, token: &str, query: &str) -> MessagePage {
        let path = match query {
            "" => "/mailbox/v1/messages".to_owned(),
            query => format!("/mailbox/v1/messages?{query}"),
        };
        let (status, page) = self.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        serde_json::from_value(page).expect("a page of messages")
    }

    /// The first 100 messages of the recipient's inbox (a token minted for
    /// them), newest first, with the folder's counts.
    pub async fn inbox(&self, recipient: &str) -> MessagePage {
        self.messages(&self.recipient_token(recipient), "page_size=100")
            .await
    }

    /// `GET /mailbox/v1/messages/{id}`: opens a message (marking it read).
    pub async fn open_message(&self, token: &str, message_id: &str) -> (StatusCode, Value) {
        self.get(&format!("/mailbox/v1/messages/{message_id}"), Some(token))
            .await
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

    /// A mail token (the built-in mailbox; mail.read, mail.manage) minted
    /// with the installation's key, valid one hour.
    pub fn recipient_token(&self, canonical_id: &str) -> String {
        self.mail_token(canonical_id)
    }

    /// A token for the built-in mailbox with mail.read and mail.manage.
    pub fn mail_token(&self, canonical_id: &str) -> String {
        use kuvert_web::auth::Scope;
        self.token_for(
            canonical_id,
            kuvert::app::BUILT_IN_OPERATOR,
            &[Scope::MailRead, Scope::MailManage],
            3600,
        )
        .expect("a mail token")
    }

    /// A token for the register with registration.read and registration.write.
    pub fn registration_token(&self, canonical_id: &str) -> String {
        use kuvert_web::auth::Scope;
        self.token_for(
            canonical_id,
            kuvert_web::auth::REGISTER_AUDIENCE,
            &[Scope::RegistrationRead, Scope::RegistrationWrite],
            3600,
        )
        .expect("a registration token")
    }

    /// A token for `audience` with `scopes`, minted now with the
    /// installation's key (minting's own refusals come back as they are).
    pub fn token_for(
        &self,
        canonical_id: &str,
        audience: &str,
        scopes: &[kuvert_web::auth::Scope],
        lifetime_seconds: i64,
    ) -> Result<String, kuvert_web::auth::TokenError> {
        let id = kuvert_domain::identity::RecipientId::parse_canonical(canonical_id).expect("id");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.running()
            .state
            .recipient_tokens()
            .mint(&id, audience, scopes, now, lifetime_seconds)
            .map(|minted| minted.token)
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

    /// Runs SQL on a database file while the instance runs, as anyone who
    /// can write the file could (for tests of what such a writer can forge).
    pub async fn write_sql(&self, file: &str, sql: &str) {
        use sqlx::Connection as _;
        let path = self.data.path().join(file);
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open for writing");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.expect("close");
    }

    /// Rewrites entry `seq`'s action and recomputes every hash from there on, as
    /// a forger who knows the (unkeyed) formula would.
    pub async fn rewrite_audit_entry(&self, seq: i64) {
        use sqlx::Connection as _;
        let path = self.data_dir().join("kuvert.db");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("rewrite the audit log");
        sqlx::query("UPDATE audit_log SET action = 'delivery.hidden' WHERE seq = ?")
            .bind(seq)
            .execute(&mut conn)
            .await
            .expect("rewrite the audit log");
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, String, Option<String>, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, tenant_id, actor, action, subject, detail FROM audit_log ORDER BY seq",
        )
        .fetch_all(&mut conn)
        .await
        .expect("rewrite the audit log");
        let mut prev = "0".repeat(64);
        for (seq, at, tenant, actor, action, subject, detail) in rows {
            let canonical =
                serde_json::json!([seq, at, tenant, actor, action, subject, detail]).to_string();
            let hash = kuvert_crypto::digest::sha256_hex(format!("{prev}\n{canonical}").as_bytes());
            sqlx::query("UPDATE audit_log SET hash = ? WHERE seq = ?")
                .bind(&hash)
                .bind(seq)
                .execute(&mut conn)
                .await
                .expect("rewrite the audit log");
            prev = hash;
        }
        conn.close().await.expect("rewrite the audit log");
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

/// A one-hour token for the built-in mailbox (mail.read, mail.manage)
/// minted with `tokens` (the harnesses' processes share the data folder).
pub fn mint_mail_token(
    tokens: &kuvert_web::auth::RecipientTokens,
    id: &kuvert_domain::identity::RecipientId,
) -> Result<String, kuvert_web::auth::TokenError> {
    use kuvert_web::auth::Scope;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let scopes = [Scope::MailRead, Scope::MailManage];
    tokens
        .mint(id, kuvert::app::BUILT_IN_OPERATOR, &scopes, now, 3600)
        .map(|m| m.token)
}

/// A one-hour token for the register (registration.read, registration.write).
pub fn mint_registration_token(
    tokens: &kuvert_web::auth::RecipientTokens,
    id: &kuvert_domain::identity::RecipientId,
) -> Result<String, kuvert_web::auth::TokenError> {
    use kuvert_web::auth::{REGISTER_AUDIENCE, Scope};
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let scopes = [Scope::RegistrationRead, Scope::RegistrationWrite];
    tokens
        .mint(id, REGISTER_AUDIENCE, &scopes, now, 3600)
        .map(|m| m.token)
}

/// Asserts a problem+json answer (RFC 9457) with `status` and `code`, and
/// returns its body.
pub fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> Value {
    assert_problem_for("", answer, status, code)
}

/// [`assert_problem`] for one of several cases: `case` leads the message
/// when it fails.
pub fn assert_problem_for(
    case: &str,
    answer: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
) -> Value {
    let (got, body) = answer;
    assert_eq!(*got, status, "{case}: want {status} {code}: {body}");
    assert_eq!(body["code"], code, "{case}: want {status} {code}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{case}: {body}");
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

/// One item of a batch: `signed`, with its own idempotency key when given.
pub fn batch_item(signed: &SignedDelivery, key: Option<&str>) -> BatchItem {
    BatchItem {
        delivery: signed.delivery.clone(),
        signature: signed.signature.clone(),
        idempotency_key: key.map(str::to_owned),
    }
}

/// The items of a batch of `signed` deliveries, without idempotency keys
/// (each defaults to its `header.reference`).
pub fn batch_items(signed: &[SignedDelivery]) -> Vec<BatchItem> {
    signed.iter().map(|s| batch_item(s, None)).collect()
}

/// The credential id inside a `kvt_<id>.<secret>` token.
pub fn credential_id(token: &str) -> String {
    let (id, _) = token
        .strip_prefix("kvt_")
        .and_then(|t| t.split_once('.'))
        .expect("a kvt_<id>.<secret> token");
    id.to_owned()
}

/// Sends `request` and reads the whole answer.
pub async fn exchange(request: reqwest::RequestBuilder) -> RawAnswer {
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    RawAnswer {
        status,
        headers,
        bytes,
    }
}

/// An answer as it came: status, headers and the exact body bytes.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawAnswer {
    /// A header's value, when it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The body as JSON, or (when it is not JSON) its text as a JSON string.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.bytes).into_owned()))
    }

    /// The status and [`json`](Self::json), as [`TestApp::get`] and the
    /// other helpers answer.
    pub fn parts(self) -> (StatusCode, Value) {
        (self.status, self.json())
    }
}

/// A delivery being put together (from [`TestApp::letter`]): one message
/// with a fresh reference, changed as the test needs, then signed.
pub struct Letter<'a> {
    app: &'a TestApp,
    sender: &'a DemoSender,
    delivery: SecureDelivery,
}

impl Letter<'_> {
    /// Attaches a small valid PDF showing `text` to the first message.
    pub fn pdf(self, filename: &str, text: &str) -> Self {
        let bytes = client::minimal_pdf(text);
        self.attach(client::attachment(filename, "application/pdf", &bytes))
    }

    /// Attaches `attachment` to the first message.
    pub fn attach(mut self, attachment: Attachment) -> Self {
        self.delivery.messages[0].attachments.push(attachment);
        self
    }

    /// Asks for paper when the recipient cannot be reached digitally.
    pub fn paper_fallback(mut self) -> Self {
        self.delivery.paper_fallback = true;
        self
    }

    /// Any other change, made before signing.
    pub fn with(mut self, change: impl FnOnce(&mut SecureDelivery)) -> Self {
        change(&mut self.delivery);
        self
    }

    /// The delivery, unsigned.
    pub fn unsigned(self) -> SecureDelivery {
        self.delivery
    }

    /// The delivery signed with the sender's demo key.
    pub fn signed(self) -> SignedDelivery {
        self.app.sign(self.sender, self.delivery)
    }
}

/// A page of a recipient's messages (`GET /mailbox/v1/messages`), as the
/// recipient API answers it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MessagePage {
    pub messages: Vec<MessageSummary>,
    /// Messages in the folder, on every page.
    pub total: i64,
    /// Unread messages in the folder, on every page.
    pub unread: i64,
    pub page: i64,
    pub page_size: i64,
}

impl MessagePage {
    /// The subjects on this page, in order.
    pub fn subjects(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.subject.clone()).collect()
    }

    /// The message ids on this page, in order.
    pub fn ids(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.id.clone()).collect()
    }
}

/// One message in a [`MessagePage`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MessageSummary {
    pub id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub subject: String,
    pub delivered_at: String,
    pub read: bool,
    pub archived: bool,
}

/// The client tests talk to the instance with: it trusts the instance's
/// `ca_file` too, when one is set (an instance serving HTTPS).
fn http_client(settings: &Settings) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).expect("CA file");
        for root in reqwest::Certificate::from_pem_bundle(&pem).expect("PEM") {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().expect("test client")
}

fn settings(
    data: &Path,
    configure: fn(&mut Settings),
    mailbox_via: Option<&str>,
    extra: Option<&SettingsChange>,
) -> Settings {
    let mut settings = Settings::new(data.to_path_buf());
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    settings.demo = true;
    settings.create_missing_keys = true;
    settings.allow_plain_http = true;
    settings.retry.base = Duration::from_millis(20);
    settings.retry.max = Duration::from_millis(200);
    settings.retry.lease = Duration::from_secs(2);
    // Fast retries would use up the default 20 attempts in ~3 s, shorter
    // than the outages tests hold; tests of the limit set their own.
    settings.retry.max_attempts = 10_000;
    settings.admin_token = Some(ADMIN_TOKEN.to_owned());
    // As `--demo` does: the e-ID login through the development provider.
    settings.dev_idp = true;
    // Tests send in bulk and look up often: no default quota throttles
    // them. Tests of the quotas set the documented defaults back
    // (`QuotaDefaults::default()`) or a tenant's own.
    settings.quota_defaults = kuvert_store::quotas::QuotaDefaults::unlimited();
    if let Some(url) = mailbox_via {
        settings.mailbox_url = Some(url.to_owned());
        settings.retry.request_timeout = Duration::from_secs(1);
    }
    configure(&mut settings);
    if let Some(extra) = extra {
        extra(&mut settings);
    }
    settings
}
