//! `kuvert witness`: a second party that countersigns audit checkpoints
//! (decision 0010), as transparency logs' witnesses cosign signed notes. It
//! knows only the logs it is configured for and each log's public key; it
//! countersigns a checkpoint only when it extends the last one it
//! countersigned for that log, and keeps every cosignature in an
//! append-only file, so a log's operator cannot later show the witness (or
//! anyone who asks it) a rewritten or older history. It needs none of the
//! register, relay or mailbox.

use crate::audit_log::{CheckpointRecord, RecordFile};
use anyhow::Context as _;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use kuvert_crypto::signing::{PublicKey, SigningKey};
use kuvert_domain::clock::{Clock, SystemClock, format_instant};
use kuvert_store::audit::{Checkpoint, Cosignature, is_valid_log_id};
use kuvert_web::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// A checkpoint is a few hundred bytes.
const BODY_LIMIT: usize = 16 * 1024;

pub struct WitnessSettings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The logs this witness countersigns, each with its pinned public key.
    pub logs: BTreeMap<String, PublicKey>,
    pub clock: Arc<dyn Clock>,
}

impl WitnessSettings {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            data_dir,
            listen,
            logs: BTreeMap::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Parses `LOG_ID=BASE64_PUBLIC_KEY` (`--log`).
pub fn parse_log_pin(text: &str) -> anyhow::Result<(String, PublicKey)> {
    let (log, key) = text
        .split_once('=')
        .context("--log takes LOG_ID=AUDIT_PUBLIC_KEY (standard base64 of 32 bytes)")?;
    anyhow::ensure!(is_valid_log_id(log), "{log:?} is not a kuvert log id");
    let key = PublicKey::from_base64(key)
        .with_context(|| format!("the key pinned for {log} is not an Ed25519 public key"))?;
    Ok((log.to_owned(), key))
}

/// The witness's public key document (`GET /witness/v1/key`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WitnessKey {
    pub format: String,
    pub algorithm: String,
    pub key_id: String,
    pub public_key: String,
}

/// A checkpoint the witness refused, kept for inspection.
#[derive(Debug, Serialize, Deserialize)]
struct Refused {
    checkpoint: Checkpoint,
    reason: String,
    received_at: String,
}

struct Witness {
    key: SigningKey,
    logs: BTreeMap<String, PublicKey>,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// The latest countersigned checkpoint of each log.
    latest: Mutex<HashMap<String, CheckpointRecord>>,
}

impl Witness {
    /// `<data>/logs/<log id, '/' as '+'>.jsonl` (and `refused/` beside it).
    fn file(&self, folder: &str, log: &str) -> RecordFile {
        file_for(&self.data_dir, folder, log)
    }
}

fn file_for(data_dir: &Path, folder: &str, log: &str) -> RecordFile {
    RecordFile::new(
        data_dir
            .join(folder)
            .join(format!("{}.jsonl", log.replace('/', "+"))),
    )
}

/// A running witness.
pub struct RunningWitness {
    pub url: String,
    pub public_key: PublicKey,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningWitness {
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

pub async fn start(settings: WitnessSettings) -> anyhow::Result<RunningWitness> {
    anyhow::ensure!(
        !settings.logs.is_empty(),
        "a witness needs at least one --log LOG_ID=AUDIT_PUBLIC_KEY"
    );
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    // The witness's own key, made on its first start in its own folder.
    let secret =
        kuvert_crypto::keyfile::load_or_create_secret(&settings.data_dir.join("witness.ed25519"))?;
    let key = SigningKey::from_bytes(&secret);
    let mut latest = HashMap::new();
    for log in settings.logs.keys() {
        let records: Vec<CheckpointRecord> = file_for(&settings.data_dir, "logs", log).read()?;
        if let Some(last) = records.into_iter().max_by_key(|r| r.checkpoint.seq) {
            latest.insert(log.clone(), last);
        }
    }
    let public_key = key.public_key();
    let witness = Arc::new(Witness {
        key,
        logs: settings.logs,
        data_dir: settings.data_dir,
        clock: settings.clock,
        latest: Mutex::new(latest),
    });
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/witness/v1/key", get(witness_key))
        .route("/witness/v1/checkpoints", post(countersign))
        .route("/witness/v1/logs/{*rest}", get(latest_of))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(witness);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "witness stopped with an error");
        }
    });
    tracing::info!(%url, key_id = %public_key.key_id(), "kuvert witness is running");
    Ok(RunningWitness {
        url,
        public_key,
        shutdown,
        task,
    })
}

async fn witness_key(State(witness): State<Arc<Witness>>) -> Json<WitnessKey> {
    let public = witness.key.public_key();
    Json(WitnessKey {
        format: "kuvert-witness-key-v1".to_owned(),
        algorithm: "ed25519".to_owned(),
        key_id: public.key_id(),
        public_key: public.to_base64(),
    })
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "witness storage failed");
    ApiError::unavailable()
}

/// `POST /witness/v1/checkpoints`: countersigns a checkpoint of a pinned
/// log that extends the last one countersigned (the first of a log is
/// trusted on first use); the same checkpoint again gets the same
/// cosignature; a fork or rollback is refused (409) and kept.
async fn countersign(
    State(witness): State<Arc<Witness>>,
    body: Result<Json<Checkpoint>, JsonRejection>,
) -> Result<Json<Cosignature>, ApiError> {
    let Json(checkpoint) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_checkpoint",
            format!("not a kuvert-audit-checkpoint-v2: {e}"),
        )
    })?;
    let Some(log_key) = witness.logs.get(&checkpoint.log_id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_log",
            format!("this witness does not witness {}", checkpoint.log_id),
        ));
    };
    if checkpoint.verify(log_key).is_err() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_checkpoint_signature",
            "the checkpoint's signature does not verify with the key pinned for its log",
        ));
    }
    let mut latest = witness.latest.lock().await;
    let log = checkpoint.log_id.clone();
    if let Some(last) = latest.get(&log) {
        if last.checkpoint == checkpoint
            && let Some(cosignature) = &last.cosignature
        {
            return Ok(Json(cosignature.clone()));
        }
        if !checkpoint.extends(&last.checkpoint) {
            // An older checkpoint sent again (its answer lost) is no fork.
            let records: Vec<CheckpointRecord> =
                witness.file("logs", &log).read().map_err(storage_error)?;
            if let Some(cosignature) = records
                .into_iter()
                .find(|r| r.checkpoint == checkpoint)
                .and_then(|r| r.cosignature)
            {
                return Ok(Json(cosignature));
            }
            let (code, reason) = if checkpoint.seq < last.checkpoint.seq {
                (
                    "checkpoint_rollback",
                    "it goes back before the last checkpoint countersigned",
                )
            } else {
                (
                    "checkpoint_fork",
                    "it does not extend the last checkpoint countersigned (prev_digest differs)",
                )
            };
            let refused = Refused {
                checkpoint: checkpoint.clone(),
                reason: reason.to_owned(),
                received_at: format_instant(witness.clock.now()),
            };
            witness
                .file("refused", &log)
                .append(&refused)
                .map_err(storage_error)?;
            tracing::error!(%log, seq = checkpoint.seq, latest = last.checkpoint.seq, code, "refused an audit checkpoint");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                code,
                format!(
                    "checkpoint at entry {} of {log}: {reason} (entry {}); kept for inspection",
                    checkpoint.seq, last.checkpoint.seq
                ),
            ));
        }
    }
    let cosignature = Cosignature::sign(&witness.key, &checkpoint, witness.clock.now());
    let record = CheckpointRecord {
        checkpoint,
        cosignature: Some(cosignature.clone()),
    };
    // Durable before it is answered: what the witness countersigned it
    // never forgets.
    witness
        .file("logs", &log)
        .append(&record)
        .map_err(storage_error)?;
    latest.insert(log, record);
    Ok(Json(cosignature))
}

/// `GET /witness/v1/logs/{log}/latest`: the latest countersigned
/// checkpoint of a log, with its cosignature.
async fn latest_of(
    State(witness): State<Arc<Witness>>,
    UrlPath(rest): UrlPath<String>,
) -> Result<Json<CheckpointRecord>, ApiError> {
    let log = rest
        .strip_suffix("/latest")
        .ok_or_else(ApiError::not_found)?;
    let latest = witness.latest.lock().await;
    latest
        .get(log)
        .cloned()
        .map(Json)
        .ok_or_else(ApiError::not_found)
}
