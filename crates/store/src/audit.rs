//! The tamper-evident audit log.
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} || 0x0A || canonical(entry_n))`
//! (hex), starting from 64 zeros. A checkpoint signs `"{seq}:{hash}"` with the
//! node's audit key. Editing an entry breaks its hash; removing or inserting
//! one breaks the sequence or the chain; rewriting the whole chain after an
//! edit breaks every later checkpoint's signature check. Anyone with the
//! public key can run the check ([`Db::verify_audit`]).

use crate::{Db, Result, StoreError, format_instant};
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::signing::{PublicKey, Signature, SigningKey};
use kuvert_domain::ids::TenantId;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

pub const CHECKPOINT_DOMAIN: &[u8] = b"kuvert/v1/audit-checkpoint";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// What [`Db::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub entries: i64,
    pub checkpoints: i64,
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
    #[error("checkpoint at entry {seq}: the signature does not verify")]
    BadCheckpointSignature { seq: i64 },
    #[error("checkpoint at entry {seq}: the signed hash differs from the entry's hash")]
    CheckpointMismatch { seq: i64 },
    #[error("checkpoint at entry {seq}: the entry does not exist (the log was truncated)")]
    Truncated { seq: i64 },
}

impl Db {
    pub async fn append_audit(&self, at: OffsetDateTime, entry: &AuditEntry<'_>) -> Result<i64> {
        let mut tx = self.writer().begin().await?;
        let seq = append(&mut tx, at, entry).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Signs the newest entry's hash, if it is not signed yet.
    pub async fn checkpoint_audit(
        &self,
        key: &SigningKey,
        now: OffsetDateTime,
    ) -> Result<Option<i64>> {
        let mut tx = self.writer().begin().await?;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = last else { return Ok(None) };
        let (seq, hash): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let signed: Option<i64> = sqlx::query("SELECT MAX(seq) FROM audit_checkpoints")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if signed.is_some_and(|s| s >= seq) {
            return Ok(None);
        }
        let signature = key.sign(CHECKPOINT_DOMAIN, format!("{seq}:{hash}").as_bytes());
        sqlx::query("INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, signature) VALUES (?, ?, ?, ?, ?)")
            .bind(seq)
            .bind(&hash)
            .bind(format_instant(now))
            .bind(key.public_key().key_id())
            .bind(signature.to_base64())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(seq))
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
                    sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
                        .bind(after)
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await?
                }
            };
        rows.iter()
            .map(|row| {
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
            })
            .collect()
    }

    /// Walks the whole chain and every checkpoint; reports the first problem.
    pub async fn verify_audit(&self, key: &PublicKey) -> Result<AuditReport> {
        let checkpoints: Vec<(i64, String, String)> =
            sqlx::query("SELECT seq, hash, signature FROM audit_checkpoints ORDER BY seq")
                .fetch_all(self.reader())
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_>>()?;
        let mut report = AuditReport {
            entries: 0,
            checkpoints: i64::try_from(checkpoints.len()).unwrap_or(i64::MAX),
            unsigned_tail: 0,
            problem: None,
        };
        // Checkpoint signatures first: a forged checkpoint is reported as such.
        for (seq, hash, signature) in &checkpoints {
            let ok = Signature::from_base64(signature).and_then(|sig| {
                key.verify(CHECKPOINT_DOMAIN, format!("{seq}:{hash}").as_bytes(), &sig)
            });
            if ok.is_err() {
                report.problem = Some(AuditProblem::BadCheckpointSignature { seq: *seq });
                return Ok(report);
            }
        }
        let mut prev_hash = GENESIS.to_owned();
        let mut expected = 1_i64;
        let mut checkpoint_iter = checkpoints.iter().peekable();
        let mut after = 0_i64;
        loop {
            let page = self.audit_entries(None, after, 5_000).await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if e.seq != expected {
                    report.problem = Some(AuditProblem::Gap {
                        expected,
                        found: e.seq,
                    });
                    return Ok(report);
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
                    report.problem = Some(AuditProblem::HashMismatch { seq: e.seq });
                    return Ok(report);
                }
                while let Some((cp_seq, cp_hash, _)) = checkpoint_iter.peek() {
                    if *cp_seq != e.seq {
                        break;
                    }
                    if *cp_hash != hash {
                        report.problem = Some(AuditProblem::CheckpointMismatch { seq: *cp_seq });
                        return Ok(report);
                    }
                    checkpoint_iter.next();
                }
                prev_hash = hash;
                expected += 1;
                report.entries += 1;
                after = e.seq;
            }
        }
        if let Some((seq, _, _)) = checkpoint_iter.next() {
            report.problem = Some(AuditProblem::Truncated { seq: *seq });
            return Ok(report);
        }
        let last_signed = checkpoints.last().map_or(0, |(seq, _, _)| *seq);
        report.unsigned_tail = report.entries - last_signed;
        Ok(report)
    }
}

impl From<AuditProblem> for StoreError {
    fn from(problem: AuditProblem) -> Self {
        StoreError::Corrupt(problem.to_string())
    }
}
