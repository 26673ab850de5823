//! Between relay and mailbox operator: TLS with a private CA, no redirects,
//! `https` required outside the demo, results matched by delivery id, and
//! only a rejection signed by the operator's receipt key fails a delivery
//! (decision 0011). Each attack is made by a stub operator in the test.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use kuvert::app::Settings;
use kuvert_testkit::{PATIENCE, TestApp, eventually};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A private CA, a server certificate it issued for 127.0.0.1 and
/// localhost, and an unrelated CA; made once per test binary.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("transport-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new_ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            (cert, Issuer::new(params, key))
        };
        let (ca_cert, ca) = new_ca("kuvert test CA");
        let (other_cert, _) = new_ca("some other CA");
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            cert: write("server.pem", server.pem()),
            key: write("server.key", server_key.serialize_pem()),
        }
    })
}

/// Serves HTTPS with the test CA's certificate, as production would: no
/// plain HTTP towards operators.
fn tls_production(settings: &mut Settings) {
    let pki = pki();
    settings.tls_cert = Some(pki.cert.clone());
    settings.tls_key = Some(pki.key.clone());
    settings.ca_file = Some(pki.ca.clone());
    settings.allow_plain_http = false;
}

/// As [`tls_production`], but the relay trusts only an unrelated CA.
fn tls_without_the_ca(settings: &mut Settings) {
    tls_production(settings);
    settings.ca_file = Some(pki().other_ca.clone());
}

/// A client of the test's own that trusts the test CA.
fn client_trusting_the_ca() -> reqwest::Client {
    let pem = std::fs::read(&pki().ca).unwrap();
    let mut builder = reqwest::Client::builder();
    for root in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
        builder = builder.add_root_certificate(root);
    }
    builder.build().unwrap()
}

fn plain_demo(_: &mut Settings) {}

/// The outbox row of `delivery_id`: attempts so far and the last error.
async fn outbox_row(app: &TestApp, delivery_id: &str) -> Option<(i64, String)> {
    let attempts: Vec<i64> = app
        .query_all(
            "kuvert.db",
            &format!("SELECT attempts FROM outbox WHERE delivery_id = '{delivery_id}'"),
        )
        .await;
    let errors: Vec<Option<String>> = app
        .query_all(
            "kuvert.db",
            &format!("SELECT last_error FROM outbox WHERE delivery_id = '{delivery_id}'"),
        )
        .await;
    Some((
        *attempts.first()?,
        errors.first()?.clone().unwrap_or_default(),
    ))
}

/// Waits until the delivery was attempted at least `times` times and is
/// still queued (never `failed`, never delivered); returns the last error.
async fn retried(app: &TestApp, delivery_id: &str, times: i64) -> String {
    let (tenant, _) = app.kommun();
    let token = tenant.token.clone();
    eventually("the delivery is retried", PATIENCE, || {
        let token = token.clone();
        async move {
            let (_, view) = app.delivery_view(&token, delivery_id).await;
            assert_eq!(view["status"], "accepted", "{view}");
            let (attempts, error) = outbox_row(app, delivery_id).await?;
            (attempts >= times).then_some(error)
        }
    })
    .await
}

// ---- a stub operator --------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer every delivery with an unsigned `rejected`.
    RejectUnsigned,
    /// Pass the request to the real mailbox and its answer back.
    Forward,
    /// Forward; answer the results in reverse order, and drop the first
    /// result of the first request with several deliveries.
    ForwardReversedDropOnce,
    /// Forward with every seal signature replaced: the real mailbox
    /// answers with its own signed rejections (the first one is kept).
    ForwardTamperingSeals,
    /// Answer every request with the genuine rejection kept before.
    ReplayRejection,
}

struct Stub {
    mode: Mutex<Mode>,
    mailbox: Mutex<Option<String>>,
    /// Every request's delivery ids, in order.
    requests: Mutex<Vec<Vec<String>>>,
    dropped: Mutex<Option<String>>,
    /// The first genuine rejection seen under `ForwardTamperingSeals`.
    captured: Mutex<Option<Value>>,
    http: reqwest::Client,
}

impl Stub {
    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }
}

async fn start_stub(mode: Mode) -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub {
        mode: Mutex::new(mode),
        mailbox: Mutex::new(None),
        requests: Mutex::new(Vec::new()),
        dropped: Mutex::new(None),
        captured: Mutex::new(None),
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new()
        .route("/mailbox/v1/deliveries", axum::routing::post(stub_deliver))
        .with_state(stub.clone());
    let url = serve(app).await;
    (url, stub)
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn stub_deliver(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut request: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<String> = request["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    stub.requests.lock().unwrap().push(ids.clone());
    let mode = *stub.mode.lock().unwrap();
    if mode == Mode::RejectUnsigned {
        // Both shapes of a rejection: the flat one of before decision 0011
        // and the signed statement, here with a signature of zeros.
        let results: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({
                    "outcome": "rejected",
                    "delivery_id": id,
                    "code": "bad_seal",
                    "message": "forged by the path",
                    "rejection": {
                        "format": "kuvert-rejection-v1",
                        "delivery_id": id,
                        "operator_id": "kuvert-brevlada",
                        "code": "bad_seal",
                        "message": "forged by the path",
                        "rejected_at": "2026-12-01T10:00:00.000000Z",
                        "key_id": "ed25519:0000000000000000",
                        "signature": "A".repeat(86) + "==",
                    }
                })
            })
            .collect();
        return axum::Json(json!({ "results": results })).into_response();
    }
    if mode == Mode::ReplayRejection {
        let captured = stub.captured.lock().unwrap().clone().unwrap();
        return axum::Json(json!({ "results": [captured] })).into_response();
    }
    if mode == Mode::ForwardTamperingSeals {
        for delivery in request["deliveries"].as_array_mut().unwrap() {
            delivery["seal_signature"] = json!("A".repeat(86) + "==");
        }
    }
    let mailbox = stub.mailbox.lock().unwrap().clone().unwrap();
    let mut forward = stub
        .http
        .post(format!("{mailbox}/mailbox/v1/deliveries"))
        .json(&request);
    if let Some(auth) = headers.get("authorization") {
        forward = forward.header("authorization", auth);
    }
    let answer = forward.send().await.unwrap();
    let status = AxumStatus::from_u16(answer.status().as_u16()).unwrap();
    let mut body: Value = answer.json().await.unwrap();
    if mode == Mode::ForwardReversedDropOnce && status == AxumStatus::OK {
        let results = body["results"].as_array_mut().unwrap();
        results.reverse();
        let mut dropped = stub.dropped.lock().unwrap();
        if dropped.is_none() && ids.len() >= 2 {
            *dropped = Some(ids[0].clone());
            // ids[0]'s result is last after the reversal.
            results.pop();
        }
    }
    if mode == Mode::ForwardTamperingSeals {
        let mut captured = stub.captured.lock().unwrap();
        if captured.is_none() {
            *captured = body["results"].get(0).cloned();
        }
    }
    (status, axum::Json(body)).into_response()
}

// ---- (a) TLS with a private CA ---------------------------------------

/// kuvert serves HTTPS with a certificate from a private CA, and its relay,
/// given that CA (`--ca-file`), delivers to the mailbox at the `https`
/// address, with plain HTTP refused; after a graceful restart too.
#[tokio::test]
async fn a_mailbox_at_an_https_address_with_a_private_ca_gets_its_deliveries() {
    let mut app = TestApp::spawn_with(tls_production).await;
    assert!(app.url.starts_with("https://"), "{}", app.url);
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Över TLS").await;
    let (tenant, _) = app.kommun();
    let token = tenant.token.clone();
    app.wait_delivered(&token, &id).await;
    app.restart().await;
    assert!(app.url.starts_with("https://"), "{}", app.url);
    let id = app.send_ok(&anna, "Över TLS igen").await;
    app.wait_delivered(&token, &id).await;
    assert_eq!(app.mailbox_delivery_count().await, 2);
    app.stop().await;
}

/// A relay that does not trust the mailbox's CA does not deliver: it
/// retries, and the mailbox receives nothing.
#[tokio::test]
async fn without_the_private_ca_the_relay_retries_and_delivers_nothing() {
    let mut app = TestApp::spawn_with(tls_without_the_ca).await;
    app.http = client_trusting_the_ca();
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Okänd CA").await;
    let error = retried(&app, &id, 3).await;
    assert!(!error.is_empty(), "a transport error is recorded");
    assert_eq!(app.mailbox_delivery_count().await, 0);
    app.stop().await;
}

// ---- (b) redirects ------------------------------------------------------

/// The operator's address answers 307 to a third host: the relay must not
/// follow (the sealed deliveries carry identity numbers in the clear).
#[tokio::test]
async fn a_redirect_from_the_operator_address_is_not_followed() {
    let seen_elsewhere = Arc::new(AtomicUsize::new(0));
    let collector = {
        let seen = seen_elsewhere.clone();
        axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                AxumStatus::INTERNAL_SERVER_ERROR
            }
        })
    };
    let elsewhere = serve(collector).await;
    let redirects = Arc::new(AtomicUsize::new(0));
    let redirector = {
        let redirects = redirects.clone();
        axum::Router::new().fallback(move || {
            let redirects = redirects.clone();
            let location = format!("{elsewhere}/mailbox/v1/deliveries");
            async move {
                redirects.fetch_add(1, Ordering::SeqCst);
                (
                    AxumStatus::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, location)],
                )
            }
        })
    };
    let redirecting = serve(redirector).await;
    let app = TestApp::spawn_with_mailbox_at(&redirecting, plain_demo).await;
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Omdirigerad").await;
    let error = retried(&app, &id, 3).await;
    assert!(error.contains("307"), "{error}");
    assert!(redirects.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        seen_elsewhere.load(Ordering::SeqCst),
        0,
        "nothing reached the redirect's target"
    );
}

// ---- (c) rejections must be signed ----------------------------------------

/// Something on the path answers `rejected` for every delivery, unsigned:
/// the relay retries, and once the real mailbox answers, it delivers.
#[tokio::test]
async fn unsigned_rejections_are_retried_until_the_real_mailbox_answers() {
    let (url, stub) = start_stub(Mode::RejectUnsigned).await;
    let app = TestApp::spawn_with_mailbox_at(&url, plain_demo).await;
    *stub.mailbox.lock().unwrap() = Some(app.url.clone());
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Falskt nej").await;
    let error = retried(&app, &id, 3).await;
    assert!(error.contains("rejection"), "{error}");
    stub.set_mode(Mode::Forward);
    let (tenant, _) = app.kommun();
    app.wait_delivered(&tenant.token, &id).await;
    assert_eq!(app.mailbox_delivery_count().await, 1);
}

/// A genuine rejection, signed by the operator's receipt key (here the
/// real mailbox refusing seals the path broke), still fails the delivery.
#[tokio::test]
async fn a_rejection_signed_by_the_operator_fails_the_delivery() {
    let (url, stub) = start_stub(Mode::ForwardTamperingSeals).await;
    let app = TestApp::spawn_with_mailbox_at(&url, plain_demo).await;
    *stub.mailbox.lock().unwrap() = Some(app.url.clone());
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Äkta nej").await;
    let (tenant, _) = app.kommun();
    let view = app.wait_final(&tenant.token, &id).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(app.mailbox_delivery_count().await, 0);
}

/// A genuine signed rejection of one delivery, replayed by the path as the
/// answer for another: it names the first delivery, so the second is
/// retried (no result of its own) and later delivered.
#[tokio::test]
async fn a_genuine_rejection_replayed_for_another_delivery_fails_nothing() {
    let (url, stub) = start_stub(Mode::ForwardTamperingSeals).await;
    let app = TestApp::spawn_with_mailbox_at(&url, plain_demo).await;
    *stub.mailbox.lock().unwrap() = Some(app.url.clone());
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let first = app.send_ok(&anna, "Avvisas på riktigt").await;
    let view = app.wait_final(&tenant.token, &first).await;
    assert_eq!(view["status"], "failed", "{view}");
    let captured = stub.captured.lock().unwrap().clone().unwrap();
    assert_eq!(captured["rejection"]["delivery_id"], first.as_str());
    stub.set_mode(Mode::ReplayRejection);
    let second = app.send_ok(&anna, "Ska fram").await;
    let error = retried(&app, &second, 3).await;
    assert!(error.contains("no result"), "{error}");
    stub.set_mode(Mode::Forward);
    app.wait_delivered(&tenant.token, &second).await;
}

// ---- (d) results by delivery id -----------------------------------------

/// The operator answers in reverse order and leaves one result out: each
/// job takes its own result (by delivery id), the one without is retried.
#[tokio::test]
async fn results_are_matched_by_delivery_id_whatever_their_order() {
    let (url, stub) = start_stub(Mode::ForwardReversedDropOnce).await;
    let app = TestApp::spawn_with_mailbox_at(&url, plain_demo).await;
    *stub.mailbox.lock().unwrap() = Some(app.url.clone());
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let signed: Vec<_> = (0..4)
        .map(|n| app.kommun_signed(&anna, &format!("Brev {n}")))
        .collect();
    let batch = app
        .batch_accepted(&tenant.token, &kuvert_testkit::batch_items(&signed))
        .await;
    let ids: Vec<String> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4, "{batch}");
    for id in &ids {
        let view = app.wait_delivered(&tenant.token, id).await;
        assert_eq!(view["receipt"]["delivery_id"], id.as_str(), "{view}");
    }
    assert_eq!(app.mailbox_delivery_count().await, 4);
    let requests = stub.requests();
    assert!(
        requests.iter().any(|r| r.len() >= 2),
        "the relay sent several deliveries in one request: {requests:?}"
    );
    let dropped = stub.dropped.lock().unwrap().clone().unwrap();
    let sent = requests.iter().flatten().filter(|d| **d == dropped).count();
    assert_eq!(sent, 2, "the job without a result, and only it, went again");
    assert_eq!(requests.iter().flatten().count(), 5, "{requests:?}");
}

// ---- (e) https required outside the demo ------------------------------------

/// Outside the demo, kuvert does not start a relay that would deliver to
/// its built-in mailbox over plain HTTP.
#[tokio::test]
async fn a_relay_refuses_to_start_towards_a_plain_http_mailbox_outside_the_demo() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(data.path().to_path_buf());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let error = match kuvert::app::start(settings).await {
        Ok(running) => {
            running.stop().await;
            panic!("started with a plain-HTTP delivery address");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("plain HTTP"), "{error}");
    assert!(error.contains("--allow-plain-http"), "{error}");
}

/// An operator whose registered address becomes `http://` gets nothing
/// while plain HTTP is not allowed: each attempt is refused before it is
/// sent, and retried.
#[tokio::test]
async fn a_plain_http_operator_address_is_refused_before_each_post() {
    let seen = Arc::new(AtomicUsize::new(0));
    let listener = {
        let seen = seen.clone();
        axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                AxumStatus::SERVICE_UNAVAILABLE
            }
        })
    };
    let plain = serve(listener).await;
    let app = TestApp::spawn_with(tls_production).await;
    let operator_id = kuvert_domain::ids::OperatorId::parse("kuvert-brevlada").unwrap();
    let mut operator = app.core_db().operator(&operator_id).await.unwrap().unwrap();
    operator.delivery_url = format!("{plain}/mailbox/v1/deliveries");
    // Certified by the register (a row changed behind it would be refused
    // for that already): the relay's own transport rule must refuse it.
    let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
    kuvert_register::register_operator(
        app.core_db(),
        &keys.register,
        operator,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Inte i klartext").await;
    let error = retried(&app, &id, 3).await;
    assert!(error.contains("plain HTTP"), "{error}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing was sent in the clear"
    );
}

/// `kuvert healthcheck` reaches an instance serving HTTPS with a private
/// CA's certificate when given that CA, and not without it.
#[tokio::test]
async fn healthcheck_trusts_a_private_ca_only_when_given_it() {
    let mut app = TestApp::spawn_with(tls_production).await;
    let ca = pki().ca.to_string_lossy().into_owned();
    let with_ca = ["kuvert", "healthcheck", "--url", &app.url, "--ca-file", &ca];
    kuvert::cli::run(with_ca).await.unwrap();
    let without = ["kuvert", "healthcheck", "--url", &app.url];
    assert!(kuvert::cli::run(without).await.is_err());
    app.stop().await;
}

/// TLS handshakes do not wait for each other: clients that connect and
/// never say anything do not keep the next client out.
#[tokio::test]
async fn silent_clients_do_not_hold_up_the_tls_handshakes_of_others() {
    let app = TestApp::spawn_with(tls_production).await;
    let address = app.url.trim_start_matches("https://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.http.get(format!("{}/health", app.url)).send(),
    )
    .await
    .expect("answered while the silent clients wait")
    .unwrap();
    assert!(answer.status().is_success());
    drop(silent);
}

/// Settings that cannot make a TLS configuration stop start-up with a
/// message that names the problem, instead of serving without it.
#[tokio::test]
async fn unusable_tls_settings_stop_start_up() {
    let data = tempfile::tempdir().unwrap();
    let not_pem = data.path().join("not.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    let base = || {
        let mut settings = Settings::new(data.path().join("node"));
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.allow_plain_http = true;
        settings
    };
    let start_error = |settings: Settings| async move {
        match kuvert::app::start(settings).await {
            Ok(running) => {
                running.stop().await;
                panic!("started");
            }
            Err(error) => format!("{error:#}"),
        }
    };
    let mut cert_alone = base();
    cert_alone.tls_cert = Some(pki().cert.clone());
    let error = start_error(cert_alone).await;
    assert!(error.contains("go together"), "{error}");

    let mut no_certificate = base();
    no_certificate.tls_cert = Some(not_pem.clone());
    no_certificate.tls_key = Some(pki().key.clone());
    let error = start_error(no_certificate).await;
    assert!(error.contains("holds no certificate"), "{error}");

    let mut roots_without_certificates = base();
    roots_without_certificates.ca_file = Some(not_pem);
    let error = start_error(roots_without_certificates).await;
    assert!(error.contains("hold no certificate"), "{error}");
}

/// The e-ID login over HTTPS (issue 18): the relying party reaches the
/// provider (here the development one at kuvert's own https URL) through
/// kuvert's one client, trusting the extra CA; cookies are `Secure` with
/// the `__Host-` prefix.
#[tokio::test]
async fn the_login_over_tls_uses_host_prefixed_secure_cookies() {
    let app = TestApp::spawn_with(tls_production).await;
    assert!(app.url.starts_with("https://"));
    let pem = std::fs::read(&pki().ca).unwrap();
    let browser = kuvert_testkit::oidc::Browser::trusting(&app.url, Some(&pem));
    let start = browser.start_login().await;
    let pre_login = start.cookie_line("__Host-kuvert_login").unwrap();
    assert!(
        pre_login.contains("; Secure") && pre_login.contains("Path=/"),
        "{pre_login}"
    );
    assert!(!pre_login.contains("Domain"), "{pre_login}");
    let anna = app
        .dev_idp_people()
        .iter()
        .position(|p| p.given_name == "Anna")
        .unwrap();
    let picked = browser.pick_person(&start.location.unwrap(), anna).await;
    let done = browser.get(&picked.location.unwrap()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done.cookie_line("__Host-kuvert_session").unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    assert!(browser.get("/").await.body.contains("Anna Andersson"));
}

/// The relying party trusts what kuvert's transport trusts, no more: with
/// an unrelated CA it cannot reach the provider, and says so.
#[tokio::test]
async fn the_relying_party_does_not_reach_a_provider_it_cannot_verify() {
    let app = TestApp::spawn_with(tls_without_the_ca).await;
    let pem = std::fs::read(&pki().ca).unwrap();
    let browser = kuvert_testkit::oidc::Browser::trusting(&app.url, Some(&pem));
    let refused = browser.get("/login").await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("<code>provider_unavailable</code>"));
    assert!(refused.cookie("__Host-kuvert_login").is_none());
}
