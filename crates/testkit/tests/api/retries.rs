//! Retries that end: a delivery the mailbox never takes ends `failed` with
//! `retries_exhausted: <last error>` after `max_attempts` attempts, not
//! before; a pass cut short by a stopped process counts as an attempt, so
//! a delivery that crashes the relay each time is not retried forever.

use kuvert_domain::status::DeliveryStatus;
use kuvert_testkit::{PATIENCE, TestApp, eventually};
use serde_json::Value;
use std::time::Duration;

/// Three attempts, 200 ms apart (long enough to see each attempt count).
fn three_attempts(settings: &mut kuvert::app::Settings) {
    settings.retry.base = Duration::from_millis(200);
    settings.retry.max = Duration::from_millis(200);
    settings.retry.max_attempts = 3;
}

/// The `attempts` the delivery's `delivery.failed` audit entry records.
async fn failed_audit_attempts(app: &TestApp, id: &str) -> i64 {
    let detail: String = app
        .query(
            "kuvert.db",
            &format!(
                "SELECT detail FROM audit_log WHERE action = 'delivery.failed' AND subject = '{id}'"
            ),
        )
        .await;
    let detail: Value = serde_json::from_str(&detail).expect("JSON detail");
    detail["attempts"].as_i64().expect("attempts in the detail")
}

/// Asserts the delivery ended `failed` with `reason`, seen by the sender in
/// the status view and the feed, and nothing is left in the queue.
async fn assert_failed_with(app: &TestApp, id: &str, reason: &str) {
    let token = app.kommun().0.token.clone();
    let view = app.wait_final(&token, id).await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["reason"], reason, "{view}");
    let statuses = app.statuses_by_delivery(&token).await;
    assert_eq!(
        statuses.get(id).map(Vec::as_slice).and_then(<[_]>::last),
        Some(&DeliveryStatus::Failed),
        "{statuses:?}"
    );
    assert_eq!(app.outbox_len().await, 0);
    assert_eq!(app.mailbox_delivery_count().await, 0);
}

/// A mailbox that always answers 503: the delivery is still `accepted`
/// after two attempts, and `failed` with the last error after the third.
#[tokio::test]
async fn a_delivery_the_mailbox_never_takes_fails_after_max_attempts() {
    let app = TestApp::spawn_with(three_attempts).await;
    app.set_mailbox_open(false);
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Aldrig fram").await;

    // Two attempts made, and the delivery is still accepted (one query:
    // the row and the status at the same instant).
    let status = eventually("two attempts are counted", PATIENCE, || async {
        app.query_all::<String>(
            "kuvert.db",
            &format!(
                "SELECT d.status FROM outbox o JOIN deliveries d ON d.id = o.delivery_id
                 WHERE o.delivery_id = '{id}' AND o.attempts = 2"
            ),
        )
        .await
        .into_iter()
        .next()
    })
    .await;
    assert_eq!(status, "accepted");

    assert_failed_with(&app, &id, "retries_exhausted: operator answered HTTP 503").await;
    assert_eq!(failed_audit_attempts(&app, &id).await, 3);
}

/// A worker that stopped mid-pass (its lease released at the next start)
/// used an attempt: a delivery whose third attempt never finished is
/// failed at start-up, not sent a fourth time.
#[tokio::test]
async fn a_pass_cut_short_by_a_stopped_process_counts_as_an_attempt() {
    let mut app = TestApp::spawn_with(three_attempts).await;
    app.set_mailbox_open(false);
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Kraschar relän").await;
    eventually("a first attempt", PATIENCE, || async {
        (app.query::<i64>("kuvert.db", "SELECT COALESCE(MAX(attempts), 0) FROM outbox")
            .await
            >= 1)
            .then_some(())
    })
    .await;
    app.stop().await;
    // As the process left it had it died sending a third time.
    app.write_sql(
        "kuvert.db",
        "UPDATE outbox SET leased = 1, attempts = 2, next_attempt_at = '2999-01-01T00:00:00.000000Z'",
    )
    .await;
    // The mailbox is open again after the restart: only the limit keeps
    // the delivery from going out.
    app.restart().await;
    assert_failed_with(
        &app,
        &id,
        "retries_exhausted: the relay stopped during this attempt (lease released at start-up)",
    )
    .await;
    assert_eq!(failed_audit_attempts(&app, &id).await, 3);
}
