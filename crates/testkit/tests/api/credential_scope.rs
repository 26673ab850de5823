//! Credentials scoped to named senders, and senders removed from a tenant
//! (issue 17, decision 0016). The förmedlare "demoformedlare" sends for two
//! senders, S0 and S1: a credential scoped to S0 sends as, and reads the
//! deliveries, status events, batches, statistics and refusals of, S0 only;
//! the tenant's default credential still sees both. After S1 is removed
//! from the tenant, its keys are revoked, nobody may send as it, and its
//! history is hidden from the tenant, though every row is kept.

use kuvert::demo::{DemoSender, DemoTenant};
use kuvert_domain::ids::{BatchId, DeliveryId};
use kuvert_testkit::{ADMIN_TOKEN, TestApp, assert_problem, batch_items, credential_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const FORMEDLARE: &str = "demoformedlare";

fn formedlare(app: &TestApp) -> (DemoTenant, DemoSender, DemoSender) {
    let tenant = app.tenant(FORMEDLARE).clone();
    let s0 = tenant.senders[0].clone();
    let s1 = tenant.senders[1].clone();
    (tenant, s0, s1)
}

/// A credential of demoformedlare scoped to `senders`; returns its token.
async fn scoped_credential(app: &TestApp, senders: &[&str]) -> String {
    let (status, created) = app
        .post(
            &format!("/admin/v1/tenants/{FORMEDLARE}/credentials"),
            Some(ADMIN_TOKEN),
            &json!({ "label": "scoped", "senders": senders }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().unwrap().to_owned()
}

async fn send_as(
    app: &TestApp,
    token: &str,
    sender: &DemoSender,
    subject: &str,
) -> (StatusCode, Value) {
    let anna = app.recipient("registered").id.clone();
    app.send(token, &app.letter(sender, &anna, subject).signed())
        .await
}

async fn send_as_ok(app: &TestApp, token: &str, sender: &DemoSender, subject: &str) -> String {
    let anna = app.recipient("registered").id.clone();
    app.send_accepted(token, &app.letter(sender, &anna, subject).signed())
        .await
}

async fn number(app: &TestApp, sql: &str) -> i64 {
    app.query::<i64>("kuvert.db", sql).await
}

/// `GET path` answers 404 with exactly the bytes of `GET missing`.
async fn hidden_like_missing(app: &TestApp, token: &str, path: &str, missing: &str) {
    let hidden = app.request_raw(Method::GET, path, Some(token), None).await;
    let absent = app
        .request_raw(Method::GET, missing, Some(token), None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{path}");
    assert_eq!(absent.status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(
        hidden.bytes, absent.bytes,
        "{path}: nothing tells a hidden object from a missing one"
    );
}

/// The delivery ids in the credential's status feed.
async fn feed_ids(app: &TestApp, token: &str) -> BTreeSet<String> {
    app.status_events(token)
        .await
        .into_iter()
        .map(|e| e.delivery_id)
        .collect()
}

/// Today's statistics as the credential sees them: (deliveries, lookups).
async fn statistics(app: &TestApp, token: &str) -> (i64, i64) {
    let (status, stats) = app.get("/v1/statistics", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let counts = stats["deliveries"].as_object().unwrap();
    let total = counts.values().filter_map(Value::as_i64).sum();
    (total, stats["reachability_lookups"].as_i64().unwrap())
}

/// The problem `code`, `status` and `title`, and the `detail` with the
/// sender's id taken out: what tells one 403 from another.
fn refusal_shape(problem: &Value, sender: &str) -> Value {
    json!({
        "code": problem["code"],
        "status": problem["status"],
        "title": problem["title"],
        "detail": problem["detail"].as_str().unwrap_or_default().replace(sender, "SENDER"),
    })
}

#[tokio::test]
async fn a_scoped_credential_sends_and_looks_up_only_as_its_senders() {
    let app = TestApp::spawn().await;
    let (_, s0, s1) = formedlare(&app);
    let (_, kommun_sender) = app.kommun();
    let kommun_sender = kommun_sender.clone();
    let scoped = scoped_credential(&app, &[&s0.id]).await;

    // The happy path: its own sender.
    send_as_ok(&app, &scoped, &s0, "Till Anna från S0").await;

    // Another sender of the same tenant: the very answer a sender of
    // another tenant gets, and nothing stored.
    let as_s1 = send_as(&app, &scoped, &s1, "Som S1").await;
    let problem = assert_problem(&as_s1, StatusCode::FORBIDDEN, "sender_not_allowed");
    let as_other_tenant = send_as(&app, &scoped, &kommun_sender, "Som kommunen").await;
    let other = assert_problem(
        &as_other_tenant,
        StatusCode::FORBIDDEN,
        "sender_not_allowed",
    );
    assert_eq!(
        refusal_shape(&problem, &s1.id),
        refusal_shape(&other, &kommun_sender.id)
    );
    let sql = format!(
        "SELECT COUNT(*) FROM deliveries WHERE sender_id = '{}'",
        s1.id
    );
    assert_eq!(number(&app, &sql).await, 0);

    // In a batch, the S1 item is refused on its own; the S0 item goes in.
    let anna = app.recipient("registered").id.clone();
    let items = batch_items(&[
        app.letter(&s0, &anna, "Batch S0").signed(),
        app.letter(&s1, &anna, "Batch S1").signed(),
    ]);
    let batch = app.batch_accepted(&scoped, &items).await;
    assert_eq!(batch["accepted"], 1, "{batch}");
    assert_eq!(
        batch["results"][1]["error"]["code"], "sender_not_allowed",
        "{batch}"
    );
    assert_eq!(number(&app, &sql).await, 0, "nothing of S1 is stored");

    // Reachability (whether recipients refuse the sender): S0 only.
    let (status, answer) = app.reachability(&scoped, &s0.id, &[&anna]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let refused = app.reachability(&scoped, &s1.id, &[&anna]).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "sender_not_allowed");

    // The tenant's default credential still acts for both.
    let all = app.tenant(FORMEDLARE).token.clone();
    send_as_ok(&app, &all, &s1, "Som S1 med allt").await;
    let (status, answer) = app.reachability(&all, &s1.id, &[&anna]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn a_scoped_credential_reads_only_its_senders_deliveries() {
    let app = TestApp::spawn().await;
    let (tenant, s0, s1) = formedlare(&app);
    let all = tenant.token.clone();
    let anna = app.recipient("registered").id.clone();
    let d0 = send_as_ok(&app, &all, &s0, "S0 ensam").await;
    let d1 = send_as_ok(&app, &all, &s1, "S1 ensam").await;
    // A batch of the default credential holding both senders.
    let mixed = app
        .batch_accepted(
            &all,
            &batch_items(&[
                app.letter(&s0, &anna, "Blandat S0").signed(),
                app.letter(&s1, &anna, "Blandat S1").signed(),
            ]),
        )
        .await;
    let mixed_id = mixed["batch_id"].as_str().unwrap().to_owned();
    let b0 = mixed["results"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b1 = mixed["results"][1]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A batch of S1 only.
    let s1_batch = app
        .batch_accepted(
            &all,
            &batch_items(&[app.letter(&s1, &anna, "Bara S1").signed()]),
        )
        .await;
    let s1_batch_id = s1_batch["batch_id"].as_str().unwrap().to_owned();
    let only_s1 = s1_batch["results"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [&d0, &d1, &b0, &b1, &only_s1] {
        app.wait_delivered(&all, id).await;
    }
    // One lookup for each sender, by the default credential.
    for sender in [&s0, &s1] {
        let (status, _) = app.reachability(&all, &sender.id, &[&anna]).await;
        assert_eq!(status, StatusCode::OK);
    }

    let scoped = scoped_credential(&app, &[&s0.id]).await;
    // Status: its sender's delivery, and S1's is as if it did not exist.
    let (status, view) = app.delivery_view(&scoped, &d0).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let missing = format!("/v1/deliveries/{}", DeliveryId::new());
    for hidden in [&d1, &b1] {
        hidden_like_missing(&app, &scoped, &format!("/v1/deliveries/{hidden}"), &missing).await;
    }
    // Status feed: S0's deliveries only.
    assert_eq!(
        feed_ids(&app, &scoped).await,
        BTreeSet::from([d0.clone(), b0.clone()])
    );
    // Batch progress: its part of the mixed batch; the S1 batch is hidden.
    let progress = app.batch_view(&scoped, &mixed_id).await;
    assert_eq!(progress["submitted"], 1, "{progress}");
    assert_eq!(progress["rejected"], 0, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 1, "{progress}");
    let missing_batch = format!("/v1/batches/{}", BatchId::new());
    hidden_like_missing(
        &app,
        &scoped,
        &format!("/v1/batches/{s1_batch_id}"),
        &missing_batch,
    )
    .await;
    // Statistics: S0's two deliveries and one lookup.
    assert_eq!(statistics(&app, &scoped).await, (2, 1));
    // The audit log is the tenant's whole record: not for a scoped credential.
    let audit = app.get("/v1/audit", Some(&scoped)).await;
    assert_problem(&audit, StatusCode::FORBIDDEN, "credential_scoped");

    // The default credential sees everything.
    assert_eq!(
        feed_ids(&app, &all).await,
        BTreeSet::from([d0, d1.clone(), b0, b1, only_s1])
    );
    let progress = app.batch_view(&all, &mixed_id).await;
    assert_eq!(progress["submitted"], 2, "{progress}");
    assert_eq!(progress["counts"]["delivered"], 2, "{progress}");
    app.batch_view(&all, &s1_batch_id).await;
    let (status, _) = app.delivery_view(&all, &d1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statistics(&app, &all).await, (5, 2));
    let (status, _) = app.get("/v1/audit", Some(&all)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_scoped_credential_sees_its_own_batch_even_when_nothing_was_accepted() {
    let app = TestApp::spawn().await;
    let (_, s0, s1) = formedlare(&app);
    let anna = app.recipient("registered").id.clone();
    let scoped = scoped_credential(&app, &[&s0.id]).await;
    let batch = app
        .batch_accepted(
            &scoped,
            &batch_items(&[app.letter(&s1, &anna, "Fel avsändare").signed()]),
        )
        .await;
    assert_eq!(batch["accepted"], 0, "{batch}");
    let progress = app
        .batch_view(&scoped, batch["batch_id"].as_str().unwrap())
        .await;
    assert_eq!(progress["submitted"], 1, "{progress}");
    assert_eq!(progress["rejected"], 1, "{progress}");
    // Another credential scoped to S0 sees nothing of it.
    let other = scoped_credential(&app, &[&s0.id]).await;
    let (status, _) = app
        .get(
            &format!("/v1/batches/{}", batch["batch_id"].as_str().unwrap()),
            Some(&other),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_credentials_scope_is_checked_when_created_and_shown_in_the_listing() {
    let app = TestApp::spawn().await;
    let (tenant, s0, s1) = formedlare(&app);
    let (_, kommun_sender) = app.kommun();
    let path = format!("/admin/v1/tenants/{FORMEDLARE}/credentials");
    let count = "SELECT COUNT(*) FROM credentials";
    let before = number(&app, count).await;
    let create = |senders: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            app.post(
                &path,
                Some(ADMIN_TOKEN),
                &json!({ "label": "x", "senders": senders }),
            )
            .await
        }
    };
    // A sender of another tenant, or a number that is not one, or no
    // sender at all, or too many: refused, nothing stored.
    let foreign = create(json!([s0.id, kommun_sender.id])).await;
    assert_problem(&foreign, StatusCode::UNPROCESSABLE_ENTITY, "unknown_sender");
    let invalid = create(json!(["5560000000"])).await;
    assert_problem(
        &invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sender_id",
    );
    let empty = create(json!([])).await;
    assert_problem(&empty, StatusCode::UNPROCESSABLE_ENTITY, "bad_sender_scope");
    let many: Vec<String> = (0..=kuvert_store::tenants::MAX_CREDENTIAL_SENDERS)
        .map(|_| s0.id.clone())
        .collect();
    let too_many = create(json!(many)).await;
    assert_problem(
        &too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_sender_scope",
    );
    assert_eq!(number(&app, count).await, before, "nothing was stored");
    assert_eq!(
        // (The demo's sender-role grant is a scoped credential too: decision 0020.)
        number(
            &app,
            "SELECT COUNT(*) FROM credential_senders WHERE credential_id NOT IN (SELECT credential_id FROM web_sender_grants)"
        )
        .await,
        0
    );

    // Named twice counts once; the answer and the listing show the scope.
    let (status, created) = create(json!([s1.id, s0.id, s1.id])).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mut both = vec![s0.id.clone(), s1.id.clone()];
    both.sort();
    assert_eq!(created["senders"], json!(both));
    let (status, listing) = app.get(&path, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let row = |id: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {listing}"))
    };
    assert_eq!(row(created["id"].as_str().unwrap())["senders"], json!(both));
    assert_eq!(row(&credential_id(&tenant.token))["senders"], Value::Null);
    assert!(
        !listing.to_string().contains("kvt_"),
        "no token in {listing}"
    );
    // Without `senders` a credential has every sender, as before.
    let (status, created) = app
        .post(&path, Some(ADMIN_TOKEN), &json!({ "label": "allt" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["senders"], Value::Null);
    let token = created["token"].as_str().unwrap();
    send_as_ok(&app, token, &s1, "Med ny nyckel").await;
}

#[tokio::test]
async fn a_removed_sender_is_refused_revoked_and_its_history_hidden_but_kept() {
    let app = TestApp::spawn().await;
    let (tenant, s0, s1) = formedlare(&app);
    let all = tenant.token.clone();
    let anna = app.recipient("registered").id.clone();
    let scoped_s1 = scoped_credential(&app, &[&s1.id]).await;
    let d0 = send_as_ok(&app, &all, &s0, "S0 före").await;
    let d1 = send_as_ok(&app, &all, &s1, "S1 före").await;
    let mixed = app
        .batch_accepted(
            &all,
            &batch_items(&[
                app.letter(&s0, &anna, "Blandat S0").signed(),
                app.letter(&s1, &anna, "Blandat S1").signed(),
            ]),
        )
        .await;
    let mixed_id = mixed["batch_id"].as_str().unwrap().to_owned();
    let b0 = mixed["results"][0]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b1 = mixed["results"][1]["delivery_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [&d0, &d1, &b0, &b1] {
        app.wait_delivered(&all, id).await;
    }
    let (status, _) = app.reachability(&all, &s1.id, &[&anna]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statistics(&app, &all).await, (4, 1));
    let s1_rows = format!(
        "SELECT COUNT(*) FROM deliveries WHERE sender_id = '{}'",
        s1.id
    );
    let s1_events =
        format!("SELECT COUNT(*) FROM status_events WHERE delivery_id IN ('{d1}', '{b1}')");
    let events_before = number(&app, &s1_events).await;

    let removal = format!("/admin/v1/tenants/{FORMEDLARE}/senders/{}", s1.id);
    let (status, body) = app.delete(&removal, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // New sends as it are refused, whichever credential.
    for token in [&all, &scoped_s1] {
        let answer = send_as(&app, token, &s1, "S1 efter").await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "sender_not_allowed");
    }
    let refused = app.reachability(&all, &s1.id, &[&anna]).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "sender_not_allowed");
    // Its key is revoked with the register's signed revocation.
    let (_, list) = app.get("/register/v1/revocations", None).await;
    assert!(
        list["revocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key_id"] == s1.key_id.as_str() && r["sender_id"] == s1.id.as_str()),
        "{list}"
    );
    // Its history is hidden from the tenant...
    let missing = format!("/v1/deliveries/{}", DeliveryId::new());
    for token in [&all, &scoped_s1] {
        for hidden in [&d1, &b1] {
            hidden_like_missing(&app, token, &format!("/v1/deliveries/{hidden}"), &missing).await;
        }
    }
    assert_eq!(
        feed_ids(&app, &all).await,
        BTreeSet::from([d0.clone(), b0.clone()])
    );
    assert!(feed_ids(&app, &scoped_s1).await.is_empty());
    assert_eq!(statistics(&app, &all).await, (2, 0));
    assert_eq!(statistics(&app, &scoped_s1).await, (0, 0));
    let progress = app.batch_view(&all, &mixed_id).await;
    assert_eq!(progress["counts"]["delivered"], 1, "{progress}");
    // ...and S0 is untouched.
    send_as_ok(&app, &all, &s0, "S0 efter").await;
    // Nothing was deleted: the relay keeps its records.
    assert_eq!(number(&app, &s1_rows).await, 2);
    assert_eq!(number(&app, &s1_events).await, events_before);
    // The removal and the key's revocation are audited together.
    let audited: Vec<String> = app
        .query_all(
            "kuvert.db",
            &format!(
                "SELECT action || ' ' || subject || ' ' || detail FROM audit_log WHERE tenant_id = '{FORMEDLARE}'
                 AND action IN ('sender.removed', 'key.revoked') ORDER BY seq"
            ),
        )
        .await;
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(
        audited[0].starts_with(&format!("sender.removed {} ", s1.id))
            && audited[0].contains(&s1.key_id),
        "{audited:?}"
    );
    assert!(
        audited[1].starts_with(&format!("key.revoked {} ", s1.key_id)),
        "{audited:?}"
    );

    // Removing it again: 404, as for any sender the tenant does not have.
    let (status, _) = app.delete(&removal, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_removed_sender_comes_back_only_when_the_operator_reinstates_it() {
    let app = TestApp::spawn().await;
    let (tenant, _, s1) = formedlare(&app);
    let (kommun, _) = app.kommun();
    let kommun = kommun.clone();
    let d1 = send_as_ok(&app, &tenant.token, &s1, "S1 hos förmedlaren").await;
    let (status, _) = app
        .delete(
            &format!("/admin/v1/tenants/{FORMEDLARE}/senders/{}", s1.id),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Adding the id again, to either tenant, is refused unless explicit.
    for to in [FORMEDLARE, kommun.tenant.as_str()] {
        let answer = app
            .post(
                &format!("/admin/v1/tenants/{to}/senders"),
                Some(ADMIN_TOKEN),
                &json!({ "id": s1.id, "name": "Tillbaka" }),
            )
            .await;
        assert_problem(&answer, StatusCode::CONFLICT, "sender_removed");
    }
    let (status, body) = app
        .post(
            &format!("/admin/v1/tenants/{}/senders", kommun.tenant),
            Some(ADMIN_TOKEN),
            &json!({ "id": s1.id, "name": "Flyttad", "reinstate": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Under the new tenant: its old key (revoked, and the old tenant's)
    // does not sign for it (a new one is needed), and neither tenant sees
    // the old history.
    let answer = send_as(&app, &kommun.token, &s1, "Med gammal nyckel").await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_key_unknown",
    );
    let missing = format!("/v1/deliveries/{}", DeliveryId::new());
    for token in [&kommun.token, &tenant.token] {
        hidden_like_missing(&app, token, &format!("/v1/deliveries/{d1}"), &missing).await;
    }
    let reinstated: String = app
        .query(
            "kuvert.db",
            &format!(
                "SELECT detail FROM audit_log WHERE action = 'sender.added' AND subject = '{}' ORDER BY seq DESC LIMIT 1",
                s1.id
            ),
        )
        .await;
    assert!(reinstated.contains("\"reinstated\":true"), "{reinstated}");
}

/// A delivery still queued when its sender is removed was signed by a key
/// now revoked: it is not delivered, and ends `failed` in the relay's
/// records (hidden from the tenant with the rest of the sender's history).
#[tokio::test]
async fn a_removed_senders_queued_delivery_is_not_delivered() {
    let app = TestApp::spawn().await;
    let (tenant, _, s1) = formedlare(&app);
    app.set_mailbox_open(false);
    let queued = send_as_ok(&app, &tenant.token, &s1, "I kön vid borttagning").await;
    let (status, _) = app
        .delete(
            &format!("/admin/v1/tenants/{FORMEDLARE}/senders/{}", s1.id),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.set_mailbox_open(true);
    app.drain().await;
    let status: String = app
        .query(
            "kuvert.db",
            &format!("SELECT status FROM deliveries WHERE id = '{queued}'"),
        )
        .await;
    assert_eq!(status, "failed");
    let anna = app.recipient("registered").id.clone();
    assert!(
        !app.inbox(&anna)
            .await
            .messages
            .iter()
            .any(|m| m.subject == "I kön vid borttagning")
    );
}

/// The command line does what the admin API does: a scoped credential
/// (shown with its scope by `tenant show`), a removal, a reinstatement.
#[tokio::test]
async fn the_command_line_scopes_credentials_and_removes_senders() {
    let app = TestApp::spawn().await;
    let (tenant, s0, s1) = formedlare(&app);
    let data = app.data_dir().to_str().unwrap().to_owned();
    let args = |list: &[&str]| {
        ["kuvert", "--data", &data]
            .iter()
            .chain(list)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    kuvert::cli::run(args(&[
        "tenant",
        "credential",
        "create",
        FORMEDLARE,
        "--sender",
        &s0.id,
    ]))
    .await
    .unwrap();
    let scoped: Vec<String> = app
        .query_all(
            "kuvert.db",
            "SELECT c.id FROM credentials c JOIN credential_senders s ON s.credential_id = c.id
              WHERE c.id NOT IN (SELECT credential_id FROM web_sender_grants)",
        )
        .await;
    assert_eq!(scoped.len(), 1);
    let (_, listing) = app
        .get(
            &format!("/admin/v1/tenants/{FORMEDLARE}/credentials"),
            Some(ADMIN_TOKEN),
        )
        .await;
    let row = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == scoped[0].as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["senders"], json!([s0.id]), "{listing}");
    // A sender the tenant does not have: refused, nothing stored.
    let (kommun, _) = app.kommun();
    let foreign = kommun.senders[0].id.clone();
    assert!(
        kuvert::cli::run(args(&[
            "tenant",
            "credential",
            "create",
            FORMEDLARE,
            "--sender",
            &foreign
        ]))
        .await
        .is_err()
    );
    assert_eq!(
        number(
            &app,
            "SELECT COUNT(*) FROM credential_senders WHERE credential_id NOT IN (SELECT credential_id FROM web_sender_grants)"
        )
        .await,
        1
    );

    kuvert::cli::run(args(&["tenant", "sender", "remove", FORMEDLARE, &s1.id]))
        .await
        .unwrap();
    let answer = send_as(&app, &tenant.token, &s1, "Efter CLI").await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "sender_not_allowed");
    assert!(
        kuvert::cli::run(args(&[
            "tenant", "sender", "add", FORMEDLARE, &s1.id, "Åter"
        ]))
        .await
        .is_err(),
        "a removed sender needs --reinstate"
    );
    kuvert::cli::run(args(&[
        "tenant",
        "sender",
        "add",
        FORMEDLARE,
        &s1.id,
        "Åter",
        "--reinstate",
    ]))
    .await
    .unwrap();
    let removed: Option<String> = app
        .query(
            "kuvert.db",
            &format!("SELECT removed_at FROM senders WHERE id = '{}'", s1.id),
        )
        .await;
    assert_eq!(removed, None);
}
