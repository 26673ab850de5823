//! Bad input gets a clear 4xx with a stable `code`, and nothing of it is
//! stored or delivered: no status event, no queued delivery, no message in
//! any mailbox. The same checks hold per item in a batch. HTML bodies are
//! either refused at intake or, once accepted, read back without script.

use kuvert_domain::delivery::{SecureDelivery, SignedDelivery};
use kuvert_testkit::{TestApp, assert_problem_for, batch_items, client, exchange};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Sends raw bytes to `path` with the given content type and credential.
async fn raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = app
        .http_request(Method::POST, path, token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    exchange(request).await.parts()
}

/// A problem+json refusal with `expected` and `code` whose `detail` names
/// the reason; returns its body.
fn assert_refusal(
    case: &str,
    answer: &(StatusCode, Value),
    expected: StatusCode,
    code: &str,
) -> Value {
    let body = assert_problem_for(case, answer, expected, code);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{case}: a problem names the reason: {body}"
    );
    body
}

/// Every tenant's status feed is empty, the relay's queue is empty and no
/// recipient has a message: nothing of the refused request was kept.
async fn assert_nothing_stored(app: &TestApp, case: &str) {
    for tenant in &app.demo.tenants {
        let events = app.status_events(&tenant.token).await;
        assert!(
            events.is_empty(),
            "{case}: tenant {} has status events: {events:?}",
            tenant.tenant
        );
    }
    assert_eq!(app.outbox_len().await, 0, "{case}: something was queued");
    for recipient in &app.demo.recipients {
        let page = app.inbox(&recipient.id).await;
        assert_eq!(page.total, 0, "{case}: {} got mail", recipient.name);
    }
}

fn anna(app: &TestApp) -> String {
    app.recipient("registered").id.clone()
}

/// A signed one-message delivery from the demo municipality to Anna, with
/// `change` applied before signing.
fn signed_kommun(app: &TestApp, change: impl FnOnce(&mut SecureDelivery)) -> SignedDelivery {
    app.kommun_letter(&anna(app), "Kallelse")
        .with(change)
        .signed()
}

/// Sends as the demo municipality and expects a refusal with nothing stored.
async fn refused(
    app: &TestApp,
    case: &str,
    signed: &SignedDelivery,
    expected: StatusCode,
    code: &str,
) -> Value {
    let (tenant, _) = app.kommun();
    refused_as(app, &tenant.token, case, signed, expected, code).await
}

/// Sends with `token` and expects a refusal with nothing stored.
async fn refused_as(
    app: &TestApp,
    token: &str,
    case: &str,
    signed: &SignedDelivery,
    expected: StatusCode,
    code: &str,
) -> Value {
    let answer = app.send(token, signed).await;
    let body = assert_refusal(case, &answer, expected, code);
    assert_nothing_stored(app, case).await;
    body
}

/// A delivery from the demo municipality with `change` applied, sent,
/// and expected to be refused with nothing stored.
async fn refuses_change(
    case: &str,
    change: impl FnOnce(&mut SecureDelivery),
    expected: StatusCode,
    code: &str,
) -> Value {
    let mut app = TestApp::spawn().await;
    let signed = signed_kommun(&app, change);
    let body = refused(&app, case, &signed, expected, code).await;
    app.stop().await;
    body
}

/// Like [`refuses_change`], with `tamper` applied after signing (given the
/// instance, for its demo data).
async fn refuses_tampering(
    case: &str,
    tamper: impl FnOnce(&TestApp, &mut SignedDelivery),
    expected: StatusCode,
    code: &str,
) -> Value {
    let mut app = TestApp::spawn().await;
    let mut signed = signed_kommun(&app, |_| {});
    tamper(&app, &mut signed);
    let body = refused(&app, case, &signed, expected, code).await;
    app.stop().await;
    body
}

fn pdf_attachment(name: &str) -> kuvert_domain::delivery::Attachment {
    client::attachment(name, "application/pdf", &client::minimal_pdf("Beslut"))
}

/// Sends `signed` as the municipality, waits until it is final and returns
/// Anna's view of the single message it produced.
async fn deliver_and_read(app: &TestApp, signed: &SignedDelivery) -> Value {
    let (tenant, _) = app.kommun();
    let id = app.send_accepted(&tenant.token, signed).await;
    app.wait_delivered(&tenant.token, &id).await;
    let token = app.recipient_token(&anna(app));
    let page = app.messages(&token, "").await;
    assert_eq!(page.total, 1, "{page:?}");
    let (status, opened) = app.open_message(&token, &page.messages[0].id).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["delivery_id"], id.as_str());
    opened
}

// ---------------------------------------------------------------------------
// Transport: JSON, content type, credentials
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_400_malformed_json_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    assert_refusal(
        "malformed json",
        &raw(
            &app,
            "/v1/deliveries",
            Some(&tenant.token),
            "application/json",
            br#"{"delivery": {"header": "#.to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert_nothing_stored(&app, "malformed json").await;
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_415_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let signed = signed_kommun(&app, |_| {});
    assert_refusal(
        "text/plain",
        &raw(
            &app,
            "/v1/deliveries",
            Some(&tenant.token),
            "text/plain",
            serde_json::to_vec(&signed).unwrap(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_nothing_stored(&app, "text/plain").await;
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_json_field_is_422_invalid_request_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let signed = signed_kommun(&app, |_| {});
    let mut value = serde_json::to_value(&signed).unwrap();
    value["priority"] = json!("high");
    assert_refusal(
        "unknown top-level field",
        &app.post("/v1/deliveries", Some(&tenant.token), &value)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );

    let mut value = serde_json::to_value(&signed).unwrap();
    value["delivery"]["header"]["cc"] = json!("someone");
    assert_refusal(
        "unknown nested field",
        &app.post("/v1/deliveries", Some(&tenant.token), &value)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    );
    assert_nothing_stored(&app, "unknown field").await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_garbage_credential_is_401_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let signed = signed_kommun(&app, |_| {});
    assert_refusal(
        "no credential",
        &app.post("/v1/deliveries", None, &signed).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // The right id with a wrong secret, a malformed token, and a recipient token.
    let (id, _) = tenant.token.split_once('.').unwrap();
    let wrong_secret = format!("{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let recipient_token = app.recipient_token(&anna(&app));
    for (case, token) in [
        ("garbage", "not-a-token"),
        ("wrong secret", wrong_secret.as_str()),
        ("unknown credential id", "kvt_nosuchcredential.secret"),
        ("recipient token", recipient_token.as_str()),
    ] {
        assert_refusal(
            case,
            &app.post("/v1/deliveries", Some(token), &signed).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    assert_nothing_stored(&app, "credentials").await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Identity numbers and senders
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_recipient_number_is_422_invalid_recipient_without_echoing_it() {
    let mut app = TestApp::spawn().await;
    let good = anna(&app);
    // Anna's number with a wrong check digit, written with a hyphen.
    let last = good.chars().last().unwrap().to_digit(10).unwrap();
    let bad = format!("{}-{}{}", &good[..8], &good[8..11], (last + 1) % 10);
    let signed = signed_kommun(&app, |d| d.header.recipient = bad.clone());
    let body = refused(
        &app,
        "bad check digit",
        &signed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recipient",
    )
    .await;
    let text = body.to_string();
    let digits: String = bad.chars().filter(char::is_ascii_digit).collect();
    assert!(
        !text.contains(&bad),
        "the problem echoes the number: {text}"
    );
    assert!(
        !text.contains(&digits),
        "the problem echoes the number: {text}"
    );
    assert!(
        !text.contains(&digits[2..]),
        "the problem echoes the number: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_sender_no_tenant_has_is_403_sender_not_allowed() {
    let unknown = kuvert::demo::organisation_number("556677889");
    refuses_change(
        "unknown sender",
        |d| d.header.sender.id = unknown,
        StatusCode::FORBIDDEN,
        "sender_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_credential_sending_for_another_tenants_sender_is_403_sender_not_allowed() {
    let mut app = TestApp::spawn().await;
    let formedlare = app.tenant("demoformedlare").clone();
    let signed = signed_kommun(&app, |_| {});
    refused_as(
        &app,
        &formedlare.token,
        "förmedlare as kommun",
        &signed,
        StatusCode::FORBIDDEN,
        "sender_not_allowed",
    )
    .await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_signature_over_different_content_is_422_signature_invalid() {
    refuses_tampering(
        "tampered",
        |_, s| s.delivery.messages[0].header.subject = "Ändrad efter signering".into(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_signature_value_that_is_not_base64_is_422_signature_invalid() {
    let mut app = TestApp::spawn().await;
    let mut signed = signed_kommun(&app, |_| {});
    signed.signature.value = "!!! not base64 !!!".into();
    refused(
        &app,
        "not base64",
        &signed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    )
    .await;
    // Valid base64, but not 64 bytes.
    let mut signed = signed_kommun(&app, |_| {});
    signed.signature.value = "AAAA".into();
    refused(
        &app,
        "short signature",
        &signed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_key_id_that_does_not_exist_is_422_signature_key_unknown() {
    refuses_tampering(
        "unknown key",
        |_, s| s.signature.key_id = "ed25519:0000000000000000".into(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_key_unknown",
    )
    .await;
}

#[tokio::test]
async fn another_tenants_key_is_unknown_to_this_tenant() {
    // A real, registered key id — but of another tenant's sender.
    refuses_tampering(
        "other tenant's key",
        |app, s| s.signature.key_id = app.tenant("demoformedlare").senders[0].key_id.clone(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_key_unknown",
    )
    .await;
}

#[tokio::test]
async fn the_key_of_a_formedlares_second_sender_used_for_its_first_is_403_signature_key_not_for_sender()
 {
    let mut app = TestApp::spawn().await;
    let formedlare = app.tenant("demoformedlare").clone();
    let (first, second) = (&formedlare.senders[0], &formedlare.senders[1]);
    let delivery = app.delivery(first, &anna(&app), "Kallelse");
    // Correctly signed, but with the second sender's key.
    let signed = app.sign(second, delivery);
    refused_as(
        &app,
        &formedlare.token,
        "second sender's key",
        &signed,
        StatusCode::FORBIDDEN,
        "signature_key_not_for_sender",
    )
    .await;

    // Control: the first sender's own key is accepted.
    let signed = app.letter(first, &anna(&app), "Kallelse").signed();
    app.send_accepted(&formedlare.token, &signed).await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_delivery_over_2_mib_but_under_the_request_limit_is_413_delivery_too_large() {
    let mut app = TestApp::spawn().await;
    // A valid PDF, just over the limit once signed.
    let bytes = client::minimal_pdf(&"x".repeat(2 * 1024 * 1024 + 1000));
    let signed = signed_kommun(&app, |d| {
        d.messages[0]
            .attachments
            .push(client::attachment("stor.pdf", "application/pdf", &bytes));
    });
    let size = serde_json::to_vec(&signed).unwrap().len();
    assert!(
        size < 3 * 1024 * 1024,
        "the request ({size} bytes) must stay under 3 MiB"
    );
    refused(
        &app,
        "2 MiB attachment",
        &signed,
        StatusCode::PAYLOAD_TOO_LARGE,
        "delivery_too_large",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_over_3_mib_is_413_request_too_large() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let signed = signed_kommun(&app, |d| {
        let bytes = client::minimal_pdf(&"x".repeat(3 * 1024 * 1024));
        d.messages[0]
            .attachments
            .push(client::attachment("stor.pdf", "application/pdf", &bytes));
    });
    let body = serde_json::to_vec(&signed).unwrap();
    assert!(body.len() > 3 * 1024 * 1024);
    assert_refusal(
        ">3 MiB body",
        &raw(
            &app,
            "/v1/deliveries",
            Some(&tenant.token),
            "application/json",
            body,
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    );
    assert_nothing_stored(&app, ">3 MiB body").await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_attachment_type_not_allowed_is_422_attachment_type_not_allowed() {
    refuses_change(
        "text/html attachment",
        |d| {
            d.messages[0].attachments.push(client::attachment(
                "sida.html",
                "text/html",
                b"<p>hej</p>",
            ));
        },
        StatusCode::UNPROCESSABLE_ENTITY,
        "attachment_type_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn an_attachment_checksum_mismatch_is_422_checksum_mismatch() {
    refuses_change(
        "checksum",
        |d| {
            let mut file = pdf_attachment("beslut.pdf");
            file.checksum = kuvert_crypto::digest::sha256_hex(b"something else");
            d.messages[0].attachments.push(file);
        },
        StatusCode::UNPROCESSABLE_ENTITY,
        "checksum_mismatch",
    )
    .await;
}

#[tokio::test]
async fn an_attachment_name_with_a_parent_path_is_422_bad_attachment_name() {
    refuses_change(
        "../ name",
        |d| {
            d.messages[0]
                .attachments
                .push(pdf_attachment("../../etc/beslut.pdf"))
        },
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_attachment_name",
    )
    .await;
}

/// The start of a Windows executable, sent as if it were a PDF.
fn exe_bytes() -> Vec<u8> {
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec();
    exe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
    exe.resize(1024, 0);
    exe
}

#[tokio::test]
async fn an_executable_sent_as_a_pdf_is_422_attachment_content_mismatch() {
    let body = refuses_change(
        "MZ as application/pdf",
        |d| {
            d.messages[0].attachments.push(client::attachment(
                "beslut.pdf",
                "application/pdf",
                &exe_bytes(),
            ));
        },
        StatusCode::UNPROCESSABLE_ENTITY,
        "attachment_content_mismatch",
    )
    .await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("message 0, attachment 0: the content is not a PDF"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_pdf_named_a_exe_is_422_attachment_extension_mismatch() {
    refuses_change(
        "a.exe",
        |d| d.messages[0].attachments.push(pdf_attachment("a.exe")),
        StatusCode::UNPROCESSABLE_ENTITY,
        "attachment_extension_mismatch",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_subject_is_422_empty_subject() {
    refuses_change(
        "blank subject",
        |d| d.messages[0].header.subject = "   ".into(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_subject",
    )
    .await;
}

#[tokio::test]
async fn a_subject_of_256_characters_is_422_subject_too_long_while_255_is_accepted() {
    let mut app = TestApp::spawn().await;
    // Multi-byte characters: the limit is in characters, not bytes.
    let long = "å".repeat(256);
    let signed = signed_kommun(&app, |d| d.messages[0].header.subject = long);
    refused(
        &app,
        "256 chars",
        &signed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "subject_too_long",
    )
    .await;

    let exact = "å".repeat(255);
    let signed = signed_kommun(&app, |d| d.messages[0].header.subject = exact.clone());
    let opened = deliver_and_read(&app, &signed).await;
    assert_eq!(opened["subject"], exact.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_without_messages_is_422_no_messages() {
    refuses_change(
        "no messages",
        |d| d.messages.clear(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_messages",
    )
    .await;
}

#[tokio::test]
async fn a_delivery_without_header_or_reference_is_422_idempotency_key_missing() {
    refuses_change(
        "no idempotency key",
        |d| d.header.reference = None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_missing",
    )
    .await;
}

#[tokio::test]
async fn html_bodies_with_script_handlers_or_remote_images_are_422_unsafe_html() {
    let mut app = TestApp::spawn().await;
    for (case, html) in [
        ("script", "<p>Hej</p><script>alert(1)</script>"),
        ("onclick", "<p onclick=\"alert(1)\">Hej</p>"),
        (
            "remote image",
            "<p>Hej</p><img src=https://evil.example/pixel.gif>",
        ),
    ] {
        let signed = signed_kommun(&app, |d| {
            d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
            d.messages[0].body.body = html.into();
        });
        refused(
            &app,
            case,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsafe_html",
        )
        .await;
    }
    app.stop().await;
}

/// What an outside client found: HTML accepted at intake but shown
/// differently (links silently removed, attributes dropped). Refused now,
/// the problem naming the element, attribute or link (decision 0004).
#[tokio::test]
async fn html_the_display_would_change_is_422_unsafe_html_naming_it() {
    let mut app = TestApp::spawn().await;
    for (html, named) in [
        ("<p><a href=\"/path\">x</a></p>", "\"/path\""),
        ("<a href=\"file:///etc/passwd\">x</a>", "file:"),
        (
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "ascript:alert(1)",
        ),
        ("<p class=\"x\">x</p>", "class"),
        ("<font color=red>x</font>", "<font>"),
        ("<p>x<!-- utkast --></p>", "comment"),
    ] {
        let signed = signed_kommun(&app, |d| {
            d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
            d.messages[0].body.body = html.into();
        });
        let body = refused(
            &app,
            html,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsafe_html",
        )
        .await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{html}: {detail}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_safe_html_body_is_accepted_and_read_back() {
    let mut app = TestApp::spawn().await;
    let html = r#"<h1>Beslut</h1><p>Hej, <b>du</b> har fått <a href="https://skatteverket.se/beslut">ett beslut</a>.</p><ul><li>ett</li><li>två</li></ul>"#;
    let signed = signed_kommun(&app, |d| {
        d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
        d.messages[0].body.body = html.into();
    });
    let opened = deliver_and_read(&app, &signed).await;
    assert_eq!(opened["content_type"], "text/html");
    let body = opened["body"].as_str().unwrap();
    for part in [
        "<h1>Beslut</h1>",
        "<b>du</b>",
        "href=\"https://skatteverket.se/beslut\"",
        "ett beslut</a>",
        "<li>två</li>",
    ] {
        assert!(body.contains(part), "{part:?} missing from {body}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Reachability
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_reachability_lookup_of_1001_ids_is_422_too_many_recipients() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let ids = vec![anna(&app); 1001];
    assert_refusal(
        "1001 ids",
        &app.reachability(&tenant.token, &sender.id, &ids).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_recipients",
    );
    // 1000 is fine.
    let (status, body) = app
        .reachability(&tenant.token, &sender.id, &ids[..1000])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1000));
    assert_nothing_stored(&app, "lookup").await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

fn item(signed: &SignedDelivery) -> Value {
    json!({ "delivery": signed.delivery, "signature": signed.signature })
}

#[tokio::test]
async fn a_batch_of_three_good_and_two_bad_stores_only_the_three_and_names_each_error() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna_id = anna(&app);
    let bertil = app.person("Bertil Berg");
    let good = |to: &str, subject: &str| app.letter(sender, to, subject).signed();
    let mut tampered = good(&anna_id, "Signerad");
    tampered.delivery.messages[0].header.subject = "Ändrad".into();
    let blank = app
        .letter(sender, &bertil, "x")
        .with(|d| d.messages[0].header.subject = String::new())
        .signed();
    let items = batch_items(&[
        good(&anna_id, "Ett"),
        tampered,
        good(&bertil, "Två"),
        blank,
        good(&anna_id, "Tre"),
    ]);
    let body = app.batch_accepted(&tenant.token, &items).await;
    assert_eq!(body["accepted"], 3, "{body}");
    assert_eq!(body["rejected"], 2, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "{body}");
    }
    for i in [0, 2, 4] {
        assert!(results[i]["error"].is_null(), "item {i}: {body}");
        assert_eq!(results[i]["status"], "accepted", "item {i}: {body}");
        assert_eq!(results[i]["replayed"], false, "item {i}: {body}");
    }
    for (i, status, code) in [(1, 422, "signature_invalid"), (3, 422, "empty_subject")] {
        assert!(results[i]["delivery_id"].is_null(), "item {i}: {body}");
        assert_eq!(results[i]["error"]["code"], code, "item {i}: {body}");
        assert_eq!(results[i]["error"]["status"], status, "item {i}: {body}");
    }
    let accepted: std::collections::BTreeSet<String> = [0, 2, 4]
        .iter()
        .map(|&i| results[i]["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted.len(), 3);

    // Exactly those three were stored and delivered.
    for id in &accepted {
        let view = app.wait_delivered(&tenant.token, id).await;
        assert_eq!(view["batch_id"], body["batch_id"], "{view}");
    }
    let events = app.status_events(&tenant.token).await;
    let in_feed: std::collections::BTreeSet<String> =
        events.iter().map(|e| e.delivery_id.clone()).collect();
    assert_eq!(in_feed, accepted, "{events:?}");
    let page = app.inbox(&anna_id).await;
    assert_eq!(page.total, 2, "{page:?}");
    let page = app.inbox(&bertil).await;
    assert_eq!(page.total, 1, "{page:?}");

    // The batch's progress counts the same.
    let batch_id = body["batch_id"].as_str().unwrap();
    let progress = app.batch_view(&tenant.token, batch_id).await;
    assert_eq!(progress["submitted"], 5, "{progress}");
    assert_eq!(progress["rejected"], 2, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 3, "{progress}");
    assert_eq!(progress["done"], true, "{progress}");
    app.stop().await;
}

#[tokio::test]
async fn each_single_delivery_check_also_holds_per_item_in_a_batch() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let formedlare = app.tenant("demoformedlare").clone();
    let to = anna(&app);
    let html = |d: &mut SecureDelivery, body: &str| {
        d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
        d.messages[0].body.body = body.into();
    };
    let with = |change: &dyn Fn(&mut SecureDelivery)| {
        let mut d = app.delivery(sender, &to, "Kallelse");
        change(&mut d);
        app.sign(sender, d)
    };
    let mut bad_sig = with(&|_| {});
    bad_sig.signature.value = "!!!".into();
    let mut unknown_key = with(&|_| {});
    unknown_key.signature.key_id = "ed25519:0000000000000000".into();
    let other_sender = app.sign(
        &formedlare.senders[0],
        app.delivery(&formedlare.senders[0], &to, "Kallelse"),
    );
    let cases: Vec<(&str, SignedDelivery, u16, &str)> = vec![
        (
            "invalid recipient",
            with(&|d| d.header.recipient = "191212121213".into()),
            422,
            "invalid_recipient",
        ),
        (
            "unknown sender",
            with(&|d| d.header.sender.id = kuvert::demo::organisation_number("556677889")),
            403,
            "sender_not_allowed",
        ),
        (
            "other tenant's sender",
            other_sender,
            403,
            "sender_not_allowed",
        ),
        ("bad signature", bad_sig, 422, "signature_invalid"),
        ("unknown key", unknown_key, 422, "signature_key_unknown"),
        (
            "type",
            with(&|d| {
                d.messages[0]
                    .attachments
                    .push(client::attachment("a.txt", "text/plain", b"x"))
            }),
            422,
            "attachment_type_not_allowed",
        ),
        (
            "checksum",
            with(&|d| {
                let mut a = pdf_attachment("a.pdf");
                a.checksum = "00".repeat(32);
                d.messages[0].attachments.push(a);
            }),
            422,
            "checksum_mismatch",
        ),
        (
            "name",
            with(&|d| d.messages[0].attachments.push(pdf_attachment("../a.pdf"))),
            422,
            "bad_attachment_name",
        ),
        (
            "device name",
            with(&|d| d.messages[0].attachments.push(pdf_attachment("NUL.pdf"))),
            422,
            "bad_attachment_name",
        ),
        (
            "extension",
            with(&|d| d.messages[0].attachments.push(pdf_attachment("a.exe"))),
            422,
            "attachment_extension_mismatch",
        ),
        (
            "content",
            with(&|d| {
                d.messages[0].attachments.push(client::attachment(
                    "a.pdf",
                    "application/pdf",
                    b"%PDF-1.4\n",
                ))
            }),
            422,
            "attachment_content_mismatch",
        ),
        (
            "empty subject",
            with(&|d| d.messages[0].header.subject = String::new()),
            422,
            "empty_subject",
        ),
        (
            "long subject",
            with(&|d| d.messages[0].header.subject = "x".repeat(256)),
            422,
            "subject_too_long",
        ),
        (
            "script",
            with(&|d| html(d, "<script>alert(1)</script>")),
            422,
            "unsafe_html",
        ),
        (
            "onclick",
            with(&|d| html(d, "<p onclick=alert(1)>x</p>")),
            422,
            "unsafe_html",
        ),
        (
            "img",
            with(&|d| html(d, "<img src=https://evil.example/x.gif>")),
            422,
            "unsafe_html",
        ),
        (
            "no messages",
            with(&|d| d.messages.clear()),
            422,
            "no_messages",
        ),
        (
            "no key",
            with(&|d| d.header.reference = None),
            422,
            "idempotency_key_missing",
        ),
        (
            "too large",
            with(&|d| {
                d.messages[0].attachments.push(client::attachment(
                    "stor.pdf",
                    "application/pdf",
                    &client::minimal_pdf(&"x".repeat(2 * 1024 * 1024 + 1000)),
                ))
            }),
            413,
            "delivery_too_large",
        ),
    ];
    let items: Vec<Value> = cases.iter().map(|(_, s, _, _)| item(s)).collect();
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 0, "{body}");
    assert_eq!(body["rejected"], cases.len(), "{body}");
    for (i, (case, _, status, code)) in cases.iter().enumerate() {
        let error = &body["results"][i]["error"];
        assert_eq!(error["code"], *code, "item {i} ({case}): {error}");
        assert_eq!(error["status"], *status, "item {i} ({case}): {error}");
    }
    assert_nothing_stored(&app, "batch of bad items").await;
    app.stop().await;
}

#[tokio::test]
async fn a_batch_of_zero_items_is_422_bad_batch_size() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    assert_refusal(
        "empty batch",
        &app.batch(&tenant.token, &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_batch_size",
    );
    assert_nothing_stored(&app, "empty batch").await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// XSS vectors (DOMPurify's test payloads)
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Vector {
    /// Many of DOMPurify's fixtures have no title.
    #[serde(default)]
    title: Option<String>,
    payload: String,
}

fn load_vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/xss/dompurify-payloads.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the XSS vectors are missing at {path}: {e}"));
    let vectors: Vec<Vector> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the XSS vectors at {path} are not [{{title, payload}}]: {e}"));
    assert!(!vectors.is_empty(), "no XSS vectors in {path}");
    vectors
}

/// Tags and their attributes (lowercased names, raw values) as a browser
/// would tokenise the sanitised output, for checking attribute names
/// rather than text that merely looks like them.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = html.as_bytes();
    let ws = |c: u8| c.is_ascii_whitespace();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' || !b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        while i < b.len() && !ws(b[i]) && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && (ws(b[i]) || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let s = i;
            while i < b.len() && !ws(b[i]) && b[i] != b'=' && b[i] != b'>' && b[i] != b'/' {
                i += 1;
            }
            let attr = html[s..i].to_ascii_lowercase();
            while i < b.len() && ws(b[i]) {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && ws(b[i]) {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let quote = b[i];
                    i += 1;
                    let s = i;
                    while i < b.len() && b[i] != quote {
                        i += 1;
                    }
                    value = html[s..i.min(b.len())].to_owned();
                    i += 1;
                } else {
                    let s = i;
                    while i < b.len() && !ws(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    value = html[s..i].to_owned();
                }
            }
            attrs.push((attr, value));
        }
        out.push((name, attrs));
    }
    out
}

/// Why a read-back body is unsafe, if it is.
fn unsafe_in_output(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    if lower.contains("<script") {
        return Some("contains <script".into());
    }
    if lower.contains("javascript:") {
        return Some("contains javascript:".into());
    }
    for (tag, attrs) in tags(body) {
        // The vectors' README also asks for no remote or scripted resources.
        if [
            "script", "iframe", "object", "embed", "img", "svg", "style", "link", "meta", "base",
        ]
        .contains(&tag.as_str())
        {
            return Some(format!("<{tag}> survived"));
        }
        for (name, value) in attrs {
            if name.starts_with("on") {
                return Some(format!("<{tag}> has event handler {name}"));
            }
            if [
                "src",
                "srcset",
                "style",
                "background",
                "poster",
                "formaction",
                "action",
            ]
            .contains(&name.as_str())
            {
                return Some(format!("<{tag}> has resource attribute {name}"));
            }
            let scheme: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .take(12)
                .collect::<String>()
                .to_ascii_lowercase();
            if ["vbscript:", "data:"].iter().any(|s| scheme.starts_with(s)) {
                return Some(format!("<{tag} {name}> uses {scheme}"));
            }
        }
    }
    None
}

#[test]
fn the_output_checker_sees_handlers_but_not_text() {
    assert!(unsafe_in_output("<p onclick=\"x\">a</p>").is_some());
    assert!(unsafe_in_output("<p title=a ONLOAD=x>a</p>").is_some());
    assert!(unsafe_in_output("<a href=\"JavaScript:x\">a</a>").is_some());
    assert!(unsafe_in_output("<p>&lt;img onerror=x&gt; online=yes</p>").is_none());
    assert!(unsafe_in_output("<p title=\"x onclick=y\">a</p>").is_none());
}

#[tokio::test]
async fn dompurify_payloads_are_refused_or_read_back_without_script() {
    let vectors = load_vectors();
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let items: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut d = app.delivery(sender, &to, &format!("XSS {i:03}"));
            d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
            d.messages[0].body.body = v.payload.clone();
            item(&app.sign(sender, d))
        })
        .collect();
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), vectors.len());

    let mut accepted = std::collections::BTreeMap::new(); // delivery id -> vector index
    let mut refused = 0;
    for (i, r) in results.iter().enumerate() {
        match r["error"]["code"].as_str() {
            Some("unsafe_html") => refused += 1,
            Some(other) => panic!(
                "vector {i} ({:?}) refused with {other}, not unsafe_html: {r}",
                vectors[i].title
            ),
            None => {
                assert_eq!(r["status"], "accepted", "vector {i}: {r}");
                accepted.insert(r["delivery_id"].as_str().unwrap().to_owned(), i);
            }
        }
    }
    println!(
        "XSS vectors: {} in total, {refused} refused at intake (unsafe_html), {} accepted",
        vectors.len(),
        accepted.len()
    );
    for id in accepted.keys() {
        let view = app.wait_final(&tenant.token, id).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }

    // Read every delivered message back through the recipient API.
    let token = app.recipient_token(&to);
    let mut message_ids = Vec::new();
    for page in 1.. {
        let (status, listing) = app
            .get(
                &format!("/mailbox/v1/messages?page={page}&page_size=100"),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        let messages = listing["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        message_ids.extend(
            messages
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(
        message_ids.len(),
        accepted.len(),
        "every accepted vector is in the mailbox"
    );
    let mut failures = Vec::new();
    for message in &message_ids {
        let (status, opened) = app
            .get(&format!("/mailbox/v1/messages/{message}"), Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{opened}");
        let delivery = opened["delivery_id"].as_str().unwrap();
        let index = accepted[delivery];
        let body = opened["body"].as_str().unwrap();
        if let Some(why) = unsafe_in_output(body) {
            failures.push(format!(
                "vector {index} ({:?}): {why}\n  sent: {:?}\n  read back: {body:?}",
                vectors[index].title, vectors[index].payload
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} accepted vectors read back unsafe:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}
