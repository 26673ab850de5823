//! Recipients reach only their own messages, only with a valid token; and
//! the owner's archive, unarchive, delete and paging work as documented.
//!
//! Token coverage: no token, a token with a flipped MAC character, a token
//! minted with a key the installation does not know, an expired token minted
//! with the installation's real key (read from `<data>/keys/`), a token whose
//! payload was swapped to another recipient, and a sender credential.

use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::MailboxMessageId;
use kuvert_testkit::{MessagePage, TestApp, assert_problem};
use kuvert_web::auth::RecipientTokens;
use reqwest::{Method, StatusCode};
use serde_json::Value;

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
    let (tenant, _) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let bertil = app.person("Bertil Berg");
    assert_ne!(anna, bertil);

    let to_anna = app
        .kommun_letter(&anna, "Till Anna")
        .pdf("beslut.pdf", "Annas beslut")
        .signed();
    let anna_delivery = app.send_accepted(&tenant.token, &to_anna).await;
    let bertil_delivery = app.send_ok(&bertil, "Till Bertil").await;
    for id in [&anna_delivery, &bertil_delivery] {
        app.wait_delivered(&tenant.token, id).await;
    }

    let anna_token = app.recipient_token(&anna);
    let bertil_token = app.recipient_token(&bertil);
    let only_message = |page: MessagePage| {
        assert_eq!(page.total, 1, "{page:?}");
        page.messages[0].id.clone()
    };
    let anna_message = only_message(app.messages(&anna_token, "").await);
    let bertil_message = only_message(app.messages(&bertil_token, "").await);
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
        let page = self.app.messages(&self.anna_token, "").await;
        assert_eq!(page.total, 1, "{page:?}");
        assert_eq!(page.unread, 1, "{page:?}");
        let message = &page.messages[0];
        assert_eq!(message.id, self.anna_message);
        assert!(!message.read);
        assert!(!message.archived);
        let archive = self.app.messages(&self.anna_token, "folder=archive").await;
        assert_eq!(archive.total, 0, "{archive:?}");
    }

    /// The answer for a message id that does not exist, for the same request.
    async fn as_if_missing(&self, method: Method, suffix: &str) -> (StatusCode, Value) {
        let path = format!("/mailbox/v1/messages/{}{suffix}", MailboxMessageId::new());
        self.app
            .request(method, &path, Some(&self.bertil_token), None)
            .await
    }

    async fn bertil_tries(&self, method: Method, suffix: &str) {
        let path = format!("/mailbox/v1/messages/{}{suffix}", self.anna_message);
        let answer = self
            .app
            .request(method.clone(), &path, Some(&self.bertil_token), None)
            .await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            answer,
            self.as_if_missing(method, suffix).await,
            "indistinguishable from a missing id"
        );
    }

    /// The listing asked for with `token` is 401.
    async fn assert_listing_refused(&self, token: Option<&str>) {
        let answer = self.app.get("/mailbox/v1/messages", token).await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }

    /// Anna's message asked for with `token` is 401.
    async fn assert_message_refused(&self, token: Option<&str>) {
        let path = format!("/mailbox/v1/messages/{}", self.anna_message);
        let answer = self.app.get(&path, token).await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
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
    two.bertil_tries(Method::GET, "").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_attachment_cannot_be_downloaded() {
    let two = two_recipients().await;
    two.bertil_tries(Method::GET, "/attachments/0").await;
    // Anna herself can.
    let path = format!("/mailbox/v1/messages/{}/attachments/0", two.anna_message);
    let download = two
        .app
        .request_raw(Method::GET, &path, Some(&two.anna_token), None)
        .await;
    assert_eq!(download.status, StatusCode::OK);
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_archived() {
    let two = two_recipients().await;
    two.bertil_tries(Method::POST, "/archive").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_unarchived() {
    let two = two_recipients().await;
    // Anna archives it; Bertil cannot move it back.
    let path = format!("/mailbox/v1/messages/{}/archive", two.anna_message);
    let (status, _) = two
        .app
        .request(Method::POST, &path, Some(&two.anna_token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    two.bertil_tries(Method::DELETE, "/archive").await;
    let archive = two.app.messages(&two.anna_token, "folder=archive").await;
    assert_eq!(archive.total, 1, "{archive:?}");
    assert_eq!(archive.messages[0].id, two.anna_message);
    two.stop().await;
}

#[tokio::test]
async fn another_recipients_message_cannot_be_deleted() {
    let two = two_recipients().await;
    two.bertil_tries(Method::DELETE, "").await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn a_recipients_listing_holds_only_their_own_messages() {
    let two = two_recipients().await;
    for folder in ["inbox", "archive"] {
        let page = two
            .app
            .messages(&two.bertil_token, &format!("folder={folder}"))
            .await;
        let ids = page.ids();
        assert!(!ids.contains(&two.anna_message), "{folder}: {page:?}");
        let expected: Vec<String> = if folder == "inbox" {
            vec![two.bertil_message.clone()]
        } else {
            vec![]
        };
        assert_eq!(ids, expected, "{folder}");
        assert_eq!(page.total, expected.len() as i64, "{page:?}");
    }
    two.stop().await;
}

#[tokio::test]
async fn after_every_attempt_by_another_recipient_the_message_is_untouched() {
    let two = two_recipients().await;
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::GET, "/attachments/0"),
        (Method::POST, "/archive"),
        (Method::DELETE, "/archive"),
        (Method::DELETE, ""),
    ] {
        two.bertil_tries(method, suffix).await;
    }
    two.assert_annas_message_untouched().await;
    // And it opens, whole, for Anna.
    let (status, opened) = two
        .app
        .open_message(&two.anna_token, &two.anna_message)
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
    two.assert_listing_refused(None).await;
    two.assert_message_refused(None).await;
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
    two.assert_listing_refused(Some(&forged)).await;
    two.assert_message_refused(Some(&forged)).await;
    two.assert_annas_message_untouched().await;
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_token_minted_with_another_key() {
    let two = two_recipients().await;
    let id = RecipientId::parse_canonical(&two.anna).unwrap();
    let forged = kuvert_testkit::mint_mail_token(&RecipientTokens::new([0u8; 32]), &id).unwrap();
    two.assert_listing_refused(Some(&forged)).await;
    two.stop().await;
}

/// The installation's own token key, as the server loaded it.
fn installation_tokens(app: &TestApp) -> RecipientTokens {
    RecipientTokens::new(
        kuvert::keys::Keys::load_existing(app.data_dir())
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
    let valid = kuvert_testkit::mint_mail_token(&tokens, &id).unwrap();
    let page = two.app.messages(&valid, "").await;
    assert_eq!(page.total, 1);
    // ...and one that expired long ago is not.
    let expired = tokens.mint_unchecked_for_tests(
        &id,
        kuvert::app::BUILT_IN_OPERATOR,
        &[kuvert_web::auth::Scope::MailRead],
        0,
        1,
    );
    two.assert_listing_refused(Some(&expired)).await;
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_token_whose_payload_names_another_recipient() {
    let two = two_recipients().await;
    // Bertil's payload with Anna's MAC: the MAC covers the payload.
    let (_, anna_mac) = two.anna_token.rsplit_once('.').unwrap();
    let (bertil_prefix_and_payload, _) = two.bertil_token.rsplit_once('.').unwrap();
    let spliced = format!("{bertil_prefix_and_payload}.{anna_mac}");
    two.assert_listing_refused(Some(&spliced)).await;
    two.stop().await;
}

#[tokio::test]
async fn the_mailbox_refuses_a_sender_credential() {
    let two = two_recipients().await;
    let token = two.app.kommun().0.token.clone();
    two.assert_listing_refused(Some(&token)).await;
    two.stop().await;
}

// ---------------------------------------------------------------------------
// The owner's archive, unarchive, delete

#[tokio::test]
async fn archiving_moves_a_message_to_the_archive_and_unarchiving_moves_it_back() {
    let two = two_recipients().await;
    let (app, token, id) = (&two.app, &two.anna_token, &two.anna_message);
    let path = format!("/mailbox/v1/messages/{id}/archive");

    let (status, body) = app.request(Method::POST, &path, Some(token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let inbox = app.messages(token, "folder=inbox").await;
    let archive = app.messages(token, "folder=archive").await;
    assert_eq!((inbox.total, inbox.ids()), (0, Vec::<String>::new()));
    assert_eq!((archive.total, archive.ids()), (1, vec![id.clone()]));
    assert!(archive.messages[0].archived);
    assert_eq!(archive.unread, 1, "archiving does not mark read");

    let (status, body) = app.delete(&path, Some(token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let inbox = app.messages(token, "folder=inbox").await;
    let archive = app.messages(token, "folder=archive").await;
    assert_eq!((inbox.total, inbox.ids()), (1, vec![id.clone()]));
    assert!(!inbox.messages[0].archived);
    assert_eq!(archive.total, 0);
    two.stop().await;
}

#[tokio::test]
async fn deleting_a_message_removes_it_from_both_folders_and_a_second_delete_is_404() {
    let two = two_recipients().await;
    let (app, token, id) = (&two.app, &two.anna_token, &two.anna_message);
    // Archived first, so "removed from both" is meaningful.
    let archive = format!("/mailbox/v1/messages/{id}/archive");
    let (status, _) = app.request(Method::POST, &archive, Some(token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let path = format!("/mailbox/v1/messages/{id}");
    let (status, body) = app.delete(&path, Some(token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for name in ["inbox", "archive"] {
        let page = app.messages(token, &format!("folder={name}")).await;
        assert_eq!(page.total, 0, "{name}: {page:?}");
        assert_eq!(page.unread, 0, "{name}: {page:?}");
    }
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::GET, format!("{path}/attachments/0")),
        (Method::POST, format!("{path}/archive")),
        (Method::DELETE, path.clone()),
    ] {
        let answer = app.request(method, &path, Some(token), None).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    }

    // Bertil's message is untouched.
    let bertil = app.messages(&two.bertil_token, "folder=inbox").await;
    assert_eq!(bertil.ids(), vec![two.bertil_message.clone()]);
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
        app.wait_delivered(&token, id).await;
    }
    let anna_token = app.recipient_token(&anna);
    let page_of_ten = |n: i64| format!("page={n}&page_size=10");

    let mut seen = Vec::new();
    for (page_number, expected_len) in [(1, 10), (2, 10), (3, 5)] {
        let page = app.messages(&anna_token, &page_of_ten(page_number)).await;
        assert_eq!(page.total, 25, "{page:?}");
        assert_eq!(page.unread, 25, "{page:?}");
        assert_eq!(page.page, page_number);
        assert_eq!(page.page_size, 10);
        assert_eq!(page.messages.len(), expected_len, "page {page_number}");
        seen.extend(page.messages);
    }
    let beyond = app.messages(&anna_token, &page_of_ten(4)).await;
    assert_eq!(beyond.messages.len(), 0, "{beyond:?}");
    assert_eq!(beyond.total, 25);

    // Every message exactly once, newest first by delivered_at.
    let mut unique: Vec<&str> = seen.iter().map(|m| m.id.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 25);
    let times: Vec<&str> = seen.iter().map(|m| m.delivered_at.as_str()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    // The delivered_at shown is the receipt's, delivery by delivery.
    let mut receipts = Vec::new();
    for id in &deliveries {
        let (_, view) = app.delivery_view(&token, id).await;
        receipts.push(view["delivered_at"].as_str().unwrap().to_owned());
    }
    receipts.sort();
    let mut shown: Vec<String> = times.iter().map(|t| (*t).to_owned()).collect();
    shown.sort();
    assert_eq!(shown, receipts);

    // Opening three (one on each page) lowers the unread count to 22 everywhere.
    for m in [&seen[0], &seen[12], &seen[24]] {
        let (status, _) = app.open_message(&anna_token, &m.id).await;
        assert_eq!(status, StatusCode::OK);
    }
    for page_number in 1..=3 {
        let page = app.messages(&anna_token, &page_of_ten(page_number)).await;
        assert_eq!(page.unread, 22, "{page:?}");
        assert_eq!(page.total, 25, "{page:?}");
        let read = page.messages.iter().filter(|m| m.read).count();
        assert_eq!(read, 1, "page {page_number}: {page:?}");
    }
    app.stop().await;
}

/// A page number near `i64::MAX` overflowed the offset (a panic in debug
/// builds): now it is a page past the end, empty, with the true totals.
#[tokio::test]
async fn a_huge_page_number_is_an_empty_page_not_an_overflow() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    app.send_ok(&anna, "Något att räkna").await;
    app.drain().await;
    let token = app.recipient_token(&anna);
    let page = app
        .messages(&token, &format!("page={}&page_size=100", i64::MAX))
        .await;
    assert!(page.messages.is_empty(), "{page:?}");
    assert_eq!(page.total, 1, "{page:?}");
}

/// A recipient token for an organisation cannot register its mailbox: the
/// organisation's signatories do that (issue 17; before, it was registered
/// at once, not even `pending`).
#[tokio::test]
async fn an_organisation_cannot_be_registered_with_a_recipient_token() {
    let app = TestApp::spawn().await;
    let organisation = format!("16{}", kuvert::demo::organisation_number("802002999"));
    let token = app.registration_token(&organisation);
    let answer = app
        .put(
            "/register/v1/me",
            Some(&token),
            &serde_json::json!({ "operator_id": "kuvert-brevlada" }),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::FORBIDDEN,
        "organisation_needs_signatories",
    );
    let stored: i64 = app
        .query(
            "kuvert.db",
            &format!("SELECT COUNT(*) FROM recipients WHERE id = '{organisation}' AND status = 'registered'"),
        )
        .await;
    assert_eq!(stored, 0, "not registered");
}
