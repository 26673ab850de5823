//! Per-tenant quotas: exceeding one answers 429 with Retry-After, the request
//! is refused whole, and spreading over several credentials does not help.

use kuvert_domain::delivery::SignedDelivery;
use kuvert_domain::status::DeliveryStatus;
use kuvert_store::quotas::QuotaDefaults;
use kuvert_testkit::{ADMIN_TOKEN, RawAnswer, TestApp, assert_problem, batch_items};
use kuvert_web::api::batches::BatchItem;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn set_quota(app: &TestApp, tenant: &str, quota: Value) {
    let path = format!("/admin/v1/tenants/{tenant}/quota");
    let (status, body) = app.put(&path, Some(ADMIN_TOKEN), &quota).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// `n` deliveries from the demo municipality to `recipient`.
fn batch_of(app: &TestApp, n: usize, recipient: &str) -> Vec<BatchItem> {
    let signed: Vec<_> = (0..n)
        .map(|i| app.kommun_signed(recipient, &format!("Massutskick {i}")))
        .collect();
    batch_items(&signed)
}

async fn stored_events(app: &TestApp, token: &str) -> usize {
    app.status_events(token)
        .await
        .iter()
        .filter(|e| e.status == DeliveryStatus::Accepted)
        .count()
}

async fn send_raw(app: &TestApp, token: &str, recipient: &str) -> RawAnswer {
    app.send_raw(token, None, &app.kommun_signed(recipient, "Kvot"))
        .await
}

/// The `Retry-After` of a refusal, in seconds.
fn retry_after(refused: &RawAnswer) -> u64 {
    refused.header("retry-after").unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_daily_quota_refuses_with_429_and_retry_after_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_per_day": 3 })).await;
    for _ in 0..3 {
        assert_eq!(
            send_raw(&app, &token, &anna).await.status,
            StatusCode::ACCEPTED
        );
    }
    let refused = send_raw(&app, &token, &anna).await;
    let retry_after = retry_after(&refused);
    assert!(
        (1..=86_400).contains(&retry_after),
        "until UTC midnight: {retry_after}"
    );
    assert_problem(
        &refused.parts(),
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );
    assert_eq!(stored_events(&app, &token).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_over_the_daily_quota_is_refused_whole() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_per_day": 5 })).await;
    app.batch_accepted(&token, &batch_of(&app, 4, &anna)).await;
    let (status, body) = app.batch(&token, &batch_of(&app, 2, &anna)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(stored_events(&app, &token).await, 4, "not half accepted");
    let (status, _) = app.batch(&token, &batch_of(&app, 1, &anna)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the remaining one still fits");
    app.stop().await;
}

#[tokio::test]
async fn spreading_over_several_credentials_does_not_exceed_the_tenant_quota() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let (status, created) = app
        .post(
            "/admin/v1/tenants/demokommun/credentials",
            Some(ADMIN_TOKEN),
            &json!({ "label": "second" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let second = created["token"].as_str().unwrap().to_owned();
    set_quota(&app, "demokommun", json!({ "max_per_day": 2 })).await;
    for (credential, expected) in [
        (&token, StatusCode::ACCEPTED),
        (&second, StatusCode::ACCEPTED),
        (&second, StatusCode::TOO_MANY_REQUESTS),
        (&token, StatusCode::TOO_MANY_REQUESTS),
    ] {
        assert_eq!(send_raw(&app, credential, &anna).await.status, expected);
    }
    // Another tenant is not affected.
    let formedlare = app.tenant("demoformedlare");
    let signed = app
        .letter(&formedlare.senders[0], &anna, "Annan hyresgäst")
        .signed();
    assert_eq!(
        app.send(&formedlare.token, &signed).await.0,
        StatusCode::ACCEPTED
    );
    app.stop().await;
}

#[tokio::test]
async fn the_per_second_quota_lets_a_batch_through_then_makes_the_tenant_wait() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    // One per second and a batch of 100: the batch passes, and the next
    // request waits until the 99 s of debt are paid.
    set_quota(&app, "demokommun", json!({ "max_per_second": 1 })).await;
    let (status, _) = app.batch(&token, &batch_of(&app, 100, &anna)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let refused = send_raw(&app, &token, &anna).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after(&refused);
    assert!(retry_after > 1, "{retry_after}");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_larger_than_the_tenants_batch_quota_is_refused() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_batch": 2 })).await;
    assert_problem(
        &app.batch(&token, &batch_of(&app, 3, &anna)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );
    assert_eq!(stored_events(&app, &token).await, 0);
    let (status, _) = app.batch(&token, &batch_of(&app, 2, &anna)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test]
async fn quotas_are_set_only_by_the_platform_operator() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let quota = json!({ "max_per_day": 1000000 });
    let (status, _) = app
        .put("/admin/v1/tenants/demokommun/quota", Some(&token), &quota)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

// Quotas that hold (issue 17, decision 0015): defaults without any setting,
// lookups metered, messages and bytes counted, everything reserved before
// the work, in the database (restarts and the midnight boundary), on the
// test clock.

/// 23:59:59 UTC two days ago: one second before a midnight, in the past
/// (the audit checkpoint at a stop is signed on the real clock).
fn just_before_midnight() -> time::OffsetDateTime {
    let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(2);
    day.with_hms(23, 59, 59).unwrap().assume_utc()
}

fn documented_defaults(settings: &mut kuvert::app::Settings) {
    settings.quota_defaults = QuotaDefaults::default();
}

/// An instance on the test clock at [`just_before_midnight`]; demo tenants
/// have the testkit's defaults (unlimited) unless a test sets a quota.
async fn on_the_clock() -> TestApp {
    TestApp::spawn_with_clock(just_before_midnight(), |_| {}).await
}

/// Like [`on_the_clock`], at noon (far from a midnight).
async fn at_noon() -> TestApp {
    let noon =
        just_before_midnight().replace_time(time::Time::MIDNIGHT) + time::Duration::hours(12);
    TestApp::spawn_with_clock(noon, |_| {}).await
}

async fn quota_view(app: &TestApp, tenant: &str) -> Value {
    let (status, view) = app
        .get(
            &format!("/admin/v1/tenants/{tenant}/quota"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

/// Today's use of `counter` (deliveries, messages, bytes, lookup_ids).
async fn used(app: &TestApp, counter: &str) -> i64 {
    quota_view(app, "demokommun").await["today"][counter]
        .as_i64()
        .unwrap()
}

fn effective(view: &Value, dimension: &str) -> Value {
    view["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["dimension"] == dimension)
        .unwrap()["effective"]
        .clone()
}

async fn deliveries_stored(app: &TestApp) -> i64 {
    app.query("kuvert.db", "SELECT COUNT(*) FROM deliveries")
        .await
}

async fn lookups_done(app: &TestApp) -> i64 {
    app.query(
        "kuvert.db",
        "SELECT COUNT(*) FROM audit_log WHERE action = 'register.lookup'",
    )
    .await
}

async fn lookup(app: &TestApp, ids: usize) -> RawAnswer {
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let recipients = vec![anna; ids];
    app.request_raw(
        reqwest::Method::POST,
        "/v1/reachability",
        Some(&tenant.token),
        Some(&json!({ "sender": sender.id, "recipients": recipients })),
    )
    .await
}

fn assert_quota_exceeded(answer: RawAnswer, retry_after_seconds: Option<u64>) {
    let wait = answer
        .header("retry-after")
        .map(|v| v.parse::<u64>().unwrap());
    assert_eq!(wait, retry_after_seconds, "Retry-After");
    assert_problem(
        &answer.parts(),
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );
}

/// A delivery to `recipient` with `messages` messages, signed.
fn with_messages(app: &TestApp, recipient: &str, messages: usize) -> SignedDelivery {
    app.kommun_letter(recipient, "Flera")
        .with(|d| {
            for i in 1..messages {
                let mut message = d.messages[0].clone();
                message.header.id = format!("m{i}");
                d.messages.push(message);
            }
        })
        .signed()
}

/// Signed, then changed: its signature no longer verifies.
fn badly_signed(app: &TestApp, recipient: &str) -> SignedDelivery {
    let mut signed = app.kommun_signed(recipient, "Ändrad");
    signed.delivery.messages[0].header.subject = "Ändrad efteråt".into();
    signed
}

#[tokio::test]
async fn the_documented_defaults_apply_to_a_tenant_that_set_no_quota() {
    let mut app = TestApp::spawn_with_clock(just_before_midnight(), documented_defaults).await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let rows: i64 = app
        .query("kuvert.db", "SELECT COUNT(*) FROM tenant_quotas")
        .await;
    assert_eq!(rows, 0, "no tenant has a quota row: only defaults apply");
    let view = quota_view(&app, "demokommun").await;
    for (dimension, value) in [
        ("deliveries_per_day", json!(100_000)),
        ("deliveries_per_second", json!(50)),
        ("messages_per_day", json!(500_000)),
        ("bytes_per_day", json!(10_737_418_240_i64)),
        ("batch_size", json!(1000)),
        ("lookup_ids_per_day", json!(200_000)),
        ("lookup_ids_per_second", json!(1000)),
    ] {
        assert_eq!(effective(&view, dimension), value, "{dimension}: {view}");
    }
    // A batch over the default batch size: refused, no Retry-After.
    let (status, body) = app.batch(&token, &batch_of(&app, 1001, &anna)).await;
    assert_problem(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );
    // 50 per second: a batch of 50 empties the bucket, the next request
    // waits a second.
    app.batch_accepted(&token, &batch_of(&app, 50, &anna)).await;
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    app.advance(time::Duration::seconds(1));
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    // 1000 ids per second looked up.
    assert_eq!(lookup(&app, 1000).await.status, StatusCode::OK);
    assert_quota_exceeded(lookup(&app, 1).await, Some(1));
    assert_eq!(deliveries_stored(&app).await, 51);
    app.stop().await;
}

#[tokio::test]
async fn a_request_over_a_quota_is_refused_before_any_check_and_stores_nothing() {
    let mut app = on_the_clock().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "deliveries_per_day": 1 })).await;
    // Within the quota, a bad signature is found (and its reservation
    // given back)...
    let (status, _) = app.send(&token, &badly_signed(&app, &anna)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(used(&app, "deliveries").await, 0, "given back");
    // ...over it, nothing is checked: two badly signed items are refused
    // whole as over the quota, not answered item by item.
    let items = batch_items(&[badly_signed(&app, &anna), badly_signed(&app, &anna)]);
    let (status, body) = app.batch(&token, &items).await;
    assert_problem(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    );
    let batches: i64 = app.query("kuvert.db", "SELECT COUNT(*) FROM batches").await;
    assert_eq!((batches, deliveries_stored(&app).await), (0, 0));
    assert_eq!(used(&app, "deliveries").await, 0);
    // The one delivery the quota allows still goes.
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(used(&app, "deliveries").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn replays_count_once_and_refused_items_not_at_all() {
    let mut app = on_the_clock().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "deliveries_per_day": 3 })).await;
    let first = app.kommun_signed(&anna, "Först");
    let (status, accepted) = app.send_with_key(&token, "k-1", &first).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    for _ in 0..3 {
        let (status, replay) = app.send_with_key(&token, "k-1", &first).await;
        assert_eq!(status, StatusCode::OK, "{replay}");
        assert_eq!(replay["delivery_id"], accepted["delivery_id"]);
    }
    // The same signed delivery under another key: refused, not counted.
    let (status, _) = app.send_with_key(&token, "k-2", &first).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(used(&app, "deliveries").await, 1);
    // A batch with a badly signed item: both are reserved (nothing is
    // checked before), only the good one stays counted.
    let items = batch_items(&[app.kommun_signed(&anna, "Bra"), badly_signed(&app, &anna)]);
    let answer = app.batch_accepted(&token, &items).await;
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(used(&app, "deliveries").await, 2);
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    // At the limit a replay is still answered with its delivery...
    let (status, _) = app.send_with_key(&token, "k-1", &first).await;
    assert_eq!(status, StatusCode::OK);
    // ...and so is a batch of items all stored before...
    let (status, again) = app.batch(&token, &items[..1]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["results"][0]["replayed"], true, "{again}");
    // ...but an item never stored counts as new, even one refused before:
    // the same batch again, with its badly signed item, is over the quota.
    let (status, _) = app.batch(&token, &items).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(used(&app, "deliveries").await, 3);
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    assert_eq!(deliveries_stored(&app).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn messages_and_bytes_have_daily_quotas_of_their_own() {
    let mut app = on_the_clock().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "messages_per_day": 3 })).await;
    let (status, _) = app.send(&token, &with_messages(&app, &anna, 2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(used(&app, "messages").await, 2);
    let refused = app
        .send_raw(&token, None, &with_messages(&app, &anna, 2))
        .await;
    assert_quota_exceeded(refused, Some(1));
    // One delivery of 1 message is well within the delivery quota: what
    // holds here is the message count.
    let (status, _) = app.send(&token, &with_messages(&app, &anna, 1)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(used(&app, "messages").await, 3);

    // Bytes: the canonical size of what was accepted.
    let one = used(&app, "bytes").await;
    let signed = app.kommun_signed(&anna, "Storlek");
    let size = i64::try_from(signed.delivery.canonical_bytes().len()).unwrap();
    set_quota(
        &app,
        "demokommun",
        json!({ "bytes_per_day": one + size + size / 2 }),
    )
    .await;
    let (status, _) = app.send(&token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(used(&app, "bytes").await, one + size, "counted exactly");
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    assert_eq!(deliveries_stored(&app).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn lookups_are_metered_per_day_and_per_second_and_nothing_is_looked_up_over_them() {
    let mut app = on_the_clock().await;
    set_quota(&app, "demokommun", json!({ "lookup_ids_per_day": 5 })).await;
    assert_eq!(lookup(&app, 3).await.status, StatusCode::OK);
    let done = lookups_done(&app).await;
    // 3 + 3 > 5: refused until midnight, one second away.
    assert_quota_exceeded(lookup(&app, 3).await, Some(1));
    assert_eq!(lookups_done(&app).await, done, "nothing was looked up");
    assert_eq!(lookup(&app, 2).await.status, StatusCode::OK);
    assert_eq!(used(&app, "lookup_ids").await, 5);
    // Another tenant's allowance is its own.
    let formedlare = app.tenant("demoformedlare");
    let anna = app.recipient("registered").id.clone();
    let (status, _) = app
        .reachability(&formedlare.token, &formedlare.senders[0].id, &[&anna])
        .await;
    assert_eq!(status, StatusCode::OK);

    set_quota(&app, "demokommun", json!({ "lookup_ids_per_second": 10 })).await;
    assert_eq!(lookup(&app, 10).await.status, StatusCode::OK);
    assert_quota_exceeded(lookup(&app, 1).await, Some(1));
    app.advance(time::Duration::seconds(1));
    assert_eq!(lookup(&app, 10).await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn midnight_brings_a_fresh_allowance_and_the_old_day_does_not_leak() {
    let mut app = on_the_clock().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(
        &app,
        "demokommun",
        json!({ "deliveries_per_day": 2, "lookup_ids_per_day": 2 }),
    )
    .await;
    // 23:59:59
    app.batch_accepted(&token, &batch_of(&app, 2, &anna)).await;
    assert_eq!(lookup(&app, 2).await.status, StatusCode::OK);
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    assert_quota_exceeded(lookup(&app, 1).await, Some(1));
    // 00:00:00 the next day: a fresh allowance, the whole of it and no more.
    app.advance(time::Duration::seconds(1));
    assert_eq!(app.now().time(), time::Time::MIDNIGHT);
    assert_eq!(used(&app, "deliveries").await, 0);
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(86_400));
    assert_eq!(lookup(&app, 2).await.status, StatusCode::OK);
    assert_quota_exceeded(lookup(&app, 1).await, Some(86_400));
    let per_day: Vec<String> = app
        .query_all(
            "kuvert.db",
            "SELECT day || ' ' || used FROM quota_usage WHERE counter = 'deliveries' ORDER BY day",
        )
        .await;
    let yesterday = just_before_midnight().date();
    assert_eq!(
        per_day,
        vec![
            format!("{yesterday} 2"),
            format!("{} 2", yesterday.next_day().unwrap())
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_restart_forgives_no_debt_and_no_daily_count() {
    let mut app = at_noon().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(
        &app,
        "demokommun",
        json!({ "deliveries_per_second": 1, "deliveries_per_day": 102 }),
    )
    .await;
    // A batch of 100 at 1 per second: 99 seconds of debt.
    app.batch_accepted(&token, &batch_of(&app, 100, &anna))
        .await;
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(99));
    app.restart().await;
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(99));
    app.advance(time::Duration::seconds(99));
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    app.advance(time::Duration::seconds(1));
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    app.restart().await;
    app.advance(time::Duration::seconds(1));
    assert_eq!(
        send_raw(&app, &token, &anna).await.status,
        StatusCode::ACCEPTED
    );
    // 102 today: the daily count survived both restarts.
    app.advance(time::Duration::seconds(1));
    let refused = send_raw(&app, &token, &anna).await;
    assert!(retry_after(&refused) > 40_000, "until midnight");
    assert_quota_exceeded(refused, Some(retry_after_of(&app)));
    app.stop().await;
}

/// Seconds from the instance's now to the next UTC midnight.
fn retry_after_of(app: &TestApp) -> u64 {
    let now = app.now();
    let midnight = now.date().next_day().unwrap().midnight().assume_utc();
    u64::try_from((midnight - now).whole_seconds()).unwrap()
}

#[tokio::test]
async fn single_sends_cannot_pass_the_per_second_quota_that_a_batch_respects() {
    let mut app = on_the_clock().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "deliveries_per_second": 5 })).await;
    for _ in 0..5 {
        assert_eq!(
            send_raw(&app, &token, &anna).await.status,
            StatusCode::ACCEPTED
        );
    }
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    app.advance(time::Duration::seconds(1));
    app.batch_accepted(&token, &batch_of(&app, 5, &anna)).await;
    assert_quota_exceeded(send_raw(&app, &token, &anna).await, Some(1));
    assert_eq!(deliveries_stored(&app).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_sets_numbers_unlimited_or_the_default() {
    let mut app = TestApp::spawn_with(documented_defaults).await;
    set_quota(
        &app,
        "demokommun",
        json!({ "deliveries_per_day": 7, "bytes_per_day": "unlimited", "batch_size": null }),
    )
    .await;
    let view = quota_view(&app, "demokommun").await;
    assert_eq!(effective(&view, "deliveries_per_day"), json!(7));
    assert_eq!(effective(&view, "bytes_per_day"), Value::Null, "unlimited");
    assert_eq!(effective(&view, "batch_size"), json!(1000), "the default");
    let lines = view["quotas"].as_array().unwrap();
    let setting = |d: &str| lines.iter().find(|q| q["dimension"] == d).unwrap()["setting"].clone();
    assert_eq!(setting("bytes_per_day"), json!("unlimited"));
    assert_eq!(setting("batch_size"), Value::Null);
    // Another PUT replaces all: what it leaves out is the default again.
    set_quota(&app, "demokommun", json!({ "max_per_second": 3 })).await;
    let view = quota_view(&app, "demokommun").await;
    assert_eq!(
        effective(&view, "deliveries_per_second"),
        json!(3),
        "old name"
    );
    assert_eq!(effective(&view, "deliveries_per_day"), json!(100_000));
    for bad in [
        json!({ "deliveries_per_day": 0 }),
        json!({ "lookup_ids_per_day": -1 }),
        json!({ "bytes_per_day": "lots" }),
    ] {
        let (status, body) = app
            .put(
                "/admin/v1/tenants/demokommun/quota",
                Some(ADMIN_TOKEN),
                &bad,
            )
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    let (status, _) = app
        .get("/admin/v1/tenants/nosuchtenant/quota", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
