//! A bound on every dimension of a delivery (issue 17): each documented
//! limit refused just over it, with its code, before the costly checks,
//! and nothing stored. Before these limits a 1 MiB sender name, 9 000
//! messages in one delivery and 60 000 metadata entries were all accepted,
//! and one tag of many attributes held a core for minutes.

use kuvert_domain::delivery::{
    MAX_ATTACHMENTS, MAX_MESSAGES, MAX_METADATA_ENTRIES, MAX_METADATA_VALUE_CHARS,
    MAX_SHORT_TEXT_CHARS, Metadata, SecureDelivery,
};
use kuvert_testkit::{TestApp, assert_problem};
use reqwest::StatusCode;
use std::time::Duration;

async fn deliveries(app: &TestApp) -> i64 {
    app.query("kuvert.db", "SELECT COUNT(*) FROM deliveries")
        .await
}

/// Sends the demo municipality's letter to Anna, changed by `change`, and
/// asserts the refusal `code` with the field or list named; nothing stored.
async fn refused(app: &TestApp, change: impl FnOnce(&mut SecureDelivery), code: &str, named: &str) {
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let before = deliveries(app).await;
    let signed = app.kommun_letter(&anna, "Gränsfall").with(change).signed();
    let problem = assert_problem(
        &app.send(&tenant.token, &signed).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(named),
        "the refusal names {named}: {problem}"
    );
    assert_eq!(deliveries(app).await, before, "nothing stored");
}

#[tokio::test]
async fn every_text_field_has_a_length_just_over_which_it_is_refused() {
    let app = TestApp::spawn().await;
    let over = "x".repeat(MAX_SHORT_TEXT_CHARS + 1);
    let o = over.clone();
    refused(
        &app,
        move |d| d.header.sender.name = o,
        "field_too_long",
        "header.sender.name",
    )
    .await;
    let o = over.clone();
    refused(
        &app,
        move |d| d.header.reference = Some(o),
        "field_too_long",
        "header.reference",
    )
    .await;
    let o = over.clone();
    refused(
        &app,
        move |d| d.header.correlation_id = Some(o),
        "field_too_long",
        "header.correlation_id",
    )
    .await;
    let value = "v".repeat(MAX_METADATA_VALUE_CHARS + 1);
    refused(
        &app,
        move |d| {
            d.messages[0].header.metadata = vec![Metadata {
                tag: "ärende".to_owned(),
                value,
            }]
        },
        "field_too_long",
        "messages[0].header.metadata[0].value",
    )
    .await;

    // At the limit, in characters (not bytes): accepted.
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let at_limit = "å".repeat(MAX_SHORT_TEXT_CHARS);
    let signed = app
        .kommun_letter(&anna, "Precis på gränsen")
        .with(|d| d.header.sender.name = at_limit)
        .signed();
    app.send_accepted(&tenant.token, &signed).await;
}

#[tokio::test]
async fn every_list_has_a_count_just_over_which_it_is_refused() {
    let app = TestApp::spawn().await;
    refused(
        &app,
        |d| {
            let first = d.messages[0].clone();
            d.messages = (0..=MAX_MESSAGES)
                .map(|n| {
                    let mut m = first.clone();
                    m.header.id = format!("m{n}");
                    m
                })
                .collect();
        },
        "too_many_items",
        "messages",
    )
    .await;
    refused(
        &app,
        |d| {
            d.messages[0].header.metadata = (0..=MAX_METADATA_ENTRIES)
                .map(|n| Metadata {
                    tag: format!("t{n}"),
                    value: String::new(),
                })
                .collect()
        },
        "too_many_items",
        "messages[0].header.metadata",
    )
    .await;
    let pdf = kuvert::client::attachment(
        "beslut.pdf",
        "application/pdf",
        &kuvert::client::minimal_pdf("Bilaga"),
    );
    refused(
        &app,
        move |d| d.messages[0].attachments = vec![pdf; MAX_ATTACHMENTS + 1],
        "too_many_items",
        "messages[0].attachments",
    )
    .await;
}

/// One tag of 150 000 attributes, under a signature that does not even
/// verify: refused at once by a linear scan, before the HTML parser (which
/// compares each attribute with every earlier one: minutes of CPU).
#[tokio::test]
async fn a_tag_with_a_huge_number_of_attributes_is_refused_before_the_parser() {
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let (tenant, _) = app.kommun();
    let attributes: Vec<String> = (0..150_000).map(|n| format!("a{n}")).collect();
    let html = format!("<p {}>Hej</p>", attributes.join(" "));
    let mut signed = app
        .kommun_letter(&anna, "Många attribut")
        .with(|d| {
            d.messages[0].body.content_type = kuvert_domain::delivery::BodyContentType::TextHtml;
            d.messages[0].body.body = html;
        })
        .signed();
    signed.signature.value = app.kommun_signed(&anna, "Annat").signature.value;
    // A bounded wait: the old parser did not answer within minutes.
    let answer = tokio::time::timeout(Duration::from_secs(60), app.send(&tenant.token, &signed))
        .await
        .expect("answered without parsing 150 000 attributes");
    let problem = assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unsafe_html");
    assert!(
        problem["detail"].as_str().unwrap().contains("attributes"),
        "{problem}"
    );
}

/// Posts a raw batch body (the items as JSON text, as a client wrote them).
async fn raw_batch(
    app: &TestApp,
    token: &str,
    items: &[String],
) -> (StatusCode, serde_json::Value) {
    let body = format!("{{\"deliveries\":[{}]}}", items.join(","));
    kuvert_testkit::exchange(
        app.http_request(reqwest::Method::POST, "/v1/batches", Some(token))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
    .parts()
}

#[tokio::test]
async fn a_batch_item_over_its_raw_limit_is_refused_unparsed_and_the_others_go_on() {
    use kuvert_web::api::batches::MAX_BATCH_ITEM_BYTES;
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let token = app.kommun().0.token.clone();
    let item = |subject: &str| {
        serde_json::to_string(&kuvert_testkit::batch_item(
            &app.kommun_signed(&anna, subject),
            None,
        ))
        .unwrap()
    };
    // One authenticated item of a million empty metadata entries (which,
    // parsed and turned into a value tree, once cost gigabytes), written
    // raw: refused from its length alone.
    let entries = vec![r#"{"tag":"","value":""}"#; 1_000_000].join(",");
    let huge = item("Stor").replacen(
        r#""subject":"Stor""#,
        &format!(r#""metadata":[{entries}],"subject":"Stor""#),
        1,
    );
    assert!(huge.len() > MAX_BATCH_ITEM_BYTES, "{}", huge.len());
    // Just at the limit by white space inside the item: read as usual.
    let ordinary = item("Vanlig");
    let padded = ordinary.replacen(
        '{',
        &format!("{{{}", " ".repeat(MAX_BATCH_ITEM_BYTES - ordinary.len())),
        1,
    );
    assert_eq!(padded.len(), MAX_BATCH_ITEM_BYTES);
    let unreadable = r#"{"delivery":5,"signature":{}}"#.to_owned();
    let (status, body) = raw_batch(&app, &token, &[huge, padded, unreadable]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    assert_eq!(body["results"][0]["error"]["code"], "delivery_too_large");
    assert_eq!(body["results"][0]["error"]["status"], 413);
    assert!(body["results"][1]["delivery_id"].is_string(), "{body}");
    assert_eq!(body["results"][2]["error"]["code"], "invalid_request");
    assert_eq!(deliveries(&app).await, 1);
}

#[tokio::test]
async fn a_batch_of_more_items_than_allowed_is_refused_while_it_is_read() {
    use kuvert_web::api::batches::MAX_BATCH;
    let app = TestApp::spawn().await;
    let token = app.kommun().0.token.clone();
    let items = vec!["{}".to_owned(); MAX_BATCH + 1];
    let answer = raw_batch(&app, &token, &items).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "bad_batch_size");
    assert_eq!(deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_relay_request_of_more_deliveries_than_allowed_is_refused_whole() {
    use kuvert_mailbox::MAX_DELIVERIES_PER_REQUEST;
    let app = TestApp::spawn().await;
    let anna = app.recipient("registered").id.clone();
    let sealed: kuvert_mailbox::protocol::SealedDelivery =
        serde_json::from_slice(&app.queued_sealed_delivery(&anna, "Många").await).unwrap();
    app.drain().await;
    let before = app.mailbox_delivery_count().await;
    let answer = app
        .deliver_sealed(vec![sealed; MAX_DELIVERIES_PER_REQUEST + 1])
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_deliveries",
    );
    assert_eq!(app.mailbox_delivery_count().await, before);
}
