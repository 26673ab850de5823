//! Delivers the queue to mailbox operators.
//!
//! A pass leases due jobs, sends them per operator in one request, verifies
//! each signed receipt against the operator's registered receipt key and
//! records it; a transport error or 5xx reschedules with exponential backoff.
//! Results are matched to jobs by delivery id; only a rejection signed by the
//! operator's receipt key fails a delivery for good. TLS is rustls, redirects
//! are not followed, and `http://` addresses are refused unless the demo
//! allows them (decision 0011).
//! A crash between the operator's answer and the record is harmless: the job
//! comes due again after its lease and the operator answers a redelivery with
//! the first receipt (same delivery time), never a second message.
//!
//! Retries end: after [`RetryPolicy::max_attempts`] attempts (a pass cut
//! short by a crash counts as one, see `Db::release_leases`) the delivery
//! ends `failed` with `retries_exhausted: <last error>`, which the sender
//! sees in the status view and the status feed like any other failure.
//!
//! Poison deliveries (decision 0014): the jobs in flight when the process
//! died are suspects, each sent alone (nothing else in flight in the
//! process) until an operator answers for it; a job that was alone when
//! the process died [`RetryPolicy::quarantine_after`] times in a row ends
//! `failed` with `quarantined: …`, without being sent again.
//!
//! Before a job is sent, the pass checks what may have changed since it was
//! queued (a tenant suspended for a while, say): a revoked sender key ends
//! it `failed` (`sender_key_revoked`), and the register, asked once for the
//! whole pass, ends it `not_delivered` when the recipient is no longer
//! registered at that operator or now refuses the sender (the intake's
//! words: `not_registered`, `sender_refused`, `no_mailbox`).

use crate::intake::operator_certified;
use kuvert_crypto::signing::PublicKey;
use kuvert_domain::clock::{Clock, parse_instant};
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::OperatorId;
use kuvert_domain::status::DeliveryStatus;
use kuvert_mailbox::certificate::TrustedRegisters;
use kuvert_mailbox::protocol::{
    DeliverRequest, DeliverResponse, DeliveryResult, RECEIPT_FORMAT, REJECTION_FORMAT, Receipt,
    Rejection, SealedDelivery,
};
use kuvert_register::{Register, RegisterError, Route as RegisterRoute};
use kuvert_store::relay::{ClaimLimit, Delivered, Ending, OutboxJob};
use kuvert_store::{Db, StoreError};
use rand::Rng as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, RwLock, watch};

/// The most sealed bytes sent to an operator in one request: well under
/// the 128 MiB a mailbox accepts, however large the deliveries are.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// The most jobs one pass leases.
pub const DEFAULT_PASS_JOBS: i64 = 500;

/// The most sealed bytes one pass leases and loads (the first job always
/// goes, however large): with the default 4 passes at once, at most 256 MiB
/// of sealed deliveries are held in flight (plus their parsed copies and
/// the request bodies: about three times that at the worst).
pub const DEFAULT_PASS_BYTES: i64 = 64 * 1024 * 1024;

/// The default [`RetryPolicy::quarantine_after`].
pub const DEFAULT_QUARANTINE_AFTER: u32 = 2;

/// What a quarantined delivery's reason starts with.
pub const QUARANTINED: &str = "quarantined";

/// Splits jobs into requests of at most `max_bytes` of sealed payload (a
/// single larger delivery still goes, alone).
fn split_by_size(jobs: Vec<OutboxJob>, max_bytes: usize) -> Vec<Vec<OutboxJob>> {
    let mut requests: Vec<Vec<OutboxJob>> = Vec::new();
    let mut current: Vec<OutboxJob> = Vec::new();
    let mut bytes = 0;
    for job in jobs {
        if !current.is_empty() && bytes + job.sealed.len() > max_bytes {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += job.sealed.len();
        current.push(job);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// How long to wait before the next attempt, and how many attempts a
/// delivery gets.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Attempts a delivery gets before it ends `failed` with
    /// `retries_exhausted: <last error>` (at least 1). A pass its worker did
    /// not finish (the process stopped mid-pass) counts as an attempt.
    /// With the default backoff (1 s doubling, capped at 300 s) the
    /// default 20 attempts span [`DEFAULT_RETRY_SPAN`] of waiting (±20 %
    /// jitter), plus the time the attempts themselves take.
    pub max_attempts: u32,
    /// A leased job comes due again after this, if its worker vanished.
    pub lease: Duration,
    pub request_timeout: Duration,
    /// Crashes in a row while a delivery was the only one in flight after
    /// which it is quarantined (`failed`, `quarantined: …`; at least 1).
    /// Two by default: the process can die for reasons of its own (an
    /// operator's kill, an intake request, the OOM killer) while any one
    /// delivery is alone, but hardly twice in a row for the same one, and
    /// a delivery with a crash against it is sent first after the start,
    /// before anything else.
    pub quarantine_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lease: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            quarantine_after: DEFAULT_QUARANTINE_AFTER,
        }
    }
}

/// The default [`RetryPolicy::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;

/// The waits between the default policy's 20 attempts, without jitter:
/// 1 + 2 + … + 256 s (511 s), then ten waits of 300 s: 3 511 s, 58.5 min.
pub const DEFAULT_RETRY_SPAN: Duration = Duration::from_secs(3_511);

impl RetryPolicy {
    /// `base * 2^attempts`, capped at `max`, with ±20 % jitter so that many
    /// jobs waiting on the same operator do not return all at once.
    pub fn delay(&self, attempts: i64) -> Duration {
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        self.nominal_delay(attempts).mul_f64(jitter)
    }

    /// [`delay`](Self::delay) without the jitter.
    pub fn nominal_delay(&self, attempts: i64) -> Duration {
        let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        self.base
            .saturating_mul(2_u32.saturating_pow(exponent))
            .min(self.max)
    }

    /// Whether a job with `solo_crashes` crashes in a row while it was
    /// alone in flight is quarantined.
    pub fn quarantines(&self, solo_crashes: i64) -> bool {
        solo_crashes >= i64::from(self.quarantine_after.max(1))
    }

    /// Whether a job that has had `attempts` attempts gets another.
    pub fn allows_another(&self, attempts: i64) -> bool {
        attempts < i64::from(self.max_attempts.max(1))
    }

    /// The waits between all of a delivery's attempts, without jitter.
    pub fn nominal_span(&self) -> Duration {
        (0..i64::from(self.max_attempts.max(1)) - 1)
            .map(|attempts| self.nominal_delay(attempts))
            .sum()
    }
}

/// The reason a delivery that used up its attempts fails with.
fn exhausted_reason(last_error: Option<&str>) -> String {
    format!(
        "retries_exhausted: {}",
        last_error.unwrap_or("no attempt recorded an error")
    )
}

/// The reason a quarantined delivery fails with.
fn quarantine_reason(solo_crashes: i64) -> String {
    format!(
        "{QUARANTINED}: the relay stopped {solo_crashes} times in a row while this delivery was the only one in flight"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pass {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    pub not_delivered: usize,
}

impl Pass {
    pub fn is_idle(&self) -> bool {
        self.delivered + self.retried + self.failed + self.not_delivered == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Register(#[from] RegisterError),
}

/// Whether a pass shares the process with others or is alone in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Shared,
    Alone,
}

pub struct DeliveryWorker {
    pub db: Db,
    /// Asked again before sending: who is still reachable, and from whom.
    pub register: Arc<Register>,
    pub clock: Arc<dyn Clock>,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
    pub wake: Arc<Notify>,
    /// This relay's credential at each mailbox operator (sent as
    /// `Authorization: Bearer`); an operator without one gets none.
    pub credentials: HashMap<OperatorId, String>,
    /// Deliver to `http://` operator addresses (the demo and tests only).
    pub allow_plain_http: bool,
    /// The most jobs a pass leases ([`DEFAULT_PASS_JOBS`]).
    pub batch_size: i64,
    /// The most sealed bytes a pass leases and loads, after its first job
    /// ([`DEFAULT_PASS_BYTES`]).
    pub batch_bytes: i64,
    /// The register keys whose operator certificates this relay accepts:
    /// an operator row (address, receipt key) is used only when certified.
    pub trusted_registers: TrustedRegisters,
    /// Passes in flight at once: while one waits for the operator or the
    /// disk, another sends. Each claims its own jobs (leases), so they
    /// never send the same delivery.
    pub concurrency: usize,
    /// Passes hold it shared; a suspect is sent holding it alone, so that
    /// nothing else is in flight in the process while it is.
    in_flight: RwLock<()>,
}

/// How the worker reaches operators.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// PEM certificates trusted besides the built-in webpki roots (an
    /// operator behind a private CA).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Deliver to `http://` addresses (the demo and tests only).
    pub allow_plain_http: bool,
}

impl Transport {
    /// The one HTTP client kuvert uses towards other roles (mailbox
    /// operators, the register): rustls with the webpki roots and the extra
    /// PEM roots, `https` only unless plain HTTP is allowed, and no
    /// redirects (a redirect could send identity numbers and sealed
    /// deliveries to any host: an address is the one registered).
    pub fn client(&self, timeout: std::time::Duration) -> Result<reqwest::Client, TransportError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!self.allow_plain_http);
        if let Some(pem) = &self.extra_roots_pem {
            let roots =
                reqwest::Certificate::from_pem_bundle(pem).map_err(TransportError::Roots)?;
            if roots.is_empty() {
                return Err(TransportError::NoRoots);
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        builder.build().map_err(TransportError::Client)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the operator delivery URL {0:?} is not a URL")]
    NotAUrl(String),
    #[error("the operator delivery URL {0:?} is plain HTTP, which is refused outside the demo")]
    PlainHttp(String),
    #[error("the operator delivery URL {0:?} is neither https nor http")]
    UnknownScheme(String),
    #[error("the extra trust roots are not PEM certificates: {0}")]
    Roots(reqwest::Error),
    #[error("the extra trust roots hold no certificate")]
    NoRoots,
    #[error("building the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Whether the relay may deliver to `url`.
pub fn check_delivery_url(url: &str, allow_plain_http: bool) -> Result<(), TransportError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| TransportError::NotAUrl(url.to_owned()))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http => Ok(()),
        "http" => Err(TransportError::PlainHttp(url.to_owned())),
        _ => Err(TransportError::UnknownScheme(url.to_owned())),
    }
}

impl DeliveryWorker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        register: Arc<Register>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
        wake: Arc<Notify>,
        credentials: HashMap<OperatorId, String>,
        trusted_registers: TrustedRegisters,
        transport: &Transport,
    ) -> Result<Self, TransportError> {
        let http = transport.client(retry.request_timeout)?;
        Ok(Self {
            db,
            register,
            clock,
            http,
            retry,
            wake,
            credentials,
            allow_plain_http: transport.allow_plain_http,
            batch_size: DEFAULT_PASS_JOBS,
            batch_bytes: DEFAULT_PASS_BYTES,
            trusted_registers,
            concurrency: 4,
            in_flight: RwLock::new(()),
        })
    }

    /// Runs passes until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        match self.db.release_leases(self.clock.now()).await {
            Ok(released) if released.jobs == 0 => {}
            Ok(released) => {
                tracing::warn!(
                    released = released.jobs,
                    alone = released.alone,
                    "released the leases of a worker that stopped mid-pass; those deliveries are sent alone"
                )
            }
            Err(e) => tracing::error!(error = %e, "could not release old leases"),
        }
        let worker = Arc::new(self);
        // A delivery that was alone when the process died goes first,
        // alone, before anything else is sent: if it is what kills the
        // process, it is judged now, not after a random later crash.
        loop {
            match worker.solo_pass(true).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "sending a suspect delivery alone failed");
                    break;
                }
            }
        }
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..worker.concurrency.max(1) {
            loops.spawn(worker.clone().run_loop(shutdown.clone()));
        }
        loops.spawn(worker.clone().solo_loop(shutdown.clone()));
        while loops.join_next().await.is_some() {}
    }

    /// Sends the suspects, one at a time, each alone in the process.
    async fn solo_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let due = match self.db.next_suspect_due().await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the suspects");
                    None
                }
            };
            // Poll at least every second: a tenant may be resumed.
            let wait = due
                .map(|due| Duration::try_from(due - self.clock.now()).unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            if wait.is_zero() {
                match self.solo_pass(false).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "sending a suspect delivery alone failed")
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One suspect, sent while nothing else is in flight in the process
    /// (marked `solo` in its lease, so a crash now counts against it).
    /// `None` when no suspect is due (with `struck_only`, none that crashed
    /// alone before).
    async fn solo_pass(&self, struck_only: bool) -> Result<Option<Pass>, WorkerError> {
        let _alone = self.in_flight.write().await;
        let Some(job) = self
            .db
            .claim_suspect(self.clock.now(), self.lease(), struck_only)
            .await?
        else {
            return Ok(None);
        };
        tracing::info!(delivery = %job.delivery_id, crashes_alone = job.solo_crashes, "sending a suspect delivery alone");
        let mut pass = Pass::default();
        self.deliver_jobs(vec![job], Lane::Alone, &mut pass).await?;
        Ok(Some(pass))
    }

    fn lease(&self) -> time::Duration {
        time::Duration::try_from(self.retry.lease).unwrap_or(time::Duration::minutes(2))
    }

    async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let idle = match self.run_pass().await {
                Ok(pass) => pass.is_idle(),
                Err(e) => {
                    tracing::error!(error = %e, "delivery pass failed");
                    true
                }
            };
            if !idle {
                continue;
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        // Poll at least every second: another process may have queued work.
        let cap = Duration::from_secs(1);
        match self.db.next_job_due().await {
            Ok(Some(due)) => {
                let wait = due - self.clock.now();
                Duration::try_from(wait).unwrap_or(Duration::ZERO).min(cap)
            }
            _ => cap,
        }
    }

    /// One pass over the due jobs (suspects aside), within the pass's
    /// count and byte budget.
    pub async fn run_pass(&self) -> Result<Pass, WorkerError> {
        let _shared = self.in_flight.read().await;
        let limit = ClaimLimit {
            jobs: self.batch_size,
            bytes: self.batch_bytes,
        };
        let jobs = self
            .db
            .claim_due_jobs(self.clock.now(), self.lease(), limit)
            .await?;
        let mut pass = Pass::default();
        self.deliver_jobs(jobs, Lane::Shared, &mut pass).await?;
        Ok(pass)
    }

    /// Ends the claimed jobs that must not be sent, then sends the rest,
    /// per operator, in requests of at most [`MAX_REQUEST_BYTES`].
    async fn deliver_jobs(
        &self,
        jobs: Vec<OutboxJob>,
        lane: Lane,
        pass: &mut Pass,
    ) -> Result<(), WorkerError> {
        let unreachable = self.unreachable(&jobs).await?;
        let mut ended: Vec<(OutboxJob, DeliveryStatus, String, Option<i64>)> = Vec::new();
        let mut by_operator: BTreeMap<String, Vec<OutboxJob>> = BTreeMap::new();
        for job in jobs {
            if self.retry.quarantines(job.solo_crashes) {
                // Paper fallback (a later issue) joins here: the relay
                // keeps only what is sealed to the operator, so printing a
                // quarantined delivery needs a copy kept for paper.
                tracing::error!(delivery = %job.delivery_id, crashes_alone = job.solo_crashes, "the relay stopped each time this delivery was sent alone; quarantined");
                let reason = quarantine_reason(job.solo_crashes);
                ended.push((job, DeliveryStatus::Failed, reason, None));
                continue;
            }
            // Out of attempts before this one (its passes were cut short by
            // crashes): failed, not sent again.
            if !self.retry.allows_another(job.attempts) {
                tracing::warn!(delivery = %job.delivery_id, attempts = job.attempts, "delivery used up its attempts; failed");
                let reason = exhausted_reason(job.last_error.as_deref());
                let attempts = job.attempts;
                ended.push((job, DeliveryStatus::Failed, reason, Some(attempts)));
                continue;
            }
            // The relay's own check; the mailbox refuses it independently.
            if job.sender_key_revoked {
                tracing::warn!(delivery = %job.delivery_id, "the sender key was revoked while the delivery was queued; failed");
                ended.push((
                    job,
                    DeliveryStatus::Failed,
                    "sender_key_revoked".to_owned(),
                    None,
                ));
                continue;
            }
            if let Some(reason) = unreachable.get(&job.delivery_id.to_string()) {
                // Paper fallback at delivery time (a later issue) would
                // join here too.
                tracing::info!(delivery = %job.delivery_id, reason, "the register no longer routes this delivery to its operator; not delivered");
                ended.push((
                    job,
                    DeliveryStatus::NotDelivered,
                    (*reason).to_owned(),
                    None,
                ));
                continue;
            }
            by_operator
                .entry(job.operator_id.to_string())
                .or_default()
                .push(job);
        }
        let endings: Vec<Ending<'_>> = ended
            .iter()
            .map(|(job, status, reason, attempts)| Ending {
                job,
                status: *status,
                reason,
                attempts: *attempts,
            })
            .collect();
        self.db.end_jobs(&endings, self.clock.now()).await?;
        for ending in &endings {
            match ending.status {
                DeliveryStatus::NotDelivered => pass.not_delivered += 1,
                _ => pass.failed += 1,
            }
        }
        for jobs in by_operator.into_values() {
            for request in split_by_size(jobs, MAX_REQUEST_BYTES) {
                self.deliver_to_operator(request, lane, pass).await?;
            }
        }
        Ok(())
    }

    /// The jobs the register no longer routes to their operator, with the
    /// reason (by delivery id): one lookup per sender for the whole pass,
    /// through the same `Register::routes` the intake uses.
    async fn unreachable(
        &self,
        jobs: &[OutboxJob],
    ) -> Result<HashMap<String, &'static str>, WorkerError> {
        let mut by_sender: BTreeMap<&str, Vec<&OutboxJob>> = BTreeMap::new();
        for job in jobs {
            by_sender
                .entry(job.sender_id.as_str())
                .or_default()
                .push(job);
        }
        let mut unreachable = HashMap::new();
        for (sender, jobs) in by_sender {
            // Stored as accepted, so these parse; a row that does not is
            // sent unchecked, and the mailbox judges it.
            let Ok(organisation) = OrganisationNumber::parse(sender) else {
                tracing::error!("a queued delivery's sender id does not parse; not re-checked");
                continue;
            };
            let recipients: Vec<RecipientId> = jobs
                .iter()
                .filter_map(|job| RecipientId::parse_canonical(&job.recipient_id).ok())
                .collect();
            let routes = self.register.routes(&recipients, &organisation).await?;
            for job in jobs {
                let reason = match routes.get(&job.recipient_id) {
                    Some(RegisterRoute::Mailbox(operator)) if operator.id == job.operator_id => {
                        continue;
                    }
                    // Sealed for the operator it had: moved elsewhere, it is
                    // no longer registered there.
                    Some(RegisterRoute::Mailbox(_)) => "not_registered",
                    Some(RegisterRoute::Unreachable { reason }) => reason,
                    None => continue,
                };
                unreachable.insert(job.delivery_id.to_string(), reason);
            }
        }
        Ok(unreachable)
    }

    async fn deliver_to_operator(
        &self,
        jobs: Vec<OutboxJob>,
        lane: Lane,
        pass: &mut Pass,
    ) -> Result<(), StoreError> {
        let Some(first) = jobs.first() else {
            return Ok(());
        };
        let Some(operator) = self.db.operator(&first.operator_id).await? else {
            for job in &jobs {
                self.db
                    .record_failed(job, "unknown_operator", self.clock.now())
                    .await?;
                pass.failed += 1;
            }
            return Ok(());
        };
        // The address and receipt key only as the register certified them: a
        // row changed by a database writer gets nothing sent and no receipt
        // recorded. Retried (up to `max_attempts`), so mail flows again once
        // the platform operator restores the row.
        if !operator_certified(&operator, &self.trusted_registers) {
            tracing::error!(operator = %operator.id, "the mailbox operator's row has no valid register certificate; not delivering");
            return self
                .retry_all(&jobs, "operator certificate does not verify", pass)
                .await;
        }
        let mut sealed = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let parsed: SealedDelivery = serde_json::from_slice(&job.sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sealed.push(parsed);
        }
        // Checked before every post, not only at start-up: an operator's
        // registered address can change while the relay runs.
        if let Err(error) = check_delivery_url(&operator.delivery_url, self.allow_plain_http) {
            tracing::warn!(operator = %operator.id, %error, "refusing to deliver; will retry");
            return self.retry_all(&jobs, &error.to_string(), pass).await;
        }
        let credential = self.credentials.get(&operator.id).map(String::as_str);
        let answer = self.post(&operator.delivery_url, credential, &sealed).await;
        let results = match answer {
            Ok(response) => {
                // The process survived sending these alone and the
                // operator answered: no longer suspects.
                if lane == Lane::Alone {
                    self.db.clear_suspicion(&jobs).await?;
                }
                response.results
            }
            Err(error) => {
                tracing::warn!(operator = %operator.id, %error, count = jobs.len(), "mailbox operator unreachable; will retry");
                return self.retry_all(&jobs, &error, pass).await;
            }
        };
        let ids: Vec<&str> = sealed.iter().map(|s| s.delivery_id.as_str()).collect();
        let matched = match_results(&ids, &results);
        if matched.ignored > 0 {
            tracing::warn!(operator = %operator.id, ignored = matched.ignored, "ignored results for deliveries not in the request");
        }
        let receipt_key = PublicKey::from_base64(&operator.receipt_key).ok();
        // Every receipt's signature at once, on every core.
        let answered: Vec<&Receipt> = matched
            .answers
            .iter()
            .filter_map(|a| match a {
                Answer::One(DeliveryResult::Delivered { receipt }) => Some(receipt),
                _ => None,
            })
            .collect();
        let mut signed_ok = match &receipt_key {
            Some(key) => Receipt::verify_all(&answered, key),
            None => vec![false; answered.len()],
        }
        .into_iter();
        // Genuine receipts are recorded together, in one transaction.
        let mut receipts: Vec<(&OutboxJob, time::OffsetDateTime, String)> = Vec::new();
        for ((job, sealed), answer) in jobs.iter().zip(&sealed).zip(matched.answers) {
            match answer {
                Answer::One(DeliveryResult::Delivered { receipt }) => {
                    let genuine =
                        signed_ok.next().unwrap_or(false) && receipt_names(receipt, sealed, job);
                    let delivered_at = parse_instant(&receipt.delivered_at).ok();
                    match (genuine, delivered_at) {
                        (true, Some(at)) => {
                            let json = serde_json::to_string(receipt)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                            receipts.push((job, at, json));
                        }
                        _ => {
                            tracing::warn!(operator = %operator.id, "receipt does not verify; will retry");
                            self.retry(job, "receipt does not verify", pass).await?;
                        }
                    }
                }
                Answer::One(DeliveryResult::Rejected { rejection }) => {
                    // Only the operator can fail a delivery for good; an
                    // unsigned "no" may come from anything on the path.
                    let genuine = receipt_key
                        .as_ref()
                        .is_some_and(|key| rejection.verify(key).is_ok())
                        && rejection_names(rejection, sealed);
                    if genuine {
                        self.db
                            .record_failed(
                                job,
                                &format!("rejected_by_operator:{}", rejection.code),
                                self.clock.now(),
                            )
                            .await?;
                        pass.failed += 1;
                    } else {
                        tracing::warn!(operator = %operator.id, code = %rejection.code, "rejection does not verify; will retry");
                        self.retry(job, "rejection does not verify", pass).await?;
                    }
                }
                Answer::Missing => {
                    tracing::warn!(operator = %operator.id, "no result for a delivery; will retry");
                    self.retry(job, "operator answered no result for this delivery", pass)
                        .await?;
                }
                Answer::Several => {
                    tracing::warn!(operator = %operator.id, "several results for a delivery; will retry");
                    self.retry(
                        job,
                        "operator answered several results for this delivery",
                        pass,
                    )
                    .await?;
                }
            }
        }
        let delivered: Vec<Delivered<'_>> = receipts
            .iter()
            .map(|(job, delivered_at, json)| Delivered {
                job,
                delivered_at: *delivered_at,
                receipt_json: json,
            })
            .collect();
        self.db
            .record_delivered_many(&delivered, self.clock.now())
            .await?;
        pass.delivered += delivered.len();
        Ok(())
    }

    async fn post(
        &self,
        url: &str,
        credential: Option<&str>,
        deliveries: &[SealedDelivery],
    ) -> Result<DeliverResponse, String> {
        let request = DeliverRequest {
            deliveries: deliveries.to_vec(),
        };
        let mut post = self.http.post(url).json(&request);
        if let Some(credential) = credential {
            post = post.bearer_auth(credential);
        }
        let response = post.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else if e.is_connect() {
                "connection refused or unreachable".to_owned()
            } else {
                "transport error".to_owned()
            }
        })?;
        let status = response.status();
        if status.is_redirection() {
            tracing::warn!(
                url,
                status = status.as_u16(),
                "mailbox operator answered a redirect; not followed"
            );
            return Err(format!(
                "operator answered HTTP {} (redirects are not followed)",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("operator answered HTTP {}", status.as_u16()));
        }
        response
            .json::<DeliverResponse>()
            .await
            .map_err(|_| "malformed operator answer".to_owned())
    }

    async fn retry_all(
        &self,
        jobs: &[OutboxJob],
        error: &str,
        pass: &mut Pass,
    ) -> Result<(), StoreError> {
        for job in jobs {
            self.retry(job, error, pass).await?;
        }
        Ok(())
    }

    /// An attempt that did not deliver: another later, or, when it was
    /// the last one allowed, the delivery fails with the error.
    async fn retry(&self, job: &OutboxJob, error: &str, pass: &mut Pass) -> Result<(), StoreError> {
        let attempts = job.attempts.saturating_add(1);
        if self.retry.allows_another(attempts) {
            self.reschedule(job, error).await?;
            pass.retried += 1;
        } else {
            tracing::warn!(delivery = %job.delivery_id, attempts, %error, "delivery used up its attempts; failed");
            self.db
                .record_retries_exhausted(
                    job,
                    &exhausted_reason(Some(error)),
                    attempts,
                    self.clock.now(),
                )
                .await?;
            pass.failed += 1;
        }
        Ok(())
    }

    async fn reschedule(&self, job: &OutboxJob, error: &str) -> Result<(), StoreError> {
        let delay = time::Duration::try_from(self.retry.delay(job.attempts))
            .unwrap_or(time::Duration::minutes(5));
        self.db
            .reschedule_job(job, self.clock.now() + delay, error)
            .await
    }
}

/// What one job gets from an operator's answer.
#[derive(Debug)]
enum Answer<'a> {
    One(&'a DeliveryResult),
    Missing,
    Several,
}

struct Matched<'a> {
    /// One per job, in job order.
    answers: Vec<Answer<'a>>,
    /// Results naming a delivery that was not in the request.
    ignored: usize,
}

/// Matches results to the request's deliveries by delivery id, whatever
/// their order: an operator (or the path) cannot hand one delivery's
/// result to another.
fn match_results<'a>(ids: &[&str], results: &'a [DeliveryResult]) -> Matched<'a> {
    let mut by_id: HashMap<&str, Vec<&'a DeliveryResult>> =
        ids.iter().map(|id| (*id, Vec::new())).collect();
    let mut ignored = 0;
    for result in results {
        match by_id.get_mut(result.delivery_id()) {
            Some(found) => found.push(result),
            None => ignored += 1,
        }
    }
    let answers = ids
        .iter()
        .map(|id| match by_id.get(id).map(Vec::as_slice) {
            Some([one]) => Answer::One(one),
            Some([]) | None => Answer::Missing,
            Some(_) => Answer::Several,
        })
        .collect();
    Matched { answers, ignored }
}

/// Whether a rejection (its signature checked apart) is for this delivery
/// at this operator.
fn rejection_names(rejection: &Rejection, sealed: &SealedDelivery) -> bool {
    rejection.format == REJECTION_FORMAT
        && rejection.delivery_id == sealed.delivery_id
        && rejection.operator_id == sealed.operator_id
}

/// Whether a receipt (its signature checked apart) is for exactly what this
/// relay sealed and accepted: the delivery, recipient, sender, operator,
/// the digest of what the sender signed and the sender's message ids.
fn receipt_names(receipt: &Receipt, sealed: &SealedDelivery, job: &OutboxJob) -> bool {
    receipt.format == RECEIPT_FORMAT
        && receipt.delivery_id == sealed.delivery_id
        && receipt.recipient == sealed.recipient
        && receipt.sender_id == sealed.sender_id
        && receipt.operator_id == sealed.operator_id
        && receipt.delivery_digest == sealed.delivery_digest
        && receipt.message_ids == job.message_ids
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kuvert_domain::ids::{DeliveryId, OperatorId, TenantId};

    /// A change made to a receipt.
    type Change = fn(&mut Receipt);

    /// A receipt is recorded only when every field names what was sealed
    /// and accepted; a genuine signature over other values is not enough.
    #[test]
    fn a_receipt_must_name_what_was_sealed_and_accepted() {
        let job = job(10);
        let sealed = SealedDelivery {
            delivery_id: job.delivery_id.to_string(),
            recipient: "198001012387".to_owned(),
            sender_id: "162120009994".to_owned(),
            operator_id: "kuvert-brevlada".to_owned(),
            received_at: "2026-12-01T10:00:00.000000Z".to_owned(),
            relay_key_id: "ed25519:0000000000000000".to_owned(),
            delivery_digest: "ab".repeat(32),
            content_hash: "cd".repeat(32),
            encapsulated_key: String::new(),
            ciphertext: String::new(),
            seal_signature: String::new(),
        };
        let receipt = Receipt {
            format: RECEIPT_FORMAT.to_owned(),
            delivery_id: sealed.delivery_id.clone(),
            recipient: sealed.recipient.clone(),
            sender_id: sealed.sender_id.clone(),
            operator_id: sealed.operator_id.clone(),
            delivered_at: "2026-12-01T10:00:01.000000Z".to_owned(),
            delivery_digest: sealed.delivery_digest.clone(),
            message_ids: job.message_ids.clone(),
            key_id: String::new(),
            signature: String::new(),
        };
        assert!(receipt_names(&receipt, &sealed, &job));
        let changes: [(&str, Change); 7] = [
            ("format", |r| r.format = "kuvert-receipt-v1".to_owned()),
            ("delivery_id", |r| {
                r.delivery_id = DeliveryId::new().to_string()
            }),
            ("recipient", |r| r.recipient = "197505053178".to_owned()),
            ("sender_id", |r| r.sender_id = "162021004748".to_owned()),
            ("operator_id", |r| r.operator_id = "annan".to_owned()),
            ("delivery_digest", |r| r.delivery_digest = "00".repeat(32)),
            ("message_ids", |r| {
                r.message_ids = vec!["1".to_owned(), "2".to_owned()]
            }),
        ];
        for (field, change) in changes {
            let mut other = receipt.clone();
            change(&mut other);
            assert!(!receipt_names(&other, &sealed, &job), "{field}");
        }
    }

    fn rejected(delivery_id: &str) -> DeliveryResult {
        DeliveryResult::Rejected {
            rejection: Rejection {
                format: REJECTION_FORMAT.to_owned(),
                delivery_id: delivery_id.to_owned(),
                operator_id: "kuvert-brevlada".to_owned(),
                code: "bad_seal".to_owned(),
                message: String::new(),
                rejected_at: String::new(),
                key_id: String::new(),
                signature: String::new(),
            },
        }
    }

    fn answered_id(answer: &Answer<'_>) -> Option<String> {
        match answer {
            Answer::One(result) => Some(result.delivery_id().to_owned()),
            _ => None,
        }
    }

    /// Each job gets the result that names it, whatever the order; a
    /// result for another delivery is ignored; none or two is no answer.
    #[test]
    fn results_are_matched_to_jobs_by_delivery_id() {
        let ids = ["a", "b", "c", "d"];
        let results = [
            rejected("d"),
            rejected("x"),
            rejected("b"),
            rejected("a"),
            rejected("b"),
        ];
        let matched = match_results(&ids, &results);
        assert_eq!(matched.ignored, 1, "x was not in the request");
        assert_eq!(answered_id(&matched.answers[0]).as_deref(), Some("a"));
        assert!(matches!(matched.answers[1], Answer::Several), "b twice");
        assert!(matches!(matched.answers[2], Answer::Missing), "no c");
        assert_eq!(answered_id(&matched.answers[3]).as_deref(), Some("d"));
        let none = match_results(&ids, &[]);
        assert!(none.answers.iter().all(|a| matches!(a, Answer::Missing)));
    }

    /// A rejection counts only for the delivery and operator it names.
    #[test]
    fn a_rejection_must_name_the_delivery_and_the_operator() {
        let sealed = SealedDelivery {
            delivery_id: "a".to_owned(),
            recipient: String::new(),
            sender_id: String::new(),
            operator_id: "kuvert-brevlada".to_owned(),
            received_at: String::new(),
            relay_key_id: String::new(),
            delivery_digest: String::new(),
            content_hash: String::new(),
            encapsulated_key: String::new(),
            ciphertext: String::new(),
            seal_signature: String::new(),
        };
        let DeliveryResult::Rejected { rejection } = rejected("a") else {
            unreachable!()
        };
        assert!(rejection_names(&rejection, &sealed));
        let mut other = rejection.clone();
        other.delivery_id = "b".to_owned();
        assert!(!rejection_names(&other, &sealed));
        let mut other = rejection.clone();
        other.operator_id = "annan".to_owned();
        assert!(!rejection_names(&other, &sealed));
        let mut other = rejection;
        other.format = "kuvert-rejection-v0".to_owned();
        assert!(!rejection_names(&other, &sealed));
    }

    #[test]
    fn only_https_is_a_delivery_address_unless_plain_http_is_allowed() {
        let https = "https://brevlada.example/mailbox/v1/deliveries";
        let http = "http://127.0.0.1:8080/mailbox/v1/deliveries";
        assert!(check_delivery_url(https, false).is_ok());
        assert!(matches!(
            check_delivery_url(http, false),
            Err(TransportError::PlainHttp(_))
        ));
        assert!(check_delivery_url(http, true).is_ok());
        assert!(matches!(
            check_delivery_url("ftp://brevlada.example/", true),
            Err(TransportError::UnknownScheme(_))
        ));
        assert!(matches!(
            check_delivery_url("brevlada", true),
            Err(TransportError::NotAUrl(_))
        ));
    }

    fn job(bytes: usize) -> OutboxJob {
        OutboxJob {
            message_ids: vec!["1".to_owned()],
            delivery_id: DeliveryId::new(),
            tenant_id: TenantId::parse("demo").unwrap(),
            sender_id: "162120009994".to_owned(),
            recipient_id: "198001012387".to_owned(),
            operator_id: OperatorId::parse("kuvert-brevlada").unwrap(),
            sealed: vec![b'x'; bytes],
            attempts: 0,
            last_error: None,
            sender_key_revoked: false,
            suspect: false,
            solo_crashes: 0,
        }
    }

    /// A delivery gets exactly `max_attempts` attempts (at least one); the
    /// default's waits add up to the documented span.
    #[test]
    fn attempts_end_at_max_attempts_and_the_default_spans_about_an_hour() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.allows_another(0));
        assert!(policy.allows_another(2));
        assert!(!policy.allows_another(3), "three made: no fourth");
        assert!(!policy.allows_another(4), "crashes may count past it");
        let default = RetryPolicy::default();
        let once = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(once.allows_another(0), "0 is taken as 1");
        assert!(!once.allows_another(1));
        assert!(!default.quarantines(1), "one crash alone is not enough");
        assert!(default.quarantines(2));
        let strict = RetryPolicy {
            quarantine_after: 0,
            ..RetryPolicy::default()
        };
        assert!(strict.quarantines(1), "0 is taken as 1");
        assert!(!strict.quarantines(0));
        assert_eq!(default.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(default.nominal_span(), DEFAULT_RETRY_SPAN);
        assert_eq!(policy.nominal_span(), Duration::from_secs(1 + 2));
        assert_eq!(
            exhausted_reason(Some("operator answered HTTP 503")),
            "retries_exhausted: operator answered HTTP 503"
        );
    }

    #[test]
    fn requests_to_an_operator_stay_under_the_byte_limit_and_keep_every_job_once() {
        let jobs: Vec<OutboxJob> = [40, 30, 30, 10, 100, 5, 5].map(job).into();
        let ids: Vec<_> = jobs.iter().map(|j| j.delivery_id).collect();
        let requests = split_by_size(jobs, 70);
        let sizes: Vec<Vec<usize>> = requests
            .iter()
            .map(|r| r.iter().map(|j| j.sealed.len()).collect())
            .collect();
        // A delivery larger than the limit goes alone; order is kept.
        assert_eq!(
            sizes,
            vec![vec![40, 30], vec![30, 10], vec![100], vec![5, 5]]
        );
        let after: Vec<_> = requests.iter().flatten().map(|j| j.delivery_id).collect();
        assert_eq!(after, ids);
        assert!(split_by_size(Vec::new(), 70).is_empty());
    }
}
