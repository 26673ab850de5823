//! (3) reachability lookups and (4) mailbox reading, on large stores.
//!
//! The data is written straight into the databases of a stopped instance
//! (setup, not measured; `synchronous=OFF` while loading): recipients as
//! registered rows in `kuvert.db`, messages into `mailbox.db` encrypted
//! exactly as the mailbox stores them (`kuvert_mailbox::at_rest::encrypt_row`:
//! a fresh data key per message wrapped under a key derived from the
//! installation's KEK for that row, summary and content JSON under
//! AES-256-GCM bound to the row's columns), so listing and opening decrypt
//! real rows. What the loader does not write: audit entries for the loaded
//! rows, and signed receipts (a placeholder of the same size).

use super::e2e::{recipient_number, recipient_tokens, sender_token};
use super::server::{DataDir, Server};
use anyhow::{Context as _, ensure};
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::{DeliveryId, MailboxMessageId};
use kuvert_mailbox::at_rest::{RowBinding, StoredContent, Summary, encrypt_row};
use kuvert_store::format_instant;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReadingPlan {
    pub recipients: usize,
    /// Messages in the mailbox (0: no mailbox part).
    pub messages: usize,
    pub reach: bool,
    pub mailbox: bool,
    /// Timed requests per figure and run.
    pub samples: usize,
    pub runs: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
        ms.get(i).copied().unwrap_or(f64::NAN)
    };
    Latency {
        samples: ms.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReachRun {
    /// One client, one request after the other: latency of a 1000-id batch.
    pub sequential: Latency,
    /// Four clients at once: ids answered per second.
    pub ids_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxRun {
    pub list_first_page: Latency,
    pub open_message: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadingResult {
    pub recipients: usize,
    pub messages: usize,
    pub load_recipients_s: f64,
    pub load_messages_s: f64,
    pub mailbox_db_mib: f64,
    pub reach: Vec<ReachRun>,
    pub mailbox: Vec<MailboxRun>,
    pub server_peak_rss_mib: f64,
}

async fn loader(path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-262144");
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

async fn load_recipients(data: &Path, count: usize) -> anyhow::Result<()> {
    let pool = loader(&data.join("kuvert.db")).await?;
    let now = format_instant(time::OffsetDateTime::now_utc());
    let mut tx = pool.begin().await?;
    for start in (0..count).step_by(5000) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR IGNORE INTO recipients (id, status, operator_id, updated_at) ",
        );
        q.push_values(start..(start + 5000).min(count), |mut row, i| {
            row.push_bind(recipient_number(i))
                .push_bind("registered")
                .push_bind(kuvert::app::BUILT_IN_OPERATOR)
                .push_bind(&now);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// Whose the loaded messages are, from whom, and which of them are read.
pub struct Spread {
    pub recipients: Recipients,
    /// Message `i` is from sender `i % n` of these.
    pub senders: Vec<kuvert::demo::DemoSender>,
    /// Message `i` is unread when `i % unread_one_in == 0` (1: all unread),
    /// the others read when they were delivered.
    pub unread_one_in: usize,
}

pub enum Recipients {
    /// Message `i` is for [`recipient_number`]`(i % n)`.
    Numbered(usize),
    /// Every message is for this one (canonical digits).
    One(String),
}

impl Spread {
    fn recipient(&self, i: usize) -> String {
        match &self.recipients {
            Recipients::Numbered(n) => recipient_number(i % (*n).max(1)),
            Recipients::One(id) => id.clone(),
        }
    }

    fn sender(&self, i: usize) -> anyhow::Result<&kuvert::demo::DemoSender> {
        self.senders
            .get(i % self.senders.len().max(1))
            .context("a spread without senders")
    }
}

struct Row {
    delivery_id: String,
    message_id: String,
    recipient: String,
    sender_id: String,
    delivered_at: String,
    read_at: Option<String>,
    wrapped_key: Vec<u8>,
    subject: Vec<u8>,
    content: Vec<u8>,
}

/// Rows for messages `range`, encrypted as the mailbox stores them.
fn make_rows(
    kek: &kuvert_crypto::at_rest::KeyEncryptionKey,
    range: std::ops::Range<usize>,
    total: usize,
    spread: &Spread,
    message: &kuvert_domain::delivery::SecureMessage,
    base: time::OffsetDateTime,
) -> anyhow::Result<Vec<Row>> {
    range
        .map(|i| {
            let id = MailboxMessageId::new().to_string();
            let delivery_id = DeliveryId::new().to_string();
            let recipient = spread.recipient(i);
            let sender = spread.sender(i)?;
            let at = format_instant(base - time::Duration::seconds((total - i) as i64));
            let subject = format!("Beslut nr {i}");
            let mut message = message.clone();
            message.header.subject = subject.clone();
            let binding = RowBinding {
                message_id: &id,
                delivery_id: &delivery_id,
                position: 0,
                recipient_id: &recipient,
                sender_id: &sender.id,
                delivered_at: &at,
            };
            let summary = Summary {
                subject,
                sender_id: sender.id.clone(),
                sender_name: sender.name.clone(),
                delivered_at: at.clone(),
                received_at: at.clone(),
                official_matter: None,
            };
            let content = StoredContent {
                sender_name: sender.name.clone(),
                message,
                reference: Some(format!("bench-{i}")),
                received_at: at.clone(),
                body_sanitised: true,
            };
            let row = encrypt_row(kek, &binding, &summary, &content)?;
            Ok(Row {
                delivery_id,
                recipient,
                sender_id: sender.id.clone(),
                read_at: (i % spread.unread_one_in.max(1) != 0).then(|| at.clone()),
                delivered_at: at,
                subject: row.summary,
                content: row.content,
                message_id: id,
                wrapped_key: row.wrapped_key,
            })
        })
        .collect()
}

/// Loads `count` messages into the stopped instance at `data`, spread over
/// recipients, senders and read state as `spread` says.
pub async fn load_messages(data: &Path, count: usize, spread: Spread) -> anyhow::Result<()> {
    let keys = kuvert::keys::Keys::load_existing(data)?;
    let sender = spread.sender(0)?.clone();
    let body = "Hej! Här kommer ett beslut från kommunen. ".repeat(50);
    let delivery = kuvert::client::simple_delivery(
        &sender.id,
        &sender.name,
        &recipient_number(0),
        None,
        "Beslut",
        &body[..2048],
        false,
        Vec::new(),
    );
    let message = delivery.messages[0].clone();
    let base = time::OffsetDateTime::now_utc();
    let receipt = "r".repeat(600);
    const CHUNK: usize = 2000;
    // Encryption on a thread of its own, inserts here: the two overlap.
    let (tx_rows, mut rx_rows) = tokio::sync::mpsc::channel::<Vec<Row>>(4);
    let producer = std::thread::spawn(move || -> anyhow::Result<()> {
        for start in (0..count).step_by(CHUNK) {
            let rows = make_rows(
                &keys.mailbox_kek,
                start..(start + CHUNK).min(count),
                count,
                &spread,
                &message,
                base,
            )?;
            if tx_rows.blocking_send(rows).is_err() {
                break;
            }
        }
        Ok(())
    });
    let pool = loader(&data.join("mailbox.db")).await?;
    let started = Instant::now();
    let mut written = 0_usize;
    let mut tx = pool.begin().await?;
    while let Some(rows) = rx_rows.recv().await {
        for part in rows.chunks(500) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO mailbox_deliveries (delivery_id, recipient_id, sender_id, relay_key_id, received_at, delivered_at, receipt) ",
            );
            q.push_values(part, |mut b, r| {
                b.push_bind(&r.delivery_id)
                    .push_bind(&r.recipient)
                    .push_bind(&r.sender_id)
                    .push_bind("ed25519:0000000000000000")
                    .push_bind(&r.delivered_at)
                    .push_bind(&r.delivered_at)
                    .push_bind(&receipt);
            });
            q.build().execute(&mut *tx).await?;
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO mailbox_messages (id, delivery_id, position, recipient_id, sender_id,
                   delivered_at, read_at, format, wrapped_key, subject, content) ",
            );
            q.push_values(part, |mut b, r| {
                b.push_bind(&r.message_id)
                    .push_bind(&r.delivery_id)
                    .push_bind(0_i64)
                    .push_bind(&r.recipient)
                    .push_bind(&r.sender_id)
                    .push_bind(&r.delivered_at)
                    .push_bind(&r.read_at)
                    .push_bind(kuvert_store::mailbox::ROW_FORMAT_BOUND)
                    .push_bind(&r.wrapped_key)
                    .push_bind(&r.subject)
                    .push_bind(&r.content);
            });
            q.build().execute(&mut *tx).await?;
        }
        written += rows.len();
        if written % 100_000 < CHUNK {
            tx.commit().await?;
            tx = pool.begin().await?;
        }
        if written % 1_000_000 < CHUNK {
            eprintln!(
                "  mailbox: {written} of {count} messages loaded ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    tx.commit().await?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the encrypting thread panicked"))??;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// What one loaded 2 KiB message takes in `mailbox.db` (measured: a
/// message row does not share its 4 KiB page, plus its delivery row).
const BYTES_PER_MESSAGE: f64 = 5200.0;

/// Free space where `path` is, from `df`.
fn free_gib(path: &Path) -> Option<f64> {
    let out = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: f64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib / 1_048_576.0)
}

pub async fn run(plan: &ReadingPlan, keep: Option<&Path>) -> anyhow::Result<ReadingResult> {
    let dir = DataDir::new(keep, "reading")?;
    // A first start creates keys, schemas, the demo tenants and the
    // built-in operator; the stores are loaded while it is stopped.
    Server::start(&dir.path).await?.stop().await?;
    let started = Instant::now();
    load_recipients(&dir.path, plan.recipients).await?;
    let load_recipients_s = started.elapsed().as_secs_f64();
    eprintln!(
        "  loaded {} recipients in {load_recipients_s:.0} s",
        plan.recipients
    );
    let messages = if plan.mailbox { plan.messages } else { 0 };
    if messages > 0 {
        let needed = messages as f64 * BYTES_PER_MESSAGE / 1_073_741_824.0 + 2.0;
        if let Some(free) = free_gib(&dir.path) {
            ensure!(
                free >= needed,
                "{messages} mailbox messages need about {needed:.0} GiB on disk \
                 ({BYTES_PER_MESSAGE} bytes each), {free:.0} GiB are free: \
                 pass a smaller --mailbox-messages"
            );
        }
    }
    let started = Instant::now();
    if messages > 0 {
        let demo = kuvert::demo::load(&dir.path)?;
        let spread = Spread {
            recipients: Recipients::Numbered(plan.recipients),
            senders: vec![super::e2e::demo_kommun(&demo)?.1.clone()],
            unread_one_in: 1,
        };
        load_messages(&dir.path, messages, spread).await?;
    }
    let load_messages_s = started.elapsed().as_secs_f64();
    let mailbox_db_mib = std::fs::metadata(dir.path.join("mailbox.db"))
        .map(|m| m.len() as f64 / 1_048_576.0)
        .unwrap_or(0.0);
    if messages > 0 {
        eprintln!(
            "  loaded {messages} messages in {load_messages_s:.0} s ({mailbox_db_mib:.0} MiB)"
        );
    }

    let server = Server::start(&dir.path).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut result = ReadingResult {
        recipients: plan.recipients,
        messages,
        load_recipients_s,
        load_messages_s,
        mailbox_db_mib,
        reach: Vec::new(),
        mailbox: Vec::new(),
        server_peak_rss_mib: f64::NAN,
    };
    for _ in 0..plan.runs.max(1) {
        if plan.reach {
            result
                .reach
                .push(reach(&http, &server.url, &dir.path, plan, &mut rng).await?);
        }
        if plan.mailbox && messages > 0 {
            result
                .mailbox
                .push(mailbox(&http, &server.url, &dir.path, plan, messages, &mut rng).await?);
        }
    }
    result.server_peak_rss_mib = server.peak_rss_mib();
    server.stop().await?;
    Ok(result)
}

fn reach_body(sender: &str, recipients: usize, rng: &mut StdRng) -> String {
    let ids: Vec<String> = (0..1000)
        .map(|_| recipient_number(rng.gen_range(0..recipients)))
        .collect();
    serde_json::json!({ "sender": sender, "recipients": ids }).to_string()
}

async fn reach(
    http: &reqwest::Client,
    url: &str,
    data: &Path,
    plan: &ReadingPlan,
    rng: &mut StdRng,
) -> anyhow::Result<ReachRun> {
    let token = sender_token(data)?;
    let demo = kuvert::demo::load(data)?;
    let sender = super::e2e::demo_kommun(&demo)?.1.id.clone();
    let bodies: Vec<String> = (0..plan.samples)
        .map(|_| reach_body(&sender, plan.recipients, rng))
        .collect();
    let ask = |body: String| {
        let request = http
            .post(format!("{url}/v1/reachability"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await?;
            ensure!(status.is_success(), "reachability: HTTP {status}: {answer}");
            let results = answer["results"].as_array().context("results")?;
            ensure!(results.len() == 1000, "{} answers", results.len());
            ensure!(
                results[0]["sender_accepted"] == true,
                "a registered recipient not reachable: {}",
                results[0]
            );
            anyhow::Ok(())
        }
    };
    // Warm-up, then one at a time for latency.
    ask(bodies[0].clone()).await?;
    let mut ms = Vec::new();
    for body in &bodies {
        let started = Instant::now();
        ask(body.clone()).await?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    // Four at a time for throughput.
    let started = Instant::now();
    for group in bodies.chunks(4) {
        let asks: Vec<_> = group.iter().map(|b| ask(b.clone())).collect();
        for done in futures_join(asks).await {
            done?;
        }
    }
    let ids_per_s = (bodies.len() * 1000) as f64 / started.elapsed().as_secs_f64();
    Ok(ReachRun {
        sequential: latency(ms),
        ids_per_s,
    })
}

/// Runs futures concurrently on this task and returns their outputs in order.
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn mailbox(
    http: &reqwest::Client,
    url: &str,
    data: &Path,
    plan: &ReadingPlan,
    messages: usize,
    rng: &mut StdRng,
) -> anyhow::Result<MailboxRun> {
    let tokens = recipient_tokens(data)?;
    let with_mail = plan.recipients.min(messages);
    let mut list_ms = Vec::new();
    let mut open_ms = Vec::new();
    for n in 0..=plan.samples {
        let number = recipient_number(rng.gen_range(0..with_mail));
        let id = RecipientId::parse_canonical(&number).context("recipient id")?;
        let token = kuvert_testkit::mint_mail_token(&tokens, &id)?;
        let started = Instant::now();
        let response = http
            .get(format!("{url}/mailbox/v1/messages"))
            .bearer_auth(&token)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "list: HTTP {}",
            response.status()
        );
        let page: serde_json::Value = response.json().await?;
        let listed = started.elapsed().as_secs_f64() * 1e3;
        let first = page["messages"][0]["id"]
            .as_str()
            .context("an inbox without messages")?
            .to_owned();
        let started = Instant::now();
        let response = http
            .get(format!("{url}/mailbox/v1/messages/{first}"))
            .bearer_auth(&token)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "open: HTTP {}",
            response.status()
        );
        let view: serde_json::Value = response.json().await?;
        let opened = started.elapsed().as_secs_f64() * 1e3;
        ensure!(view["body"].as_str().is_some_and(|b| b.len() >= 2048));
        if n > 0 {
            // The first round warms up connections.
            list_ms.push(listed);
            open_ms.push(opened);
        }
    }
    Ok(MailboxRun {
        list_first_page: latency(list_ms),
        open_message: latency(open_ms),
    })
}
