//! The request record: created before anything else happens to a request, it owns what must
//! be written however the request ends — the in-flight gauge, the request metrics and the
//! decision-log line. A request that is answered writes them in [`RequestRecord::finish`];
//! one whose future is dropped mid-flight (client disconnect, HTTP/2 stream reset, the
//! drain's grace abort) writes them from `Drop`, its log line marked `cancelled`. Either
//! way the gauge comes back down and a decided request has its line, even a write that was
//! already forwarded.

use crate::config::Mode;
use crate::decision::{Allowed, Denied, Plan, Rewrite};
use crate::ops::decision_log::{DecisionLog, Entry};
use crate::ops::metrics;
use crate::request::CanonicalRequest;
use crate::response::{ApiError, Body};
use crate::snapshot::Snapshot;
use http::Response;
use std::time::{Instant, SystemTime};

/// The `decision` label of `ramgate_requests_total`, and the decision log's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allow,
    Deny,
    SilentEmpty,
    WouldDeny,
    /// Over quota (`Throttling.User`).
    Throttled,
    Error,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::SilentEmpty => "silent_empty",
            Outcome::WouldDeny => "would_deny",
            Outcome::Throttled => "throttled",
            Outcome::Error => "error",
        }
    }

    /// What a plan comes to in `mode`: dry-run forwards what it would deny, except a
    /// request that would move a group, which is refused in both modes.
    fn of(plan: &Plan, mode: Mode) -> Outcome {
        match (plan, mode) {
            (Plan::Allow(_), _) => Outcome::Allow,
            (Plan::Deny(Denied::ResourceGroupImmutable), _) => Outcome::Deny,
            (Plan::Deny(_), Mode::DryRun) => Outcome::WouldDeny,
            (Plan::Deny(Denied::SilentEmpty(_)), Mode::Enforce) => Outcome::SilentEmpty,
            (Plan::Deny(_), Mode::Enforce) => Outcome::Deny,
        }
    }
}

pub(crate) struct RequestRecord<'s> {
    log: &'s DecisionLog,
    started: Instant,
    request_id: String,
    action: &'static str,
    /// None until decided, or until the request fails before its decision (then `Error`).
    outcome: Option<Outcome>,
    /// Only a decided request has a decision-log line.
    decided: bool,
    /// The log line's words, when something reads them (the decision log, or dry-run's
    /// "would have denied" line); describing a decision and copying its ids costs about a
    /// tenth of a cached call, so it is skipped when nothing does.
    words: Option<Words>,
    /// The answer is ready: metrics are recorded, and the line is buffered or in `pending`.
    answered: bool,
    /// A line still waiting for room in the decision log's buffer.
    pending: Option<Box<Entry>>,
}

#[derive(Default)]
struct Words {
    principal: String,
    ids: Vec<String>,
    group: Option<String>,
    reason: String,
}

impl<'s> RequestRecord<'s> {
    /// Raises the in-flight gauge; `wants_words`: see [`RequestRecord::words`].
    pub(crate) fn start(log: &'s DecisionLog, wants_words: bool) -> Self {
        metrics::inflight(1.0);
        Self {
            log,
            started: Instant::now(),
            request_id: request_id(),
            action: "other",
            outcome: None,
            decided: false,
            words: wants_words.then(Words::default),
            answered: false,
            pending: None,
        }
    }

    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The action is known (catalogue names only: metric labels stay bounded).
    pub(crate) fn parsed(&mut self, action: &'static str) {
        self.action = action;
    }

    /// The caller is known: who, and what the request names.
    pub(crate) fn identified(&mut self, arn: &str, request: &CanonicalRequest) {
        if let Some(words) = &mut self.words {
            words.principal = arn.to_owned();
            words.ids = request.ids.clone();
            words.group = request.resource_group.clone();
        }
    }

    /// The decision is taken; its outcome in `mode` is what the request comes to, unless
    /// it fails later.
    pub(crate) fn decided(&mut self, snapshot: &Snapshot, plan: &Plan, mode: Mode) {
        self.decided = true;
        self.outcome = Some(Outcome::of(plan, mode));
        if let Some(words) = &mut self.words {
            words.reason = plan.describe(snapshot);
            if let Plan::Allow(Allowed {
                rewrite: Rewrite::ResourceGroup(group),
                ..
            }) = plan
            {
                words.group = Some(group.clone());
            }
        }
    }

    /// The caller is over its quota: refused before any decision, and logged like one
    /// (`reason` is only built when something reads it).
    pub(crate) fn throttled(&mut self, reason: impl FnOnce() -> String) {
        self.decided = true;
        self.outcome = Some(Outcome::Throttled);
        if let Some(words) = &mut self.words {
            words.reason = reason();
        }
    }

    /// The decision in words, when something reads them.
    pub(crate) fn reason(&self) -> Option<&str> {
        self.words.as_ref().map(|w| w.reason.as_str())
    }

    /// The request failed with `error`: its answer.
    pub(crate) fn refused(&mut self, error: ApiError) -> Response<Body> {
        self.outcome.get_or_insert(Outcome::Error);
        if let Some(words) = self.words.as_mut().filter(|w| w.reason.is_empty()) {
            words.reason = error.to_string();
        }
        error.into_response(&self.request_id)
    }

    /// The answer is ready: records the metrics and buffers the decision-log line, waiting
    /// for room when the log requires it (see `ops::decision_log`).
    pub(crate) async fn finish(&mut self) {
        self.answered = true;
        let (is_allow, entry) = self.close(false);
        if entry.is_some() {
            self.pending = entry;
            self.log.write_waiting(&mut self.pending, is_allow).await;
        }
    }

    /// Records the metrics; returns the log line, if this request has one to write.
    fn close(&mut self, cancelled: bool) -> (bool, Option<Box<Entry>>) {
        let elapsed = self.started.elapsed();
        let outcome = self.outcome.unwrap_or(Outcome::Error);
        metrics::request(self.action, outcome.as_str(), elapsed);
        let is_allow = outcome == Outcome::Allow;
        let words = self.words.take().filter(|_| self.decided);
        let entry = words.filter(|_| self.log.keeps(is_allow)).map(|words| {
            Box::new(Entry {
                time: SystemTime::now(),
                request_id: std::mem::take(&mut self.request_id),
                principal: words.principal,
                action: self.action,
                resource_ids: words.ids,
                resource_group: words.group,
                decision: outcome.as_str(),
                reason: words.reason,
                latency_us: elapsed.as_micros() as u64,
                cancelled,
            })
        });
        (is_allow, entry)
    }
}

impl Drop for RequestRecord<'_> {
    fn drop(&mut self) {
        let is_allow = self.outcome == Some(Outcome::Allow);
        if !self.answered {
            let (_, entry) = self.close(true);
            self.pending = entry;
        } else if let Some(entry) = &mut self.pending {
            // Cancelled while its line waited for room: it is still written.
            entry.cancelled = true;
        }
        if let Some(entry) = self.pending.take() {
            self.log.write_blocking(entry, is_allow);
        }
        metrics::inflight(-1.0);
    }
}

/// A fresh request id, shaped like a v4 UUID. Request ids must be unique, not secret: a
/// per-thread splitmix64 sequence, seeded once per thread from the operating system,
/// spares the `getrandom` system call that `Uuid::new_v4` makes on every request.
fn request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default(),
        ));
    }
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let state = NEXT.with(|next| {
        let state = next.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        next.set(state);
        state
    });
    // `mix` is a bijection, so one thread never repeats an id within 2^64 requests.
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&mix(state).to_le_bytes());
    bytes[8..].copy_from_slice(&mix(state ^ 0x6a09_e667_f3bc_c909).to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}
