//! Revocation stops work in flight: a credential revoked, a tenant suspended
//! or a key revoked while a request is being checked stops that request in
//! the transaction that would store it, not only the next request.
//!
//! The window is made wide on purpose: the test holds the one write
//! connection, so the request passes authentication and verification and
//! then waits to store; meanwhile the revocation is written straight to the
//! database file (as a concurrent administrator's commit would land), and
//! the writer is let go.

use kuvert_testkit::{TestApp, batch_items, credential_id};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Time for the request to get past authentication and verification and
/// queue for the writer. Should it be slower, it is refused at
/// authentication instead, with another code (`unauthorized`), and the test
/// says so rather than passing.
const REACH_THE_STORE: Duration = Duration::from_millis(1500);

async fn accepted_rows(app: &TestApp) -> i64 {
    app.query("kuvert.db", "SELECT COUNT(*) FROM deliveries")
        .await
}

#[tokio::test]
async fn a_credential_revoked_during_a_request_stores_nothing() {
    let app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let items = batch_items(
        &(0..50)
            .map(|i| app.kommun_signed(&anna, &format!("Bunt {i}")))
            .collect::<Vec<_>>(),
    );
    let held = app.core_db().hold_writer().await.unwrap();
    let (answer, ()) = tokio::join!(app.batch(&token, &items), async {
        tokio::time::sleep(REACH_THE_STORE).await;
        let id = credential_id(&token);
        app.write_sql(
            "kuvert.db",
            &format!(
                "UPDATE credentials SET revoked_at = '2026-01-01T00:00:00Z' WHERE id = '{id}'"
            ),
        )
        .await;
        drop(held);
    });
    let (status, body) = answer;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "credential_revoked", "{body}");
    assert_eq!(accepted_rows(&app).await, 0, "nothing stored");
}

#[tokio::test]
async fn a_tenant_suspended_during_a_request_stores_nothing() {
    let app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let signed = app.kommun_signed(&anna, "Ensam");
    let held = app.core_db().hold_writer().await.unwrap();
    let (answer, ()) = tokio::join!(app.send(&token, &signed), async {
        tokio::time::sleep(REACH_THE_STORE).await;
        app.write_sql(
            "kuvert.db",
            "UPDATE tenants SET status = 'suspended' WHERE id = 'demokommun'",
        )
        .await;
        drop(held);
    });
    let (status, body) = answer;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "tenant_suspended", "{body}");
    assert_eq!(accepted_rows(&app).await, 0, "nothing stored");
}

#[tokio::test]
async fn a_key_revoked_during_a_batch_refuses_its_items_and_stores_the_rest() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let formedlare = app.tenant("demoformedlare").clone();
    let (kept, revoked) = (&formedlare.senders[0], &formedlare.senders[1]);
    let signed: Vec<_> = (0..20)
        .map(|i| {
            let sender = if i % 2 == 0 { kept } else { revoked };
            app.sign(sender, app.delivery(sender, &anna, &format!("Bunt {i}")))
        })
        .collect();
    let items = batch_items(&signed);
    let held = app.core_db().hold_writer().await.unwrap();
    let (answer, ()) = tokio::join!(app.batch(&formedlare.token, &items), async {
        tokio::time::sleep(REACH_THE_STORE).await;
        app.write_sql(
            "kuvert.db",
            &format!(
                "UPDATE sender_keys SET revoked_at = '2026-01-01T00:00:00Z' WHERE key_id = '{}'",
                revoked.key_id
            ),
        )
        .await;
        drop(held);
    });
    let (status, body) = answer;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 10, "{body}");
    let results = body["results"].as_array().unwrap();
    for (i, result) in results.iter().enumerate() {
        if i % 2 == 0 {
            assert!(result["delivery_id"].is_string(), "{result}");
        } else {
            assert_eq!(result["error"]["code"], "signature_key_revoked", "{result}");
        }
    }
    assert_eq!(accepted_rows(&app).await, 10);
    let progress: Value = app
        .batch_view(&formedlare.token, body["batch_id"].as_str().unwrap())
        .await;
    assert_eq!(progress["submitted"], 20, "{progress}");
    assert_eq!(progress["rejected"], 10, "{progress}");
}
