//! The `kuvert` binary's library half: key material in the data folder,
//! wiring of the roles into one process (or a subset), demo data, and the
//! small sender client `kuvert send` uses, and the command line itself
//! (`cli`): `main.rs` only calls it, so tests start exactly what users start.

/// mimalloc, for every binary that links kuvert (the server, the benchmark,
/// the tests): each message makes many short-lived buffers (JSON, base64,
/// signatures), and glibc's malloc took about a tenth of the server's CPU in
/// the benchmark's profile (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod cli;
pub mod client;
pub mod demo;
pub mod keys;
