//! The admin listener: `/metrics` (Prometheus text, rendered from our own handle),
//! `/healthz` (the process answers), `/readyz` (ready to take traffic: the first snapshot
//! is loaded and the listeners are up; not while draining), `/v1/status` (the snapshot's
//! generation, load time, content hash, files, and the last reload error).
//!
//! It outlives the proxy listener on shutdown: while the proxy drains, `/readyz` answers
//! 503 so that a load balancer stops sending traffic, and `/metrics` still shows the drain;
//! it stops only once the proxy is done (see [`serve_until`]).

use super::store::PolicyStore;
use crate::cluster::Cluster;
use crate::config::Mode;
use crate::net::{self, ServeOptions, Shutdown};
use crate::response::Body;
use crate::upstream::credentials::Credentials;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and creates every metric at zero. Metrics
/// recorded before this are lost, so `serve` calls it before loading anything. `None` if
/// another recorder was installed first (then `/metrics` is empty).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = crate::ops::metrics::builder().install_recorder().ok()?;
            crate::ops::metrics::register();
            crate::ops::metrics::bind();
            Some(handle)
        })
        .as_ref()
}

/// What the admin endpoints report on, handed over by whoever composes the process.
pub(crate) struct Sources {
    pub(crate) store: Arc<PolicyStore>,
    pub(crate) mode: Mode,
    /// With `signing = "acs3"`: ramgate's own credential (`/readyz` waits for it).
    pub(crate) upstream_credentials: Option<Credentials>,
    /// `[cluster]`: the link to the replicas' shared Redis.
    pub(crate) cluster: Option<Arc<Cluster>>,
}

/// Serves the admin endpoints; `/readyz` turns 503 once `draining` is triggered, and the
/// listener stops on `stop` (triggered once the proxy has drained).
pub(crate) async fn serve_until(
    sources: Sources,
    listener: tokio::net::TcpListener,
    draining: Shutdown,
    stop: Shutdown,
) {
    let sources = Arc::new(sources);
    if let Some(handle) = prometheus() {
        // The gauges of the snapshot in use, in case it was loaded before the recorder
        // was installed; then keep the histograms' memory bounded.
        let snapshot = sources.store.current();
        crate::ops::metrics::snapshot_loaded(snapshot.generation, snapshot.loaded_at);
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    _ = stop.wait() => return,
                }
            }
        });
    }
    let make = move |_peer| {
        let (sources, draining) = (sources.clone(), draining.clone());
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let response = route(&sources, &draining, req.uri().path());
            async move { Ok::<_, std::convert::Infallible>(response) }
        })
    };
    let opts = ServeOptions {
        name: "admin".into(),
        max_connections: 256,
        header_read_timeout: Some(Duration::from_secs(5)),
        grace: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    net::serve(listener, make, opts, stop).await;
}

fn route(sources: &Sources, draining: &Shutdown, path: &str) -> Response<Body> {
    match path {
        "/metrics" => text(
            StatusCode::OK,
            prometheus().map(|h| h.render()).unwrap_or_default(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        // State exists only once the first snapshot loaded, and the admin listener is
        // started after the proxy listener is bound: answering at all means both hold.
        "/readyz" if draining.is_triggered() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining\n".into(),
            "text/plain",
        ),
        // With signing = "acs3", every call would be a 503 until a credential is held.
        "/readyz"
            if sources
                .upstream_credentials
                .as_ref()
                .is_some_and(|c| c.current().is_err()) =>
        {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no valid upstream credential yet\n".into(),
                "text/plain",
            )
        }
        "/readyz" => text(StatusCode::OK, "ready\n".into(), "text/plain"),
        "/v1/status" => text(
            StatusCode::OK,
            status(sources, draining).to_string(),
            "application/json",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics /healthz /readyz /v1/status\n".into(),
            "text/plain",
        ),
    }
}

/// The `/v1/status` document.
fn status(sources: &Sources, draining: &Shutdown) -> serde_json::Value {
    let (store, mode) = (&sources.store, sources.mode);
    let snapshot = store.current();
    json!({
        "generation": snapshot.generation,
        "loaded_at": crate::ops::reload::rfc3339(snapshot.loaded_at),
        "content_hash": snapshot.content_hash_hex(),
        "files": snapshot.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "mode": match mode {
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        },
        "draining": draining.is_triggered(),
        "last_reload": store.reload_state().last_attempt(),
        "last_reload_error": store.reload_state().last_error(),
        "upstream_credentials": sources.upstream_credentials.as_ref().map(|c| c.status()),
        "cluster": sources.cluster.as_ref().map(|c| c.status()),
    })
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
