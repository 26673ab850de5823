//! `kuvert-crashtest`: the kill -9 harness (see `kuvert_testkit::crash`).
//!
//!     kuvert-crashtest --messages 100000 --kills 20 [--seed N] [--victims both]
//!
//! Prints the seed first (pass it back with `--seed` to repeat a run), then
//! the report as a table and as JSON; exits 1 unless nothing was lost or
//! duplicated. `kuvert-crashtest node …` is the `kuvert` command line itself:
//! the harness runs its relay and mailbox processes that way, so it needs no
//! second binary.
#![allow(clippy::print_stdout)]

use clap::Parser;
use kuvert_testkit::crash::{CrashPlan, Victims, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kuvert-crashtest",
    about = "Kill -9 the relay and the mailbox while sending; prove nothing is lost or delivered twice"
)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Seed of the kill schedule (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// relay, mailbox or both.
    #[arg(long, default_value = "both")]
    victims: Victims,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    recipients: usize,
    /// Shortest and longest time between kills, in milliseconds.
    #[arg(long, default_value_t = 300)]
    kill_min_ms: u64,
    #[arg(long, default_value_t = 1500)]
    kill_max_ms: u64,
    /// Keep the data folder (logs, databases) here.
    #[arg(long)]
    data: Option<PathBuf>,
}

fn main() -> ExitCode {
    kuvert_testkit::harness_main(|runtime| {
        let args = Args::parse();
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("cannot find my own executable: {e}");
                return ExitCode::FAILURE;
            }
        };
        let seed = args.seed.unwrap_or_else(kuvert_testkit::crash::clock_seed);
        println!("seed {seed}");
        let mut plan = CrashPlan::new(exe, args.messages, args.kills, seed);
        plan.victims = args.victims;
        plan.concurrency = args.concurrency;
        plan.recipients = args.recipients;
        plan.kill_every = (
            Duration::from_millis(args.kill_min_ms),
            Duration::from_millis(args.kill_max_ms.max(args.kill_min_ms)),
        );
        plan.data_dir = args.data;
        match runtime.block_on(run(&plan)) {
            Ok(report) => {
                print!("{}", report.table());
                println!("{}", report.summary_json());
                if report.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("the harness failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
