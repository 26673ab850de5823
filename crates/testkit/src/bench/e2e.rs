//! (2) and (5): a bulk send through the real sender API over loopback HTTP
//! until every message is delivered, with the server's CPU and memory.
//!
//! The client signs every delivery of the run before the clock starts (one
//! distinct signed delivery per message: kuvert delivers one signed delivery
//! once, so a pool sent again under new idempotency keys would be refused as
//! `duplicate_delivery`), and sends each with its own idempotency key. So
//! the client spends its CPU on HTTP only, not on signing, and the two cores
//! go to the server as far as possible. The price is client memory: about
//! 3 KB per 2 KiB message and 140 KB per PDF message, held until the run ends.

use super::server::{DataDir, Server};
use anyhow::{Context as _, ensure};
use kuvert_domain::identity::RecipientId;
use serde::Serialize;
use sqlx::Row as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A 2 KiB plain-text body.
    Text2k,
    /// The same plus a 100 KiB PDF attachment.
    Pdf100k,
}

#[derive(Debug, Clone)]
pub struct SendPlan {
    pub messages: usize,
    pub payload: Payload,
    pub recipients: usize,
    pub batch_size: usize,
    pub clients: usize,
}

/// One memory sample during a send.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub seconds: f64,
    /// Messages the server has answered "accepted" for so far.
    pub accepted: usize,
    pub outbox: i64,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SendResult {
    pub messages: usize,
    pub payload: Payload,
    pub batch_size: usize,
    pub clients: usize,
    pub recipients: usize,
    pub seconds_accepted: f64,
    pub seconds_delivered: f64,
    pub accepted_per_s: f64,
    pub delivered_per_s: f64,
    /// Deliveries per second while the senders were still posting (the
    /// worker shares the one writer connection with intake).
    pub delivered_while_sending_per_s: f64,
    /// Deliveries per second after the last batch was accepted.
    pub delivered_after_sending_per_s: f64,
    pub server_cpu_s: f64,
    /// Server CPU microseconds per delivered message.
    pub server_cpu_us_per_message: f64,
    /// Average cores the server kept busy while the send ran.
    pub server_cores_busy: f64,
    pub client_cpu_s: f64,
    pub server_peak_rss_mib: f64,
    /// Peak RSS when a quarter of the messages had been accepted.
    pub peak_rss_at_quarter_mib: f64,
    pub samples: Vec<Sample>,
}

/// `count` identity numbers: 999 serials per birth date from 1940-01-01.
pub fn recipient_number(i: usize) -> String {
    let start =
        time::Date::from_calendar_date(1940, time::Month::January, 1).unwrap_or(time::Date::MIN);
    let day = start + time::Duration::days((i / 999) as i64);
    let serial = u16::try_from(i % 999 + 1).unwrap_or(1);
    let yyyymmdd = format!(
        "{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    kuvert::demo::person_number(&yyyymmdd, serial)
}

pub fn recipient_tokens(data: &Path) -> anyhow::Result<kuvert_web::auth::RecipientTokens> {
    let keys = kuvert::keys::Keys::load_existing(data)?;
    Ok(kuvert_web::auth::RecipientTokens::new(keys.recipient_token))
}

/// Registers recipients 0..count with the built-in mailbox through the
/// register API, as each would do for themselves.
async fn register(
    http: &reqwest::Client,
    url: &str,
    data: &Path,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let tokens = Arc::new(recipient_tokens(data)?);
    let today = time::OffsetDateTime::now_utc().date();
    let numbers: Vec<String> = (0..count).map(recipient_number).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url, tokens, next, numbers) = (
            http.clone(),
            url.to_owned(),
            tokens.clone(),
            next.clone(),
            numbers.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(number) = numbers.get(i) else {
                    return anyhow::Ok(());
                };
                let id = RecipientId::parse(number, today)
                    .with_context(|| format!("generated identity number {number}"))?;
                kuvert_testkit::crash::register_with_built_in_mailbox(&http, &url, &tokens, &id)
                    .await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(numbers)
}

/// Each pooled delivery as batch-item JSON without its closing brace, so
/// that `,"idempotency_key":"…"}` completes it.
fn pool(data: &Path, plan: &SendPlan, numbers: &[String]) -> anyhow::Result<Vec<String>> {
    let demo = kuvert::demo::load(data)?;
    let (_, sender) = demo_kommun(&demo)?;
    let key = sender.key()?;
    let body = "Hej! Här kommer ett beslut från kommunen. ".repeat(50);
    let body = &body[..2048];
    let pdf = kuvert::client::minimal_pdf(&"kuvert ".repeat(14_600));
    // Signed on every core, before the clock starts.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = plan.messages.div_ceil(threads).max(1);
    let signed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..plan.messages)
            .step_by(chunk)
            .map(|start| {
                let (pdf, key, sender) = (&pdf, &key, sender);
                scope.spawn(move || {
                    (start..(start + chunk).min(plan.messages))
                        .map(|i| pooled(i, plan, sender, key, pdf, numbers, body))
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<Vec<String>>>>()
    })?;
    Ok(signed.into_iter().flatten().collect())
}

/// The `i`th delivery of a run, signed, as batch-item JSON without its
/// closing brace.
fn pooled(
    i: usize,
    plan: &SendPlan,
    sender: &kuvert::demo::DemoSender,
    key: &kuvert_crypto::signing::SigningKey,
    pdf: &[u8],
    numbers: &[String],
    body: &str,
) -> anyhow::Result<String> {
    let attachments = match plan.payload {
        Payload::Text2k => Vec::new(),
        Payload::Pdf100k => vec![kuvert::client::attachment(
            "beslut.pdf",
            "application/pdf",
            pdf,
        )],
    };
    let delivery = kuvert::client::simple_delivery(
        &sender.id,
        &sender.name,
        &numbers[i % numbers.len()],
        Some(format!("bench-pool-{i}")),
        &format!("Beslut nr {i}"),
        body,
        false,
        attachments,
    );
    let mut json = serde_json::to_string(&kuvert::client::sign(delivery, key))?;
    json.pop(); // the closing brace
    Ok(json)
}

/// The demo municipality and its first sender, whom the bench sends as.
pub fn demo_kommun(
    demo: &kuvert::demo::DemoData,
) -> anyhow::Result<(&kuvert::demo::DemoTenant, &kuvert::demo::DemoSender)> {
    let tenant = demo
        .tenants
        .iter()
        .find(|t| t.tenant == "demokommun")
        .context("demo tenant")?;
    let sender = tenant.senders.first().context("demo sender")?;
    Ok((tenant, sender))
}

pub fn sender_token(data: &Path) -> anyhow::Result<String> {
    let demo = kuvert::demo::load(data)?;
    Ok(demo_kommun(&demo)?.0.token.clone())
}

pub async fn read_only(file: &Path) -> anyhow::Result<sqlx::SqlitePool> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(true);
    Ok(sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

pub async fn run(plan: &SendPlan, keep: Option<&Path>) -> anyhow::Result<SendResult> {
    let dir = DataDir::new(keep, &format!("send-{:?}", plan.payload).to_lowercase())?;
    let server = Server::start(&dir.path).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let numbers = register(&http, &server.url, &dir.path, plan.recipients).await?;
    let token = sender_token(&dir.path)?;
    let pool = Arc::new(pool(&dir.path, plan, &numbers)?);
    let run_id = kuvert_crypto::digest::random_token(6);
    let core = read_only(&dir.path.join("kuvert.db")).await?;

    let cpu_before = server.cpu_seconds();
    let client_before = super::proc::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    let accepted = Arc::new(AtomicUsize::new(0));
    let next_batch = Arc::new(AtomicUsize::new(0));
    let batches = plan.messages.div_ceil(plan.batch_size);
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..plan.clients.max(1) {
        let (http, url, token, pool, accepted, next_batch, run_id) = (
            http.clone(),
            server.url.clone(),
            token.clone(),
            pool.clone(),
            accepted.clone(),
            next_batch.clone(),
            run_id.clone(),
        );
        let (batch_size, total) = (plan.batch_size, plan.messages);
        senders.spawn(async move {
            loop {
                let b = next_batch.fetch_add(1, Ordering::SeqCst);
                if b >= batches {
                    return anyhow::Ok(());
                }
                let range = b * batch_size..((b + 1) * batch_size).min(total);
                let count = range.len();
                let mut body = String::with_capacity(count * (pool[0].len() + 48) + 32);
                body.push_str("{\"deliveries\":[");
                for i in range {
                    if !body.ends_with('[') {
                        body.push(',');
                    }
                    body.push_str(&pool[i % pool.len()]);
                    body.push_str(&format!(",\"idempotency_key\":\"bench-{run_id}-{i}\"}}"));
                }
                body.push_str("]}");
                let response = http
                    .post(format!("{url}/v1/batches"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                let answer: serde_json::Value = response.json().await?;
                ensure!(status.is_success(), "batch {b}: HTTP {status}: {answer}");
                ensure!(
                    answer["accepted"] == count && answer["rejected"] == 0,
                    "batch {b}: not all accepted: accepted {}, rejected {}",
                    answer["accepted"],
                    answer["rejected"]
                );
                accepted.fetch_add(count, Ordering::SeqCst);
            }
        });
    }

    // Watch: samples every 250 ms until every message is accepted and the
    // relay's queue is empty.
    let mut samples = Vec::new();
    let mut seconds_accepted = None;
    let mut quarter_peak = None;
    loop {
        while let Some(done) = senders.try_join_next() {
            done??;
        }
        let now_accepted = accepted.load(Ordering::SeqCst);
        if seconds_accepted.is_none() && now_accepted >= plan.messages {
            seconds_accepted = Some(started.elapsed().as_secs_f64());
        }
        let outbox: i64 = sqlx::query("SELECT COUNT(*) FROM outbox")
            .fetch_one(&core)
            .await?
            .try_get(0)?;
        let peak = server.peak_rss_mib();
        if quarter_peak.is_none() && now_accepted * 4 >= plan.messages {
            quarter_peak = Some(peak);
        }
        samples.push(Sample {
            seconds: started.elapsed().as_secs_f64(),
            accepted: now_accepted,
            outbox,
            rss_mib: server.rss_mib(),
            peak_rss_mib: peak,
        });
        if seconds_accepted.is_some() && outbox == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    while let Some(done) = senders.join_next().await {
        done??;
    }
    let seconds_delivered = started.elapsed().as_secs_f64();
    let server_cpu_s = server.cpu_seconds() - cpu_before;
    let client_cpu_s = super::proc::cpu_seconds(std::process::id()).unwrap_or(0.0) - client_before;
    let server_peak_rss_mib = server.peak_rss_mib();

    let delivered: i64 = sqlx::query("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
        .fetch_one(&core)
        .await?
        .try_get(0)?;
    core.close().await;
    ensure!(
        usize::try_from(delivered).unwrap_or(0) == plan.messages,
        "{delivered} of {} delivered",
        plan.messages
    );
    server.stop().await?;
    let seconds_accepted = seconds_accepted.unwrap_or(seconds_delivered);
    let n = plan.messages as f64;
    // The queue when the last batch had been accepted: what was delivered
    // before that, and how fast the rest went.
    let at_accepted = samples
        .iter()
        .find(|s| s.accepted >= plan.messages)
        .map_or((seconds_delivered, 0), |s| (s.seconds, s.outbox.max(0)));
    let queued = at_accepted.1 as f64;
    let delivered_while_sending_per_s = (n - queued) / at_accepted.0.max(1e-3);
    let delivered_after_sending_per_s = if queued > 0.0 {
        queued / (seconds_delivered - at_accepted.0).max(1e-3)
    } else {
        f64::NAN
    };
    Ok(SendResult {
        messages: plan.messages,
        payload: plan.payload,
        batch_size: plan.batch_size,
        clients: plan.clients,
        recipients: plan.recipients,
        seconds_accepted,
        seconds_delivered,
        accepted_per_s: n / seconds_accepted,
        delivered_per_s: n / seconds_delivered,
        delivered_while_sending_per_s,
        delivered_after_sending_per_s,
        server_cpu_s,
        server_cpu_us_per_message: server_cpu_s * 1e6 / n,
        server_cores_busy: server_cpu_s / seconds_delivered,
        client_cpu_s,
        server_peak_rss_mib,
        peak_rss_at_quarter_mib: quarter_peak.unwrap_or(f64::NAN),
        samples,
    })
}
