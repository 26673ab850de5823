//! The settings pages (issue 18): registering and deregistering, refusing
//! and accepting senders, notification contacts, and the zip of all of a
//! person's mail, each through a browser logged in at the dev IdP and
//! checked through the API the pages share their functions with.

use base64::Engine as _;
use kuvert_mailbox::evidence::{KeysDocument, check_receipt};
use kuvert_mailbox::protocol::Receipt;
use kuvert_testkit::TestApp;
use kuvert_testkit::oidc::{Browser, Seen};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Read as _;

fn person_index(app: &TestApp, given_name: &str) -> usize {
    app.dev_idp_people()
        .iter()
        .position(|p| p.given_name == given_name)
        .expect("a test person")
}

/// A browser logged in as `given_name`, and its CSRF token.
async fn logged_in(app: &TestApp, given_name: &str) -> (Browser, String) {
    let browser = app.browser();
    let done = browser.login_dev_idp(person_index(app, given_name)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let csrf = browser.csrf().await.expect("logged in");
    (browser, csrf)
}

async fn profile(app: &TestApp, recipient: &str) -> Value {
    let token = app.registration_token(recipient);
    let (status, body) = app.get("/register/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_page_error(seen: &Seen, status: StatusCode, code: &str) {
    assert_eq!(seen.status, status, "{}", seen.body);
    assert!(
        seen.body.contains(&format!("<code>{code}</code>")),
        "expected {code}: {}",
        seen.body
    );
}

fn assert_saved(seen: &Seen, what: &str) {
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "{}", seen.body);
    let location = seen.location.as_deref().unwrap_or_default();
    assert!(
        location.starts_with(&format!("/settings?saved={what}")),
        "{location}"
    );
}

#[tokio::test]
async fn registering_and_deregistering_on_the_page_is_what_the_register_api_says() {
    let app = TestApp::spawn().await;
    let cecilia = app.recipient("not_registered").id.clone();
    let (browser, csrf) = logged_in(&app, "Cecilia").await;
    assert_eq!(profile(&app, &cecilia).await["status"], "none");

    let page = browser.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"<html lang="sv">"#));
    assert!(page.body.contains("Du har ingen digital brevlåda"));
    assert!(page.body.contains("räknas som levererat"), "the terms");
    assert!(
        page.body.contains(r#"value="kuvert-brevlada""#),
        "{}",
        page.body
    );
    let english = browser.get("/settings?lang=en").await;
    assert!(english.body.contains(r#"<html lang="en">"#));
    assert!(english.body.contains("counts as delivered"));
    // Back to Swedish (the choice is kept in a cookie).
    browser.get("/?lang=sv").await;

    // Without the terms, or with an operator that does not exist: the
    // form again with the error beside the field, nothing registered.
    let no_terms = browser
        .post_form(
            "/settings/register",
            &[("csrf", &csrf), ("operator", "kuvert-brevlada")],
        )
        .await;
    assert_eq!(no_terms.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_terms.body.contains(r#"id="terms-error""#),
        "{}",
        no_terms.body
    );
    assert!(
        no_terms
            .body
            .contains(r#"aria-describedby="terms-text terms-error""#)
    );
    let unknown = browser
        .post_form(
            "/settings/register",
            &[
                ("csrf", &csrf),
                ("terms", "accepted"),
                ("operator", "nowhere"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains(r#"id="operator-error""#));
    assert_eq!(profile(&app, &cecilia).await["status"], "none");

    let done = browser
        .post_form(
            "/settings/register",
            &[
                ("csrf", &csrf),
                ("terms", "accepted"),
                ("operator", "kuvert-brevlada"),
            ],
        )
        .await;
    assert_saved(&done, "registered");
    let me = profile(&app, &cecilia).await;
    assert_eq!(me["status"], "registered", "{me}");
    assert_eq!(me["operator_id"], "kuvert-brevlada", "{me}");
    let page = browser.get(&done.location.unwrap()).await;
    assert!(page.body.contains(r#"role="status""#), "{}", page.body);
    assert!(page.body.contains("/settings/deregister"));

    // The confirmation says what happens; only its button deregisters.
    let confirm = browser.get("/settings/deregister").await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("på papper"));
    assert!(confirm.body.contains("finns kvar"));
    assert_eq!(profile(&app, &cecilia).await["status"], "registered");
    let done = browser
        .post_form("/settings/deregister", &[("csrf", &csrf)])
        .await;
    assert_saved(&done, "deregistered");
    let me = profile(&app, &cecilia).await;
    assert_eq!(me["status"], "deregistered", "{me}");
    assert_eq!(me["operator_id"], Value::Null);
}

#[tokio::test]
async fn a_person_under_18_is_told_so_and_stays_unregistered() {
    let app = TestApp::spawn().await;
    let eva = app.recipient("too_young").id.clone();
    let (browser, csrf) = logged_in(&app, "Eva").await;
    let refused = browser
        .post_form(
            "/settings/register",
            &[
                ("csrf", &csrf),
                ("terms", "accepted"),
                ("operator", "kuvert-brevlada"),
            ],
        )
        .await;
    assert_page_error(&refused, StatusCode::FORBIDDEN, "too_young");
    assert_eq!(profile(&app, &eva).await["status"], "none");
}

#[tokio::test]
async fn refusing_a_sender_on_the_page_keeps_its_mail_out_of_the_mailbox() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let (tenant, sender) = app.kommun();
    let (browser, csrf) = logged_in(&app, "Anna").await;
    let page = browser.get("/settings").await;
    assert!(page.body.contains("Demo kommun"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!(r#"name="sender" value="{}""#, sender.id))
    );

    let done = browser
        .post_form(
            "/settings/senders",
            &[("csrf", &csrf), ("sender", &sender.id), ("refuse", "yes")],
        )
        .await;
    assert_saved(&done, "refused");
    assert_eq!(
        profile(&app, &anna).await["refused_senders"],
        json!([sender.id])
    );
    let page = browser.get("/settings").await;
    assert!(page.body.contains("Nekad: post kommer på papper"));
    let signed = app.kommun_signed(&anna, "Nekad avsändare");
    let (_, body) = app.send(&tenant.token, &signed).await;
    let view = app
        .wait_final(&tenant.token, body["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(view["status"], "not_delivered", "{view}");
    assert_eq!(view["reason"], "sender_refused", "{view}");
    assert_eq!(app.inbox(&anna).await.total, 0);

    let done = browser
        .post_form(
            "/settings/senders",
            &[("csrf", &csrf), ("sender", &sender.id), ("refuse", "no")],
        )
        .await;
    assert_saved(&done, "accepted");
    assert_eq!(profile(&app, &anna).await["refused_senders"], json!([]));
    app.send_delivered(&tenant.token, &app.kommun_signed(&anna, "Välkommen"))
        .await;
    assert_eq!(app.inbox(&anna).await.total, 1);

    // A malformed sender or action changes nothing.
    for form in [
        [
            ("csrf", csrf.as_str()),
            ("sender", "123"),
            ("refuse", "yes"),
        ],
        [
            ("csrf", csrf.as_str()),
            ("sender", &sender.id),
            ("refuse", "maybe"),
        ],
    ] {
        let bad = browser.post_form("/settings/senders", &form).await;
        assert_page_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_form");
    }
    assert_eq!(profile(&app, &anna).await["refused_senders"], json!([]));

    // Cecilia has no registration to refuse senders in.
    let (cecilia, cecilia_csrf) = logged_in(&app, "Cecilia").await;
    let refused = cecilia
        .post_form(
            "/settings/senders",
            &[
                ("csrf", &cecilia_csrf),
                ("sender", &sender.id),
                ("refuse", "yes"),
            ],
        )
        .await;
    assert_page_error(&refused, StatusCode::CONFLICT, "not_registered");
}

async fn stored_contacts(app: &TestApp) -> Vec<Vec<u8>> {
    app.query_all::<Vec<u8>>("mailbox.db", "SELECT contacts FROM notification_contacts")
        .await
}

#[tokio::test]
async fn contacts_are_validated_stored_encrypted_and_can_be_cleared() {
    let app = TestApp::spawn().await;
    let (browser, csrf) = logged_in(&app, "Anna").await;
    let done = browser
        .post_form(
            "/settings/contacts",
            &[
                ("csrf", &csrf),
                ("email", " anna.andersson@Exempel.SE "),
                ("phone", "070-123 45 67"),
            ],
        )
        .await;
    assert_saved(&done, "contacts");
    let page = browser.get("/settings").await;
    assert!(
        page.body.contains(r#"value="anna.andersson@exempel.se""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"value="+46701234567""#), "E.164");
    // Ciphertext only, in the table and in the audit log.
    let rows = stored_contacts(&app).await;
    assert_eq!(rows.len(), 1);
    for needle in [&b"exempel"[..], b"anna", b"46701234567"] {
        assert!(!rows[0].windows(needle.len()).any(|w| w == needle));
    }
    let details = app
        .query_all::<String>(
            "mailbox.db",
            "SELECT detail FROM audit_log WHERE action = 'contacts.changed'",
        )
        .await;
    assert_eq!(details, vec![r#"{"email":true,"phone":true}"#.to_owned()]);

    // Each bad value: the form again, the error beside its field, the
    // typed value kept, nothing stored.
    let too_long = format!("{}@exempel.se", "a".repeat(250));
    for (email, phone, field) in [
        ("inte-en-adress", "", "email"),
        (too_long.as_str(), "", "email"),
        ("anna@exempel.se", "12345", "phone"),
        ("anna@exempel.se", "08-123 456 78", "phone"),
    ] {
        let refused = browser
            .post_form(
                "/settings/contacts",
                &[("csrf", &csrf), ("email", email), ("phone", phone)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email} {phone}"
        );
        assert!(
            refused.body.contains(&format!(r#"id="{field}-error""#)),
            "{}",
            refused.body
        );
        assert!(refused.body.contains(r#"aria-invalid="true""#));
        assert_eq!(stored_contacts(&app).await, rows, "nothing changed");
    }
    let page = browser.get("/settings").await;
    assert!(page.body.contains(r#"value="anna.andersson@exempel.se""#));

    // Both fields empty: the row is gone.
    let done = browser
        .post_form(
            "/settings/contacts",
            &[("csrf", &csrf), ("email", ""), ("phone", " ")],
        )
        .await;
    assert_saved(&done, "contacts");
    assert!(stored_contacts(&app).await.is_empty());
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let sender = app.kommun().1.id.clone();
    let (browser, _) = logged_in(&app, "Anna").await;
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/settings/register",
            vec![("terms", "accepted"), ("operator", "kuvert-brevlada")],
        ),
        (
            "/settings/senders",
            vec![("sender", &sender), ("refuse", "yes")],
        ),
        ("/settings/contacts", vec![("email", "anna@exempel.se")]),
        ("/settings/deregister", vec![]),
        ("/settings/export", vec![]),
    ];
    let before = profile(&app, &anna).await;
    for (path, fields) in &forms {
        for csrf in [None, Some("not-the-token")] {
            let mut form = fields.clone();
            if let Some(token) = csrf {
                form.push(("csrf", token));
            }
            let seen = browser.post_form(path, &form).await;
            assert_page_error(&seen, StatusCode::FORBIDDEN, "csrf_invalid");
        }
    }
    assert_eq!(profile(&app, &anna).await, before);
    assert!(stored_contacts(&app).await.is_empty());
    let exports = app
        .query::<i64>(
            "mailbox.db",
            "SELECT count(*) FROM audit_log WHERE action = 'mailbox.exported'",
        )
        .await;
    assert_eq!(exports, 0);
}

#[tokio::test]
async fn without_a_session_every_settings_page_answers_not_logged_in() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for path in ["/settings", "/settings/deregister"] {
        assert_page_error(
            &browser.get(path).await,
            StatusCode::UNAUTHORIZED,
            "not_logged_in",
        );
    }
    for path in [
        "/settings/register",
        "/settings/senders",
        "/settings/contacts",
        "/settings/deregister",
        "/settings/export",
    ] {
        let seen = browser.post_form(path, &[("csrf", "x")]).await;
        assert_page_error(&seen, StatusCode::UNAUTHORIZED, "not_logged_in");
    }
}

/// The zip a logged-in browser downloads, with its response headers.
async fn export(
    app: &TestApp,
    browser: &Browser,
    csrf: &str,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let response = browser
        .http
        .post(format!("{}/settings/export", app.url))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

/// Every file of a zip, by name.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        files.insert(file.name().to_owned(), content);
    }
    files
}

fn attachment_bytes(signed: &kuvert_domain::delivery::SignedDelivery, index: usize) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(&signed.delivery.messages[0].attachments[index].body)
        .unwrap()
}

#[tokio::test]
async fn the_export_holds_every_message_with_its_attachments_and_a_receipt_that_verifies() {
    use kuvert_domain::delivery::BodyContentType;
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let plain = app
        .kommun_letter(&anna, "Beslut om bostadsbidrag")
        .pdf("beslut.pdf", "Beslut")
        .signed();
    let html = app
        .kommun_letter(&anna, "Kallelse / möte?")
        .pdf("kallelse.pdf", "Kallelse ett")
        .pdf("kallelse.pdf", "Kallelse två")
        .with(|d| {
            d.messages[0].body.content_type = BodyContentType::TextHtml;
            d.messages[0].body.body = "<p>Välkommen <strong>den 3 mars</strong>.</p>".to_owned();
        })
        .signed();
    let archived = app.kommun_letter(&anna, "Gammalt brev").signed();
    let mut receipts = Vec::new();
    for signed in [&plain, &html, &archived] {
        receipts.push(app.send_delivered(&tenant.token, signed).await);
    }
    let mail_token = app.mail_token(&anna);
    let page = app.messages(&mail_token, "").await;
    let old = page
        .messages
        .iter()
        .find(|m| m.subject == "Gammalt brev")
        .unwrap();
    let (status, _) = app
        .request(
            reqwest::Method::POST,
            &format!("/mailbox/v1/messages/{}/archive", old.id),
            Some(&mail_token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    // Bertil's mail must not be in Anna's export, nor hers in his.
    let bertil = app.person("Bertil Berg");
    app.send_delivered(&tenant.token, &app.kommun_signed(&bertil, "Till Bertil"))
        .await;

    let (browser, csrf) = logged_in(&app, "Anna").await;
    let (headers, bytes) = export(&app, &browser, &csrf).await;
    assert_eq!(headers["content-type"], "application/zip");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"kuvert-post-")
    );
    assert!(
        headers.get("content-length").is_none(),
        "streamed, so no length known up front"
    );
    assert!(bytes.starts_with(b"PK"));
    let files = unzip(&bytes);
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(files.len(), 1 + 3 * 2 + 3, "{names:?}");

    let folder = |subject: &str| -> String {
        let name = files
            .keys()
            .find(|k| k.contains(subject) && k.ends_with("kvitto.json"))
            .unwrap_or_else(|| panic!("{subject} in {names:?}"));
        name.trim_end_matches("kvitto.json").to_owned()
    };
    let plain_dir = folder("Beslut om bostadsbidrag");
    let html_dir = folder("Kallelse _ möte_");
    let old_dir = folder("Gammalt brev");
    assert!(plain_dir.starts_with("kuvert-post/0001_"), "{plain_dir}");

    let text = String::from_utf8(files[&format!("{plain_dir}meddelande.txt")].clone()).unwrap();
    assert!(text.contains("Ämne: Beslut om bostadsbidrag"), "{text}");
    assert!(text.contains(&plain.delivery.messages[0].body.body));
    assert_eq!(
        files[&format!("{plain_dir}bilagor/beslut.pdf")],
        attachment_bytes(&plain, 0)
    );
    let page = String::from_utf8(files[&format!("{html_dir}meddelande.html")].clone()).unwrap();
    assert!(
        page.contains(
            r#"<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;"#
        ) || page
            .contains(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'"#),
        "{page}"
    );
    assert!(page.contains("<strong>den 3 mars</strong>"), "{page}");
    assert!(page.contains("bilagor/kallelse%20%282%29.pdf"), "{page}");
    assert_eq!(
        files[&format!("{html_dir}bilagor/kallelse.pdf")],
        attachment_bytes(&html, 0)
    );
    assert_eq!(
        files[&format!("{html_dir}bilagor/kallelse (2).pdf")],
        attachment_bytes(&html, 1)
    );
    assert!(files.contains_key(&format!("{old_dir}meddelande.txt")));
    let index = String::from_utf8(files["kuvert-post/index.html"].clone()).unwrap();
    assert!(
        index.contains("Arkiv") && index.contains("Inkorg"),
        "{index}"
    );
    assert!(index.contains("3 meddelanden"));

    // Each receipt is the mailbox's signed one, and verifies against the
    // operator's published keys and the delivery the sender signed.
    let (_, keys) = app
        .get("/register/v1/operators/kuvert-brevlada/keys", None)
        .await;
    let keys: KeysDocument = serde_json::from_value(keys).unwrap();
    for (dir, signed, view) in [
        (&plain_dir, &plain, &receipts[0]),
        (&html_dir, &html, &receipts[1]),
        (&old_dir, &archived, &receipts[2]),
    ] {
        let receipt: Receipt =
            serde_json::from_slice(&files[&format!("{dir}kvitto.json")]).unwrap();
        assert_eq!(serde_json::to_value(&receipt).unwrap(), view["receipt"]);
        let checks = check_receipt(&receipt, &signed.delivery, &keys);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    }
    for (name, content) in &files {
        let shown = String::from_utf8_lossy(content);
        assert!(!shown.contains("Till Bertil"), "Bertil's mail in {name}");
    }
    // An export is not a reading; it is audited.
    assert_eq!(app.messages(&mail_token, "").await.unread, 2);
    assert_eq!(app.messages(&mail_token, "folder=archive").await.unread, 1);
    assert_eq!(
        app.query::<String>(
            "mailbox.db",
            "SELECT detail FROM audit_log WHERE action = 'mailbox.exported'",
        )
        .await,
        r#"{"messages":3}"#
    );

    // Bertil's export: his one message, none of Anna's.
    let (bertil_browser, bertil_csrf) = logged_in(&app, "Bertil").await;
    let (_, bytes) = export(&app, &bertil_browser, &bertil_csrf).await;
    let files = unzip(&bytes);
    assert_eq!(files.len(), 1 + 2, "{:?}", files.keys());
    for (name, content) in &files {
        let shown = String::from_utf8_lossy(content);
        for subject in ["Beslut om bostadsbidrag", "Kallelse", "Gammalt brev"] {
            assert!(!shown.contains(subject), "Anna's {subject} in {name}");
        }
    }
}

#[tokio::test]
async fn an_empty_mailbox_exports_an_index_only_in_english_too() {
    let app = TestApp::spawn().await;
    let (browser, csrf) = logged_in(&app, "Cecilia").await;
    let response = browser
        .http
        .post(format!("{}/settings/export?lang=en", app.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let files = unzip(&response.bytes().await.unwrap());
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        vec!["kuvert-post/index.html"]
    );
    let index = String::from_utf8(files["kuvert-post/index.html"].clone()).unwrap();
    assert!(index.contains(r#"<html lang="en">"#));
    assert!(index.contains("You have no messages."));
}

#[tokio::test]
async fn exports_beyond_the_nodes_limit_are_refused_until_one_ends_and_nothing_is_audited() {
    let app = TestApp::spawn().await;
    let (browser, csrf) = logged_in(&app, "Anna").await;
    let audited = || async {
        app.query::<i64>(
            "mailbox.db",
            "SELECT count(*) FROM audit_log WHERE action = 'mailbox.exported'",
        )
        .await
    };
    let held = kuvert_web::pages::export::hold_all_export_slots(app.app_state())
        .expect("every export slot is free");
    let busy = browser
        .post_form("/settings/export", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.body
    );
    assert!(
        busy.body.contains("<code>exports_busy</code>"),
        "{}",
        busy.body
    );
    assert!(busy.headers.contains_key("retry-after"));
    assert_eq!(audited().await, 0, "a refused export is not audited");
    drop(held);
    let done = browser
        .post_form("/settings/export", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(audited().await, 1);
}
