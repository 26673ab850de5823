//! (5) The web pages (issue 18): what a page costs beside the machine's own
//! limit for the same work ([`login_run`]), or beside the API read it wraps
//! ([`mail_run`]), in the same run. One function per row.
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
//!
//! **Inbox and message pages** ([`mail_run`]): one person (the dev IdP's
//! Anna, so she can log in) with [`MAIL_MESSAGES`] messages loaded as the
//! reading figures load theirs ([`super::reading::load_messages`]: encrypted
//! rows straight into `mailbox.db`), one in [`UNREAD_ONE_IN`] unread and
//! from the three demo senders, so the inbox's unread-first order and its
//! sender list do real work. Logged in once through the dev IdP, then each
//! page is timed beside the API read it wraps, one after the other in the
//! same run, the order swapped every sample so a drift in load hits both:
//! - `GET /inbox` (first page, 25 rows) vs `GET /mailbox/v1/messages?page_size=25`;
//! - `GET /inbox?cursor=…` ("next" followed [`DEEP_NEXTS`] times) vs `page=N`;
//! - `GET /messages/{id}` vs `GET /mailbox/v1/messages/{id}`, on messages
//!   already read (opening marks read; a read one is the same work for both).
//!
//! One client, one request at a time; each timed until the whole body is
//! in. The target: a page costs at most [`PAGE_TARGET`]× its API read.

use super::e2e::recipient_tokens;
use super::reading::{Recipients, Spread, load_messages};
use super::report::{Row, median};
use super::server::{DataDir, Server};
use anyhow::{Context as _, ensure};
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::identity::RecipientId;
use kuvert_store::Schema;
use serde::Serialize;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Browsers logging in at once.
pub const LOGIN_CLIENTS: usize = 8;

#[derive(Debug, Clone)]
pub struct PagesPlan {
    /// Logins per run.
    pub logins: usize,
    pub runs: usize,
    /// Iterations of each part of the limit.
    pub limit_iterations: usize,
    /// Timed requests of each page and of each API read, per run.
    pub samples: usize,
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
    pub mail: Vec<MailRun>,
}

/// Messages in the mailbox the inbox and message rows read.
pub const MAIL_MESSAGES: usize = 10_000;
/// One message in this many is unread.
pub const UNREAD_ONE_IN: usize = 5;
/// "Next page" followed this many times for the deep inbox page.
pub const DEEP_NEXTS: usize = 4;
/// Rows on an inbox page ([`kuvert_web::pages::inbox::INBOX_PAGE_SIZE`]);
/// the API is asked for as many.
const PAGE_ROWS: i64 = 25;
/// A page costs at most this many times the API read it wraps.
pub const PAGE_TARGET: f64 = 1.5;

/// One page and the API read it wraps, timed in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct PageVsApi {
    pub page: super::reading::Latency,
    pub api: super::reading::Latency,
    /// page ÷ API at p50.
    pub ratio_p50: f64,
    /// page ÷ API at p99.
    pub ratio_p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailRun {
    pub messages: usize,
    pub unread: usize,
    pub load_s: f64,
    pub inbox_first: PageVsApi,
    /// The page "next" leads to after [`DEEP_NEXTS`] times (1-based).
    pub deep_page: usize,
    pub inbox_deep: PageVsApi,
    pub message: PageVsApi,
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
    for r in 0..plan.runs.max(1) {
        let done = mail_run(plan, keep).await?;
        for (name, pair) in [
            ("inbox", &done.inbox_first),
            ("inbox deep", &done.inbox_deep),
            ("message", &done.message),
        ] {
            eprintln!(
                "  run {}: {name}: page p50 {:.2} / p99 {:.2} ms, API p50 {:.2} / p99 {:.2} ms, page/API {:.2}× / {:.2}×",
                r + 1,
                pair.page.p50_ms,
                pair.page.p99_ms,
                pair.api.p50_ms,
                pair.api.p99_ms,
                pair.ratio_p50,
                pair.ratio_p99
            );
        }
        result.mail.push(done);
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

/// One run of the inbox and message rows (see the module text), on a fresh
/// `kuvert serve --demo` whose mailbox was loaded while it was stopped.
pub async fn mail_run(plan: &PagesPlan, keep: Option<&Path>) -> anyhow::Result<MailRun> {
    let dir = DataDir::new(keep, "pages-mail")?;
    // A first start creates keys, schemas and the demo people and senders.
    Server::start(&dir.path).await?.stop().await?;
    let demo = kuvert::demo::load(&dir.path)?;
    let senders: Vec<_> = demo
        .tenants
        .iter()
        .flat_map(|t| t.senders.iter().cloned())
        .collect();
    let anna = kuvert_testkit::oidc::TEST_PERSON;
    let started = Instant::now();
    let spread = Spread {
        recipients: Recipients::One(anna.to_owned()),
        senders,
        unread_one_in: UNREAD_ONE_IN,
    };
    load_messages(&dir.path, MAIL_MESSAGES, spread).await?;
    let load_s = started.elapsed().as_secs_f64();
    let server = Server::start(&dir.path).await?;
    let url = server.url.clone();

    // The page side: a browser logged in as Anna (the dev IdP's first person).
    let browser = kuvert_testkit::oidc::Browser::new(&url);
    let done = browser.login_dev_idp(0).await;
    ensure!(
        done.status == reqwest::StatusCode::SEE_OTHER && done.location.as_deref() == Some("/"),
        "the login as Anna did not end in a session: {}",
        done.status
    );
    // The API side: a recipient token for the same person, its own client.
    let id = RecipientId::parse_canonical(anna).context("Anna's number")?;
    let token = kuvert_testkit::mint_mail_token(&recipient_tokens(&dir.path)?, &id)?;
    let api = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;

    let first = fetch(&browser.http, &format!("{url}/inbox"), None).await?;
    ensure!(
        first.contains(&format!(" {MAIL_MESSAGES} meddelanden")),
        "the inbox does not show Anna's {MAIL_MESSAGES} loaded messages"
    );
    // The deep page: "next" followed as a person would.
    let mut deep = format!("{url}/inbox");
    let mut page = first;
    for _ in 0..DEEP_NEXTS {
        deep = format!("{url}{}", next_link(&page).context("no next page")?);
        page = fetch(&browser.http, &deep, None).await?;
    }
    let deep_page = DEEP_NEXTS + 1;
    let api_first = format!("{url}/mailbox/v1/messages?page_size={PAGE_ROWS}");
    let api_deep = format!("{api_first}&page={deep_page}");
    // Messages to open: read ones (opening marks read, and marking an
    // unread one would cost whichever side came first more).
    let listed: serde_json::Value = serde_json::from_str(
        &fetch(
            &api,
            &format!("{url}/mailbox/v1/messages?page_size=100&page=2"),
            Some(&token),
        )
        .await?,
    )?;
    let read: Vec<String> = listed["messages"]
        .as_array()
        .context("the API's list")?
        .iter()
        .filter(|m| m["read"] == true)
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    ensure!(!read.is_empty(), "no read message to open");

    let samples = plan.samples.max(1);
    let inbox_first = pair(samples, |_| {
        (
            timed(&browser.http, url.clone() + "/inbox", None),
            timed(&api, api_first.clone(), Some(&token)),
        )
    })
    .await?;
    let inbox_deep = pair(samples, |_| {
        (
            timed(&browser.http, deep.clone(), None),
            timed(&api, api_deep.clone(), Some(&token)),
        )
    })
    .await?;
    let message = pair(samples, |n| {
        let id = &read[n % read.len()];
        (
            timed(&browser.http, format!("{url}/messages/{id}"), None),
            timed(
                &api,
                format!("{url}/mailbox/v1/messages/{id}"),
                Some(&token),
            ),
        )
    })
    .await?;
    server.stop().await?;
    Ok(MailRun {
        messages: MAIL_MESSAGES,
        unread: MAIL_MESSAGES.div_ceil(UNREAD_ONE_IN),
        load_s,
        inbox_first,
        deep_page,
        inbox_deep,
        message,
    })
}

/// `samples` timed pairs (after one untimed pair that warms connections
/// and caches), the page first in even samples and the API first in odd.
async fn pair<P, A>(
    samples: usize,
    mut make: impl FnMut(usize) -> (P, A),
) -> anyhow::Result<PageVsApi>
where
    P: std::future::Future<Output = anyhow::Result<f64>>,
    A: std::future::Future<Output = anyhow::Result<f64>>,
{
    let (mut page_ms, mut api_ms) = (Vec::new(), Vec::new());
    for n in 0..=samples {
        let (page, api) = make(n);
        let (page, api) = if n % 2 == 0 {
            let page = page.await?;
            (page, api.await?)
        } else {
            let api = api.await?;
            (page.await?, api)
        };
        if n > 0 {
            page_ms.push(page);
            api_ms.push(api);
        }
    }
    let page = super::reading::latency(page_ms);
    let api = super::reading::latency(api_ms);
    Ok(PageVsApi {
        ratio_p50: page.p50_ms / api.p50_ms,
        ratio_p99: page.p99_ms / api.p99_ms,
        page,
        api,
    })
}

/// One GET, timed until its whole body is in; milliseconds.
async fn timed(http: &reqwest::Client, url: String, token: Option<&str>) -> anyhow::Result<f64> {
    let started = Instant::now();
    fetch(http, &url, token).await?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// One GET that must answer 200; its body.
async fn fetch(http: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<String> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == reqwest::StatusCode::OK,
        "GET {url}: HTTP {status}"
    );
    Ok(body)
}

/// The inbox page's "next page" link (a path with its query), unescaped.
fn next_link(page: &str) -> Option<String> {
    let end = page.find("\" rel=\"next\"")?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&amp;", "&").replace("&#38;", "&"))
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
    mail_rows(&result.mail, rows);
}

/// Which page of a run.
type PairOf = fn(&MailRun) -> &PageVsApi;
/// One quantile of a pair: (page ms, API ms, page ÷ API).
type AtQuantile = fn(&PageVsApi) -> (f64, f64, f64);

/// For each page at p50 and p99: the page beside its API read (the API in
/// the "machine" column), then page ÷ API (median of the runs' ratios)
/// against the target.
fn mail_rows(runs: &[MailRun], rows: &mut Vec<Row>) {
    let Some(first) = runs.first() else {
        return;
    };
    let pages: [(String, PairOf); 3] = [
        (
            format!("inbox first page ({} messages)", first.messages),
            |r| &r.inbox_first,
        ),
        (
            format!(
                "inbox page {} (cursor; API page={})",
                first.deep_page, first.deep_page
            ),
            |r| &r.inbox_deep,
        ),
        ("one message".to_owned(), |r| &r.message),
    ];
    let target = format!("≤ {PAGE_TARGET}×");
    for (name, of) in pages {
        let quantiles: [(&str, AtQuantile); 2] = [
            ("p50", |p| (p.page.p50_ms, p.api.p50_ms, p.ratio_p50)),
            ("p99", |p| (p.page.p99_ms, p.api.p99_ms, p.ratio_p99)),
        ];
        for (q, at) in quantiles {
            let med =
                |f: fn((f64, f64, f64)) -> f64| median(runs.iter().map(|r| f(at(of(r)))).collect());
            // The API's figure is no machine limit: beside it, no ratio.
            rows.push(Row {
                machine: Some(med(|t| t.1)),
                ..Row::new(
                    format!("pages: {name} {q}, page (API beside)"),
                    med(|t| t.0),
                    "ms",
                )
            });
            let ratio = med(|t| t.2);
            rows.push(
                Row::new(format!("pages: {name} {q}, page ÷ API"), ratio, "×")
                    .target(&target, ratio <= PAGE_TARGET),
            );
        }
    }
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
