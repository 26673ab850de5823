//! kuvert's integration tests: one binary, a module per area. Each test
//! spawns a real instance (port 0, fresh data folder) through the testkit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod at_rest;
mod audit;
mod authz;
mod bad_input;
mod crash;
mod credential_scope;
mod disk;
mod evidence;
mod fair_share;
mod flow;
mod idempotency;
mod in_flight;
mod keys_and_tokens;
mod limits;
mod login;
mod openapi;
mod outages;
mod privacy;
mod quotas;
mod reachability;
mod recipients;
mod resilience;
mod retries;
mod tenants;
mod transport;
mod trust;
mod web_delegation;
mod web_mailbox;
mod web_sender;
mod web_settings;
mod withdrawn;
mod witness;
