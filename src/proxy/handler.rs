//! One request, start to finish, as a chain of typed stages (SPEC §1's data flow):
//!
//! parse (400/404/413; the body within `header_read_timeout_ms`, `RegionId` the configured
//! region) → identify (401; a signed request's nonce claimed in the nonce store after its
//! signature verifies, 503 when a shared store cannot be asked) → quota (400
//! `Throttling.User`) → look up (503) → decide → enforce (403, a silent empty list, or
//! dry-run's forward) → forward (502/504; writes publish their ids to the other replicas)
//! → filter (502).
//!
//! Each stage returns its own error type; [`ApiError`] wraps them and `response.rs` alone
//! turns them into statuses. Every failure returns before anything is forwarded. The
//! [`RequestRecord`] is created first and writes the metrics and the decision-log line
//! however the request ends.

use super::record::RequestRecord;
use super::State;
use crate::catalogue::Kind;
use crate::config::Mode;
use crate::decision::{self, Authorizer, Caller, Denied, Plan, Visibility};
use crate::identity::{self, IdentityError, Peer};
use crate::metadata::{LookupError, MetadataClient};
use crate::model::ContainerGroupMeta;
use crate::net::body::{read_bounded, BodyError};
use crate::ops::metrics;
use crate::principals::PrincipalKind;
use crate::request::{self, CanonicalRequest, ParsedRequest};
use crate::response::{self, ApiError, Body, DeniedPrincipal};
use crate::snapshot::Snapshot;
use crate::upstream::UpstreamResponse;
use crate::{filter, ops::store::PolicyStore};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::request::Parts;
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Serves one request; never fails (errors become Alibaba-shaped responses).
pub(crate) async fn handle(
    state: Arc<State>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Body> {
    let mut record = RequestRecord::start(&state.decision_log, state.wants_decision_words());
    let response = match chain(&state, &peer, req, &mut record).await {
        Ok(response) => response,
        Err(error) => record.refused(error),
    };
    record.finish().await;
    response
}

/// The stages in order; the first to fail ends the request.
async fn chain(
    state: &State,
    peer: &Peer,
    req: Request<Incoming>,
    record: &mut RequestRecord<'_>,
) -> Result<Response<Body>, ApiError> {
    let (parts, request) = parse(state, req).await?;
    record.parsed(request.canonical.action.name);
    let snapshot = Held::current(&state.policies);
    request.canonical.check_region(&snapshot.account.region)?;
    let caller = identify(state, &snapshot, peer, &parts, &request).await?;
    record.identified(&caller.arn, &request.canonical);
    quota(state, &snapshot, &caller, &request.canonical, record).await?;
    let metas = look_up(&state.metadata, &request.canonical.ids).await?;
    let plan = decide(&snapshot, &caller, &request.canonical, &metas);
    record.decided(&snapshot, &plan, state.config.mode);
    let forwarded = match enforce(state, &snapshot, &caller, plan, request.canonical, record)? {
        Enforced::Forward(forwarded) => forwarded,
        Enforced::Answer(answer) => return Ok(answer),
    };
    let rid = record.request_id();
    let answer = forward(
        state,
        peer,
        &parts.headers,
        &caller,
        &forwarded.request,
        rid,
    )
    .await?;
    let body = filter(state, &snapshot, &caller, &forwarded, &answer).await?;
    Ok(response::forwarded(
        answer.status,
        answer.content_type,
        body,
        rid,
    ))
}

/// The caller as every later stage needs it.
struct Identified {
    caller: Caller,
    principal_kind: PrincipalKind,
    /// Forwarded as `x-ramgate-principal`, and logged.
    arn: String,
}

/// What [`enforce`] lets through.
enum Enforced {
    /// Sent to the backend.
    Forward(Forwarded),
    /// Answered here (a silent empty list).
    Answer(Response<Body>),
}

struct Forwarded {
    /// Exactly what was authorized (in dry-run: what the caller sent).
    request: CanonicalRequest,
    /// The per-item check of a list answer (never in dry-run).
    filter: Option<Visibility>,
}

/// Parse: the body read within `max_body_bytes`, then both wire dialects into one
/// canonical request.
async fn parse(state: &State, req: Request<Incoming>) -> Result<(Parts, ParsedRequest), ApiError> {
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
    // The body gets as long as the headers had (`header_read_timeout_ms`).
    let deadline = std::time::Duration::from_millis(state.config.listen.header_read_timeout_ms);
    let body = read_bounded(body, limit, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(limit) => ApiError::TooLarge { limit },
            e => ApiError::Request(request::RequestError::Malformed(e.to_string())),
        })?;
    let parsed = request::parse(&parts.method, &parts.uri, &parts.headers, &body)?;
    Ok((parts, parsed))
}

/// Identify: exactly one principal, from a signature, the trusted header or the client
/// certificate. A signed request's nonce is claimed last, once its signature verified, in
/// the nonce store (shared by the replicas with `[cluster]`).
async fn identify(
    state: &State,
    snapshot: &Snapshot,
    peer: &Peer,
    parts: &Parts,
    request: &ParsedRequest,
) -> Result<Identified, IdentityError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let (identity, unclaimed) = identity::resolve_unclaimed(
        snapshot,
        &state.config.identity,
        peer,
        &parts.headers,
        request,
        now.as_secs() as i64,
    )?;
    if let Some(verified) = unclaimed {
        let seen = state.nonces.claim(&verified, now.as_secs() as i64).await?;
        verified.settle(seen)?;
    }
    Ok(Identified {
        caller: Caller {
            principal: identity.principal,
            source_ip: Some(identity.source_ip),
            secure_transport: peer.secure,
            now_unix_nanos: now.as_nanos() as i128,
        },
        principal_kind: snapshot.directory.principal(identity.principal).kind,
        arn: snapshot
            .directory
            .arn(&snapshot.account.id, identity.principal),
    })
}

type Metas = Vec<Option<Arc<ContainerGroupMeta>>>;

/// Look up: the resource group and tags of every container group named (None: it does
/// not exist), from the cache or the backend.
async fn look_up(metadata: &MetadataClient, ids: &[String]) -> Result<Metas, LookupError> {
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
            Err(e)
        }
    }
}

/// Decide: the planner, as `explain` and the other commands call it.
fn decide(
    snapshot: &Snapshot,
    caller: &Identified,
    request: &CanonicalRequest,
    metas: &Metas,
) -> Plan {
    let metas: Vec<Option<&ContainerGroupMeta>> = metas.iter().map(|m| m.as_deref()).collect();
    let started = Instant::now();
    let plan = decision::plan(&Authorizer::new(snapshot, caller.caller), request, &metas);
    metrics::decision(started.elapsed());
    plan
}

/// Enforce the plan in the configured mode. In dry-run, requests are forwarded as the
/// caller sent them and answers are not filtered: the decision is only logged (malformed,
/// unidentified and group-moving requests are still refused).
fn enforce(
    state: &State,
    snapshot: &Snapshot,
    caller: &Identified,
    plan: Plan,
    mut request: CanonicalRequest,
    record: &RequestRecord<'_>,
) -> Result<Enforced, ApiError> {
    let dry_run = state.config.mode == Mode::DryRun;
    let forward = |request, filter| Ok(Enforced::Forward(Forwarded { request, filter }));
    match plan {
        Plan::Deny(Denied::ResourceGroupImmutable) => Err(ApiError::ResourceGroupImmutable),
        Plan::Allow(_) if dry_run => forward(request, None),
        Plan::Allow(allowed) => {
            allowed.rewrite.apply(&mut request);
            forward(request, allowed.filter)
        }
        Plan::Deny(_) if dry_run => {
            tracing::info!(
                request_id = record.request_id(),
                action = request.action.name,
                principal = %caller.arn,
                reason = record.reason().unwrap_or_default(),
                "dry-run: would have denied; forwarding"
            );
            forward(request, None)
        }
        Plan::Deny(Denied::SilentEmpty(_)) => Ok(Enforced::Answer(response::silent_empty(
            record.request_id(),
            list_field(request.action.name),
        ))),
        Plan::Deny(Denied::Forbidden(reason)) => Err(ApiError::Denied {
            action: request.action.display,
            principal: denied_principal(snapshot, caller),
            reason,
        }),
        Plan::Deny(Denied::ServiceRoleNotAuthorized) => Err(ApiError::ServiceRoleNotAuthorized {
            hint: crate::principals::service_role_hint(),
        }),
    }
}

/// Forward: exactly the canonical request, with only ramgate's own headers; the metadata
/// cache is kept in step with writes, whatever the answer, and the ids written are
/// published to the other replicas (`[cluster]`).
async fn forward(
    state: &State,
    peer: &Peer,
    incoming: &http::HeaderMap,
    caller: &Identified,
    request: &CanonicalRequest,
    request_id: &str,
) -> Result<UpstreamResponse, ApiError> {
    let headers = forward_headers(request, incoming, peer, &caller.arn, request_id);
    let started = Instant::now();
    let answer = state.upstream.call(&request.forward_query(), headers).await;
    metrics::upstream(started.elapsed());
    if request.action.writes {
        let touched = after_write(&state.metadata, request, answer.as_ref().ok()).await;
        if let Some(cluster) = &state.cluster {
            cluster.publish(&touched);
        }
    }
    Ok(answer?)
}

/// Filter: a list answer checked item by item (a Describe's items carry their own group
/// and tags; other lists' items are looked up).
async fn filter(
    state: &State,
    snapshot: &Snapshot,
    caller: &Identified,
    forwarded: &Forwarded,
    answer: &UpstreamResponse,
) -> Result<Bytes, ApiError> {
    let visibility = match &forwarded.filter {
        Some(visibility) if answer.status.is_success() => visibility,
        _ => return Ok(answer.body.clone()),
    };
    let auth = Authorizer::new(snapshot, caller.caller);
    let action = &forwarded.request.action;
    if action.kind == Kind::Describe {
        return Ok(filter::describe(
            &auth,
            action.ram_action,
            visibility,
            &answer.body,
        )?);
    }
    let ids = filter::item_ids(&answer.body)?;
    let metas = look_up(&state.metadata, &ids).await?;
    let metas = ids.into_iter().zip(metas).collect();
    Ok(filter::list(
        &auth,
        action.ram_action,
        visibility,
        &answer.body,
        &metas,
    )?)
}

/// Quota: the caller's `[[quotas]]` limit for the action, if any, counted (SPEC §9):
/// after the caller is known, before any lookup. A refusal is logged like a decision.
async fn quota(
    state: &State,
    snapshot: &Snapshot,
    caller: &Identified,
    request: &CanonicalRequest,
    record: &mut RequestRecord<'_>,
) -> Result<(), ApiError> {
    let (principal, action) = (caller.caller.principal, request.action.name);
    let Some(limit) = snapshot.directory.quota(principal, action) else {
        return Ok(());
    };
    let name = snapshot.directory.quota_name(principal);
    match state
        .quotas
        .admit(&name, action, limit, record.request_id())
        .await
    {
        crate::quota::Verdict::Admit => Ok(()),
        crate::quota::Verdict::Refuse { retry_after_ms } => {
            record.throttled(|| {
                format!("throttled: over the quota of {limit} {action} per minute for {name}")
            });
            Err(ApiError::Throttled { retry_after_ms })
        }
    }
}

/// The request's policy snapshot. A reload that swaps in a new snapshot while requests hold
/// the old one leaves the last of them to free it, and freeing a large snapshot takes
/// milliseconds (about 10 ms for 10,000 policies): done on the worker thread, that would
/// stall every request queued behind it. So when this request holds the last reference to
/// a replaced snapshot, it is freed on the blocking pool instead.
struct Held(Option<Arc<Snapshot>>);

impl Held {
    fn current(store: &PolicyStore) -> Self {
        Held(Some(store.current()))
    }
}

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
        "DescribeContainerGroupStatus" | "DescribeContainerGroupEvents" => "Data",
        "DescribeMultiContainerGroupMetric" => "MonitorDatas",
        _ => "Items",
    }
}

fn denied_principal(snapshot: &Snapshot, caller: &Identified) -> DeniedPrincipal {
    let p = snapshot.directory.principal(caller.caller.principal);
    DeniedPrincipal {
        kind: match caller.principal_kind {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "SubUser",
            PrincipalKind::Role => "AssumedRoleUser",
        },
        owner_id: snapshot.account.id.to_string(),
        display_name: p.name.to_string(),
    }
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
/// not the backend reports success (it may have applied part of it). Returns the ids
/// touched, for the other replicas (`[cluster]`).
async fn after_write(
    metadata: &MetadataClient,
    canonical: &CanonicalRequest,
    answer: Option<&UpstreamResponse>,
) -> Vec<String> {
    if canonical.action.kind == Kind::Create {
        let created = answer
            .filter(|a| a.status.is_success())
            .and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
            .and_then(|v| {
                v.get("ContainerGroupId")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            });
        let Some(id) = created else {
            return Vec::new();
        };
        if let Some(group) = &canonical.resource_group {
            metadata
                .remember(
                    id.clone(),
                    ContainerGroupMeta {
                        resource_group: group.clone(),
                        tags: canonical.tags.clone(),
                    },
                )
                .await;
        }
        return vec![id];
    }
    metadata.invalidate(&canonical.ids).await;
    canonical.ids.clone()
}
