//! The mailbox operator (brevlådeoperatör).
//!
//! [`protocol`] is the delivery contract between a relay and any mailbox
//! operator (the one other operators implement); [`accept`] takes sealed
//! deliveries, checks them, stores them encrypted and signs the receipt that
//! marks the legal moment of delivery; [`at_rest`] is what each stored row
//! is encrypted under and bound to; [`reading`] is what a recipient sees;
//! [`evidence`] is the published keys documents and the receipt check anyone
//! can run.

pub mod accept;
pub mod at_rest;
pub mod certificate;
pub mod contacts;
pub mod delegation;
pub mod evidence;
pub mod export;
pub mod protocol;
pub mod reading;

pub use accept::{MAX_DELIVERIES_PER_REQUEST, Mailbox, MailboxError};
