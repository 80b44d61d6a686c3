//! Operations: metrics, the admin listener, the policy store with hot reload (and the
//! directory watch behind it), the decision log, returning freed heap after a reload.
//!
//! Public for the tests, benches and the binary: the metric names ([`metrics::NAMES`]) and
//! the allocator settings ([`memory`]). The rest serves the proxy, which composes it;
//! nothing here imports the proxy.

pub(crate) mod admin;
pub(crate) mod decision_log;
pub mod memory;
pub mod metrics;
pub(crate) mod reload;
pub(crate) mod store;
pub(crate) mod watch;
