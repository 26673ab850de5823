//! A rough end-to-end throughput figure (the full benchmark against the
//! machine's own limit is a later issue): N signed 2 KiB deliveries posted
//! in batches of 1000 over loopback HTTP to a fresh instance, until every
//! one is delivered to the mailbox with a signed receipt.
//!
//!     cargo run --release -p kuvert-testkit --example throughput -- 20000
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kuvert_testkit::TestApp;
use serde_json::json;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let token = tenant.token.clone();
    let recipients: Vec<String> = app
        .demo
        .recipients
        .iter()
        .filter(|r| r.state == "registered")
        .map(|r| r.id.clone())
        .collect();
    let body = "x".repeat(2048);
    let sign_started = Instant::now();
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut d = app.delivery(
                sender,
                &recipients[i % recipients.len()],
                &format!("Meddelande {i}"),
            );
            d.messages[0].body.body = body.clone();
            let signed = app.sign(sender, d);
            json!({ "delivery": signed.delivery, "signature": signed.signature })
        })
        .collect();
    eprintln!(
        "signed {n} deliveries (client side) in {:.2?}",
        sign_started.elapsed()
    );

    let started = Instant::now();
    for chunk in items.chunks(1000) {
        let (status, answer) = app
            .post("/v1/batches", Some(&token), &json!({ "deliveries": chunk }))
            .await;
        assert!(status.is_success(), "{answer}");
        assert_eq!(answer["rejected"], 0);
    }
    let accepted = started.elapsed();
    app.drain().await;
    let delivered = started.elapsed();
    let count = app.mailbox_db().mailbox_delivery_count().await.unwrap();
    assert_eq!(count, n as i64);
    println!(
        "{n} deliveries: accepted (durable) in {:.2?} = {:.0}/s; all delivered with receipts in {:.2?} = {:.0}/s",
        accepted,
        n as f64 / accepted.as_secs_f64(),
        delivered,
        n as f64 / delivered.as_secs_f64()
    );
    app.stop().await;
}
