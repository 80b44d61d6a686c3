//! Operations: metrics, the admin listener, hot reload (and the directory watch behind
//! it), the decision log, returning freed heap after a reload.

pub mod admin;
pub mod decision_log;
pub mod memory;
pub mod metrics;
pub mod reload;
pub mod store;
pub mod watch;
