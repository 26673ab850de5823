//! The `kuvert` binary's library half: key material in the data folder,
//! wiring of the roles into one process (or a subset), demo data, and the
//! small sender client `kuvert send` uses. `main.rs` only parses the command
//! line and calls in here, so tests start exactly what users start.

pub mod app;
pub mod client;
pub mod demo;
pub mod keys;
