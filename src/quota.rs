//! Per-caller quotas (SPEC §9): how many requests a principal made of an action within the
//! last rolling minute, and whether one more is admitted. Limits come from `[[quotas]]`
//! ([`crate::principals::Directory::quota`]); the proxy asks after identity and before the
//! decision, and an over-quota request is refused (400 `Throttling.User`) and not
//! forwarded.
//!
//! The window is exact, not approximated: a sliding log of the admitted requests' times,
//! so a limit of N admits exactly N requests in any 60 seconds. With `[cluster]` the log is
//! a Redis sorted set per principal and action (`<prefix>quota:<principal>:<action>`),
//! read and updated by one Lua script per request (atomic, one round trip, timed by Redis's
//! own clock so replicas' clocks do not matter), shared by every replica. Without
//! `[cluster]`, and while Redis is unreachable, it is a log in this process.
//!
//! Memory is bounded by the limits: a log never holds more than its limit, and a log whose
//! newest entry left the window is dropped (by Redis's key expiry, or here by a sweep).

use crate::cluster::Cluster;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The rolling window.
pub(crate) const WINDOW_MS: u64 = 60_000;

/// Admits one request if fewer than `ARGV[1]` were admitted within the window; the
/// member `ARGV[2]` is unique per request. Returns `{1, 0}`, or `{0, ms until the oldest
/// admitted request leaves the window}`.
const SCRIPT: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = 60000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
";

/// Whether a request is within its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Admit,
    /// Over quota; one more request would be admitted in this many milliseconds.
    Refuse {
        retry_after_ms: u64,
    },
}

/// The counters: in Redis with `[cluster]`, else (and while it is unreachable) here.
pub(crate) struct Quotas {
    cluster: Option<Arc<Cluster>>,
    script: redis::Script,
    local: Mutex<Local>,
}

struct Local {
    started: Instant,
    /// `<principal>:<action>` → admitted requests' times (ms since `started`), oldest first.
    logs: HashMap<String, VecDeque<u64>>,
    /// When the next sweep of idle logs is due (ms since `started`).
    next_sweep: u64,
}

impl Quotas {
    pub(crate) fn new(cluster: Option<Arc<Cluster>>) -> Self {
        Self {
            cluster,
            script: redis::Script::new(SCRIPT),
            local: Mutex::new(Local {
                started: Instant::now(),
                logs: HashMap::new(),
                next_sweep: WINDOW_MS,
            }),
        }
    }

    /// Counts one request of `principal` (a [`crate::principals::Directory::quota_name`])
    /// for `action` against `limit` per minute. `request_id` is unique per request.
    pub(crate) async fn admit(
        &self,
        principal: &str,
        action: &str,
        limit: u32,
        request_id: &str,
    ) -> Verdict {
        if let Some(cluster) = &self.cluster {
            let key = cluster.key(format_args!("quota:{principal}:{action}"));
            let mut invocation = self.script.prepare_invoke();
            invocation.key(key).arg(limit).arg(request_id);
            let shared = cluster
                .run::<(u8, i64)>(async move |c| invocation.invoke_async(c).await)
                .await;
            if let Ok((admitted, retry_after_ms)) = shared {
                return if admitted == 1 {
                    Verdict::Admit
                } else {
                    Verdict::Refuse {
                        retry_after_ms: u64::try_from(retry_after_ms).unwrap_or(0).max(1),
                    }
                };
            }
            // Redis unreachable: counted here until it is back.
        }
        self.admit_locally(&format!("{principal}:{action}"), limit)
    }

    fn admit_locally(&self, key: &str, limit: u32) -> Verdict {
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = local.started.elapsed().as_millis() as u64;
        if now >= local.next_sweep {
            local
                .logs
                .retain(|_, log| log.back().is_some_and(|&t| t + WINDOW_MS > now));
            local.next_sweep = now + WINDOW_MS;
        }
        let log = match local.logs.get_mut(key) {
            Some(log) => log,
            None => local.logs.entry(key.to_owned()).or_default(),
        };
        while log.front().is_some_and(|&t| t + WINDOW_MS <= now) {
            log.pop_front();
        }
        if log.len() < limit as usize {
            log.push_back(now);
            return Verdict::Admit;
        }
        let oldest = log.front().copied().unwrap_or(now);
        Verdict::Refuse {
            retry_after_ms: (oldest + WINDOW_MS).saturating_sub(now).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limit_of_n_admits_n_per_principal_and_action() {
        let quotas = Quotas::new(None);
        for i in 0..3 {
            assert_eq!(
                quotas
                    .admit("user/liumi", "DescribeContainerLog", 3, &i.to_string())
                    .await,
                Verdict::Admit
            );
        }
        match quotas
            .admit("user/liumi", "DescribeContainerLog", 3, "x")
            .await
        {
            Verdict::Refuse { retry_after_ms } => {
                assert!(
                    (1..=WINDOW_MS).contains(&retry_after_ms),
                    "{retry_after_ms}"
                )
            }
            Verdict::Admit => panic!("the fourth request was admitted"),
        }
        // Other actions and other principals have their own count.
        assert_eq!(
            quotas.admit("user/liumi", "DescribeRegions", 3, "y").await,
            Verdict::Admit
        );
        assert_eq!(
            quotas
                .admit("user/test", "DescribeContainerLog", 3, "z")
                .await,
            Verdict::Admit
        );
    }

    #[test]
    fn the_window_rolls() {
        let quotas = Quotas::new(None);
        assert_eq!(quotas.admit_locally("k", 1), Verdict::Admit);
        assert!(matches!(
            quotas.admit_locally("k", 1),
            Verdict::Refuse { .. }
        ));
        // Pretend the first request was made a minute ago.
        if let Some(log) = quotas.local.lock().unwrap().logs.get_mut("k") {
            log[0] = 0;
        }
        quotas.local.lock().unwrap().started -= std::time::Duration::from_millis(WINDOW_MS);
        assert_eq!(quotas.admit_locally("k", 1), Verdict::Admit);
    }
}
