//! Delegation (issue 18, decision 0019): Anna gives Bertil the right to read
//! her mail; his view of it resolves only while the delegation is active,
//! looked up on every request (revocation and an ended date apply to his
//! very next one); every refusal stores nothing; the owner sees each read.
//! Logged in through the development provider as the demo people.

use kuvert_domain::ids::MailboxMessageId;
use kuvert_testkit::TestApp;
use kuvert_testkit::oidc::{Browser, Seen};
use kuvert_web::pages::PageError;
use kuvert_web::pages::access::MailboxAccess;
use kuvert_web::pages::delegation::{record_read, resolve};
use reqwest::StatusCode;

const ANNA: &str = "198001012387";
const BERTIL: &str = "197505053178";

fn person_index(app: &TestApp, given_name: &str) -> usize {
    app.dev_idp_people()
        .iter()
        .position(|p| p.given_name == given_name)
        .expect("a test person")
}

/// A logged-in browser and its session cookie.
async fn login(app: &TestApp, given_name: &str) -> (Browser, String) {
    let browser = app.browser();
    let done = browser.login_dev_idp(person_index(app, given_name)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let cookie = done.cookie("kuvert_session").expect("a session");
    (browser, cookie)
}

async fn csrf(browser: &Browser) -> String {
    let page = browser.get("/delegations").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.hidden_field("csrf").expect("the form's CSRF field")
}

async fn grant(browser: &Browser, delegate: &str, rights: &str, until: &str) -> Seen {
    let csrf = csrf(browser).await;
    browser
        .post_form(
            "/delegations",
            &[
                ("csrf", &csrf),
                ("delegate", delegate),
                ("rights", rights),
                ("until", until),
            ],
        )
        .await
}

/// Grants and returns the new delegation's id (the newest row).
async fn granted(
    app: &TestApp,
    browser: &Browser,
    delegate: &str,
    rights: &str,
    until: &str,
) -> String {
    let seen = grant(browser, delegate, rights, until).await;
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "{}", seen.body);
    assert_eq!(seen.location.as_deref(), Some("/delegations?done=granted"));
    app.query(
        "mailbox.db",
        "SELECT id FROM delegations ORDER BY created_at DESC, rowid DESC LIMIT 1",
    )
    .await
}

async fn revoke(browser: &Browser, id: &str) -> Seen {
    let csrf = csrf(browser).await;
    browser
        .post_form(&format!("/delegations/{id}/revoke"), &[("csrf", &csrf)])
        .await
}

/// The session behind a cookie, as the pages' extractor finds it.
async fn session(app: &TestApp, cookie: &str) -> kuvert_web::session::WebSession {
    let (parts, ()) = axum::http::Request::builder()
        .uri("/")
        .header("cookie", format!("kuvert_session={cookie}"))
        .body(())
        .unwrap()
        .into_parts();
    kuvert_web::session::current_session(&parts, app.app_state())
        .await
        .unwrap()
        .expect("a live session")
}

async fn resolved(app: &TestApp, cookie: &str, id: &str) -> Result<MailboxAccess, PageError> {
    resolve(app.app_state(), session(app, cookie).await, id).await
}

fn assert_not_found(seen: &Seen) {
    assert_eq!(seen.status, StatusCode::NOT_FOUND, "{}", seen.body);
    assert!(
        seen.body.contains("<code>not_found</code>"),
        "{}",
        seen.body
    );
}

/// A refused form: its status, and its code on the page.
fn assert_refused(seen: &Seen, status: StatusCode, code: &str) {
    assert_eq!(seen.status, status, "{code}: {}", seen.body);
    assert!(
        seen.body.contains(&format!("<code>{code}</code>")),
        "expected {code}: {}",
        seen.body
    );
}

async fn counts(app: &TestApp) -> (i64, i64) {
    (
        app.query("mailbox.db", "SELECT count(*) FROM delegations")
            .await,
        app.query(
            "mailbox.db",
            "SELECT count(*) FROM audit_log WHERE action LIKE 'delegation.%'",
        )
        .await,
    )
}

/// The owner's page from "Vem har läst min post" to the next section.
fn reads_section(body: &str) -> &str {
    let start = body
        .find("Vem har läst min post")
        .expect("the reads section");
    let end = body[start..]
        .find("Post du kan läsa åt andra")
        .map_or(body.len(), |i| start + i);
    &body[start..end]
}

/// A valid personal identity number of an adult, by serial.
fn adult(serial: u16) -> String {
    let nine = format!("700101{serial:03}");
    let sum: u32 = nine
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let v = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    format!("19{nine}{}", (10 - sum % 10) % 10)
}

#[tokio::test]
async fn a_delegate_reads_in_a_separate_view_until_the_very_next_request_after_revocation() {
    let app = TestApp::spawn().await;
    let (anna, _) = login(&app, "Anna").await;
    let (bertil, bertil_cookie) = login(&app, "Bertil").await;
    let id = granted(&app, &anna, "19750505-3178", "read", "").await;
    assert_eq!(id.len(), 22, "128 random bits, base64url: {id}");
    let stored: (String, String) = (
        app.query("mailbox.db", "SELECT owner_id FROM delegations")
            .await,
        app.query("mailbox.db", "SELECT delegate_id FROM delegations")
            .await,
    );
    assert_eq!(stored, (ANNA.to_owned(), BERTIL.to_owned()));

    // Anna sees whom she gave the right (masked: she typed the number).
    let page = anna.get("/delegations").await;
    assert!(page.body.contains("19750505-****"), "{}", page.body);
    assert!(page.body.contains(&format!("/delegations/{id}/revoke")));
    assert!(!page.body.contains(BERTIL), "never the whole number");

    // Bertil sees it among the mail he can read for others, and his view.
    let list = bertil.get("/delegations").await;
    assert!(list.body.contains("Post du kan läsa åt andra"));
    assert!(
        list.body.contains(&format!("href=\"/for/{id}/inbox\"")),
        "{}",
        list.body
    );
    assert!(list.body.contains("Post till Anna Andersson"));
    let view = bertil.get(&format!("/for/{id}")).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert!(view.body.contains("Post till Anna Andersson"));
    let english = bertil.get(&format!("/for/{id}?lang=en")).await;
    assert!(english.body.contains("Mail to Anna Andersson"));
    // Back to Swedish (the choice is kept in a cookie).
    bertil.get("/?lang=sv").await;

    // The interface the mailbox pages use: Anna's mailbox, read only.
    let access = resolved(&app, &bertil_cookie, &id).await.unwrap();
    assert_eq!(access.owner.as_str(), ANNA);
    assert_eq!(access.session.person.as_str(), BERTIL);
    assert!(!access.may_manage(), "a read-only delegation");
    assert_eq!(access.prefix(), format!("/for/{id}"));
    let delegated = access.delegated.as_ref().unwrap();
    assert_eq!(delegated.owner_name, "Anna Andersson");
    // Now Anna knows his name too.
    assert!(
        anna.get("/delegations")
            .await
            .body
            .contains("Bertil Berg (19750505-****)")
    );

    // Anna revokes: Bertil's very next request is refused, exactly as a
    // delegation that never existed is.
    let revoked = revoke(&anna, &id).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert_eq!(
        revoked.location.as_deref(),
        Some("/delegations?done=revoked")
    );
    let after = bertil.get(&format!("/for/{id}")).await;
    assert_not_found(&after);
    let never = bertil.get("/for/AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((after.status, &after.body), (never.status, &never.body));
    assert!(matches!(
        resolved(&app, &bertil_cookie, &id).await,
        Err(PageError::NotFound)
    ));
    assert!(
        !bertil
            .get("/delegations")
            .await
            .body
            .contains("Post till Anna")
    );
    assert!(
        !anna
            .get("/delegations")
            .await
            .body
            .contains(&format!("/delegations/{id}/revoke"))
    );
    // Revoking again: gone, like any missing page.
    assert_not_found(&revoke(&anna, &id).await);

    // Both changes are in the mailbox's audit log under the delegation id,
    // without any identity number.
    let actions: Vec<String> = app
        .query_all(
            "mailbox.db",
            &format!("SELECT action FROM audit_log WHERE subject = '{id}' ORDER BY seq"),
        )
        .await;
    assert_eq!(actions, ["delegation.granted", "delegation.revoked"]);
    let texts: Vec<String> = app
        .query_all(
            "mailbox.db",
            "SELECT actor || subject || detail FROM audit_log",
        )
        .await;
    assert!(
        texts
            .iter()
            .all(|t| !t.contains(ANNA) && !t.contains(BERTIL))
    );
}

#[tokio::test]
async fn read_and_manage_lets_the_delegate_manage_and_nobody_else_resolves_it() {
    let app = TestApp::spawn().await;
    let (anna, anna_cookie) = login(&app, "Anna").await;
    let (_bertil, bertil_cookie) = login(&app, "Bertil").await;
    let (cecilia, cecilia_cookie) = login(&app, "Cecilia").await;
    let id = granted(&app, &anna, BERTIL, "manage", "").await;
    assert!(
        resolved(&app, &bertil_cookie, &id)
            .await
            .unwrap()
            .may_manage()
    );
    // Not to Cecilia, and not to Anna herself through the delegate's path.
    for cookie in [&cecilia_cookie, &anna_cookie] {
        assert!(matches!(
            resolved(&app, cookie, &id).await,
            Err(PageError::NotFound)
        ));
    }
    assert_not_found(&cecilia.get(&format!("/for/{id}")).await);
    for junk in ["", "x", "../../etc", &"A".repeat(200)] {
        assert!(matches!(
            resolved(&app, &bertil_cookie, junk).await,
            Err(PageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn another_person_cannot_revoke_a_delegation_and_is_told_it_does_not_exist() {
    let app = TestApp::spawn().await;
    let (anna, _) = login(&app, "Anna").await;
    let (bertil, _) = login(&app, "Bertil").await;
    let (cecilia, _) = login(&app, "Cecilia").await;
    let id = granted(&app, &anna, BERTIL, "read", "").await;
    let before = counts(&app).await;
    // Cecilia (a stranger) and Bertil (the delegate) both get the page a
    // delegation id that never existed gets.
    let unknown = revoke(&cecilia, "AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_not_found(&unknown);
    for who in [&cecilia, &bertil] {
        let seen = revoke(who, &id).await;
        assert_not_found(&seen);
        assert_eq!(seen.body, unknown.body, "the same answer as a missing one");
    }
    assert_eq!(counts(&app).await, before, "nothing changed");
    assert_eq!(
        bertil.get(&format!("/for/{id}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_right_ends_at_the_end_of_its_last_day_in_swedish_time() {
    // 1 June 2026, 10:00 UTC (12:00 in Stockholm, summer time).
    let start = time::macros::datetime!(2026-06-01 10:00 UTC);
    let app = TestApp::spawn_with_clock(start, |_| {}).await;
    let (anna, _) = login(&app, "Anna").await;
    let id = granted(&app, &anna, BERTIL, "read", "2026-06-01").await;
    let ends: String = app
        .query("mailbox.db", "SELECT ends_at FROM delegations")
        .await;
    assert_eq!(ends, "2026-06-01T22:00:00.000000Z", "midnight CEST");
    let (bertil, _) = login(&app, "Bertil").await;
    assert!(
        bertil
            .get("/delegations")
            .await
            .body
            .contains("Till och med 2026-06-01")
    );

    // 23:59:59 Swedish time: still valid (new logins: sessions idle out
    // after 30 minutes).
    app.advance(time::Duration::hours(12) - time::Duration::seconds(1));
    let (anna, _) = login(&app, "Anna").await;
    let (bertil, _) = login(&app, "Bertil").await;
    assert_eq!(
        bertil.get(&format!("/for/{id}")).await.status,
        StatusCode::OK
    );
    // Midnight: gone, at the next request, and from both lists.
    app.advance(time::Duration::seconds(1));
    assert_not_found(&bertil.get(&format!("/for/{id}")).await);
    assert!(
        !bertil
            .get("/delegations")
            .await
            .body
            .contains("Post till Anna")
    );
    assert!(
        !anna
            .get("/delegations")
            .await
            .body
            .contains("19750505-****")
    );
    // Ended, it no longer counts: Anna can give Bertil a new right.
    granted(&app, &anna, BERTIL, "read", "").await;
}

#[tokio::test]
async fn every_invalid_grant_is_refused_with_its_reason_and_stores_nothing() {
    let start = time::macros::datetime!(2026-06-01 10:00 UTC);
    let app = TestApp::spawn_with_clock(start, |_| {}).await;
    let (anna, _) = login(&app, "Anna").await;
    let nothing = counts(&app).await;
    let cases = [
        (
            "19750505-3179",
            "read",
            "",
            StatusCode::BAD_REQUEST,
            "delegate_invalid",
        ),
        ("", "read", "", StatusCode::BAD_REQUEST, "delegate_invalid"),
        (
            "802000-9990",
            "read",
            "",
            StatusCode::BAD_REQUEST,
            "delegate_invalid",
        ),
        (
            "<script>",
            "read",
            "",
            StatusCode::BAD_REQUEST,
            "delegate_invalid",
        ),
        (ANNA, "read", "", StatusCode::BAD_REQUEST, "delegate_self"),
        (
            "19800101-2387",
            "read",
            "",
            StatusCode::BAD_REQUEST,
            "delegate_self",
        ),
        (
            "20100615-6440",
            "read",
            "",
            StatusCode::BAD_REQUEST,
            "delegate_too_young",
        ),
        (
            BERTIL,
            "admin",
            "",
            StatusCode::BAD_REQUEST,
            "rights_invalid",
        ),
        (
            BERTIL,
            "read",
            "2026-05-31",
            StatusCode::BAD_REQUEST,
            "until_past",
        ),
        (
            BERTIL,
            "read",
            "1 juni",
            StatusCode::BAD_REQUEST,
            "until_invalid",
        ),
        (
            BERTIL,
            "read",
            "2026-02-30",
            StatusCode::BAD_REQUEST,
            "until_invalid",
        ),
        (
            BERTIL,
            "read",
            "2040-01-01",
            StatusCode::BAD_REQUEST,
            "until_too_far",
        ),
    ];
    for (delegate, rights, until, status, code) in cases {
        let seen = grant(&anna, delegate, rights, until).await;
        assert_refused(&seen, status, code);
        assert_eq!(counts(&app).await, nothing, "{code}: nothing stored");
    }
    // The English page says it in English.
    let csrf = csrf(&anna).await;
    let english = anna
        .post_form(
            "/delegations?lang=en",
            &[("csrf", &csrf), ("delegate", ANNA), ("rights", "read")],
        )
        .await;
    assert!(
        english.body.contains("You cannot give yourself"),
        "{}",
        english.body
    );
    anna.get("/?lang=sv").await;

    // Twice to the same person: the second is refused.
    granted(&app, &anna, BERTIL, "read", "").await;
    let again = grant(&anna, BERTIL, "manage", "").await;
    assert_refused(&again, StatusCode::CONFLICT, "delegate_exists");

    // Up to the limit, then refused, with nothing more stored.
    let limit = kuvert_mailbox::delegation::MAX_ACTIVE_DELEGATIONS;
    for serial in 1..limit {
        granted(
            &app,
            &anna,
            &adult(100 + u16::try_from(serial).unwrap()),
            "read",
            "",
        )
        .await;
    }
    let full = counts(&app).await;
    assert_eq!(full.0, limit);
    let page = anna.get("/delegations").await;
    assert!(
        !page.body.contains("name=\"delegate\""),
        "no form when full"
    );
    let over = grant(&anna, &adult(999), "read", "").await;
    assert_refused(&over, StatusCode::CONFLICT, "delegations_full");
    assert_eq!(counts(&app).await, full);
    // A revocation makes room again.
    let oldest: String = app
        .query(
            "mailbox.db",
            "SELECT id FROM delegations ORDER BY created_at LIMIT 1",
        )
        .await;
    assert_eq!(revoke(&anna, &oldest).await.status, StatusCode::SEE_OTHER);
    granted(&app, &anna, &adult(999), "read", "").await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    let (anna, _) = login(&app, "Anna").await;
    let (bertil, _) = login(&app, "Bertil").await;
    let nothing = counts(&app).await;
    for csrf in [None, Some("wrong")] {
        let mut form = vec![("delegate", BERTIL), ("rights", "read")];
        if let Some(token) = csrf {
            form.push(("csrf", token));
        }
        let seen = anna.post_form("/delegations", &form).await;
        assert_refused(&seen, StatusCode::FORBIDDEN, "csrf_invalid");
        assert_eq!(counts(&app).await, nothing);
    }
    let id = granted(&app, &anna, BERTIL, "read", "").await;
    let granted_counts = counts(&app).await;
    let seen = anna
        .post_form(&format!("/delegations/{id}/revoke"), &[])
        .await;
    assert_refused(&seen, StatusCode::FORBIDDEN, "csrf_invalid");
    // Bertil's own token is not Anna's.
    let bertils = csrf(&bertil).await;
    let seen = anna
        .post_form(&format!("/delegations/{id}/revoke"), &[("csrf", &bertils)])
        .await;
    assert_refused(&seen, StatusCode::FORBIDDEN, "csrf_invalid");
    assert_eq!(counts(&app).await, granted_counts);
    assert_eq!(
        bertil.get(&format!("/for/{id}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_owner_sees_every_read_by_a_delegate_newest_first() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let delivery = app.send_ok(ANNA, "Beslut om bygglov").await;
    app.wait_delivered(&tenant.token, &delivery).await;
    let message = app.inbox(ANNA).await.messages[0].id.clone();
    let message_id = MailboxMessageId::parse(&message).unwrap();

    let (anna, anna_cookie) = login(&app, "Anna").await;
    let (_bertil, bertil_cookie) = login(&app, "Bertil").await;
    let empty = anna.get("/delegations").await;
    assert!(empty.body.contains("Ingen annan har läst din post."));
    let id = granted(&app, &anna, BERTIL, "read", "").await;

    let access = resolved(&app, &bertil_cookie, &id).await.unwrap();
    record_read(app.app_state(), &access, &message_id, "message")
        .await
        .unwrap();
    record_read(app.app_state(), &access, &message_id, "attachment")
        .await
        .unwrap();
    // Anna's own reads are hers, not a delegate's: not listed.
    let own = MailboxAccess::own(session(&app, &anna_cookie).await);
    record_read(app.app_state(), &own, &message_id, "message")
        .await
        .unwrap();

    let page = anna.get("/delegations").await;
    assert!(page.body.contains("Vem har läst min post"));
    let attachment = page.body.find("Hämtade en bilaga").expect("the download");
    let opened = page.body.find("Öppnade ett meddelande").expect("the read");
    assert!(attachment < opened, "newest first");
    assert_eq!(
        reads_section(&page.body)
            .matches("Bertil Berg (19750505-****)")
            .count(),
        2
    );
    assert!(page.body.contains(&format!("href=\"/messages/{message}\"")));
    assert!(!page.body.contains(BERTIL));
    let english = anna.get("/delegations?lang=en").await;
    assert!(english.body.contains("Who has read my mail"));
    assert!(english.body.contains("Opened a message"));
    anna.get("/?lang=sv").await;

    // In the mailbox's audit log, as the delegate, under the delegation.
    let reads: Vec<String> = app
        .query_all(
            "mailbox.db",
            "SELECT actor || ' ' || subject || ' ' || detail FROM audit_log
             WHERE action = 'delegation.read' ORDER BY seq",
        )
        .await;
    assert_eq!(
        reads,
        [
            format!("delegate {id} {{\"message\":\"{message}\",\"what\":\"message\"}}"),
            format!("delegate {id} {{\"message\":\"{message}\",\"what\":\"attachment\"}}"),
        ]
    );
    // The entries are links of the mailbox's chain like any other.
    let key = app.audit_public_key();
    let report = app
        .mailbox_db()
        .verify_audit(kuvert_store::audit::AuditKeys {
            checkpoint: std::slice::from_ref(&key),
            witness: None,
        })
        .await
        .unwrap();
    assert_eq!(report.problem, None);
    // Revoked, the reads stay listed: the owner can still see who read.
    assert_eq!(revoke(&anna, &id).await.status, StatusCode::SEE_OTHER);
    let page = anna.get("/delegations").await;
    assert_eq!(
        reads_section(&page.body)
            .matches("Bertil Berg (19750505-****)")
            .count(),
        2
    );
    // Bertil's own page lists no reads of his mail.
    let (bertil, _) = login(&app, "Bertil").await;
    assert!(
        bertil
            .get("/delegations")
            .await
            .body
            .contains("Ingen annan har läst din post.")
    );
}

#[tokio::test]
async fn grants_at_once_cannot_pass_the_limit_together() {
    let app = TestApp::spawn().await;
    let (anna, _) = login(&app, "Anna").await;
    let limit = kuvert_mailbox::delegation::MAX_ACTIVE_DELEGATIONS;
    for serial in 0..limit - 2 {
        granted(
            &app,
            &anna,
            &adult(200 + u16::try_from(serial).unwrap()),
            "read",
            "",
        )
        .await;
    }
    // Four more at once, with two places left: two are given, two refused.
    let csrf = csrf(&anna).await;
    let numbers: Vec<String> = (0..4).map(|i| adult(300 + i)).collect();
    let posts = numbers.iter().map(|number| {
        let form = [
            ("csrf", csrf.as_str()),
            ("delegate", number.as_str()),
            ("rights", "read"),
        ];
        let request = anna
            .http
            .post(format!("{}/delegations", anna.base))
            .form(&form);
        tokio::spawn(async move { request.send().await.unwrap().status() })
    });
    let mut statuses = Vec::new();
    for post in posts.collect::<Vec<_>>() {
        statuses.push(post.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::SEE_OTHER,
            StatusCode::SEE_OTHER,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT
        ]
    );
    assert_eq!(counts(&app).await.0, limit);
}

/// Through the mailbox pages: every way a delegate reads (the page, the
/// body alone, an attachment) and manages (archive) is in the owner's list,
/// and none marks the owner's mail read or says the owner read it.
#[tokio::test]
async fn a_delegates_reads_through_the_pages_are_the_owners_to_see_and_leave_mail_unread() {
    let app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let delivery = app.send_ok(ANNA, "Till Anna").await;
    app.wait_delivered(&tenant.token, &delivery).await;
    let message: String = app
        .query(
            "mailbox.db",
            &format!("SELECT id FROM mailbox_messages WHERE recipient_id = '{ANNA}'"),
        )
        .await;
    let (anna, _) = login(&app, "Anna").await;
    let (bertil, _) = login(&app, "Bertil").await;
    let read_only = granted(&app, &anna, BERTIL, "read", "").await;

    let page = bertil
        .get(&format!("/for/{read_only}/messages/{message}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Till Anna"));
    let body = bertil
        .get(&format!("/for/{read_only}/messages/{message}/body"))
        .await;
    assert_eq!(body.status, StatusCode::OK, "{}", body.body);
    assert_eq!(body.headers["cache-control"], "no-store");
    // Read only: archiving is refused and changes nothing.
    let csrf = bertil
        .get(&format!("/for/{read_only}/inbox"))
        .await
        .hidden_field("csrf")
        .expect("the inbox's CSRF field");
    let refused = bertil
        .post_form(
            &format!("/for/{read_only}/messages/{message}/archive"),
            &[("csrf", &csrf), ("archived", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // Still unread for Anna, and no entry says she read it.
    let unread: i64 = app
        .query(
            "mailbox.db",
            "SELECT count(*) FROM mailbox_messages WHERE read_at IS NULL",
        )
        .await;
    assert_eq!(unread, 1, "the delegate's reading left it unread");
    let said_read: i64 = app
        .query(
            "mailbox.db",
            "SELECT count(*) FROM audit_log WHERE action = 'message.read'",
        )
        .await;
    assert_eq!(said_read, 0, "no entry says the recipient read it");

    // With the right to manage, archiving works and is Anna's to see too.
    revoke(&anna, &read_only).await;
    let manage = granted(&app, &anna, BERTIL, "manage", "").await;
    let csrf = bertil
        .get(&format!("/for/{manage}/inbox"))
        .await
        .hidden_field("csrf")
        .expect("the inbox's CSRF field");
    let archived = bertil
        .post_form(
            &format!("/for/{manage}/messages/{message}/archive"),
            &[("csrf", &csrf), ("archived", "1")],
        )
        .await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER, "{}", archived.body);

    let owner = anna.get("/delegations").await;
    let reads = reads_section(&owner.body);
    for what in [
        "Öppnade ett meddelande",
        "Läste ett meddelandes innehåll",
        "Arkiverade ett meddelande",
    ] {
        assert!(reads.contains(what), "{what} in {reads}");
    }
}
