//! An in-memory, ECI-compatible container-group service: what `ramgate backend --listen
//! ADDR` runs, and what the demo, the integration tests and the benchmarks put behind the
//! proxy. It does no authentication or authorization (ramgate in front does that) and
//! ignores `x-ramgate-principal` and signature parameters.
//!
//! # API (path `/`, GET or POST)
//! The action comes from the `x-acs-action` header (V3) or the `Action` parameter (RPC);
//! if both are given they must agree. Parameters come from the query string plus an
//! `application/x-www-form-urlencoded` body; a parameter given twice is refused. Answers are
//! Alibaba-shaped JSON with a `RequestId`; errors are
//! `{"RequestId","HostId":"ramgate-backend","Code","Message"}`.
//!
//! Actions: `CreateContainerGroup`, `DescribeContainerGroups` (filters `RegionId`,
//! `ContainerGroupIds`, `ResourceGroupId`, `Tag.N`, `ContainerGroupName`, `Status`; `Limit`
//! 1..=20, default 20; `NextToken` pages in creation order), `DeleteContainerGroup`,
//! `RestartContainerGroup`, `UpdateContainerGroup` (`Tag.N` add or replace; a different
//! `ResourceGroupId` is 400 `OperationDenied.ResourceGroupImmutable`), `DescribeContainerLog`,
//! `ExportContainerGroupTemplate`, `ExecContainerCommand`, `TagResources`, `UntagResources`,
//! `ListTagResources`. Anything else, or another path, is 404 `InvalidAction.NotFound`.
//!
//! # Test hooks (outside `/`; plain JSON, no `RequestId`)
//! * `GET /_backend/requests`: every request received at `/` (most recent 10 000), as
//!   `[{"method","path" (path and query),"headers" {lower-case name: value},"body"}]`.
//! * `DELETE /_backend/requests`: clears that log; answers `{"cleared": n}`.
//! * `GET /_backend/state`: `{"groups":[{"id","name","region","resource_group","tags"
//!   {key: value},"status","restart_count","containers" [names],"created"}],
//!   "describe_calls": n, "calls": {action: n}, "requests_total": n, "faults": {..},
//!   "cloud": {"verified": n, "rejected": {code: n}, "with_ramgate_header": n}}` (`cloud`:
//!   what the cloud listener of cloud mode, [`cloud`], saw).
//!   `describe_calls` counts every `DescribeContainerGroups` received (failed ones too), so a
//!   test can check that a cache made no lookup.
//! * `DELETE /_backend/state`: forgets every group, counter, recorded request and fault
//!   (but not the `cloud` counters, which cover the cloud listener's whole life, so that a
//!   test can reset the world between cases and still check every call ever signed).
//! * `GET /_backend/faults`, and `POST /_backend/faults?ignore_filters=true|false&
//!   fail_describe=true|false&delay_ms=N&record_requests=true|false`: toggles (absent ones
//!   are unchanged). `ignore_filters` makes Describe and `ListTagResources` ignore every
//!   filter and list everything (to prove a proxy filters item by item); `fail_describe`
//!   answers every Describe with 500 `InternalError`; `delay_ms` delays every answer at `/`;
//!   `record_requests=false` stops the request log (for benchmarks).

mod actions;
pub mod cloud;
mod group;
mod hooks;
mod paging;
mod params;
mod reply;
mod store;
#[cfg(test)]
mod tests;

pub use group::{Container, NewGroup, DEFAULT_RESOURCE_GROUP};
pub use hooks::{Faults, RecordedRequest};
pub use reply::HOST_ID;

use crate::model::ContainerGroupMeta;
use crate::net::{self, ServeOptions, Shutdown};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::CONTENT_TYPE;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use reply::ApiError;
use serde_json::Value;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The actions this service implements (and counts, see `/_backend/state`).
pub const ACTIONS: [&str; 11] = [
    "CreateContainerGroup",
    "DescribeContainerGroups",
    "DeleteContainerGroup",
    "RestartContainerGroup",
    "UpdateContainerGroup",
    "DescribeContainerLog",
    "ExportContainerGroupTemplate",
    "ExecContainerCommand",
    "TagResources",
    "UntagResources",
    "ListTagResources",
];

/// Bodies larger than this are refused (the API only ever carries small forms).
const MAX_BODY_BYTES: usize = 8 << 20;

/// The service's state, shared by every connection.
#[derive(Debug, Default)]
struct Shared {
    store: store::Store,
    faults: hooks::FaultFlags,
    requests: hooks::RequestLog,
    requests_total: AtomicU64,
    calls: [AtomicU64; ACTIONS.len()],
    cloud: cloud::CloudStats,
}

impl Shared {
    fn call_count(&self, action: &str) -> u64 {
        ACTIONS
            .iter()
            .position(|a| *a == action)
            .map_or(0, |i| self.calls[i].load(Ordering::Relaxed))
    }

    fn reset(&self) {
        self.store.write().clear();
        self.requests.clear();
        self.faults.set(Faults::default());
        self.requests_total.store(0, Ordering::Relaxed);
        self.calls
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
    }

    /// Parses and runs one API call.
    fn call(&self, parts: &Parts, body: &[u8], faults: Faults) -> Result<Value, ApiError> {
        if parts.method != Method::GET && parts.method != Method::POST {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnsupportedHTTPMethod",
                format!(
                    "The HTTP method {} is not supported; use GET or POST.",
                    parts.method
                ),
            ));
        }
        let params = params::Params::parse(
            parts.uri.query().unwrap_or(""),
            form_body(&parts.headers, body)?,
        )?;
        let action = action(&parts.headers, &params)?;
        if let Some(i) = ACTIONS.iter().position(|a| *a == action) {
            self.calls[i].fetch_add(1, Ordering::Relaxed);
        }
        if faults.fail_describe && action == "DescribeContainerGroups" {
            return Err(ApiError::internal(
                "The request processing has failed due to some unknown error (injected fault).",
            ));
        }
        actions::dispatch(self, action, &params)
    }
}

/// The form body, when there is one.
fn form_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Option<&'a str>, ApiError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form || body.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(body)
        .map(Some)
        .map_err(|_| ApiError::invalid("The form body is not valid UTF-8."))
}

/// The action, from `x-acs-action` or `Action`; both must agree when both are given.
fn action<'a>(headers: &'a HeaderMap, params: &'a params::Params) -> Result<&'a str, ApiError> {
    let header = match headers.get("x-acs-action") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("The x-acs-action header is not valid."))?,
        ),
    };
    match (header, params.optional("Action")) {
        (Some(h), Some(p)) if h != p => Err(ApiError::invalid(format!(
            "The action in x-acs-action ({h}) and in Action ({p}) differ."
        ))),
        (Some(a), _) | (None, Some(a)) if !a.is_empty() => Ok(a),
        _ => Err(ApiError::missing("Action")),
    }
}

/// The in-memory service. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct Backend {
    shared: Arc<Shared>,
}

impl Backend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a group directly (for seeding a demo); returns its id.
    pub fn create(&self, spec: NewGroup) -> String {
        self.shared.store.write().insert(spec).id.clone()
    }

    /// A group's resource group and tags.
    pub fn get(&self, id: &str) -> Option<ContainerGroupMeta> {
        self.shared.store.read().get(id).map(|g| g.meta())
    }

    /// How many calls of `action` were received (0 for an action not in [`ACTIONS`]).
    pub fn call_count(&self, action: &str) -> u64 {
        self.shared.call_count(action)
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// The most recent requests received at `/`.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.snapshot()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.clear();
    }

    /// Answers one HTTP request (API call or test hook).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.handle_as(req, None).await
    }

    /// Answers one HTTP request; with `cloud`, only validly signed API calls (no hooks).
    async fn handle_as<B>(
        &self,
        req: Request<B>,
        cloud: Option<&cloud::CloudAuth>,
    ) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        if let (Some(hook), None) = (path.strip_prefix("/_backend/"), cloud) {
            return hooks::handle(
                &self.shared,
                &parts.method,
                hook,
                parts.uri.query().unwrap_or(""),
            );
        }
        if path != "/" {
            return reply::error(&ApiError::unknown_action());
        }
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return reply::error(&ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLarge",
                    format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
                ))
            }
            Err(e) => {
                return reply::error(&ApiError::invalid(format!(
                    "The request body could not be read: {e}"
                )))
            }
        };
        self.shared.requests_total.fetch_add(1, Ordering::Relaxed);
        if let Some(auth) = cloud {
            if let Err(e) = auth.check(&self.shared.cloud, &parts, &body) {
                return reply::error(&e);
            }
        }
        let faults = self.shared.faults.get();
        if faults.record_requests {
            let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            self.shared.requests.push(RecordedRequest::new(
                &parts.method,
                path_and_query,
                &parts.headers,
                &body,
            ));
        }
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        match self.shared.call(&parts, &body, faults) {
            Ok(answer) => reply::ok(answer),
            Err(e) => {
                tracing::debug!(code = e.code, "backend answers an error: {}", e.message);
                reply::error(&e)
            }
        }
    }

    /// Serves on `listener` until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) {
        let opts = ServeOptions {
            name: "backend".to_owned(),
            grace: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        net::serve(
            listener,
            move |_peer| {
                let backend = self.clone();
                service_fn(move |req| {
                    let backend = backend.clone();
                    async move { Ok::<_, Infallible>(backend.handle(req).await) }
                })
            },
            opts,
            shutdown,
        )
        .await;
    }
}

/// Cloud mode (see [`cloud`]): where and how the backend plays Alibaba Cloud.
pub struct CloudMode {
    pub listen: SocketAddr,
    /// `None`: plain HTTP (the tests of credential sources need no TLS).
    pub tls: Option<crate::config::Tls>,
    pub key: cloud::CloudKey,
}

impl Backend {
    /// Serves the cloud listener (HTTPS with `tls`, signed calls only) until `shutdown`.
    pub async fn serve_cloud(
        self,
        listener: TcpListener,
        tls: Option<crate::net::tls::TlsAcceptor>,
        auth: cloud::CloudAuth,
        shutdown: Shutdown,
    ) {
        let opts = ServeOptions {
            name: "cloud".to_owned(),
            grace: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        let auth = Arc::new(auth);
        let make = move || {
            let (backend, auth) = (self.clone(), auth.clone());
            service_fn(move |req| {
                let (backend, auth) = (backend.clone(), auth.clone());
                async move { Ok::<_, Infallible>(backend.handle_as(req, Some(&auth)).await) }
            })
        };
        match tls {
            Some(acceptor) => {
                net::serve_with(listener, acceptor, move |_conn| make(), opts, shutdown).await
            }
            None => net::serve(listener, move |_peer| make(), opts, shutdown).await,
        }
    }
}

/// Binds `addr`, logs `listening backend <addr>`, and serves until Ctrl-C or SIGTERM; with
/// `cloud`, also the cloud listener (`listening cloud <addr>`), sharing the same state.
pub async fn run(addr: SocketAddr, cloud: Option<CloudMode>) -> io::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let listener = net::bind("backend", addr).await?;
    let backend = Backend::new();
    let cloud_task = match cloud {
        Some(mode) => {
            let (_, serving) = spawn_cloud(backend.clone(), mode, shutdown.clone()).await?;
            Some(tokio::spawn(serving))
        }
        None => None,
    };
    backend.serve(listener, shutdown).await;
    if let Some(task) = cloud_task {
        let _ = task.await;
    }
    Ok(())
}

/// Binds the cloud listener of `mode`; returns its address and the future that serves it.
pub async fn spawn_cloud(
    backend: Backend,
    mode: CloudMode,
    shutdown: Shutdown,
) -> io::Result<(
    SocketAddr,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    let acceptor = match &mode.tls {
        Some(tls) => Some(
            crate::net::tls::TlsAcceptor::from_config(tls)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    let listener = net::bind("cloud", mode.listen).await?;
    let addr = listener.local_addr()?;
    Ok((
        addr,
        backend.serve_cloud(
            listener,
            acceptor,
            cloud::CloudAuth::new(mode.key),
            shutdown,
        ),
    ))
}

/// A backend serving in a background task (for the demo and in-process tests).
#[derive(Debug)]
pub struct Spawned {
    pub addr: SocketAddr,
    /// The running service's state, for seeding and inspection.
    pub backend: Backend,
    pub shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl Spawned {
    /// Triggers the shutdown and waits for the server to finish draining.
    pub async fn stop(self) {
        self.shutdown.trigger();
        if let Err(e) = self.task.await {
            tracing::warn!("backend task ended abnormally: {e}");
        }
    }
}

/// Binds `addr`, logs `listening backend <addr>`, and serves in a background task until
/// `shutdown` is triggered.
pub async fn spawn(addr: SocketAddr, shutdown: Shutdown) -> io::Result<Spawned> {
    let listener = net::bind("backend", addr).await?;
    let addr = listener.local_addr()?;
    let backend = Backend::new();
    let task = tokio::spawn(backend.clone().serve(listener, shutdown.clone()));
    Ok(Spawned {
        addr,
        backend,
        shutdown,
        task,
    })
}
