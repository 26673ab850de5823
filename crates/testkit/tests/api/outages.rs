//! The mailbox operator away (gone, hanging) during a bulk send and back,
//! and an answer lost between the mailbox and the relay. The relay reaches
//! the mailbox through a fault proxy (`kuvert_testkit::proxy`).

use kuvert_testkit::proxy::{Fault, FaultProxy};
use kuvert_testkit::{PATIENCE, TestApp, batch_items, eventually};

/// Sends `count` messages to Anna in one batch; returns the delivery ids.
async fn bulk_send(app: &TestApp, count: usize, subject: &str) -> Vec<String> {
    let (tenant, _) = app.kommun();
    let anna = app.recipient("registered").id.clone();
    let signed: Vec<_> = (0..count)
        .map(|i| app.kommun_signed(&anna, &format!("{subject} {i}")))
        .collect();
    let body = app
        .batch_accepted(&tenant.token, &batch_items(&signed))
        .await;
    let ids: Vec<String> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|item| item["delivery_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), count, "{body}");
    ids
}

/// Waits until the proxy has seen `n` connection attempts.
async fn wait_for_attempts(proxy: &FaultProxy, n: usize) {
    eventually("the relay keeps trying", PATIENCE, || async {
        (proxy.attempts().len() >= n).then_some(())
    })
    .await;
}

/// Every id is `delivered`, and the mailbox holds exactly one message for
/// each, and none else.
async fn assert_each_delivered_once(app: &TestApp, ids: &[String]) {
    let token = app.kommun().0.token.clone();
    for id in ids {
        app.wait_delivered(&token, id).await;
    }
    let messages = app
        .query::<i64>("mailbox.db", "SELECT COUNT(*) FROM mailbox_messages")
        .await;
    let distinct = app
        .query::<i64>(
            "mailbox.db",
            "SELECT COUNT(DISTINCT delivery_id) FROM mailbox_messages",
        )
        .await;
    assert_eq!(messages, ids.len() as i64, "one message per delivery");
    assert_eq!(distinct, ids.len() as i64);
}

async fn outage_then_recovery(fault: Fault) {
    let proxy = FaultProxy::start(fault).await.expect("proxy");
    let app = TestApp::spawn_behind(&proxy).await;
    let token = app.kommun().0.token.clone();
    let ids = bulk_send(&app, 40, &format!("Under avbrott {fault:?}")).await;

    // Several failed attempts, each backing off; meanwhile the sender sees
    // `accepted` and the mailbox holds nothing.
    wait_for_attempts(&proxy, 4).await;
    for id in &ids {
        let (_, view) = app.delivery_view(&token, id).await;
        assert_eq!(view["status"], "accepted", "{view}");
    }
    assert_eq!(
        app.query::<i64>("mailbox.db", "SELECT COUNT(*) FROM mailbox_messages")
            .await,
        0
    );
    let last_error = app
        .query::<Option<String>>("kuvert.db", "SELECT last_error FROM outbox LIMIT 1")
        .await
        .unwrap_or_default();
    let expected = if fault == Fault::Hang {
        "timeout"
    } else {
        "connection"
    };
    assert!(
        last_error.contains(expected) || last_error.contains("transport"),
        "{fault:?}: {last_error}"
    );
    let attempts = app
        .query::<i64>("kuvert.db", "SELECT MIN(attempts) FROM outbox")
        .await;
    assert!(attempts >= 1, "attempts are counted");

    proxy.set(Fault::Pass);
    assert_each_delivered_once(&app, &ids).await;
    let schedule: Vec<String> = proxy
        .attempts()
        .iter()
        .map(|a| format!("{:.0} ms {:?}", a.at.as_secs_f64() * 1000.0, a.fault))
        .collect();
    eprintln!("{fault:?} retry schedule: {}", schedule.join(", "));
}

#[tokio::test]
async fn a_mailbox_that_is_gone_holds_a_bulk_send_as_accepted_then_all_arrive_once() {
    outage_then_recovery(Fault::Reset).await;
}

#[tokio::test]
async fn a_mailbox_that_hangs_past_the_timeout_holds_a_bulk_send_then_all_arrive_once() {
    outage_then_recovery(Fault::Hang).await;
}

#[tokio::test]
async fn an_answer_lost_after_the_mailbox_stored_the_delivery_is_redelivered_and_gets_the_first_receipt()
 {
    let proxy = FaultProxy::start(Fault::SwallowAnswer)
        .await
        .expect("proxy");
    let mut app = TestApp::spawn_behind(&proxy).await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Svaret försvinner").await;

    // The mailbox stores it and answers; the relay never hears the answer.
    eventually("something reaches the mailbox", PATIENCE, || async {
        (proxy.swallowed() > 0).then_some(())
    })
    .await;
    let first_delivered_at = app
        .query::<Option<String>>(
            "mailbox.db",
            &format!("SELECT delivered_at FROM mailbox_deliveries WHERE delivery_id = '{id}'"),
        )
        .await
        .expect("the mailbox stored it");
    let (_, view) = app.delivery_view(&token, &id).await;
    assert_eq!(view["status"], "accepted", "the relay has no receipt yet");

    // The relay process goes away and comes back (as after a crash), and
    // the line works again: it redelivers.
    app.restart().await;
    proxy.set_upstream(&app.url);
    proxy.set(Fault::Pass);
    let view = app.wait_delivered(&token, &id).await;
    assert_eq!(
        view["delivered_at"], first_delivered_at,
        "the first receipt, not a second delivery time"
    );
    assert_eq!(
        view["receipt"]["delivered_at"], first_delivered_at,
        "{view}"
    );
    assert_each_delivered_once(&app, std::slice::from_ref(&id)).await;
    app.stop().await;
}
