//! The largest request of each kind, and the server memory it costs
//! (issue 17): each kind on a fresh server (`kuvert serve --demo` as a child
//! process), its peak resident memory (`VmHWM`) after the request and the
//! delivery it causes, beside its resident memory just before. Not a test:
//! the figures go in docs/reliability.md.

use super::server::{DataDir, Server};
use anyhow::{Context as _, ensure};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// One kind of request, at its documented maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `POST /v1/deliveries`: one delivery of 2 MiB canonical form (a PDF
    /// attachment of about 1.5 MiB), then delivered and read back.
    #[serde(rename = "single_2mib")]
    Single2MiB,
    /// `POST /v1/batches`: 15 deliveries of 2 MiB each (27 MiB of body; a
    /// 16th would pass the 32 MiB limit with its JSON).
    #[serde(rename = "batch_15_x_2mib")]
    Batch32MiB,
    /// `POST /v1/batches`: 10 000 small deliveries (the count limit).
    #[serde(rename = "batch_10000")]
    Batch10000,
    /// `POST /v1/batches`: 32 MiB of items over the 3 MiB item limit (each a
    /// million empty metadata entries): refused from their length.
    BatchOversizedItems,
    /// `POST /v1/reachability`: 1000 ids (the limit).
    #[serde(rename = "lookup_1000")]
    Lookup1000,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Single2MiB,
        Kind::Batch32MiB,
        Kind::Batch10000,
        Kind::BatchOversizedItems,
        Kind::Lookup1000,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Single2MiB => "POST /v1/deliveries, 2 MiB (+ delivery, message read)",
            Kind::Batch32MiB => "POST /v1/batches, 15 × 2 MiB (27 MiB, + delivery)",
            Kind::Batch10000 => "POST /v1/batches, 10 000 deliveries (+ delivery)",
            Kind::BatchOversizedItems => "POST /v1/batches, 32 MiB of items over 3 MiB",
            Kind::Lookup1000 => "POST /v1/reachability, 1000 ids",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Largest {
    pub kind: Kind,
    pub request_bytes: usize,
    pub status: u16,
    /// Resident memory just before the request.
    pub rss_before_mib: f64,
    /// Peak resident memory of the process after it (and the delivery).
    pub peak_after_mib: f64,
    /// What the request added at its peak: `peak_after - rss_before`.
    pub added_mib: f64,
}

/// A PDF whose base64 makes a delivery of just under 2 MiB canonical form.
fn large_pdf() -> Vec<u8> {
    kuvert::client::minimal_pdf(&"kuvert ".repeat(200_000))
}

pub async fn run(keep: Option<&Path>) -> anyhow::Result<Vec<Largest>> {
    let mut results = Vec::new();
    for kind in Kind::ALL {
        let dir = DataDir::new(keep, &format!("largest-{kind:?}").to_lowercase())?;
        let server = Server::start(&dir.path).await?;
        let result = measure(kind, &server, &dir.path).await;
        server.stop().await?;
        results.push(result?);
    }
    Ok(results)
}

async fn measure(kind: Kind, server: &Server, data: &Path) -> anyhow::Result<Largest> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let demo = kuvert::demo::load(data)?;
    let (tenant, sender) = super::e2e::demo_kommun(&demo)?;
    let key = sender.key()?;
    let anna = demo
        .recipients
        .iter()
        .find(|r| r.state == "registered")
        .context("a registered demo recipient")?;
    let signed = |i: usize, attachments: Vec<kuvert_domain::delivery::Attachment>| {
        let delivery = kuvert::client::simple_delivery(
            &sender.id,
            &sender.name,
            &anna.id,
            Some(format!("largest-{i}")),
            &format!("Stort brev {i}"),
            "Hej!",
            false,
            attachments,
        );
        kuvert::client::sign(delivery, &key)
    };
    let pdf = large_pdf();
    let (path, body) = match kind {
        Kind::Single2MiB => (
            "/v1/deliveries",
            serde_json::to_string(&signed(
                0,
                vec![kuvert::client::attachment(
                    "stor.pdf",
                    "application/pdf",
                    &pdf,
                )],
            ))?,
        ),
        Kind::Batch32MiB => {
            let items: Vec<_> = (0..15)
                .map(|i| {
                    let s = signed(
                        i,
                        vec![kuvert::client::attachment(
                            "stor.pdf",
                            "application/pdf",
                            &pdf,
                        )],
                    );
                    serde_json::json!({ "delivery": s.delivery, "signature": s.signature })
                })
                .collect();
            (
                "/v1/batches",
                serde_json::json!({ "deliveries": items }).to_string(),
            )
        }
        Kind::Batch10000 => {
            let items: Vec<_> = (0..10_000)
                .map(|i| {
                    let s = signed(i, Vec::new());
                    serde_json::json!({ "delivery": s.delivery, "signature": s.signature })
                })
                .collect();
            (
                "/v1/batches",
                serde_json::json!({ "deliveries": items }).to_string(),
            )
        }
        Kind::BatchOversizedItems => {
            let entries = vec![r#"{"tag":"","value":""}"#; 150_000].join(",");
            let item = format!(
                r#"{{"delivery":{{"header":{{"sender":{{"id":"{}","name":"x"}},"recipient":"{}"}},"messages":[{{"header":{{"id":"1","subject":"x","metadata":[{entries}],"support_info":{{"text":"x"}},"language":"sv"}},"body":{{"content_type":"text/plain","body":"x"}}}}]}},"signature":{{"algorithm":"ed25519","key_id":"{}","value":"AA=="}}}}"#,
                sender.id, anna.id, sender.key_id
            );
            let per_item = item.len();
            let count = (32 * 1024 * 1024 - 1024) / (per_item + 1);
            let items = vec![item; count].join(",");
            ("/v1/batches", format!(r#"{{"deliveries":[{items}]}}"#))
        }
        Kind::Lookup1000 => {
            let ids: Vec<String> = (0..1000).map(super::e2e::recipient_number).collect();
            (
                "/v1/reachability",
                serde_json::json!({ "sender": sender.id, "recipients": ids }).to_string(),
            )
        }
    };
    let request_bytes = body.len();
    // Let the start settle (register snapshot, checkpoints) before the
    // figure is taken.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before_mib = server.rss_mib();
    let answer = http
        .post(format!("{}{path}", server.url))
        .bearer_auth(&tenant.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = answer.status().as_u16();
    let text = answer.text().await?;
    ensure!(status < 300, "{kind:?} answered {status}: {text:.300}");
    if matches!(kind, Kind::Single2MiB | Kind::Batch32MiB | Kind::Batch10000) {
        wait_delivered(server, data).await?;
    }
    if kind == Kind::Single2MiB {
        read_back(&http, server, &anna.token).await?;
    }
    let peak_after_mib = server.peak_rss_mib();
    Ok(Largest {
        kind,
        request_bytes,
        status,
        rss_before_mib,
        peak_after_mib,
        added_mib: peak_after_mib - rss_before_mib,
    })
}

/// Until the queue is empty (every accepted delivery delivered).
async fn wait_delivered(server: &Server, data: &Path) -> anyhow::Result<()> {
    let core = super::e2e::read_only(&data.join("kuvert.db")).await?;
    for _ in 0..1200 {
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&core)
            .await?;
        if queued == 0 {
            core.close().await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{}: deliveries still queued after 120 s", server.url)
}

/// Opens the newest message and downloads its attachment, as Anna.
async fn read_back(http: &reqwest::Client, server: &Server, token: &str) -> anyhow::Result<()> {
    let page: serde_json::Value = http
        .get(format!("{}/mailbox/v1/messages", server.url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = page["messages"][0]["id"]
        .as_str()
        .context("a message in the inbox")?;
    http.get(format!("{}/mailbox/v1/messages/{id}", server.url))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    http.get(format!(
        "{}/mailbox/v1/messages/{id}/attachments/0",
        server.url
    ))
    .bearer_auth(token)
    .send()
    .await?
    .error_for_status()?
    .bytes()
    .await?;
    Ok(())
}
