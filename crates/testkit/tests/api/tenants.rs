//! Tenant isolation and the tenant lifecycle: one tenant never sees, sends
//! as, or signs with anything of another; revocations and suspensions apply
//! to the very next request; the admin API is the platform operator's alone.
//!
//! Tenant A is "demokommun" (one sender), tenant B "demoformedlare" (two).

use base64::Engine as _;
use kuvert::demo::{DemoSender, DemoTenant};
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::ids::{BatchId, DeliveryId, TenantId};
use kuvert_store::relay::DeliveryStatus;
use kuvert_testkit::{
    ADMIN_TOKEN, PATIENCE, TestApp, assert_problem, batch_items, client, credential_id, eventually,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const A: &str = "demokommun";
const B: &str = "demoformedlare";

fn tenant(app: &TestApp, name: &str) -> DemoTenant {
    app.tenant(name).clone()
}

/// Signs and sends `subject` to `recipient` as `sender` with `token`.
async fn send_as(
    app: &TestApp,
    token: &str,
    sender: &DemoSender,
    recipient: &str,
    subject: &str,
) -> (StatusCode, Value) {
    app.send(token, &app.letter(sender, recipient, subject).signed())
        .await
}

/// [`send_as`], asserting 202; returns the delivery id.
async fn send_as_ok(
    app: &TestApp,
    token: &str,
    sender: &DemoSender,
    recipient: &str,
    subject: &str,
) -> String {
    app.send_accepted(token, &app.letter(sender, recipient, subject).signed())
        .await
}

/// `GET path` as `token` and `GET missing` the same way: both 404, with
/// exactly the same bytes (nothing tells "another tenant's" from "does not
/// exist").
async fn assert_hidden_like_missing(app: &TestApp, token: &str, path: &str, missing: &str) {
    let foreign = app.request_raw(Method::GET, path, Some(token), None).await;
    let absent = app
        .request_raw(Method::GET, missing, Some(token), None)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(
        foreign.bytes, absent.bytes,
        "the body must not tell 'another tenant's' from 'does not exist'"
    );
}

/// One number from the core database, or `i64::MAX` when the query gives
/// no row.
async fn core_number(app: &TestApp, sql: &str) -> i64 {
    let rows: Vec<i64> = app.query_all("kuvert.db", sql).await;
    rows.first().copied().unwrap_or(i64::MAX)
}

/// Every audit entry the caller's credential can read, following the cursor.
async fn all_audit(app: &TestApp, token: &str) -> Vec<Value> {
    let mut after = 0;
    let mut entries = Vec::new();
    loop {
        let (status, page) = app
            .get(&format!("/v1/audit?after={after}&limit=1000"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = page["entries"].as_array().unwrap().clone();
        if batch.is_empty() {
            return entries;
        }
        after = page["next_cursor"].as_i64().unwrap();
        entries.extend(batch);
    }
}

// ---------------------------------------------------------------------------
// Reading another tenant's resources

#[tokio::test]
async fn another_tenants_delivery_answers_404_exactly_like_one_that_does_not_exist() {
    let mut app = TestApp::spawn().await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));
    let anna = app.recipient("registered").id.clone();
    let b_delivery = send_as_ok(&app, &b.token, &b.senders[0], &anna, "B:s brev").await;
    app.wait_final(&b.token, &b_delivery).await;

    assert_hidden_like_missing(
        &app,
        &a.token,
        &format!("/v1/deliveries/{b_delivery}"),
        &format!("/v1/deliveries/{}", DeliveryId::new()),
    )
    .await;
    let (_, body) = app.delivery_view(&a.token, &b_delivery).await;
    assert_eq!(body["code"], "not_found");

    // B itself still reads it.
    let (status, own) = app.delivery_view(&b.token, &b_delivery).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_batch_answers_404_exactly_like_one_that_does_not_exist() {
    let mut app = TestApp::spawn().await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));
    let anna = app.recipient("registered").id.clone();
    let signed = app.letter(&b.senders[0], &anna, "Massutskick").signed();
    let batch = app.batch_accepted(&b.token, &batch_items(&[signed])).await;
    let batch_id = batch["batch_id"].as_str().unwrap().to_owned();

    assert_hidden_like_missing(
        &app,
        &a.token,
        &format!("/v1/batches/{batch_id}"),
        &format!("/v1/batches/{}", BatchId::new()),
    )
    .await;

    let own = app.batch_view(&b.token, &batch_id).await;
    assert_eq!(own["submitted"], 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Sending with another tenant's sender or key

#[tokio::test]
async fn a_tenant_cannot_send_as_another_tenants_sender_even_signing_with_its_real_key() {
    let mut app = TestApp::spawn().await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));
    let anna = app.recipient("registered").id.clone();
    for b_sender in &b.senders {
        // A genuine delivery of B's sender, signed with B's real key, but sent
        // with A's credential.
        assert_problem(
            &send_as(&app, &a.token, b_sender, &anna, "Förfalskat").await,
            StatusCode::FORBIDDEN,
            "sender_not_allowed",
        );
    }
    // Nothing was stored for either tenant.
    for t in [&a, &b] {
        let (_, stats) = app.get("/v1/statistics", Some(&t.token)).await;
        let counts = &stats["deliveries"];
        let total: i64 = ["accepted", "delivered", "paper", "not_delivered", "failed"]
            .iter()
            .map(|k| counts[*k].as_i64().unwrap())
            .sum();
        assert_eq!(total, 0, "{stats}");
    }
    assert_eq!(app.outbox_len().await, 0);
    assert_eq!(app.inbox(&anna).await.total, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_cannot_sign_for_its_own_sender_with_another_tenants_key() {
    let mut app = TestApp::spawn().await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));
    let anna = app.recipient("registered").id.clone();
    let a_sender = &a.senders[0];
    let b_key = b.senders[0].key().unwrap();
    let signed = client::sign(app.delivery(a_sender, &anna, "Fel nyckel"), &b_key);
    assert_eq!(signed.signature.key_id, b.senders[0].key_id);
    let body = assert_problem(
        &app.send(&a.token, &signed).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_key_unknown",
    );

    // Exactly what a key nobody registered gets: B's key does not exist for A.
    let stranger = client::sign(
        app.delivery(a_sender, &anna, "Fel nyckel"),
        &SigningKey::generate(),
    );
    let unknown = assert_problem(
        &app.send(&a.token, &stranger).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_key_unknown",
    );
    assert_eq!(body["title"], unknown["title"]);
    assert_eq!(app.outbox_len().await, 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Statistics and audit

struct Mix {
    a: Vec<String>,
    b: Vec<String>,
}

/// A: 2 delivered, 1 paper, 1 not delivered. B: 3 delivered. Drained.
async fn send_known_mix(app: &TestApp) -> Mix {
    let (a, b) = (tenant(app, A), tenant(app, B));
    let anna = app.recipient("registered").id.clone();
    let bertil = app.person("Bertil Berg");
    let cecilia = app.recipient("not_registered").id.clone();
    let a_sender = &a.senders[0];

    let mut a_ids = vec![
        send_as_ok(app, &a.token, a_sender, &anna, "A till Anna").await,
        send_as_ok(app, &a.token, a_sender, &bertil, "A till Bertil").await,
    ];
    let mut paper = app.delivery(a_sender, &cecilia, "A på papper");
    paper.paper_fallback = true;
    let (status, body) = app.send(&a.token, &app.sign(a_sender, paper)).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("paper")),
        "{body}"
    );
    a_ids.push(body["delivery_id"].as_str().unwrap().to_owned());
    let (status, body) = send_as(app, &a.token, a_sender, &cecilia, "A utan papper").await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("not_delivered")),
        "{body}"
    );
    a_ids.push(body["delivery_id"].as_str().unwrap().to_owned());

    let b_ids = vec![
        send_as_ok(app, &b.token, &b.senders[0], &anna, "B1 till Anna").await,
        send_as_ok(app, &b.token, &b.senders[1], &bertil, "B2 till Bertil").await,
        send_as_ok(app, &b.token, &b.senders[0], &bertil, "B3 till Bertil").await,
    ];
    for id in &a_ids {
        app.wait_final(&a.token, id).await;
    }
    for id in &b_ids {
        app.wait_final(&b.token, id).await;
    }
    app.drain().await;
    Mix { a: a_ids, b: b_ids }
}

/// The statistics of the day the deliveries were received (read from the
/// delivery itself, so a run across midnight UTC cannot mislead).
async fn statistics(app: &TestApp, token: &str, some_delivery: &str) -> Value {
    let (_, view) = app.delivery_view(token, some_delivery).await;
    let day = &view["received_at"].as_str().unwrap()[..10];
    let (status, stats) = app
        .get(&format!("/v1/statistics?day={day}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    stats
}

async fn statuses_one_by_one(app: &TestApp, token: &str, ids: &[String]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for id in ids {
        let (status, view) = app.delivery_view(token, id).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        *counts
            .entry(view["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    counts
}

fn as_counts(stats: &Value) -> BTreeMap<String, i64> {
    stats["deliveries"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn each_tenants_statistics_count_exactly_its_own_deliveries() {
    let mut app = TestApp::spawn().await;
    let mix = send_known_mix(&app).await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));

    let a_stats = statistics(&app, &a.token, &mix.a[0]).await;
    assert_eq!(a_stats["tenant"], A);
    assert_eq!(
        a_stats["deliveries"],
        json!({ "accepted": 0, "delivered": 2, "paper": 1, "not_delivered": 1, "failed": 0 }),
        "{a_stats}"
    );
    let b_stats = statistics(&app, &b.token, &mix.b[0]).await;
    assert_eq!(b_stats["tenant"], B);
    assert_eq!(
        b_stats["deliveries"],
        json!({ "accepted": 0, "delivered": 3, "paper": 0, "not_delivered": 0, "failed": 0 }),
        "{b_stats}"
    );

    // The totals are the statuses read back one by one.
    assert_eq!(
        as_counts(&a_stats),
        statuses_one_by_one(&app, &a.token, &mix.a).await
    );
    assert_eq!(
        as_counts(&b_stats),
        statuses_one_by_one(&app, &b.token, &mix.b).await
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenants_audit_trail_holds_only_its_own_deliveries_and_credentials() {
    let mut app = TestApp::spawn().await;
    let mix = send_known_mix(&app).await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));

    for (me, mine, other, others) in [(&a, &mix.a, &b, &mix.b), (&b, &mix.b, &a, &mix.a)] {
        let entries = all_audit(&app, &me.token).await;
        assert!(!entries.is_empty());
        let mut own_subjects: BTreeSet<String> = mine.iter().cloned().collect();
        own_subjects.insert(me.tenant.clone());
        own_subjects.insert(credential_id(&me.token));
        for s in &me.senders {
            own_subjects.insert(s.id.clone());
            own_subjects.insert(s.key_id.clone());
        }
        // The demo's web sending key and sender-role grant (decision 0020).
        for sql in [
            "SELECT key_id FROM web_sender_keys WHERE tenant_id = '{}'",
            "SELECT credential_id FROM web_sender_grants WHERE tenant_id = '{}'",
        ] {
            let ids: Vec<String> = app
                .query_all("kuvert.db", &sql.replace("{}", &me.tenant))
                .await;
            own_subjects.extend(ids);
        }
        let mut foreign: Vec<String> = others.clone();
        foreign.push(other.tenant.clone());
        foreign.push(credential_id(&other.token));
        for s in &other.senders {
            foreign.push(s.id.clone());
            foreign.push(s.key_id.clone());
        }
        for entry in &entries {
            let subject = entry["subject"].as_str().unwrap();
            assert!(
                own_subjects.contains(subject),
                "{}: foreign subject in {entry}",
                me.tenant
            );
            let text = entry.to_string();
            for f in &foreign {
                assert!(
                    !text.contains(f.as_str()),
                    "{}: {f} of the other tenant appears in {entry}",
                    me.tenant
                );
            }
        }
        // And every one of its own deliveries is there.
        let subjects: BTreeSet<&str> = entries
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        for id in mine {
            assert!(
                subjects.contains(id.as_str()),
                "{}: no audit entry for {id}",
                me.tenant
            );
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Revocation

async fn admin_post(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    app.post(path, Some(ADMIN_TOKEN), body).await
}

/// [`admin_post`], asserting 201; returns what was created.
async fn admin_created(app: &TestApp, path: &str, body: &Value) -> Value {
    let (status, created) = admin_post(app, path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[tokio::test]
async fn a_revoked_credential_is_refused_on_the_very_next_request() {
    let mut app = TestApp::spawn().await;
    let a = tenant(&app, A);
    let anna = app.recipient("registered").id.clone();
    let created = admin_created(
        &app,
        &format!("/admin/v1/tenants/{A}/credentials"),
        &json!({ "label": "x" }),
    )
    .await;
    let second = created["token"].as_str().unwrap().to_owned();
    let second_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(credential_id(&second), second_id);

    send_as_ok(&app, &second, &a.senders[0], &anna, "Med nya nyckeln").await;
    let (status, body) = app
        .delete(
            &format!("/admin/v1/tenants/{A}/credentials/{second_id}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    assert_problem(
        &send_as(&app, &second, &a.senders[0], &anna, "Efter återkallelsen").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_problem(
        &app.get("/v1/statistics", Some(&second)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // The first credential is untouched.
    send_as_ok(&app, &a.token, &a.senders[0], &anna, "Med första").await;
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_signing_key_is_refused_on_the_next_delivery() {
    let mut app = TestApp::spawn().await;
    let a = tenant(&app, A);
    let sender = &a.senders[0];
    let anna = app.recipient("registered").id.clone();
    let key = SigningKey::generate();
    let added = admin_created(
        &app,
        &format!("/admin/v1/tenants/{A}/keys"),
        &json!({ "sender": sender.id, "public_key": key.public_key().to_base64() }),
    )
    .await;
    let key_id = added["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id, key.public_key().key_id());

    let signed = client::sign(app.delivery(sender, &anna, "Ny nyckel"), &key);
    let (status, body) = app.send(&a.token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (status, body) = app
        .delete(
            &format!("/admin/v1/tenants/{A}/keys/{key_id}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let signed = client::sign(app.delivery(sender, &anna, "Återkallad nyckel"), &key);
    assert_problem(
        &app.send(&a.token, &signed).await,
        StatusCode::FORBIDDEN,
        "signature_key_revoked",
    );

    // The sender's other key still works.
    send_as_ok(&app, &a.token, sender, &anna, "Gamla nyckeln").await;
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_cannot_revoke_a_credential_through_another_tenants_path() {
    let mut app = TestApp::spawn().await;
    let b = tenant(&app, B);
    let anna = app.recipient("registered").id.clone();
    let b_credential = credential_id(&b.token);
    assert_problem(
        &app.delete(
            &format!("/admin/v1/tenants/{A}/credentials/{b_credential}"),
            Some(ADMIN_TOKEN),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    send_as_ok(&app, &b.token, &b.senders[0], &anna, "Fortfarande giltig").await;
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_cannot_revoke_a_key_through_another_tenants_path() {
    let mut app = TestApp::spawn().await;
    let b = tenant(&app, B);
    let anna = app.recipient("registered").id.clone();
    assert_problem(
        &app.delete(
            &format!("/admin/v1/tenants/{A}/keys/{}", b.senders[0].key_id),
            Some(ADMIN_TOKEN),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    send_as_ok(&app, &b.token, &b.senders[0], &anna, "Nyckeln gäller").await;
    app.stop().await;
}

#[tokio::test]
async fn a_key_cannot_be_registered_for_another_tenants_sender() {
    let mut app = TestApp::spawn().await;
    let b = tenant(&app, B);
    let key = SigningKey::generate();
    assert_problem(
        &admin_post(
            &app,
            &format!("/admin/v1/tenants/{A}/keys"),
            &json!({ "sender": b.senders[0].id, "public_key": key.public_key().to_base64() }),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Suspension

async fn suspend(app: &TestApp, name: &str) {
    let (status, body) = admin_post(
        app,
        &format!("/admin/v1/tenants/{name}/suspend"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn resume(app: &TestApp, name: &str) {
    let (status, body) =
        admin_post(app, &format!("/admin/v1/tenants/{name}/resume"), &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_suspended_tenants_send_is_refused_with_tenant_suspended() {
    let mut app = TestApp::spawn().await;
    let a = tenant(&app, A);
    let anna = app.recipient("registered").id.clone();
    suspend(&app, A).await;
    assert_problem(
        &send_as(&app, &a.token, &a.senders[0], &anna, "Avstängd").await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    );
    assert_eq!(app.outbox_len().await, 0, "nothing was stored");
    app.stop().await;
}

#[tokio::test]
async fn a_suspended_tenants_status_read_is_refused_with_tenant_suspended() {
    let mut app = TestApp::spawn().await;
    let a = tenant(&app, A);
    let anna = app.recipient("registered").id.clone();
    let id = send_as_ok(&app, &a.token, &a.senders[0], &anna, "Före").await;
    suspend(&app, A).await;
    assert_problem(
        &app.delivery_view(&a.token, &id).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    );
    assert_problem(
        &app.get("/v1/statistics", Some(&a.token)).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_suspended_tenants_queue_is_held_and_goes_out_exactly_once_after_resume() {
    let mut app = TestApp::spawn().await;
    let (a, b) = (tenant(&app, A), tenant(&app, B));
    let anna = app.recipient("registered").id.clone();
    let bertil = app.person("Bertil Berg");
    let a_tenant = TenantId::parse(A).unwrap();

    app.set_mailbox_open(false);
    let mut held = Vec::new();
    for i in 0..3 {
        let (status, body) =
            send_as(&app, &a.token, &a.senders[0], &anna, &format!("Hållet {i}")).await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::ACCEPTED, &json!("accepted")),
            "{body}"
        );
        held.push(DeliveryId::parse(body["delivery_id"].as_str().unwrap()).unwrap());
    }
    suspend(&app, A).await;
    assert_problem(
        &send_as(&app, &a.token, &a.senders[0], &anna, "Under avstängning").await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    );

    // B is unaffected: it sends, and once a whole worker pass started after
    // the suspension has tried B's delivery (the mailbox still closed), no
    // pass that could still hold A's jobs is in flight.
    let b_first = send_as_ok(
        &app,
        &b.token,
        &b.senders[0],
        &bertil,
        "B under A:s avstängning",
    )
    .await;
    let (shared, first) = (&app, b_first.as_str());
    eventually("a pass has tried B's delivery", PATIENCE, || async move {
        let sql = format!("SELECT attempts FROM outbox WHERE delivery_id = '{first}'");
        (core_number(shared, &sql).await >= 1).then_some(())
    })
    .await;

    app.set_mailbox_open(true);
    app.wait_delivered(&b.token, &b_first).await;
    // Wait until A's held jobs are all due, then have the worker make one
    // more pass (B's second delivery wakes it): a pass that would have taken
    // them had A been active.
    let shared = &app;
    eventually("A's held jobs are due", PATIENCE, || async move {
        let now = kuvert_domain::clock::format_instant(time::OffsetDateTime::now_utc());
        let sql = format!("SELECT COUNT(*) FROM outbox WHERE next_attempt_at > '{now}'");
        (core_number(shared, &sql).await == 0).then_some(())
    })
    .await;
    let b_second = send_as_ok(&app, &b.token, &b.senders[1], &bertil, "B igen").await;
    app.wait_delivered(&b.token, &b_second).await;

    for id in &held {
        let record = app
            .core_db()
            .delivery(&a_tenant, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.status,
            DeliveryStatus::Accepted,
            "held while suspended"
        );
        assert!(record.receipt.is_none());
    }
    assert_eq!(app.outbox_len().await, 3, "only A's three wait");
    assert_eq!(
        app.inbox(&anna).await.total,
        0,
        "nothing of A reached the mailbox"
    );
    assert_eq!(app.inbox(&bertil).await.total, 2);

    resume(&app, A).await;
    for id in &held {
        app.wait_delivered(&a.token, &id.to_string()).await;
    }
    app.drain().await;

    // Exactly once each: three messages, one per held delivery.
    let token = app.recipient_token(&anna);
    let page = app.messages(&token, "page_size=100").await;
    assert_eq!(page.total, 3, "{page:?}");
    let mut delivered: Vec<String> = Vec::new();
    for message in &page.messages {
        let (status, opened) = app.open_message(&token, &message.id).await;
        assert_eq!(status, StatusCode::OK, "{opened}");
        delivered.push(opened["delivery_id"].as_str().unwrap().to_owned());
    }
    delivered.sort();
    let mut expected: Vec<String> = held.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(delivered, expected);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// The admin API

#[tokio::test]
async fn the_admin_api_refuses_a_request_without_a_token() {
    let mut app = TestApp::spawn().await;
    assert_problem(
        &app.get("/admin/v1/tenants", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_problem(
        &app.post(&format!("/admin/v1/tenants/{A}/suspend"), None, &json!({}))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_a_tenants_sender_credential() {
    let mut app = TestApp::spawn().await;
    let a = tenant(&app, A);
    let anna = app.recipient("registered").id.clone();
    assert_problem(
        &app.get("/admin/v1/tenants", Some(&a.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Not even against itself or the other tenant: nothing changed.
    for target in [A, B] {
        assert_problem(
            &app.post(
                &format!("/admin/v1/tenants/{target}/suspend"),
                Some(&a.token),
                &json!({}),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    assert_problem(
        &app.post(
            &format!("/admin/v1/tenants/{A}/credentials"),
            Some(&a.token),
            &json!({ "label": "x" }),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    send_as_ok(&app, &a.token, &a.senders[0], &anna, "Fortfarande aktiv").await;
    let b = tenant(&app, B);
    send_as_ok(&app, &b.token, &b.senders[0], &anna, "B också").await;
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_a_wrong_operator_token() {
    let mut app = TestApp::spawn().await;
    assert_problem(
        &app.get("/admin/v1/tenants", Some("kva_not-the-operator-token"))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_created_through_the_admin_api_sends_end_to_end() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    admin_created(
        &app,
        "/admin/v1/tenants",
        &json!({ "id": "nykommun", "name": "Ny kommun" }),
    )
    .await;
    let sender_id = format!("16{}", kuvert::demo::organisation_number("212100555"));
    admin_created(
        &app,
        "/admin/v1/tenants/nykommun/senders",
        &json!({ "id": sender_id, "name": "Nya nämnden" }),
    )
    .await;
    let credential = admin_created(
        &app,
        "/admin/v1/tenants/nykommun/credentials",
        &json!({ "label": "prod" }),
    )
    .await;
    let token = credential["token"].as_str().unwrap().to_owned();
    let key = SigningKey::generate();
    let added = admin_created(
        &app,
        "/admin/v1/tenants/nykommun/keys",
        &json!({ "sender": sender_id, "public_key": key.public_key().to_base64() }),
    )
    .await;

    let sender = DemoSender {
        id: sender_id.clone(),
        name: "Nya nämnden".into(),
        key_id: added["key_id"].as_str().unwrap().to_owned(),
        signing_key: base64::engine::general_purpose::STANDARD.encode(*key.to_bytes()),
    };
    let id = send_as_ok(&app, &token, &sender, &anna, "Välkommen").await;
    let view = app.wait_delivered(&token, &id).await;
    assert_eq!(view["sender_id"], sender_id.as_str());

    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1, "{page:?}");
    assert_eq!(page.messages[0].sender_name, "Nya nämnden");
    assert_eq!(page.messages[0].subject, "Välkommen");

    // The new tenant is listed, active, and sees only itself.
    let (status, tenants) = app.get("/admin/v1/tenants", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{tenants}");
    let listed = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "nykommun")
        .unwrap();
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["name"], "Ny kommun");
    let (_, own) = app.delivery_view(&token, &id).await;
    assert_eq!(own["delivery_id"], id.as_str());
    assert_problem(
        &app.delivery_view(&app.kommun().0.token, &id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    app.stop().await;
}
