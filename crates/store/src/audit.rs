//! The tamper-evident audit log.
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} || 0x0A || canonical(entry_n))`
//! (hex), starting from 64 zeros. A [`Checkpoint`] (v2) signs the database's
//! log id, the head's seq and hash, and the digest of the checkpoint before
//! it, with the node's audit key. Editing an entry breaks its hash; removing
//! or inserting one breaks the sequence or the chain; rewriting the whole
//! chain after an edit breaks every later checkpoint; removing checkpoints
//! too is caught by the node's own checkpoint file and by the witness, which
//! hold checkpoints the database writer cannot change (decision 0010).
//! Anyone with the public keys can run the check ([`Db::verify_audit`]).

use crate::{Db, Result, StoreError, format_instant};
use kuvert_crypto::CryptoError;
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::signing::{PublicKey, Signature, SigningKey};
use kuvert_domain::ids::TenantId;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

/// Domain of a checkpoint's signature (v2: chained, names its log).
pub const CHECKPOINT_DOMAIN: &[u8] = b"kuvert/v2/audit-checkpoint";
pub const CHECKPOINT_FORMAT: &str = "kuvert-audit-checkpoint-v2";
/// Domain of a witness's countersignature of a checkpoint.
pub const COSIGNATURE_DOMAIN: &[u8] = b"kuvert/v1/audit-cosignature";
pub const COSIGNATURE_FORMAT: &str = "kuvert-audit-cosignature-v1";
/// Checkpoints signed before v2: `"{seq}:{hash}"`, neither chained nor named.
const LEGACY_CHECKPOINT_DOMAIN: &[u8] = b"kuvert/v1/audit-checkpoint";
const LEGACY_CHECKPOINT_FORMAT: &str = "kuvert-audit-checkpoint-v1";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The `prev_digest` of a log's first v2 checkpoint.
pub const NO_PREVIOUS_CHECKPOINT: &str = GENESIS;

/// One activity. `subject` names what it is about (a delivery id, a tenant,
/// a pseudonymised recipient) — never an identity number or content.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub tenant: Option<&'a TenantId>,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
}

/// An entry for store tests that make changes.
#[cfg(test)]
pub(crate) const TEST_ENTRY: AuditEntry<'static> = AuditEntry {
    tenant: None,
    actor: "test",
    action: "test.change",
    subject: "test",
    detail: "{}",
};

#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredAuditEntry {
    pub seq: i64,
    pub at: String,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub hash: String,
}

/// The fields an entry's hash covers, in their fixed order.
struct Hashed<'a> {
    seq: i64,
    at: &'a str,
    tenant: Option<&'a str>,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    detail: &'a str,
}

fn entry_hash(prev: &str, e: &Hashed<'_>) -> String {
    let canonical = serde_json::json!([
        e.seq, e.at, e.tenant, e.actor, e.action, e.subject, e.detail
    ])
    .to_string();
    let mut input = Vec::with_capacity(prev.len() + 1 + canonical.len());
    input.extend_from_slice(prev.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(canonical.as_bytes());
    sha256_hex(&input)
}

/// Appends one entry to the chain (reads the head first).
pub async fn append(
    conn: &mut SqliteConnection,
    at: OffsetDateTime,
    entry: &AuditEntry<'_>,
) -> Result<i64> {
    AuditChain::head(conn).await?.append(conn, at, entry).await
}

/// The chain's head within one transaction, so that a transaction appending
/// thousands of entries (a batch) reads the head once, not per entry.
pub struct AuditChain {
    seq: i64,
    hash: String,
    /// Entries chained by [`push`](Self::push), written by [`flush`](Self::flush).
    buffered: Vec<BufferedEntry>,
}

struct BufferedEntry {
    seq: i64,
    at: String,
    tenant: Option<String>,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    hash: String,
}

/// Rows per multi-row INSERT (8 values each, far under SQLite's limit).
const AUDIT_ROWS_PER_INSERT: usize = 200;

impl AuditChain {
    pub async fn head(conn: &mut SqliteConnection) -> Result<Self> {
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match last {
            Some(row) => Self {
                seq: row.try_get::<i64, _>(0)?,
                hash: row.try_get::<String, _>(1)?,
                buffered: Vec::new(),
            },
            None => Self {
                seq: 0,
                hash: GENESIS.to_owned(),
                buffered: Vec::new(),
            },
        })
    }

    /// Chains an entry after the head in memory; [`flush`](Self::flush)
    /// writes what was pushed, many rows per statement, before the commit.
    pub fn push(&mut self, at: OffsetDateTime, entry: &AuditEntry<'_>) -> i64 {
        let seq = self.seq + 1;
        let at = format_instant(at);
        let tenant = entry.tenant.map(TenantId::as_str);
        let hash = entry_hash(
            &self.hash,
            &Hashed {
                seq,
                at: &at,
                tenant,
                actor: entry.actor,
                action: entry.action,
                subject: entry.subject,
                detail: entry.detail,
            },
        );
        self.buffered.push(BufferedEntry {
            seq,
            at,
            tenant: tenant.map(str::to_owned),
            actor: entry.actor.to_owned(),
            action: entry.action.to_owned(),
            subject: entry.subject.to_owned(),
            detail: entry.detail.to_owned(),
            hash: hash.clone(),
        });
        self.seq = seq;
        self.hash = hash;
        seq
    }

    /// Writes the pushed entries; call inside the transaction that read the head.
    pub async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        for chunk in self.buffered.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut insert: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (seq, at, tenant_id, actor, action, subject, detail, hash) ",
            );
            insert.push_values(chunk, |mut row, e| {
                row.push_bind(e.seq)
                    .push_bind(&e.at)
                    .push_bind(&e.tenant)
                    .push_bind(&e.actor)
                    .push_bind(&e.action)
                    .push_bind(&e.subject)
                    .push_bind(&e.detail)
                    .push_bind(&e.hash);
            });
            insert.build().execute(&mut *conn).await?;
        }
        self.buffered.clear();
        Ok(())
    }

    /// Appends after the head and writes it at once; only valid inside the
    /// transaction that read the head.
    pub async fn append(
        &mut self,
        conn: &mut SqliteConnection,
        at: OffsetDateTime,
        entry: &AuditEntry<'_>,
    ) -> Result<i64> {
        let seq = self.push(at, entry);
        self.flush(conn).await?;
        Ok(seq)
    }
}

/// A signed checkpoint of one audit log (format `kuvert-audit-checkpoint-v2`).
///
/// The signed bytes are the RFC 8785 (JCS) form of the JSON array
/// `[format, log_id, seq, hash, prev_digest, signed_at, key_id]` (`seq` a
/// number, the rest strings), signed with Ed25519 over
/// `kuvert/v2/audit-checkpoint || 0x00 || bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    /// The database's own name for its log: `core/<hex>`, `mailbox/<operator>/<hex>`.
    pub log_id: String,
    /// The newest entry this checkpoint covers.
    pub seq: i64,
    /// That entry's hash.
    pub hash: String,
    /// SHA-256 (hex) of the previous checkpoint's signed bytes, 64 zeros for the first.
    pub prev_digest: String,
    /// RFC 3339, UTC, six fraction digits.
    pub signed_at: String,
    pub key_id: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
}

impl Checkpoint {
    pub fn sign(
        key: &SigningKey,
        log_id: &str,
        seq: i64,
        hash: &str,
        prev_digest: &str,
        signed_at: OffsetDateTime,
    ) -> Self {
        let mut checkpoint = Self {
            format: CHECKPOINT_FORMAT.to_owned(),
            log_id: log_id.to_owned(),
            seq,
            hash: hash.to_owned(),
            prev_digest: prev_digest.to_owned(),
            signed_at: format_instant(signed_at),
            key_id: key.public_key().key_id(),
            signature: String::new(),
        };
        checkpoint.signature = key
            .sign(CHECKPOINT_DOMAIN, &checkpoint.signed_bytes())
            .to_base64();
        checkpoint
    }

    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            self.format,
            self.log_id,
            self.seq,
            self.hash,
            self.prev_digest,
            self.signed_at,
            self.key_id,
        ])
        .to_string()
        .into_bytes()
    }

    /// What the next checkpoint names as `prev_digest`.
    pub fn digest(&self) -> String {
        sha256_hex(&self.signed_bytes())
    }

    /// Format, key id and signature.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        if self.format != CHECKPOINT_FORMAT || self.key_id != key.key_id() {
            return Err(CryptoError::InvalidSignature);
        }
        let signature = Signature::from_base64(&self.signature)?;
        key.verify(CHECKPOINT_DOMAIN, &self.signed_bytes(), &signature)
    }

    /// Whether `self` directly follows `previous` in one log: it names
    /// `previous`'s digest and covers later entries (or the same entry with
    /// the same hash: one entry cannot have two hashes).
    pub fn extends(&self, previous: &Checkpoint) -> bool {
        self.log_id == previous.log_id
            && self.prev_digest == previous.digest()
            && (self.seq > previous.seq || (self.seq == previous.seq && self.hash == previous.hash))
    }
}

/// A witness's countersignature of one checkpoint
/// (`kuvert-audit-cosignature-v1`): the JCS form of
/// `[format, log_id, seq, checkpoint_digest, cosigned_at, key_id]`, signed
/// over `kuvert/v1/audit-cosignature || 0x00 || bytes` with the witness's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosignature {
    pub format: String,
    pub log_id: String,
    pub seq: i64,
    /// [`Checkpoint::digest`] of the countersigned checkpoint.
    pub checkpoint_digest: String,
    pub cosigned_at: String,
    /// The witness's key id.
    pub key_id: String,
    pub signature: String,
}

impl Cosignature {
    pub fn sign(key: &SigningKey, checkpoint: &Checkpoint, cosigned_at: OffsetDateTime) -> Self {
        let mut cosignature = Self {
            format: COSIGNATURE_FORMAT.to_owned(),
            log_id: checkpoint.log_id.clone(),
            seq: checkpoint.seq,
            checkpoint_digest: checkpoint.digest(),
            cosigned_at: format_instant(cosigned_at),
            key_id: key.public_key().key_id(),
            signature: String::new(),
        };
        cosignature.signature = key
            .sign(COSIGNATURE_DOMAIN, &cosignature.signed_bytes())
            .to_base64();
        cosignature
    }

    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            self.format,
            self.log_id,
            self.seq,
            self.checkpoint_digest,
            self.cosigned_at,
            self.key_id,
        ])
        .to_string()
        .into_bytes()
    }

    /// The witness's signature, over exactly `checkpoint`.
    pub fn verify(&self, checkpoint: &Checkpoint, witness: &PublicKey) -> Result<(), CryptoError> {
        if self.format != COSIGNATURE_FORMAT
            || self.key_id != witness.key_id()
            || self.log_id != checkpoint.log_id
            || self.seq != checkpoint.seq
            || self.checkpoint_digest != checkpoint.digest()
        {
            return Err(CryptoError::InvalidSignature);
        }
        let signature = Signature::from_base64(&self.signature)?;
        witness.verify(COSIGNATURE_DOMAIN, &self.signed_bytes(), &signature)
    }
}

/// A log id as kuvert makes them: lowercase ASCII letters, digits and `-`
/// in `/`-separated parts (`core/3f…`, `mailbox/kuvert-brevlada/9a…`).
pub fn is_valid_log_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 200
        && text.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The public keys an audit check trusts: the installation's checkpoint
/// keys (every one the keys document lists, rotated ones too) and,
/// optionally, the witness's.
#[derive(Debug, Clone, Copy)]
pub struct AuditKeys<'a> {
    pub checkpoint: &'a [PublicKey],
    pub witness: Option<&'a PublicKey>,
}

/// What [`Db::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The log the database names (none before its first start with v2).
    pub log_id: Option<String>,
    pub entries: i64,
    pub checkpoints: i64,
    /// Checkpoints with a witness's cosignature that verified (counted only
    /// when a witness key was given).
    pub cosigned: i64,
    /// Entries after the last checkpoint: chained, but not yet signed.
    pub unsigned_tail: i64,
    pub problem: Option<AuditProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    #[error(
        "entry {seq}: its hash does not match its content or the entry before it (altered or inserted)"
    )]
    HashMismatch { seq: i64 },
    #[error("entry {expected} is missing (the next entry is {found}): removed or reordered")]
    Gap { expected: i64, found: i64 },
    #[error("checkpoint at entry {seq}: the signature does not verify with a published key")]
    BadCheckpointSignature { seq: i64 },
    #[error("checkpoint at entry {seq}: the signed hash differs from the entry's hash")]
    CheckpointMismatch { seq: i64 },
    #[error("checkpoint at entry {seq}: the entry does not exist (the log was truncated)")]
    Truncated { seq: i64 },
    #[error(
        "checkpoint at entry {seq}: it does not follow the checkpoint before it (one was removed, replaced or inserted)"
    )]
    BrokenCheckpointChain { seq: i64 },
    #[error("checkpoint at entry {seq}: it is a checkpoint of another log ({found})")]
    OtherLog { seq: i64, found: String },
    #[error("checkpoint at entry {seq}: the witness's cosignature does not verify")]
    BadCosignature { seq: i64 },
}

/// Why the checkpointer refused to sign (it then signs nothing more until
/// someone looks: the log may have been rewritten).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointRefusal {
    #[error("the database names no audit log")]
    NoLogId,
    #[error("the database's audit log is {found}, the checkpoint file's is {expected}")]
    OtherLog { expected: String, found: String },
    #[error(
        "the database's log ends at entry {head}, before the last checkpoint this node signed (entry {seq}): restored from an old copy, or truncated"
    )]
    Behind { head: i64, seq: i64 },
    #[error(
        "the last checkpoint this node signed (entry {seq}) is missing from the database or differs"
    )]
    CheckpointGone { seq: i64 },
    #[error(
        "the database has checkpoints this node's checkpoint file does not know (entry {seq}): not signed by this node after its last checkpoint"
    )]
    UnknownCheckpoint { seq: i64 },
    #[error(
        "the database holds v2 checkpoints but this node's checkpoint file is empty or missing"
    )]
    NoAnchor,
    #[error("the log since the last checkpoint does not verify: {0}")]
    Problem(AuditProblem),
    /// Not a refusal: the database did not answer (tried again later).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CheckpointRefusal {
    fn from(e: sqlx::Error) -> Self {
        CheckpointRefusal::Store(e.into())
    }
}

/// What a checkpoint run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointOutcome {
    /// Checkpoints found in the database after the anchor that this node
    /// signed (their signature and chain verify) but had not recorded in
    /// its file yet: a stop between the database commit and the file write.
    pub adopted: Vec<Checkpoint>,
    /// The checkpoint signed now; none when the head was signed already.
    pub signed: Option<Checkpoint>,
}

/// One row of `audit_checkpoints`.
struct CheckpointRow {
    format: String,
    seq: i64,
    hash: String,
    signed_at: String,
    key_id: String,
    signature: String,
    log_id: Option<String>,
    prev_digest: Option<String>,
    cosignature: Option<String>,
}

impl CheckpointRow {
    fn read(row: &sqlx::sqlite::SqliteRow) -> Result<Self> {
        Ok(Self {
            format: row.try_get("format")?,
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            signed_at: row.try_get("signed_at")?,
            key_id: row.try_get("key_id")?,
            signature: row.try_get("signature")?,
            log_id: row.try_get("log_id")?,
            prev_digest: row.try_get("prev_digest")?,
            cosignature: row.try_get("cosignature")?,
        })
    }

    /// The v2 checkpoint the row holds (none for a legacy row).
    fn checkpoint(&self) -> Option<Checkpoint> {
        (self.format == CHECKPOINT_FORMAT).then(|| Checkpoint {
            format: self.format.clone(),
            log_id: self.log_id.clone().unwrap_or_default(),
            seq: self.seq,
            hash: self.hash.clone(),
            prev_digest: self.prev_digest.clone().unwrap_or_default(),
            signed_at: self.signed_at.clone(),
            key_id: self.key_id.clone(),
            signature: self.signature.clone(),
        })
    }

    fn verifies_legacy(&self, keys: &[PublicKey]) -> bool {
        let Ok(signature) = Signature::from_base64(&self.signature) else {
            return false;
        };
        let message = format!("{}:{}", self.seq, self.hash);
        keys.iter().any(|key| {
            key.key_id() == self.key_id
                && key
                    .verify(LEGACY_CHECKPOINT_DOMAIN, message.as_bytes(), &signature)
                    .is_ok()
        })
    }
}

const CHECKPOINT_COLUMNS: &str =
    "format, seq, hash, signed_at, key_id, signature, log_id, prev_digest, cosignature";

async fn checkpoint_rows(conn: &mut SqliteConnection, after: i64) -> Result<Vec<CheckpointRow>> {
    sqlx::query(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > ? ORDER BY seq"
    ))
    .bind(after)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(CheckpointRow::read)
    .collect()
}

async fn log_id(conn: &mut SqliteConnection) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT log_id FROM audit_log_identity WHERE only = 1")
            .fetch_optional(&mut *conn)
            .await?,
    )
}

async fn entries_page(
    conn: &mut SqliteConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredAuditEntry>> {
    sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(stored_entry)
        .collect()
}

fn stored_entry(row: &sqlx::sqlite::SqliteRow) -> Result<StoredAuditEntry> {
    Ok(StoredAuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        tenant: row.try_get("tenant_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        detail: row.try_get("detail")?,
        hash: row.try_get("hash")?,
    })
}

/// Walks the entries after `start_seq` (whose hash is `start_hash`) to the
/// head, checking sequence and hashes; `checkpoints` (ascending, all after
/// `start_seq`) must each name the hash of their entry. Returns how many
/// entries it walked, or the first problem.
async fn walk_chain(
    conn: &mut SqliteConnection,
    start_seq: i64,
    start_hash: &str,
    checkpoints: &[(i64, &str)],
) -> Result<Result<i64, AuditProblem>> {
    let mut prev_hash = start_hash.to_owned();
    let mut expected = start_seq + 1;
    let mut walked = 0_i64;
    let mut pending = checkpoints.iter().peekable();
    loop {
        let page = entries_page(conn, expected - 1, 5_000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.seq != expected {
                return Ok(Err(AuditProblem::Gap {
                    expected,
                    found: e.seq,
                }));
            }
            let hash = entry_hash(
                &prev_hash,
                &Hashed {
                    seq: e.seq,
                    at: &e.at,
                    tenant: e.tenant.as_deref(),
                    actor: &e.actor,
                    action: &e.action,
                    subject: &e.subject,
                    detail: &e.detail,
                },
            );
            if hash != e.hash {
                return Ok(Err(AuditProblem::HashMismatch { seq: e.seq }));
            }
            while let Some((cp_seq, cp_hash)) = pending.peek() {
                if *cp_seq != e.seq {
                    break;
                }
                if *cp_hash != hash {
                    return Ok(Err(AuditProblem::CheckpointMismatch { seq: *cp_seq }));
                }
                pending.next();
            }
            prev_hash = hash;
            expected += 1;
            walked += 1;
        }
    }
    if let Some((seq, _)) = pending.next() {
        return Ok(Err(AuditProblem::Truncated { seq: *seq }));
    }
    Ok(Ok(walked))
}

/// Checks every row: legacy rows by their v1 signature; v2 rows by log id,
/// signature and chain (and cosignature, with a witness key). The first
/// problem, and the number of verified cosignatures.
fn check_checkpoint_rows(
    rows: &[CheckpointRow],
    log_id: Option<&str>,
    keys: &AuditKeys<'_>,
) -> (Option<AuditProblem>, i64) {
    let mut previous: Option<Checkpoint> = None;
    let mut cosigned = 0;
    for row in rows {
        let Some(checkpoint) = row.checkpoint() else {
            // A legacy row after a v2 one cannot have been signed by kuvert.
            if previous.is_some() || row.format != LEGACY_CHECKPOINT_FORMAT {
                return (
                    Some(AuditProblem::BrokenCheckpointChain { seq: row.seq }),
                    cosigned,
                );
            }
            if !row.verifies_legacy(keys.checkpoint) {
                return (
                    Some(AuditProblem::BadCheckpointSignature { seq: row.seq }),
                    cosigned,
                );
            }
            continue;
        };
        let verified = keys
            .checkpoint
            .iter()
            .any(|key| checkpoint.verify(key).is_ok());
        if !verified {
            return (
                Some(AuditProblem::BadCheckpointSignature { seq: row.seq }),
                cosigned,
            );
        }
        if log_id != Some(checkpoint.log_id.as_str()) {
            return (
                Some(AuditProblem::OtherLog {
                    seq: row.seq,
                    found: checkpoint.log_id.clone(),
                }),
                cosigned,
            );
        }
        let chained = match &previous {
            None => checkpoint.prev_digest == NO_PREVIOUS_CHECKPOINT,
            Some(before) => checkpoint.extends(before),
        };
        if !chained {
            return (
                Some(AuditProblem::BrokenCheckpointChain { seq: row.seq }),
                cosigned,
            );
        }
        if let (Some(witness), Some(text)) = (keys.witness, &row.cosignature) {
            let ok = serde_json::from_str::<Cosignature>(text)
                .is_ok_and(|c| c.verify(&checkpoint, witness).is_ok());
            if !ok {
                return (
                    Some(AuditProblem::BadCosignature { seq: row.seq }),
                    cosigned,
                );
            }
            cosigned += 1;
        }
        previous = Some(checkpoint);
    }
    (None, cosigned)
}

impl Db {
    pub async fn append_audit(&self, at: OffsetDateTime, entry: &AuditEntry<'_>) -> Result<i64> {
        let mut tx = self.writer().begin().await?;
        let seq = append(&mut tx, at, entry).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The name the database gives its audit log, if it has one yet.
    pub async fn audit_log_id(&self) -> Result<Option<String>> {
        let mut conn = self.reader().acquire().await?;
        log_id(&mut conn).await
    }

    /// Names the database's audit log once (`{kind}/{32 random hex digits}`)
    /// and returns the name; later calls return the same one.
    pub async fn init_audit_log(&self, kind: &str, now: OffsetDateTime) -> Result<String> {
        let random: String = kuvert_crypto::digest::random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let candidate = format!("{kind}/{random}");
        if !is_valid_log_id(&candidate) {
            return Err(StoreError::Corrupt(format!("bad audit log kind {kind:?}")));
        }
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO audit_log_identity (only, log_id, created_at) VALUES (1, ?, ?) ON CONFLICT (only) DO NOTHING",
        )
        .bind(&candidate)
        .bind(format_instant(now))
        .execute(&mut *tx)
        .await?;
        let id = log_id(&mut tx).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(id)
    }

    /// Signs the head, chained to `anchor` (the last checkpoint this node
    /// signed, from its checkpoint file, which the database writer cannot
    /// change), after checking that the database still holds `anchor` and
    /// that every entry since verifies. Never signs over a log that does
    /// not: the refusal says why. Without an anchor (a first start, or one
    /// before v2) the whole log is checked against its own checkpoints.
    pub async fn checkpoint_audit(
        &self,
        key: &SigningKey,
        anchor: Option<&Checkpoint>,
        now: OffsetDateTime,
    ) -> Result<CheckpointOutcome, CheckpointRefusal> {
        let public = key.public_key();
        let mut tx = self.writer().begin().await?;
        let log = log_id(&mut tx).await?.ok_or(CheckpointRefusal::NoLogId)?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (head_seq, head_hash) = head.unwrap_or((0, GENESIS.to_owned()));
        let mut outcome = CheckpointOutcome::default();
        let mut last: Option<Checkpoint> = anchor.cloned();
        match anchor {
            Some(anchor) => {
                if anchor.log_id != log {
                    return Err(CheckpointRefusal::OtherLog {
                        expected: anchor.log_id.clone(),
                        found: log,
                    });
                }
                if head_seq < anchor.seq {
                    return Err(CheckpointRefusal::Behind {
                        head: head_seq,
                        seq: anchor.seq,
                    });
                }
                let stored = checkpoint_rows(&mut tx, anchor.seq - 1).await?;
                let (at_anchor, after) = match stored.split_first() {
                    Some((first, rest)) if first.seq == anchor.seq => (first, rest),
                    _ => return Err(CheckpointRefusal::CheckpointGone { seq: anchor.seq }),
                };
                if at_anchor.checkpoint().as_ref() != Some(anchor) {
                    return Err(CheckpointRefusal::CheckpointGone { seq: anchor.seq });
                }
                let entry_hash: Option<String> =
                    sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
                        .bind(anchor.seq)
                        .fetch_optional(&mut *tx)
                        .await?;
                if entry_hash.as_deref() != Some(anchor.hash.as_str()) {
                    return Err(CheckpointRefusal::Problem(
                        AuditProblem::CheckpointMismatch { seq: anchor.seq },
                    ));
                }
                // Checkpoints after the anchor: only ones this node signed
                // and chained, left out of its file by a stop in between.
                for row in after {
                    let adopted = row
                        .checkpoint()
                        .filter(|c| c.verify(&public).is_ok())
                        .filter(|c| last.as_ref().is_some_and(|l| c.extends(l)))
                        .ok_or(CheckpointRefusal::UnknownCheckpoint { seq: row.seq })?;
                    last = Some(adopted.clone());
                    outcome.adopted.push(adopted);
                }
                let marks: Vec<(i64, &str)> = outcome
                    .adopted
                    .iter()
                    .map(|c| (c.seq, c.hash.as_str()))
                    .collect();
                walk_chain(&mut tx, anchor.seq, &anchor.hash, &marks)
                    .await?
                    .map_err(CheckpointRefusal::Problem)?;
            }
            None => {
                let rows = checkpoint_rows(&mut tx, 0).await?;
                if let Some(row) = rows.iter().find(|r| r.format == CHECKPOINT_FORMAT) {
                    tracing::error!(seq = row.seq, "audit checkpoint file missing");
                    return Err(CheckpointRefusal::NoAnchor);
                }
                let keys = AuditKeys {
                    checkpoint: std::slice::from_ref(&public),
                    witness: None,
                };
                if let (Some(problem), _) = check_checkpoint_rows(&rows, Some(&log), &keys) {
                    return Err(CheckpointRefusal::Problem(problem));
                }
                let marks: Vec<(i64, &str)> =
                    rows.iter().map(|r| (r.seq, r.hash.as_str())).collect();
                walk_chain(&mut tx, 0, GENESIS, &marks)
                    .await?
                    .map_err(CheckpointRefusal::Problem)?;
            }
        }
        let signed_up_to = last.as_ref().map_or(0, |c| c.seq);
        if head_seq == 0 || head_seq <= signed_up_to {
            tx.commit().await?;
            return Ok(outcome);
        }
        let prev_digest = last
            .as_ref()
            .map_or_else(|| NO_PREVIOUS_CHECKPOINT.to_owned(), Checkpoint::digest);
        let checkpoint = Checkpoint::sign(key, &log, head_seq, &head_hash, &prev_digest, now);
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, signature, format, log_id, prev_digest)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.hash)
        .bind(&checkpoint.signed_at)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.signature)
        .bind(&checkpoint.format)
        .bind(&checkpoint.log_id)
        .bind(&checkpoint.prev_digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        outcome.signed = Some(checkpoint);
        Ok(outcome)
    }

    /// Stores the witness's cosignature beside its checkpoint.
    pub async fn store_cosignature(&self, cosignature: &Cosignature) -> Result<()> {
        let json = serde_json::to_string(cosignature)
            .map_err(|e| StoreError::Corrupt(format!("cosignature: {e}")))?;
        let done = sqlx::query(
            "UPDATE audit_checkpoints SET cosignature = ? WHERE seq = ? AND log_id = ? AND format = ?",
        )
        .bind(json)
        .bind(cosignature.seq)
        .bind(&cosignature.log_id)
        .bind(CHECKPOINT_FORMAT)
        .execute(self.writer())
        .await?;
        crate::updated_one(done)
    }

    /// The v2 checkpoint at entry `seq`, if the database holds one.
    pub async fn audit_checkpoint(&self, seq: i64) -> Result<Option<Checkpoint>> {
        let mut conn = self.reader().acquire().await?;
        let rows = checkpoint_rows(&mut conn, seq - 1).await?;
        Ok(rows
            .first()
            .filter(|r| r.seq == seq)
            .and_then(CheckpointRow::checkpoint))
    }

    /// How many entries follow the last checkpoint (all of them when there
    /// is none). Two lookups by primary key: cheap enough to ask every second.
    pub async fn audit_unsigned(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT (SELECT MAX(seq) FROM audit_log), (SELECT MAX(seq) FROM audit_checkpoints)",
        )
        .fetch_one(self.reader())
        .await?;
        let head: Option<i64> = row.try_get(0)?;
        let signed: Option<i64> = row.try_get(1)?;
        Ok(head.unwrap_or(0) - signed.unwrap_or(0))
    }

    /// Entries in order, optionally only one tenant's, from `after` on.
    pub async fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredAuditEntry>> {
        let rows =
            match tenant {
                Some(t) => sqlx::query(
                    "SELECT * FROM audit_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                )
                .bind(t.as_str())
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await?,
                None => {
                    let mut conn = self.reader().acquire().await?;
                    return entries_page(&mut conn, after, limit).await;
                }
            };
        rows.iter().map(stored_entry).collect()
    }

    /// Walks the whole chain and every checkpoint with the public keys
    /// given (never a private key); reports the first problem.
    pub async fn verify_audit(&self, keys: AuditKeys<'_>) -> Result<AuditReport> {
        let mut conn = self.reader().acquire().await?;
        let log = log_id(&mut conn).await?;
        let rows = checkpoint_rows(&mut conn, i64::MIN).await?;
        let mut report = AuditReport {
            log_id: log.clone(),
            entries: 0,
            checkpoints: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            cosigned: 0,
            unsigned_tail: 0,
            problem: None,
        };
        // Checkpoint signatures first: a forged checkpoint is reported as such.
        let (problem, cosigned) = check_checkpoint_rows(&rows, log.as_deref(), &keys);
        report.cosigned = cosigned;
        if problem.is_some() {
            report.problem = problem;
            return Ok(report);
        }
        let marks: Vec<(i64, &str)> = rows.iter().map(|r| (r.seq, r.hash.as_str())).collect();
        match walk_chain(&mut conn, 0, GENESIS, &marks).await? {
            Ok(walked) => report.entries = walked,
            Err(problem) => {
                report.problem = Some(problem);
                return Ok(report);
            }
        }
        let last_signed = rows.last().map_or(0, |r| r.seq);
        report.unsigned_tail = report.entries - last_signed;
        Ok(report)
    }
}

impl From<AuditProblem> for StoreError {
    fn from(problem: AuditProblem) -> Self {
        StoreError::Corrupt(problem.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn checkpoint(key: &SigningKey, seq: i64, prev: &str) -> Checkpoint {
        Checkpoint::sign(
            key,
            "core/00ff",
            seq,
            &"ab".repeat(32),
            prev,
            datetime!(2026-12-01 09:30:00.123456 UTC),
        )
    }

    #[test]
    fn the_signed_bytes_are_the_documented_array() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let c = checkpoint(&key, 42, NO_PREVIOUS_CHECKPOINT);
        let expected = format!(
            "[\"kuvert-audit-checkpoint-v2\",\"core/00ff\",42,\"{}\",\"{}\",\"2026-12-01T09:30:00.123456Z\",\"{}\"]",
            "ab".repeat(32),
            "0".repeat(64),
            key.public_key().key_id()
        );
        assert_eq!(String::from_utf8(c.signed_bytes()).unwrap(), expected);
        assert_eq!(c.digest(), sha256_hex(expected.as_bytes()));
        let signature = Signature::from_base64(&c.signature).unwrap();
        key.public_key()
            .verify(
                b"kuvert/v2/audit-checkpoint",
                expected.as_bytes(),
                &signature,
            )
            .unwrap();
    }

    #[test]
    fn every_signed_field_matters() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let good = checkpoint(&key, 42, NO_PREVIOUS_CHECKPOINT);
        good.verify(&key.public_key()).unwrap();
        let edits: [fn(&mut Checkpoint); 6] = [
            |c| c.log_id = "mailbox/00ff".into(),
            |c| c.seq += 1,
            |c| c.hash = "cd".repeat(32),
            |c| c.prev_digest = "1".repeat(64),
            |c| c.signed_at = "2026-12-01T09:30:01.123456Z".into(),
            |c| c.format = "kuvert-audit-checkpoint-v1".into(),
        ];
        for edit in edits {
            let mut forged = good.clone();
            edit(&mut forged);
            assert!(forged.verify(&key.public_key()).is_err(), "{forged:?}");
        }
        let other = SigningKey::from_bytes(&[8; 32]).public_key();
        assert!(good.verify(&other).is_err());
    }

    #[test]
    fn a_checkpoint_extends_only_the_one_whose_digest_it_names() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let first = checkpoint(&key, 10, NO_PREVIOUS_CHECKPOINT);
        let second = checkpoint(&key, 20, &first.digest());
        assert!(second.extends(&first));
        let fork = checkpoint(&key, 20, NO_PREVIOUS_CHECKPOINT);
        assert!(!fork.extends(&first));
        let rollback = checkpoint(&key, 5, &first.digest());
        assert!(!rollback.extends(&first), "a lower seq is a rollback");
        let mut same_entry_other_hash = checkpoint(&key, 10, &first.digest());
        same_entry_other_hash.hash = "cd".repeat(32);
        assert!(
            !same_entry_other_hash.extends(&first),
            "entry 10 has one hash"
        );
        assert!(checkpoint(&key, 10, &first.digest()).extends(&first));
    }

    #[test]
    fn a_cosignature_covers_exactly_one_checkpoint_in_its_own_domain() {
        let log_key = SigningKey::from_bytes(&[7; 32]);
        let witness = SigningKey::from_bytes(&[9; 32]);
        let c = checkpoint(&log_key, 42, NO_PREVIOUS_CHECKPOINT);
        let cosignature = Cosignature::sign(&witness, &c, datetime!(2026-12-01 09:30:01 UTC));
        cosignature.verify(&c, &witness.public_key()).unwrap();
        let other = checkpoint(&log_key, 43, NO_PREVIOUS_CHECKPOINT);
        assert!(cosignature.verify(&other, &witness.public_key()).is_err());
        assert!(cosignature.verify(&c, &log_key.public_key()).is_err());
        // The log's own signature is no cosignature (domain separation).
        let mut replayed = cosignature.clone();
        replayed.key_id = log_key.public_key().key_id();
        replayed.signature = log_key
            .sign(CHECKPOINT_DOMAIN, &replayed.signed_bytes())
            .to_base64();
        assert!(replayed.verify(&c, &log_key.public_key()).is_err());
    }

    #[test]
    fn log_ids_are_plain_lowercase_paths() {
        for good in ["core/3f00", "mailbox/kuvert-brevlada/9a"] {
            assert!(is_valid_log_id(good), "{good}");
        }
        for bad in [
            "",
            "core/",
            "/core",
            "core//x",
            "Core/1",
            "core/../x",
            "core/a b",
        ] {
            assert!(!is_valid_log_id(bad), "{bad}");
        }
    }

    async fn log_with(entries: i64) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("core.db"), crate::Schema::Core)
            .await
            .unwrap();
        db.init_audit_log("core", OffsetDateTime::now_utc())
            .await
            .unwrap();
        append_n(&db, entries).await;
        (dir, db)
    }

    async fn append_n(db: &Db, n: i64) {
        for _ in 0..n {
            db.append_audit(OffsetDateTime::now_utc(), &TEST_ENTRY)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn the_checkpointer_chains_from_its_anchor_and_refuses_what_does_not_follow_it() {
        let key = SigningKey::generate();
        let (_dir, db) = log_with(5).await;
        let now = OffsetDateTime::now_utc();
        let first = db.checkpoint_audit(&key, None, now).await.unwrap();
        let first = first.signed.unwrap();
        assert_eq!(first.prev_digest, NO_PREVIOUS_CHECKPOINT);
        assert!(first.log_id.starts_with("core/"));
        append_n(&db, 3).await;
        let second = db.checkpoint_audit(&key, Some(&first), now).await.unwrap();
        let second = second.signed.unwrap();
        assert!(second.extends(&first) && second.seq == first.seq + 3);
        let nothing_new = db.checkpoint_audit(&key, Some(&second), now).await.unwrap();
        assert_eq!(nothing_new, CheckpointOutcome::default());

        // The file's anchor is ahead of the database: an older copy.
        let ahead = Checkpoint::sign(&key, &second.log_id, 99, "x", &second.digest(), now);
        assert!(matches!(
            db.checkpoint_audit(&key, Some(&ahead), now).await,
            Err(CheckpointRefusal::Behind { head: 8, seq: 99 })
        ));
        let mut elsewhere = second.clone();
        elsewhere.log_id = "mailbox/x/1".into();
        assert!(matches!(
            db.checkpoint_audit(&key, Some(&elsewhere), now).await,
            Err(CheckpointRefusal::OtherLog { .. })
        ));
        // The anchor removed from the database.
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq = ?")
            .bind(second.seq)
            .execute(db.writer())
            .await
            .unwrap();
        append_n(&db, 1).await;
        assert!(matches!(
            db.checkpoint_audit(&key, Some(&second), now).await,
            Err(CheckpointRefusal::CheckpointGone { seq: 8 })
        ));
        // Without an anchor, a database holding v2 checkpoints is refused.
        assert!(matches!(
            db.checkpoint_audit(&key, None, now).await,
            Err(CheckpointRefusal::NoAnchor)
        ));
        db.close().await;
    }

    /// How long the re-verification before a checkpoint takes for the
    /// largest tail the checkpointer leaves (1000 entries).
    #[tokio::test]
    async fn re_verifying_a_thousand_entries_before_signing_is_cheap() {
        let key = SigningKey::generate();
        let (_dir, db) = log_with(1).await;
        let now = OffsetDateTime::now_utc();
        let anchor = db.checkpoint_audit(&key, None, now).await.unwrap();
        let anchor = anchor.signed.unwrap();
        append_n(&db, 1000).await;
        let started = std::time::Instant::now();
        let next = db.checkpoint_audit(&key, Some(&anchor), now).await.unwrap();
        let took = started.elapsed();
        eprintln!("checkpoint over 1000 new entries, re-verified: {took:?}");
        assert_eq!(next.signed.unwrap().seq, 1001);
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
        db.close().await;
    }
}
