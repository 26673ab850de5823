//! The audit log shows any tampering, and names the first bad entry.

use kuvert_store::audit::{AuditKeys, AuditProblem};
use kuvert_store::{Db, Schema};
use kuvert_testkit::{TestApp, credential_id, eventually};

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
    save_keys_document(&app).await;
    app.stop().await;
    app
}

/// The installation's checkpoint key alone, no witness.
fn only(key: &kuvert_crypto::signing::PublicKey) -> AuditKeys<'_> {
    AuditKeys {
        checkpoint: std::slice::from_ref(key),
        witness: None,
    }
}

async fn verify(app: &TestApp) -> kuvert_store::audit::AuditReport {
    let db = Db::open(&app.data_dir().join("kuvert.db"), Schema::Core)
        .await
        .unwrap();
    let key = kuvert::keys::Keys::load_existing(app.data_dir())
        .unwrap()
        .audit
        .public_key();
    let report = db.verify_audit(only(&key)).await.unwrap();
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
    app.write_sql(
        "kuvert.db",
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
    app.rewrite_audit_entry(4).await;
    let problem = verify(&app).await.problem;
    assert!(
        matches!(problem, Some(AuditProblem::CheckpointMismatch { .. })),
        "{problem:?}"
    );
}

#[tokio::test]
async fn a_deleted_entry_is_found() {
    let app = stopped_app_with_history().await;
    app.write_sql("kuvert.db", "DELETE FROM audit_log WHERE seq = 3")
        .await;
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
    app.write_sql(
        "kuvert.db",
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
    app.write_sql(
        "kuvert.db",
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
    app.write_sql(
        "kuvert.db",
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
    app.write_sql(
        "kuvert.db",
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
    let keys = app.data_dir().join("published-keys.json");
    let cli = |data: &std::path::Path| audit_verify_cli(data, &["--keys", keys.to_str().unwrap()]);
    let clean = cli(app.data_dir());
    assert!(clean.status.success(), "{clean:?}");

    app.write_sql(
        "kuvert.db",
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4",
    )
    .await;
    let tampered = cli(app.data_dir());
    let stdout = String::from_utf8_lossy(&tampered.stdout);
    assert!(!tampered.status.success(), "{stdout}");
    assert!(
        stdout.contains("kuvert.db: TAMPERED — log core/") && stdout.contains(": entry 4:"),
        "names the file, its log and the first bad entry: {stdout}"
    );
    assert!(stdout.contains("mailbox.db: OK"), "{stdout}");
}

/// Every row of the tables a register or tenancy change touches, and the
/// audit log, as text (`quote` keeps blobs and NULLs apart).
async fn register_and_tenancy_rows(app: &TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "tenants",
        "credentials",
        "senders",
        "sender_keys",
        "recipients",
        "refused_senders",
        "audit_log",
    ] {
        let columns: Vec<String> = app
            .query_all(
                "kuvert.db",
                &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
            )
            .await;
        let quoted: Vec<String> = columns.iter().map(|c| format!("quote({c})")).collect();
        let sql = format!(
            "SELECT '{table}: ' || {} FROM {table} ORDER BY 1",
            quoted.join(" || ',' || ")
        );
        rows.extend(app.query_all::<String>("kuvert.db", &sql).await);
    }
    rows
}

/// A change and its audit entry are one transaction: while the audit log
/// refuses every insert, each change the platform operator or a recipient
/// can make fails and leaves nothing behind (no change without its entry).
/// With the log writable again, the very same requests succeed.
#[tokio::test]
async fn a_change_whose_audit_entry_cannot_be_written_fails_and_leaves_nothing_behind() {
    let mut app = TestApp::spawn().await;
    let formedlare = app.tenant("demoformedlare").clone();
    let credential = credential_id(&formedlare.token);
    let key = formedlare.senders[0].key_id.clone();
    let kommun_sender = app.kommun().1.id.clone();
    let new_key = kuvert_crypto::signing::SigningKey::generate()
        .public_key()
        .to_base64();
    let anna = app.recipient("registered").clone();
    let cecilia = app.recipient("not_registered").clone();
    let david = app.recipient("refuses_demokommun").clone();
    let admin = kuvert_testkit::ADMIN_TOKEN;
    use reqwest::Method;
    use serde_json::json;
    #[rustfmt::skip]
    let changes: Vec<(&str, Method, String, &str, Option<serde_json::Value>)> = vec![
        ("tenant create", Method::POST, "/admin/v1/tenants".into(), admin, Some(json!({"id": "nyttbolag", "name": "Nytt bolag"}))),
        ("tenant suspend", Method::POST, "/admin/v1/tenants/demokommun/suspend".into(), admin, None),
        ("tenant quota", Method::PUT, "/admin/v1/tenants/demokommun/quota".into(), admin, Some(json!({"max_per_day": 10}))),
        ("sender add", Method::POST, "/admin/v1/tenants/demokommun/senders".into(), admin, Some(json!({"id": "2021005489", "name": "Nya verket"}))),
        ("credential create", Method::POST, "/admin/v1/tenants/demokommun/credentials".into(), admin, Some(json!({"label": "second"}))),
        ("credential revoke", Method::DELETE, format!("/admin/v1/tenants/demoformedlare/credentials/{credential}"), admin, None),
        ("key add", Method::POST, "/admin/v1/tenants/demokommun/keys".into(), admin, Some(json!({"sender": kommun_sender, "public_key": new_key}))),
        ("key revoke", Method::DELETE, format!("/admin/v1/tenants/demoformedlare/keys/{key}"), admin, None),
        ("recipient register", Method::PUT, "/register/v1/me".into(), &cecilia.registration_token, Some(json!({"operator_id": "kuvert-brevlada"}))),
        ("recipient deregister", Method::DELETE, "/register/v1/me".into(), &anna.registration_token, None),
        ("recipient refuses a sender", Method::PUT, format!("/register/v1/me/refused-senders/{kommun_sender}"), &anna.registration_token, None),
        ("recipient accepts a sender again", Method::DELETE, format!("/register/v1/me/refused-senders/{kommun_sender}"), &david.registration_token, None),
    ];

    app.write_sql(
        "kuvert.db",
        "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log
         BEGIN SELECT RAISE(ABORT, 'audit down'); END",
    )
    .await;
    let mut leaks = Vec::new();
    for (what, method, path, token, body) in &changes {
        let before = register_and_tenancy_rows(&app).await;
        let (status, text) = app
            .request(method.clone(), path, Some(token), body.as_ref())
            .await;
        let after = register_and_tenancy_rows(&app).await;
        let added: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
        let removed: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
        if !status.is_server_error() || !added.is_empty() || !removed.is_empty() {
            leaks.push(format!(
                "{what}: answered {status} ({text}); rows added {added:?}, removed {removed:?}"
            ));
        }
    }
    assert!(
        leaks.is_empty(),
        "with the audit log down, these changes did not fail cleanly:\n{}",
        leaks.join("\n")
    );

    // The same requests are valid ones: with the log writable, each works.
    app.write_sql("kuvert.db", "DROP TRIGGER audit_down").await;
    for (what, method, path, token, body) in &changes {
        let (status, text) = app
            .request(method.clone(), path, Some(token), body.as_ref())
            .await;
        assert!(status.is_success(), "{what}: {status} {text}");
    }
    let report = app
        .core_db()
        .verify_audit(only(&app.audit_public_key()))
        .await
        .unwrap();
    assert_eq!(report.problem, None);
    app.stop().await;
}

fn hour_between_checkpoints(settings: &mut kuvert::app::Settings) {
    settings.audit_checkpoint_every = std::time::Duration::from_secs(3600);
}

/// Audit entries of no consequence, written straight to a chain.
async fn write_entries(db: &Db, n: i64) {
    for i in 0..n {
        let subject = format!("filler-{i}");
        db.append_audit(
            time::OffsetDateTime::now_utc(),
            &kuvert_store::audit::AuditEntry {
                tenant: None,
                actor: "test",
                action: "test.filler",
                subject: &subject,
                detail: "{}",
            },
        )
        .await
        .unwrap();
    }
}

/// With an hour between timed checkpoints, one is signed anyway as soon as
/// `AUDIT_CHECKPOINT_AFTER_ENTRIES` entries are unsigned.
#[tokio::test]
async fn a_checkpoint_is_signed_after_so_many_entries_without_waiting_for_the_interval() {
    let mut app = TestApp::spawn_with(hour_between_checkpoints).await;
    let key = app.audit_public_key();
    let before = app.core_db().verify_audit(only(&key)).await.unwrap();
    assert!(
        before.unsigned_tail < kuvert::app::AUDIT_CHECKPOINT_AFTER_ENTRIES,
        "{before:?}"
    );
    write_entries(app.core_db(), kuvert::app::AUDIT_CHECKPOINT_AFTER_ENTRIES).await;
    let (shared, key) = (&app, &key);
    let what = format!(
        "a checkpoint after {} entries",
        kuvert::app::AUDIT_CHECKPOINT_AFTER_ENTRIES
    );
    let report = eventually(&what, std::time::Duration::from_secs(15), || async move {
        let report = shared.core_db().verify_audit(only(key)).await.unwrap();
        assert_eq!(report.problem, None);
        (report.checkpoints > before.checkpoints).then_some(report)
    })
    .await;
    assert!(
        report.unsigned_tail < kuvert::app::AUDIT_CHECKPOINT_AFTER_ENTRIES,
        "{report:?}"
    );
    app.stop().await;
}

/// A run that ends without a clean stop signs no last checkpoint; the next
/// start signs what it left, before anything else.
#[tokio::test]
async fn what_a_crashed_run_left_unsigned_is_signed_at_the_next_start() {
    let mut app = TestApp::spawn_with(hour_between_checkpoints).await;
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    let id = app.send_ok(&anna, "Före kraschen").await;
    app.wait_final(&token, &id).await;
    let key = app.audit_public_key();
    for db in [app.core_db(), app.mailbox_db()] {
        let report = db.verify_audit(only(&key)).await.unwrap();
        assert!(report.unsigned_tail > 0, "{report:?}");
    }
    app.crash();
    app.restart().await;
    for db in [app.core_db(), app.mailbox_db()] {
        let report = db.verify_audit(only(&key)).await.unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.unsigned_tail, 0, "{report:?}");
    }
    app.stop().await;
}

// ---- Attacks by someone who can write the database but holds no key
// (issue 16). Each runs the attack and checks that the node notices it.

/// `kuvert audit verify` (the real command line), with the arguments given.
fn audit_verify_cli(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kuvert-crashtest"))
        .args(["node", "audit", "verify", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// The installation's published keys document, saved to a file.
async fn save_keys_document(app: &TestApp) -> std::path::PathBuf {
    let (status, document) = app.get("/register/v1/keys", None).await;
    assert!(status.is_success(), "{document}");
    let path = app.data_dir().join("published-keys.json");
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    path
}

async fn checkpoints_from(app: &TestApp, seq: i64) -> i64 {
    app.query(
        "kuvert.db",
        &format!("SELECT COUNT(*) FROM audit_checkpoints WHERE seq >= {seq}"),
    )
    .await
}

/// Attack (a): delete the checkpoints from entry 4 on, rewrite entry 4 and
/// every later hash, and let the checkpointer run (the start-up checkpoint).
/// It must not sign the rewritten log, and `/ready` must say why.
#[tokio::test]
async fn a_rewritten_log_with_its_checkpoints_removed_is_never_signed() {
    let mut app = stopped_app_with_history().await;
    app.write_sql("kuvert.db", "DELETE FROM audit_checkpoints WHERE seq >= 4")
        .await;
    app.rewrite_audit_entry(4).await;
    app.restart().await;
    let (status, answer) = app.get("/ready", None).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["code"], "audit_log_not_verified", "{answer}");
    // Later entries are still written (the log keeps growing) but never signed.
    let anna = app.recipient("registered").id.clone();
    app.send_ok(&anna, "Efter förfalskningen").await;
    app.stop().await;
    assert_eq!(
        checkpoints_from(&app, 4).await,
        0,
        "signed over a rewritten log"
    );
}

/// Attack (b): put back an old copy of the core database. The node notices
/// at start (its checkpoint file is ahead of the database) and signs nothing.
#[tokio::test]
async fn a_restored_old_copy_of_the_database_is_noticed_at_start() {
    let mut app = stopped_app_with_history().await;
    let db = app.data_dir().join("kuvert.db");
    let old = app.data_dir().join("kuvert.db.old");
    std::fs::copy(&db, &old).unwrap();
    let old_checkpoints = checkpoints_from(&app, 0).await;
    app.restart().await;
    let anna = app.recipient("registered").id.clone();
    app.send_ok(&anna, "Efter säkerhetskopian").await;
    app.stop().await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(app.data_dir().join(format!("kuvert.db{suffix}")));
    }
    std::fs::rename(&old, &db).unwrap();
    app.restart().await;
    let (status, answer) = app.get("/ready", None).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["code"], "audit_log_not_verified", "{answer}");
    app.send_ok(&anna, "På den gamla kopian").await;
    app.stop().await;
    assert_eq!(
        checkpoints_from(&app, 0).await,
        old_checkpoints,
        "signed over a database behind its own checkpoint file"
    );
}

/// Attack (c): the trust anchor of `audit verify` is the published public
/// key, never the private key file beside the database it checks.
#[tokio::test]
async fn audit_verify_uses_the_published_public_key_and_refuses_without_one() {
    let mut app = TestApp::spawn().await;
    let keys = save_keys_document(&app).await;
    app.stop().await;
    let without = audit_verify_cli(app.data_dir(), &[]);
    assert!(
        !without.status.success(),
        "verified with the private key in the data folder: {without:?}"
    );
    // A copy of the databases alone, without the key folder, verifies with
    // the published key, and the check creates nothing there.
    let copy = tempfile::tempdir().unwrap();
    for file in ["kuvert.db", "mailbox.db"] {
        std::fs::copy(app.data_dir().join(file), copy.path().join(file)).unwrap();
    }
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing(copy.path());
    let with = audit_verify_cli(copy.path(), &["--keys", keys.to_str().unwrap()]);
    assert!(with.status.success(), "{with:?}");
    assert_eq!(listing(copy.path()), before, "audit verify wrote something");
}

/// Attack (d): the mailbox database's log and checkpoints (signed with the
/// same installation key) put into the core database must not verify as
/// the core's log.
#[tokio::test]
async fn the_mailbox_logs_checkpoints_in_the_core_database_do_not_verify() {
    let app = stopped_app_with_history().await;
    let keys = app.data_dir().join("published-keys.json");
    let mailbox = app.data_dir().join("mailbox.db");
    app.write_sql(
        "kuvert.db",
        &format!(
            "ATTACH DATABASE '{}' AS mb;
             DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM mb.audit_log;
             DELETE FROM audit_checkpoints;
             INSERT INTO audit_checkpoints SELECT * FROM mb.audit_checkpoints;",
            mailbox.display()
        ),
    )
    .await;
    let out = audit_verify_cli(app.data_dir(), &["--keys", keys.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("kuvert.db: TAMPERED"), "{stdout}");
}
