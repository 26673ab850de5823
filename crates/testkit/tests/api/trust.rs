//! Trust boundaries (issue 16): what a relay holding its own keys, or
//! anyone able to write the core database, must not be able to forge. Each
//! test performs the attack; before certificates, every one of them
//! succeeded (the mailbox verified with whatever sender key the relay put
//! into the sealed content, showed the name the delivery claimed, and the
//! relay sealed to and took receipts from whatever the operators row said).

use kuvert_crypto::signing::SigningKey;
use kuvert_mailbox::certificate::SenderKeyCertificate;
use kuvert_mailbox::protocol::{HPKE_INFO, SealedContent, SealedDelivery};
use kuvert_testkit::{ADMIN_TOKEN, PATIENCE, TestApp, assert_problem, eventually};
use reqwest::StatusCode;

/// What only a compromised relay holds: the relay's seal key, and the
/// operator's public sealing key (public anyway).
struct CompromisedRelay {
    seal: SigningKey,
    sealer: kuvert_crypto::sealing::Sealer,
}

impl CompromisedRelay {
    fn of(app: &TestApp) -> Self {
        let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
        Self {
            seal: SigningKey::from_bytes(&keys.relay_seal.to_bytes()),
            sealer: kuvert_crypto::sealing::Sealer::new(
                &keys.mailbox_sealing.public_key(),
                HPKE_INFO,
            )
            .unwrap(),
        }
    }

    /// `content` sealed and seal-signed as the relay would, under a new
    /// delivery id, with the routing fields of `template`.
    fn seal(&self, template: &SealedDelivery, content: &SealedContent) -> SealedDelivery {
        use base64::Engine as _;
        let plaintext = serde_json::to_vec(content).unwrap();
        let mut sealed = template.clone();
        sealed.delivery_id = kuvert_domain::ids::DeliveryId::new().to_string();
        sealed.delivery_digest =
            kuvert_crypto::digest::sha256_hex(&content.signed.delivery.canonical_bytes());
        sealed.content_hash = kuvert_crypto::digest::sha256_hex(&plaintext);
        let sealed_box = self.sealer.seal(&sealed.seal_bytes(), &plaintext).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        sealed.encapsulated_key = b64.encode(&sealed_box.encapsulated_key);
        sealed.ciphertext = b64.encode(&sealed_box.ciphertext);
        sealed.sign(&self.seal);
        sealed
    }
}

/// A letter "from" the demo municipality to Anna signed with a key of the
/// attacker's, and a sealed delivery of the relay's to use as template.
async fn forged_letter(
    app: &TestApp,
    subject: &str,
) -> (
    kuvert_domain::delivery::SignedDelivery,
    SigningKey,
    SealedDelivery,
) {
    let anna = app.recipient("registered").id.clone();
    let template: SealedDelivery =
        serde_json::from_slice(&app.queued_sealed_delivery(&anna, "Mall").await).unwrap();
    let (_, sender) = app.kommun();
    let attacker = SigningKey::generate();
    let delivery = app.delivery(sender, &anna, subject);
    let signed = kuvert::client::sign(delivery, &attacker);
    (signed, attacker, template)
}

async fn deliver_one(app: &TestApp, sealed: SealedDelivery) -> serde_json::Value {
    let (status, answer) = app.deliver_sealed(vec![sealed]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["results"][0].clone()
}

/// Whether Anna's inbox holds a message with this subject.
async fn anna_has(app: &TestApp, subject: &str) -> bool {
    let anna = app.recipient("registered").id.clone();
    app.inbox(&anna)
        .await
        .messages
        .iter()
        .any(|m| m.subject == subject)
}

/// A relay (or whoever holds its seal key) makes up a sender key and a
/// certificate for it: signed by a key of its own, or a genuine certificate
/// with the key swapped. The mailbox checks certificates against the
/// register key it pins and refuses both; nothing is stored.
#[tokio::test]
async fn a_relay_cannot_make_up_a_sender_key() {
    let app = TestApp::spawn().await;
    let relay = CompromisedRelay::of(&app);
    let (_, sender) = app.kommun();
    let (signed, attacker, template) = forged_letter(&app, "Förfalskat beslut").await;

    // 1. A certificate the relay signs itself.
    let self_made = SenderKeyCertificate::issue(
        &relay.seal,
        &sender.id,
        &sender.name,
        &attacker.public_key(),
        "2026-01-01T00:00:00.000000Z",
    );
    // 2. The genuine certificate, with the attacker's key put in.
    let mut swapped = app.certificate(sender).await;
    swapped.public_key = attacker.public_key().to_base64();
    swapped.key_id = attacker.public_key().key_id();

    for certificate in [self_made, swapped] {
        let content = SealedContent {
            signed: signed.clone(),
            sender_certificate: certificate,
        };
        let result = deliver_one(&app, relay.seal(&template, &content)).await;
        assert_eq!(result["outcome"], "rejected", "{result}");
        assert_eq!(
            result["rejection"]["code"], "sender_key_not_certified",
            "{result}"
        );
    }
    assert!(!anna_has(&app, "Förfalskat beslut").await);
}

/// A genuine certificate of another sender (a sender the relay serves too)
/// does not vouch for a delivery in the municipality's name.
#[tokio::test]
async fn another_senders_certificate_does_not_vouch_for_this_sender() {
    let app = TestApp::spawn().await;
    let relay = CompromisedRelay::of(&app);
    let anna = app.recipient("registered").id.clone();
    let template: SealedDelivery =
        serde_json::from_slice(&app.queued_sealed_delivery(&anna, "Mall").await).unwrap();
    let other = &app.tenant("demoformedlare").senders[0];
    let (_, kommun) = app.kommun();
    // Signed with the other sender's genuine key, in the municipality's name.
    let delivery = app.delivery(kommun, &anna, "Lånat namn");
    let signed = kuvert::client::sign(delivery, &other.key().unwrap());
    let content = SealedContent {
        signed,
        sender_certificate: app.certificate(other).await,
    };
    let result = deliver_one(&app, relay.seal(&template, &content)).await;
    assert_eq!(result["outcome"], "rejected", "{result}");
    assert_eq!(
        result["rejection"]["code"], "sender_key_not_certified",
        "{result}"
    );
    assert!(!anna_has(&app, "Lånat namn").await);
}

/// Whoever can write the core database adds a key row for a sender: the
/// relay refuses to accept anything signed with it (no certificate by the
/// register's key), with a clear code.
#[tokio::test]
async fn a_key_row_written_into_the_database_signs_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let genuine = app.certificate(sender).await;
    // With no certificate, and with the sender's genuine certificate copied.
    for (n, certificate) in [None, Some(serde_json::to_string(&genuine).unwrap())]
        .into_iter()
        .enumerate()
    {
        let attacker = SigningKey::generate();
        let public = attacker.public_key();
        app.write_sql(
            "kuvert.db",
            &format!(
                "INSERT INTO sender_keys (key_id, tenant_id, sender_id, public_key, created_at, certificate)
                 VALUES ('{}', '{}', '{}', '{}', '2026-01-01T00:00:00.000000Z', {})",
                public.key_id(),
                tenant.tenant,
                sender.id,
                public.to_base64(),
                certificate.map_or("NULL".to_owned(), |c| format!("'{}'", c.replace('\'', "''")))
            ),
        )
        .await;
        let delivery = app.delivery(sender, &anna, "Inskriven nyckel");
        let signed = kuvert::client::sign(delivery, &attacker);
        let answer = app
            .send_with_key(&tenant.token, &format!("row-{n}"), &signed)
            .await;
        assert_problem(
            &answer,
            StatusCode::FORBIDDEN,
            "signature_key_not_certified",
        );
    }
    assert!(!anna_has(&app, "Inskriven nyckel").await);
}

/// Any registered sender could write "Skatteverket" as its name: the
/// recipient is shown the register's name for the sender id.
#[tokio::test]
async fn the_recipient_sees_the_registered_sender_name_not_the_claimed_one() {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let mut delivery = app.delivery(sender, &anna, "Restskatt");
    delivery.header.sender.name = "Skatteverket".to_owned();
    let signed = kuvert::client::sign(delivery, &sender.key().unwrap());
    app.send_delivered(&tenant.token, &signed).await;
    let page = app.inbox(&anna).await;
    let message = page
        .messages
        .iter()
        .find(|m| m.subject == "Restskatt")
        .expect("delivered");
    assert_eq!(message.sender_name, sender.name);
    assert_eq!(message.sender_name, "Demo kommun");
    let (_, read) = app
        .get(
            &format!("/mailbox/v1/messages/{}", message.id),
            Some(&app.recipient_token(&anna)),
        )
        .await;
    assert_eq!(read["sender_name"], "Demo kommun", "{read}");
    assert!(!read.to_string().contains("Skatteverket"), "{read}");
}

/// The register revokes a key: from that moment a delivery signed with it
/// that has not reached the mailbox is refused there, whatever the relay
/// does (here: a relay that seals it anyway), and queued mail signed with
/// it fails with the reason instead of being delivered.
#[tokio::test]
async fn a_revoked_key_is_refused_by_the_mailbox_from_the_moment_of_revocation() {
    let app = TestApp::spawn().await;
    let relay = CompromisedRelay::of(&app);
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    // Queued while the mailbox is closed, signed with the key about to go.
    app.set_mailbox_open(false);
    let queued = app
        .send_accepted(&tenant.token, &app.kommun_signed(&anna, "I kön"))
        .await;
    let template: SealedDelivery = serde_json::from_slice(
        &app.query::<Vec<u8>>("kuvert.db", "SELECT sealed FROM outbox LIMIT 1")
            .await,
    )
    .unwrap();
    let certificate = app.certificate(sender).await;
    let (status, body) = app
        .delete(
            &format!("/admin/v1/tenants/{}/keys/{}", tenant.tenant, sender.key_id),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The published revocation is the register's signed statement.
    let (_, list) = app.get("/register/v1/revocations", None).await;
    assert_eq!(
        list["revocations"][0]["key_id"],
        sender.key_id.as_str(),
        "{list}"
    );

    // The mailbox opens again: it knows of the revocation already.
    app.set_mailbox_open(true);
    // A relay that ignores the revocation and seals anyway.
    let content = SealedContent {
        signed: app.kommun_signed(&anna, "Efter spärren"),
        sender_certificate: certificate,
    };
    let result = deliver_one(&app, relay.seal(&template, &content)).await;
    assert_eq!(
        result["rejection"]["code"], "sender_key_revoked",
        "{result}"
    );

    // What was queued before the revocation fails with the reason.
    let view = app.wait_final(&tenant.token, &queued).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert!(
        view.to_string().contains("sender_key_revoked"),
        "the reason is shown: {view}"
    );
    assert!(!anna_has(&app, "I kön").await);
    assert!(!anna_has(&app, "Efter spärren").await);
}

/// A mailbox that did not see the revocation happen (say, in another
/// process) learns it from the register's list and refuses from then on.
#[tokio::test]
async fn a_mailbox_learns_revocations_from_the_register() {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    app.set_mailbox_open(false);
    let queued = app
        .send_accepted(&tenant.token, &app.kommun_signed(&anna, "Sent spärrad"))
        .await;
    // Revoked behind the mailbox's back: the command line writes the core
    // database, nobody tells the mailbox.
    kuvert::cli::run([
        "kuvert",
        "--data",
        app.data_dir().to_str().unwrap(),
        "tenant",
        "key",
        "revoke",
        &tenant.tenant,
        &sender.key_id,
    ])
    .await
    .unwrap();
    eventually("the mailbox learns the revocation", PATIENCE, || async {
        let known: i64 = app
            .query("mailbox.db", "SELECT COUNT(*) FROM sender_key_revocations")
            .await;
        (known == 1).then_some(())
    })
    .await;
    app.set_mailbox_open(true);
    let view = app.wait_final(&tenant.token, &queued).await;
    assert_eq!(view["status"], "failed", "{view}");
}

/// Whoever can write the core database points the operator's row at keys
/// of their own: new mail would be sealed to them, receipts signed by them.
/// The relay uses only the certified row: it seals nothing to it (503
/// `operator_not_certified`), delivers nothing, records no receipt; once the
/// row is restored, mail flows again.
#[tokio::test]
async fn a_changed_operator_row_gets_no_mail_and_no_receipt() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let original: String = app
        .query("kuvert.db", "SELECT receipt_key FROM operators")
        .await;
    let original_sealing: String = app
        .query("kuvert.db", "SELECT sealing_key FROM operators")
        .await;

    // Queued first, then the receipt key is swapped: not delivered.
    app.set_mailbox_open(false);
    let queued = app
        .send_accepted(&tenant.token, &app.kommun_signed(&anna, "Före bytet"))
        .await;
    let attacker_receipt = SigningKey::generate().public_key().to_base64();
    app.write_sql(
        "kuvert.db",
        &format!("UPDATE operators SET receipt_key = '{attacker_receipt}'"),
    )
    .await;
    let attempts = || async {
        app.query::<i64>("kuvert.db", "SELECT attempts FROM outbox")
            .await
    };
    let before = attempts().await;
    let (_, operators) = app.get("/admin/v1/operators", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        operators[0]["certified"], false,
        "shown as not certified: {operators}"
    );
    app.set_mailbox_open(true);
    // Several passes of the worker: the job must stay undelivered.
    eventually("the worker tries three more times", PATIENCE, || async {
        (attempts().await >= before + 3).then_some(())
    })
    .await;
    let (_, view) = app.delivery_view(&tenant.token, &queued).await;
    assert_eq!(view["status"], "accepted", "not delivered: {view}");
    assert!(!anna_has(&app, "Före bytet").await);

    // A sealing key of the attacker's: nothing is sealed to it.
    let attacker_sealing = kuvert_crypto::sealing::SealingPrivateKey::generate()
        .public_key()
        .to_base64();
    app.write_sql(
        "kuvert.db",
        &format!(
            "UPDATE operators SET receipt_key = '{original}', sealing_key = '{attacker_sealing}'"
        ),
    )
    .await;
    let answer = app
        .send_with_key(
            &tenant.token,
            "after-swap",
            &app.kommun_signed(&anna, "Efter bytet"),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "operator_not_certified",
    );
    let sealed_to_attacker: i64 = app
        .query(
            "kuvert.db",
            "SELECT COUNT(*) FROM deliveries WHERE idempotency_key = 'after-swap'",
        )
        .await;
    assert_eq!(sealed_to_attacker, 0, "nothing stored");

    // Restored: the queued letter goes out.
    app.write_sql(
        "kuvert.db",
        &format!("UPDATE operators SET sealing_key = '{original_sealing}'"),
    )
    .await;
    let view = app.wait_final(&tenant.token, &queued).await;
    assert_eq!(view["status"], "delivered", "{view}");
}

/// A change of the built-in operator's address or keys at start-up is
/// audited with the key ids before and after (never taken silently), and
/// certified again.
#[tokio::test]
async fn an_operator_change_at_start_up_is_audited() {
    let mut app = TestApp::spawn().await;
    let before: i64 = app
        .query(
            "kuvert.db",
            "SELECT COUNT(*) FROM audit_log WHERE action = 'operator.changed'",
        )
        .await;
    // A restart binds a new port: the delivery address changes.
    app.restart().await;
    let changes: Vec<String> = app
        .query_all(
            "kuvert.db",
            "SELECT detail FROM audit_log WHERE action = 'operator.changed' ORDER BY seq",
        )
        .await;
    assert_eq!(changes.len() as i64, before + 1, "{changes:?}");
    let detail: serde_json::Value = serde_json::from_str(changes.last().unwrap()).unwrap();
    assert_ne!(
        detail["delivery_url"], detail["before"]["delivery_url"],
        "{detail}"
    );
    assert!(
        detail["receipt_key_id"]
            .as_str()
            .unwrap()
            .starts_with("ed25519:")
    );
    // The platform operator is shown it.
    let (status, operators) = app.get("/admin/v1/operators", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{operators}");
    let shown = &operators[0];
    assert_eq!(shown["certified"], true, "{shown}");
    let last = shown["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "operator.changed", "{shown}");
    assert_eq!(
        last["detail"]["delivery_url"], shown["delivery_url"],
        "{shown}"
    );
    // And mail still flows under the new certificate.
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    app.send_delivered(&tenant.token, &app.kommun_signed(&anna, "Efter flytten"))
        .await;
}

/// The mailbox holds deliveries to its own limits and content rules: a
/// relay that lets through (or makes up) a delivery over a limit, or with
/// HTML the display would change, cannot get it stored, even when the
/// sender genuinely signed it.
#[tokio::test]
async fn the_mailbox_checks_limits_and_html_itself_whatever_the_relay_let_through() {
    use kuvert_domain::delivery::{BodyContentType, MAX_SHORT_TEXT_CHARS};
    let app = TestApp::spawn().await;
    let relay = CompromisedRelay::of(&app);
    let anna = app.recipient("registered").id.clone();
    let template: SealedDelivery =
        serde_json::from_slice(&app.queued_sealed_delivery(&anna, "Mall").await).unwrap();
    let (_, sender) = app.kommun();
    let certificate = app.certificate(sender).await;

    let mut long_name = app.delivery(sender, &anna, "Långt namn");
    long_name.header.sender.name = "x".repeat(MAX_SHORT_TEXT_CHARS + 1);
    let mut unsafe_html = app.delivery(sender, &anna, "Klicka");
    unsafe_html.messages[0].body.content_type = BodyContentType::TextHtml;
    unsafe_html.messages[0].body.body = r#"<p onclick="steal()">Hej</p>"#.to_owned();
    for (delivery, code) in [(long_name, "field_too_long"), (unsafe_html, "unsafe_html")] {
        let content = SealedContent {
            signed: app.sign(sender, delivery),
            sender_certificate: certificate.clone(),
        };
        let result = deliver_one(&app, relay.seal(&template, &content)).await;
        assert_eq!(result["outcome"], "rejected", "{result}");
        assert_eq!(result["rejection"]["code"], code, "{result}");
    }
    assert!(!anna_has(&app, "Långt namn").await);
    assert!(!anna_has(&app, "Klicka").await);
    // The genuine letter of the template is still delivered as usual.
    eventually("the template letter", PATIENCE, || async {
        anna_has(&app, "Mall").await.then_some(())
    })
    .await;
}
