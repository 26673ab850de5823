//! kill -9 of the relay and of the mailbox, each in its own process, while
//! a careful client sends: nothing accepted is lost, nothing arrives twice.
//! The harness is `kuvert_testkit::crash`; the long run is
//! `kuvert-crashtest` (see docs/reliability.md).

use kuvert_testkit::crash::{CrashPlan, clock_seed, run};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_relay_and_mailbox_loses_nothing_and_delivers_nothing_twice() {
    let seed = std::env::var("KUVERT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(clock_seed);
    eprintln!("crash test seed {seed} (KUVERT_CRASH_SEED={seed} repeats it)");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_kuvert-crashtest"));
    let plan = CrashPlan::new(exe, 2000, 5, seed);
    let report = run(&plan).await.expect("the harness runs");
    let json = serde_json::to_string_pretty(&report.summary_json()).expect("json");
    assert!(
        report.is_clean(),
        "seed {seed}:\n{}\n{json}",
        report.table()
    );
    assert_eq!(report.kills_relay + report.kills_mailbox, 5, "{json}");
    assert!(
        report.kills_relay >= 2 && report.kills_mailbox >= 2,
        "both processes were killed: {json}"
    );
    assert_eq!(report.delivered, 2000);
}
