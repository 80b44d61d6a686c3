//! The admin listener: `/metrics` (Prometheus text, rendered from our own handle),
//! `/healthz`, `/readyz` (ready while serving, not while draining), `/v1/status` (the
//! snapshot's generation, load time, content hash, files, and the last reload error).

use crate::net::{self, ServeOptions, Shutdown};
use crate::proxy::State;
use crate::response::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets from 10 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder once and spawns its upkeep.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .as_ref()
}

pub async fn serve(state: Arc<State>, listener: tokio::net::TcpListener, shutdown: Shutdown) {
    prometheus();
    let draining = shutdown.clone();
    let make = move |_peer| {
        let (state, draining) = (state.clone(), draining.clone());
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let response = route(&state, &draining, req.uri().path());
            async move { Ok::<_, std::convert::Infallible>(response) }
        })
    };
    let opts = ServeOptions {
        name: "admin".into(),
        max_connections: 256,
        grace: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    net::serve(listener, make, opts, shutdown).await;
}

fn route(state: &State, draining: &Shutdown, path: &str) -> Response<Body> {
    match path {
        "/metrics" => text(
            StatusCode::OK,
            prometheus().map(|h| h.render()).unwrap_or_default(),
            "text/plain; version=0.0.4",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" if draining.is_triggered() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining\n".into(),
            "text/plain",
        ),
        "/readyz" => text(StatusCode::OK, "ready\n".into(), "text/plain"),
        "/v1/status" => {
            let snapshot = state.snapshot.load();
            let loaded_at = time::OffsetDateTime::from(snapshot.loaded_at)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let body = json!({
                "generation": snapshot.generation,
                "loaded_at": loaded_at,
                "content_hash": format!("{:016x}", snapshot.content_hash),
                "files": snapshot.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "mode": if state.dry_run() { "dry-run" } else { "enforce" },
                "last_reload_error": crate::ops::reload::last_error(state),
            });
            text(StatusCode::OK, body.to_string(), "application/json")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics /healthz /readyz /v1/status\n".into(),
            "text/plain",
        ),
    }
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}
