//! The `kuvert` binary: everything is in the library (`kuvert::cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kuvert::cli::init_tracing();
    kuvert::cli::run(std::env::args_os()).await
}
