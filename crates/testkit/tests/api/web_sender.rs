//! The sender pages (issue 18, decision 0020): a person with the sender
//! role sends by hand, through the relay's own intake, signed with the
//! sender's certified web key; everyone else gets the answer of a sender
//! that does not exist, and every refusal leaves nothing behind.

use kuvert_testkit::oidc::{Browser, Seen};
use kuvert_testkit::{ADMIN_TOKEN, TestApp};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

fn index_of(app: &TestApp, given_name: &str) -> usize {
    app.dev_idp_people()
        .iter()
        .position(|p| p.given_name == given_name)
        .expect("a test person")
}

/// A browser logged in as the test person `given_name`.
async fn logged_in(app: &TestApp, given_name: &str) -> Browser {
    let browser = app.browser();
    let done = browser.login_dev_idp(index_of(app, given_name)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    browser
}

fn kommun_sender(app: &TestApp) -> String {
    app.kommun().1.id.clone()
}

async fn deliveries(app: &TestApp) -> i64 {
    app.query("kuvert.db", "SELECT COUNT(*) FROM deliveries")
        .await
}

/// `800101-2384` for `198001012384`: how a person writes a number, which
/// the page parses with kuvert's parser.
fn written(canonical: &str) -> String {
    format!("{}-{}", &canonical[2..8], &canonical[8..])
}

/// The form's hidden fields, from `GET /sender/{sender}/new`.
async fn open_form(browser: &Browser, sender: &str) -> (String, String) {
    let page = browser.get(&format!("/sender/{sender}/new")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (
        page.hidden_field("csrf").expect("csrf field"),
        page.hidden_field("idempotency").expect("idempotency field"),
    )
}

struct Message<'a> {
    csrf: Option<&'a str>,
    idempotency: &'a str,
    recipient: &'a str,
    subject: &'a str,
    body: &'a str,
    files: Vec<(&'a str, Vec<u8>)>,
}

fn form(message: Message<'_>) -> Form {
    let mut form = Form::new();
    if let Some(csrf) = message.csrf {
        form = form.text("csrf", csrf.to_owned());
    }
    form = form
        .text("idempotency", message.idempotency.to_owned())
        .text("recipient", message.recipient.to_owned())
        .text("subject", message.subject.to_owned())
        .text("body", message.body.to_owned());
    if message.files.is_empty() {
        // What a browser sends for a file input left empty.
        form = form.part("attachments", Part::bytes(Vec::new()).file_name(""));
    }
    for (name, bytes) in message.files {
        form = form.part(
            "attachments",
            Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    form
}

async fn post(browser: &Browser, sender: &str, message: Message<'_>) -> Seen {
    browser
        .post_multipart(&format!("/sender/{sender}/new"), form(message))
        .await
}

fn shows_code(seen: &Seen, code: &str) -> bool {
    seen.body.contains(&format!("<code>{code}</code>"))
}

#[tokio::test]
async fn a_person_without_the_role_gets_the_answer_of_a_missing_sender() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let sent = app.send_ok(&app.person("Anna Andersson"), "Via API").await;
    let missing = kuvert::demo::organisation_number("202900999");
    // Hanna holds the role (the demo's authority user): the pages exist.
    let hanna = logged_in(&app, "Hanna").await;
    assert_eq!(
        hanna.get(&format!("/sender/{sender}/new")).await.status,
        200
    );

    let anna = logged_in(&app, "Anna").await;
    // The start page offers the sender pages only to a person with the role.
    assert!(!anna.get("/").await.body.contains(r#"href="/sender""#));
    assert!(hanna.get("/").await.body.contains(r#"href="/sender""#));
    let list = anna.get("/sender").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains(&sender), "{}", list.body);
    for path in [
        format!("/sender/{sender}/new"),
        format!("/sender/{sender}/sent"),
        format!("/sender/{sender}/sent/{sent}"),
    ] {
        let theirs = anna.get(&path).await;
        let none = anna.get(&path.replace(&sender, &missing)).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{path}");
        assert!(shows_code(&theirs, "not_found"), "{}", theirs.body);
        assert_eq!(
            theirs.body, none.body,
            "{path}: same page as a missing sender"
        );
        assert!(!theirs.body.contains(&sent));
    }
    // A POST with Anna's own valid CSRF token: refused alike, nothing sent.
    let csrf = anna.csrf().await.unwrap();
    let before = deliveries(&app).await;
    let refused = post(
        &anna,
        &sender,
        Message {
            csrf: Some(&csrf),
            idempotency: "anna-1",
            recipient: &written(&app.person("Bertil Berg")),
            subject: "Inte tillåtet",
            body: "x",
            files: vec![],
        },
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert_eq!(deliveries(&app).await, before);
}

#[tokio::test]
async fn a_granted_person_sends_by_hand_signed_with_the_certified_web_key() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let anna = app.person("Anna Andersson");
    let hanna = logged_in(&app, "Hanna").await;
    let list = hanna.get("/sender").await;
    assert!(list.body.contains("Demo kommun"), "{}", list.body);
    assert!(list.body.contains(&format!("/sender/{sender}/new")));

    let (csrf, idempotency) = open_form(&hanna, &sender).await;
    let pdf = kuvert::client::minimal_pdf("Beslut från webben");
    let anna_written = written(&anna);
    let message = || Message {
        csrf: Some(&csrf),
        idempotency: &idempotency,
        recipient: &anna_written,
        subject: "Beslut om färdtjänst",
        body: "Hej Anna!\nHär kommer beslutet.",
        files: vec![("beslut.pdf", pdf.clone())],
    };
    let sent = post(&hanna, &sender, message()).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let to = sent.location.clone().unwrap();
    let prefix = format!("/sender/{sender}/sent/");
    assert!(to.starts_with(&prefix) && to.ends_with("?sent=1"), "{to}");
    let delivery = to[prefix.len()..to.len() - "?sent=1".len()].to_owned();
    let receipt_page = hanna.get(&to).await;
    assert_eq!(receipt_page.status, StatusCode::OK);
    assert!(
        receipt_page.body.contains("<h1>Skickat</h1>"),
        "{}",
        receipt_page.body
    );
    assert!(receipt_page.body.contains(&delivery));

    // The same form sent again (a double click, a reload): one delivery.
    let again = post(&hanna, &sender, message()).await;
    assert_eq!(again.location.as_deref(), Some(to.as_str()));
    let count: i64 = app
        .query(
            "kuvert.db",
            &format!("SELECT COUNT(*) FROM deliveries WHERE sender_id = '{sender}' AND recipient_id = '{anna}'"),
        )
        .await;
    assert_eq!(count, 1);

    // The recipient reads it through the recipient API, with its attachment.
    app.drain().await;
    let inbox = app.inbox(&anna).await;
    let message = inbox
        .messages
        .iter()
        .find(|m| m.subject == "Beslut om färdtjänst")
        .expect("the message is in Anna's inbox");
    let (status, opened) = app
        .open_message(&app.recipient_token(&anna), &message.id)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened["body"], "Hej Anna!\nHär kommer beslutet.");
    assert_eq!(opened["sender_id"], sender.as_str());
    assert_eq!(opened["attachments"][0]["filename"], "beslut.pdf");
    assert_eq!(opened["attachments"][0]["size"], pdf.len());

    // Signed with the sender's web key, which the register certified for
    // this sender like any key; the mailbox checked the signature against
    // that certificate before it accepted the delivery.
    let web_key: String = app
        .query(
            "kuvert.db",
            &format!("SELECT key_id FROM web_sender_keys WHERE sender_id = '{sender}'"),
        )
        .await;
    let used: String = app
        .query(
            "kuvert.db",
            &format!("SELECT sender_key_id FROM deliveries WHERE id = '{delivery}'"),
        )
        .await;
    assert_eq!(used, web_key);
    assert_ne!(web_key, app.kommun().1.key_id, "not the API's demo key");
    let (status, certificates) = app
        .get(&format!("/register/v1/senders/{sender}/certificates"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let certificate: kuvert_mailbox::certificate::SenderKeyCertificate = serde_json::from_value(
        certificates["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["certificate"]["key_id"] == web_key.as_str())
            .expect("the web key is certified")["certificate"]
            .clone(),
    )
    .unwrap();
    let (_, keys) = app.get("/register/v1/keys", None).await;
    let register_key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["purpose"] == "register_certificate")
        .expect("the register's key")["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let register = kuvert_mailbox::certificate::TrustedRegisters::new(vec![
        kuvert_crypto::signing::PublicKey::from_base64(&register_key).unwrap(),
    ]);
    let certified = certificate
        .verify(&register)
        .expect("certified by the register");
    assert_eq!(certified.key_id(), web_key);
    assert_eq!(certificate.sender_id, sender);

    // The audit log: the delivery's actor is the grant, and the grant's
    // entry names the person (by pseudonym, never the number).
    let grant: String = app
        .query(
            "kuvert.db",
            &format!("SELECT actor FROM audit_log WHERE action = 'delivery.accepted' AND subject = '{delivery}'"),
        )
        .await;
    let granted: String = app
        .query(
            "kuvert.db",
            &format!("SELECT detail FROM audit_log WHERE action = 'web_sender.granted' AND subject = '{grant}'"),
        )
        .await;
    assert!(granted.contains("\"person\""), "{granted}");
    assert!(!granted.contains(&kuvert::demo::web_sender_person()));

    // And the delivery's page now says delivered, with the receipt's time.
    let page = hanna
        .get(&format!("/sender/{sender}/sent/{delivery}"))
        .await;
    assert!(page.body.contains("levererat"), "{}", page.body);
    assert!(page.body.contains("i mottagarens brevlåda"));
}

#[tokio::test]
async fn revoking_the_role_refuses_the_very_next_post_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let bertil = app.person("Bertil Berg");
    // The platform operator grants Bertil the role through the admin API.
    let path = "/admin/v1/tenants/demokommun/web-senders";
    let (status, granted) = app
        .post(
            path,
            Some(ADMIN_TOKEN),
            &json!({ "sender": sender, "person": written(&bertil) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    let grant = granted["grant"].as_str().unwrap().to_owned();
    let (status, twice) = app
        .post(
            path,
            Some(ADMIN_TOKEN),
            &json!({ "sender": sender, "person": bertil }),
        )
        .await;
    assert_eq!(
        (status, twice["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_granted"))
    );
    for (body, code) in [
        (
            json!({ "sender": sender, "person": "19800101-0000" }),
            "invalid_person",
        ),
        (
            json!({ "sender": app.tenant("demoformedlare").senders[0].id, "person": bertil }),
            "unknown_sender",
        ),
        (
            json!({ "sender": sender, "person": kuvert::demo::organisation_number("802000999") }),
            "invalid_person",
        ),
    ] {
        let (status, refused) = app.post(path, Some(ADMIN_TOKEN), &body).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }

    let browser = logged_in(&app, "Bertil").await;
    let (csrf, idempotency) = open_form(&browser, &sender).await;
    let (status, _) = app
        .delete(&format!("{path}/{grant}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = deliveries(&app).await;
    let refused = post(
        &browser,
        &sender,
        Message {
            csrf: Some(&csrf),
            idempotency: &idempotency,
            recipient: &written(&app.person("Anna Andersson")),
            subject: "Efter återkallelsen",
            body: "x",
            files: vec![],
        },
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert_eq!(deliveries(&app).await, before, "nothing sent");
    assert!(!browser.get("/sender").await.body.contains(&sender));
    assert!(!browser.get("/").await.body.contains(r#"href="/sender""#));
    // Its credential went with it: revoked in the same transaction.
    let revoked: Option<String> = app
        .query(
            "kuvert.db",
            &format!("SELECT revoked_at FROM credentials WHERE id = '{grant}'"),
        )
        .await;
    assert!(revoked.is_some());
    let (status, _) = app
        .delete(&format!("{path}/{grant}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked once");
}

#[tokio::test]
async fn a_suspended_tenant_and_a_removed_sender_refuse_the_pages() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let hanna = logged_in(&app, "Hanna").await;
    let (csrf, idempotency) = open_form(&hanna, &sender).await;
    let (status, _) = app
        .post(
            "/admin/v1/tenants/demokommun/suspend",
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = deliveries(&app).await;
    let anna = app.person("Anna Andersson");
    let message = || Message {
        csrf: Some(&csrf),
        idempotency: &idempotency,
        recipient: &anna,
        subject: "Avstängd",
        body: "x",
        files: vec![],
    };
    let refused = post(&hanna, &sender, message()).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert_eq!(
        hanna.get(&format!("/sender/{sender}/sent")).await.status,
        404
    );
    assert_eq!(deliveries(&app).await, before);

    // Resumed, the role works again; removed, the sender is gone for good.
    app.post(
        "/admin/v1/tenants/demokommun/resume",
        Some(ADMIN_TOKEN),
        &json!({}),
    )
    .await;
    assert_eq!(
        hanna.get(&format!("/sender/{sender}/new")).await.status,
        200
    );
    let (status, _) = app
        .delete(
            &format!("/admin/v1/tenants/demokommun/senders/{sender}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refused = post(&hanna, &sender, message()).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert_eq!(deliveries(&app).await, before);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_first_is_refused_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let hanna = logged_in(&app, "Hanna").await;
    let (csrf, idempotency) = open_form(&hanna, &sender).await;
    let before = deliveries(&app).await;
    let anna = app.person("Anna Andersson");
    let message = |csrf| Message {
        csrf,
        idempotency: &idempotency,
        recipient: &anna,
        subject: "Utan kod",
        body: "x",
        files: vec![],
    };
    for wrong in [None, Some("not-the-token")] {
        let refused = post(&hanna, &sender, message(wrong)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(shows_code(&refused, "csrf_invalid"));
    }
    // The right token, but not first: refused before any field is used.
    let late = Form::new()
        .text("recipient", app.person("Anna Andersson"))
        .text("csrf", csrf.clone());
    let refused = hanna
        .post_multipart(&format!("/sender/{sender}/new"), late)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(deliveries(&app).await, before, "nothing sent");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let hanna = logged_in(&app, "Hanna").await;
    let (csrf, idempotency) = open_form(&hanna, &sender).await;
    let before = deliveries(&app).await;
    let anna = written(&app.person("Anna Andersson"));
    let pdf = kuvert::client::minimal_pdf("Bilaga");
    let cases: Vec<(Message<'_>, StatusCode, &str)> = vec![
        (
            Message {
                csrf: Some(&csrf),
                idempotency: &idempotency,
                recipient: "19800101-0000",
                subject: "Fel nummer",
                body: "Texten finns kvar",
                files: vec![],
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recipient",
        ),
        (
            Message {
                csrf: Some(&csrf),
                idempotency: &idempotency,
                recipient: &anna,
                subject: "För stor",
                body: "x",
                files: vec![("stor.pdf", vec![b'%'; 1600 * 1024])],
            },
            StatusCode::PAYLOAD_TOO_LARGE,
            "form_too_large",
        ),
        (
            Message {
                csrf: Some(&csrf),
                idempotency: &idempotency,
                recipient: &anna,
                subject: "Inte en PDF",
                body: "x",
                files: vec![("beslut.pdf", b"<html>no pdf</html>".to_vec())],
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "attachment_content_mismatch",
        ),
        (
            Message {
                csrf: Some(&csrf),
                idempotency: &idempotency,
                recipient: &anna,
                subject: "Många",
                body: "x",
                files: (0..21).map(|_| ("b.pdf", pdf.clone())).collect(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_attachments",
        ),
        (
            Message {
                csrf: Some(&csrf),
                idempotency: &idempotency,
                recipient: &anna,
                subject: "   ",
                body: "x",
                files: vec![],
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_subject",
        ),
    ];
    for (message, status, code) in cases {
        let subject = message.subject.to_owned();
        let refused = post(&hanna, &sender, message).await;
        assert_eq!(refused.status, status, "{code}: {}", refused.body);
        assert!(shows_code(&refused, code), "{code}: {}", refused.body);
        assert!(refused.body.contains("Inget har skickats"), "{code}");
        if code == "invalid_recipient" {
            assert!(
                refused.body.contains("Texten finns kvar"),
                "the draft is kept"
            );
            assert!(refused.body.contains(r#"aria-invalid="true""#));
        }
        assert!(refused.body.contains(&subject) || subject.trim().is_empty());
        assert_eq!(deliveries(&app).await, before, "{code}: nothing sent");
    }
}

#[tokio::test]
async fn the_relay_checks_the_web_key_like_any_key() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let hanna = logged_in(&app, "Hanna").await;
    let (csrf, idempotency) = open_form(&hanna, &sender).await;
    // A certificate someone changed behind the register: the relay's own
    // check refuses it, as it would an API delivery's.
    app.write_sql(
        "kuvert.db",
        &format!(
            "UPDATE sender_keys SET certificate = NULL WHERE key_id IN (SELECT key_id FROM web_sender_keys WHERE sender_id = '{sender}')"
        ),
    )
    .await;
    let before = deliveries(&app).await;
    let refused = post(
        &hanna,
        &sender,
        Message {
            csrf: Some(&csrf),
            idempotency: &idempotency,
            recipient: &app.person("Anna Andersson"),
            subject: "Ocertifierad nyckel",
            body: "x",
            files: vec![],
        },
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        shows_code(&refused, "signature_key_not_certified"),
        "{}",
        refused.body
    );
    assert_eq!(deliveries(&app).await, before);
}

/// The numbers in the chart table's footer: one per outcome, then the total.
fn table_totals(body: &str) -> Vec<i64> {
    let foot = &body[body.find("<tfoot>").unwrap()..body.find("</tfoot>").unwrap()];
    foot.split("<td>")
        .skip(1)
        .map(|cell| cell[..cell.find("</td>").unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_sent_list_shows_statuses_pages_by_cursor_and_the_chart_table_equals_the_counts() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let (kommun, _) = app.kommun();
    let token = kommun.token.clone();
    let anna = app.person("Anna Andersson");
    let cecilia = app.recipient("not_registered").id.clone();
    let david = app.recipient("refuses_demokommun").id.clone();
    for i in 0..24 {
        app.send_ok(&anna, &format!("Brev {i}")).await;
    }
    app.send_ok(&cecilia, "Ingen brevlåda").await;
    app.send_accepted(
        &token,
        &app.kommun_letter(&cecilia, "Papper")
            .paper_fallback()
            .signed(),
    )
    .await;
    app.send_ok(&david, "Nekar").await;
    app.drain().await;
    // A failure the worker would record after its retries, written here.
    let failed = app.send_ok(&anna, "Misslyckas").await;
    app.drain().await;
    app.write_sql(
        "kuvert.db",
        &format!("UPDATE deliveries SET status = 'failed', status_reason = 'mailbox_refused' WHERE id = '{failed}'"),
    )
    .await;

    let hanna = logged_in(&app, "Hanna").await;
    let first = hanna.get(&format!("/sender/{sender}/sent")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for shown in [
        "levererat",
        "på papper",
        "inte levererat</span>: mottagaren har ingen digital brevlåda",
        "mottagaren har valt att inte ta emot digital post från avsändaren",
        "misslyckades</span>: mailbox_refused",
        r#"role="img""#,
        r#"aria-labelledby="chart-title chart-desc""#,
        "<caption",
    ] {
        assert!(first.body.contains(shown), "{shown}: {}", first.body);
    }
    // The table holds the same numbers as the database.
    let by_status = |status: &'static str| {
        let app = &app;
        let sender = sender.clone();
        async move {
            app.query::<i64>(
                "kuvert.db",
                &format!("SELECT COUNT(*) FROM deliveries WHERE sender_id = '{sender}' AND status = '{status}'"),
            )
            .await
        }
    };
    let expected = vec![
        by_status("delivered").await,
        by_status("accepted").await,
        by_status("paper").await,
        by_status("not_delivered").await,
        by_status("failed").await,
    ];
    let total: i64 = expected.iter().sum();
    assert_eq!(total, 28);
    assert_eq!(expected[2], 1);
    assert_eq!(expected[3], 2);
    assert_eq!(expected[4], 1);
    let mut with_total = expected.clone();
    with_total.push(total);
    assert_eq!(table_totals(&first.body), with_total);

    // Paging by cursor: 25, then the rest, none twice, none left out.
    let rows = |body: &str| -> Vec<String> {
        body.match_indices(&format!("/sender/{sender}/sent/"))
            .map(|(at, m)| body[at + m.len()..at + m.len() + 36].to_owned())
            .collect()
    };
    let page_one = rows(&first.body);
    assert_eq!(page_one.len(), 25);
    let next = first.body.split("?after=").nth(1).unwrap();
    let next = &next[..next.find('"').unwrap()];
    let second = hanna
        .get(&format!("/sender/{sender}/sent?after={next}"))
        .await;
    let page_two = rows(&second.body);
    assert_eq!(page_two.len(), 3, "{}", second.body);
    assert!(page_two.iter().all(|id| !page_one.contains(id)));
    assert!(
        !second.body.contains("<svg"),
        "the chart is on the first page"
    );
    // A cursor the viewer does not see starts over.
    let other = app.tenant("demoformedlare");
    let theirs = app
        .send_accepted(
            &other.token,
            &app.sign(
                &other.senders[0],
                app.delivery(&other.senders[0], &anna, "Annan"),
            ),
        )
        .await;
    let foreign = hanna
        .get(&format!("/sender/{sender}/sent?after={theirs}"))
        .await;
    assert_eq!(rows(&foreign.body), page_one);
}

#[tokio::test]
async fn the_web_keys_private_half_is_stored_only_encrypted() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let column =
        |name: &str| format!("SELECT {name} FROM web_sender_keys WHERE sender_id = '{sender}'");
    let key_id: String = app.query("kuvert.db", &column("key_id")).await;
    let wrapped_key: Vec<u8> = app.query("kuvert.db", &column("wrapped_key")).await;
    let private_key: Vec<u8> = app.query("kuvert.db", &column("private_key")).await;
    let kek = kuvert_crypto::keyfile::load_secret(
        &app.data_dir().join("keys").join("web-sender-kek.aes256"),
    )
    .unwrap();
    let kek = kuvert_crypto::at_rest::KeyEncryptionKey::from_bytes(&kek);
    let mut stored = kuvert_store::web_senders::StoredWebKey {
        key_id: key_id.clone(),
        wrapped_key,
        private_key,
    };
    let key = kuvert_relay::web_sending::open_web_key(&kek, &stored).unwrap();
    assert_eq!(key.public_key().key_id(), key_id);
    // Its 32 secret bytes are in no database file.
    let secret = key.to_bytes();
    for file in app.database_files() {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == secret.as_slice()),
            "{} holds the web key in the clear",
            file.display()
        );
    }
    // Bound to its key id: under another id it does not open.
    stored.key_id = app.kommun().1.key_id.clone();
    assert!(kuvert_relay::web_sending::open_web_key(&kek, &stored).is_err());
}

/// `kuvert tenant web-sender grant|revoke` and `web-key create` do what the
/// admin API does, through the same functions.
#[tokio::test]
async fn the_command_line_grants_and_revokes_the_role_and_makes_web_keys() {
    let app = TestApp::spawn().await;
    let sender = kommun_sender(&app);
    let bertil = app.person("Bertil Berg");
    let data = app.data_dir().to_str().unwrap().to_owned();
    let args = |list: &[&str]| {
        ["kuvert", "--data", &data]
            .iter()
            .chain(list)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    let browser = logged_in(&app, "Bertil").await;
    assert_eq!(
        browser.get(&format!("/sender/{sender}/new")).await.status,
        404
    );
    kuvert::cli::run(args(&[
        "tenant",
        "web-sender",
        "grant",
        "demokommun",
        &sender,
        &written(&bertil),
    ]))
    .await
    .unwrap();
    assert_eq!(
        browser.get(&format!("/sender/{sender}/new")).await.status,
        200
    );
    // Not a person: refused, nothing granted.
    let organisation = kuvert::demo::organisation_number("802000999");
    assert!(
        kuvert::cli::run(args(&[
            "tenant",
            "web-sender",
            "grant",
            "demokommun",
            &sender,
            &organisation
        ]))
        .await
        .is_err()
    );

    // A new web key is the one the next send is signed with.
    kuvert::cli::run(args(&[
        "tenant",
        "web-key",
        "create",
        "demokommun",
        &sender,
    ]))
    .await
    .unwrap();
    let keys: Vec<String> = app
        .query_all(
            "kuvert.db",
            &format!("SELECT key_id FROM web_sender_keys WHERE sender_id = '{sender}' ORDER BY created_at"),
        )
        .await;
    assert_eq!(keys.len(), 2);
    let (csrf, idempotency) = open_form(&browser, &sender).await;
    let sent = post(
        &browser,
        &sender,
        Message {
            csrf: Some(&csrf),
            idempotency: &idempotency,
            recipient: &app.person("Anna Andersson"),
            subject: "Med den nya nyckeln",
            body: "x",
            files: vec![],
        },
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let used: String = app
        .query(
            "kuvert.db",
            "SELECT sender_key_id FROM deliveries ORDER BY received_at DESC LIMIT 1",
        )
        .await;
    assert_eq!(used, keys[1]);

    kuvert::cli::run(args(&[
        "tenant",
        "web-sender",
        "revoke",
        "demokommun",
        &sender,
        &bertil,
    ]))
    .await
    .unwrap();
    assert_eq!(
        browser.get(&format!("/sender/{sender}/new")).await.status,
        404
    );
    assert!(
        kuvert::cli::run(args(&[
            "tenant",
            "web-sender",
            "revoke",
            "demokommun",
            &sender,
            &bertil
        ]))
        .await
        .is_err(),
        "revoked once"
    );
}
