//! Helpers for the operations tests (`tests/ops_*.rs`), on top of `tests/support`: a
//! private copy of the demo policy directory, calls as a principal, and reading `/metrics`
//! and `/v1/status` (container groups are seeded with `support::seed_group`).
//!
//! Test helpers panic with a message on failure: that is how a test fails.

#![allow(dead_code)] // each test crate uses a different part

use crate::support::{as_user, get_json, post_query, request};
use hyper::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "1234567890123456";
pub const REGION: &str = "cn-hangzhou";

/// The shipped demo policy directory, `config/policies`.
pub fn demo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies")
}

/// A temporary copy of `config/policies`, which the test may then rewrite.
pub fn policy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for entry in std::fs::read_dir(demo_policies()).expect("config/policies") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            let name = path.file_name().expect("a file name");
            std::fs::copy(&path, dir.path().join(name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
    }
    dir
}

/// The demo directory's files as text: `[(file name, contents)]`.
pub fn demo_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(demo_policies())
        .expect("config/policies")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).expect("a name");
            (
                name.to_owned(),
                std::fs::read_to_string(&p).expect("readable"),
            )
        })
        .collect();
    files.sort();
    files
}

/// Replaces `path`'s contents at once (write a temporary file, then rename it), as careful
/// tools and editors do. The temporary name ends in `.tmp`, which ramgate ignores.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// `POST /?Action=<action>&Version=2018-08-08&RegionId=cn-hangzhou&<params>` as `who`
/// (`root` or a user name), identified by the trusted header.
pub async fn call(
    proxy: SocketAddr,
    who: &str,
    action: &str,
    params: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut query = vec![
        ("Action", action),
        ("Version", "2018-08-08"),
        ("RegionId", REGION),
    ];
    query.extend_from_slice(params);
    let principal = as_user(who);
    let (status, _, body) = post_query(
        proxy,
        &query,
        &[("x-ramgate-principal", principal.as_str())],
    )
    .await;
    (status, body)
}

/// Sets backend fault toggles, e.g. `delay_ms=1500` or `fail_describe=true`.
pub async fn faults(backend: SocketAddr, query: &str) {
    let (status, _, body) = request(
        backend,
        "POST",
        &format!("/_backend/faults?{query}"),
        &[],
        "",
    )
    .await;
    assert!(status.is_success(), "faults {query}: {body:?}");
}

/// `/v1/status` of the admin listener.
pub async fn status(admin: SocketAddr) -> Value {
    let (code, body) = get_json(admin, "/v1/status").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// The `/metrics` text of the admin listener.
pub async fn metrics(admin: SocketAddr) -> String {
    let (code, headers, body) = request(admin, "GET", "/metrics", &[], "").await;
    assert_eq!(code, StatusCode::OK);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of the series `name{labels}` (exactly those labels, in any order) in a
/// Prometheus text exposition, if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, mut got) = match series.split_once('{') {
                Some((n, rest)) => (
                    n,
                    rest.trim_end_matches('}')
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            got.sort();
            (series_name == name && got == want).then(|| value.parse().ok())?
        })
}

/// Like [`sample`], but the series must be there.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels)
        .unwrap_or_else(|| panic!("no series {name}{labels:?} in /metrics:\n{text}"))
}

/// Polls `check` every 25 ms until it returns `Some`, at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
