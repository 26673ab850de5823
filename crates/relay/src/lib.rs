//! The relay (förmedlare): takes a sender's signed deliveries, checks them,
//! routes each through the register, seals it for the recipient's mailbox
//! operator and stores it durably ([`intake`]); then delivers the queue to
//! the operators, retrying with backoff, and records their signed receipts
//! ([`worker`]).

pub mod compose;
pub mod intake;
pub mod quota;
pub mod tenancy;
pub mod web_sending;
pub mod worker;

pub use intake::{Accepted, Caller, IntakeError, Relay, Submission};
pub use worker::{DeliveryWorker, Pass, RetryPolicy, WorkerError};
