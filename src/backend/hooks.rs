//! The test hooks under `/_backend/`: the log of requests received at `/`, a view of the
//! state, and fault toggles. See the module documentation of [`crate::backend`].

use super::params::Params;
use super::reply::json_response;
use super::{Shared, ACTIONS};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The log keeps the most recent requests only, so that a benchmark cannot exhaust memory.
pub const MAX_RECORDED: usize = 10_000;

/// One request received at `/`, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

impl RecordedRequest {
    pub fn new(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            map.entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        Self {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            headers: map,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// Misbehaviours a test can switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Describe (and `ListTagResources`) ignore every filter and list all groups.
    pub ignore_filters: bool,
    /// Every `DescribeContainerGroups` is answered 500 `InternalError`.
    pub fail_describe: bool,
    /// Every answer at `/` is delayed this long.
    pub delay_ms: u64,
    /// Whether requests at `/` are recorded (on by default; off for benchmarks).
    pub record_requests: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            ignore_filters: false,
            fail_describe: false,
            delay_ms: 0,
            record_requests: true,
        }
    }
}

/// [`Faults`] in atomics: read on every request without a lock.
#[derive(Debug)]
pub struct FaultFlags {
    ignore_filters: AtomicBool,
    fail_describe: AtomicBool,
    delay_ms: AtomicU64,
    record_requests: AtomicBool,
}

impl Default for FaultFlags {
    fn default() -> Self {
        let flags = Self {
            ignore_filters: AtomicBool::new(false),
            fail_describe: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            record_requests: AtomicBool::new(true),
        };
        flags.set(Faults::default());
        flags
    }
}

impl FaultFlags {
    pub fn get(&self) -> Faults {
        Faults {
            ignore_filters: self.ignore_filters.load(Ordering::Relaxed),
            fail_describe: self.fail_describe.load(Ordering::Relaxed),
            delay_ms: self.delay_ms.load(Ordering::Relaxed),
            record_requests: self.record_requests.load(Ordering::Relaxed),
        }
    }

    pub fn set(&self, f: Faults) {
        self.ignore_filters
            .store(f.ignore_filters, Ordering::Relaxed);
        self.fail_describe.store(f.fail_describe, Ordering::Relaxed);
        self.delay_ms.store(f.delay_ms, Ordering::Relaxed);
        self.record_requests
            .store(f.record_requests, Ordering::Relaxed);
    }
}

/// The most recent requests received at `/`.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<RecordedRequest>>,
}

impl RequestLog {
    pub fn push(&self, r: RecordedRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_RECORDED {
            entries.pop_front();
        }
        entries.push_back(r);
    }

    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Empties the log; returns how many entries it had.
    pub fn clear(&self) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let n = entries.len();
        entries.clear();
        n
    }
}

/// Answers a request under `/_backend/`; `hook` is the path after that prefix.
pub fn handle(shared: &Shared, method: &Method, hook: &str, query: &str) -> Response<Full<Bytes>> {
    let ok = |body: Value| json_response(StatusCode::OK, &body, None);
    match (method.as_str(), hook) {
        ("GET", "requests") => {
            ok(serde_json::to_value(shared.requests.snapshot()).unwrap_or(Value::Null))
        }
        ("DELETE", "requests") => ok(json!({"cleared": shared.requests.clear()})),
        ("GET", "state") => ok(state(shared)),
        ("DELETE", "state") => {
            shared.reset();
            ok(state(shared))
        }
        ("GET", "faults") => ok(json!(shared.faults.get())),
        ("POST", "faults") => match parse_faults(shared.faults.get(), query) {
            Ok(faults) => {
                shared.faults.set(faults);
                tracing::info!(?faults, "backend faults changed");
                ok(json!(faults))
            }
            Err(message) => {
                json_response(StatusCode::BAD_REQUEST, &json!({"error": message}), None)
            }
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no test hook {method} /_backend/{hook}")}),
            None,
        ),
    }
}

fn state(shared: &Shared) -> Value {
    let groups: Vec<Value> = shared.store.read().iter().map(|g| g.state_json()).collect();
    let calls: serde_json::Map<String, Value> = ACTIONS
        .iter()
        .map(|a| ((*a).to_owned(), json!(shared.call_count(a))))
        .collect();
    json!({
        "groups": groups,
        "describe_calls": shared.call_count("DescribeContainerGroups"),
        "calls": calls,
        "requests_total": shared.requests_total.load(Ordering::Relaxed),
        "cloud": shared.cloud.to_json(),
        "faults": shared.faults.get(),
    })
}

/// Applies the toggles present in `query` to `current`; absent ones are unchanged.
fn parse_faults(mut faults: Faults, query: &str) -> Result<Faults, String> {
    let params = Params::parse(query, None).map_err(|e| e.message)?;
    let flag = |name: &str| {
        params
            .get(name)
            .map(|_| params.flag(name).map_err(|e| e.message))
            .transpose()
    };
    if let Some(v) = flag("ignore_filters")? {
        faults.ignore_filters = v;
    }
    if let Some(v) = flag("fail_describe")? {
        faults.fail_describe = v;
    }
    if let Some(v) = flag("record_requests")? {
        faults.record_requests = v;
    }
    if let Some(v) = params.get("delay_ms") {
        faults.delay_ms = v
            .parse()
            .map_err(|_| format!("delay_ms must be a whole number of milliseconds, not {v:?}"))?;
    }
    const KNOWN: [&str; 4] = [
        "ignore_filters",
        "fail_describe",
        "record_requests",
        "delay_ms",
    ];
    let unknown: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|k| !k.is_empty() && !KNOWN.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown fault toggles {unknown:?}; known: {KNOWN:?}"
        ));
    }
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_toggles_change_only_what_is_named() {
        let f = parse_faults(Faults::default(), "fail_describe=true&delay_ms=15").unwrap();
        assert_eq!(
            f,
            Faults {
                fail_describe: true,
                delay_ms: 15,
                ..Faults::default()
            }
        );
        let f = parse_faults(f, "fail_describe=false").unwrap();
        assert_eq!(
            f,
            Faults {
                delay_ms: 15,
                ..Faults::default()
            }
        );
        assert!(parse_faults(f, "delay_ms=soon").is_err());
        assert!(parse_faults(f, "fail_everything=true").is_err());
        assert!(parse_faults(f, "ignore_filters=maybe").is_err());
    }

    #[test]
    fn the_request_log_is_bounded() {
        let log = RequestLog::default();
        for i in 0..MAX_RECORDED + 5 {
            log.push(RecordedRequest::new(
                &Method::GET,
                &format!("/?n={i}"),
                &HeaderMap::new(),
                b"",
            ));
        }
        let all = log.snapshot();
        assert_eq!(all.len(), MAX_RECORDED);
        assert_eq!(all[0].path, "/?n=5");
        assert_eq!(log.clear(), MAX_RECORDED);
    }
}
