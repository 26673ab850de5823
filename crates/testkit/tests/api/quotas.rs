//! Per-tenant quotas: exceeding one answers 429 with Retry-After, the request
//! is refused whole, and spreading over several credentials does not help.

use kuvert_domain::status::DeliveryStatus;
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
