//! `ramgate serve`: the enforcing proxy. [`State`] holds what every request reads (the
//! configuration, the current policy snapshot behind one `arc-swap`, the metadata client,
//! the upstream pool); [`handler`] runs one request through identity → parsing → metadata
//! → decision → forward → filtering; [`run`] wires the listeners, reload and shutdown.

mod handler;
mod outcome;

pub use handler::handle;

use crate::config::{Config, Mode};
use crate::identity::signature::NonceCache;
use crate::metadata::MetadataClient;
use crate::net::{self, ServeOptions, Shutdown};
use crate::ops::decision_log::DecisionLog;
use crate::snapshot::Snapshot;
use crate::upstream::Upstream;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request reads. Shared by all connections.
pub struct State {
    pub config: Config,
    pub snapshot: ArcSwap<Snapshot>,
    pub metadata: MetadataClient,
    pub upstream: Upstream,
    pub nonces: NonceCache,
    pub decision_log: DecisionLog,
}

impl State {
    /// Loads the policy directory (every problem reported) and prepares the clients.
    pub fn new(config: Config) -> Result<Arc<State>, String> {
        let mut snapshot =
            Snapshot::load(&config.policy.dir, config.account()).map_err(|d| d.to_string())?;
        for warning in &snapshot.warnings {
            tracing::warn!("{warning}");
        }
        snapshot.generation = 1;
        crate::ops::metrics::reload(true, 1);
        let upstream = Upstream::new(&config.upstream.url, config.upstream.timeout_ms)?;
        let metadata = MetadataClient::new(
            upstream.clone(),
            Duration::from_millis(config.metadata.ttl_ms),
            Duration::from_millis(config.metadata.negative_ttl_ms),
            config.metadata.max_entries,
        );
        let decision_log = DecisionLog::open(&config.log)?;
        let nonces = NonceCache::new(Duration::from_secs(config.identity.max_clock_skew_secs));
        Ok(Arc::new(State {
            snapshot: ArcSwap::from_pointee(snapshot),
            metadata,
            upstream,
            nonces,
            decision_log,
            config,
        }))
    }

    pub fn dry_run(&self) -> bool {
        self.config.mode == Mode::DryRun
    }
}

/// Serves the proxy listener until `shutdown`; returns once drained.
pub async fn serve(state: Arc<State>, listener: tokio::net::TcpListener, shutdown: Shutdown) {
    let listen = &state.config.listen;
    let opts = ServeOptions {
        name: "proxy".into(),
        max_connections: listen.max_connections,
        header_read_timeout: Some(Duration::from_millis(listen.header_read_timeout_ms)),
        grace: Duration::from_millis(state.config.shutdown.grace_ms),
        ..ServeOptions::default()
    };
    let make = move |peer| {
        let state = state.clone();
        let peer = crate::identity::Peer {
            addr: peer,
            secure: false,
            client_id: None,
        };
        hyper::service::service_fn(move |req| {
            let (state, peer) = (state.clone(), peer.clone());
            async move { Ok::<_, std::convert::Infallible>(handle(state, peer, req).await) }
        })
    };
    net::serve(listener, make, opts, shutdown).await;
}

/// `ramgate serve --config FILE`.
pub async fn run(config: Config) -> Result<(), String> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let state = State::new(config)?;
    let listener = net::bind("proxy", state.config.listen.addr)
        .await
        .map_err(|e| e.to_string())?;
    let admin = net::bind("admin", state.config.admin.addr)
        .await
        .map_err(|e| e.to_string())?;
    crate::ops::reload::spawn(state.clone(), shutdown.clone());
    let admin_task = tokio::spawn(crate::ops::admin::serve(
        state.clone(),
        admin,
        shutdown.clone(),
    ));
    serve(state.clone(), listener, shutdown.clone()).await;
    let _ = admin_task.await;
    state.decision_log.flush().await;
    Ok(())
}
