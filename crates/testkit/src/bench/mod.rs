//! The benchmark of issue #7 (`kuvert-bench`): kuvert's figures beside the
//! machine's own limit, measured in the same run. See docs/performance.md.

pub mod e2e;
pub mod largest;
pub mod limit;
pub mod pages;
pub mod proc;
pub mod reading;
pub mod report;
pub mod server;
