//! Retries that end: a delivery the mailbox never takes ends `failed` with
//! `retries_exhausted: <last error>` after `max_attempts` attempts, not
//! before; a pass cut short by a stopped process counts as an attempt, so
//! a delivery that crashes the relay each time is not retried forever;
//! a delivery alone in flight at two crashes in a row is quarantined, and a
//! refusal signed by the operator is final.

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

/// Sends one message with the mailbox closed, waits for a first attempt and
/// stops the instance: the delivery is queued, not leased.
async fn queued_then_stopped(app: &mut TestApp, subject: &str) -> String {
    app.set_mailbox_open(false);
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, subject).await;
    eventually("a first attempt", PATIENCE, || async {
        (app.query::<i64>("kuvert.db", "SELECT COALESCE(MAX(attempts), 0) FROM outbox")
            .await
            >= 1)
            .then_some(())
    })
    .await;
    app.stop().await;
    id
}

/// In flight among others at a crash: the culprit is unknown, so the
/// delivery is sent alone after the restart, and (being innocent) arrives.
#[tokio::test]
async fn a_delivery_in_flight_at_a_crash_is_sent_alone_and_delivered() {
    let mut app = TestApp::spawn().await;
    let id = queued_then_stopped(&mut app, "Mitt i ett pass").await;
    app.write_sql("kuvert.db", "UPDATE outbox SET leased = 1, solo = 0")
        .await;
    app.restart().await;
    let token = app.kommun().0.token.clone();
    app.wait_delivered(&token, &id).await;
    assert_eq!(app.mailbox_delivery_count().await, 1);
}

/// The relay stopped while this delivery was the only one in flight, for
/// the second time in a row (the first crash alone is in `solo_crashes`):
/// it is the culprit, quarantined at the restart, not sent again.
#[tokio::test]
async fn a_delivery_alone_in_flight_at_two_crashes_in_a_row_is_quarantined() {
    let mut app = TestApp::spawn().await;
    let id = queued_then_stopped(&mut app, "Giftigt brev").await;
    app.write_sql(
        "kuvert.db",
        "UPDATE outbox SET leased = 1, solo = 1, suspect = 1, solo_crashes = 1",
    )
    .await;
    // The mailbox is open after the restart: only the quarantine keeps the
    // delivery from going out.
    app.restart().await;
    assert_failed_with(
        &app,
        &id,
        "quarantined: the relay stopped 2 times in a row while this delivery was the only one in flight",
    )
    .await;
}

/// One crash while alone is not enough (a kill can come at any moment):
/// the delivery is sent first thing after the restart, alone, and arrives.
#[tokio::test]
async fn one_crash_while_alone_does_not_quarantine() {
    let mut app = TestApp::spawn().await;
    let id = queued_then_stopped(&mut app, "Otur en gång").await;
    app.write_sql(
        "kuvert.db",
        "UPDATE outbox SET leased = 1, solo = 1, suspect = 1",
    )
    .await;
    app.restart().await;
    let token = app.kommun().0.token.clone();
    app.wait_delivered(&token, &id).await;
    assert_eq!(app.mailbox_delivery_count().await, 1);
}

/// A refusal signed by the operator is final: `failed` with the operator's
/// code at once, not retried (here the seal no longer verifies, as when
/// the queued row was changed).
#[tokio::test]
async fn a_signed_refusal_by_the_mailbox_fails_the_delivery_at_once() {
    let app = TestApp::spawn().await;
    app.set_mailbox_open(false);
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Ändrad i kön").await;
    // The first attempt over (refused with 503) and its lease let go, so no
    // pass holds the blob read before the change below.
    eventually("the first attempt", PATIENCE, || async {
        let settled: i64 = app
            .query(
                "kuvert.db",
                "SELECT COUNT(*) FROM outbox WHERE attempts >= 1 AND leased = 0",
            )
            .await;
        (settled == 1).then_some(())
    })
    .await;
    let sealed: Vec<u8> = app
        .query("kuvert.db", "SELECT sealed FROM outbox LIMIT 1")
        .await;
    let mut sealed: Value = serde_json::from_slice(&sealed).unwrap();
    sealed["received_at"] = "2020-01-01T00:00:00.000000Z".into();
    let hex: String = serde_json::to_vec(&sealed)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    app.write_sql("kuvert.db", &format!("UPDATE outbox SET sealed = X'{hex}'"))
        .await;
    app.set_mailbox_open(true);
    assert_failed_with(&app, &id, "rejected_by_operator:bad_seal").await;
    let detail: String = app
        .query(
            "kuvert.db",
            &format!(
                "SELECT detail FROM audit_log WHERE action = 'delivery.failed' AND subject = '{id}'"
            ),
        )
        .await;
    assert!(detail.contains("rejected_by_operator:bad_seal"), "{detail}");
}
