//! Metadata cache invalidation across replicas (SPEC §9): every write a replica forwards
//! publishes the container-group ids it touched on `[cluster] channel`; every replica drops
//! them from its cache on receipt.
//!
//! What holds, and why:
//! * While the subscription is up, each replica hears every other replica's writes, so a
//!   change through any replica governs every replica's next decision once the message is
//!   delivered (milliseconds).
//! * While it is down (not yet connected, or lost), the replica may be missing messages. It
//!   then drops its whole cache every [`DISTRUST_EVERY`] (the cache's epoch check also
//!   ignores lookups already in flight), so no decision uses an entry loaded more than
//!   about half a second earlier: a change made anywhere governs it within one second.
//! * When the subscription comes back, the cache is dropped once more (messages published
//!   while it was down are lost to it), and only then is the replica "connected" again.
//! * A subscription that stops answering `PING` (sent every second) within [`PING_TIMEOUT`]
//!   counts as lost: a Redis that vanished without closing the connection (a network
//!   partition) is noticed within three seconds, and the one-second bound above holds from
//!   then on. A Redis that stopped or restarted closes the connection: noticed at once.
//!
//! Messages are JSON, `{"from":"<replica>","ids":[...]}`; a replica skips its own (its
//! cache was updated by the write itself) and anything it cannot read.

use super::{Cluster, TIMEOUT};
use crate::metadata::MetadataClient;
use crate::net::Shutdown;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often an unsubscribed replica drops its cache, and retries subscribing.
const DISTRUST_EVERY: Duration = Duration::from_millis(250);
/// How often a live subscription is checked with `PING`, and how long the answer may take.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, Deserialize)]
struct Message {
    from: String,
    ids: Vec<String>,
}

/// Keeps the subscription up for as long as the process runs.
pub(super) async fn subscribe(cluster: Arc<Cluster>, metadata: MetadataClient, shutdown: Shutdown) {
    let mut ever_subscribed = false;
    while !shutdown.is_triggered() {
        // Not subscribed: nothing cached before now can be trusted for long.
        metadata.invalidate_all();
        let mut connecting = std::pin::pin!(tokio::time::timeout(TIMEOUT, async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(&cluster.settings.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        }));
        // Still distrusting while the attempt takes its time (an unanswering Redis).
        let connected = loop {
            tokio::select! {
                attempt = &mut connecting => break attempt,
                _ = tokio::time::sleep(DISTRUST_EVERY) => metadata.invalidate_all(),
            }
        };
        match connected {
            Ok(Ok(pubsub)) => {
                if ever_subscribed {
                    // Messages sent while it was down are lost: forget everything once.
                    metadata.invalidate_all();
                    cluster.resubscriptions.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(
                        "cluster: resubscribed to {:?}; the metadata cache was dropped",
                        cluster.settings.channel
                    );
                } else {
                    tracing::info!(
                        redis = %super::redacted(&cluster.settings.redis_url),
                        "cluster: subscribed to {:?}",
                        cluster.settings.channel
                    );
                }
                ever_subscribed = true;
                // The command connection may still hold a socket to the Redis that went
                // away: one PING makes it reconnect before requests rely on it.
                cluster.warm_up().await;
                cluster.set_subscribed(true);
                let lost = listen(&cluster, &metadata, pubsub, &shutdown).await;
                if let Some(why) = lost {
                    cluster.failed(&format!("the invalidation subscription was lost: {why}"));
                }
                cluster.set_subscribed(false);
            }
            Ok(Err(e)) => cluster.failed(&format!("cannot subscribe: {e}")),
            Err(_) => cluster.failed(&format!(
                "cannot subscribe: no answer within {} ms",
                TIMEOUT.as_millis()
            )),
        }
        tokio::select! {
            _ = tokio::time::sleep(DISTRUST_EVERY) => {}
            _ = shutdown.wait() => {}
        }
    }
}

/// Applies messages until the subscription is lost (returns why) or `shutdown` (None).
async fn listen(
    cluster: &Cluster,
    metadata: &MetadataClient,
    pubsub: redis::aio::PubSub,
    shutdown: &Shutdown,
) -> Option<String> {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Some("Redis closed the connection".into());
                };
                let Ok(payload) = message.get_payload::<Vec<u8>>() else {
                    continue;
                };
                if let Ok(message) = serde_json::from_slice::<Message>(&payload) {
                    if message.from != cluster.replica {
                        metadata.invalidate(&message.ids).await;
                        crate::ops::metrics::cluster_invalidation("received");
                    }
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Some(format!("PING failed: {e}")),
                    Err(_) => return Some(format!("no answer to PING within {} ms", PING_TIMEOUT.as_millis())),
                }
            }
            _ = shutdown.wait() => return None,
        }
    }
}

/// Sends the ids of each forwarded write. A message that cannot be sent is retried until
/// it is, or until the cache's TTL has passed since the write (every replica has dropped
/// what it cached before the write by then; replicas whose subscription was down at the
/// time distrust their caches anyway).
pub(super) async fn publish(
    cluster: Arc<Cluster>,
    mut outbox: mpsc::UnboundedReceiver<Vec<String>>,
    shutdown: Shutdown,
) {
    loop {
        let ids = tokio::select! {
            ids = outbox.recv() => match ids {
                Some(ids) => ids,
                None => return,
            },
            _ = shutdown.wait() => return,
        };
        let written_at = Instant::now();
        let payload = match serde_json::to_string(&Message {
            from: cluster.replica.clone(),
            ids,
        }) {
            Ok(payload) => payload,
            Err(_) => continue,
        };
        let channel = cluster.settings.channel.clone();
        loop {
            let (channel, payload) = (channel.clone(), payload.clone());
            let sent = cluster
                .run::<i64>(async move |c| {
                    redis::cmd("PUBLISH")
                        .arg(channel)
                        .arg(payload)
                        .query_async(c)
                        .await
                })
                .await;
            if sent.is_ok() {
                crate::ops::metrics::cluster_invalidation("sent");
                break;
            }
            if written_at.elapsed() > cluster.cache_ttl || shutdown.is_triggered() {
                break;
            }
            tokio::time::sleep(DISTRUST_EVERY).await;
        }
    }
}
