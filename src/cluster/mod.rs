//! `[cluster]` (SPEC §9): replicas behind one Service share, through one Redis, what a
//! single process keeps in memory — signature nonces ([`nonces`]), metadata cache
//! invalidations ([`invalidation`]) and quota counters ([`crate::quota`]).
//!
//! Two connections per replica: a [`ConnectionManager`] for commands (nonce claims, quota
//! scripts, publishing), which reconnects by itself, and the pub/sub subscription, which
//! [`invalidation`] keeps alive and whose state is the replica's view of Redis: while it is
//! down, commands are not even tried (a request never waits for a dead Redis), nonces
//! follow `on_unavailable`, quotas are counted in process, and no cache entry older than a
//! second is trusted.
//!
//! Every Redis operation is bounded by [`TIMEOUT`]; a failed one is counted
//! (`ramgate_cluster_errors_total`) and kept as `/v1/status`'s `last_error`. The URL's
//! password is never logged or shown.

mod invalidation;
pub(crate) mod nonces;

pub(crate) use nonces::NonceStore;

use crate::config;
use crate::metadata::MetadataClient;
use crate::net::Shutdown;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one Redis operation (connecting included) may take before it counts as
/// Redis being unreachable. Loopback or same-zone Redis answers in well under a millisecond;
/// the bound is generous because a loaded host stalls for hundreds of milliseconds (a
/// 250 ms bound was once missed in the replicas' soak on two busy cores, and each miss
/// refuses signed requests under `on_unavailable = "deny"`).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// Checks a `[cluster] redis_url` without connecting: `redis://` (or `redis+unix://`)
/// URLs only, since TLS to Redis is not built in.
pub(crate) fn check_redis_url(url: &str) -> Result<(), String> {
    use redis::IntoConnectionInfo;
    if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
        return Err(format!("{:?} does not start with redis://", redacted(url)));
    }
    url.into_connection_info()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `url` with any password replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// Why Redis could not be used for one operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreachable {
    #[error("the Redis subscription is down")]
    Down,
    #[error("Redis did not answer within {} ms", TIMEOUT.as_millis())]
    Timeout,
    #[error("Redis: {0}")]
    Failed(#[from] redis::RedisError),
}

/// One replica's link to the shared Redis.
pub(crate) struct Cluster {
    settings: config::Cluster,
    /// The metadata cache's longest TTL: how long an unsent invalidation is retried.
    cache_ttl: Duration,
    client: redis::Client,
    commands: ConnectionManager,
    /// This replica's name on the invalidation channel (its own messages are skipped).
    replica: String,
    subscribed: AtomicBool,
    /// Times the subscription came back after being lost (each dropped the whole cache).
    resubscriptions: AtomicU64,
    last_error: Mutex<Option<String>>,
    outbox: mpsc::UnboundedSender<Vec<String>>,
    outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<Vec<String>>>>,
}

impl Cluster {
    /// Prepares the connections (nothing is connected until [`Cluster::spawn`]).
    pub(crate) fn new(
        settings: &config::Cluster,
        cache_ttl: Duration,
    ) -> Result<Arc<Cluster>, String> {
        let client = redis::Client::open(settings.redis_url.as_str())
            .map_err(|e| format!("[cluster] redis_url: {e}"))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| format!("[cluster] redis_url: {e}"))?;
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        Ok(Arc::new(Cluster {
            settings: settings.clone(),
            cache_ttl,
            client,
            commands,
            replica: uuid::Uuid::new_v4().to_string(),
            subscribed: AtomicBool::new(false),
            resubscriptions: AtomicU64::new(0),
            last_error: Mutex::new(None),
            outbox,
            outbox_rx: Mutex::new(Some(outbox_rx)),
        }))
    }

    /// Starts the subscription (which keeps `metadata` in step with the other replicas)
    /// and the publisher; both stop at `shutdown`.
    pub(crate) fn spawn(self: &Arc<Self>, metadata: MetadataClient, shutdown: Shutdown) {
        tokio::spawn(invalidation::subscribe(
            self.clone(),
            metadata,
            shutdown.clone(),
        ));
        let outbox = self
            .outbox_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(outbox) = outbox {
            tokio::spawn(invalidation::publish(self.clone(), outbox, shutdown));
        }
    }

    pub(crate) fn settings(&self) -> &config::Cluster {
        &self.settings
    }

    /// `<key_prefix><rest>`.
    pub(crate) fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{rest}", self.settings.key_prefix)
    }

    /// Whether Redis is believed reachable (the subscription is up).
    pub(crate) fn connected(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// Runs one command on the shared connection, bounded by [`TIMEOUT`], unless Redis is
    /// known to be down. A failure is counted and remembered.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        query: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, Unreachable> {
        if !self.connected() {
            return Err(Unreachable::Down);
        }
        let mut connection = self.commands.clone();
        let result = match tokio::time::timeout(TIMEOUT, query(&mut connection)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => Unreachable::Failed(e),
            Err(_) => Unreachable::Timeout,
        };
        self.failed(&result);
        Err(result)
    }

    /// Counts a failed Redis operation and keeps its message for `/v1/status`.
    fn failed(&self, error: &dyn std::fmt::Display) {
        crate::ops::metrics::cluster_error();
        let message = error.to_string();
        tracing::warn!(error = %message, "cluster: Redis operation failed");
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
    }

    /// Makes the command connection usable: a connection broken by a Redis restart fails
    /// its first command and then reconnects (at most two tries, each bounded).
    async fn warm_up(&self) {
        for _ in 0..2 {
            let mut connection = self.commands.clone();
            let ping = redis::cmd("PING");
            let answer = ping.query_async::<String>(&mut connection);
            if let Ok(Ok(_)) = tokio::time::timeout(TIMEOUT, answer).await {
                return;
            }
        }
    }

    fn set_subscribed(&self, up: bool) {
        self.subscribed.store(up, Ordering::SeqCst);
        crate::ops::metrics::cluster_connected(up);
    }

    /// Tells the other replicas that `ids` changed (a write was forwarded). Never waits:
    /// the publisher sends it, retrying while Redis is unreachable.
    pub(crate) fn publish(&self, ids: &[String]) {
        if !ids.is_empty() {
            let _ = self.outbox.send(ids.to_vec());
        }
    }

    /// The `cluster` part of `/v1/status`.
    pub(crate) fn status(&self) -> serde_json::Value {
        let connected = self.connected();
        let nonces = match (connected, self.settings.on_unavailable) {
            (true, _) => "shared",
            (false, config::OnUnavailable::Deny) => "refused (Redis unreachable)",
            (false, config::OnUnavailable::Local) => "this replica only (Redis unreachable)",
        };
        serde_json::json!({
            "redis": redacted(&self.settings.redis_url),
            "connected": connected,
            "on_unavailable": self.settings.on_unavailable.as_str(),
            "nonces": nonces,
            "quotas": if connected { "shared" } else { "this replica only (Redis unreachable)" },
            "resubscriptions": self.resubscriptions.load(Ordering::SeqCst),
            "last_error": *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("redis://app:s3cret@redis:6379"),
            "redis://app:***@redis:6379"
        );
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn only_plain_redis_urls_are_accepted() {
        assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_redis_url("rediss://127.0.0.1:6379/0").is_err());
        assert!(check_redis_url("http://127.0.0.1:6379").is_err());
        assert!(check_redis_url("redis://127.0.0.1:notaport").is_err());
    }
}
