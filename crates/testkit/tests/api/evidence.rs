//! Evidence a sender can check alone: the operator's published keys, a
//! receipt bound to what the sender signed, checked by `kuvert receipt
//! verify`, and one signed delivery delivered once, whatever key it is sent
//! with.

use kuvert_domain::delivery::SignedDelivery;
use kuvert_mailbox::evidence::{KeyPurpose, KeysDocument, OwnerKind, check_receipt};
use kuvert_mailbox::protocol::Receipt;
use kuvert_testkit::{TestApp, assert_problem, batch_item, batch_items};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;

/// A change made to a receipt after it was signed.
type Tamper = Box<dyn Fn(&mut Receipt)>;

/// Runs the `kuvert` command line in this process.
async fn kuvert(args: &[&str]) -> anyhow::Result<()> {
    kuvert::cli::run(std::iter::once("kuvert").chain(args.iter().copied())).await
}

/// `kuvert receipt verify` of the files and keys document given.
async fn verify(receipt: &str, delivery: &str, keys: &str) -> anyhow::Result<()> {
    kuvert(&[
        "receipt",
        "verify",
        "--receipt",
        receipt,
        "--delivery",
        delivery,
        "--keys",
        keys,
    ])
    .await
}

fn write_json(path: &Path, value: &impl serde::Serialize) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Sends a delivery to Anna and waits for it: the signed delivery and the
/// final status (with the receipt).
async fn delivered_to_anna(app: &TestApp) -> (SignedDelivery, Value) {
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let signed = app.kommun_signed(&anna, "Beslut om bygglov");
    let view = app.send_delivered(&tenant.token, &signed).await;
    (signed, view)
}

/// The keys URL as an integrator finds it: the reachability answer's
/// service supplier names the operator and its keys document.
async fn keys_url_from_reachability(app: &TestApp) -> String {
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let (status, answer) = app.reachability(&tenant.token, &sender.id, &[anna]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let supplier = &answer["results"][0]["service_supplier"];
    let keys = supplier["keys_url"].as_str().unwrap();
    assert_eq!(
        keys,
        format!(
            "/register/v1/operators/{}/keys",
            supplier["id"].as_str().unwrap()
        )
    );
    format!("{}{keys}", app.url)
}

#[tokio::test]
async fn a_receipt_verifies_against_the_signed_delivery_and_the_published_keys_and_each_tampered_field_is_named()
 {
    let app = TestApp::spawn().await;
    let (signed, view) = delivered_to_anna(&app).await;
    let keys_url = keys_url_from_reachability(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (receipt_file, delivery_file) =
        (dir.path().join("status.json"), dir.path().join("sent.json"));
    write_json(&receipt_file, &view);
    write_json(&delivery_file, &signed);
    let receipt_arg = receipt_file.to_str().unwrap();
    let delivery_arg = delivery_file.to_str().unwrap();
    verify(receipt_arg, delivery_arg, &keys_url)
        .await
        .expect("a genuine receipt verifies");

    // Each field of the receipt changed after signing: the command fails
    // and names the signature and whatever else no longer matches.
    let receipt: Receipt = serde_json::from_value(view["receipt"].clone()).unwrap();
    let other_digest = "ab".repeat(32);
    let tamperings: Vec<(&str, Tamper, &[&str])> = vec![
        (
            "format",
            Box::new(|r| r.format = "kuvert-receipt-v1".into()),
            &["format", "signature"],
        ),
        (
            "delivery_id",
            Box::new(|r| r.delivery_id = kuvert_domain::ids::DeliveryId::new().to_string()),
            &["signature"],
        ),
        (
            "recipient",
            Box::new(|r| r.recipient = "199009094260".into()),
            &["signature", "recipient"],
        ),
        (
            "sender_id",
            Box::new(|r| r.sender_id = "162021004748".into()),
            &["signature", "sender"],
        ),
        (
            "operator_id",
            Box::new(|r| r.operator_id = "annan-operator".into()),
            &["keys document", "signature"],
        ),
        (
            "delivered_at",
            Box::new(|r| r.delivered_at = "2020-01-01T00:00:00.000000Z".into()),
            &["key in use at delivery", "signature"],
        ),
        (
            "delivery_digest",
            Box::new(move |r| r.delivery_digest = other_digest.clone()),
            &["signature", "delivery digest"],
        ),
        (
            "message_ids",
            Box::new(|r| r.message_ids.push("extra".into())),
            &["signature", "message ids"],
        ),
        (
            "key_id",
            Box::new(|r| r.key_id = "ed25519:0000000000000000".into()),
            &["receipt key", "key in use at delivery", "signature"],
        ),
        (
            "signature",
            Box::new(|r| {
                let mut bytes = kuvert_crypto::signing::Signature::from_base64(&r.signature)
                    .unwrap()
                    .to_bytes();
                bytes[7] ^= 1;
                r.signature = kuvert_crypto::signing::Signature::from_bytes(&bytes).to_base64();
            }),
            &["signature"],
        ),
    ];
    for (field, tamper, named) in &tamperings {
        let mut forged = receipt.clone();
        tamper(&mut forged);
        write_json(&receipt_file, &forged);
        let error = verify(receipt_arg, delivery_arg, &keys_url)
            .await
            .expect_err(field)
            .to_string();
        let failed = error
            .strip_prefix("the receipt does not verify: ")
            .unwrap_or_else(|| panic!("{field}: {error}"));
        let failed: Vec<&str> = failed.split(", ").collect();
        assert_eq!(&failed, named, "tampered {field}");
    }

    // The genuine receipt against a delivery other than the one signed.
    write_json(&receipt_file, &receipt);
    let mut other = signed.clone();
    other.delivery.messages[0].header.subject = "Beslut om avslag".into();
    write_json(&delivery_file, &other);
    let error = verify(receipt_arg, delivery_arg, &keys_url)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the receipt does not verify: delivery digest"
    );

    // And against keys published by another installation (a keys file).
    let stranger = TestApp::spawn().await;
    let (_, strangers_keys) = stranger
        .get("/register/v1/operators/kuvert-brevlada/keys", None)
        .await;
    let keys_file = dir.path().join("keys.json");
    write_json(&keys_file, &strangers_keys);
    write_json(&delivery_file, &signed);
    let error = verify(receipt_arg, delivery_arg, keys_file.to_str().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the receipt does not verify: receipt key, key in use at delivery, signature"
    );
}

/// The receipt is bound to what the sender signed: its digest is the
/// SHA-256 of the canonical bytes the sender computed, nothing the relay
/// made up.
#[tokio::test]
async fn the_receipt_names_the_digest_of_the_signed_canonical_bytes_and_the_senders_message_ids() {
    let app = TestApp::spawn().await;
    let (signed, view) = delivered_to_anna(&app).await;
    let receipt = &view["receipt"];
    assert_eq!(receipt["format"], "kuvert-receipt-v2");
    assert_eq!(
        receipt["delivery_digest"],
        kuvert_crypto::digest::sha256_hex(&signed.delivery.canonical_bytes())
    );
    assert_eq!(
        receipt["message_ids"],
        json!([signed.delivery.messages[0].header.id])
    );
    assert_eq!(receipt["sender_id"], view["sender_id"]);
    assert_eq!(receipt["recipient"], view["recipient_id"]);
    assert_eq!(receipt["delivered_at"], view["delivered_at"]);
}

#[tokio::test]
async fn the_keys_documents_list_every_key_and_keep_rotated_ones() {
    let app = TestApp::spawn().await;
    let (signed, view) = delivered_to_anna(&app).await;
    let (status, installation) = app.get("/register/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{installation}");
    let installation: KeysDocument = serde_json::from_value(installation).unwrap();
    assert_eq!(installation.owner.kind, OwnerKind::Installation);
    let audit = installation
        .keys
        .iter()
        .find(|k| k.purpose == KeyPurpose::AuditCheckpoint)
        .unwrap();
    assert_eq!(audit.key_id, app.audit_public_key().key_id());
    assert_eq!(audit.public_key, app.audit_public_key().to_base64());
    assert!(
        installation
            .keys
            .iter()
            .any(|k| k.purpose == KeyPurpose::RelaySeal)
    );

    let (_, before) = app
        .get("/register/v1/operators/kuvert-brevlada/keys", None)
        .await;
    let before: KeysDocument = serde_json::from_value(before).unwrap();
    for key in &before.keys {
        // The key id is derived as documented.
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&key.public_key)
            .unwrap();
        assert_eq!(raw.len(), 32);
        let hex = kuvert_crypto::digest::sha256_hex(&raw);
        assert_eq!(key.key_id, format!("{}:{}", key.algorithm, &hex[..16]));
        assert!(key.valid_until.is_none());
    }
    let sealing = before
        .keys
        .iter()
        .find(|k| k.purpose == KeyPurpose::Sealing)
        .unwrap();
    assert_eq!(sealing.algorithm, "x25519");

    // The operator rotates its receipt key: the old one stays listed, valid
    // until the rotation, and the old receipt still verifies.
    let mut operator = app
        .core_db()
        .operator(&kuvert_domain::ids::OperatorId::parse("kuvert-brevlada").unwrap())
        .await
        .unwrap()
        .unwrap();
    operator.receipt_key = kuvert_crypto::signing::SigningKey::generate()
        .public_key()
        .to_base64();
    app.core_db()
        .upsert_operator(&operator, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let (_, after) = app
        .get("/register/v1/operators/kuvert-brevlada/keys", None)
        .await;
    let after: KeysDocument = serde_json::from_value(after).unwrap();
    let receipt_keys: Vec<_> = after
        .keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::Receipt)
        .collect();
    assert_eq!(receipt_keys.len(), 2, "{after:?}");
    assert!(receipt_keys[0].valid_until.is_none(), "the new key, first");
    assert!(receipt_keys[1].valid_until.is_some(), "the old key, closed");
    let receipt: Receipt = serde_json::from_value(view["receipt"].clone()).unwrap();
    let checks = check_receipt(&receipt, &signed.delivery, &after);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
}

#[tokio::test]
async fn the_same_signed_delivery_under_a_new_idempotency_key_is_refused_and_names_the_first() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.kommun().0.token.clone();
    let signed = app.kommun_signed(&anna, "En gång");
    let (status, first) = app.send_with_key(&token, "nyckel-1", &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first_id = first["delivery_id"].as_str().unwrap().to_owned();

    let refused = assert_problem(
        &app.send_with_key(&token, "nyckel-2", &signed).await,
        StatusCode::CONFLICT,
        "duplicate_delivery",
    );
    assert_eq!(refused["delivery_id"], first_id.as_str(), "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("new message ids"),
        "{refused}"
    );
    // The same key again is a retry: the first delivery, with its status now.
    app.wait_final(&token, &first_id).await;
    let (status, retry) = app.send_with_key(&token, "nyckel-1", &signed).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry["delivery_id"], first_id.as_str());
    assert_eq!(
        retry["status"], "delivered",
        "the status now, not the first answer"
    );
    assert_eq!(retry["replayed"], true);

    // Across a restart, and on the batch path: twice in one batch under two
    // keys, and once more under a third.
    app.restart().await;
    assert_problem(
        &app.send_with_key(&token, "nyckel-3", &signed).await,
        StatusCode::CONFLICT,
        "duplicate_delivery",
    );
    let other = app.kommun_signed(&anna, "Två i samma batch");
    let items = [
        batch_item(&other, Some("b-1")),
        batch_item(&other, Some("b-2")),
        batch_item(&signed, Some("b-3")),
    ];
    let batch = app.batch_accepted(&token, &items).await;
    assert_eq!(batch["accepted"], 1, "{batch}");
    let results = batch["results"].as_array().unwrap();
    assert!(results[0]["error"].is_null(), "{batch}");
    for refused in &results[1..] {
        assert_eq!(refused["error"]["code"], "duplicate_delivery", "{batch}");
        assert_eq!(refused["error"]["status"], 409);
    }
    assert_eq!(
        results[1]["error"]["delivery_id"],
        results[0]["delivery_id"]
    );
    assert_eq!(results[2]["error"]["delivery_id"], first_id.as_str());
    let progress = app
        .batch_view(&token, batch["batch_id"].as_str().unwrap())
        .await;
    assert_eq!(progress["submitted"], 3, "{progress}");
    assert_eq!(progress["rejected"], 2, "{progress}");

    app.drain().await;
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 2, "each signed delivery once: {page:?}");
}

/// A batch whose answer was lost is sent again with the same keys: the
/// answer names the first batch, whose progress shows the deliveries.
#[tokio::test]
async fn a_batch_sent_again_is_answered_with_the_first_batch_id() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let bertil = app
        .demo
        .recipients
        .iter()
        .filter(|r| r.state == "registered")
        .nth(1)
        .map(|r| r.id.clone())
        .unwrap_or_else(|| anna.clone());
    let token = app.kommun().0.token.clone();
    let signed: Vec<SignedDelivery> = [&anna, &bertil, &anna]
        .iter()
        .enumerate()
        .map(|(n, to)| app.kommun_signed(to, &format!("Utskick {n}")))
        .collect();
    let items = batch_items(&signed);
    let first = app.batch_accepted(&token, &items).await;
    assert_eq!(first["accepted"], 3, "{first}");
    let again = app.batch_accepted(&token, &items).await;
    assert_eq!(again["batch_id"], first["batch_id"], "{again}");
    for (a, b) in first["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["results"].as_array().unwrap())
    {
        assert_eq!(a["delivery_id"], b["delivery_id"]);
        assert_eq!(b["replayed"], true);
    }
    app.drain().await;
    let progress = app
        .batch_view(&token, first["batch_id"].as_str().unwrap())
        .await;
    assert_eq!(progress["submitted"], 3, "{progress}");
    assert_eq!(progress["rejected"], 0, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 3, "{progress}");
    let batches: i64 = app.query("kuvert.db", "SELECT COUNT(*) FROM batches").await;
    assert_eq!(batches, 1);
}

/// Sends only a request head declaring `length` body bytes (and none of
/// them) and returns the status line: an endpoint that waited for the body
/// would not answer before the timeout.
async fn head_only(app: &TestApp, path: &str, token: Option<&str>, length: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{auth}Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap_or_else(|_| {
            panic!("{path} ({length} bytes declared) did not answer without the body")
        })
        .unwrap();
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn no_endpoint_reads_a_body_past_its_limit_or_before_its_caller_is_known() {
    let app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let mib = 1024 * 1024;
    assert_eq!(
        head_only(&app, "/v1/batches", Some(&token), 32 * mib + 1).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(
        head_only(&app, "/v1/deliveries", Some(&token), 3 * mib + 1).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(
        head_only(&app, "/mailbox/v1/deliveries", None, 40 * mib + 1).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(
        head_only(&app, "/v1/reachability", Some(&token), 64 * 1024 + 1).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    // Within the limits, a caller without a credential is refused before
    // the body arrives.
    assert_eq!(
        head_only(&app, "/mailbox/v1/deliveries", None, mib).await,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        head_only(&app, "/mailbox/v1/deliveries", Some(&token), mib).await,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        head_only(&app, "/v1/batches", None, mib).await,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        head_only(&app, "/v1/deliveries", None, mib).await,
        "HTTP/1.1 401 Unauthorized"
    );
}

#[tokio::test]
async fn audit_verify_reads_only_and_refuses_a_folder_without_an_installation() {
    let mut app = TestApp::spawn().await;
    app.send_ok(&app.recipient("registered").id.clone(), "Till granskning")
        .await;
    app.drain().await;
    // With the installation's published keys document, while it runs.
    let keys = format!("{}/register/v1/keys", app.url);
    let data = app.data_dir().to_str().unwrap().to_owned();
    kuvert(&["audit", "verify", "--data", &data, "--keys", &keys])
        .await
        .unwrap();
    let keys_file = app.data_dir().join("published-keys.json");
    let (_, document) = app.get("/register/v1/keys", None).await;
    std::fs::write(&keys_file, serde_json::to_vec(&document).unwrap()).unwrap();
    let keys = keys_file.to_str().unwrap().to_owned();
    app.stop().await;
    let before: Vec<(String, Vec<u8>)> = ["kuvert.db", "mailbox.db"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(app.data_dir().join(f)).unwrap(),
            )
        })
        .collect();
    // --data after the subcommand, as well as before it.
    kuvert(&["audit", "verify", "--data", &data, "--keys", &keys])
        .await
        .unwrap();
    kuvert(&["--data", &data, "audit", "verify", "--keys", &keys])
        .await
        .unwrap();
    for (file, bytes) in &before {
        assert!(
            std::fs::read(app.data_dir().join(file)).unwrap() == *bytes,
            "{file} changed"
        );
    }

    // A folder that is not an installation: refused, and nothing created.
    let empty = tempfile::tempdir().unwrap();
    let wrong = empty.path().to_str().unwrap();
    let error = kuvert(&["audit", "verify", "--data", wrong, "--keys", &keys])
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("holds no kuvert database"),
        "{error:#}"
    );
    let error = kuvert(&["recipient", "token", "198001012387", "--data", wrong])
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("holds no kuvert keys"),
        "{error:#}"
    );
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "nothing created"
    );
    kuvert(&["recipient", "token", "198001012387", "--data", &data])
        .await
        .unwrap();
}
