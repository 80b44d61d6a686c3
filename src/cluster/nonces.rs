//! The nonce store behind signature verification: one seam, two homes. Without
//! `[cluster]`, this process's [`NonceCache`]; with it, Redis, where a nonce is claimed with
//! one atomic `SET <prefix>nonce:<AccessKeyId>:<nonce> 1 NX PX <2 × skew>` (one round trip,
//! nothing else on the critical path), so a nonce accepted by any replica is refused by
//! every other.
//!
//! With `[cluster]` the local cache is still asked first (no round trip for a replay to the
//! same replica) and still remembers every nonce, so that while Redis is unreachable and
//! `on_unavailable = "local"`, this replica goes on refusing what it accepted before. With
//! `on_unavailable = "deny"`, a nonce that could not be claimed in Redis is never accepted:
//! the request is refused (503) and nothing is forwarded.
//!
//! A claim is made only after the signature verified (see
//! [`crate::identity::signature::Verified`]), so nobody can burn another client's nonces.

use super::Cluster;
use crate::config::OnUnavailable;
use crate::identity::signature::{NonceCache, Seen, Verified};
use crate::identity::IdentityError;
use std::sync::Arc;
use std::time::Duration;

pub(crate) enum NonceStore {
    Local(NonceCache),
    Shared {
        cluster: Arc<Cluster>,
        local: NonceCache,
    },
}

impl NonceStore {
    /// Nonces remembered for at least `window` (the clock-skew window).
    pub(crate) fn new(window: Duration, cluster: Option<Arc<Cluster>>) -> Self {
        let local = NonceCache::new(window);
        match cluster {
            None => NonceStore::Local(local),
            Some(cluster) => NonceStore::Shared { cluster, local },
        }
    }

    /// Claims the nonce of a verified request signed at `verified.timestamp`; `now` is
    /// Unix seconds. Fails (503) when Redis could not be asked and `on_unavailable = "deny"`.
    pub(crate) async fn claim(&self, verified: &Verified, now: i64) -> Result<Seen, IdentityError> {
        let (cluster, local) = match self {
            NonceStore::Local(local) => return Ok(verified.claim_in(local, now)),
            NonceStore::Shared { cluster, local } => (cluster, local),
        };
        let seen_here = verified.claim_in(local, now);
        if seen_here != Seen::New {
            return Ok(seen_here);
        }
        let key = cluster.key(format_args!("nonce:{}:{}", verified.key_id, verified.nonce));
        let expiry_ms = u64::try_from(verified.skew.as_millis().saturating_mul(2))
            .unwrap_or(u64::MAX)
            .max(1);
        let claimed = cluster
            .run::<Option<String>>(async move |c| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(expiry_ms)
                    .query_async(c)
                    .await
            })
            .await;
        match claimed {
            Ok(Some(_)) => Ok(Seen::New),
            Ok(None) => Ok(Seen::Replayed),
            Err(why) => match cluster.settings().on_unavailable {
                OnUnavailable::Deny => Err(IdentityError::NonceStoreUnavailable(why.to_string())),
                OnUnavailable::Local => Ok(seen_here),
            },
        }
    }
}
