//! Operations: metrics, the admin listener, hot reload, the decision log.

pub mod admin;
pub mod decision_log;
pub mod metrics;
pub mod reload;
