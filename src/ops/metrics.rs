//! The Prometheus metrics of SPEC §7, recorded through the `metrics` facade. Label values
//! are bounded: actions come from the catalogue (else `other`), decisions from a fixed set;
//! never an id, a principal or a tag.

use metrics::{counter, gauge, histogram};
use std::time::Duration;

pub fn request(action: &'static str, decision: &'static str, elapsed: Duration) {
    counter!("ramgate_requests_total", "action" => action, "decision" => decision).increment(1);
    histogram!("ramgate_request_duration_seconds").record(elapsed.as_secs_f64());
}

pub fn decision(elapsed: Duration) {
    histogram!("ramgate_decision_duration_seconds").record(elapsed.as_secs_f64());
}

pub fn upstream(elapsed: Duration) {
    histogram!("ramgate_upstream_duration_seconds").record(elapsed.as_secs_f64());
}

pub fn metadata_lookup(elapsed: Duration) {
    histogram!("ramgate_metadata_lookup_duration_seconds").record(elapsed.as_secs_f64());
}

pub fn metadata_lookup_failed() {
    counter!("ramgate_metadata_lookup_errors_total").increment(1);
}

pub fn cache(hits: u32, negative_hits: u32, misses: u32) {
    for (result, n) in [
        ("hit", hits),
        ("negative_hit", negative_hits),
        ("miss", misses),
    ] {
        if n > 0 {
            counter!("ramgate_metadata_cache_requests_total", "result" => result)
                .increment(u64::from(n));
        }
    }
}

pub fn inflight(delta: f64) {
    gauge!("ramgate_inflight_requests").increment(delta);
}

pub fn reload(success: bool, generation: u64) {
    let result = if success { "success" } else { "error" };
    counter!("ramgate_policy_reloads_total", "result" => result).increment(1);
    if success {
        gauge!("ramgate_policy_generation").set(generation as f64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        gauge!("ramgate_policy_last_reload_success_timestamp_seconds").set(now.as_secs_f64());
    }
}

pub fn tls_handshake_failed() {
    counter!("ramgate_tls_handshake_failures_total").increment(1);
}
