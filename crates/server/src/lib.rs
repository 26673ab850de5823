//! The `kuvert` binary's library half: key material in the data folder,
//! wiring of the roles into one process (or a subset), demo data, and the
//! small sender client `kuvert send` uses, and the command line itself
//! (`cli`): `main.rs` only calls it, so tests start exactly what users start.

pub mod app;
pub mod audit_log;
pub mod cli;
pub mod client;
pub mod demo;
pub mod keys;
pub mod tls;
pub mod witness;
