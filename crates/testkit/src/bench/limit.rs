//! (1) The machine's limit: what one message costs on this machine in the
//! work no implementation can skip, timed in-process with kuvert's own
//! crypto functions and SQLite with kuvert's settings.
//!
//! Per message, the unavoidable work is
//! - `verify`: the sender's Ed25519 signature over the canonical delivery
//!   (2 KiB body), once;
//! - `sign`: the relay's Ed25519 seal signature, once;
//! - `seal`: the content sealed to the mailbox operator (the JSON the relay
//!   seals, about 2.6 KiB) as kuvert seals it: one HPKE encapsulation per
//!   operator and request of 1000 (amortised), then per message a key
//!   exported from the HPKE context and AES-256-GCM (decision 0006);
//! - `at_rest`: the mailbox's envelope encryption as `encrypt_row` does it
//!   (fresh data key wrapped under a key derived from the KEK for the row,
//!   summary and content encrypted with AES-256-GCM bound to the row);
//! - `insert_core`: the durable insert of the accepted delivery (a
//!   `deliveries` row and its `outbox` row with the sealed blob), and
//! - `insert_mailbox`: the durable insert of the stored message (a
//!   `mailbox_deliveries` and a `mailbox_messages` row),
//!
//! both with kuvert's pragmas (WAL, `synchronous=FULL`), multi-row inserts,
//! one commit per 1000 messages (a `/v1/batches` request of 1000 commits
//! once in kuvert). Crypto runs on every core; each database has one writer.
//!
//!     per_message = verify + sign + seal + at_rest + insert_core + insert_mailbox
//!     all_cores   = cores / per_message        (everything spread over all cores)
//!     writer      = 1 / max(insert_core, insert_mailbox)   (one writer per database)
//!     limit       = min(all_cores, writer)
//!
//! Also timed, for orientation only (not part of the limit): the open (as
//! kuvert opens: one decapsulation per 1000), kuvert's own crypto per
//! message as designed today (4 verifications: the sender's signature at the
//! relay and again at the mailbox, the seal, the receipt; 2 signatures: seal
//! and receipt; seal, open, at-rest), and the limit as it was measured
//! before decision 0006, with one HPKE encapsulation per message
//! (`seal_single_us`, `limit_single_encapsulation_per_s`), so figures from
//! before and after can be compared.

use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::sealing::{Opener, Sealer, SealingPrivateKey, seal};
use kuvert_crypto::signing::{Signature, SigningKey};
use kuvert_domain::delivery::SIGNED_DELIVERY_DOMAIN;
use kuvert_domain::ids::{DeliveryId, MailboxMessageId};
use kuvert_store::{Db, Schema, format_instant};
use serde::Serialize;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

pub use kuvert_mailbox::protocol::{HPKE_INFO, SEAL_DOMAIN};
/// Messages per commit, as kuvert commits one `/v1/batches` request of 1000.
pub const COMMIT_BATCH: usize = 1000;

/// Per-message costs in microseconds, and what follows from them.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub cores: usize,
    pub iterations: usize,
    pub verify_us: f64,
    pub sign_us: f64,
    pub seal_us: f64,
    pub at_rest_us: f64,
    pub insert_core_us: f64,
    pub insert_mailbox_us: f64,
    pub open_us: f64,
    /// One HPKE encapsulation per message (before decision 0006).
    pub seal_single_us: f64,
    /// Sum of the unavoidable per-message costs.
    pub per_message_us: f64,
    pub one_core_per_s: f64,
    pub all_cores_per_s: f64,
    pub writer_per_s: f64,
    /// min(all_cores, writer): the figure end-to-end throughput is compared to.
    pub limit_per_s: f64,
    /// CPU microseconds of the crypto kuvert does per message as designed.
    pub kuvert_design_crypto_us: f64,
    /// The limit with `seal_single_us` in place of `seal_us`: how the limit
    /// was defined before decision 0006.
    pub limit_single_encapsulation_per_s: f64,
}

fn micros(started: Instant, n: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// What the relay seals and the mailbox stores for one 2 KiB message.
pub struct Sample {
    pub canonical: Vec<u8>,
    pub signature: Signature,
    pub sender_key: SigningKey,
    pub sealed_plaintext: Vec<u8>,
    pub seal_bytes: Vec<u8>,
    pub subject: String,
    pub stored_content: Vec<u8>,
}

pub fn sample(body: &str) -> Sample {
    let sender_key = SigningKey::generate();
    let sender = kuvert::demo::organisation_number("212000999");
    let recipient = kuvert::demo::person_number("19700101", 100);
    let delivery = kuvert::client::simple_delivery(
        &sender,
        "Demo kommun",
        &recipient,
        Some("bench-ref-1".to_owned()),
        "Beslut om bygglov",
        body,
        false,
        Vec::new(),
    );
    let canonical = delivery.canonical_bytes();
    let message = json!(delivery.messages[0]);
    let signed = kuvert::client::sign(delivery, &sender_key);
    let signature = sender_key.sign(SIGNED_DELIVERY_DOMAIN, &canonical);
    let now = format_instant(time::OffsetDateTime::now_utc());
    let certificate = kuvert_mailbox::certificate::SenderKeyCertificate::issue(
        &SigningKey::generate(),
        &sender,
        "Demo kommun",
        &sender_key.public_key(),
        &now,
    );
    let sealed_plaintext = serde_json::to_vec(&json!({
        "signed": signed,
        "sender_certificate": certificate,
    }))
    .unwrap_or_default();
    let seal_bytes = serde_json::to_vec(&json!([
        "kuvert-seal-v1",
        DeliveryId::new().to_string(),
        recipient,
        sender,
        "kuvert-brevlada",
        now,
        SigningKey::generate().public_key().key_id(),
        sha256_hex(&sealed_plaintext),
    ]))
    .unwrap_or_default();
    let stored_content = serde_json::to_vec(&json!({
        "sender_name": "Demo kommun",
        "message": message,
        "reference": "bench-ref-1",
        "received_at": now,
    }))
    .unwrap_or_default();
    Sample {
        canonical,
        signature,
        sender_key,
        sealed_plaintext,
        seal_bytes,
        subject: "Beslut om bygglov".to_owned(),
        stored_content,
    }
}

pub async fn measure(iterations: usize, scratch: &Path) -> anyhow::Result<Limit> {
    let s = sample(&"x".repeat(2048));
    let public = s.sender_key.public_key();
    let relay_key = SigningKey::generate();
    let operator = SealingPrivateKey::generate();
    let operator_public = operator.public_key();
    let kek = KeyEncryptionKey::generate();

    let started = Instant::now();
    for _ in 0..iterations {
        black_box(public.verify(
            SIGNED_DELIVERY_DOMAIN,
            black_box(&s.canonical),
            &s.signature,
        ))?;
    }
    let verify_us = micros(started, iterations);

    let started = Instant::now();
    for _ in 0..iterations {
        black_box(relay_key.sign(SEAL_DOMAIN, black_box(&s.seal_bytes)));
    }
    let sign_us = micros(started, iterations);

    // Sealing as kuvert seals: one encapsulation per request of 1000.
    let started = Instant::now();
    let mut sealer = Sealer::new(&operator_public, HPKE_INFO)?;
    let mut last = None;
    for i in 0..iterations {
        if i > 0 && i % COMMIT_BATCH == 0 {
            sealer = Sealer::new(&operator_public, HPKE_INFO)?;
        }
        last = Some(black_box(
            sealer.seal(&s.seal_bytes, black_box(&s.sealed_plaintext))?,
        ));
    }
    let seal_us = micros(started, iterations);
    let sealed = last.ok_or_else(|| anyhow::anyhow!("no iterations"))?;

    let single = iterations.min(5_000);
    let started = Instant::now();
    for _ in 0..single {
        black_box(seal(
            &operator_public,
            HPKE_INFO,
            &s.seal_bytes,
            black_box(&s.sealed_plaintext),
        )?);
    }
    let seal_single_us = micros(started, single);

    let started = Instant::now();
    for i in 0..iterations {
        if i % COMMIT_BATCH == 0 {
            black_box(Opener::new(&operator, HPKE_INFO, &sealed.encapsulated_key)?);
        }
    }
    let opener = Opener::new(&operator, HPKE_INFO, &sealed.encapsulated_key)?;
    for _ in 0..iterations {
        black_box(opener.open(&s.seal_bytes, black_box(&sealed))?);
    }
    let open_us = micros(started, iterations);

    let started = Instant::now();
    let delivery_id = DeliveryId::new().to_string();
    let at = format_instant(time::OffsetDateTime::now_utc());
    for _ in 0..iterations {
        let id = MailboxMessageId::new().to_string();
        let binding = kuvert_mailbox::at_rest::RowBinding {
            message_id: &id,
            delivery_id: &delivery_id,
            position: 0,
            recipient_id: "197001011005",
            sender_id: "2120009999",
            delivered_at: &at,
        };
        let summary = serde_json::to_vec(&json!({
            "subject": s.subject, "sender_id": "2120009999", "sender_name": "Demo kommun",
            "delivered_at": at, "received_at": at,
        }))?;
        let (key, wrapped) = kek.new_data_key(&binding.key_context())?;
        black_box(wrapped);
        // The associated data as `encrypt_row` builds it: the binding and
        // the part (the same length within a byte).
        let mut aad = binding.key_context();
        aad.extend_from_slice(b",\"summary\"");
        black_box(key.encrypt(&aad, &summary)?);
        black_box(key.encrypt(&aad, black_box(&s.stored_content))?);
    }
    let at_rest_us = micros(started, iterations);

    // The sealed row the relay stores: JSON with the ciphertext in base64.
    let sealed_len = sealed.ciphertext.len() * 4 / 3 + 450;
    let content_len = s.stored_content.len() + 28;
    let rows = iterations.clamp(COMMIT_BATCH, 20_000);
    let insert_core_us = insert_core(scratch, rows, sealed_len).await?;
    let insert_mailbox_us = insert_mailbox(scratch, rows, content_len).await?;

    let cores = super::proc::cores();
    let per_message_us =
        verify_us + sign_us + seal_us + at_rest_us + insert_core_us + insert_mailbox_us;
    let one_core_per_s = 1e6 / per_message_us;
    let all_cores_per_s = one_core_per_s * cores as f64;
    let writer_per_s = 1e6 / insert_core_us.max(insert_mailbox_us);
    let single_per_message_us = per_message_us - seal_us + seal_single_us;
    let limit_single_encapsulation_per_s =
        (1e6 / single_per_message_us * cores as f64).min(writer_per_s);
    Ok(Limit {
        cores,
        iterations,
        verify_us,
        sign_us,
        seal_us,
        at_rest_us,
        insert_core_us,
        insert_mailbox_us,
        open_us,
        seal_single_us,
        per_message_us,
        one_core_per_s,
        all_cores_per_s,
        writer_per_s,
        limit_per_s: all_cores_per_s.min(writer_per_s),
        kuvert_design_crypto_us: 4.0 * verify_us + 2.0 * sign_us + seal_us + open_us + at_rest_us,
        limit_single_encapsulation_per_s,
    })
}

/// A connection with kuvert's settings (`Db::open` made the schema).
pub async fn writer(path: &Path, schema: Schema) -> anyhow::Result<SqlitePool> {
    Db::open(path, schema).await?.close().await;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

fn filler(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

async fn insert_core(scratch: &Path, rows: usize, sealed_len: usize) -> anyhow::Result<f64> {
    let pool = writer(&scratch.join("limit-core.db"), Schema::Core).await?;
    let now = format_instant(time::OffsetDateTime::now_utc());
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ('bench', 'Bench', ?)")
        .bind(&now)
        .execute(&pool)
        .await?;
    let sealed = filler(sealed_len);
    let sender = kuvert::demo::organisation_number("212000999");
    let started = Instant::now();
    for batch in 0..rows / COMMIT_BATCH {
        let ids: Vec<String> = (0..COMMIT_BATCH)
            .map(|_| DeliveryId::new().to_string())
            .collect();
        let mut tx = pool.begin().await?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO deliveries (id, tenant_id, sender_id, recipient_id, idempotency_key, request_hash,
               batch_id, message_ids, status, operator_id, received_at, status_at) ",
        );
        q.push_values(ids.iter().enumerate(), |mut row, (i, id)| {
            row.push_bind(id)
                .push_bind("bench")
                .push_bind(&sender)
                .push_bind("197001011005")
                .push_bind(format!("key-{batch}-{i}"))
                .push_bind(sha256_hex(id.as_bytes()))
                .push_bind("batch")
                .push_bind("[\"1\"]")
                .push_bind("accepted")
                .push_bind("kuvert-brevlada")
                .push_bind(&now)
                .push_bind(&now);
        });
        q.build().execute(&mut *tx).await?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO outbox (delivery_id, operator_id, sealed, next_attempt_at) ",
        );
        q.push_values(ids.iter(), |mut row, id| {
            row.push_bind(id)
                .push_bind("kuvert-brevlada")
                .push_bind(&sealed)
                .push_bind(&now);
        });
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    let us = micros(started, rows / COMMIT_BATCH * COMMIT_BATCH);
    pool.close().await;
    Ok(us)
}

async fn insert_mailbox(scratch: &Path, rows: usize, content_len: usize) -> anyhow::Result<f64> {
    let pool = writer(&scratch.join("limit-mailbox.db"), Schema::Mailbox).await?;
    let now = format_instant(time::OffsetDateTime::now_utc());
    let content = filler(content_len);
    let wrapped = filler(60);
    // The encrypted summary: subject, sender, times as JSON.
    let subject = filler(190);
    let receipt = "r".repeat(600);
    let sender = kuvert::demo::organisation_number("212000999");
    let started = Instant::now();
    for _ in 0..rows / COMMIT_BATCH {
        let ids: Vec<(String, String)> = (0..COMMIT_BATCH)
            .map(|_| {
                (
                    DeliveryId::new().to_string(),
                    MailboxMessageId::new().to_string(),
                )
            })
            .collect();
        let mut tx = pool.begin().await?;
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO mailbox_deliveries (delivery_id, recipient_id, sender_id, relay_key_id, received_at, delivered_at, receipt) ",
        );
        q.push_values(ids.iter(), |mut row, (delivery, _)| {
            row.push_bind(delivery)
                .push_bind("197001011005")
                .push_bind(&sender)
                .push_bind("ed25519:0123456789abcdef")
                .push_bind(&now)
                .push_bind(&now)
                .push_bind(&receipt);
        });
        q.build().execute(&mut *tx).await?;
        // 10 columns: at most 3200 rows per statement under SQLite's 32766
        // bound parameters; 1000 is well inside.
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO mailbox_messages (id, delivery_id, position, recipient_id, sender_id,
               delivered_at, format, wrapped_key, subject, content) ",
        );
        q.push_values(ids.iter(), |mut row, (delivery, message)| {
            row.push_bind(message)
                .push_bind(delivery)
                .push_bind(0_i64)
                .push_bind("197001011005")
                .push_bind(&sender)
                .push_bind(&now)
                .push_bind(kuvert_store::mailbox::ROW_FORMAT_BOUND)
                .push_bind(&wrapped)
                .push_bind(&subject)
                .push_bind(&content);
        });
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    let us = micros(started, rows / COMMIT_BATCH * COMMIT_BATCH);
    pool.close().await;
    Ok(us)
}
