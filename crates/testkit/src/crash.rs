//! The crash harness: "nothing accepted is lost, nothing is delivered twice",
//! tried with `kill -9`.
//!
//! It runs the real command line as two child processes on one data folder,
//! the relay (`serve --roles core`) and the mailbox (`serve --roles mailbox`),
//! sends N signed messages from a careful client (its own idempotency key per
//! message; on a timeout, a broken connection or a 5xx it sends the same
//! request again until it gets an answer), and meanwhile SIGKILLs one of the
//! two processes K times at seeded random moments, restarting it each time.
//! At the end, with nothing in flight, it checks every accepted message:
//! delivered exactly once (the mailbox's own rows, and the recipient API),
//! with the receipt the sender sees equal to the mailbox's first one, nothing
//! left in a non-final state, and both audit chains verifying.
//!
//! Used by the CI test (small N and K) and by `kuvert-crashtest` (long runs).

use anyhow::{Context as _, bail, ensure};
use kuvert::demo::DemoSender;
use kuvert_domain::identity::RecipientId;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// Which process the harness kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Victims {
    Relay,
    Mailbox,
    /// One, then the other (which comes first is seeded).
    Both,
}

impl std::str::FromStr for Victims {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "relay" => Ok(Self::Relay),
            "mailbox" => Ok(Self::Mailbox),
            "both" => Ok(Self::Both),
            other => bail!("victims is relay, mailbox or both, not {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CrashPlan {
    /// The executable whose `node …` arguments run the `kuvert` command line.
    pub exe: PathBuf,
    pub messages: usize,
    pub kills: usize,
    pub seed: u64,
    pub victims: Victims,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// Registered recipients the messages are spread over.
    pub recipients: usize,
    /// Time between kills, drawn uniformly from this range.
    pub kill_every: (Duration, Duration),
    /// At the end, how long delivery may make no progress at all before the
    /// messages still open count as stuck (a big run may take minutes to
    /// drain; it must not stall).
    pub settle_timeout: Duration,
    /// Keep the data folder here (default: a temporary one, removed after).
    pub data_dir: Option<PathBuf>,
}

impl CrashPlan {
    pub fn new(exe: PathBuf, messages: usize, kills: usize, seed: u64) -> Self {
        Self {
            exe,
            messages,
            kills,
            seed,
            victims: Victims::Both,
            concurrency: 16,
            recipients: 10,
            kill_every: (Duration::from_millis(300), Duration::from_millis(1500)),
            settle_timeout: Duration::from_secs(60),
            data_dir: None,
        }
    }
}

/// What a run found. Every list must be empty for a clean run.
#[derive(Debug, Default, Serialize)]
pub struct CrashReport {
    pub seed: u64,
    pub messages: usize,
    pub kills_relay: usize,
    pub kills_mailbox: usize,
    /// Messages the client saw accepted (202, or 200 replaying an earlier 202).
    pub accepted: usize,
    /// Repeated requests the client needed (timeouts, broken connections, 5xx).
    pub client_retries: usize,
    /// Answers that repeated an earlier acceptance (`replayed: true`).
    pub replayed_answers: usize,
    pub delivered: usize,
    /// Accepted, but no message in the mailbox.
    pub lost: Vec<String>,
    /// More than one mailbox message for one delivery.
    pub duplicated: Vec<String>,
    /// Not in a final state when the run ended.
    pub stuck: Vec<String>,
    /// In the mailbox, but never reported accepted to the client.
    pub unexpected_in_mailbox: Vec<String>,
    /// The sender's receipt time differs from the mailbox's first receipt.
    pub receipt_mismatch: Vec<String>,
    /// Recipients whose inbox (through the recipient API) holds a different
    /// number of messages than were accepted for them, or a subject twice.
    pub inbox_mismatch: Vec<String>,
    /// The client gave up on these (no answer within its deadline).
    pub gave_up: Vec<String>,
    pub audit_verified: bool,
    pub audit_output: String,
    pub seconds_sending: f64,
    pub seconds_total: f64,
}

impl CrashReport {
    pub fn is_clean(&self) -> bool {
        self.accepted == self.messages
            && self.delivered == self.accepted
            && self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.stuck.is_empty()
            && self.unexpected_in_mailbox.is_empty()
            && self.receipt_mismatch.is_empty()
            && self.inbox_mismatch.is_empty()
            && self.gave_up.is_empty()
            && self.audit_verified
    }

    /// The report as JSON with each list cut to its first ten entries and
    /// its full length beside it (a failed long run lists thousands).
    pub fn summary_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            let lists: Vec<String> = map
                .iter()
                .filter(|(_, v)| v.is_array())
                .map(|(k, _)| k.clone())
                .collect();
            for key in lists {
                if let Some(Value::Array(items)) = map.get_mut(&key) {
                    let count = items.len();
                    items.truncate(10);
                    map.insert(format!("{key}_count"), Value::from(count));
                }
            }
        }
        value
    }

    /// One line per figure, for people.
    pub fn table(&self) -> String {
        let rows: [(&str, String); 16] = [
            ("seed", self.seed.to_string()),
            ("messages sent", self.messages.to_string()),
            (
                "kills (relay / mailbox)",
                format!("{} / {}", self.kills_relay, self.kills_mailbox),
            ),
            ("accepted", self.accepted.to_string()),
            ("client retries", self.client_retries.to_string()),
            ("replayed answers", self.replayed_answers.to_string()),
            ("delivered", self.delivered.to_string()),
            ("lost", self.lost.len().to_string()),
            ("delivered twice", self.duplicated.len().to_string()),
            ("stuck", self.stuck.len().to_string()),
            (
                "in mailbox, never accepted",
                self.unexpected_in_mailbox.len().to_string(),
            ),
            ("receipt mismatch", self.receipt_mismatch.len().to_string()),
            ("inbox mismatch", self.inbox_mismatch.len().to_string()),
            ("client gave up", self.gave_up.len().to_string()),
            ("audit chains verify", self.audit_verified.to_string()),
            (
                "seconds (sending / total)",
                format!("{:.1} / {:.1}", self.seconds_sending, self.seconds_total),
            ),
        ];
        rows.iter().map(|(k, v)| format!("{k:<28} {v}\n")).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Relay,
    Mailbox,
}

/// One `kuvert serve` child process, restartable on the same port.
struct Node {
    exe: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    url: String,
    child: Option<Child>,
}

impl Node {
    async fn start(&mut self) -> anyhow::Result<()> {
        self.child = Some(spawn_node(&self.exe, &self.args, &self.log)?);
        self.wait_healthy().await
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().context("not started")?;
        wait_healthy(&self.url, child, Duration::from_secs(60), &self.log).await
    }

    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?; // SIGKILL
            child.wait().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait: the graceful stop (last audit checkpoint).
    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(30)).await?;
        }
        Ok(())
    }
}

/// Polls `url`/health until it answers 200; fails if `child` exits first
/// (pointing at its `log`) or `timeout` passes.
pub async fn wait_healthy(
    url: &str,
    child: &mut Child,
    timeout: Duration,
    log: &Path,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("exited at start ({status}); see {}", log.display());
        }
        let health = http
            .get(format!("{url}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{url} not healthy in {} s",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts `exe node <args>` (this harness's own executable as the `kuvert`
/// command line), its output appended to `log`.
pub fn spawn_node<S: AsRef<std::ffi::OsStr>>(
    exe: &Path,
    args: &[S],
    log: &Path,
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    Command::new(exe)
        .arg("node")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))
}

/// Lifts every quota of `tenant` with `kuvert tenant quota --unlimited` on
/// `data` (beside a running node): the harnesses send and look up far more
/// than the installation's defaults let one tenant (decision 0015).
pub async fn unthrottle(exe: &Path, data: &Path, tenant: &str) -> anyhow::Result<()> {
    let log = data.join("quota.log");
    let args: [&std::ffi::OsStr; 6] = [
        "tenant".as_ref(),
        "quota".as_ref(),
        tenant.as_ref(),
        "--unlimited".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ];
    let status = spawn_node(exe, &args, &log)?.wait().await?;
    ensure!(
        status.success(),
        "kuvert tenant quota {tenant} --unlimited failed: see {}",
        log.display()
    );
    Ok(())
}

/// SIGTERM and wait (a graceful stop); SIGKILL once `grace` has passed.
pub async fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            status?;
        }
        Err(_) => {
            child.start_kill()?;
            child.wait().await?;
        }
    }
    Ok(())
}

/// A port free on loopback now (the OS picks it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The messages the client has sent and what it learned.
#[derive(Default)]
struct Ledger {
    /// message index → delivery id, for every accepted message.
    accepted: BTreeMap<usize, String>,
    gave_up: Vec<String>,
}

pub async fn run(plan: &CrashPlan) -> anyhow::Result<CrashReport> {
    let started = Instant::now();
    let temp;
    let data: PathBuf = match &plan.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let data_arg = data.to_string_lossy().into_owned();
    let relay_port = free_port()?;
    let mailbox_port = free_port()?;
    let mailbox_url = format!("http://127.0.0.1:{mailbox_port}");
    let relay_url = format!("http://127.0.0.1:{relay_port}");
    let mut relay = Node {
        exe: plan.exe.clone(),
        args: vec![
            "serve".into(),
            "--data".into(),
            data_arg.clone(),
            "--listen".into(),
            format!("127.0.0.1:{relay_port}"),
            "--roles".into(),
            "core".into(),
            "--demo".into(),
            "--mailbox-url".into(),
            mailbox_url.clone(),
            "--retry-base-ms".into(),
            "50".into(),
            "--retry-max-ms".into(),
            "1000".into(),
            "--retry-max-attempts".into(),
            "10000".into(),
            "--audit-checkpoint-seconds".into(),
            "1".into(),
        ],
        log: data.join("relay.log"),
        url: relay_url.clone(),
        child: None,
    };
    let mut mailbox = Node {
        exe: plan.exe.clone(),
        args: vec![
            "serve".into(),
            "--data".into(),
            data_arg.clone(),
            "--listen".into(),
            format!("127.0.0.1:{mailbox_port}"),
            "--roles".into(),
            "mailbox".into(),
            "--register-url".into(),
            relay_url.clone(),
            // The register is reached over plain HTTP on loopback here.
            "--allow-plain-http".into(),
            "--audit-checkpoint-seconds".into(),
            "1".into(),
        ],
        log: data.join("mailbox.log"),
        url: mailbox_url.clone(),
        child: None,
    };
    // The relay first: it creates the keys both processes share.
    relay.start().await?;
    mailbox.start().await?;
    unthrottle(&plan.exe, &data, "demokommun").await?;

    let demo = kuvert::demo::load(&data)?;
    let keys = kuvert::keys::Keys::load_existing(&data)?;
    let tokens = kuvert_web::auth::RecipientTokens::new(keys.recipient_token);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let recipients = register_recipients(&http, &relay_url, &tokens, plan.recipients).await?;

    let mut report = CrashReport {
        seed: plan.seed,
        messages: plan.messages,
        ..CrashReport::default()
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let retries = Arc::new(AtomicUsize::new(0));
    let replayed = Arc::new(AtomicUsize::new(0));
    let sending_done = Arc::new(tokio::sync::Notify::new());

    // The client: `concurrency` workers over a shared counter of messages.
    let tenant = demo
        .tenants
        .iter()
        .find(|t| t.tenant == "demokommun")
        .context("demo tenant")?
        .clone();
    let sender = tenant.senders.first().context("demo sender")?.clone();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..plan.concurrency.max(1) {
        let client = CarefulClient {
            http: http.clone(),
            url: relay_url.clone(),
            token: tenant.token.clone(),
            sender: sender.clone(),
            seed: plan.seed,
            retries: retries.clone(),
            replayed: replayed.clone(),
        };
        let next = next.clone();
        let ledger = ledger.clone();
        let recipients = recipients.clone();
        let total = plan.messages;
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let recipient = &recipients[i % recipients.len()];
                match client.send(i, recipient.as_str()).await {
                    Ok(id) => {
                        ledger.lock().await.accepted.insert(i, id);
                    }
                    Err(e) => ledger.lock().await.gave_up.push(format!("#{i}: {e:#}")),
                }
            }
        }));
    }
    let sending = {
        let done = sending_done.clone();
        tokio::spawn(async move {
            for c in clients {
                let _ = c.await;
            }
            done.notify_one();
        })
    };

    // The killer: K kills at seeded moments, even after sending has ended
    // (then it hits delivery and restart alone).
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let first_victim = usize::from(rng.gen_bool(0.5));
    for kill in 0..plan.kills {
        let (lo, hi) = plan.kill_every;
        let wait = rng.gen_range(lo..=hi);
        tokio::time::sleep(wait).await;
        let role = match plan.victims {
            Victims::Relay => Role::Relay,
            Victims::Mailbox => Role::Mailbox,
            // Alternate, from a seeded start, so that even a short run
            // kills each process.
            Victims::Both => {
                if (kill + first_victim) % 2 == 0 {
                    Role::Relay
                } else {
                    Role::Mailbox
                }
            }
        };
        let node = match role {
            Role::Relay => {
                report.kills_relay += 1;
                &mut relay
            }
            Role::Mailbox => {
                report.kills_mailbox += 1;
                &mut mailbox
            }
        };
        node.kill().await?;
        // Down for a moment: requests in that window meet a closed port.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=200))).await;
        node.start().await?;
    }
    sending.await?;
    report.seconds_sending = started.elapsed().as_secs_f64();
    report.client_retries = retries.load(Ordering::SeqCst);
    report.replayed_answers = replayed.load(Ordering::SeqCst);

    let ledger = std::mem::take(&mut *ledger.lock().await);
    report.accepted = ledger.accepted.len();
    report.gave_up = ledger.gave_up;

    // Settle: every accepted delivery reaches a final state.
    let statuses = settle(
        &http,
        &relay_url,
        &tenant.token,
        &ledger.accepted,
        plan.settle_timeout,
    )
    .await?;
    for (i, id) in &ledger.accepted {
        match statuses.get(id) {
            Some(view) if view["status"] == "delivered" => report.delivered += 1,
            Some(view) if view["status"] == "accepted" => report.stuck.push(format!("#{i} {id}")),
            Some(view) => report
                .stuck
                .push(format!("#{i} {id}: final but {}", view["status"])),
            None => report.stuck.push(format!("#{i} {id}: no status")),
        }
    }

    check_mailbox_store(&data, &ledger.accepted, &statuses, &mut report).await?;
    check_inboxes(
        &http,
        &mailbox_url,
        &tokens,
        &recipients,
        &ledger.accepted,
        &mut report,
    )
    .await?;

    // The published keys document: `audit verify` takes the audit key from
    // it, never from the data folder's private key.
    let keys_file = data.join("published-keys.json");
    let keys_document = http
        .get(format!("{relay_url}/register/v1/keys"))
        .send()
        .await?
        .bytes()
        .await?;
    std::fs::write(&keys_file, &keys_document)?;
    relay.stop().await?;
    mailbox.stop().await?;
    let audit = Command::new(&plan.exe)
        .args(["node", "audit", "verify", "--data", &data_arg, "--keys"])
        .arg(&keys_file)
        .output()
        .await?;
    report.audit_verified = audit.status.success();
    report.audit_output = format!(
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    )
    .trim()
    .to_owned();
    report.seconds_total = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Registers `count` recipients (born 1970…) with the built-in mailbox
/// through the register API, as each would do for themselves.
async fn register_recipients(
    http: &reqwest::Client,
    relay_url: &str,
    tokens: &kuvert_web::auth::RecipientTokens,
    count: usize,
) -> anyhow::Result<Vec<RecipientId>> {
    let today = time::OffsetDateTime::now_utc().date();
    let mut recipients = Vec::new();
    for n in 0..count.max(1) {
        let serial = u16::try_from(100 + n).context("too many recipients")?;
        let number = kuvert::demo::person_number("19700101", serial);
        let id = RecipientId::parse(&number, today)
            .with_context(|| format!("generated identity number {number}"))?;
        register_with_built_in_mailbox(http, relay_url, tokens, &id).await?;
        recipients.push(id);
    }
    Ok(recipients)
}

/// Registers a recipient with the built-in mailbox through the register
/// API, as the recipient would (a token minted with the installation's key).
pub async fn register_with_built_in_mailbox(
    http: &reqwest::Client,
    register_url: &str,
    tokens: &kuvert_web::auth::RecipientTokens,
    id: &RecipientId,
) -> anyhow::Result<()> {
    let token = crate::mint_registration_token(tokens, id)?;
    let response = http
        .put(format!("{register_url}/register/v1/me"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "operator_id": kuvert::app::BUILT_IN_OPERATOR }))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "registering {}: HTTP {}",
        id.masked(),
        response.status()
    );
    Ok(())
}

/// A sender that never gives up on an unanswered request: the same signed
/// delivery and the same idempotency key again, until kuvert answers.
struct CarefulClient {
    http: reqwest::Client,
    url: String,
    token: String,
    sender: DemoSender,
    seed: u64,
    retries: Arc<AtomicUsize>,
    replayed: Arc<AtomicUsize>,
}

impl CarefulClient {
    async fn send(&self, i: usize, recipient: &str) -> anyhow::Result<String> {
        let key = format!("crash-{}-{i}", self.seed);
        let delivery = kuvert::client::simple_delivery(
            &self.sender.id,
            &self.sender.name,
            recipient,
            Some(key.clone()),
            &subject(self.seed, i),
            "Ett meddelande som ska fram exakt en gång.",
            false,
            Vec::new(),
        );
        let signed = kuvert::client::sign(delivery, &self.sender.key()?);
        let body = serde_json::to_vec(&signed)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut pause = Duration::from_millis(20);
        loop {
            let answer = self
                .http
                .post(format!("{}/v1/deliveries", self.url))
                .bearer_auth(&self.token)
                .header("idempotency-key", &key)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status();
                    let value: Value = response.json().await.unwrap_or(Value::Null);
                    ensure!(
                        status.as_u16() == 202 || status.as_u16() == 200,
                        "refused: HTTP {status} {value}"
                    );
                    if value["replayed"] == true {
                        self.replayed.fetch_add(1, Ordering::SeqCst);
                    }
                    // A replay answers with the delivery's status now, which
                    // may already be `delivered`.
                    let replay_of_delivered =
                        value["replayed"] == true && value["status"] == "delivered";
                    ensure!(
                        value["status"] == "accepted" || replay_of_delivered,
                        "not accepted: {value}"
                    );
                    return value["delivery_id"]
                        .as_str()
                        .map(str::to_owned)
                        .context("no delivery_id in the answer");
                }
                Err(_) => {} // timeout, refused or broken connection: ask again
            }
            self.retries.fetch_add(1, Ordering::SeqCst);
            ensure!(Instant::now() < deadline, "no answer in 120 s");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

fn subject(seed: u64, i: usize) -> String {
    format!("Krocktest {seed} nr {i}")
}

/// Polls the sender API until every accepted delivery is final (or nothing
/// has moved for `timeout`) and returns the last view of each.
async fn settle(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    accepted: &BTreeMap<usize, String>,
    timeout: Duration,
) -> anyhow::Result<HashMap<String, Value>> {
    let mut deadline = Instant::now() + timeout;
    let mut views: HashMap<String, Value> = HashMap::new();
    let mut open: Vec<String> = accepted.values().cloned().collect();
    while !open.is_empty() {
        let mut still_open = Vec::new();
        for chunk in open.chunks(32) {
            let mut lookups = tokio::task::JoinSet::new();
            for id in chunk {
                let (http, url, token, id) =
                    (http.clone(), url.to_owned(), token.to_owned(), id.clone());
                lookups.spawn(async move {
                    let view = http
                        .get(format!("{url}/v1/deliveries/{id}"))
                        .bearer_auth(token)
                        .send()
                        .await
                        .ok()?
                        .json::<Value>()
                        .await
                        .ok()?;
                    Some((id, view))
                });
            }
            while let Some(done) = lookups.join_next().await {
                if let Ok(Some((id, view))) = done {
                    if view["status"] == "accepted" {
                        still_open.push(id.clone());
                    }
                    views.insert(id, view);
                }
            }
        }
        // A lookup that failed outright counts as still open.
        for id in &open {
            if !views.contains_key(id) && !still_open.contains(id) {
                still_open.push(id.clone());
            }
        }
        if still_open.len() < open.len() {
            deadline = Instant::now() + timeout; // progress: keep waiting
        }
        open = still_open;
        if open.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(views)
}

/// Reads the mailbox's own database (read-only): one message per accepted
/// delivery, nothing it was never given, and the receipt time the sender
/// was shown equal to the one the mailbox recorded first.
async fn check_mailbox_store(
    data: &Path,
    accepted: &BTreeMap<usize, String>,
    statuses: &HashMap<String, Value>,
    report: &mut CrashReport,
) -> anyhow::Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("mailbox.db"))
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let mut messages: HashMap<String, i64> = HashMap::new();
    for row in
        sqlx::query("SELECT delivery_id, COUNT(*) FROM mailbox_messages GROUP BY delivery_id")
            .fetch_all(&pool)
            .await?
    {
        messages.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let mut delivered_at: HashMap<String, String> = HashMap::new();
    for row in sqlx::query("SELECT delivery_id, delivered_at FROM mailbox_deliveries")
        .fetch_all(&pool)
        .await?
    {
        delivered_at.insert(row.try_get(0)?, row.try_get(1)?);
    }
    pool.close().await;

    let accepted_ids: std::collections::HashSet<&String> = accepted.values().collect();
    for (i, id) in accepted {
        match messages.get(id) {
            None => report.lost.push(format!("#{i} {id}")),
            Some(1) => {}
            Some(n) => report.duplicated.push(format!("#{i} {id}: {n} messages")),
        }
        let seen = statuses
            .get(id)
            .and_then(|v| v["delivered_at"].as_str())
            .map(str::to_owned);
        if let (Some(seen), Some(first)) = (seen, delivered_at.get(id))
            && &seen != first
        {
            report.receipt_mismatch.push(format!(
                "#{i} {id}: sender saw {seen}, mailbox holds {first}"
            ));
        }
    }
    for id in messages.keys() {
        if !accepted_ids.contains(id) {
            report.unexpected_in_mailbox.push(id.clone());
        }
    }
    Ok(())
}

/// Each recipient's inbox through the recipient API: exactly the messages
/// accepted for them, each subject once.
async fn check_inboxes(
    http: &reqwest::Client,
    mailbox_url: &str,
    tokens: &kuvert_web::auth::RecipientTokens,
    recipients: &[RecipientId],
    accepted: &BTreeMap<usize, String>,
    report: &mut CrashReport,
) -> anyhow::Result<()> {
    let mut expected: Vec<usize> = vec![0; recipients.len()];
    for i in accepted.keys() {
        expected[i % recipients.len()] += 1;
    }
    for (r, recipient) in recipients.iter().enumerate() {
        let token = crate::mint_mail_token(tokens, recipient)?;
        let mut subjects: HashMap<String, usize> = HashMap::new();
        let mut page = 1;
        loop {
            let value: Value = http
                .get(format!(
                    "{mailbox_url}/mailbox/v1/messages?page={page}&page_size=100"
                ))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let list = value["messages"].as_array().context("messages")?;
            for m in list {
                let subject = m["subject"].as_str().unwrap_or_default().to_owned();
                *subjects.entry(subject).or_default() += 1;
            }
            if list.len() < 100 {
                break;
            }
            page += 1;
        }
        let total: usize = subjects.values().sum();
        let twice = subjects.values().filter(|n| **n > 1).count();
        if total != expected[r] || twice > 0 {
            report.inbox_mismatch.push(format!(
                "{}: {total} messages for {} accepted, {twice} subjects twice",
                recipient.masked(),
                expected[r]
            ));
        }
    }
    Ok(())
}

/// A seed from the clock, for runs that were not given one.
pub fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(0)
}
