//! Encryption at rest binds each row (decision 0012): whoever can write the
//! mailbox database file, but holds no key, cannot move a letter into
//! another person's inbox, swap ciphertexts or keys between rows, or change
//! the sender or the moment of delivery that a recipient sees; and a deleted
//! message's ciphertext is gone from the file.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use kuvert_testkit::{TestApp, assert_problem};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection as _;

/// Runs one statement on the mailbox database file beside the running
/// instance, as someone with write access to the file (and no key) would.
async fn tamper(app: &TestApp, sql: &str) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.data_dir().join("mailbox.db"))
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open mailbox.db");
    let done = sqlx::query(sql).execute(&mut connection).await.expect(sql);
    assert!(done.rows_affected() > 0, "changed nothing: {sql}");
    connection.close().await.expect("close");
}

/// Sends `subject` to `recipient`, waits until it is in the mailbox, and
/// returns its mailbox message id.
async fn delivered(app: &TestApp, recipient: &str, subject: &str) -> String {
    let (tenant, _) = app.kommun();
    let delivery_id = app.send_ok(recipient, subject).await;
    app.wait_delivered(&tenant.token, &delivery_id).await;
    let page = app.inbox(recipient).await;
    let index = page
        .subjects()
        .iter()
        .position(|s| s == subject)
        .expect("the message is listed");
    page.ids()[index].clone()
}

async fn list(app: &TestApp, recipient: &str) -> (StatusCode, Value) {
    app.get(
        "/mailbox/v1/messages",
        Some(&app.recipient_token(recipient)),
    )
    .await
}

/// The answer to anyone who lists or opens a row that was changed: a clear
/// problem that names the message, never the altered row.
fn assert_integrity_problem(answer: &(StatusCode, Value), message_id: &str, case: &str) {
    let problem = assert_problem(
        answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "stored_message_integrity",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(message_id),
        "{case}: the problem names the message: {problem}"
    );
}

#[tokio::test]
async fn a_message_moved_to_another_recipient_does_not_open() {
    let app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let bertil = app.person("Bertil Berg");
    let id = delivered(&app, &anna, "Till Anna ensam").await;

    tamper(
        &app,
        &format!("UPDATE mailbox_messages SET recipient_id = '{bertil}' WHERE id = '{id}'"),
    )
    .await;

    let listed = list(&app, &bertil).await;
    assert_integrity_problem(&listed, &id, "Bertil lists");
    let bertil_token = app.recipient_token(&bertil);
    let opened = app.open_message(&bertil_token, &id).await;
    assert_integrity_problem(&opened, &id, "Bertil opens");
    let attachment = app
        .get(
            &format!("/mailbox/v1/messages/{id}/attachments/0"),
            Some(&bertil_token),
        )
        .await;
    assert_integrity_problem(&attachment, &id, "Bertil opens an attachment");
    assert_eq!(
        app.query::<Option<String>>(
            "mailbox.db",
            &format!("SELECT read_at FROM mailbox_messages WHERE id = '{id}'")
        )
        .await,
        None,
        "a refused message is not marked read"
    );

    // Moved back, it opens again for Anna: the refusal came from the binding.
    tamper(
        &app,
        &format!("UPDATE mailbox_messages SET recipient_id = '{anna}' WHERE id = '{id}'"),
    )
    .await;
    let (status, view) = app.open_message(&app.recipient_token(&anna), &id).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["subject"], "Till Anna ensam");
}

#[tokio::test]
async fn keys_and_ciphertexts_swapped_between_or_within_rows_are_refused() {
    let app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let first = delivered(&app, &anna, "Första brevet").await;
    let second = delivered(&app, &anna, "Andra brevet").await;
    let token = app.recipient_token(&anna);

    // Within one row: the summary and the content trade places (under the
    // first scheme both had the same key and associated data, so the list
    // showed the content, body and all, as the subject).
    tamper(
        &app,
        &format!(
            "UPDATE mailbox_messages SET subject = content, content = subject WHERE id = '{first}'"
        ),
    )
    .await;
    assert_integrity_problem(&list(&app, &anna).await, &first, "swapped within a row");
    tamper(
        &app,
        &format!(
            "UPDATE mailbox_messages SET subject = content, content = subject WHERE id = '{first}'"
        ),
    )
    .await;
    let (status, page) = list(&app, &anna).await;
    assert_eq!(status, StatusCode::OK, "swapped back: {page}");

    for column in [
        "wrapped_key",
        "subject",
        "content",
        "wrapped_key, subject, content",
    ] {
        // Every listed column of `second` copied into `first`.
        let set = column
            .split(", ")
            .map(|c| format!("{c} = (SELECT {c} FROM mailbox_messages WHERE id = '{second}')"))
            .collect::<Vec<_>>()
            .join(", ");
        let original: Vec<Vec<u8>> = app
            .query_all(
                "mailbox.db",
                &format!(
                    "SELECT wrapped_key FROM mailbox_messages WHERE id = '{first}'
                     UNION ALL SELECT subject FROM mailbox_messages WHERE id = '{first}'
                     UNION ALL SELECT content FROM mailbox_messages WHERE id = '{first}'"
                ),
            )
            .await;
        tamper(
            &app,
            &format!("UPDATE mailbox_messages SET {set} WHERE id = '{first}'"),
        )
        .await;
        let opened = app.open_message(&token, &first).await;
        assert_integrity_problem(&opened, &first, column);
        if column != "content" {
            assert_integrity_problem(&list(&app, &anna).await, &first, column);
        }
        let restore = format!(
            "UPDATE mailbox_messages SET wrapped_key = X'{}', subject = X'{}', content = X'{}' WHERE id = '{first}'",
            hex(&original[0]),
            hex(&original[1]),
            hex(&original[2])
        );
        tamper(&app, &restore).await;
    }
    let (status, view) = app.open_message(&token, &first).await;
    assert_eq!(status, StatusCode::OK, "restored: {view}");
    assert_eq!(view["subject"], "Första brevet");
}

#[tokio::test]
async fn a_changed_sender_time_or_delivery_is_never_shown() {
    let app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let id = delivered(&app, &anna, "Beslut om bygglov").await;
    let token = app.recipient_token(&anna);
    let (_, before) = app.open_message(&token, &id).await;
    let sender_id = app.kommun().1.id.clone();
    let changes = [
        ("delivered_at", "'2020-01-01T00:00:00.000000Z'".to_owned()),
        ("sender_id", "'2120001111'".to_owned()),
        (
            "delivery_id",
            "'00000000-0000-7000-8000-000000000000'".to_owned(),
        ),
        ("position", "7".to_owned()),
    ];
    for (column, value) in changes {
        let original: String = app
            .query(
                "mailbox.db",
                &format!("SELECT CAST({column} AS TEXT) FROM mailbox_messages WHERE id = '{id}'"),
            )
            .await;
        // delivery_id must name a stored delivery (foreign key): give the
        // fake id a delivery row of its own.
        if column == "delivery_id" {
            tamper(
                &app,
                "INSERT INTO mailbox_deliveries SELECT '00000000-0000-7000-8000-000000000000',
                   recipient_id, sender_id, relay_key_id, received_at, delivered_at, receipt
                 FROM mailbox_deliveries LIMIT 1",
            )
            .await;
        }
        tamper(
            &app,
            &format!("UPDATE mailbox_messages SET {column} = {value} WHERE id = '{id}'"),
        )
        .await;
        assert_integrity_problem(&list(&app, &anna).await, &id, column);
        assert_integrity_problem(&app.open_message(&token, &id).await, &id, column);
        let quoted = if column == "position" {
            original
        } else {
            format!("'{original}'")
        };
        tamper(
            &app,
            &format!("UPDATE mailbox_messages SET {column} = {quoted} WHERE id = '{id}'"),
        )
        .await;
    }
    let (status, after) = app.open_message(&token, &id).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    for field in [
        "sender_id",
        "sender_name",
        "delivered_at",
        "received_at",
        "delivery_id",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["sender_id"], sender_id);
}

#[tokio::test]
async fn a_deleted_message_leaves_no_ciphertext_in_the_database_file() {
    let mut app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let (tenant, sender) = app.kommun();
    let token = tenant.token.clone();
    // A body larger than a database page, so its row spills into overflow
    // pages (freed pages, not only a freed cell, must be wiped).
    let body = "Sekretessbelagd uppgift om en skuld. ".repeat(400);
    let signed = app
        .letter(sender, &anna, "Raderas snart")
        .with(|d| d.messages[0].body.body = body.clone())
        .signed();
    let delivery_id = app.send_accepted(&token, &signed).await;
    app.wait_delivered(&token, &delivery_id).await;
    let small = delivered(&app, &anna, "Raderas också").await;
    let page = app.inbox(&anna).await;
    let mut blobs = Vec::new();
    for id in page.ids() {
        for column in ["wrapped_key", "subject", "content"] {
            let blob: Vec<u8> = app
                .query(
                    "mailbox.db",
                    &format!("SELECT {column} FROM mailbox_messages WHERE id = '{id}'"),
                )
                .await;
            blobs.push((format!("{id} {column}"), blob));
        }
    }
    assert!(page.ids().contains(&small));
    let reader = app.recipient_token(&anna);
    for id in page.ids() {
        let (status, answer) = app
            .delete(&format!("/mailbox/v1/messages/{id}"), Some(&reader))
            .await;
        assert!(status.is_success(), "{answer}");
    }
    // A clean stop copies the WAL into the file and truncates it.
    app.stop().await;
    let mut files = Vec::new();
    for name in ["mailbox.db", "mailbox.db-wal"] {
        if let Ok(bytes) = std::fs::read(app.data_dir().join(name)) {
            files.push((name, bytes));
        }
    }
    for (what, blob) in &blobs {
        // 24 bytes from the middle: ciphertext does not repeat by chance.
        let middle = blob.len() / 2;
        let needle = &blob[middle - 12..middle + 12];
        for (name, bytes) in &files {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what} is still in {name} after the delete"
            );
        }
    }
}

/// Rows written before the binding (format 1) are upgraded at start-up,
/// and are bound from then on.
#[tokio::test]
async fn rows_of_the_first_format_are_upgraded_at_start_and_then_bound() {
    let mut app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let bertil = app.person("Bertil Berg");
    let existing = delivered(&app, &anna, "Ett nyare brev").await;
    let delivery_id: String = app
        .query(
            "mailbox.db",
            &format!("SELECT delivery_id FROM mailbox_messages WHERE id = '{existing}'"),
        )
        .await;
    let sender = app.kommun().1.clone();
    let message = app.delivery(&sender, &anna, "Ett gammalt brev").messages[0].clone();
    app.stop().await;

    // A row as the first scheme wrote it: the data key wrapped under the KEK
    // itself, subject and content bound to the message id only.
    let kek = kuvert_crypto::keyfile::load_secret(&app.data_dir().join("keys/mailbox-kek.aes256"))
        .unwrap();
    let legacy_id = "01900000-0000-7000-8000-00000000abcd";
    let data_key = [5u8; 32];
    let seal = |key: &[u8; 32], aad: &[u8], plain: &[u8]| {
        let nonce = [9u8; 12];
        let mut out = nonce.to_vec();
        out.extend(
            Aes256Gcm::new(key.into())
                .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
                .unwrap(),
        );
        out
    };
    let wrapped = seal(&kek, b"kuvert/data-key/v1", &data_key);
    let subject = seal(&data_key, legacy_id.as_bytes(), b"Ett gammalt brev");
    let content = serde_json::to_vec(&serde_json::json!({
        "sender_name": "Demo kommun (gammal rad)",
        "message": message,
        "reference": "legacy-1",
        "received_at": "2026-01-02T03:04:05.000006Z",
    }))
    .unwrap();
    let content = seal(&data_key, legacy_id.as_bytes(), &content);
    // A stopped instance: the statement goes straight into the file.
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(app.data_dir().join("mailbox.db"));
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO mailbox_messages (id, delivery_id, position, recipient_id, sender_id,
           delivered_at, format, wrapped_key, subject, content)
         VALUES (?, ?, 1, ?, ?, '2026-01-02T03:04:06.000000Z', 1, ?, ?, ?)",
    )
    .bind(legacy_id)
    .bind(&delivery_id)
    .bind(&anna)
    .bind(&sender.id)
    .bind(&wrapped)
    .bind(&subject)
    .bind(&content)
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();

    app.restart().await;
    assert_eq!(
        app.query::<i64>(
            "mailbox.db",
            &format!("SELECT format FROM mailbox_messages WHERE id = '{legacy_id}'")
        )
        .await,
        2,
        "upgraded at start-up"
    );
    let page = app.inbox(&anna).await;
    let listed = page
        .messages
        .iter()
        .find(|m| m.id == legacy_id)
        .expect("the old message is listed");
    assert_eq!(listed.subject, "Ett gammalt brev");
    assert_eq!(listed.sender_name, "Demo kommun (gammal rad)");
    assert_eq!(listed.delivered_at, "2026-01-02T03:04:06.000000Z");
    let token = app.recipient_token(&anna);
    let (status, view) = app.open_message(&token, legacy_id).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["body"], message.body.body);
    assert_eq!(view["reference"], "legacy-1");

    // Bound now: moved, it does not open.
    tamper(
        &app,
        &format!("UPDATE mailbox_messages SET recipient_id = '{bertil}' WHERE id = '{legacy_id}'"),
    )
    .await;
    assert_integrity_problem(&list(&app, &bertil).await, legacy_id, "moved after upgrade");
}

/// The format marker is no way around the binding: a bound row marked as
/// of the first format is refused (and not "upgraded" into something else).
#[tokio::test]
async fn a_bound_row_marked_as_first_format_is_refused() {
    let mut app = TestApp::spawn().await;
    let anna = app.person("Anna Andersson");
    let id = delivered(&app, &anna, "Nedgraderas inte").await;
    tamper(
        &app,
        &format!("UPDATE mailbox_messages SET format = 1 WHERE id = '{id}'"),
    )
    .await;
    assert_integrity_problem(&list(&app, &anna).await, &id, "marked legacy");
    app.restart().await;
    assert_integrity_problem(&list(&app, &anna).await, &id, "after the start-up upgrade");
    tamper(
        &app,
        &format!("UPDATE mailbox_messages SET format = 2 WHERE id = '{id}'"),
    )
    .await;
    let (status, page) = list(&app, &anna).await;
    assert_eq!(status, StatusCode::OK, "marked back: {page}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
