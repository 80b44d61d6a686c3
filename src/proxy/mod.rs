//! `ramgate serve`: the enforcing proxy. `State` holds what every request reads (the
//! configuration, the policy store, the metadata client, the upstream pool, the nonce
//! store and quota counters, `[cluster]`'s link to Redis, and the decision log); `handler`
//! runs one request through the chain of stages; [`run`] wires the listeners, reload, the
//! admin listener and shutdown. `ops` serves the policy store and knows nothing of this
//! module.

mod handler;
mod record;

use handler::handle;

use crate::cluster::{Cluster, NonceStore};
use crate::config::{Config, Mode};
use crate::identity::Peer;
use crate::metadata::MetadataClient;
use crate::net::tls::{TlsAcceptor, TlsMeta};
use crate::net::{self, ConnInfo, PlainAcceptor, ServeOptions, Shutdown};
use crate::ops::decision_log::DecisionLog;
use crate::ops::store::PolicyStore;
use crate::upstream::Upstream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the decision log may take to write out its buffer at exit: a sink that takes
/// nothing (a full disk, a pipe nobody reads) must not keep the process from ending.
const LOG_FLUSH_AT_EXIT: Duration = Duration::from_secs(5);

/// Everything a request reads. Shared by all connections.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) policies: Arc<PolicyStore>,
    pub(crate) metadata: MetadataClient,
    pub(crate) upstream: Upstream,
    pub(crate) nonces: NonceStore,
    /// `[cluster]`: the link to the replicas' shared Redis.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// `[[quotas]]` counters.
    pub(crate) quotas: crate::quota::Quotas,
    pub(crate) decision_log: DecisionLog,
}

impl State {
    /// Loads the policy directory (every problem reported) and prepares the clients.
    pub(crate) fn new(config: Config) -> Result<Arc<State>, String> {
        let policies =
            PolicyStore::open(&config.policy.dir, config.account()).map_err(|d| d.to_string())?;
        let upstream = Upstream::from_config(&config.upstream)?;
        let metadata = MetadataClient::new(
            upstream.clone(),
            Duration::from_millis(config.metadata.ttl_ms),
            Duration::from_millis(config.metadata.negative_ttl_ms),
            config.metadata.max_entries,
        );
        let decision_log = DecisionLog::open(&config.log)?;
        let cluster = match &config.cluster {
            Some(settings) => Some(Cluster::new(
                settings,
                Duration::from_millis(config.metadata.ttl_ms.max(config.metadata.negative_ttl_ms)),
            )?),
            None => None,
        };
        let nonces = NonceStore::new(
            Duration::from_secs(config.identity.max_clock_skew_secs),
            cluster.clone(),
        );
        let quotas = crate::quota::Quotas::new(cluster.clone());
        Ok(Arc::new(State {
            policies: Arc::new(policies),
            metadata,
            upstream,
            nonces,
            cluster,
            quotas,
            decision_log,
            config,
        }))
    }

    /// Whether anything reads a request's decision in words: the decision log, or
    /// dry-run's "would have denied" line.
    fn wants_decision_words(&self) -> bool {
        self.decision_log.is_on() || self.config.mode == Mode::DryRun
    }
}

/// Serves the proxy listener until `shutdown`; returns once drained. With `tls` (built
/// from `[listen.tls]`) the listener speaks HTTPS (mTLS with `client_ca`), and each
/// connection's [`Peer`] says so and carries the verified client certificate's identity.
///
/// [`Peer`]: crate::identity::Peer
async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
) {
    let listen = &state.config.listen;
    let opts = ServeOptions {
        name: "proxy".into(),
        max_connections: listen.max_connections,
        header_read_timeout: Some(Duration::from_millis(listen.header_read_timeout_ms)),
        grace: Duration::from_millis(state.config.shutdown.grace_ms),
        ..ServeOptions::default()
    };
    let connect = move |peer: Peer| {
        let state = state.clone();
        hyper::service::service_fn(move |req| {
            let (state, peer) = (state.clone(), peer.clone());
            async move { Ok::<_, std::convert::Infallible>(handle(state, peer, req).await) }
        })
    };
    match tls {
        None => {
            let make = move |conn: ConnInfo| {
                connect(Peer {
                    addr: conn.peer,
                    secure: false,
                    client_id: None,
                })
            };
            net::serve_with(listener, PlainAcceptor, make, opts, shutdown).await;
        }
        Some(acceptor) => {
            let make = move |conn: ConnInfo<TlsMeta>| {
                connect(Peer {
                    addr: conn.peer,
                    secure: true,
                    client_id: conn.meta.client_id,
                })
            };
            net::serve_with(listener, acceptor, make, opts, shutdown).await;
        }
    }
}

/// `ramgate serve --config FILE`.
///
/// Shutdown (SIGTERM, SIGINT) runs in this order: `/readyz` turns 503 and the proxy
/// listener closes at once; in-flight requests finish, for at most `[shutdown] grace_ms`;
/// only then does the admin listener stop (so probes and scrapes see the drain), the
/// decision log is flushed, and `run` returns (exit 0).
pub async fn run(config: Config) -> Result<(), String> {
    run_with(config, |_, _| {}).await
}

/// [`run`], calling `ready` with the proxy's and the admin listener's real addresses once
/// both are bound (the demo prints its tour there).
pub async fn run_with(
    config: Config,
    ready: impl FnOnce(SocketAddr, SocketAddr),
) -> Result<(), String> {
    // First: metrics recorded before the recorder exists are lost.
    crate::ops::admin::prometheus();
    let draining = Shutdown::new();
    draining.trigger_on_signals();
    let state = State::new(config)?;
    // The first load's scratch is free now: give it back rather than keep its peak.
    crate::ops::memory::release_free_heap();
    // A `[listen.tls]` whose files cannot be used is a start-up error: falling back to
    // plain HTTP, or serving nothing while looking healthy, would both be worse.
    let tls = match &state.config.listen.tls {
        Some(settings) => {
            Some(TlsAcceptor::from_config(settings).map_err(|e| format!("[listen.tls]: {e}"))?)
        }
        None => None,
    };
    if let (Some(acceptor), Some(settings)) = (&tls, &state.config.listen.tls) {
        acceptor.spawn_reload(settings.clone(), draining.clone());
    }
    // Before the listeners announce themselves, so that a policy change or a SIGHUP right
    // after start-up is not missed (an unhandled SIGHUP would end the process).
    crate::ops::reload::spawn(state.policies.clone(), draining.clone());
    if let Some(cluster) = &state.cluster {
        cluster.spawn(state.metadata.clone(), draining.clone());
    }
    let listener = net::bind("proxy", state.config.listen.addr)
        .await
        .map_err(|e| e.to_string())?;
    let admin = net::bind("admin", state.config.admin.addr)
        .await
        .map_err(|e| e.to_string())?;
    let addr = |l: &tokio::net::TcpListener| l.local_addr().map_err(|e| e.to_string());
    ready(addr(&listener)?, addr(&admin)?);
    let admin_stop = Shutdown::new();
    let sources = crate::ops::admin::Sources {
        store: state.policies.clone(),
        mode: state.config.mode,
        upstream_credentials: state.upstream.credentials().cloned(),
        cluster: state.cluster.clone(),
    };
    let admin_task = tokio::spawn(crate::ops::admin::serve_until(
        sources,
        admin,
        draining.clone(),
        admin_stop.clone(),
    ));
    serve(state.clone(), listener, tls, draining.clone()).await;
    admin_stop.trigger();
    let _ = admin_task.await;
    if tokio::time::timeout(LOG_FLUSH_AT_EXIT, state.decision_log.flush())
        .await
        .is_err()
    {
        tracing::error!("the decision log did not take its last lines within {LOG_FLUSH_AT_EXIT:?}; exiting without them");
    }
    tracing::info!("drained; exiting");
    Ok(())
}
