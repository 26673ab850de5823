//! The main flow: send, deliver with a signed receipt, read back.

use kuvert_crypto::signing::PublicKey;
use kuvert_mailbox::protocol::Receipt;
use kuvert_testkit::{TestApp, client};
use reqwest::StatusCode;

#[tokio::test]
async fn a_signed_message_with_a_pdf_is_delivered_with_a_signed_receipt_and_read_back() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.recipient("registered").clone();
    let pdf = client::minimal_pdf("Beslut om bostadsbidrag");
    let mut delivery = app.delivery(sender, &anna.id, "Beslut om bostadsbidrag");
    delivery.messages[0].attachments.push(client::attachment(
        "beslut.pdf",
        "application/pdf",
        &pdf,
    ));
    let signed = app.sign(sender, delivery);

    let (status, accepted) = app.send(&tenant.token, &signed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    let id = accepted["delivery_id"].as_str().unwrap();

    let view = app.wait_final(&tenant.token, id).await;
    assert_eq!(view["status"], "delivered", "{view}");
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
    let (status, page) = app.get("/mailbox/v1/messages", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1);
    assert_eq!(page["unread"], 1);
    let message = &page["messages"][0];
    assert_eq!(message["subject"], "Beslut om bostadsbidrag");
    assert_eq!(message["delivered_at"], delivered_at);
    let message_id = message["id"].as_str().unwrap();

    let (status, opened) = app
        .get(&format!("/mailbox/v1/messages/{message_id}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened["body"], "Brödtext för Beslut om bostadsbidrag");
    assert_eq!(opened["attachments"][0]["filename"], "beslut.pdf");
    let (_, page) = app.get("/mailbox/v1/messages", Some(&token)).await;
    assert_eq!(page["unread"], 0, "opening marks read");

    let bytes = app
        .http
        .get(format!(
            "{}/mailbox/v1/messages/{message_id}/attachments/0",
            app.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.headers()["content-type"], "application/pdf");
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), pdf.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn unreachable_recipients_go_to_paper_or_are_not_delivered() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let cecilia = app.recipient("not_registered").id.clone();
    let david = app.recipient("refuses_demokommun").id.clone();

    let mut with_paper = app.delivery(sender, &cecilia, "Kallelse");
    with_paper.paper_fallback = true;
    let (status, body) = app.send(&tenant.token, &app.sign(sender, with_paper)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "paper");

    let without = app.delivery(sender, &cecilia, "Kallelse");
    let (_, body) = app.send(&tenant.token, &app.sign(sender, without)).await;
    assert_eq!(body["status"], "not_delivered");
    let view = app
        .wait_final(&tenant.token, body["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(view["reason"], "not_registered");

    // David refused this sender: paper when asked for, never his mailbox.
    let mut refused = app.delivery(sender, &david, "Kallelse");
    refused.paper_fallback = true;
    let (_, body) = app.send(&tenant.token, &app.sign(sender, refused)).await;
    assert_eq!(body["status"], "paper");
    let view = app
        .wait_final(&tenant.token, body["delivery_id"].as_str().unwrap())
        .await;
    assert_eq!(view["reason"], "sender_refused");
    let (_, page) = app
        .get("/mailbox/v1/messages", Some(&app.recipient_token(&david)))
        .await;
    assert_eq!(page["total"], 0);

    // The paper queue holds exactly the two paper deliveries.
    let paper: i64 = app
        .query("kuvert.db", "SELECT COUNT(*) FROM paper_queue")
        .await;
    assert_eq!(paper, 2);
    app.stop().await;
}
