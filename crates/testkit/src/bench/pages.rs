//! (5) The web pages (issue 18): what a page costs beside the machine's own
//! limit for the same work, in the same run. One function per row, so the
//! inbox and message page rows (beside the API reads they wrap) join as
//! siblings of [`login_run`].
//!
//! **Login per second**: the whole authorization code flow through the
//! development provider, as a browser does it, each login with a fresh
//! cookie jar: `GET /login` (303, a pending login stored) → `GET
//! /dev-idp/authorize` (the page of test people) → `POST /dev-idp/authorize`
//! (303 with a code) → `GET /login/callback` (the code redeemed at the
//! provider's token endpoint over loopback, the ID token checked, the
//! pending login taken, a session stored, an audit entry written; 303).
//! [`LOGIN_CLIENTS`] browsers at once.
//!
//! Its machine limit is the work no login can skip, timed in-process:
//! - `crypto`: the ID token signed once (the provider) and verified once
//!   (kuvert), Ed25519 over a token-sized input (700 bytes);
//! - `writes`: the three durable commits of a login, on kuvert's own schema
//!   and pragmas (WAL, `synchronous=FULL`), one after the other: the
//!   pending login stored, taken (deleted), the session stored.
//!
//! The audit entry of a login is left out of the limit (it may share the
//! session's commit). Then:
//!
//!     all_cores = cores / crypto
//!     writer    = 1 / writes            (one SQLite writer)
//!     limit     = min(all_cores, writer)

use super::report::{Row, median};
use super::server::{DataDir, Server};
use kuvert_crypto::signing::SigningKey;
use kuvert_store::Schema;
use serde::Serialize;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// Browsers logging in at once.
pub const LOGIN_CLIENTS: usize = 8;

#[derive(Debug, Clone)]
pub struct PagesPlan {
    /// Logins per run.
    pub logins: usize,
    pub runs: usize,
    /// Iterations of each part of the limit.
    pub limit_iterations: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginLimit {
    pub cores: usize,
    pub sign_us: f64,
    pub verify_us: f64,
    /// The three commits of a login, one after the other.
    pub writes_us: f64,
    pub all_cores_per_s: f64,
    pub writer_per_s: f64,
    pub limit_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginRun {
    pub logins: usize,
    pub clients: usize,
    pub seconds: f64,
    pub per_s: f64,
    /// One whole login (four requests), as a browser waits for it.
    pub latency: super::reading::Latency,
    pub server_cpu_us_per_login: f64,
    pub limit: LoginLimit,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PagesResult {
    pub login: Vec<LoginRun>,
}

/// Every row of the pages group, each run on a server of its own.
pub async fn run(plan: &PagesPlan, keep: Option<&Path>) -> anyhow::Result<PagesResult> {
    let mut result = PagesResult::default();
    for r in 0..plan.runs.max(1) {
        let done = login_run(plan, keep).await?;
        eprintln!(
            "  run {}: {:.0} logins/s (limit {:.0}/s), p50 {:.1} ms, p99 {:.1} ms, server CPU {:.0} µs/login",
            r + 1,
            done.per_s,
            done.limit.limit_per_s,
            done.latency.p50_ms,
            done.latency.p99_ms,
            done.server_cpu_us_per_login
        );
        result.login.push(done);
    }
    Ok(result)
}

/// One run of the login row: the limit, then the logins, on a fresh
/// `kuvert serve --demo`.
pub async fn login_run(plan: &PagesPlan, keep: Option<&Path>) -> anyhow::Result<LoginRun> {
    let dir = DataDir::new(keep, "pages-login")?;
    let limit = login_limit(plan.limit_iterations.max(1), &dir.path).await?;
    let server = Server::start(&dir.path).await?;
    // Warm up: discovery of the development provider happens at the first
    // login, not in the timed part.
    anyhow::ensure!(login_once(&server.url).await?, "the warm-up login failed");
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..LOGIN_CLIENTS {
        let (url, next, total) = (server.url.clone(), next.clone(), plan.logins);
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let one = Instant::now();
                anyhow::ensure!(login_once(&url).await?, "a login did not end in a session");
                times.push(one.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    let logins = times.len();
    server.stop().await?;
    Ok(LoginRun {
        logins,
        clients: LOGIN_CLIENTS,
        seconds,
        per_s: logins as f64 / seconds,
        latency: super::reading::latency(times),
        server_cpu_us_per_login: cpu * 1e6 / logins.max(1) as f64,
        limit,
    })
}

/// One login as a browser does it, with a fresh cookie jar; true when it
/// ended in a session (the callback's 303 to the start page).
async fn login_once(url: &str) -> anyhow::Result<bool> {
    let browser = kuvert_testkit::oidc::Browser::new(url);
    let done = browser.login_dev_idp(0).await;
    Ok(done.status == reqwest::StatusCode::SEE_OTHER && done.location.as_deref() == Some("/"))
}

/// The work no login can skip, timed in-process (see the module text).
pub async fn login_limit(iterations: usize, scratch: &Path) -> anyhow::Result<LoginLimit> {
    let key = SigningKey::generate();
    let public = key.public_key();
    let token = vec![b'x'; 700];
    let started = Instant::now();
    let mut signature = key.sign(b"id-token", &token);
    for _ in 1..iterations {
        signature = black_box(key.sign(b"id-token", black_box(&token)));
    }
    let sign_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(public.verify(b"id-token", black_box(&token), &signature))?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    let writes_us = login_writes(scratch, iterations.min(2000)).await?;
    let cores = super::proc::cores();
    let all_cores_per_s = cores as f64 * 1e6 / (sign_us + verify_us);
    let writer_per_s = 1e6 / writes_us;
    Ok(LoginLimit {
        cores,
        sign_us,
        verify_us,
        writes_us,
        all_cores_per_s,
        writer_per_s,
        limit_per_s: all_cores_per_s.min(writer_per_s),
    })
}

/// The three commits of a login, each its own transaction as a login's
/// requests are: microseconds per login.
async fn login_writes(scratch: &Path, logins: usize) -> anyhow::Result<f64> {
    let path = scratch.join("limit-login.db");
    let pool = super::limit::writer(&path, Schema::Core).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let text = "x".repeat(43);
    let started = Instant::now();
    for i in 0..logins {
        let pending = kuvert_crypto::digest::sha256(format!("pending {i}").as_bytes());
        let session = kuvert_crypto::digest::sha256(format!("session {i}").as_bytes());
        sqlx::query(
            "INSERT INTO pending_logins (id_hash, state, nonce, pkce_verifier, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&pending[..])
        .bind(&text)
        .bind(&text)
        .bind(&text)
        .bind(now)
        .execute(&pool)
        .await?;
        sqlx::query("DELETE FROM pending_logins WHERE id_hash = ?")
            .bind(&pending[..])
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, recipient, given_name, family_name, loa, \
             csrf_token, created_at, last_seen_at) VALUES (?, '198001012387', 'Anna', \
             'Andersson', 'loa3', ?, ?, ?)",
        )
        .bind(&session[..])
        .bind(&text)
        .bind(now)
        .bind(now)
        .execute(&pool)
        .await?;
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / logins.max(1) as f64;
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(scratch.join(format!("limit-login.db{suffix}")));
    }
    Ok(us)
}

/// The rows of the pages group: one function per figure.
pub fn rows(result: &PagesResult, rows: &mut Vec<Row>) {
    login_rows(&result.login, rows);
}

fn login_rows(runs: &[LoginRun], rows: &mut Vec<Row>) {
    if runs.is_empty() {
        return;
    }
    let med = |f: fn(&LoginRun) -> f64| median(runs.iter().map(f).collect());
    rows.push(
        Row::new(
            format!(
                "pages: login (code flow, dev IdP), logins/s ({} browsers)",
                runs[0].clients
            ),
            med(|r| r.per_s),
            "logins/s",
        )
        .machine(
            med(|r| r.limit.limit_per_s),
            med(|r| r.per_s / r.limit.limit_per_s),
        ),
    );
    rows.push(Row::new(
        "pages: one login (4 requests) p50",
        med(|r| r.latency.p50_ms),
        "ms",
    ));
    rows.push(Row::new(
        "pages: one login (4 requests) p99",
        med(|r| r.latency.p99_ms),
        "ms",
    ));
    rows.push(Row::new(
        "pages: server CPU per login",
        med(|r| r.server_cpu_us_per_login),
        "µs",
    ));
}
