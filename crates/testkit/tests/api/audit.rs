//! The audit log shows any tampering, and names the first bad entry.

use kuvert_store::audit::AuditProblem;
use kuvert_store::{Db, Schema};
use kuvert_testkit::TestApp;
use sqlx::Connection as _;

/// An instance with some history, stopped (a final checkpoint is signed),
/// then one more entry appended after it, as a live system would have.
async fn stopped_app_with_history() -> TestApp {
    let mut app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    for i in 0..3 {
        let id = app.send_ok(&anna, &format!("Revision {i}")).await;
        app.wait_final(&token, &id).await;
    }
    app.stop().await;
    app
}

async fn execute(app: &TestApp, sql: &str) {
    let path = app.data_dir().join("kuvert.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn verify(app: &TestApp) -> kuvert_store::audit::AuditReport {
    let db = Db::open(&app.data_dir().join("kuvert.db"), Schema::Core)
        .await
        .unwrap();
    let key = kuvert::keys::Keys::load_or_create(app.data_dir())
        .unwrap()
        .audit
        .public_key();
    let report = db.verify_audit(&key).await.unwrap();
    db.close().await;
    report
}

#[tokio::test]
async fn an_untouched_log_verifies_with_the_public_key() {
    let app = stopped_app_with_history().await;
    let report = verify(&app).await;
    assert_eq!(report.problem, None);
    assert!(
        report.entries >= 9,
        "sends, deliveries and set-up are all logged: {report:?}"
    );
    assert!(report.checkpoints >= 1);
    assert_eq!(report.unsigned_tail, 0, "stop signs a final checkpoint");
}

#[tokio::test]
async fn an_edited_field_is_found() {
    let app = stopped_app_with_history().await;
    execute(
        &app,
        "UPDATE audit_log SET detail = '{\"status\":\"delivered\"}' WHERE seq = 5",
    )
    .await;
    assert_eq!(
        verify(&app).await.problem,
        Some(AuditProblem::HashMismatch { seq: 5 })
    );
}

#[tokio::test]
async fn an_edit_with_every_later_hash_recomputed_is_caught_by_the_signed_checkpoint() {
    let app = stopped_app_with_history().await;
    // A forger who knows the hash formula rewrites entry 4 and recomputes the
    // chain from there; only the checkpoint signature can catch it.
    let path = app.data_dir().join("kuvert.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET action = 'delivery.hidden' WHERE seq = 4")
        .execute(&mut conn)
        .await
        .unwrap();
    #[allow(clippy::type_complexity)]
    let rows: Vec<(i64, String, Option<String>, String, String, String, String)> = sqlx::query_as(
        "SELECT seq, at, tenant_id, actor, action, subject, detail FROM audit_log ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut prev = "0".repeat(64);
    for (seq, at, tenant, actor, action, subject, detail) in rows {
        let canonical =
            serde_json::json!([seq, at, tenant, actor, action, subject, detail]).to_string();
        let hash = kuvert_crypto::digest::sha256_hex(format!("{prev}\n{canonical}").as_bytes());
        sqlx::query("UPDATE audit_log SET hash = ? WHERE seq = ?")
            .bind(&hash)
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        prev = hash;
    }
    conn.close().await.unwrap();
    let problem = verify(&app).await.problem;
    assert!(
        matches!(problem, Some(AuditProblem::CheckpointMismatch { .. })),
        "{problem:?}"
    );
}

#[tokio::test]
async fn a_deleted_entry_is_found() {
    let app = stopped_app_with_history().await;
    execute(&app, "DELETE FROM audit_log WHERE seq = 3").await;
    assert_eq!(
        verify(&app).await.problem,
        Some(AuditProblem::Gap {
            expected: 3,
            found: 4
        })
    );
}

#[tokio::test]
async fn an_inserted_entry_is_found() {
    let app = stopped_app_with_history().await;
    // Shift entries up to make room, then insert a forged entry at 3.
    execute(
        &app,
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3;
         UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1003;
         INSERT INTO audit_log (seq, at, tenant_id, actor, action, subject, detail, hash)
           VALUES (3, '2026-01-01T00:00:00.000000Z', NULL, 'x', 'forged', 'x', '{}', 'abc');",
    )
    .await;
    assert_eq!(
        verify(&app).await.problem,
        Some(AuditProblem::HashMismatch { seq: 3 })
    );
}

#[tokio::test]
async fn two_reordered_entries_are_found() {
    let app = stopped_app_with_history().await;
    execute(
        &app,
        "UPDATE audit_log SET seq = -1 WHERE seq = 4;
         UPDATE audit_log SET seq = 4 WHERE seq = 5;
         UPDATE audit_log SET seq = 5 WHERE seq = -1;",
    )
    .await;
    assert_eq!(
        verify(&app).await.problem,
        Some(AuditProblem::HashMismatch { seq: 4 })
    );
}

#[tokio::test]
async fn a_truncated_tail_is_found() {
    let app = stopped_app_with_history().await;
    execute(
        &app,
        "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - 2",
    )
    .await;
    let problem = verify(&app).await.problem;
    assert!(
        matches!(problem, Some(AuditProblem::Truncated { .. })),
        "{problem:?}"
    );
}

#[tokio::test]
async fn a_replaced_checkpoint_signature_is_found() {
    let app = stopped_app_with_history().await;
    let forged =
        kuvert_crypto::signing::SigningKey::generate().sign(b"kuvert/v1/audit-checkpoint", b"1:x");
    execute(
        &app,
        &format!(
            "UPDATE audit_checkpoints SET signature = '{}'",
            forged.to_base64()
        ),
    )
    .await;
    let problem = verify(&app).await.problem;
    assert!(
        matches!(problem, Some(AuditProblem::BadCheckpointSignature { .. })),
        "{problem:?}"
    );
}

/// The same, through the command line an auditor runs: `kuvert audit verify`
/// exits non-zero and names the first bad entry.
#[tokio::test]
async fn the_audit_verify_command_fails_and_names_the_first_bad_entry() {
    let app = stopped_app_with_history().await;
    let cli = |data: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kuvert-crashtest"))
            .args(["node", "audit", "verify", "--data"])
            .arg(data)
            .output()
            .unwrap()
    };
    let clean = cli(app.data_dir());
    assert!(clean.status.success(), "{clean:?}");

    execute(
        &app,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4",
    )
    .await;
    let tampered = cli(app.data_dir());
    let stdout = String::from_utf8_lossy(&tampered.stdout);
    assert!(!tampered.status.success(), "{stdout}");
    assert!(
        stdout.contains("kuvert.db: TAMPERED — entry 4:"),
        "names the file and the first bad entry: {stdout}"
    );
    assert!(stdout.contains("mailbox.db: OK"), "{stdout}");
}
