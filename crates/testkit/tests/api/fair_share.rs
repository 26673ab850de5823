//! One tenant's load does not starve another: authentication, key, status
//! and progress reads go to the read side, so a writer busy with someone
//! else's large batch (or a lookup's audit commit) does not hold them up.

use kuvert_testkit::{TestApp, batch_items};
use reqwest::StatusCode;

#[tokio::test]
async fn sender_reads_answer_while_the_core_writer_is_busy() {
    let app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let delivery_id = app.send_ok(&anna, "Före").await;
    app.wait_delivered(&token, &delivery_id).await;
    let batch = app
        .batch_accepted(&token, &batch_items(&[app.kommun_signed(&anna, "Bunt")]))
        .await;
    let batch_id = batch["batch_id"].as_str().unwrap().to_owned();
    app.drain().await;

    // Someone else's long transaction holds the one write connection. Had
    // these reads gone through it, each would wait out the pool's 30 s and
    // answer 503.
    let held = app.core_db().hold_writer().await.unwrap();
    let (status, view) = app.delivery_view(&token, &delivery_id).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "delivered");
    let (status, progress) = app
        .get(&format!("/v1/batches/{batch_id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{progress}");
    assert_eq!(progress["submitted"], 1);
    drop(held);
}

#[tokio::test]
async fn recipient_reads_answer_while_the_mailbox_writer_is_busy() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let delivery_id = app.send_ok(&anna, "Läs mig").await;
    app.wait_delivered(&app.kommun().0.token, &delivery_id)
        .await;

    let held = app.mailbox_db().hold_writer().await.unwrap();
    let page = app.inbox(&anna).await;
    assert_eq!(page.total, 1);
    assert_eq!(page.messages[0].subject, "Läs mig");
    drop(held);
}

#[tokio::test]
async fn a_large_batch_of_one_tenant_does_not_stop_another_tenants_single_sends() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let formedlare = app.tenant("demoformedlare").clone();
    let sender = &formedlare.senders[0];
    let large: Vec<_> = (0..2_000)
        .map(|i| {
            app.sign(
                sender,
                app.delivery(sender, &anna, &format!("Massutskick {i}")),
            )
        })
        .collect();
    let items = batch_items(&large);
    let kommun_token = app.kommun().0.token.clone();
    let singles: Vec<_> = (0..10)
        .map(|i| app.kommun_signed(&anna, &format!("Ensam {i}")))
        .collect();

    let (batch, answers) = tokio::join!(app.batch(&formedlare.token, &items), async {
        let mut answers = Vec::new();
        for signed in &singles {
            answers.push(app.send(&kommun_token, signed).await);
        }
        answers
    });
    assert_eq!(batch.0, StatusCode::ACCEPTED, "{}", batch.1);
    assert_eq!(batch.1["accepted"], 2_000);
    for (status, body) in answers {
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

#[tokio::test]
async fn send_requests_beyond_the_intake_budget_wait_then_get_503_having_cost_nothing() {
    // A budget of 1 KiB: any send request takes all of it.
    let app = TestApp::spawn_with(|s| {
        s.intake_budget.bytes = 1024;
        s.intake_budget.wait = std::time::Duration::from_millis(300);
    })
    .await;
    let anna = app.recipient("registered").id.clone();
    let kommun_token = app.kommun().0.token.clone();
    let formedlare = app.tenant("demoformedlare").clone();
    let sender = &formedlare.senders[0];
    let first = batch_items(&[app.sign(sender, app.delivery(sender, &anna, "Först"))]);
    let second = app.kommun_signed(&anna, "Sedan");

    // The first request holds the budget while it waits to store.
    let held = app.core_db().hold_writer().await.unwrap();
    let (first_answer, (busy, retry_after)) =
        tokio::join!(app.batch(&formedlare.token, &first), async {
            tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
            let busy = app.send_raw(&kommun_token, None, &second).await;
            drop(held);
            let retry_after = busy.header("retry-after").map(str::to_owned);
            (busy.parts(), retry_after)
        });
    assert_eq!(busy.0, StatusCode::SERVICE_UNAVAILABLE, "{}", busy.1);
    assert_eq!(busy.1["code"], "intake_busy");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(first_answer.0, StatusCode::ACCEPTED, "{}", first_answer.1);
    let stored: i64 = app
        .query(
            "kuvert.db",
            "SELECT COUNT(*) FROM deliveries WHERE tenant_id = 'demokommun'",
        )
        .await;
    assert_eq!(stored, 0, "the refused request stored nothing");
    // With the budget free again, the same request goes through.
    let (status, body) = app.send(&kommun_token, &second).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
