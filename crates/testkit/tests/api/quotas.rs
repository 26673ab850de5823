//! Per-tenant quotas: exceeding one answers 429 with Retry-After, the request
//! is refused whole, and spreading over several credentials does not help.

use kuvert_testkit::{ADMIN_TOKEN, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn set_quota(app: &TestApp, tenant: &str, quota: Value) {
    let response = app
        .http
        .put(format!("{}/admin/v1/tenants/{tenant}/quota", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&quota)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

fn batch_of(app: &TestApp, n: usize, recipient: &str) -> Value {
    let (_, sender) = app.kommun();
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let signed = app.sign(
                sender,
                app.delivery(sender, recipient, &format!("Massutskick {i}")),
            );
            json!({ "delivery": signed.delivery, "signature": signed.signature })
        })
        .collect();
    json!({ "deliveries": items })
}

async fn stored_events(app: &TestApp, token: &str) -> usize {
    let (_, feed) = app.get("/v1/status-feed?limit=1000", Some(token)).await;
    feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "accepted")
        .count()
}

async fn send_raw(app: &TestApp, token: &str, recipient: &str) -> reqwest::Response {
    let (_, sender) = app.kommun();
    let signed = app.sign(sender, app.delivery(sender, recipient, "Kvot"));
    app.http
        .post(format!("{}/v1/deliveries", app.url))
        .bearer_auth(token)
        .json(&signed)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_daily_quota_refuses_with_429_and_retry_after_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_per_day": 3 })).await;
    for _ in 0..3 {
        assert_eq!(
            send_raw(&app, &token, &anna).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let refused = send_raw(&app, &token, &anna).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry_after),
        "until UTC midnight: {retry_after}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(stored_events(&app, &token).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_over_the_daily_quota_is_refused_whole() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_per_day": 5 })).await;
    let (status, _) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 4, &anna))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 2, &anna))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(stored_events(&app, &token).await, 4, "not half accepted");
    let (status, _) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 1, &anna))
        .await;
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
    assert_eq!(
        send_raw(&app, &token, &anna).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send_raw(&app, &second, &anna).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send_raw(&app, &second, &anna).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send_raw(&app, &token, &anna).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another tenant is not affected.
    let (tenant_b, sender_b) = {
        let t = app.tenant("demoformedlare");
        (t.token.clone(), t.senders[0].clone())
    };
    let signed = app.sign(&sender_b, app.delivery(&sender_b, &anna, "Annan hyresgäst"));
    assert_eq!(app.send(&tenant_b, &signed).await.0, StatusCode::ACCEPTED);
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
    let (status, _) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 100, &anna))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let refused = send_raw(&app, &token, &anna).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 1, "{retry_after}");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_larger_than_the_tenants_batch_quota_is_refused() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    set_quota(&app, "demokommun", json!({ "max_batch": 2 })).await;
    let (status, body) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 3, &anna))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(stored_events(&app, &token).await, 0);
    let (status, _) = app
        .post("/v1/batches", Some(&token), &batch_of(&app, 2, &anna))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test]
async fn quotas_are_set_only_by_the_platform_operator() {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let response = app
        .http
        .put(format!("{}/admin/v1/tenants/demokommun/quota", app.url))
        .bearer_auth(&token)
        .json(&json!({ "max_per_day": 1000000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
