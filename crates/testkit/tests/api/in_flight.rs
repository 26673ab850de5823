//! What changes while a delivery waits in the queue (here: while its tenant
//! is suspended) is checked again before it is sent: a recipient who
//! deregistered or now refuses the sender gets nothing (`not_delivered`,
//! the intake's words), and mail signed with a key revoked since fails
//! (`sender_key_revoked`) without reaching the mailbox.

use kuvert_testkit::proxy::{Fault, FaultProxy};
use kuvert_testkit::{ADMIN_TOKEN, TestApp};
use reqwest::StatusCode;
use serde_json::json;

async fn admin(app: &TestApp, path: &str) {
    let (status, body) = app.post(path, Some(ADMIN_TOKEN), &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
}

async fn suspend(app: &TestApp) {
    admin(app, "/admin/v1/tenants/demokommun/suspend").await;
}

async fn resume(app: &TestApp) {
    admin(app, "/admin/v1/tenants/demokommun/resume").await;
}

/// Connections the relay opened to the mailbox that went through.
fn passed(proxy: &FaultProxy) -> usize {
    proxy
        .attempts()
        .iter()
        .filter(|a| a.fault == Fault::Pass)
        .count()
}

/// Anna deregisters and Bertil refuses the sender while the tenant is
/// suspended; David, who accepted it again, still gets his letter. After
/// the resume, one pass asks the register for all three at once.
#[tokio::test]
async fn a_held_delivery_to_a_recipient_who_left_or_refuses_the_sender_is_not_delivered() {
    let app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let anna = app.person("Anna Andersson");
    let bertil = app.person("Bertil Berg");
    let david = app.person("David Dahl");
    let refusal = format!("/register/v1/me/refused-senders/{}", sender.id);
    let (status, body) = app
        .delete(&refusal, Some(&app.registration_token(&david)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    app.set_mailbox_open(false);
    let to_anna = app.send_ok(&anna, "Till Anna").await;
    let to_bertil = app.send_ok(&bertil, "Till Bertil").await;
    let to_david = app.send_ok(&david, "Till David").await;
    suspend(&app).await;
    app.set_mailbox_open(true);

    let (status, body) = app
        .delete("/register/v1/me", Some(&app.registration_token(&anna)))
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = app
        .put(&refusal, Some(&app.registration_token(&bertil)), &json!({}))
        .await;
    assert!(status.is_success(), "{status} {body}");
    resume(&app).await;

    let view = app.wait_final(&tenant.token, &to_anna).await;
    assert_eq!(
        (&view["status"], &view["reason"]),
        (&json!("not_delivered"), &json!("not_registered")),
        "{view}"
    );
    let view = app.wait_final(&tenant.token, &to_bertil).await;
    assert_eq!(
        (&view["status"], &view["reason"]),
        (&json!("not_delivered"), &json!("sender_refused")),
        "{view}"
    );
    app.wait_delivered(&tenant.token, &to_david).await;
    assert_eq!(app.mailbox_delivery_count().await, 1, "David's only");
    assert_eq!(app.outbox_len().await, 0);
    let statuses = app.statuses_by_delivery(&tenant.token).await;
    assert_eq!(
        statuses[&to_anna].last().map(|s| s.as_str()),
        Some("not_delivered"),
        "{statuses:?}"
    );
    let audited: i64 = app
        .query(
            "kuvert.db",
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'delivery.not_delivered' AND subject IN ('{to_anna}', '{to_bertil}')"
            ),
        )
        .await;
    assert_eq!(audited, 2);
}

/// A key revoked while its mail is held: the relay fails that mail with
/// `sender_key_revoked` and sends nothing (the mailbox would refuse it too,
/// with its own reason, had it been sent).
#[tokio::test]
async fn held_mail_signed_with_a_key_revoked_since_fails_without_being_sent() {
    let proxy = FaultProxy::start(Fault::Reset).await.unwrap();
    let app = TestApp::spawn_behind(&proxy).await;
    let (tenant, sender) = app.kommun();
    let anna = app.person("Anna Andersson");
    let held = app.send_ok(&anna, "Spärrad nyckel").await;
    suspend(&app).await;
    let (status, body) = app
        .delete(
            &format!("/admin/v1/tenants/{}/keys/{}", tenant.tenant, sender.key_id),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    proxy.set(Fault::Pass);
    resume(&app).await;

    let view = app.wait_final(&tenant.token, &held).await;
    assert_eq!(
        (&view["status"], &view["reason"]),
        (&json!("failed"), &json!("sender_key_revoked")),
        "{view}"
    );
    assert_eq!(passed(&proxy), 0, "nothing reached the mailbox");
    assert_eq!(app.mailbox_delivery_count().await, 0);
    assert_eq!(app.outbox_len().await, 0);
}
