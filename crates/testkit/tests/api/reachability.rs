//! The register as senders and recipients see it: the reachability lookup
//! (kontrollsökning) answers per recipient in order, and what a recipient
//! changes through `/register/v1/me` changes both what the lookup says and
//! where a delivery goes.

use kuvert_testkit::{TestApp, assert_problem, assert_problem_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A lookup as `tenant` for `sender`; expects 200 and returns the results.
async fn lookup(app: &TestApp, tenant: &str, sender: &str, ids: &[&str]) -> Vec<Value> {
    let token = app.tenant(tenant).token.clone();
    let (status, body) = app.reachability(&token, sender, ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), ids.len(), "one answer per id: {body}");
    results
}

/// The demo municipality's view of one recipient.
async fn kommun_view(app: &TestApp, id: &str) -> Value {
    let sender = app.kommun().1.id.clone();
    lookup(app, "demokommun", &sender, &[id]).await.remove(0)
}

/// Sends from the demo municipality and returns the final status view.
async fn send_final(app: &TestApp, to: &str, subject: &str) -> Value {
    let (tenant, _) = app.kommun();
    let id = app.send_ok(to, subject).await;
    app.wait_final(&tenant.token, &id).await
}

/// The recipient's own registration (`GET /register/v1/me`), asserting 200.
async fn profile(app: &TestApp, token: &str) -> Value {
    let (status, me) = app.get("/register/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

/// Registers the recipient with `operator` (`PUT /register/v1/me`).
async fn register(app: &TestApp, token: &str, operator: &str) -> (StatusCode, Value) {
    app.put(
        "/register/v1/me",
        Some(token),
        &json!({ "operator_id": operator }),
    )
    .await
}

// ---------------------------------------------------------------------------
// The lookup
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_lookup_answers_each_recipient_in_order_for_the_asking_sender() {
    let mut app = TestApp::spawn().await;
    let sender = app.kommun().1.id.clone();
    let anna = app.recipient("registered").id.clone();
    let cecilia = app.recipient("not_registered").id.clone();
    let david = app.recipient("refuses_demokommun").id.clone();
    let forening = app.recipient("pending").id.clone();
    // Anna's number with a wrong check digit.
    let last = anna.chars().last().unwrap().to_digit(10).unwrap();
    let invalid = format!("{}{}", &anna[..11], (last + 1) % 10);
    let ids = [
        anna.as_str(),
        cecilia.as_str(),
        invalid.as_str(),
        david.as_str(),
        forening.as_str(),
    ];
    let r = lookup(&app, "demokommun", &sender, &ids).await;
    for (i, asked) in ids.iter().enumerate() {
        assert_eq!(
            r[i]["recipient"], *asked,
            "answer {i} is for the id asked: {r:?}"
        );
    }

    // Registered: secure, accepts this sender, through the built-in mailbox.
    assert_eq!(r[0]["recipient_id"], anna.as_str());
    assert_eq!(r[0]["type"], "secure", "{}", r[0]);
    assert_eq!(r[0]["sender_accepted"], true, "{}", r[0]);
    assert_eq!(r[0]["pending"], false, "{}", r[0]);
    let supplier = &r[0]["service_supplier"];
    assert_eq!(supplier["id"], "kuvert-brevlada", "{}", r[0]);
    let address = supplier["service_address"].as_str().unwrap();
    assert!(
        address.ends_with("/mailbox/v1/deliveries"),
        "service address {address}"
    );

    // Not registered.
    assert_eq!(r[1]["type"], "not", "{}", r[1]);
    assert_eq!(r[1]["sender_accepted"], false, "{}", r[1]);
    assert!(r[1]["service_supplier"].is_null(), "{}", r[1]);

    // Invalid: its own answer, with a reason that does not repeat the id.
    assert_eq!(r[2]["type"], "invalid", "{}", r[2]);
    assert_eq!(r[2]["sender_accepted"], false, "{}", r[2]);
    assert!(r[2]["recipient_id"].is_null(), "{}", r[2]);
    let error = r[2]["error"].as_str().expect("an error for the invalid id");
    assert!(
        !error.is_empty() && !error.contains(&invalid[2..]),
        "{error}"
    );

    // David refuses this sender: secure, but not accepted.
    assert_eq!(r[3]["type"], "secure", "{}", r[3]);
    assert_eq!(r[3]["sender_accepted"], false, "{}", r[3]);

    // The organisation awaiting signatories.
    assert_eq!(r[4]["pending"], true, "{}", r[4]);
    assert_eq!(r[4]["sender_accepted"], false, "{}", r[4]);
    app.stop().await;
}

#[tokio::test]
async fn a_recipient_refusing_one_sender_is_still_accepted_for_another() {
    let mut app = TestApp::spawn().await;
    let david = app.recipient("refuses_demokommun").id.clone();
    let formedlare = app.tenant("demoformedlare").clone();
    let view = kommun_view(&app, &david).await;
    assert_eq!(view["sender_accepted"], false, "{view}");
    for sender in &formedlare.senders {
        let r = lookup(&app, "demoformedlare", &sender.id, &[&david]).await;
        assert_eq!(r[0]["type"], "secure", "{}", r[0]);
        assert_eq!(r[0]["sender_accepted"], true, "{}", r[0]);
    }
    // And so mail from the förmedlare is delivered to him.
    let signed = app
        .letter(&formedlare.senders[0], &david, "Beslut")
        .signed();
    app.send_delivered(&formedlare.token, &signed).await;
    assert_eq!(app.inbox(&david).await.total, 1);
    app.stop().await;
}

#[tokio::test]
async fn every_written_form_of_a_number_gives_the_same_canonical_recipient_id() {
    let mut app = TestApp::spawn().await;
    let sender = app.kommun().1.id.clone();
    let anna = app.recipient("registered").id.clone(); // YYYYMMDDNNNC
    let forms = [
        anna.clone(),
        format!("{}-{}", &anna[..8], &anna[8..]),
        anna[2..].to_owned(),
        format!("{}-{}", &anna[2..8], &anna[8..]),
        format!(" {} ", &anna[2..]),
    ];
    let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
    let r = lookup(&app, "demokommun", &sender, &refs).await;
    for (i, answer) in r.iter().enumerate() {
        assert_eq!(answer["recipient"], forms[i].as_str(), "{answer}");
        assert_eq!(
            answer["recipient_id"],
            anna.as_str(),
            "form {:?}: {answer}",
            forms[i]
        );
        assert_eq!(answer["type"], "secure", "form {:?}: {answer}", forms[i]);
        assert_eq!(
            answer["sender_accepted"], true,
            "form {:?}: {answer}",
            forms[i]
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_lookup_for_a_sender_the_credential_does_not_own_is_403() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let kommun = app.kommun().0.token.clone();
    let formedlare_sender = app.tenant("demoformedlare").senders[0].id.clone();
    let unknown = kuvert::demo::organisation_number("556677889");
    for sender in [formedlare_sender, unknown] {
        assert_problem_for(
            &sender,
            &app.reachability(&kommun, &sender, &[&anna]).await,
            StatusCode::FORBIDDEN,
            "sender_not_allowed",
        );
    }
    // Without a credential at all: 401.
    let sender = &app.kommun().1.id;
    let request = json!({ "sender": sender, "recipients": [anna] });
    assert_problem(
        &app.post("/v1/reachability", None, &request).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_lookup_with_no_recipients_or_an_invalid_sender_id_is_422() {
    let mut app = TestApp::spawn().await;
    let (tenant, sender) = app.kommun();
    let none: [&str; 0] = [];
    assert_problem(
        &app.reachability(&tenant.token, &sender.id, &none).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_recipients",
    );
    let anna = &app.recipient("registered").id;
    assert_problem(
        &app.reachability(&tenant.token, "not-a-number", &[anna])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sender_id",
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// The recipient's register API
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_recipient_sees_their_own_registration() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let me = profile(&app, &app.registration_token(&anna)).await;
    assert_eq!(me["recipient_id"], anna.as_str());
    assert_eq!(me["status"], "registered");
    assert_eq!(me["operator_id"], "kuvert-brevlada");
    assert_eq!(me["refused_senders"], json!([]));

    let david = app.recipient("refuses_demokommun").id.clone();
    let me = profile(&app, &app.registration_token(&david)).await;
    assert_eq!(me["status"], "registered");
    assert_eq!(me["refused_senders"], json!([app.kommun().1.id]));

    let cecilia = app.recipient("not_registered").id.clone();
    let me = profile(&app, &app.registration_token(&cecilia)).await;
    assert_eq!(me["status"], "none", "{me}");
    assert!(me["operator_id"].is_null(), "{me}");

    // A sender credential is not a recipient token.
    assert_problem(
        &app.get("/register/v1/me", Some(&app.kommun().0.token))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.stop().await;
}

#[tokio::test]
async fn registering_with_the_built_in_mailbox_makes_sends_deliverable() {
    let mut app = TestApp::spawn().await;
    let cecilia = app.recipient("not_registered").id.clone();
    let token = app.registration_token(&cecilia);
    let before = send_final(&app, &cecilia, "Före").await;
    assert_eq!(before["status"], "not_delivered", "{before}");
    assert_eq!(before["reason"], "not_registered", "{before}");

    let (status, body) = register(&app, &token, "kuvert-brevlada").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let me = profile(&app, &token).await;
    assert_eq!(me["status"], "registered", "{me}");
    assert_eq!(me["operator_id"], "kuvert-brevlada", "{me}");
    let view = kommun_view(&app, &cecilia).await;
    assert_eq!(view["type"], "secure", "{view}");
    assert_eq!(view["sender_accepted"], true, "{view}");

    let after = send_final(&app, &cecilia, "Efter").await;
    assert_eq!(after["status"], "delivered", "{after}");
    let page = app.messages(&app.recipient_token(&cecilia), "").await;
    assert_eq!(
        page.total, 1,
        "only the send after registering arrives: {page:?}"
    );
    assert_eq!(page.messages[0].subject, "Efter");
    app.stop().await;
}

#[tokio::test]
async fn a_person_under_18_cannot_register_and_stays_unregistered() {
    let mut app = TestApp::spawn().await;
    let eva = app.recipient("too_young").id.clone();
    let token = app.registration_token(&eva);
    assert_problem(
        &register(&app, &token, "kuvert-brevlada").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_young",
    );
    let me = profile(&app, &token).await;
    assert_eq!(me["status"], "none", "{me}");
    let view = kommun_view(&app, &eva).await;
    assert_eq!(view["type"], "not", "{view}");
    let sent = send_final(&app, &eva, "Kallelse").await;
    assert_eq!(sent["status"], "not_delivered", "{sent}");
    assert_eq!(app.inbox(&eva).await.total, 0);
    app.stop().await;
}

#[tokio::test]
async fn registering_with_an_unknown_operator_is_422_and_changes_nothing() {
    let mut app = TestApp::spawn().await;
    let cecilia = app.recipient("not_registered").id.clone();
    let token = app.registration_token(&cecilia);
    for operator in ["no-such-operator", "Not An Id!"] {
        assert_problem_for(
            operator,
            &register(&app, &token, operator).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_operator",
        );
    }
    let me = profile(&app, &token).await;
    assert_eq!(me["status"], "none", "{me}");
    assert_eq!(kommun_view(&app, &cecilia).await["type"], "not");
    app.stop().await;
}

#[tokio::test]
async fn refusing_and_accepting_a_sender_changes_the_lookup_and_the_delivery() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.registration_token(&anna);
    let sender = app.kommun().1.id.clone();
    let path = format!("/register/v1/me/refused-senders/{sender}");

    let (status, body) = app.request(Method::PUT, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let me = profile(&app, &token).await;
    assert_eq!(me["refused_senders"], json!([sender]), "{me}");
    let view = kommun_view(&app, &anna).await;
    assert_eq!(view["type"], "secure", "{view}");
    assert_eq!(view["sender_accepted"], false, "{view}");
    let refused = send_final(&app, &anna, "Vägrad").await;
    assert_eq!(refused["status"], "not_delivered", "{refused}");
    assert_eq!(refused["reason"], "sender_refused", "{refused}");
    assert_eq!(app.inbox(&anna).await.total, 0);

    let (status, body) = app.delete(&path, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let me = profile(&app, &token).await;
    assert_eq!(me["refused_senders"], json!([]), "{me}");
    let view = kommun_view(&app, &anna).await;
    assert_eq!(view["sender_accepted"], true, "{view}");
    let accepted = send_final(&app, &anna, "Välkommen").await;
    assert_eq!(accepted["status"], "delivered", "{accepted}");
    assert_eq!(app.inbox(&anna).await.total, 1);
    app.stop().await;
}

#[tokio::test]
async fn refusing_an_invalid_sender_id_is_422_invalid_sender_id() {
    let mut app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.registration_token(&anna);
    // A valid organisation number with its check digit changed.
    let valid = kuvert::demo::organisation_number("556677889");
    let last = valid.chars().last().unwrap().to_digit(10).unwrap();
    let invalid = format!("{}{}", &valid[..9], (last + 1) % 10);
    let path = format!("/register/v1/me/refused-senders/{invalid}");
    assert_problem(
        &app.request(Method::PUT, &path, Some(&token), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_sender_id",
    );
    let me = profile(&app, &token).await;
    assert_eq!(me["refused_senders"], json!([]), "{me}");
    app.stop().await;
}

#[tokio::test]
async fn deregistering_makes_later_sends_not_delivered() {
    let mut app = TestApp::spawn().await;
    let bertil = app.person("Bertil Berg");
    let token = app.registration_token(&bertil);
    let before = send_final(&app, &bertil, "Före").await;
    assert_eq!(before["status"], "delivered", "{before}");

    let (status, body) = app.delete("/register/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let me = profile(&app, &token).await;
    assert_eq!(me["status"], "deregistered", "{me}");
    assert!(me["operator_id"].is_null(), "{me}");
    let view = kommun_view(&app, &bertil).await;
    assert_eq!(view["type"], "not", "{view}");
    assert_eq!(view["sender_accepted"], false, "{view}");
    assert!(view["service_supplier"].is_null(), "{view}");

    let after = send_final(&app, &bertil, "Efter").await;
    assert_eq!(after["status"], "not_delivered", "{after}");
    assert_eq!(after["reason"], "not_registered", "{after}");
    // The message delivered before stays; nothing new arrives.
    assert_eq!(app.inbox(&bertil).await.total, 1);
    app.stop().await;
}

#[tokio::test]
async fn deregistering_someone_never_registered_is_409_not_registered() {
    let mut app = TestApp::spawn().await;
    let cecilia = app.recipient("not_registered").id.clone();
    let token = app.registration_token(&cecilia);
    assert_problem(
        &app.delete("/register/v1/me", Some(&token)).await,
        StatusCode::CONFLICT,
        "not_registered",
    );
    let me = profile(&app, &token).await;
    assert_eq!(me["status"], "none", "{me}");
    app.stop().await;
}
