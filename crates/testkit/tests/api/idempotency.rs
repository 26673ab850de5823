//! Retries are safe: the same idempotency key (the `Idempotency-Key` header,
//! or `header.reference` without it) answers the first delivery and creates
//! nothing; a key reused for different content is refused; keys are scoped
//! per tenant and sender.

use kuvert_domain::status::DeliveryStatus;
use kuvert_testkit::{TestApp, assert_problem, batch_item};
use reqwest::StatusCode;
use serde_json::Value;

fn anna(app: &TestApp) -> String {
    app.recipient("registered").id.clone()
}

/// A first send: 202, not a replay; returns the delivery id.
fn assert_first(answer: &(StatusCode, Value)) -> String {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["replayed"], false, "{body}");
    body["delivery_id"].as_str().expect("id").to_owned()
}

/// A retry: 200, a replay of delivery `id`; returns the body.
fn assert_replay(answer: &(StatusCode, Value), id: &str) -> Value {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    assert_eq!(body["replayed"], true, "{body}");
    assert_eq!(body["delivery_id"], id, "{body}");
    body.clone()
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
    app.wait_delivered(token, id).await;
    app.drain().await;
    let all = app.statuses_by_delivery(token).await;
    assert_eq!(all.len(), 1, "one delivery only: {all:?}");
    assert_eq!(
        all.get(id),
        Some(&vec![DeliveryStatus::Accepted, DeliveryStatus::Delivered]),
        "{all:?}"
    );
    assert_eq!(
        app.inbox(recipient).await.subjects(),
        vec![subject.to_owned()]
    );
}

/// Each of `ids` is delivered; the recipient's subjects, sorted.
async fn all_delivered<'a>(
    app: &TestApp,
    token: &str,
    ids: impl IntoIterator<Item = &'a String>,
    recipient: &str,
) -> Vec<String> {
    for id in ids {
        app.wait_delivered(token, id).await;
    }
    let mut subjects = app.inbox(recipient).await.subjects();
    subjects.sort();
    subjects
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_header_answers_200_replayed_with_the_same_delivery()
{
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let signed = app
        .kommun_letter(&to, "Kallelse")
        .with(|d| d.header.reference = None)
        .signed();

    let id = assert_first(&app.send_with_key(&tenant.token, "key-123", &signed).await);
    assert_replay(
        &app.send_with_key(&tenant.token, "key-123", &signed).await,
        &id,
    );

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;

    // A retry after delivery still answers the same delivery, now delivered.
    let late = assert_replay(
        &app.send_with_key(&tenant.token, "key-123", &signed).await,
        &id,
    );
    assert_eq!(late["status"], "delivered", "{late}");
    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_reference_and_no_header_answers_200_replayed_with_the_same_delivery()
{
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let signed = app.kommun_signed(&to, "Kallelse");
    assert!(signed.delivery.header.reference.is_some());

    let id = assert_first(&app.send(&tenant.token, &signed).await);
    assert_replay(&app.send(&tenant.token, &signed).await, &id);

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_key_with_a_different_delivery_is_409_idempotency_key_reused_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let signed = app.kommun_signed(&to, "Kallelse");
    let id = assert_first(&app.send_with_key(&tenant.token, "key-1", &signed).await);

    // Different content under the same header key.
    let other = app.kommun_signed(&to, "Något annat");
    assert_problem(
        &app.send_with_key(&tenant.token, "key-1", &other).await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );

    // Nothing new was stored, and the key still answers the first delivery.
    let (status, again) = app.send_with_key(&tenant.token, "key-1", &signed).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["delivery_id"], id.as_str(), "{again}");

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_reference_with_a_different_delivery_is_409_idempotency_key_reused() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let signed = app.kommun_signed(&to, "Kallelse");
    let id = assert_first(&app.send(&tenant.token, &signed).await);

    let changed = app
        .kommun_letter(&to, "Något annat")
        .with(|d| d.header.reference = signed.delivery.header.reference.clone())
        .signed();
    assert_problem(
        &app.send(&tenant.token, &changed).await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );

    assert_one_delivered(&app, &tenant.token, &id, &to, "Kallelse").await;
    app.stop().await;
}

#[tokio::test]
async fn two_concurrent_identical_submits_produce_one_delivery() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    for round in 0..5 {
        let subject = format!("Samtidig {round}");
        let signed = app.kommun_signed(&to, &subject);
        let (a, b) = tokio::join!(
            app.send_with_key(&tenant.token, &subject, &signed),
            app.send_with_key(&tenant.token, &subject, &signed),
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
    let all = app.statuses_by_delivery(&tenant.token).await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert_eq!(
        all_delivered(&app, &tenant.token, all.keys(), &to).await,
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
        let signed = app
            .letter(sender, &to, subject)
            .with(|d| d.header.reference = Some(key.to_owned()))
            .signed();
        let (status, body) = app.send_with_key(token, key, &signed).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{subject}: {body}");
        ids.push((token.clone(), assert_first(&(status, body))));
    }
    let distinct: std::collections::BTreeSet<_> = ids.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    for (token, id) in &ids {
        app.wait_delivered(token, id).await;
    }
    assert_eq!(app.statuses_by_delivery(&kommun.token).await.len(), 1);
    assert_eq!(app.statuses_by_delivery(&formedlare.token).await.len(), 2);
    let mut subjects = app.inbox(&to).await.subjects();
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["Från kommunen", "Från myndigheten", "Från verket"]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_with_the_same_key_twice_creates_one_delivery_and_replays_the_second_item() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let signed = app.kommun_signed(&to, "Kallelse");
    let other = app.kommun_signed(&to, "Annat");
    let items = [
        batch_item(&signed, Some("batch-key")),
        batch_item(&other, None),
        batch_item(&signed, Some("batch-key")),
    ];
    let body = app.batch_accepted(&tenant.token, &items).await;
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
    let all = app.statuses_by_delivery(&tenant.token).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all_delivered(&app, &tenant.token, all.keys(), &to).await,
        vec!["Annat", "Kallelse"]
    );

    // The whole batch again: every item replays, nothing new.
    let items = [
        batch_item(&signed, Some("batch-key")),
        batch_item(&other, None),
    ];
    let body = app.batch_accepted(&tenant.token, &items).await;
    assert_eq!(body["results"][0]["replayed"], true, "{body}");
    assert_eq!(body["results"][1]["replayed"], true, "{body}");
    assert_eq!(app.statuses_by_delivery(&tenant.token).await.len(), 2);
    assert_eq!(app.inbox(&to).await.messages.len(), 2);
    app.stop().await;
}

/// A batch of two deliveries to Anna under the same key `k`: "Första", then
/// "Andra". Returns the answer (asserted 202).
async fn two_under_one_key(app: &TestApp, token: &str, to: &str) -> Value {
    let first = app.kommun_signed(to, "Första");
    let second = app.kommun_signed(to, "Andra");
    let items = [
        batch_item(&first, Some("k")),
        batch_item(&second, Some("k")),
    ];
    app.batch_accepted(token, &items).await
}

#[tokio::test]
async fn a_batch_reusing_a_key_for_different_content_rejects_that_item_with_idempotency_key_reused()
{
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let body = two_under_one_key(&app, &tenant.token, &to).await;
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["rejected"], 1, "{body}");
    assert_eq!(
        body["results"][1]["error"]["code"], "idempotency_key_reused",
        "{body}"
    );
    assert_eq!(body["results"][1]["error"]["status"], 409, "{body}");
    let id = body["results"][0]["delivery_id"].as_str().unwrap();
    assert_one_delivered(&app, &tenant.token, id, &to, "Första").await;

    app.stop().await;
}

#[tokio::test]
async fn a_batch_items_refused_for_a_reused_key_count_as_rejected_in_the_batch_progress() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    let body = two_under_one_key(&app, &tenant.token, &to).await;
    assert_eq!(body["rejected"], 1, "{body}");
    let id = body["results"][0]["delivery_id"].as_str().unwrap();
    app.wait_delivered(&tenant.token, id).await;

    // The batch's progress agrees with the answer to the POST.
    let batch_id = body["batch_id"].as_str().unwrap();
    let progress = app.batch_view(&tenant.token, batch_id).await;
    assert_eq!(progress["submitted"], 2, "{progress}");
    assert_eq!(progress["rejected"], 1, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 1, "{progress}");
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_over_255_characters_is_refused_and_stores_nothing() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let to = anna(&app);
    // The delivery has a valid reference too: the header, when given, wins.
    let signed = app.kommun_signed(&to, "Kallelse");
    let long = "k".repeat(256);
    let (status, body) = app.send_with_key(&tenant.token, &long, &signed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("idempotency_key")),
        "{body}"
    );
    assert!(app.statuses_by_delivery(&tenant.token).await.is_empty());
    assert_eq!(app.inbox(&to).await.messages.len(), 0);

    // 255 is fine.
    let (status, body) = app
        .send_with_key(&tenant.token, &long[..255], &signed)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.stop().await;
}
