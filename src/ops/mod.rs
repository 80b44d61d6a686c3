//! Operations: metrics, the admin listener, hot reload (and the directory watch behind
//! it), the decision log.

pub mod admin;
pub mod decision_log;
pub mod metrics;
pub mod reload;
pub mod watch;
