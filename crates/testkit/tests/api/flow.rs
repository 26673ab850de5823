//! The main flow: send, deliver with a signed receipt, read back.

use kuvert_crypto::signing::PublicKey;
use kuvert_mailbox::protocol::Receipt;
use kuvert_testkit::{TestApp, client};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn a_signed_message_with_a_pdf_is_delivered_with_a_signed_receipt_and_read_back() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let anna = app.recipient("registered").clone();
    let pdf = client::minimal_pdf("Beslut om bostadsbidrag");
    let signed = app
        .kommun_letter(&anna.id, "Beslut om bostadsbidrag")
        .attach(client::attachment("beslut.pdf", "application/pdf", &pdf))
        .signed();

    let (status, accepted) = app.send(&tenant.token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    let id = accepted["delivery_id"].as_str().unwrap();

    let view = app.wait_delivered(&tenant.token, id).await;
    let delivered_at = view["delivered_at"].as_str().unwrap();
    let receipt: Receipt = serde_json::from_value(view["receipt"].clone()).unwrap();
    assert_eq!(receipt.delivery_id, id);
    assert_eq!(receipt.recipient, anna.id);
    assert_eq!(receipt.delivered_at, delivered_at);

    // The receipt verifies with the operator's published receipt key, and
    // not once any field is changed.
    let operator = app
        .core_db()
        .operator(&kuvert_domain::ids::OperatorId::parse("kuvert-brevlada").unwrap())
        .await
        .unwrap()
        .unwrap();
    let key = PublicKey::from_base64(&operator.receipt_key).unwrap();
    receipt.verify(&key).expect("receipt verifies");
    let mut forged = receipt.clone();
    forged.delivered_at = "2020-01-01T00:00:00.000000Z".into();
    assert!(forged.verify(&key).is_err());

    // The recipient reads it back, with the attachment byte for byte.
    let token = app.recipient_token(&anna.id);
    let page = app.messages(&token, "").await;
    assert_eq!(page.total, 1);
    assert_eq!(page.unread, 1);
    let message = &page.messages[0];
    assert_eq!(message.subject, "Beslut om bostadsbidrag");
    assert_eq!(message.delivered_at, delivered_at);
    let message_id = &message.id;

    let (status, opened) = app.open_message(&token, message_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened["body"], "Brödtext för Beslut om bostadsbidrag");
    assert_eq!(opened["attachments"][0]["filename"], "beslut.pdf");
    let page = app.messages(&token, "").await;
    assert_eq!(page.unread, 0, "opening marks read");

    let path = format!("/mailbox/v1/messages/{message_id}/attachments/0");
    let download = app
        .request_raw(Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(download.content_type(), Some("application/pdf"));
    assert_eq!(download.bytes, pdf);
    app.stop().await;
}

#[tokio::test]
async fn unreachable_recipients_go_to_paper_or_are_not_delivered() {
    let mut app = TestApp::spawn().await;
    let (tenant, _) = app.kommun();
    let cecilia = app.recipient("not_registered").id.clone();
    let david = app.recipient("refuses_demokommun").id.clone();

    let with_paper = app.kommun_letter(&cecilia, "Kallelse").paper_fallback();
    let (status, body) = app.send(&tenant.token, &with_paper.signed()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "paper");

    let without = app.kommun_signed(&cecilia, "Kallelse");
    let (_, body) = app.send(&tenant.token, &without).await;
    assert_eq!(body["status"], "not_delivered");
    let view = app
        .wait_final(&tenant.token, body["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(view["reason"], "not_registered");

    // David refused this sender: paper when asked for, never his mailbox.
    let refused = app.kommun_letter(&david, "Kallelse").paper_fallback();
    let (_, body) = app.send(&tenant.token, &refused.signed()).await;
    assert_eq!(body["status"], "paper");
    let view = app
        .wait_final(&tenant.token, body["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(view["reason"], "sender_refused");
    assert_eq!(app.inbox(&david).await.total, 0);

    // The paper queue holds exactly the two paper deliveries.
    let paper: i64 = app
        .query("kuvert.db", "SELECT COUNT(*) FROM paper_queue")
        .await;
    assert_eq!(paper, 2);
    app.stop().await;
}
