//! The node's side of the witnessed audit log (decision 0010): the
//! append-only checkpoint file per database, the guard that signs a
//! checkpoint only over a log that still verifies from the last one this
//! node signed, and the client that sends each checkpoint to a witness.

use kuvert_crypto::signing::{PublicKey, SigningKey};
use kuvert_domain::clock::Clock;
use kuvert_store::Db;
use kuvert_store::audit::{Checkpoint, CheckpointRefusal, Cosignature};
use kuvert_web::AuditAlarm;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long the node waits for the witness's answer.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

/// One line of a checkpoint file (and of the witness's log files): a
/// checkpoint, and the witness's cosignature once it has one (the same
/// checkpoint then appears again, with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRecord {
    pub checkpoint: Checkpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosignature: Option<Cosignature>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("checkpoint file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint file {path}, line {line}: not a checkpoint record ({source})")]
    Malformed {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

/// A file of JSON lines only ever appended to (opened with `O_APPEND`,
/// each line fsynced before it counts). A database writer who cannot write
/// this file cannot make the node forget a checkpoint it signed.
#[derive(Debug, Clone)]
pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, oldest first; a missing file holds none. A last line
    /// without its newline is a write a crash cut short: left out.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, CheckpointFileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CheckpointFileError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|source| CheckpointFileError::Malformed {
                    path: self.path.clone(),
                    line: i + 1,
                    source,
                })
            })
            .collect()
    }

    /// Appends one record and fsyncs it.
    pub fn append<T: Serialize>(&self, record: &T) -> Result<(), CheckpointFileError> {
        let io = |source| CheckpointFileError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

/// Where the node keeps a database's checkpoints: `<data>/audit/<db>.jsonl`,
/// named by the database (`core`, `mailbox`) and not by the log id the
/// database gives itself, so that a database that renames its log is
/// compared with the file it had.
pub fn checkpoint_file(data_dir: &Path, database: &str) -> RecordFile {
    RecordFile::new(data_dir.join("audit").join(format!("{database}.jsonl")))
}

/// A witness the node sends its checkpoints to, and its pinned key.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub url: String,
    pub key: PublicKey,
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("the witness is unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the witness is unavailable: HTTP {status}")]
    Unavailable { status: u16 },
    #[error("the witness refused the checkpoint: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the witness answered a cosignature that does not verify with its pinned key")]
    BadCosignature,
}

/// Sends checkpoints to one witness.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    config: WitnessConfig,
    http: reqwest::Client,
}

impl WitnessClient {
    pub fn new(config: WitnessConfig) -> Result<Self, WitnessError> {
        let http = reqwest::Client::builder()
            .timeout(WITNESS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { config, http })
    }

    /// Posts the checkpoint; the cosignature, checked against the pinned key.
    pub async fn submit(&self, checkpoint: &Checkpoint) -> Result<Cosignature, WitnessError> {
        let url = format!(
            "{}/witness/v1/checkpoints",
            self.config.url.trim_end_matches('/')
        );
        let response = self.http.post(url).json(checkpoint).send().await?;
        let status = response.status();
        if status.is_server_error() {
            // Down for now, not a judgement on the checkpoint.
            return Err(WitnessError::Unavailable {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(WitnessError::Refused {
                status: status.as_u16(),
                body,
            });
        }
        let cosignature: Cosignature = response.json().await?;
        cosignature
            .verify(checkpoint, &self.config.key)
            .map_err(|_| WitnessError::BadCosignature)?;
        Ok(cosignature)
    }
}

impl WitnessError {
    /// Whether trying again later may work (the checkpoint stays queued).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WitnessError::Unreachable(_) | WitnessError::Unavailable { .. }
        )
    }
}

/// Signs one database's checkpoints, only over a log that verifies from the
/// last checkpoint this node signed (kept in its checkpoint file), writes
/// each to the file and sends it to the witness in order. Once the log does
/// not verify it stops signing for good (until a restart re-checks), logs
/// an error and raises the alarm `/ready` reports.
pub struct AuditGuard {
    database: &'static str,
    db: Db,
    key: SigningKey,
    file: RecordFile,
    alarm: Arc<AuditAlarm>,
    witness: Option<WitnessClient>,
    state: tokio::sync::Mutex<GuardState>,
}

struct GuardState {
    /// The last checkpoint this node signed (from its file, then its own).
    anchor: Option<Checkpoint>,
    /// Checkpoints not countersigned yet, oldest first.
    unwitnessed: VecDeque<Checkpoint>,
    halted: bool,
    /// The witness was unreachable at the last try (logged once per outage).
    witness_down: bool,
}

impl AuditGuard {
    /// Reads the database's checkpoint file. A file that cannot be read
    /// halts the guard at once (the node then signs nothing).
    pub fn open(
        database: &'static str,
        db: Db,
        key: SigningKey,
        file: RecordFile,
        alarm: Arc<AuditAlarm>,
        witness: Option<WitnessClient>,
    ) -> Self {
        let mut state = GuardState {
            anchor: None,
            unwitnessed: VecDeque::new(),
            halted: false,
            witness_down: false,
        };
        match file.read::<CheckpointRecord>() {
            Ok(records) => {
                for record in records {
                    // The witness countersigns in order: a cosignature
                    // covers every checkpoint up to its own.
                    if record.cosignature.is_some() {
                        let seq = record.checkpoint.seq;
                        state.unwitnessed.retain(|c| c.seq > seq);
                    } else {
                        state.unwitnessed.push_back(record.checkpoint.clone());
                    }
                    // A cosignature line repeats an older checkpoint.
                    if state
                        .anchor
                        .as_ref()
                        .is_none_or(|a| record.checkpoint.seq > a.seq)
                    {
                        state.anchor = Some(record.checkpoint);
                    }
                }
            }
            Err(e) => {
                tracing::error!(database, error = %e, "audit checkpoint file unreadable: not signing");
                alarm.raise(database, e.to_string());
                state.halted = true;
            }
        }
        Self {
            database,
            db,
            key,
            file,
            alarm,
            witness,
            state: tokio::sync::Mutex::new(state),
        }
    }

    pub fn database(&self) -> &'static str {
        self.database
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The last checkpoint this node signed.
    pub async fn anchor(&self) -> Option<Checkpoint> {
        self.state.lock().await.anchor.clone()
    }

    fn halt(&self, state: &mut GuardState, reason: &str) {
        tracing::error!(
            database = self.database,
            reason,
            "AUDIT LOG DOES NOT VERIFY: no more checkpoints are signed for it; compare the database with the checkpoint file {} and the witness",
            self.file.path().display()
        );
        self.alarm.raise(self.database, reason);
        state.halted = true;
    }

    /// Signs the head if it is not signed yet (see [`Db::checkpoint_audit`]),
    /// records it in the file, then sends what is queued to the witness.
    pub async fn checkpoint(&self, clock: &dyn Clock) {
        {
            let mut state = self.state.lock().await;
            if state.halted {
                return;
            }
            let outcome = match self
                .db
                .checkpoint_audit(&self.key, state.anchor.as_ref(), clock.now())
                .await
            {
                Ok(outcome) => outcome,
                Err(CheckpointRefusal::Store(e)) => {
                    tracing::warn!(database = self.database, error = %e, "audit checkpoint failed; trying again later");
                    return;
                }
                Err(refusal) => {
                    self.halt(&mut state, &refusal.to_string());
                    return;
                }
            };
            for checkpoint in outcome.adopted.into_iter().chain(outcome.signed) {
                let record = CheckpointRecord {
                    checkpoint: checkpoint.clone(),
                    cosignature: None,
                };
                if let Err(e) = self.file.append(&record) {
                    // Without the file the next start could not check the
                    // database against what this node signed.
                    self.halt(&mut state, &e.to_string());
                    return;
                }
                state.anchor = Some(checkpoint.clone());
                state.unwitnessed.push_back(checkpoint);
            }
        }
        self.send_to_witness().await;
    }

    /// Sends the queued checkpoints to the witness, oldest first, and keeps
    /// each cosignature (database and file). Stops at the first that fails:
    /// unreachable, it stays queued; refused, the alarm is raised.
    pub async fn send_to_witness(&self) {
        let Some(witness) = &self.witness else { return };
        let mut state = self.state.lock().await;
        // Halted: the witness refused, or the log no longer verifies; sending
        // the same checkpoint every second would only fill its refused/.
        if state.halted {
            return;
        }
        while let Some(checkpoint) = state.unwitnessed.front().cloned() {
            let cosignature = match witness.submit(&checkpoint).await {
                Ok(cosignature) => cosignature,
                Err(e) if e.is_transient() => {
                    if !state.witness_down {
                        tracing::warn!(database = self.database, error = %e, queued = state.unwitnessed.len(), "audit witness unreachable; checkpoints queue and are sent in order later");
                    }
                    state.witness_down = true;
                    return;
                }
                Err(e) => {
                    self.halt(
                        &mut state,
                        &format!("checkpoint at entry {}: {e}", checkpoint.seq),
                    );
                    return;
                }
            };
            if state.witness_down {
                tracing::info!(database = self.database, "audit witness reachable again");
                state.witness_down = false;
            }
            let record = CheckpointRecord {
                checkpoint: checkpoint.clone(),
                cosignature: Some(cosignature.clone()),
            };
            if let Err(e) = self.file.append(&record) {
                tracing::warn!(database = self.database, error = %e, "could not record a cosignature in the checkpoint file");
            }
            if let Err(e) = self.db.store_cosignature(&cosignature).await {
                tracing::warn!(database = self.database, error = %e, seq = checkpoint.seq, "could not store a cosignature in the database");
            }
            state.unwitnessed.pop_front();
        }
    }

    /// How many checkpoints wait for the witness.
    pub async fn unwitnessed(&self) -> usize {
        self.state.lock().await.unwitnessed.len()
    }
}
