//! Retries are safe: the same idempotency key (the `Idempotency-Key` header,
//! or `header.reference` without it) answers the first delivery and creates
//! nothing; a key reused for different content is refused; keys are scoped
//! per tenant and sender.

use kuvert_domain::delivery::SignedDelivery;
use kuvert_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Sends with an optional `Idempotency-Key` header.
async fn send_with_key(
    app: &TestApp,
    token: &str,
    key: Option<&str>,
    signed: &SignedDelivery,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(format!("{}/v1/deliveries", app.url))
        .bearer_auth(token)
        .json(signed);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The tenant's status events, grouped per delivery id, in order.
async fn events(app: &TestApp, token: &str) -> BTreeMap<String, Vec<String>> {
    let (status, feed) = app.get("/v1/status-feed?limit=1000", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in feed["events"].as_array().unwrap() {
        out.entry(e["delivery_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["status"].as_str().unwrap().to_owned());
    }
    out
}

/// Subjects in the recipient's inbox.
async fn inbox(app: &TestApp, recipient: &str) -> Vec<String> {
    let (status, page) = app
        .get(
            "/mailbox/v1/messages?page_size=100",
            Some(&app.recipient_token(recipient)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect()
}

fn anna(app: &TestApp) -> String {
    app.recipient("registered").id.clone()
}

fn assert_first(body: &Value) -> String {
    assert_eq!(body["replayed"], false, "{body}");
    body["delivery_id"].as_str().expect("id").to_owned()
}

/// Exactly one delivery exists for the tenant: `id`, accepted then delivered,
/// and the recipient has exactly one message.
async fn assert_one_delivered(
    app: &TestApp,
    token: &str,
    id: &str,
    recipient: &str,
    subject: &str,
) {
    let view = app.wait_final(token, id).await;
    assert_eq!(view["status"], "delivered", "{view}");
    app.drain().await;
    let all = events(app, token).await;
    assert_eq!(all.len(), 1, "one delivery only: {all:?}");
    assert_eq!(
        all.get(id),
        Some(&vec!["accepted".to_owned(), "delivered".to_owned()]),
        "{all:?}"
    );
    assert_eq!(inbox(app, recipient).await, vec![subject.to_owned()]);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_header_answers_200_replayed_with_the_same_delivery()
{
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let mut delivery = app.delivery(sender, &to, "Kallelse");
    delivery.header.reference = None;
    let signed = app.sign(sender, delivery);

    let (status, first) = send_with_key(&app, &tenant.token, Some("key-123"), &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = assert_first(&first);

    let (status, again) = send_with_key(&app, &tenant.token, Some("key-123"), &signed).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["delivery_id"], id.as_str(), "{again}");

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;

    // A retry after delivery still answers the same delivery, now delivered.
    let (status, late) = send_with_key(&app, &tenant.token, Some("key-123"), &signed).await;
    assert_eq!(status, StatusCode::OK, "{late}");
    assert_eq!(late["replayed"], true, "{late}");
    assert_eq!(late["delivery_id"], id.as_str(), "{late}");
    assert_eq!(late["status"], "delivered", "{late}");
    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_reference_and_no_header_answers_200_replayed_with_the_same_delivery()
{
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let signed = app.sign(sender, app.delivery(sender, &to, "Kallelse"));
    assert!(signed.delivery.header.reference.is_some());

    let (status, first) = app.send(&tenant.token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = assert_first(&first);
    let (status, again) = app.send(&tenant.token, &signed).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["delivery_id"], id.as_str(), "{again}");

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_key_with_a_different_delivery_is_409_idempotency_key_reused_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let signed = app.sign(sender, app.delivery(sender, &to, "Kallelse"));
    let (status, first) = send_with_key(&app, &tenant.token, Some("key-1"), &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = assert_first(&first);

    // Different content under the same header key.
    let other = app.sign(sender, app.delivery(sender, &to, "Något annat"));
    let (status, body) = send_with_key(&app, &tenant.token, Some("key-1"), &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused", "{body}");

    // Nothing new was stored, and the key still answers the first delivery.
    let (status, again) = send_with_key(&app, &tenant.token, Some("key-1"), &signed).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["delivery_id"], id.as_str(), "{again}");

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_reference_with_a_different_delivery_is_409_idempotency_key_reused() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let signed = app.sign(sender, app.delivery(sender, &to, "Kallelse"));
    let (status, first) = app.send(&tenant.token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = assert_first(&first);

    let mut changed = app.delivery(sender, &to, "Något annat");
    changed.header.reference = signed.delivery.header.reference.clone();
    let (status, body) = app.send(&tenant.token, &app.sign(sender, changed)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused", "{body}");

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn two_concurrent_identical_submits_produce_one_delivery() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    for round in 0..5 {
        let subject = format!("Samtidig {round}");
        let signed = app.sign(sender, app.delivery(sender, &to, &subject));
        let (a, b) = tokio::join!(
            send_with_key(&app, &tenant.token, Some(&subject), &signed),
            send_with_key(&app, &tenant.token, Some(&subject), &signed),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::ACCEPTED],
            "round {round}: one creates, one replays: {} / {}",
            a.1,
            b.1
        );
        assert_eq!(a.1["delivery_id"], b.1["delivery_id"], "round {round}");
        assert_ne!(a.1["replayed"], b.1["replayed"], "round {round}");
    }
    app.drain().await;
    let all = events(&app, &tenant.token).await;
    assert_eq!(all.len(), 5, "{all:?}");
    for id in all.keys() {
        let view = app.wait_final(&tenant.token, id).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }
    let mut subjects = inbox(&app, &to).await;
    subjects.sort();
    assert_eq!(
        subjects,
        (0..5).map(|r| format!("Samtidig {r}")).collect::<Vec<_>>()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_same_key_for_two_tenants_or_two_senders_creates_independent_deliveries() {
    let mut app = TestApp::spawn().await;
    let (kommun, kommun_sender) = app.kommun();
    let formedlare = app.tenant("demoformedlare").clone();
    let to = anna(&app);
    let key = "delad-nyckel-1";

    let mut ids = Vec::new();
    for (token, sender, subject) in [
        (&kommun.token, kommun_sender, "Från kommunen"),
        (
            &formedlare.token,
            &formedlare.senders[0],
            "Från myndigheten",
        ),
        (&formedlare.token, &formedlare.senders[1], "Från verket"),
    ] {
        let mut delivery = app.delivery(sender, &to, subject);
        delivery.header.reference = Some(key.to_owned());
        let signed = app.sign(sender, delivery);
        let (status, body) = send_with_key(&app, token, Some(key), &signed).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{subject}: {body}");
        ids.push((token.clone(), assert_first(&body)));
    }
    let distinct: std::collections::BTreeSet<_> = ids.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    for (token, id) in &ids {
        let view = app.wait_final(token, id).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }
    assert_eq!(events(&app, &kommun.token).await.len(), 1);
    assert_eq!(events(&app, &formedlare.token).await.len(), 2);
    let mut subjects = inbox(&app, &to).await;
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["Från kommunen", "Från myndigheten", "Från verket"]
    );
    app.stop().await;
}

fn item(signed: &SignedDelivery, key: Option<&str>) -> Value {
    json!({ "delivery": signed.delivery, "signature": signed.signature, "idempotency_key": key })
}

#[tokio::test]
async fn a_batch_with_the_same_key_twice_creates_one_delivery_and_replays_the_second_item() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let signed = app.sign(sender, app.delivery(sender, &to, "Kallelse"));
    let other = app.sign(sender, app.delivery(sender, &to, "Annat"));
    let items = vec![
        item(&signed, Some("batch-key")),
        item(&other, None),
        item(&signed, Some("batch-key")),
    ];
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 3, "{body}");
    assert_eq!(body["rejected"], 0, "{body}");
    let results = &body["results"];
    assert_eq!(results[0]["replayed"], false, "{body}");
    assert_eq!(results[2]["replayed"], true, "{body}");
    assert_eq!(
        results[0]["delivery_id"], results[2]["delivery_id"],
        "{body}"
    );
    assert_ne!(
        results[0]["delivery_id"], results[1]["delivery_id"],
        "{body}"
    );

    app.drain().await;
    let all = events(&app, &tenant.token).await;
    assert_eq!(all.len(), 2, "{all:?}");
    for id in all.keys() {
        let view = app.wait_final(&tenant.token, id).await;
        assert_eq!(view["status"], "delivered", "{view}");
    }
    let mut subjects = inbox(&app, &to).await;
    subjects.sort();
    assert_eq!(subjects, vec!["Annat", "Kallelse"]);

    // The whole batch again: every item replays, nothing new.
    let items = vec![item(&signed, Some("batch-key")), item(&other, None)];
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["results"][0]["replayed"], true, "{body}");
    assert_eq!(body["results"][1]["replayed"], true, "{body}");
    assert_eq!(events(&app, &tenant.token).await.len(), 2);
    assert_eq!(inbox(&app, &to).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_reusing_a_key_for_different_content_rejects_that_item_with_idempotency_key_reused()
{
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let first = app.sign(sender, app.delivery(sender, &to, "Första"));
    let second = app.sign(sender, app.delivery(sender, &to, "Andra"));
    let items = vec![item(&first, Some("k")), item(&second, Some("k"))];
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    assert_eq!(
        body["results"][1]["error"]["code"], "idempotency_key_reused",
        "{body}"
    );
    assert_eq!(body["results"][1]["error"]["status"], 409, "{body}");
    let id = body["results"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_one_delivered(&app, &tenant.token, &id, &to, "Första").await;

    app.stop().await;
}

#[tokio::test]

async fn a_batch_items_refused_for_a_reused_key_count_as_rejected_in_the_batch_progress() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    let first = app.sign(sender, app.delivery(sender, &to, "Första"));
    let second = app.sign(sender, app.delivery(sender, &to, "Andra"));
    let items = vec![item(&first, Some("k")), item(&second, Some("k"))];
    let (status, body) = app
        .post(
            "/v1/batches",
            Some(&tenant.token),
            &json!({ "deliveries": items }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    let id = body["results"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = app.wait_final(&tenant.token, &id).await;
    assert_eq!(view["status"], "delivered", "{view}");

    // The batch's progress agrees with the answer to the POST.
    let batch_id = body["batch_id"].as_str().unwrap();
    let (status, progress) = app
        .get(&format!("/v1/batches/{batch_id}"), Some(&tenant.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{progress}");
    assert_eq!(progress["submitted"], 2, "{progress}");
    assert_eq!(progress["rejected"], 1, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 1, "{progress}");
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_over_255_characters_is_refused_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let to = anna(&app);
    // The delivery has a valid reference too: the header, when given, wins.
    let signed = app.sign(sender, app.delivery(sender, &to, "Kallelse"));
    let long = "k".repeat(256);
    let (status, body) = send_with_key(&app, &tenant.token, Some(&long), &signed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("idempotency_key")),
        "{body}"
    );
    assert!(events(&app, &tenant.token).await.is_empty());
    assert_eq!(inbox(&app, &to).await.len(), 0);

    // 255 is fine.
    let (status, body) = send_with_key(&app, &tenant.token, Some(&long[..255]), &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.stop().await;
}
