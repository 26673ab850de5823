//! Keys never appear silently, recipient tokens name their audience, scopes,
//! id and lifetime, signed deliveries name recipients in the canonical
//! 12-digit form, and the admin token file is as private as a key file
//! (issue 16). Each test performs the attack and expects the refusal.

use kuvert::app::Settings;
use kuvert_testkit::{TestApp, assert_problem};
use kuvert_web::auth::{Scope, TokenError};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Runs the `kuvert` command line in this process.
async fn kuvert(args: &[&str]) -> anyhow::Result<()> {
    kuvert::cli::run(std::iter::once("kuvert").chain(args.iter().copied())).await
}

fn production_settings(data: &Path) -> Settings {
    let mut settings = Settings::new(data.to_path_buf());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    // Plain HTTP on loopback: these tests are about keys, not transport.
    settings.allow_plain_http = true;
    settings
}

/// A secrets mount that is not there yet: `serve` without `--demo` must
/// stop, naming the file and the command, and create nothing.
#[tokio::test]
async fn serve_refuses_to_start_when_a_key_file_is_missing_and_creates_none() {
    let data = tempfile::tempdir().unwrap();
    let started = kuvert::app::start(production_settings(data.path())).await;
    let error = match started {
        Ok(running) => {
            running.stop().await;
            panic!("kuvert started on a data folder without keys (it made them up)");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("relay-seal.ed25519"), "{error}");
    assert!(error.contains("kuvert keys init"), "{error}");
    let keys = data.path().join("keys");
    assert!(
        !keys.exists() || std::fs::read_dir(&keys).unwrap().next().is_none(),
        "no key file was created"
    );

    // After `kuvert keys init` it starts; one key gone (an incomplete
    // mount) stops it again, naming that file.
    kuvert(&["--data", data.path().to_str().unwrap(), "keys", "init"])
        .await
        .unwrap();
    let running = kuvert::app::start(production_settings(data.path()))
        .await
        .unwrap();
    running.stop().await;
    std::fs::remove_file(keys.join("mailbox-kek.aes256")).unwrap();
    let error = match kuvert::app::start(production_settings(data.path())).await {
        Ok(running) => {
            running.stop().await;
            panic!("kuvert started without its mailbox key-encryption key");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("mailbox-kek.aes256"), "{error}");
    assert!(!keys.join("mailbox-kek.aes256").exists());
}

/// `keys init` creates only what is missing; the commands that only read an
/// installation create nothing.
#[tokio::test]
async fn keys_init_changes_nothing_that_exists_and_read_only_commands_create_no_keys() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    for read_only in [
        vec!["--data", dir, "audit", "verify"],
        vec![
            "--data",
            dir,
            "audit",
            "verify",
            "--keys",
            "no-such-keys.json",
        ],
        vec!["--data", dir, "recipient", "token", "198001012384"],
        vec!["--data", dir, "token", "revoke", "some-token-id"],
        vec!["--data", dir, "keys", "list"],
    ] {
        let _ = kuvert(&read_only).await;
        let keys = data.path().join("keys");
        assert!(
            !keys.exists() || std::fs::read_dir(&keys).unwrap().next().is_none(),
            "{read_only:?} created keys"
        );
    }
    kuvert(&["--data", dir, "keys", "init"]).await.unwrap();
    let audit = data.path().join("keys").join("audit.ed25519");
    let before = std::fs::read(&audit).unwrap();
    kuvert(&["--data", dir, "keys", "init"]).await.unwrap();
    assert_eq!(std::fs::read(&audit).unwrap(), before);
}

/// A receipt key replaced through the key file (stop, `keys init` after the
/// old file is gone, start): the old key stays published, closed, and a
/// receipt signed before the change still verifies with `kuvert receipt
/// verify`; the new key signs the next receipt.
#[tokio::test]
async fn a_receipt_signed_before_a_key_change_still_verifies_after_it() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.kommun().0.token.clone();
    let signed = app.kommun_signed(&anna, "Före bytet");
    let before = app.send_delivered(&token, &signed).await;

    app.stop().await;
    let receipt_key = app.data_dir().join("keys").join("mailbox-receipt.ed25519");
    std::fs::remove_file(&receipt_key).unwrap();
    kuvert(&["--data", app.data_dir().to_str().unwrap(), "keys", "init"])
        .await
        .unwrap();
    app.restart().await;

    let after = app
        .send_delivered(&token, &app.kommun_signed(&anna, "Efter bytet"))
        .await;
    assert_ne!(before["receipt"]["key_id"], after["receipt"]["key_id"]);
    let (_, document) = app
        .get("/register/v1/operators/kuvert-brevlada/keys", None)
        .await;
    let receipt_keys: Vec<_> = document["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["purpose"] == "receipt")
        .collect();
    assert_eq!(receipt_keys.len(), 2, "{document}");
    assert!(
        receipt_keys
            .iter()
            .any(|k| k["key_id"] == before["receipt"]["key_id"] && !k["valid_until"].is_null()),
        "{document}"
    );

    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &serde_json::Value| {
        let path = files.path().join(name);
        std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let receipt = write("receipt.json", &before);
    let delivery = write("delivery.json", &serde_json::to_value(&signed).unwrap());
    let keys = write("keys.json", &document);
    kuvert(&[
        "receipt",
        "verify",
        "--receipt",
        &receipt,
        "--delivery",
        &delivery,
        "--keys",
        &keys,
    ])
    .await
    .unwrap();
}

/// A token minted for reading mail cannot change the registration, and a
/// registration token cannot read mail.
#[tokio::test]
async fn a_mail_token_cannot_change_the_registration_and_a_registration_token_cannot_read_mail() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    app.send_ok(&anna, "Brev till Anna").await;
    app.drain().await;

    let mail = app.mail_token(&anna);
    assert_eq!(app.messages(&mail, "").await.total, 1);
    for (method, path) in [
        (reqwest::Method::GET, "/register/v1/me"),
        (reqwest::Method::DELETE, "/register/v1/me"),
        (
            reqwest::Method::PUT,
            "/register/v1/me/refused-senders/2120009990",
        ),
    ] {
        let answer = app.request(method.clone(), path, Some(&mail), None).await;
        let problem = assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            problem["detail"].as_str().unwrap().contains("audience"),
            "{method} {path}: {problem}"
        );
    }
    let (_, me) = app
        .get("/register/v1/me", Some(&app.registration_token(&anna)))
        .await;
    assert_eq!(me["status"], "registered", "still registered: {me}");

    let registration = app.registration_token(&anna);
    let answer = app.get("/mailbox/v1/messages", Some(&registration)).await;
    let problem = assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(problem["detail"].as_str().unwrap().contains("audience"));

    // Read-only mail access cannot delete or archive.
    let read_only = app
        .token_for(&anna, "kuvert-brevlada", &[Scope::MailRead], 600)
        .unwrap();
    let page = app.messages(&read_only, "").await;
    let id = &page.messages[0].id;
    for (method, path) in [
        (
            reqwest::Method::DELETE,
            format!("/mailbox/v1/messages/{id}"),
        ),
        (
            reqwest::Method::POST,
            format!("/mailbox/v1/messages/{id}/archive"),
        ),
    ] {
        let answer = app.request(method, &path, Some(&read_only), None).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "insufficient_scope");
    }
    assert_eq!(app.inbox(&anna).await.total, 1, "nothing was deleted");
}

/// A token for another mailbox operator (or service) is refused here.
#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let elsewhere = app
        .token_for(
            &anna,
            "another-operator",
            &[Scope::MailRead, Scope::MailManage],
            600,
        )
        .unwrap();
    let problem = assert_problem(
        &app.get("/mailbox/v1/messages", Some(&elsewhere)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(problem["detail"].as_str().unwrap().contains("audience"));
}

/// Expired and over-long tokens are refused; minting refuses a lifetime
/// over the maximum, and so does `kuvert recipient token`.
#[tokio::test]
async fn expired_and_over_long_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    assert!(matches!(
        app.token_for(
            &anna,
            "kuvert-brevlada",
            &[Scope::MailRead],
            kuvert_web::auth::MAX_TOKEN_LIFETIME_SECONDS + 1
        ),
        Err(TokenError::LifetimeTooLong { .. })
    ));
    let dir = app.data_dir().to_str().unwrap().to_owned();
    let long = kuvert(&[
        "--data",
        &dir,
        "recipient",
        "token",
        &anna,
        "--lifetime-minutes",
        "100000",
    ])
    .await;
    assert!(long.is_err(), "a 69-day token was minted");

    // Minted elsewhere with the installation's key, for 30 days: refused.
    let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
    let tokens = kuvert_web::auth::RecipientTokens::new(keys.recipient_token);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let over_long = tokens.mint_unchecked_for_tests(
        &kuvert_domain::identity::RecipientId::parse_canonical(&anna).unwrap(),
        "kuvert-brevlada",
        &[Scope::MailRead],
        now,
        now + 30 * 86_400,
    );
    let problem = assert_problem(
        &app.get("/mailbox/v1/messages", Some(&over_long)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(problem["detail"].as_str().unwrap().contains("lifetime"));

    let expired = tokens.mint_unchecked_for_tests(
        &kuvert_domain::identity::RecipientId::parse_canonical(&anna).unwrap(),
        "kuvert-brevlada",
        &[Scope::MailRead],
        now - 7200,
        now - 3600,
    );
    let problem = assert_problem(
        &app.get("/mailbox/v1/messages", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
}

/// `kuvert token revoke ID` refuses the token at its next request, for mail
/// and for registration changes.
#[tokio::test]
async fn a_revoked_token_is_refused_at_the_next_request() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let mail = app.mail_token(&anna);
    let registration = app.registration_token(&anna);
    app.messages(&mail, "").await;
    let (status, _) = app.get("/register/v1/me", Some(&registration)).await;
    assert_eq!(status, StatusCode::OK);

    let dir = app.data_dir().to_str().unwrap().to_owned();
    for token in [&mail, &registration] {
        let id = kuvert_web::auth::RecipientTokens::token_id(token).unwrap();
        kuvert(&["--data", &dir, "token", "revoke", &id])
            .await
            .unwrap();
    }
    let problem = assert_problem(
        &app.get("/mailbox/v1/messages", Some(&mail)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    let problem = assert_problem(
        &app.request(
            reqwest::Method::DELETE,
            "/register/v1/me",
            Some(&registration),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    // Another token of the same person still works.
    assert_eq!(app.inbox(&anna).await.total, 0);
}

/// A token of the old format (no audience, scope or id), even with a valid
/// MAC, is refused with a message saying what to do.
#[tokio::test]
async fn an_old_kvr1_token_is_refused_with_a_clear_message() {
    use base64::Engine as _;
    use hmac::Mac as _;
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let keys = kuvert::keys::Keys::load_existing(app.data_dir()).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(format!("{anna}:4102444800"));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.recipient_token).unwrap();
    mac.update(format!("kvr1.{payload}").as_bytes());
    let old = format!("kvr1.{payload}.{}", b64.encode(mac.finalize().into_bytes()));
    let problem = assert_problem(
        &app.get("/mailbox/v1/messages", Some(&old)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("kvr1"),
        "{problem}"
    );
}

/// Relay and mailbox each choose a 10-digit number's century from their own
/// clock; around a 100th birthday they disagree. A signed delivery names
/// the recipient in the 12-digit form only.
#[tokio::test]
async fn a_signed_delivery_with_a_ten_digit_or_hyphenated_recipient_is_refused() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.kommun().0.token.clone();
    for written in [
        anna[2..].to_owned(),
        format!("{}-{}", &anna[2..8], &anna[8..]),
        format!("{}-{}", &anna[..8], &anna[8..]),
        format!(" {anna}"),
    ] {
        let signed = app
            .kommun_letter(&anna, "Tio siffror")
            .with(|d| d.header.recipient = written.clone())
            .signed();
        let problem = assert_problem(
            &app.send(&token, &signed).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_not_canonical",
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("12 digits"),
            "{problem}"
        );
    }
    assert_eq!(app.outbox_len().await, 0);
    // Reachability lookups are not signed: ten digits are still fine there.
    let (tenant, sender) = app.kommun();
    let (status, answer) = app
        .reachability(&tenant.token, &sender.id, &[&anna[2..]])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["results"][0]["sender_accepted"],
        json!(true),
        "{answer}"
    );
}

/// The admin token file is as private as a key file: readable by group or
/// others, `serve` refuses it.
#[cfg(unix)]
#[tokio::test]
async fn serve_refuses_an_admin_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    kuvert(&["--data", dir, "keys", "init"]).await.unwrap();
    let file = data.path().join("admin-token");
    std::fs::write(&file, "kva_platform-operator-secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "--data",
        dir,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-token-file",
        file.to_str().unwrap(),
    ];
    let outcome = tokio::time::timeout(Duration::from_secs(20), kuvert(&args)).await;
    let error = match outcome {
        Err(_) => panic!("kuvert serve started with a world-readable admin token file"),
        Ok(Ok(())) => panic!("kuvert serve returned without an error"),
        Ok(Err(e)) => format!("{e:#}"),
    };
    assert!(error.contains("admin-token"), "{error}");
    assert!(error.contains("chmod 600"), "{error}");
}
