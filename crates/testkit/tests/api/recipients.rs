//! Recipients reach only their own messages, only with a valid token; and
//! the owner's archive, unarchive, delete and paging work as documented.
//!
//! Token coverage: no token, a token with a flipped MAC character, a token
//! minted with a key the installation does not know, an expired token minted
//! with the installation's real key (read from `<data>/keys/`), a token whose
//! payload was swapped to another recipient, and a sender credential.

use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_testkit::{TestApp, client};
use kuvert_web::auth::RecipientTokens;
use reqwest::StatusCode;
use serde_json::Value;

fn bertil(app: &TestApp) -> String {
    app.demo
        .recipients
        .iter()
        .find(|r| r.name == "Bertil Berg")
        .unwrap()
        .id
        .clone()
}

async fn request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, format!("{}{path}", app.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

/// Anna and Bertil each have one delivered message; Anna's has a PDF.
struct Two {
    app: TestApp,
    anna: String,
    bertil: String,
    anna_token: String,
    bertil_token: String,
    anna_message: String,
    bertil_message: String,
}

async fn two_recipients() -> Two {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let bertil = bertil(&app);
    assert_ne!(anna, bertil);

    let mut to_anna = app.delivery(sender, &anna, "Till Anna");
    to_anna.messages[0].attachments.push(client::attachment(
        "beslut.pdf",
        "application/pdf",
        &client::minimal_pdf("Annas beslut"),
    ));
    let (status, body) = app.send(&tenant.token, &app.sign(sender, to_anna)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let anna_delivery = body["delivery_id"].as_str().unwrap().to_owned();
    let bertil_delivery = app.send_ok(&bertil, "Till Bertil").await;
    for id in [&anna_delivery, &bertil_delivery] {
        assert_eq!(
            app.wait_final(&tenant.token, id).await["status"],
            "delivered"
        );
    }

    let anna_token = app.recipient_token(&anna);
    let bertil_token = app.recipient_token(&bertil);
    let only_message = |page: Value| {
        assert_eq!(page["total"], 1, "{page}");
        page["messages"][0]["id"].as_str().unwrap().to_owned()
    };
    let anna_message = only_message(app.get("/mailbox/v1/messages", Some(&anna_token)).await.1);
    let bertil_message = only_message(app.get("/mailbox/v1/messages", Some(&bertil_token)).await.1);
    Two {
        app,
        anna,
        bertil,
        anna_token,
        bertil_token,
        anna_message,
        bertil_message,
    }
}

impl Two {
    /// Anna's message is untouched: in her inbox, unread, not archived.
    async fn assert_annas_message_untouched(&self) {
        let (status, page) = self
            .app
            .get("/mailbox/v1/messages", Some(&self.anna_token))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 1, "{page}");
        assert_eq!(page["unread"], 1, "{page}");
        let message = &page["messages"][0];
        assert_eq!(message["id"], self.anna_message.as_str());
        assert_eq!(message["read"], false);
        assert_eq!(message["archived"], false);
        let (_, archive) = self
            .app
            .get(
                "/mailbox/v1/messages?folder=archive",
                Some(&self.anna_token),
            )
            .await;
        assert_eq!(archive["total"], 0, "{archive}");
    }

    /// The answer for a message id that does not exist, for the same request.
    async fn as_if_missing(&self, method: reqwest::Method, suffix: &str) -> (StatusCode, Value) {
        let path = format!("/mailbox/v1/messages/{}{suffix}", MailboxMessageId::new());
        request(&self.app, method, &path, Some(&self.bertil_token)).await
    }

    async fn bertil_tries(&self, method: reqwest::Method, suffix: &str) {
        let path = format!("/mailbox/v1/messages/{}{suffix}", self.anna_message);
        let (status, body) =
            request(&self.app, method.clone(), &path, Some(&self.bertil_token)).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            (status, body),
            self.as_if_missing(method, suffix).await,
            "indistinguishable from a missing id"
        );
    }

    async fn stop(mut self) {
        self.app.stop().await;
    }
}

// ---------------------------------------------------------------------------
// Another recipient's message

#[tokio::test]
async fn another_recipients_message_cannot_be_opened() {
    let two = two_recipients().await;
    two.bertil_tries(reqwest::Method::GET, "").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_attachment_cannot_be_downloaded() {
    let two = two_recipients().await;
    two.bertil_tries(reqwest::Method::GET, "/attachments/0")
        .await;
    // Anna herself can.
    let path = format!("/mailbox/v1/messages/{}/attachments/0", two.anna_message);
    let response = two
        .app
        .http
        .get(format!("{}{path}", two.app.url))
        .bearer_auth(&two.anna_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_archived() {
    let two = two_recipients().await;
    two.bertil_tries(reqwest::Method::POST, "/archive").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_unarchived() {
    let two = two_recipients().await;
    // Anna archives it; Bertil cannot move it back.
    let path = format!("/mailbox/v1/messages/{}/archive", two.anna_message);
    let (status, _) = request(
        &two.app,
        reqwest::Method::POST,
        &path,
        Some(&two.anna_token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    two.bertil_tries(reqwest::Method::DELETE, "/archive").await;
    let (_, archive) = two
        .app
        .get("/mailbox/v1/messages?folder=archive", Some(&two.anna_token))
        .await;
    assert_eq!(archive["total"], 1, "{archive}");
    assert_eq!(archive["messages"][0]["id"], two.anna_message.as_str());
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_deleted() {
    let two = two_recipients().await;
    two.bertil_tries(reqwest::Method::DELETE, "").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn a_recipients_listing_holds_only_their_own_messages() {
    let two = two_recipients().await;
    for folder in ["inbox", "archive"] {
        let (status, page) = two
            .app
            .get(
                &format!("/mailbox/v1/messages?folder={folder}"),
                Some(&two.bertil_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(
            !ids.contains(&two.anna_message.as_str()),
            "{folder}: {page}"
        );
        let expected: Vec<&str> = if folder == "inbox" {
            vec![two.bertil_message.as_str()]
        } else {
            vec![]
        };
        assert_eq!(ids, expected, "{folder}");
        assert_eq!(page["total"], expected.len(), "{page}");
    }
    two.stop().await;
}

#[tokio::test]
async fn after_every_attempt_by_another_recipient_the_message_is_untouched() {
    let two = two_recipients().await;
    for (method, suffix) in [
        (reqwest::Method::GET, ""),
        (reqwest::Method::GET, "/attachments/0"),
        (reqwest::Method::POST, "/archive"),
        (reqwest::Method::DELETE, "/archive"),
        (reqwest::Method::DELETE, ""),
    ] {
        two.bertil_tries(method, suffix).await;
    }
    two.assert_annas_message_untouched().await;
    // And it opens, whole, for Anna.
    let (status, opened) = two
        .app
        .get(
            &format!("/mailbox/v1/messages/{}", two.anna_message),
            Some(&two.anna_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["subject"], "Till Anna");
    assert_eq!(opened["attachments"][0]["filename"], "beslut.pdf");
    assert_eq!(two.anna, two.app.recipient("registered").id);
    assert_ne!(two.bertil, two.anna);
    two.stop().await;
}

// ---------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn the_mailbox_refuses_a_request_without_a_token() {
    let two = two_recipients().await;
    let (status, body) =
        request(&two.app, reqwest::Method::GET, "/mailbox/v1/messages", None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let path = format!("/mailbox/v1/messages/{}", two.anna_message);
    let (status, body) = request(&two.app, reqwest::Method::GET, &path, None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_token_with_a_flipped_mac_character() {
    let two = two_recipients().await;
    let (prefix_and_payload, mac) = two.anna_token.rsplit_once('.').unwrap();
    // Flip the MAC's first character (the last one carries padding bits).
    let first = mac.chars().next().unwrap();
    let flipped = if first == 'A' { 'B' } else { 'A' };
    let forged = format!("{prefix_and_payload}.{flipped}{}", &mac[1..]);
    assert_ne!(forged, two.anna_token);
    let (status, body) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&forged),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let path = format!("/mailbox/v1/messages/{}", two.anna_message);
    let (status, body) = request(&two.app, reqwest::Method::GET, &path, Some(&forged)).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_token_minted_with_another_key() {
    let two = two_recipients().await;
    let id = RecipientId::parse_canonical(&two.anna).unwrap();
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let forged = RecipientTokens::new([0u8; 32]).mint(&id, exp);
    let (status, body) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&forged),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.stop().await;
}

/// The installation's own token key, as the server loaded it.
fn installation_tokens(app: &TestApp) -> RecipientTokens {
    RecipientTokens::new(
        kuvert::keys::Keys::load_or_create(app.data_dir())
            .unwrap()
            .recipient_token,
    )
}

#[tokio::test]
async fn the_mailbox_refuses_an_expired_token_signed_with_the_right_key() {
    let two = two_recipients().await;
    let tokens = installation_tokens(&two.app);
    let id = RecipientId::parse_canonical(&two.anna).unwrap();
    // Control: the same key with a future expiry is accepted...
    let far_future = tokens.mint(&id, 4_102_444_800); // 2100-01-01
    let (status, page) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&far_future),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);
    // ...and one that expired long ago is not.
    let expired = tokens.mint(&id, 1);
    let (status, body) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&expired),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_token_whose_payload_names_another_recipient() {
    let two = two_recipients().await;
    // Bertil's payload with Anna's MAC: the MAC covers the payload.
    let (_, anna_mac) = two.anna_token.rsplit_once('.').unwrap();
    let (bertil_prefix_and_payload, _) = two.bertil_token.rsplit_once('.').unwrap();
    let spliced = format!("{bertil_prefix_and_payload}.{anna_mac}");
    let (status, body) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&spliced),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_sender_credential() {
    let two = two_recipients().await;
    let token = two.app.kommun().0.token.clone();
    let (status, body) = request(
        &two.app,
        reqwest::Method::GET,
        "/mailbox/v1/messages",
        Some(&token),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    two.stop().await;
}

// ---------------------------------------------------------------------------
// The owner's archive, unarchive, delete

async fn folder(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, page) = app
        .get(&format!("/mailbox/v1/messages?folder={name}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn archiving_moves_a_message_to_the_archive_and_unarchiving_moves_it_back() {
    let two = two_recipients().await;
    let (app, token, id) = (&two.app, &two.anna_token, &two.anna_message);
    let path = format!("/mailbox/v1/messages/{id}/archive");

    let (status, body) = request(app, reqwest::Method::POST, &path, Some(token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let inbox = folder(app, token, "inbox").await;
    let archive = folder(app, token, "archive").await;
    assert_eq!(
        (inbox["total"].clone(), ids(&inbox)),
        (0.into(), Vec::<String>::new())
    );
    assert_eq!(
        (archive["total"].clone(), ids(&archive)),
        (1.into(), vec![id.clone()])
    );
    assert_eq!(archive["messages"][0]["archived"], true);
    assert_eq!(archive["unread"], 1, "archiving does not mark read");

    let (status, body) = request(app, reqwest::Method::DELETE, &path, Some(token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let inbox = folder(app, token, "inbox").await;
    let archive = folder(app, token, "archive").await;
    assert_eq!(
        (inbox["total"].clone(), ids(&inbox)),
        (1.into(), vec![id.clone()])
    );
    assert_eq!(inbox["messages"][0]["archived"], false);
    assert_eq!(archive["total"], 0);
    two.stop().await;
}

#[tokio::test]
async fn deleting_a_message_removes_it_from_both_folders_and_a_second_delete_is_404() {
    let two = two_recipients().await;
    let (app, token, id) = (&two.app, &two.anna_token, &two.anna_message);
    // Archived first, so "removed from both" is meaningful.
    let (status, _) = request(
        app,
        reqwest::Method::POST,
        &format!("/mailbox/v1/messages/{id}/archive"),
        Some(token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let path = format!("/mailbox/v1/messages/{id}");
    let (status, body) = request(app, reqwest::Method::DELETE, &path, Some(token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for name in ["inbox", "archive"] {
        let page = folder(app, token, name).await;
        assert_eq!(page["total"], 0, "{name}: {page}");
        assert_eq!(page["unread"], 0, "{name}: {page}");
    }
    let (status, body) = request(app, reqwest::Method::GET, &path, Some(token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = request(
        app,
        reqwest::Method::GET,
        &format!("{path}/attachments/0"),
        Some(token),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = request(
        app,
        reqwest::Method::POST,
        &format!("{path}/archive"),
        Some(token),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = request(app, reqwest::Method::DELETE, &path, Some(token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Bertil's message is untouched.
    let bertil = folder(app, &two.bertil_token, "inbox").await;
    assert_eq!(ids(&bertil), vec![two.bertil_message.clone()]);
    two.stop().await;
}

// ---------------------------------------------------------------------------
// Paging

#[tokio::test]
async fn twenty_five_messages_page_as_ten_ten_five_newest_first_with_right_counts() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let mut deliveries = Vec::new();
    for i in 0..25 {
        deliveries.push(app.send_ok(&anna, &format!("Meddelande {i:02}")).await);
    }
    for id in &deliveries {
        assert_eq!(app.wait_final(&token, id).await["status"], "delivered");
    }
    let anna_token = app.recipient_token(&anna);

    let mut seen = Vec::new();
    for (page_number, expected_len) in [(1, 10), (2, 10), (3, 5)] {
        let (status, page) = app
            .get(
                &format!("/mailbox/v1/messages?page={page_number}&page_size=10"),
                Some(&anna_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 25, "{page}");
        assert_eq!(page["unread"], 25, "{page}");
        assert_eq!(page["page"], page_number);
        assert_eq!(page["page_size"], 10);
        let messages = page["messages"].as_array().unwrap();
        assert_eq!(messages.len(), expected_len, "page {page_number}");
        seen.extend(messages.iter().cloned());
    }
    let (_, beyond) = app
        .get(
            "/mailbox/v1/messages?page=4&page_size=10",
            Some(&anna_token),
        )
        .await;
    assert_eq!(beyond["messages"].as_array().unwrap().len(), 0, "{beyond}");
    assert_eq!(beyond["total"], 25);

    // Every message exactly once, newest first by delivered_at.
    let mut unique: Vec<&str> = seen.iter().map(|m| m["id"].as_str().unwrap()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 25);
    let times: Vec<&str> = seen
        .iter()
        .map(|m| m["delivered_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    // The delivered_at shown is the receipt's, delivery by delivery.
    let mut receipts = Vec::new();
    for id in &deliveries {
        let (_, view) = app.get(&format!("/v1/deliveries/{id}"), Some(&token)).await;
        receipts.push(view["delivered_at"].as_str().unwrap().to_owned());
    }
    receipts.sort();
    let mut shown: Vec<String> = times.iter().map(|t| (*t).to_owned()).collect();
    shown.sort();
    assert_eq!(shown, receipts);

    // Opening three (one on each page) lowers the unread count to 22 everywhere.
    for m in [&seen[0], &seen[12], &seen[24]] {
        let (status, _) = app
            .get(
                &format!("/mailbox/v1/messages/{}", m["id"].as_str().unwrap()),
                Some(&anna_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for page_number in 1..=3 {
        let (_, page) = app
            .get(
                &format!("/mailbox/v1/messages?page={page_number}&page_size=10"),
                Some(&anna_token),
            )
            .await;
        assert_eq!(page["unread"], 22, "{page}");
        assert_eq!(page["total"], 25, "{page}");
        let read = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["read"] == true)
            .count();
        assert_eq!(read, 1, "page {page_number}: {page}");
    }
    app.stop().await;
}
