//! The audit witness: a second party countersigns each checkpoint only when
//! it extends the last one, so a database writer (even one who also
//! controls the node's data folder) cannot rewrite or roll back the log
//! without the witness and `audit verify --witness` noticing.

use kuvert::audit_log::{CheckpointRecord, WitnessConfig};
use kuvert::witness::{RunningWitness, WitnessSettings};
use kuvert_crypto::signing::{PublicKey, SigningKey};
use kuvert_store::audit::{AuditKeys, Checkpoint, Cosignature, NO_PREVIOUS_CHECKPOINT};
use kuvert_testkit::{TestApp, assert_problem, eventually};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

async fn start_witness(
    dir: &Path,
    listen: SocketAddr,
    logs: &[(String, PublicKey)],
) -> RunningWitness {
    let mut settings = WitnessSettings::new(dir.to_path_buf(), listen);
    settings.logs = logs.iter().cloned().collect::<BTreeMap<_, _>>();
    kuvert::witness::start(settings).await.unwrap()
}

/// An instance whose two logs are witnessed (the witness pinned to their
/// log ids and the audit key), with a checkpoint every second.
async fn witnessed_app(witness_dir: &Path) -> (TestApp, RunningWitness) {
    let mut app = TestApp::spawn().await;
    let key = app.audit_public_key();
    let logs = vec![
        (app.core_db().audit_log_id().await.unwrap().unwrap(), key),
        (app.mailbox_db().audit_log_id().await.unwrap().unwrap(), key),
    ];
    let witness = start_witness(witness_dir, "127.0.0.1:0".parse().unwrap(), &logs).await;
    let config = WitnessConfig {
        url: witness.url.clone(),
        key: witness.public_key,
    };
    app.restart_with(move |settings| {
        settings.witness = Some(config.clone());
        settings.audit_checkpoint_every = Duration::from_secs(1);
    })
    .await;
    (app, witness)
}

async fn send_some(app: &TestApp, n: usize) {
    let token = app.kommun().0.token.clone();
    let anna = app.recipient("registered").id.clone();
    for i in 0..n {
        let id = app.send_ok(&anna, &format!("Bevittnat {i}")).await;
        app.wait_final(&token, &id).await;
    }
}

async fn witness_latest(witness: &RunningWitness, log: &str) -> (StatusCode, Value) {
    let answer = reqwest::get(format!("{}/witness/v1/logs/{log}/latest", witness.url))
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// `kuvert audit verify` with the witness; on a blocking thread, so the
/// witness (on this test's runtime) can answer it.
async fn verify_cli(data: &Path, keys: &Path, witness: &RunningWitness) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kuvert-crashtest"));
    command
        .args(["node", "audit", "verify", "--data"])
        .arg(data)
        .arg("--keys")
        .arg(keys)
        .args(["--witness-key", &witness.public_key.to_base64()])
        .args(["--witness", &witness.url]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn save_keys(app: &TestApp) -> std::path::PathBuf {
    let (status, document) = app.get("/register/v1/keys", None).await;
    assert!(status.is_success());
    let path = app.data_dir().join("published-keys.json");
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn every_checkpoint_is_countersigned_and_verify_checks_the_witness() {
    let witness_dir = tempfile::tempdir().unwrap();
    let (mut app, witness) = witnessed_app(witness_dir.path()).await;
    send_some(&app, 2).await;
    let keys = save_keys(&app).await;
    let log = app.core_db().audit_log_id().await.unwrap().unwrap();
    app.stop().await;

    let (status, latest) = witness_latest(&witness, &log).await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    let record: CheckpointRecord = serde_json::from_value(latest).unwrap();
    let db = kuvert_store::Db::open_read_only(&app.data_dir().join("kuvert.db"))
        .await
        .unwrap();
    let audit_key = kuvert::keys::Keys::load_existing(app.data_dir())
        .unwrap()
        .audit
        .public_key();
    let report = db
        .verify_audit(AuditKeys {
            checkpoint: std::slice::from_ref(&audit_key),
            witness: Some(&witness.public_key),
        })
        .await
        .unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.unsigned_tail, 0);
    assert!(report.cosigned >= 1, "{report:?}");
    assert_eq!(
        db.audit_checkpoint(record.checkpoint.seq).await.unwrap(),
        Some(record.checkpoint.clone()),
        "the witness's latest is the database's newest checkpoint"
    );
    record
        .cosignature
        .unwrap()
        .verify(&record.checkpoint, &witness.public_key)
        .unwrap();
    db.close().await;

    let out = verify_cli(app.data_dir(), &keys, &witness).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the witness's latest checkpoint"),
        "{out:?}"
    );
    witness.stop().await;
}

/// Attack (a) by someone who controls the whole data folder: delete the
/// checkpoints from entry 4 on, rewrite the entries and their hashes, and
/// delete the node's checkpoint file too. The node signs a new chain, the
/// witness refuses it as a fork, the node stops signing and says so, and
/// `audit verify --witness` fails.
#[tokio::test]
async fn a_rewritten_log_is_refused_by_the_witness_and_fails_verify() {
    let witness_dir = tempfile::tempdir().unwrap();
    let (mut app, witness) = witnessed_app(witness_dir.path()).await;
    send_some(&app, 2).await;
    let keys = save_keys(&app).await;
    app.stop().await;

    // Every checkpoint goes, with the node's own file: nothing on this host
    // remembers the old history (which checkpoints a start-up signed before
    // entry 4 depends on timing, so none is kept).
    app.write_sql("kuvert.db", "DELETE FROM audit_checkpoints")
        .await;
    app.rewrite_audit_entry(4).await;
    std::fs::remove_file(app.data_dir().join("audit").join("core.jsonl")).unwrap();
    // The forged log verifies on its own: only the witness can tell.
    app.restart().await;
    let shared = &app;
    eventually(
        "the node to stop signing",
        Duration::from_secs(20),
        || async move {
            let (status, answer) = shared.get("/ready", None).await;
            (answer["code"] == "audit_log_not_verified").then_some(status)
        },
    )
    .await;
    // A few checkpointer ticks: the refused checkpoint is not sent again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.stop().await;
    let out = verify_cli(app.data_dir(), &keys, &witness).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("kuvert.db: TAMPERED") && stdout.contains("witness's latest checkpoint"),
        "{stdout}"
    );
    let refused = std::fs::read_dir(witness_dir.path().join("refused"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 1, "only the core log was forked");
    assert_eq!(
        refused[0].lines().count(),
        1,
        "the fork is kept once, and the halted node does not send it again"
    );
    witness.stop().await;
}

/// Attack (b) with the whole data folder restored from an old backup
/// (database and checkpoint file agree): the start-up check passes, but the
/// witness refuses the next checkpoint, and `audit verify --witness` finds
/// the database behind the witness.
#[tokio::test]
async fn a_restored_old_data_folder_is_caught_by_the_witness() {
    let witness_dir = tempfile::tempdir().unwrap();
    let (mut app, witness) = witnessed_app(witness_dir.path()).await;
    send_some(&app, 1).await;
    let keys = save_keys(&app).await;
    app.stop().await;
    let backup = tempfile::tempdir().unwrap();
    copy_state(app.data_dir(), backup.path());
    app.restart().await;
    send_some(&app, 2).await;
    app.stop().await;
    copy_state(backup.path(), app.data_dir());

    let out = verify_cli(app.data_dir(), &keys, &witness).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("kuvert.db: TAMPERED"), "{stdout}");

    app.restart().await;
    send_some(&app, 1).await;
    let shared = &app;
    eventually(
        "the witness to refuse",
        Duration::from_secs(20),
        || async move {
            let (_, answer) = shared.get("/ready", None).await;
            (answer["code"] == "audit_log_not_verified").then_some(())
        },
    )
    .await;
    app.stop().await;
    witness.stop().await;
}

/// The databases and the checkpoint files, as a backup holds them.
fn copy_state(from: &Path, to: &Path) {
    for file in ["kuvert.db", "mailbox.db"] {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(to.join(format!("{file}{suffix}")));
        }
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    std::fs::create_dir_all(to.join("audit")).unwrap();
    for file in ["core.jsonl", "mailbox.jsonl"] {
        let source = from.join("audit").join(file);
        if source.exists() {
            std::fs::copy(source, to.join("audit").join(file)).unwrap();
        }
    }
}

/// While the witness is down, checkpoints queue; once it is back they are
/// sent in order and every one is countersigned.
#[tokio::test]
async fn checkpoints_queue_while_the_witness_is_down_and_are_sent_in_order() {
    let witness_dir = tempfile::tempdir().unwrap();
    let (mut app, witness) = witnessed_app(witness_dir.path()).await;
    let listen: SocketAddr = witness.url.trim_start_matches("http://").parse().unwrap();
    let key = app.audit_public_key();
    let logs = vec![
        (app.core_db().audit_log_id().await.unwrap().unwrap(), key),
        (app.mailbox_db().audit_log_id().await.unwrap().unwrap(), key),
    ];
    witness.stop().await;
    for _ in 0..3 {
        send_some(&app, 1).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let core = app
        .audit_guards()
        .iter()
        .find(|g| g.database() == "core")
        .unwrap()
        .clone();
    let queued = core.unwitnessed().await;
    assert!(queued >= 2, "queued {queued}");

    let witness = start_witness(witness_dir.path(), listen, &logs).await;
    let core_guard = &core;
    eventually(
        "the queue to drain",
        Duration::from_secs(20),
        || async move { (core_guard.unwitnessed().await == 0).then_some(()) },
    )
    .await;
    let uncosigned: i64 = app
        .query(
            "kuvert.db",
            "SELECT COUNT(*) FROM audit_checkpoints WHERE format = 'kuvert-audit-checkpoint-v2' AND cosignature IS NULL",
        )
        .await;
    assert_eq!(
        uncosigned, 0,
        "every checkpoint was countersigned, in order"
    );
    app.stop().await;
    witness.stop().await;
}

fn signed(key: &SigningKey, seq: i64, prev: &str) -> Checkpoint {
    Checkpoint::sign(
        key,
        "core/0123abcd",
        seq,
        &format!("{seq:064x}"),
        prev,
        time::OffsetDateTime::now_utc(),
    )
}

async fn submit(witness: &RunningWitness, checkpoint: &Checkpoint) -> (StatusCode, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/witness/v1/checkpoints", witness.url))
        .json(checkpoint)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap())
}

/// Attack (e): the witness countersigns a log's history once; a fork (a
/// checkpoint that does not extend the last one) and a rollback are
/// refused with 409 and kept; the same checkpoint again gets the same
/// cosignature; another key's checkpoint and an unknown log are refused.
/// What it countersigned survives its restart.
#[tokio::test]
async fn the_witness_refuses_a_fork_and_a_rollback_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = SigningKey::generate();
    let logs = vec![("core/0123abcd".to_owned(), log_key.public_key())];
    let witness = start_witness(dir.path(), "127.0.0.1:0".parse().unwrap(), &logs).await;

    let first = signed(&log_key, 10, NO_PREVIOUS_CHECKPOINT);
    let (status, cosigned) = submit(&witness, &first).await;
    assert_eq!(status, StatusCode::OK, "{cosigned}");
    let cosignature: Cosignature = serde_json::from_value(cosigned.clone()).unwrap();
    cosignature.verify(&first, &witness.public_key).unwrap();
    assert_eq!(
        submit(&witness, &first).await,
        (StatusCode::OK, cosigned.clone())
    );

    let second = signed(&log_key, 20, &first.digest());
    assert_eq!(submit(&witness, &second).await.0, StatusCode::OK);
    // The first again (its answer lost): the same cosignature, no fork.
    assert_eq!(submit(&witness, &first).await, (StatusCode::OK, cosigned));

    let fork = signed(&log_key, 30, &first.digest());
    assert_problem(
        &submit(&witness, &fork).await,
        StatusCode::CONFLICT,
        "checkpoint_fork",
    );
    let fresh_start = signed(&log_key, 30, NO_PREVIOUS_CHECKPOINT);
    assert_problem(
        &submit(&witness, &fresh_start).await,
        StatusCode::CONFLICT,
        "checkpoint_fork",
    );
    let rollback = signed(&log_key, 15, &second.digest());
    assert_problem(
        &submit(&witness, &rollback).await,
        StatusCode::CONFLICT,
        "checkpoint_rollback",
    );
    let forger = signed(&SigningKey::generate(), 30, &second.digest());
    assert_problem(
        &submit(&witness, &forger).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_checkpoint_signature",
    );
    let mut other_log = signed(&log_key, 30, &second.digest());
    other_log.log_id = "mailbox/x/0123abcd".into();
    assert_problem(
        &submit(&witness, &other_log).await,
        StatusCode::NOT_FOUND,
        "unknown_log",
    );

    let kept =
        std::fs::read_to_string(dir.path().join("refused").join("core+0123abcd.jsonl")).unwrap();
    assert_eq!(
        kept.lines().count(),
        3,
        "fork, fresh start and rollback are kept: {kept}"
    );

    let listen: SocketAddr = witness.url.trim_start_matches("http://").parse().unwrap();
    let key = witness.public_key;
    witness.stop().await;
    let witness = start_witness(dir.path(), listen, &logs).await;
    assert_eq!(witness.public_key, key, "the witness keeps its key");
    let (status, latest) = witness_latest(&witness, "core/0123abcd").await;
    assert_eq!(status, StatusCode::OK);
    let record: CheckpointRecord = serde_json::from_value(latest).unwrap();
    assert_eq!(record.checkpoint, second, "durable across a restart");
    assert_problem(
        &submit(&witness, &fork).await,
        StatusCode::CONFLICT,
        "checkpoint_fork",
    );
    let third = signed(&log_key, 30, &second.digest());
    assert_eq!(submit(&witness, &third).await.0, StatusCode::OK);
    let (status, document) = reqwest::get(format!("{}/witness/v1/key", witness.url))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|d| (StatusCode::OK, d))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["public_key"], key.to_base64());
    witness.stop().await;
}
