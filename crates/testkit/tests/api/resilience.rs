//! Nothing lost, nothing twice: the mailbox away and back, a restart with
//! work queued, and a redelivery of something already delivered.

use base64::Engine as _;
use kuvert_mailbox::protocol::SealedDelivery;
use kuvert_testkit::{TestApp, batch_items, eventually};
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn deliveries_wait_while_the_mailbox_is_unavailable_and_arrive_once_when_it_is_back() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let token = tenant.token.clone();
    let anna = app.recipient("registered").id.clone();
    app.set_mailbox_open(false);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.send_ok(&anna, &format!("Medan brevlådan är stängd {i}"))
                .await,
        );
    }
    // The relay tries, gets 503, and backs off: attempts are recorded and
    // the sender still sees `accepted`.
    let shared = &app;
    eventually(
        "the relay retries",
        Duration::from_secs(30),
        || async move {
            let attempts: i64 = shared
                .query("kuvert.db", "SELECT COALESCE(MIN(attempts), 0) FROM outbox")
                .await;
            (attempts >= 2).then_some(())
        },
    )
    .await;
    for id in &ids {
        let (_, view) = app.delivery_view(&token, id).await;
        assert_eq!(view["status"], "accepted");
    }
    let last_error: String = app
        .query("kuvert.db", "SELECT last_error FROM outbox LIMIT 1")
        .await;
    assert!(last_error.contains("503"), "{last_error}");

    app.set_mailbox_open(true);
    for id in &ids {
        app.wait_delivered(&token, id).await;
    }
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 5, "each delivered exactly once");
    assert_eq!(app.mailbox_delivery_count().await, 5);
    app.stop().await;
}

#[tokio::test]
async fn queued_deliveries_survive_a_restart_and_are_delivered_after_it() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    app.set_mailbox_open(false);
    let id = app.send_ok(&anna, "Före omstarten").await;
    app.restart().await;
    // After the restart the mailbox is open again (a new process) and the
    // relay picks the queued delivery up from the database.
    app.wait_delivered(&token, &id).await;
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_redelivery_of_a_delivered_delivery_gets_the_first_receipt_and_no_second_message() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    app.set_mailbox_open(false);
    let id = app.send_ok(&anna, "Levereras två gånger").await;
    // What the relay would send again if it died after the mailbox answered.
    let sealed: Vec<u8> = app
        .query("kuvert.db", "SELECT sealed FROM outbox LIMIT 1")
        .await;
    let sealed: SealedDelivery = serde_json::from_slice(&sealed).unwrap();
    app.set_mailbox_open(true);
    let first = app.wait_delivered(&token, &id).await;

    let (status, again) = app.deliver_sealed(vec![sealed.clone(), sealed]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    for result in again["results"].as_array().unwrap() {
        assert_eq!(result["outcome"], "delivered");
        assert_eq!(
            result["receipt"], first["receipt"],
            "the same signed receipt, same delivery time"
        );
    }
    assert_eq!(app.mailbox_delivery_count().await, 1);
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_sealed_delivery_that_was_tampered_with() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let bertil = app.person("Bertil Berg");
    let bertil_token = app.recipient_token(&bertil);
    let sealed = app.queued_sealed_delivery(&anna, "Omdirigeras inte").await;
    let original: SealedDelivery = serde_json::from_slice(&sealed).unwrap();

    let relay_key = kuvert::keys::Keys::load_existing(app.data_dir())
        .unwrap()
        .relay_seal;
    let fresh_id = || kuvert_domain::ids::DeliveryId::new().to_string();
    // 1. Re-routed to another recipient, seal not renewed.
    let mut rerouted = original.clone();
    rerouted.recipient = bertil.clone();
    rerouted.delivery_id = fresh_id();
    // 2. Re-routed and re-signed with the genuine relay key: the content is
    //    still bound to its routing fields by the HPKE associated data.
    let mut resigned = rerouted.clone();
    resigned.delivery_id = fresh_id();
    resigned.sign(&relay_key);
    // 3. One ciphertext byte flipped, seal renewed.
    let mut flipped = original.clone();
    flipped.delivery_id = fresh_id();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut ciphertext = b64.decode(&flipped.ciphertext).unwrap();
    ciphertext[10] ^= 0x01;
    flipped.ciphertext = b64.encode(ciphertext);
    flipped.sign(&relay_key);
    let (status, answer) = app.deliver_sealed(vec![rerouted, resigned, flipped]).await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "rejected", "{r}");
            r["rejection"]["code"].as_str().unwrap()
        })
        .collect();
    assert_eq!(codes, ["bad_seal", "cannot_open", "cannot_open"]);
    app.drain().await;
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1, "only the genuine delivery");
    let page = app.messages(&bertil_token, "").await;
    assert_eq!(page.total, 0, "nothing re-routed arrived");
    app.stop().await;
}

/// A request mixing a genuine delivery with one whose sealed content carries
/// a forged sender signature (sealed and seal-signed correctly, as only a
/// compromised relay could): the mailbox checks a request's signatures in
/// one batch, and a single bad one must still be found and refused alone.
#[tokio::test]
async fn one_forged_sender_signature_in_a_request_is_refused_and_the_rest_delivered() {
    use kuvert_mailbox::protocol::{HPKE_INFO, SealedContent};
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let sealed = app.queued_sealed_delivery(&anna, "Äkta").await;
    let genuine: SealedDelivery = serde_json::from_slice(&sealed).unwrap();

    let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
    let (_, sender) = app.kommun();
    let mut signed = app.sign(sender, app.delivery(sender, &anna, "Förfalskad"));
    // Another message's signature: well-formed, by the right key, wrong bytes.
    signed.signature.value = app
        .sign(sender, app.delivery(sender, &anna, "Något annat"))
        .signature
        .value;
    let content = SealedContent {
        signed,
        sender_certificate: app.certificate(sender).await,
    };
    let sealer =
        kuvert_crypto::sealing::Sealer::new(&keys.mailbox_sealing.public_key(), HPKE_INFO).unwrap();
    let forged = reseal(&genuine, &content, &sealer, &keys.relay_seal);

    let (status, answer) = app.deliver_sealed(vec![genuine.clone(), forged]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["outcome"], "delivered", "{answer}");
    assert_eq!(results[0]["receipt"]["delivery_id"], genuine.delivery_id);
    assert_eq!(results[1]["outcome"], "rejected", "{answer}");
    assert_eq!(results[1]["rejection"]["code"], "bad_sender_signature");
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1, "only the genuine delivery: {page:?}");
}

/// The same delivery twice in one request to the mailbox: stored once, and
/// both answered with the same receipt.
#[tokio::test]
async fn the_same_delivery_twice_in_one_request_is_stored_once() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let sealed = app
        .queued_sealed_delivery(&anna, "Två gånger i samma anrop")
        .await;
    let sealed: SealedDelivery = serde_json::from_slice(&sealed).unwrap();
    let (status, answer) = app.deliver_sealed(vec![sealed.clone(), sealed]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["outcome"], "delivered", "{answer}");
    assert_eq!(results[0]["receipt"], results[1]["receipt"], "{answer}");
    app.drain().await;
    assert_eq!(
        app.query::<i64>("mailbox.db", "SELECT COUNT(*) FROM mailbox_messages")
            .await,
        1
    );
}

/// The deliveries of one request to one operator share one HPKE
/// encapsulation (decision 0006), but each box is bound to its own seal
/// bytes: a ciphertext moved onto its sibling does not open, and is refused
/// alone while the genuine ones are delivered.
#[tokio::test]
async fn deliveries_sharing_an_encapsulation_cannot_be_swapped() {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    app.set_mailbox_open(false);
    let deliveries: Vec<_> = ["Först", "Sedan"]
        .iter()
        .map(|subject| app.sign(sender, app.delivery(sender, &anna, subject)))
        .collect();
    app.batch_accepted(&tenant.token, &batch_items(&deliveries))
        .await;
    let rows: Vec<Vec<u8>> = app
        .query_all("kuvert.db", "SELECT sealed FROM outbox")
        .await;
    let sealed: Vec<SealedDelivery> = rows
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    assert_eq!(sealed.len(), 2);
    assert_eq!(sealed[0].encapsulated_key, sealed[1].encapsulated_key);
    assert_ne!(sealed[0].ciphertext, sealed[1].ciphertext);

    // The relay delivers both (each box opens on its own).
    app.set_mailbox_open(true);
    app.drain().await;
    let stored: i64 = app
        .query("mailbox.db", "SELECT COUNT(*) FROM mailbox_deliveries")
        .await;
    assert_eq!(stored, 2);

    // Two siblings sealed under one encapsulation, as the relay seals them,
    // but with delivery ids the relay never queued (so it cannot race this).
    // The seal signature does not cover the ciphertext (the content hash in
    // it does), so only the box itself can catch a swap.
    let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
    let sealer = kuvert_crypto::sealing::Sealer::new(
        &keys.mailbox_sealing.public_key(),
        kuvert_mailbox::protocol::HPKE_INFO,
    )
    .unwrap();
    let certificate = app.certificate(sender).await;
    let siblings: Vec<SealedDelivery> = ["Tredje", "Fjärde"]
        .iter()
        .map(|subject| {
            let content = kuvert_mailbox::protocol::SealedContent {
                signed: app.sign(sender, app.delivery(sender, &anna, subject)),
                sender_certificate: certificate.clone(),
            };
            reseal(&sealed[0], &content, &sealer, &keys.relay_seal)
        })
        .collect();
    let mut swapped = siblings[0].clone();
    swapped.ciphertext = siblings[1].ciphertext.clone();
    let (status, answer) = app.deliver_sealed(vec![swapped, siblings[1].clone()]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["outcome"], "rejected", "{answer}");
    assert_eq!(results[0]["rejection"]["code"], "cannot_open", "{answer}");
    assert_eq!(results[1]["outcome"], "delivered", "{answer}");
    let stored: i64 = app
        .query("mailbox.db", "SELECT COUNT(*) FROM mailbox_deliveries")
        .await;
    assert_eq!(stored, 3, "the swapped box is not stored");

    // The genuine first sibling still opens.
    let (status, answer) = app.deliver_sealed(vec![siblings[0].clone()]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["outcome"], "delivered", "{answer}");
}

/// `template` as the relay would seal `content` anew: a new delivery id,
/// the content hash, the box under `sealer`'s encapsulation, and the relay's
/// seal signature. Only a test (or a compromised relay) holds these keys.
fn reseal(
    template: &SealedDelivery,
    content: &kuvert_mailbox::protocol::SealedContent,
    sealer: &kuvert_crypto::sealing::Sealer,
    relay: &kuvert_crypto::signing::SigningKey,
) -> SealedDelivery {
    let plaintext = serde_json::to_vec(content).unwrap();
    let mut sealed = template.clone();
    sealed.delivery_id = kuvert_domain::ids::DeliveryId::new().to_string();
    sealed.content_hash = kuvert_crypto::digest::sha256_hex(&plaintext);
    sealed.delivery_digest =
        kuvert_crypto::digest::sha256_hex(&content.signed.delivery.canonical_bytes());
    let sealed_box = sealer.seal(&sealed.seal_bytes(), &plaintext).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    sealed.encapsulated_key = b64.encode(&sealed_box.encapsulated_key);
    sealed.ciphertext = b64.encode(&sealed_box.ciphertext);
    sealed.sign(relay);
    sealed
}

/// A clean stop leaves no write-ahead log beside the databases: everything
/// is in the database files, which can be copied (or backed up) alone.
#[tokio::test]
async fn a_clean_stop_leaves_the_write_ahead_logs_empty() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    for i in 0..20 {
        let id = app.send_ok(&anna, &format!("Innan stoppet {i}")).await;
        app.wait_final(&token, &id).await;
    }
    let wal_sizes = |app: &TestApp| -> Vec<(String, u64)> {
        app.database_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with("-wal"))
            .map(|p| {
                let size = std::fs::metadata(&p).map_or(0, |m| m.len());
                (p.display().to_string(), size)
            })
            .collect()
    };
    assert!(
        wal_sizes(&app).iter().any(|(_, size)| *size > 0),
        "a running instance writes through its WALs: {:?}",
        wal_sizes(&app)
    );
    app.stop().await;
    let left: Vec<_> = wal_sizes(&app)
        .into_iter()
        .filter(|(_, size)| *size > 0)
        .collect();
    assert!(left.is_empty(), "WAL left after a clean stop: {left:?}");
}

/// `/health` says the process answers; `/ready` that its databases do too,
/// and 503 `not_ready` once one does not (here: closed under it).
#[tokio::test]
async fn ready_answers_while_every_database_does_and_503_once_one_does_not() {
    let mut app = TestApp::spawn().await;
    let (status, body) = app.get("/health", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = app.get("/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["databases"], serde_json::json!(["core", "mailbox"]));

    app.mailbox_db().close().await;
    let (status, body) = app.get("/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "not_ready", "{body}");
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "the process itself still answers");
    app.stop().await;
}
