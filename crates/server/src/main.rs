//! The `kuvert` binary: everything is in the library (`kuvert::cli`).

/// mimalloc: each message makes many short-lived buffers (JSON, base64,
/// signatures), and glibc's malloc took about a tenth of the server's CPU in
/// the benchmark's profile (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kuvert::cli::init_tracing();
    let result = kuvert::cli::run(std::env::args_os()).await;
    if let Err(e) = &result
        && let Some(usage) = e.downcast_ref::<clap::Error>()
    {
        // --help and --version on stdout with 0, usage errors with 2.
        usage.exit();
    }
    result
}
