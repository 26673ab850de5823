//! One module per resource, each opening with its `router()`.

pub mod admin;
pub mod batches;
pub mod deliveries;
pub mod health;
pub mod keys;
pub mod mailbox;
pub mod reachability;
pub mod recipient_profile;
pub mod status_feed;
pub mod tenant;
