//! The web mailbox (issue 18): the inbox and message pages, through a
//! logged-in [`Browser`] against mail sent through the sender API. The
//! pages call the mailbox functions the recipient API calls, so what the
//! API says is what the pages are checked against.

use kuvert_domain::delivery::{BodyContentType, OfficialMatter};
use kuvert_testkit::TestApp;
use kuvert_testkit::oidc::{Browser, Seen};
use reqwest::StatusCode;
use std::collections::BTreeSet;

const BODY_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

/// A browser logged in as the demo person `given_name`, and their id.
async fn logged_in(app: &TestApp, given_name: &str) -> (Browser, String) {
    let people = app.dev_idp_people();
    let index = people
        .iter()
        .position(|p| p.given_name == given_name)
        .unwrap();
    let browser = app.browser();
    let seen = browser.login_dev_idp(index).await;
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "{}", seen.body);
    (browser, people[index].identity_number.clone())
}

/// Sends from the demo municipality, waits until delivered; returns the
/// mailbox's message id (from the recipient API).
async fn deliver(app: &TestApp, letter: kuvert_testkit::Letter<'_>, to: &str) -> String {
    let (tenant, _) = app.kommun();
    let signed = letter.signed();
    let subject = signed.delivery.messages[0].header.subject.clone();
    app.send_delivered(&tenant.token, &signed).await;
    message_id_of(app, to, &subject).await
}

async fn message_id_of(app: &TestApp, to: &str, subject: &str) -> String {
    let token = app.recipient_token(to);
    for folder in ["inbox", "archive"] {
        let page = app
            .messages(&token, &format!("folder={folder}&page_size=100"))
            .await;
        if let Some(m) = page.messages.iter().find(|m| m.subject == subject) {
            return m.id.clone();
        }
    }
    panic!("no message {subject:?} for {to}");
}

/// The message ids a list page links to, in order.
fn listed(page: &Seen) -> Vec<String> {
    let mut ids = Vec::new();
    for (at, _) in page.body.match_indices("class=\"message-link\" href=\"") {
        let rest = &page.body[at + "class=\"message-link\" href=\"".len()..];
        let href = &rest[..rest.find('"').unwrap()];
        let id = href
            .rsplit("/messages/")
            .next()
            .unwrap()
            .split(['?', '&'])
            .next()
            .unwrap();
        ids.push(id.to_owned());
    }
    ids
}

/// The page's "next page" link, unescaped.
fn next_link(page: &Seen) -> Option<String> {
    let at = page.body.find("\" rel=\"next\"")?;
    let start = page.body[..at].rfind("href=\"")? + "href=\"".len();
    Some(
        page.body[start..at]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

fn shows_code(page: &Seen, code: &str) -> bool {
    page.body.contains(&format!("<code>{code}</code>"))
}

#[tokio::test]
async fn the_inbox_lists_a_message_unread_and_opening_it_marks_it_read() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let id = deliver(&app, app.kommun_letter(&anna, "Beslut om bygglov"), &anna).await;

    let inbox = browser.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    assert_eq!(listed(&inbox), vec![id.clone()]);
    assert!(inbox.body.contains("Beslut om bygglov"));
    assert!(inbox.body.contains("<span class=\"badge\">Oläst</span>"));
    assert!(inbox.body.contains("<strong>1 oläst</strong>"));
    assert!(inbox.body.contains("Demo kommun"));
    // The start page links the inbox.
    assert!(browser.get("/").await.body.contains("href=\"/inbox\""));

    let message = browser.get(&format!("/messages/{id}")).await;
    assert_eq!(message.status, StatusCode::OK, "{}", message.body);
    assert!(message.body.contains("<h1>Beslut om bygglov</h1>"));
    assert!(
        message
            .body
            .contains("Levererat (rättslig leveranstidpunkt)")
    );
    assert!(message.body.contains("Brödtext för Beslut om bygglov"));
    // A plain body is on the page itself, escaped, in a block that keeps
    // its line breaks: no frame.
    assert!(message.body.contains("class=\"body-text\""));
    assert!(!message.body.contains("<iframe"));

    let inbox = browser.get("/inbox").await;
    assert!(!inbox.body.contains("class=\"badge\""), "{}", inbox.body);
    assert!(inbox.body.contains("<strong>0 olästa</strong>"));
    let api = app.inbox(&anna).await;
    assert!(api.messages[0].read, "the API sees it read too");

    // In English, on request.
    let english = browser.get(&format!("/messages/{id}?lang=en")).await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(
        english
            .body
            .contains("Delivered (legal moment of delivery)")
    );
}

#[tokio::test]
async fn cursor_paging_has_no_repeat_and_no_gap_while_mail_arrives() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let (tenant, _) = app.kommun();
    for n in 0..8 {
        app.send_ok(&anna, &format!("Brev {n}")).await;
    }
    app.drain().await;
    let token = app.recipient_token(&anna);
    let before = app.messages(&token, "page_size=100").await;
    assert_eq!(before.messages.len(), 8);
    // Two read, so the order has both parts (unread first).
    for m in &before.messages[2..4] {
        app.open_message(&token, &m.id).await;
    }
    let all: BTreeSet<String> = before.messages.iter().map(|m| m.id.clone()).collect();
    let read: BTreeSet<String> = before.messages[2..4].iter().map(|m| m.id.clone()).collect();

    let mut seen = Vec::new();
    let mut url = "/inbox?page_size=3".to_owned();
    let mut pages = 0;
    loop {
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(listed(&page));
        pages += 1;
        // New mail between every two pages: newest and unread, so before
        // every cursor.
        app.send_accepted(
            &tenant.token,
            &app.kommun_signed(&anna, &format!("Ny under bläddring {pages}")),
        )
        .await;
        app.drain().await;
        match next_link(&page) {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3, "8 messages, 3 a page");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no repeat: {seen:?}");
    assert_eq!(unique, all, "no gap, and nothing that arrived meanwhile");
    // Unread first: the two read ones are the last two.
    let tail: BTreeSet<String> = seen[6..].iter().cloned().collect();
    assert_eq!(tail, read);
    // The first page now starts with what arrived.
    let first = browser.get("/inbox?page_size=3").await;
    assert!(
        first.body.contains("Ny under bläddring 3"),
        "{}",
        first.body
    );
}

#[tokio::test]
async fn a_forged_or_malformed_cursor_is_a_400_page() {
    use base64::Engine as _;
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    for n in 0..3 {
        app.send_ok(&anna, &format!("Brev {n}")).await;
    }
    app.drain().await;
    let page = browser.get("/inbox?page_size=1").await;
    let good = next_link(&page).unwrap();
    assert_eq!(browser.get(&good).await.status, StatusCode::OK);
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let long = "A".repeat(5000);
    for cursor in [
        "garbage!!".to_owned(),
        encode("v1|1|2026-12-01T10:00:00.000000Z|not-a-uuid"),
        encode("v1|1|2026-12-01T10:00:00.000000Z' OR '1'='1|x"),
        encode("v9|0|2026-12-01T10:00:00.000000Z|0192b3c4-0000-7000-8000-000000000000"),
        long,
    ] {
        let seen = browser.get(&format!("/inbox?cursor={cursor}")).await;
        assert_eq!(
            seen.status,
            StatusCode::BAD_REQUEST,
            "{cursor}: {}",
            seen.body
        );
        assert!(shows_code(&seen, "invalid_cursor"), "{}", seen.body);
        assert!(seen.body.contains("<html lang=\"sv\">"));
    }
    for bad in [
        "/inbox?folder=trash",
        "/inbox?page_size=0",
        "/inbox?page_size=101",
        "/inbox?page_size=x",
    ] {
        assert_eq!(
            browser.get(bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_sender_filter_shows_one_senders_mail() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let kommun = deliver(&app, app.kommun_letter(&anna, "Från kommunen"), &anna).await;
    let other_tenant = app.tenant("demoformedlare");
    let other = &other_tenant.senders[0];
    app.send_delivered(
        &other_tenant.token,
        &app.letter(other, &anna, "Från myndigheten").signed(),
    )
    .await;
    let myndighet = message_id_of(&app, &anna, "Från myndigheten").await;

    let inbox = browser.get("/inbox").await;
    let (_, sender) = app.kommun();
    assert!(
        inbox.body.contains(&format!(
            "<option value=\"{}\">Demo kommun</option>",
            sender.id
        )),
        "{}",
        inbox.body
    );
    assert!(
        inbox
            .body
            .contains(&format!("<option value=\"{}\">", other.id))
    );
    assert_eq!(listed(&inbox).len(), 2);

    let only = browser.get(&format!("/inbox?sender={}", sender.id)).await;
    assert_eq!(listed(&only), vec![kommun]);
    assert!(
        only.body
            .contains(&format!("<option value=\"{}\" selected>", sender.id))
    );
    let only = browser.get(&format!("/inbox?sender={}", other.id)).await;
    assert_eq!(listed(&only), vec![myndighet]);
    let none = browser.get("/inbox?sender=212000000000").await;
    assert!(listed(&none).is_empty());
}

#[tokio::test]
async fn archive_and_back_and_a_missing_csrf_changes_nothing() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let id = deliver(&app, app.kommun_letter(&anna, "Att arkivera"), &anna).await;
    let inbox = browser.get("/inbox").await;
    let csrf = inbox.hidden_field("csrf").unwrap();
    let archive = format!("/messages/{id}/archive");

    let done = browser
        .post_form(
            &archive,
            &[("csrf", &csrf), ("archived", "1"), ("back", "inbox")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/inbox"));
    assert!(listed(&browser.get("/inbox").await).is_empty());
    assert_eq!(
        listed(&browser.get("/inbox?folder=archive").await),
        vec![id.clone()]
    );

    // No token, or a wrong one: refused, and it stays in the archive.
    for form in [
        vec![("archived", "0")],
        vec![("csrf", "not-the-token"), ("archived", "0")],
    ] {
        let refused = browser.post_form(&archive, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(shows_code(&refused, "csrf_invalid"));
    }
    assert_eq!(
        listed(&browser.get("/inbox?folder=archive").await),
        vec![id.clone()]
    );
    let api = app
        .messages(&app.recipient_token(&anna), "folder=archive")
        .await;
    assert_eq!(api.messages.len(), 1);

    let back = browser
        .post_form(
            &archive,
            &[("csrf", &csrf), ("archived", "0"), ("back", "archive")],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert_eq!(back.location.as_deref(), Some("/inbox?folder=archive"));
    assert_eq!(listed(&browser.get("/inbox").await), vec![id]);
    // A form value that is not one the page gives is refused.
    let odd = browser
        .post_form(&archive, &[("csrf", &csrf), ("archived", "maybe")])
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_persons_message_answers_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let (browser, _anna) = logged_in(&app, "Anna").await;
    let bertil = app.person("Bertil Berg");
    let theirs = deliver(
        &app,
        app.kommun_letter(&bertil, "Bertils brev")
            .pdf("bertil.pdf", "Bertil"),
        &bertil,
    )
    .await;
    let missing = "0192b3c4-5d6e-7f80-9a0b-1c2d3e4f5a6b";
    let csrf = browser.csrf().await.unwrap();
    for suffix in ["", "/body", "/attachments/0", "/attachments/x"] {
        let other = browser.get(&format!("/messages/{theirs}{suffix}")).await;
        let none = browser.get(&format!("/messages/{missing}{suffix}")).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{suffix}");
        assert_eq!(other.status, none.status, "{suffix}");
        assert_eq!(other.body, none.body, "{suffix}");
        assert!(!other.body.contains("Bertil"), "{suffix}");
    }
    let form = [("csrf", csrf.as_str()), ("archived", "1")];
    let other = browser
        .post_form(&format!("/messages/{theirs}/archive"), &form)
        .await;
    let none = browser
        .post_form(&format!("/messages/{missing}/archive"), &form)
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body, none.body);
    // Nothing changed for Bertil: still unread, still in the inbox.
    let page = app.inbox(&bertil).await;
    assert_eq!(page.messages.len(), 1);
    assert!(!page.messages[0].read);
}

#[tokio::test]
async fn without_a_session_every_mail_page_is_the_not_logged_in_page() {
    let app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let id = deliver(&app, app.kommun_letter(&anna, "Privat"), &anna).await;
    let browser = app.browser();
    for path in [
        "/inbox".to_owned(),
        format!("/messages/{id}"),
        format!("/messages/{id}/body"),
        format!("/messages/{id}/attachments/0"),
    ] {
        let seen = browser.get(&path).await;
        assert_eq!(seen.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(shows_code(&seen, "not_logged_in"), "{path}");
        assert!(!seen.body.contains("Privat"));
    }
    let seen = browser
        .post_form(&format!("/messages/{id}/archive"), &[("archived", "1")])
        .await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_attachment_downloads_with_the_apis_headers() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let id = deliver(
        &app,
        app.kommun_letter(&anna, "Med bilaga")
            .pdf("beslut.pdf", "Beslut"),
        &anna,
    )
    .await;
    let page = browser.get(&format!("/messages/{id}")).await;
    assert!(
        page.body
            .contains(&format!("href=\"/messages/{id}/attachments/0\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("beslut.pdf"));
    assert!(page.body.contains("application/pdf"));
    let response = browser
        .http
        .get(format!("{}/messages/{id}/attachments/0", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"beslut.pdf\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    assert_eq!(
        browser
            .get(&format!("/messages/{id}/attachments/1"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_html_body_is_served_apart_with_a_sandbox_policy() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let letter = app.kommun_letter(&anna, "HTML-brev").with(|d| {
        d.messages[0].body.content_type = BodyContentType::TextHtml;
        d.messages[0].body.body = "<p>Hej <b>Anna</b>,</p><p>ditt beslut.</p>".into();
    });
    let id = deliver(&app, letter, &anna).await;

    let page = browser.get(&format!("/messages/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    // The body is not on the page: only a sandboxed frame of it.
    assert!(!page.body.contains("<b>Anna</b>"));
    let frame =
        format!("<iframe class=\"body-frame\" sandbox src=\"/messages/{id}/body\" title=\"");
    assert!(page.body.contains(&frame), "{}", page.body);
    assert!(!page.body.contains("allow-scripts"));
    assert!(!page.body.contains("allow-same-origin"));

    let body = browser.get(&format!("/messages/{id}/body")).await;
    assert_eq!(body.status, StatusCode::OK);
    assert_eq!(body.headers["content-security-policy"], BODY_CSP);
    assert_eq!(body.headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(body.headers["x-content-type-options"], "nosniff");
    assert_eq!(body.headers["cache-control"], "no-store");
    assert!(body.body.contains("<p>Hej <b>Anna</b>,</p>"));

    // Every other page keeps the strict policy, unframeable.
    let inbox = browser.get("/inbox").await;
    assert!(
        inbox.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn messages_of_the_same_official_matter_are_linked() {
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let matter = |id: &'static str| {
        move |d: &mut kuvert_domain::delivery::SecureDelivery| {
            d.messages[0].header.official_matter = Some(OfficialMatter {
                id: id.into(),
                name: Some(format!("Bygglov {id}")),
            });
        }
    };
    let first = deliver(
        &app,
        app.kommun_letter(&anna, "Ansökan mottagen")
            .with(matter("BN-2026-17")),
        &anna,
    )
    .await;
    let second = deliver(
        &app,
        app.kommun_letter(&anna, "Beslut i ärendet")
            .with(matter("BN-2026-17")),
        &anna,
    )
    .await;
    let unrelated = deliver(
        &app,
        app.kommun_letter(&anna, "Annat ärende")
            .with(matter("BN-2026-99")),
        &anna,
    )
    .await;
    // The same matter id from another sender is another matter.
    let other_tenant = app.tenant("demoformedlare");
    let other = &other_tenant.senders[0];
    app.send_delivered(
        &other_tenant.token,
        &app.letter(other, &anna, "Annan avsändare")
            .with(matter("BN-2026-17"))
            .signed(),
    )
    .await;
    let foreign = message_id_of(&app, &anna, "Annan avsändare").await;

    let page = browser.get(&format!("/messages/{second}")).await;
    assert!(page.body.contains("Fler meddelanden i samma ärende"));
    assert!(page.body.contains("Bygglov BN-2026-17"));
    assert!(page.body.contains(&format!("href=\"/messages/{first}\"")));
    assert!(
        !page
            .body
            .contains(&format!("href=\"/messages/{unrelated}\""))
    );
    assert!(!page.body.contains(&format!("href=\"/messages/{foreign}\"")));
    let alone = browser.get(&format!("/messages/{unrelated}")).await;
    assert!(!alone.body.contains("Fler meddelanden i samma ärende"));
    // The blind index holds no matter id in the clear.
    let tags: Vec<Option<String>> = app
        .query_all("mailbox.db", "SELECT matter_tag FROM mailbox_messages")
        .await;
    assert!(tags.iter().flatten().all(|t| !t.contains("BN-2026")));
    assert_eq!(tags.iter().flatten().count(), 4);
}

#[tokio::test]
async fn a_delegated_view_that_does_not_resolve_is_not_found() {
    // Until a delegation exists (pages/delegation.rs), every delegated URL
    // answers as a page that is not there, for every route.
    let app = TestApp::spawn().await;
    let (browser, anna) = logged_in(&app, "Anna").await;
    let id = deliver(&app, app.kommun_letter(&anna, "Eget"), &anna).await;
    for path in [
        "/for/abc/inbox".to_owned(),
        format!("/for/abc/messages/{id}"),
        format!("/for/abc/messages/{id}/body"),
        format!("/for/abc/messages/{id}/attachments/0"),
    ] {
        let seen = browser.get(&path).await;
        assert_eq!(seen.status, StatusCode::NOT_FOUND, "{path}");
    }
}
