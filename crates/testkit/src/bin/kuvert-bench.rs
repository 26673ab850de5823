//! `kuvert-bench`: the benchmark of issue #7 — kuvert's throughput, lookup
//! and reading figures beside this machine's own limit, measured in the
//! same run (see docs/performance.md for what each figure means).
//!
//!     cargo run --release -p kuvert-testkit --bin kuvert-bench -- \
//!         [--messages N] [--runs R] [--only limit,e2e,pdf,reach,mailbox,memory,largest,pages] \
//!         [--json docs/bench/latest.json]
//!
//! kuvert runs as a child process (`kuvert-bench node serve …`, the
//! `kuvert` command line itself), so its CPU time and peak memory are read
//! apart from the client's, from /proc. Prints one table and writes the
//! same as JSON. Not a test: nothing here asserts on time.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../bench/mod.rs"]
mod bench;

/// mimalloc, as in the `kuvert` binary (the server runs as this binary): each message makes many short-lived buffers (JSON, base64,
/// signatures), and glibc's malloc took about a tenth of the server's CPU in
/// the benchmark's profile (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bench::e2e::{Payload, SendPlan, SendResult};
use bench::limit::Limit;
use bench::reading::{ReadingPlan, ReadingResult};
use bench::report::{Row, median, table};
use clap::Parser;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kuvert-bench",
    about = "kuvert's throughput, lookups, reading and memory beside this machine's own limit"
)]
struct Args {
    /// Messages per end-to-end run (2 KiB bodies). Default: enough for
    /// about 35 s at the rate a calibration send of 5000 measures first.
    #[arg(long)]
    messages: Option<usize>,
    /// Messages per run with a 100 KiB PDF attachment. Default: enough for
    /// about 35 s at the rate a calibration send of 300 measures first.
    #[arg(long)]
    pdf_messages: Option<usize>,
    /// Runs of each figure; the table quotes medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Which parts: limit, e2e, pdf, reach, mailbox, memory, largest, pages
    /// (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "limit,e2e,pdf,reach,mailbox,memory,largest,pages"
    )]
    only: Vec<String>,
    /// Logins per run of the pages group (the code flow through the dev IdP).
    #[arg(long, default_value_t = 2000)]
    logins: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Registered recipients the bulk sends are spread over.
    #[arg(long, default_value_t = 1000)]
    recipients: usize,
    /// Concurrent clients posting batches.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Deliveries per POST /v1/batches (100 for the PDF runs at most).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Registered recipients in the register for the reachability figure
    /// (and the recipients the mailbox messages are spread over).
    #[arg(long, default_value_t = 1_000_000)]
    reach_recipients: usize,
    /// Messages stored in the mailbox for the reading figures.
    #[arg(long, default_value_t = 10_000_000)]
    mailbox_messages: usize,
    /// Messages in the long send whose server memory is watched.
    #[arg(long, default_value_t = 1_000_000)]
    memory_messages: usize,
    /// Timed requests per lookup/reading figure and run (and page/API
    /// pairs per page figure and run).
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Iterations of each crypto operation in the machine limit.
    #[arg(long, default_value_t = 20_000)]
    limit_iterations: usize,
    /// Keep the data folders here (default: temporary, removed after).
    #[arg(long)]
    data: Option<PathBuf>,
    /// A note on the machine, stored with the results.
    #[arg(long, default_value = "")]
    note: String,
}

fn main() -> ExitCode {
    kuvert_testkit::harness_main(|runtime| {
        let args = Args::parse();
        match runtime.block_on(run(&args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("the benchmark failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

#[derive(serde::Serialize)]
struct Results {
    date: String,
    note: String,
    cores: usize,
    runs: usize,
    sizes: serde_json::Value,
    /// The calibration sends that chose the sizes (not in the medians).
    calibration: Vec<SendResult>,
    limit: Vec<Limit>,
    e2e: Vec<SendResult>,
    pdf: Vec<SendResult>,
    reading: Option<ReadingResult>,
    memory: Option<SendResult>,
    /// The largest request of each kind and the server memory it costs.
    largest: Vec<bench::largest::Largest>,
    /// The web pages (issue 18): logins per second, the inbox and message
    /// pages beside the API reads they wrap.
    pages: Option<bench::pages::PagesResult>,
    table: Vec<Row>,
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let only: BTreeSet<&str> = args.only.iter().map(String::as_str).collect();
    for part in &only {
        anyhow::ensure!(
            [
                "limit", "e2e", "pdf", "reach", "mailbox", "memory", "largest", "pages"
            ]
            .contains(part),
            "unknown part {part:?} in --only"
        );
    }
    let keep = args.data.as_deref();
    if let Some(dir) = keep {
        std::fs::create_dir_all(dir)?;
    }
    let scratch = bench::server::DataDir::new(keep, "limit")?;
    let mut text = SendPlan {
        messages: args.messages.unwrap_or(CALIBRATE_TEXT).max(1),
        payload: Payload::Text2k,
        recipients: args.recipients,
        batch_size: args.batch.clamp(1, 10_000),
        clients: args.clients,
    };
    let mut pdf = SendPlan {
        messages: args.pdf_messages.unwrap_or(CALIBRATE_PDF).max(1),
        payload: Payload::Pdf100k,
        batch_size: args.batch.clamp(1, 100),
        ..text.clone()
    };
    // Sizes not given: a short calibration send sets them, so that a run
    // lasts about 35 s however fast kuvert is today.
    let mut calibration = Vec::new();
    if args.messages.is_none() && only.contains("e2e") {
        eprintln!("calibrating: {} × 2 KiB …", text.messages);
        let done = bench::e2e::run(&text, keep).await?;
        text.messages = sized_for(done.delivered_per_s, text.batch_size, CALIBRATE_TEXT);
        eprintln!(
            "  {:.0} msg/s → {} messages per run",
            done.delivered_per_s, text.messages
        );
        calibration.push(done);
    }
    if args.pdf_messages.is_none() && only.contains("pdf") {
        eprintln!("calibrating: {} × 2 KiB + 100 KiB PDF …", pdf.messages);
        let done = bench::e2e::run(&pdf, keep).await?;
        pdf.messages = sized_for(done.delivered_per_s, pdf.batch_size, CALIBRATE_PDF);
        eprintln!(
            "  {:.0} msg/s → {} messages per run",
            done.delivered_per_s, pdf.messages
        );
        calibration.push(done);
    }
    let mut results = Results {
        date: kuvert_store::format_instant(time::OffsetDateTime::now_utc()),
        note: args.note.clone(),
        cores: bench::proc::cores(),
        runs: args.runs,
        sizes: serde_json::json!({
            "messages": text.messages, "pdf_messages": pdf.messages,
            "recipients": args.recipients, "clients": args.clients, "batch": args.batch,
            "reach_recipients": args.reach_recipients,
            "mailbox_messages": args.mailbox_messages,
            "memory_messages": args.memory_messages, "samples": args.samples,
            "limit_iterations": args.limit_iterations, "logins": args.logins,
        }),
        calibration,
        limit: Vec::new(),
        e2e: Vec::new(),
        pdf: Vec::new(),
        reading: None,
        memory: None,
        largest: Vec::new(),
        pages: None,
        table: Vec::new(),
    };

    // The limit and the sends alternate run by run, so that each ratio
    // compares figures taken under the same load from others.
    let needs_limit = ["limit", "e2e", "pdf", "memory"]
        .iter()
        .any(|p| only.contains(p));
    for r in 0..args.runs.max(1) {
        if needs_limit {
            eprintln!("run {}: machine limit …", r + 1);
            let limit = bench::limit::measure(args.limit_iterations, &scratch.path).await?;
            eprintln!(
                "  {:.0} msg/s (per message {:.1} µs; writer-bound {:.0}/s)",
                limit.limit_per_s, limit.per_message_us, limit.writer_per_s
            );
            results.limit.push(limit);
            for file in ["limit-core.db", "limit-mailbox.db"] {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(scratch.path.join(format!("{file}{suffix}")));
                }
            }
        }
        if only.contains("e2e") {
            eprintln!("run {}: end to end, {} × 2 KiB …", r + 1, text.messages);
            let done = bench::e2e::run(&text, keep).await?;
            eprintln!(
                "  delivered {:.0}/s (accepted {:.0}/s), server CPU {:.0} µs/msg, peak RSS {:.0} MiB",
                done.delivered_per_s,
                done.accepted_per_s,
                done.server_cpu_us_per_message,
                done.server_peak_rss_mib
            );
            results.e2e.push(done);
        }
        if only.contains("pdf") {
            eprintln!(
                "run {}: end to end, {} × 2 KiB + 100 KiB PDF …",
                r + 1,
                pdf.messages
            );
            let done = bench::e2e::run(&pdf, keep).await?;
            eprintln!(
                "  delivered {:.0}/s, server CPU {:.0} µs/msg",
                done.delivered_per_s, done.server_cpu_us_per_message
            );
            results.pdf.push(done);
        }
    }
    if only.contains("reach") || only.contains("mailbox") {
        eprintln!(
            "reading: {} recipients, {} mailbox messages …",
            args.reach_recipients,
            if only.contains("mailbox") {
                args.mailbox_messages
            } else {
                0
            }
        );
        let plan = ReadingPlan {
            recipients: args.reach_recipients.max(1),
            messages: args.mailbox_messages,
            reach: only.contains("reach"),
            mailbox: only.contains("mailbox"),
            samples: args.samples.max(1),
            runs: args.runs,
        };
        results.reading = Some(bench::reading::run(&plan, keep).await?);
    }
    if only.contains("memory") {
        eprintln!("memory: one send of {} × 2 KiB …", args.memory_messages);
        let plan = SendPlan {
            messages: args.memory_messages,
            ..text.clone()
        };
        let done = bench::e2e::run(&plan, keep).await?;
        eprintln!(
            "  peak RSS {:.0} MiB at a quarter, {:.0} MiB at the end",
            done.peak_rss_at_quarter_mib, done.server_peak_rss_mib
        );
        results.memory = Some(done);
    }

    if only.contains("largest") {
        eprintln!("largest requests: each kind on a fresh server …");
        results.largest = bench::largest::run(keep).await?;
        for l in &results.largest {
            eprintln!(
                "  {}: {:.1} MiB body, answered {}, +{:.0} MiB at peak ({:.0} MiB)",
                l.kind.label(),
                l.request_bytes as f64 / 1_048_576.0,
                l.status,
                l.added_mib,
                l.peak_after_mib
            );
        }
    }

    if only.contains("pages") {
        eprintln!(
            "pages: {} logins per run, {} browsers …",
            args.logins,
            bench::pages::LOGIN_CLIENTS
        );
        let plan = bench::pages::PagesPlan {
            logins: args.logins.max(1),
            runs: args.runs,
            limit_iterations: args.limit_iterations,
            samples: args.samples.max(1),
        };
        results.pages = Some(bench::pages::run(&plan, keep).await?);
    }

    results.table = rows(&results);
    println!(
        "kuvert-bench {} — {} cores{}; medians of {} run(s)\n",
        results.date,
        results.cores,
        if args.note.is_empty() {
            String::new()
        } else {
            format!("; {}", args.note)
        },
        args.runs
    );
    print!("{}", table(&results.table));
    println!(
        "\nratio = how much of the machine's best kuvert reaches: throughput kuvert ÷ limit, \
         CPU per message limit ÷ kuvert (each within its run, then the median)."
    );
    if !results.limit.is_empty() {
        let m = |f: fn(&Limit) -> f64| median(results.limit.iter().map(f).collect());
        println!(
            "Limit = min(cores / per_message, 1 / max(insert_core, insert_mailbox)): crypto and \
             row encoding run on all {} cores; each SQLite database has one writer. \
             Per message (medians): verify {:.1} µs, sign {:.1} µs, content seal {:.1} µs \
             (one HPKE encapsulation per 1000; {:.1} µs with one per message), \
             at-rest {:.1} µs, core insert {:.1} µs, mailbox insert {:.1} µs.",
            results.cores,
            m(|l| l.verify_us),
            m(|l| l.sign_us),
            m(|l| l.seal_us),
            m(|l| l.seal_single_us),
            m(|l| l.at_rest_us),
            m(|l| l.insert_core_us),
            m(|l| l.insert_mailbox_us)
        );
    }
    if let Some(path) = &args.json {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
        println!("written to {}", path.display());
    }
    Ok(())
}

const CALIBRATE_TEXT: usize = 5000;
const CALIBRATE_PDF: usize = 300;
/// Seconds a send should last when its size is not given.
const SEND_SECONDS: f64 = 35.0;

/// Messages for about `SEND_SECONDS` at `rate` (at least `at_least`), in
/// whole batches.
fn sized_for(rate: f64, batch: usize, at_least: usize) -> usize {
    let wanted = (rate * SEND_SECONDS).ceil() as usize;
    let batch = batch.max(1);
    wanted.max(at_least).div_ceil(batch) * batch
}

/// Medians across runs; every ratio is taken within its own run first.
fn rows(r: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    let limit = |f: fn(&Limit) -> f64| median(r.limit.iter().map(f).collect());
    let limit_at = |i: usize| r.limit.get(i).map_or(f64::NAN, |l| l.limit_per_s);
    if !r.limit.is_empty() {
        rows.push(Row::new(
            "machine limit, msg/s (2 KiB, all cores)",
            limit(|l| l.limit_per_s),
            "msg/s",
        ));
        rows.push(Row::new(
            "  crypto + inserts, per message (one core)",
            limit(|l| l.per_message_us),
            "µs",
        ));
        rows.push(Row::new(
            "  writer-bound (one SQLite writer)",
            limit(|l| l.writer_per_s),
            "msg/s",
        ));
        rows.push(Row::new(
            "  as defined before decision 0006 (HPKE per message)",
            limit(|l| l.limit_single_encapsulation_per_s),
            "msg/s",
        ));
    }
    let sends = |label: &str, runs: &[SendResult], rows: &mut Vec<Row>, targets: bool| {
        if runs.is_empty() {
            return;
        }
        let delivered = median(runs.iter().map(|s| s.delivered_per_s).collect());
        let ratio = median(
            runs.iter()
                .enumerate()
                .map(|(i, s)| s.delivered_per_s / limit_at(i))
                .collect(),
        );
        let mut row = Row::new(
            format!("{label}: delivered, msg/s (N = {})", runs[0].messages),
            delivered,
            "msg/s",
        )
        .machine(limit(|l| l.limit_per_s), ratio);
        if targets {
            row = row.target("≥ 10 000 and ≥ 50 %", delivered >= 10_000.0 && ratio >= 0.5);
        }
        rows.push(row);
        rows.push(Row::new(
            format!("{label}: accepted (durable), msg/s"),
            median(runs.iter().map(|s| s.accepted_per_s).collect()),
            "msg/s",
        ));
        rows.push(Row::new(
            format!("{label}: delivered while sending, msg/s"),
            median(
                runs.iter()
                    .map(|s| s.delivered_while_sending_per_s)
                    .collect(),
            ),
            "msg/s",
        ));
        rows.push(Row::new(
            format!("{label}: delivered after sending, msg/s"),
            median(
                runs.iter()
                    .map(|s| s.delivered_after_sending_per_s)
                    .collect(),
            ),
            "msg/s",
        ));
        let cpu = median(runs.iter().map(|s| s.server_cpu_us_per_message).collect());
        let cpu_ratio = median(
            runs.iter()
                .enumerate()
                .map(|(i, s)| {
                    r.limit
                        .get(i)
                        .map_or(f64::NAN, |l| l.per_message_us / s.server_cpu_us_per_message)
                })
                .collect(),
        );
        rows.push(
            Row::new(format!("{label}: server CPU per message"), cpu, "µs")
                .machine(limit(|l| l.per_message_us), cpu_ratio),
        );
        rows.push(Row::new(
            format!("{label}: server cores busy"),
            median(runs.iter().map(|s| s.server_cores_busy).collect()),
            "cores",
        ));
        rows.push(Row::new(
            format!("{label}: client CPU (whole run)"),
            median(runs.iter().map(|s| s.client_cpu_s).collect()),
            "s",
        ));
        rows.push(Row::new(
            format!("{label}: server peak RSS"),
            median(runs.iter().map(|s| s.server_peak_rss_mib).collect()),
            "MiB",
        ));
    };
    sends("e2e 2 KiB", &r.e2e, &mut rows, true);
    sends("e2e 2 KiB + 100 KiB PDF", &r.pdf, &mut rows, false);
    if let Some(reading) = &r.reading {
        if !reading.reach.is_empty() {
            let ids = median(reading.reach.iter().map(|x| x.ids_per_s).collect());
            let p50 = median(reading.reach.iter().map(|x| x.sequential.p50_ms).collect());
            let p99 = median(reading.reach.iter().map(|x| x.sequential.p99_ms).collect());
            let n = reading.recipients;
            rows.push(
                Row::new(format!("reachability ids/s ({n} registered)"), ids, "ids/s")
                    .target("≥ 200 000", ids >= 200_000.0),
            );
            rows.push(Row::new("reachability, 1000-id batch p50", p50, "ms"));
            rows.push(
                Row::new("reachability, 1000-id batch p99", p99, "ms").target("≤ 5 ms", p99 <= 5.0),
            );
        }
        if !reading.mailbox.is_empty() {
            let m = reading.messages;
            let med = |f: fn(&bench::reading::MailboxRun) -> f64| {
                median(reading.mailbox.iter().map(f).collect())
            };
            rows.push(Row::new(
                format!("mailbox list first page p50 ({m} messages)"),
                med(|x| x.list_first_page.p50_ms),
                "ms",
            ));
            let p99 = med(|x| x.list_first_page.p99_ms);
            rows.push(
                Row::new("mailbox list first page p99", p99, "ms").target("≤ 10 ms", p99 <= 10.0),
            );
            rows.push(Row::new(
                "mailbox open message p50",
                med(|x| x.open_message.p50_ms),
                "ms",
            ));
            let p99 = med(|x| x.open_message.p99_ms);
            rows.push(
                Row::new("mailbox open message p99", p99, "ms").target("≤ 10 ms", p99 <= 10.0),
            );
        }
    }
    if let Some(m) = &r.memory {
        let quarter = m.peak_rss_at_quarter_mib;
        let end = m.server_peak_rss_mib;
        // Flat: the last three quarters of the send added at most 25 % (and
        // at least 32 MiB of slack) to the peak of the first quarter.
        let flat = end <= (quarter * 1.25).max(quarter + 32.0);
        rows.push(Row::new(
            format!("memory send: peak RSS at N/4 (N = {})", m.messages),
            quarter,
            "MiB",
        ));
        rows.push(
            Row::new("memory send: peak RSS at N", end, "MiB")
                .target("≤ 512 MiB and flat", end <= 512.0 && flat),
        );
        rows.push(Row::new(
            "memory send: delivered, msg/s",
            m.delivered_per_s,
            "msg/s",
        ));
    }
    if let Some(pages) = &r.pages {
        bench::pages::rows(pages, &mut rows);
    }
    for l in &r.largest {
        rows.push(
            Row::new(
                format!("largest: {}, added at peak", l.kind.label()),
                l.added_mib,
                "MiB",
            )
            .target("≤ 512 MiB", l.added_mib <= 512.0),
        );
    }
    rows
}
