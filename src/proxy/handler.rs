//! One request, start to finish: body limit → parse (400/404/413) → identity (401) →
//! metadata (503) → decision (403, or a silent empty list) → forward (502/504) → filter.
//! Every failure returns before anything is forwarded.

use super::outcome::Outcome;
use super::State;
use crate::catalogue::Kind;
use crate::decision::{self, Allowed, Authorizer, Caller, Denied, Plan, Rewrite};
use crate::identity::{self, Peer};
use crate::model::ContainerGroupMeta;
use crate::ops::decision_log::Entry;
use crate::ops::metrics;
use crate::principals::PrincipalKind;
use crate::request::{self, CanonicalRequest};
use crate::response::{self, ApiError, Body, DeniedPrincipal};
use crate::snapshot::Snapshot;
use crate::upstream::{UpstreamError, UpstreamResponse};
use crate::{filter, metadata::MetadataClient};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Serves one request; never fails (errors become Alibaba-shaped responses).
pub async fn handle(state: Arc<State>, peer: Peer, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    metrics::inflight(1.0);
    let request_id = request_id();
    let mut facts = Facts {
        logged: logs_decisions(&state),
        ..Facts::default()
    };
    let response = match process(&state, &peer, req, &request_id, &mut facts).await {
        Ok(response) => response,
        Err(error) => {
            if facts.outcome.is_none() {
                facts.outcome = Some(Outcome::Error);
            }
            if facts.logged && facts.reason.is_empty() {
                facts.reason = error.to_string();
            }
            error.into_response(&request_id)
        }
    };
    let elapsed = started.elapsed();
    let outcome = facts.outcome.unwrap_or(Outcome::Error);
    metrics::request(facts.action_label, outcome.as_str(), elapsed);
    if let Some(entry) = facts.log_entry(&request_id, outcome, elapsed) {
        state.decision_log.record(entry, outcome == Outcome::Allow);
    }
    metrics::inflight(-1.0);
    response
}

/// Whether anything will read a request's decision words: the decision log, or dry-run's
/// "would have denied" line. When neither does (`[log] decisions = "off"` in enforce mode),
/// the proxy skips describing the decision and copying the ids, group and principal for the
/// log line: the profile of a cached single-resource call showed these at about a tenth of
/// the proxy's own instructions.
fn logs_decisions(state: &State) -> bool {
    state.config.log.decisions != "off" || state.dry_run()
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

/// What the decision log and metrics learn as the request goes.
#[derive(Default)]
struct Facts {
    action_label: &'static str,
    outcome: Option<Outcome>,
    /// Whether the decision words and log fields below are wanted ([`logs_decisions`]).
    logged: bool,
    principal: Option<String>,
    ids: Vec<String>,
    group: Option<String>,
    reason: String,
    decided: bool,
}

impl Facts {
    fn log_entry(
        &self,
        request_id: &str,
        outcome: Outcome,
        elapsed: std::time::Duration,
    ) -> Option<Entry> {
        (self.decided && self.logged).then(|| Entry {
            time: SystemTime::now(),
            request_id: request_id.to_owned(),
            principal: self.principal.clone().unwrap_or_default(),
            action: self.action_label,
            resource_ids: self.ids.clone(),
            resource_group: self.group.clone(),
            decision: outcome.as_str(),
            reason: self.reason.clone(),
            latency_us: elapsed.as_micros() as u64,
        })
    }
}

async fn process(
    state: &State,
    peer: &Peer,
    req: Request<Incoming>,
    request_id: &str,
    facts: &mut Facts,
) -> Result<Response<Body>, ApiError> {
    facts.action_label = "other";
    let (parts, body) = req.into_parts();
    let limit = state.config.listen.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            ApiError::TooLarge { limit }
        } else {
            ApiError::Request(request::RequestError::Malformed(format!(
                "the body could not be read: {e}"
            )))
        }
    })?;
    let parsed = request::parse(&parts.method, &parts.uri, &parts.headers, &body.to_bytes())?;
    facts.action_label = parsed.canonical.action.name;
    // One snapshot for the whole request: a reload in the middle cannot mix two policy sets.
    let snapshot = Held(Some(state.snapshot.load_full()));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let identity = identity::resolve(
        &snapshot,
        &state.config.identity,
        &state.nonces,
        peer,
        &parts.headers,
        &parsed,
        now.as_secs() as i64,
    )?;
    let arn = snapshot
        .directory
        .arn(&snapshot.account.id, identity.principal);
    let mut canonical = parsed.canonical;
    if facts.logged {
        facts.principal = Some(arn.clone());
        facts.ids = canonical.ids.clone();
        facts.group = canonical.resource_group.clone();
    }

    let metas = lookup(&state.metadata, &canonical.ids).await?;
    let meta_refs: Vec<Option<&ContainerGroupMeta>> = metas.iter().map(|m| m.as_deref()).collect();
    let caller = Caller {
        principal: identity.principal,
        source_ip: Some(identity.source_ip),
        secure_transport: peer.secure,
        now_unix_nanos: now.as_nanos() as i128,
    };
    let auth = Authorizer::new(&snapshot, caller);
    let decided_at = Instant::now();
    let plan = decision::plan(&auth, &canonical, &meta_refs);
    metrics::decision(decided_at.elapsed());
    facts.decided = true;
    if facts.logged {
        facts.reason = plan.describe(&snapshot);
        if let Plan::Allow(Allowed {
            rewrite: Rewrite::ResourceGroup(group),
            ..
        }) = &plan
        {
            facts.group = Some(group.clone());
        }
    }

    // In dry-run, requests are forwarded as the caller sent them and answers are not
    // filtered: the decision is only logged (malformed, unidentified and group-moving
    // requests are still refused).
    let (forwarded, filter) = match plan {
        Plan::Deny(Denied::ResourceGroupImmutable) => {
            facts.outcome = Some(Outcome::Deny);
            return Err(ApiError::ResourceGroupImmutable);
        }
        Plan::Allow(_) if state.dry_run() => {
            facts.outcome = Some(Outcome::Allow);
            (canonical, None)
        }
        Plan::Allow(Allowed {
            rewrite, filter, ..
        }) => {
            facts.outcome = Some(Outcome::Allow);
            rewrite.apply(&mut canonical);
            (canonical, filter)
        }
        Plan::Deny(_) if state.dry_run() => {
            tracing::info!(request_id, action = canonical.action.name, principal = %arn, reason = %facts.reason, "dry-run: would have denied; forwarding");
            facts.outcome = Some(Outcome::WouldDeny);
            (canonical, None)
        }
        Plan::Deny(Denied::SilentEmpty(_)) => {
            facts.outcome = Some(Outcome::SilentEmpty);
            return Ok(response::silent_empty(
                request_id,
                list_field(canonical.action.name),
            ));
        }
        Plan::Deny(Denied::Forbidden(reason)) => {
            facts.outcome = Some(Outcome::Deny);
            return Err(ApiError::Denied {
                action: canonical.action.display,
                principal: denied_principal(&snapshot, identity.principal),
                reason,
            });
        }
        Plan::Deny(Denied::ServiceRoleNotAuthorized) => {
            facts.outcome = Some(Outcome::Deny);
            return Err(ApiError::ServiceRoleNotAuthorized {
                hint: crate::principals::service_role_hint(),
            });
        }
    };
    forward(
        state,
        auth,
        peer,
        &parts.headers,
        &arn,
        forwarded,
        filter.as_ref(),
        request_id,
    )
    .await
}

/// The request's policy snapshot. A reload that swaps in a new snapshot while requests hold
/// the old one leaves the last of them to free it, and freeing a large snapshot takes
/// milliseconds (about 10 ms for 10,000 policies): done on the worker thread, that would
/// stall every request queued behind it. So when this request holds the last reference to
/// a replaced snapshot, it is freed on the blocking pool instead.
struct Held(Option<Arc<Snapshot>>);

impl std::ops::Deref for Held {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        // Always Some until dropped.
        self.0.as_deref().expect("held until dropped")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(snapshot) = self.0.take() else {
            return;
        };
        // A count of one means no one else (not the `ArcSwap`, which holds the current
        // snapshot, nor another request) can reach it any more: it is ours alone to free.
        if Arc::strong_count(&snapshot) == 1 {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn_blocking(move || {
                    drop(snapshot);
                    crate::ops::memory::release_free_heap();
                });
            }
        }
    }
}

/// The list an action answers with, for its silent empty answer.
fn list_field(action: &str) -> &'static str {
    match action {
        "ListTagResources" => "TagResources",
        "DescribeContainerGroups" => "ContainerGroups",
        _ => "Items",
    }
}

async fn lookup(
    metadata: &MetadataClient,
    ids: &[String],
) -> Result<Vec<Option<Arc<ContainerGroupMeta>>>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match metadata.lookup(ids).await {
        Ok((found, stats)) => {
            metrics::cache(stats.hits, stats.negative_hits, stats.misses);
            Ok(found)
        }
        Err(e) => {
            metrics::metadata_lookup_failed();
            Err(ApiError::MetadataUnavailable(e.0))
        }
    }
}

fn denied_principal(
    snapshot: &Snapshot,
    principal: crate::principals::PrincipalId,
) -> DeniedPrincipal {
    let p = snapshot.directory.principal(principal);
    DeniedPrincipal {
        kind: match p.kind {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "SubUser",
            PrincipalKind::Role => "AssumedRoleUser",
        },
        owner_id: snapshot.account.id.to_string(),
        display_name: p.name.to_string(),
    }
}

/// Sends exactly the canonical request, with only ramgate's own headers, then keeps the
/// metadata cache in step with writes and filters list answers.
#[allow(clippy::too_many_arguments)]
async fn forward(
    state: &State,
    auth: Authorizer<'_>,
    peer: &Peer,
    incoming: &http::HeaderMap,
    arn: &str,
    canonical: CanonicalRequest,
    filter: Option<&decision::Visibility>,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let headers = forward_headers(&canonical, incoming, peer, arn, request_id);
    let started = Instant::now();
    let answer = state
        .upstream
        .call(&canonical.forward_query(), headers)
        .await;
    metrics::upstream(started.elapsed());
    if canonical.action.writes {
        after_write(&state.metadata, &canonical, answer.as_ref().ok()).await;
    }
    let answer = answer.map_err(|e| match e {
        UpstreamError::Timeout(ms) => ApiError::GatewayTimeout(ms),
        UpstreamError::Unreachable(m) => ApiError::BadGateway(m),
    })?;
    let body = match filter {
        Some(visibility) if answer.status.is_success() => {
            let metas = item_metas(state, &canonical, &answer.body).await?;
            filtered(&auth, &canonical, visibility, &answer.body, &metas)?
        }
        _ => answer.body.clone(),
    };
    let mut response = response::json_response(answer.status, request_id, body);
    if let Some(ct) = answer.content_type {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    Ok(response)
}

/// The metadata of the groups a list answer's items name (not needed for Describe, whose
/// items carry their own group and tags).
async fn item_metas(
    state: &State,
    canonical: &CanonicalRequest,
    body: &Bytes,
) -> Result<HashMap<String, Option<Arc<ContainerGroupMeta>>>, ApiError> {
    if canonical.action.kind == Kind::Describe {
        return Ok(HashMap::new());
    }
    let ids = filter::item_ids(body).map_err(|e| ApiError::BadGateway(e.to_string()))?;
    let metas = lookup(&state.metadata, &ids).await?;
    Ok(ids.into_iter().zip(metas).collect())
}

fn filtered(
    auth: &Authorizer<'_>,
    canonical: &CanonicalRequest,
    visibility: &decision::Visibility,
    body: &Bytes,
    metas: &HashMap<String, Option<Arc<ContainerGroupMeta>>>,
) -> Result<Bytes, ApiError> {
    let action = canonical.action.ram_action;
    let result = if canonical.action.kind == Kind::Describe {
        filter::describe(auth, action, visibility, body)
    } else {
        filter::list(auth, action, visibility, body, metas)
    };
    result.map_err(|e| ApiError::BadGateway(e.to_string()))
}

fn forward_headers(
    canonical: &CanonicalRequest,
    incoming: &http::HeaderMap,
    peer: &Peer,
    arn: &str,
    request_id: &str,
) -> Vec<(HeaderName, HeaderValue)> {
    // Names are constants (validated at compile time, not per request); the caller's user
    // agent, already a valid header value, is reused rather than re-validated.
    const X_ACS_ACTION: HeaderName = HeaderName::from_static("x-acs-action");
    const X_ACS_VERSION: HeaderName = HeaderName::from_static("x-acs-version");
    const X_RAMGATE_PRINCIPAL: HeaderName = HeaderName::from_static("x-ramgate-principal");
    const X_RAMGATE_REQUEST_ID: HeaderName = HeaderName::from_static("x-ramgate-request-id");
    const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    let mut headers = Vec::with_capacity(7);
    headers.push((
        X_ACS_ACTION,
        HeaderValue::from_static(canonical.action.name),
    ));
    headers.push((
        http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    ));
    let mut push = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.push((name, v));
        }
    };
    push(
        X_ACS_VERSION,
        canonical.param("Version").unwrap_or(request::VERSION),
    );
    push(X_RAMGATE_PRINCIPAL, arn);
    push(X_RAMGATE_REQUEST_ID, request_id);
    let mut prior = incoming
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .peekable();
    let peer_ip = peer.addr.ip().to_string();
    let xff = if prior.peek().is_none() {
        peer_ip
    } else {
        let prior: Vec<&str> = prior.collect();
        format!("{}, {peer_ip}", prior.join(", "))
    };
    push(X_FORWARDED_FOR, &xff);
    if let Some(ua) = incoming
        .get(http::header::USER_AGENT)
        .filter(|v| v.to_str().is_ok())
    {
        headers.push((http::header::USER_AGENT, ua.clone()));
    }
    headers
}

/// Writes through the proxy keep the cache in step: a created group is remembered with the
/// group and tags it was authorized with; anything else written is forgotten, whether or
/// not the backend reports success (it may have applied part of it).
async fn after_write(
    metadata: &MetadataClient,
    canonical: &CanonicalRequest,
    answer: Option<&UpstreamResponse>,
) {
    if canonical.action.kind == Kind::Create {
        let created = answer
            .filter(|a| a.status.is_success())
            .and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
            .and_then(|v| {
                v.get("ContainerGroupId")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            });
        if let (Some(id), Some(group)) = (created, &canonical.resource_group) {
            metadata
                .remember(
                    id,
                    ContainerGroupMeta {
                        resource_group: group.clone(),
                        tags: canonical.tags.clone(),
                    },
                )
                .await;
        }
        return;
    }
    metadata.invalidate(&canonical.ids).await;
}
