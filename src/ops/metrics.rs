//! The Prometheus metrics of SPEC §7, recorded through the `metrics` facade. Label values
//! are bounded: actions come from the catalogue (else `other`), decisions, cache results
//! and reload results from fixed sets; never an id, a principal or a tag.
//!
//! [`NAMES`] lists every metric ramgate exports; `register` creates each of them (at zero)
//! as soon as the recorder is installed, so that a dashboard or an alert finds every series
//! from the first scrape instead of "no data" until the first event (a TLS handshake failure
//! or a failed reload may never happen). A unit test checks the list against what the
//! exporter really renders, and an integration test checks the Grafana dashboard against
//! the list.
//!
//! The series every proxied request records are looked up once, when ramgate's recorder
//! is installed (`bind`), and kept as handles: looking one up through the macros hashes
//! its name and labels and searches the recorder's registry each time, which cost about
//! 4,900 instructions of a cached single-resource call (of ~106,000).

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

pub const REQUESTS: &str = "ramgate_requests_total";
pub const REQUEST_DURATION: &str = "ramgate_request_duration_seconds";
pub const DECISION_DURATION: &str = "ramgate_decision_duration_seconds";
pub const UPSTREAM_DURATION: &str = "ramgate_upstream_duration_seconds";
pub const METADATA_LOOKUP_DURATION: &str = "ramgate_metadata_lookup_duration_seconds";
pub const METADATA_CACHE: &str = "ramgate_metadata_cache_requests_total";
pub const METADATA_LOOKUP_ERRORS: &str = "ramgate_metadata_lookup_errors_total";
pub const RELOADS: &str = "ramgate_policy_reloads_total";
pub const GENERATION: &str = "ramgate_policy_generation";
pub const LAST_RELOAD_SUCCESS: &str = "ramgate_policy_last_reload_success_timestamp_seconds";
pub const INFLIGHT: &str = "ramgate_inflight_requests";
pub const TLS_HANDSHAKE_FAILURES: &str = "ramgate_tls_handshake_failures_total";
pub const DECISION_LOG_DROPPED: &str = "ramgate_decision_log_dropped_total";
pub const CREDENTIAL_REFRESHES: &str = "ramgate_upstream_credential_refreshes_total";
pub const UPSTREAM_AUTH_FAILURES: &str = "ramgate_upstream_auth_failures_total";

/// The `source` label values of [`CREDENTIAL_REFRESHES`] (the sources that refresh).
pub const REFRESHING_SOURCES: &[&str] = &["oidc", "ecs_ram_role"];
/// The `code` label values of [`UPSTREAM_AUTH_FAILURES`]: the rejection's `Code` without
/// its suffix (`InvalidAccessKeyId.NotFound` counts as `InvalidAccessKeyId`).
pub const AUTH_FAILURE_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
];
pub const CLUSTER_CONNECTED: &str = "ramgate_cluster_connected";
pub const CLUSTER_INVALIDATIONS: &str = "ramgate_cluster_invalidations_total";
pub const CLUSTER_ERRORS: &str = "ramgate_cluster_errors_total";

/// Every metric ramgate exports, by the name it has on `/metrics` (histograms by their base
/// name, without `_bucket`, `_sum`, `_count`).
pub const NAMES: &[&str] = &[
    REQUESTS,
    REQUEST_DURATION,
    DECISION_DURATION,
    UPSTREAM_DURATION,
    METADATA_LOOKUP_DURATION,
    METADATA_CACHE,
    METADATA_LOOKUP_ERRORS,
    RELOADS,
    GENERATION,
    LAST_RELOAD_SUCCESS,
    INFLIGHT,
    TLS_HANDSHAKE_FAILURES,
    DECISION_LOG_DROPPED,
    CREDENTIAL_REFRESHES,
    UPSTREAM_AUTH_FAILURES,
    CLUSTER_CONNECTED,
    CLUSTER_INVALIDATIONS,
    CLUSTER_ERRORS,
];

/// The `decision` label values of [`REQUESTS`].
pub const DECISIONS: &[&str] = &[
    "allow",
    "deny",
    "silent_empty",
    "would_deny",
    "throttled",
    "error",
];

/// Histogram buckets from 10 µs to 10 s (SPEC §7): fast decisions and slow backends are
/// both resolved.
pub const BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exporter as ramgate configures it: every `*_seconds` histogram gets [`BUCKETS`].
/// The matcher cannot fail on a non-empty bucket list; should it ever, the default
/// (summary) rendering is better than no metrics at all.
pub(crate) fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// Describes every metric and creates each series whose labels are known in advance, at
/// zero. Call once the recorder is installed (metrics recorded before are lost).
pub(crate) fn register() {
    describe_counter!(
        REQUESTS,
        "Requests answered, by ECI action (else other) and decision"
    );
    describe_histogram!(REQUEST_DURATION, "Time from request start to answer");
    describe_histogram!(DECISION_DURATION, "Time spent in the policy decision");
    describe_histogram!(UPSTREAM_DURATION, "Time waiting for the backend");
    describe_histogram!(
        METADATA_LOOKUP_DURATION,
        "Time of metadata lookups sent to the backend"
    );
    describe_counter!(
        METADATA_CACHE,
        "Container-group metadata cache look-ups, by result (hit, miss, negative_hit)"
    );
    describe_counter!(
        METADATA_LOOKUP_ERRORS,
        "Metadata lookups that failed (the request failed closed with 503)"
    );
    describe_counter!(
        RELOADS,
        "Policy reload attempts, by result (success, error)"
    );
    describe_gauge!(GENERATION, "Generation of the policy snapshot in use");
    describe_gauge!(
        LAST_RELOAD_SUCCESS,
        "Unix time of the last successful policy load"
    );
    describe_gauge!(INFLIGHT, "Requests being served by the proxy");
    describe_counter!(TLS_HANDSHAKE_FAILURES, "TLS handshakes that failed");
    describe_counter!(
        DECISION_LOG_DROPPED,
        "Decision-log lines lost, by reason: queue_full (allows only: the sink lagged) or write_failed (the sink refused the line)"
    );
    describe_counter!(
        CREDENTIAL_REFRESHES,
        "Refreshes of ramgate's own temporary Alibaba Cloud credential, by source and result"
    );
    describe_counter!(
        UPSTREAM_AUTH_FAILURES,
        "Upstream answers that rejected ramgate's own credential (signing = acs3), by code"
    );
    describe_gauge!(
        CLUSTER_CONNECTED,
        "1 while this replica's Redis subscription ([cluster]) is up, else 0"
    );
    describe_counter!(
        CLUSTER_INVALIDATIONS,
        "Cache invalidation messages between replicas, by direction (sent, received)"
    );
    describe_counter!(
        CLUSTER_ERRORS,
        "Redis operations ([cluster]) that failed or timed out"
    );

    for h in [
        REQUEST_DURATION,
        DECISION_DURATION,
        UPSTREAM_DURATION,
        METADATA_LOOKUP_DURATION,
    ] {
        let _ = histogram!(h);
    }
    for result in ["hit", "miss", "negative_hit"] {
        cache_counter(result).increment(0);
    }
    for result in ["success", "error"] {
        counter!(RELOADS, "result" => result).increment(0);
    }
    counter!(METADATA_LOOKUP_ERRORS).increment(0);
    counter!(TLS_HANDSHAKE_FAILURES).increment(0);
    for reason in [DroppedBecause::QueueFull, DroppedBecause::WriteFailed] {
        counter!(DECISION_LOG_DROPPED, "reason" => reason.as_str()).increment(0);
    }
    for source in REFRESHING_SOURCES {
        for result in ["success", "error"] {
            counter!(CREDENTIAL_REFRESHES, "source" => *source, "result" => result).increment(0);
        }
    }
    for code in AUTH_FAILURE_CODES {
        counter!(UPSTREAM_AUTH_FAILURES, "code" => *code).increment(0);
    }
    counter!(CLUSTER_ERRORS).increment(0);
    for direction in ["sent", "received"] {
        counter!(CLUSTER_INVALIDATIONS, "direction" => direction).increment(0);
    }
    // Adding zero creates a gauge without overwriting a value already set.
    for g in [INFLIGHT, GENERATION, LAST_RELOAD_SUCCESS, CLUSTER_CONNECTED] {
        gauge!(g).increment(0.0);
    }
    // The action label has one value per catalogue entry: only series that happen are
    // created, but the family is announced with the commonest one.
    requests_counter("other", "error").increment(0);
}

/// The handles of the per-request series, bound to the process-wide recorder.
struct Bound {
    request_duration: Histogram,
    decision_duration: Histogram,
    upstream_duration: Histogram,
    inflight: Gauge,
    /// [`METADATA_CACHE`] by result: hit, negative_hit, miss.
    cache: [Counter; 3],
    /// [`REQUESTS`] by action (catalogue order, then `other`) and decision ([`DECISIONS`]).
    /// Each is created on first use: registering a series exports it, and only the
    /// action/decision pairs that happen are to be exported.
    requests: Box<[[OnceLock<Counter>; DECISIONS.len()]]>,
}

static BOUND: OnceLock<Bound> = OnceLock::new();

/// Binds the per-request handles to the process-wide recorder. Call once ramgate's
/// recorder is installed (a handle taken before would stay bound to the no-op recorder);
/// until then, and if never, every metric is looked up through the macros.
pub(crate) fn bind() {
    BOUND.get_or_init(|| Bound {
        request_duration: histogram!(REQUEST_DURATION),
        decision_duration: histogram!(DECISION_DURATION),
        upstream_duration: histogram!(UPSTREAM_DURATION),
        inflight: gauge!(INFLIGHT),
        cache: ["hit", "negative_hit", "miss"].map(cache_counter),
        requests: (0..=crate::catalogue::all().len())
            .map(|_| Default::default())
            .collect(),
    });
}

/// The bound handle of a series, else the one the macros find now.
fn series<T: Clone>(
    bound: impl FnOnce(&'static Bound) -> &'static T,
    lookup: impl FnOnce() -> T,
) -> Cow<'static, T> {
    match BOUND.get() {
        Some(handles) => Cow::Borrowed(bound(handles)),
        None => Cow::Owned(lookup()),
    }
}

fn requests_counter(action: &'static str, decision: &'static str) -> Counter {
    counter!(REQUESTS, "action" => action, "decision" => decision)
}

fn cache_counter(result: &'static str) -> Counter {
    counter!(METADATA_CACHE, "result" => result)
}

impl Bound {
    fn requests(
        &'static self,
        action: &'static str,
        decision: &'static str,
    ) -> Cow<'static, Counter> {
        let actions = crate::catalogue::all();
        let row = match actions.binary_search_by(|spec| spec.name.cmp(action)) {
            Ok(row) => Some(row),
            Err(_) => (action == "other").then_some(actions.len()),
        };
        let column = DECISIONS.iter().position(|d| *d == decision);
        let cell = row
            .zip(column)
            .and_then(|(row, column)| self.requests.get(row)?.get(column));
        // Actions come from the catalogue (else `other`) and decisions from a fixed set: a
        // label this table does not know cannot happen, and would be looked up by name.
        match cell {
            Some(cell) => Cow::Borrowed(cell.get_or_init(|| requests_counter(action, decision))),
            None => Cow::Owned(requests_counter(action, decision)),
        }
    }
}

pub(crate) fn request(action: &'static str, decision: &'static str, elapsed: Duration) {
    match BOUND.get() {
        Some(bound) => bound.requests(action, decision),
        None => Cow::Owned(requests_counter(action, decision)),
    }
    .increment(1);
    series(|b| &b.request_duration, || histogram!(REQUEST_DURATION)).record(elapsed.as_secs_f64());
}

pub(crate) fn decision(elapsed: Duration) {
    series(|b| &b.decision_duration, || histogram!(DECISION_DURATION))
        .record(elapsed.as_secs_f64());
}

pub(crate) fn upstream(elapsed: Duration) {
    series(|b| &b.upstream_duration, || histogram!(UPSTREAM_DURATION))
        .record(elapsed.as_secs_f64());
}

pub(crate) fn metadata_lookup(elapsed: Duration) {
    histogram!(METADATA_LOOKUP_DURATION).record(elapsed.as_secs_f64());
}

pub(crate) fn metadata_lookup_failed() {
    counter!(METADATA_LOOKUP_ERRORS).increment(1);
}

pub(crate) fn cache(hits: u32, negative_hits: u32, misses: u32) {
    for (i, (result, n)) in [
        ("hit", hits),
        ("negative_hit", negative_hits),
        ("miss", misses),
    ]
    .into_iter()
    .enumerate()
    {
        if n > 0 {
            series(|b| &b.cache[i], || cache_counter(result)).increment(u64::from(n));
        }
    }
}

pub(crate) fn inflight(delta: f64) {
    series(|b| &b.inflight, || gauge!(INFLIGHT)).increment(delta);
}

/// A reload attempt: counted by result; a success also sets the generation in use and the
/// time of the last successful load.
pub(crate) fn reload(success: bool, generation: u64) {
    let result = if success { "success" } else { "error" };
    counter!(RELOADS, "result" => result).increment(1);
    if success {
        snapshot_loaded(generation, SystemTime::now());
    }
}

/// A snapshot is in use (the first one at start-up, which is not a reload, or a reloaded
/// one): its generation and when it was loaded.
pub(crate) fn snapshot_loaded(generation: u64, loaded_at: SystemTime) {
    gauge!(GENERATION).set(generation as f64);
    let unix = loaded_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(LAST_RELOAD_SUCCESS).set(unix.as_secs_f64());
}

/// Why a decision-log line was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DroppedBecause {
    /// An allow found the buffer full (the label keeps its first name, `queue_full`).
    QueueFull,
    /// The sink failed to take the line.
    WriteFailed,
}

impl DroppedBecause {
    fn as_str(self) -> &'static str {
        match self {
            DroppedBecause::QueueFull => "queue_full",
            DroppedBecause::WriteFailed => "write_failed",
        }
    }
}

pub(crate) fn decision_log_dropped(because: DroppedBecause, lines: u64) {
    counter!(DECISION_LOG_DROPPED, "reason" => because.as_str()).increment(lines);
}

/// A refresh of the upstream credential from `source` (one of [`REFRESHING_SOURCES`]).
pub(crate) fn credential_refresh(source: &'static str, success: bool) {
    let result = if success { "success" } else { "error" };
    counter!(CREDENTIAL_REFRESHES, "source" => source, "result" => result).increment(1);
}

/// An upstream answer that rejected ramgate's credential (`code` from [`AUTH_FAILURE_CODES`]).
pub(crate) fn upstream_auth_failure(code: &'static str) {
    counter!(UPSTREAM_AUTH_FAILURES, "code" => code).increment(1);
}

pub(crate) fn tls_handshake_failed() {
    counter!(TLS_HANDSHAKE_FAILURES).increment(1);
}

/// Whether this replica's Redis subscription is up.
pub fn cluster_connected(up: bool) {
    gauge!(CLUSTER_CONNECTED).set(if up { 1.0 } else { 0.0 });
}

/// One invalidation message `sent` or `received`.
pub fn cluster_invalidation(direction: &'static str) {
    counter!(CLUSTER_INVALIDATIONS, "direction" => direction).increment(1);
}

/// One failed Redis operation.
pub fn cluster_error() {
    counter!(CLUSTER_ERRORS).increment(1);
}

/// The metric names in a Prometheus text exposition (histogram series under their base
/// name), for the checks that the list above and the dashboard agree with what is served.
pub fn rendered_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the exporter renders after [`register`] alone, through a local recorder (the
    /// global one belongs to the process).
    fn rendered_after_register() -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, register);
        handle.render()
    }

    #[test]
    fn every_listed_metric_is_exported_from_the_start_and_nothing_else() {
        let text = rendered_after_register();
        let names = rendered_names(&text);
        let listed: std::collections::BTreeSet<String> =
            NAMES.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(names, listed, "rendered:\n{text}");
        assert!(NAMES.iter().all(|n| n.starts_with("ramgate_")));
    }

    #[test]
    fn histograms_have_buckets_from_10us_to_10s() {
        let text = rendered_after_register();
        for h in [
            REQUEST_DURATION,
            DECISION_DURATION,
            UPSTREAM_DURATION,
            METADATA_LOOKUP_DURATION,
        ] {
            let les: Vec<f64> = text
                .lines()
                .filter(|l| l.starts_with(&format!("{h}_bucket{{")))
                .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
                .collect();
            assert_eq!(les.first(), Some(&0.00001), "{h}: {les:?}");
            assert_eq!(les.iter().rev().nth(1), Some(&10.0), "{h}: {les:?}");
            assert!(les.last().is_some_and(|l| l.is_infinite()), "{h}: {les:?}");
        }
    }

    #[test]
    fn labelled_series_exist_at_zero_before_any_event() {
        let text = rendered_after_register();
        for series in [
            "ramgate_policy_reloads_total{result=\"success\"} 0",
            "ramgate_policy_reloads_total{result=\"error\"} 0",
            "ramgate_metadata_cache_requests_total{result=\"negative_hit\"} 0",
            "ramgate_tls_handshake_failures_total 0",
        ] {
            assert!(text.lines().any(|l| l == series), "{series} in\n{text}");
        }
    }

    #[test]
    fn rendered_names_strip_histogram_suffixes() {
        let text = "# HELP x_seconds t\nx_seconds_bucket{le=\"1\"} 0\nx_seconds_sum 0\nx_seconds_count 0\ny_total{a=\"b\"} 1\nz 2\n";
        let names: Vec<String> = rendered_names(text).into_iter().collect();
        assert_eq!(names, ["x_seconds", "y_total", "z"]);
    }
}
