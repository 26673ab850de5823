//! Pure types of kuvert: no IO. Identity numbers, the delivery model and its
//! validation rules. A value of a type defined here was parsed, so it is valid.

pub mod clock;
pub mod contact;
pub mod content;
pub mod delivery;
pub mod html_check;
pub mod html_policy;
pub mod identity;
pub mod ids;
pub mod status;
pub mod swedish_time;
