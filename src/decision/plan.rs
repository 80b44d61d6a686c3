//! From a canonical request and the metadata of the groups it names to a [`Plan`]: the one
//! place that maps an action's catalogue [`Kind`] to SPEC §3's rule for it. Everything that
//! decides — the proxy, `ramgate explain`, `ramgate test`, `ramgate who-can` — calls
//! [`plan`] and only enforces or prints what it returns.
//!
//! A [`Plan`] is an allow or a deny, never both and never neither. An allow carries the
//! [`Rewrite`] the proxy must apply before forwarding (the resolved group on Create, the
//! surviving ids on a list) and the per-item filter for a list answer; the request itself
//! is only read here.

use super::{Authorizer, CreateOutcome, Decision, DescribePlan, Reason, Visibility};
use crate::catalogue::{Kind, TagParams};
use crate::model::{ContainerGroupMeta, Tags};
use crate::request::CanonicalRequest;
use crate::snapshot::Snapshot;

/// The planner's answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Allow(Allowed),
    Deny(Denied),
}

/// Forward the request, rewritten by `rewrite`; filter a list answer through `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The statement or rule that allowed.
    pub reason: Reason,
    pub rewrite: Rewrite,
    /// Set for lists: every item of the answer is checked again before it is returned.
    pub filter: Option<Visibility>,
}

/// What the proxy changes in an allowed request before forwarding it: exactly what was
/// authorized, no wider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Forwarded as parsed.
    None,
    /// Create: `ResourceGroupId` set to the group the decision resolved (the default group
    /// when the request named none).
    ResourceGroup(String),
    /// A list narrowed to the ids that may be seen (never empty: an empty list is a
    /// [`Denied::SilentEmpty`]).
    Ids(Vec<String>),
}

/// Why a request is refused, and so how it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 403 `Forbidden.RAM`.
    Forbidden(Reason),
    /// A denied Describe or list: an empty list, without calling the backend.
    SilentEmpty(Reason),
    /// 403 `Forbidden.ServiceRoleNotAuthorized`: the caller may create, but ECI's service
    /// role may not act for the account.
    ServiceRoleNotAuthorized,
    /// 400 `OperationDenied.ResourceGroupImmutable`: the request would move a group.
    ResourceGroupImmutable,
}

impl Plan {
    pub fn is_allow(&self) -> bool {
        matches!(self, Plan::Allow(_))
    }

    /// In words, for the decision log and `ramgate explain`.
    pub fn describe(&self, snapshot: &Snapshot) -> String {
        match self {
            Plan::Allow(allowed) => allowed.reason.describe(snapshot, true),
            Plan::Deny(Denied::Forbidden(reason) | Denied::SilentEmpty(reason)) => {
                reason.describe(snapshot, false)
            }
            Plan::Deny(Denied::ServiceRoleNotAuthorized) => {
                "denied: the ECI service role is not authorized".into()
            }
            Plan::Deny(Denied::ResourceGroupImmutable) => {
                "refused: the request would change a resource group".into()
            }
        }
    }
}

impl Rewrite {
    /// `request` as it is forwarded.
    pub fn apply(self, request: &mut CanonicalRequest) {
        match self {
            Rewrite::None => {}
            Rewrite::ResourceGroup(group) => request.set_resource_group(&group),
            Rewrite::Ids(ids) => request.set_ids(ids),
        }
    }
}

fn allow(decision: Decision, rewrite: Rewrite, filter: Option<Visibility>) -> Plan {
    Plan::Allow(Allowed {
        reason: decision.reason,
        rewrite,
        filter,
    })
}

/// Decides `request`; `metas[i]` is the metadata of `request.ids[i]`, None when that group
/// does not exist.
pub fn plan(
    auth: &Authorizer<'_>,
    request: &CanonicalRequest,
    metas: &[Option<&ContainerGroupMeta>],
) -> Plan {
    let action = request.action.ram_action;
    let ids: Vec<(&str, Option<&ContainerGroupMeta>)> = request
        .ids
        .iter()
        .map(String::as_str)
        .zip(metas.iter().copied().chain(std::iter::repeat(None)))
        .collect();
    match request.action.kind {
        Kind::Create => {
            match auth.decide_create(action, request.resource_group.as_deref(), &request.tags) {
                CreateOutcome::Allow { group, decision } => {
                    let id = auth.snapshot.directory.group_id(group).to_owned();
                    allow(decision, Rewrite::ResourceGroup(id), None)
                }
                CreateOutcome::Deny(decision) => Plan::Deny(Denied::Forbidden(decision.reason)),
                CreateOutcome::ServiceRoleNotAuthorized => {
                    Plan::Deny(Denied::ServiceRoleNotAuthorized)
                }
            }
        }
        Kind::Describe => list_plan(auth.plan_describe(
            action,
            request.resource_group.as_deref(),
            &ids,
            &request.tags,
        )),
        Kind::ListFiltered => list_plan(auth.plan_list(action, &ids, &request.tags)),
        Kind::Single | Kind::Multi => {
            let mut first = None;
            for (id, meta) in &ids {
                let resulting = meta
                    .filter(|_| request.action.changes_tags)
                    .map(|m| resulting_tags(request, &m.tags));
                let decision =
                    auth.decide_resource(action, id, *meta, &request.tags, resulting.as_ref());
                if !decision.allowed {
                    return Plan::Deny(Denied::Forbidden(decision.reason));
                }
                let moves_group = meta.is_some_and(|m| {
                    request
                        .resource_group
                        .as_deref()
                        .is_some_and(|g| g != m.resource_group)
                });
                if moves_group {
                    return Plan::Deny(Denied::ResourceGroupImmutable);
                }
                first.get_or_insert(decision);
            }
            match first {
                Some(decision) => allow(decision, Rewrite::None, None),
                // The parser guarantees these actions name at least one group.
                None => Plan::Deny(Denied::Forbidden(Reason::NotFound)),
            }
        }
        Kind::Other => {
            let decision = auth.decide_other(action, &request.tags);
            if decision.allowed {
                allow(decision, Rewrite::None, None)
            } else {
                Plan::Deny(Denied::Forbidden(decision.reason))
            }
        }
    }
}

fn list_plan(planned: DescribePlan) -> Plan {
    match planned {
        DescribePlan::SilentEmpty(reason) => Plan::Deny(Denied::SilentEmpty(reason)),
        DescribePlan::Forward {
            ids,
            visibility,
            decision,
        } => {
            let rewrite = ids.map_or(Rewrite::None, Rewrite::Ids);
            allow(decision, rewrite, Some(visibility))
        }
    }
}

/// The tags a group would have after `request`, following the action's parameter model
/// ([`TagParams`]): `Tag.N` add or replace keys where the action sets tags
/// (`UpdateContainerGroup`, `TagResources`); `UntagResources` removes `TagKey.N`, or every
/// tag with `All=true`; any other action leaves them as they are. The parser refuses the
/// tag parameters an action does not take, so nothing here is ignored that the backend
/// would read.
pub fn resulting_tags(request: &CanonicalRequest, current: &Tags) -> Tags {
    let mut tags = current.clone();
    match request.action.tag_params() {
        TagParams::Set => {
            for (k, v) in request.tags.iter() {
                tags.set(k.to_owned(), v.to_owned());
            }
        }
        TagParams::Remove if request.untag_all => return Tags::new(),
        TagParams::Remove => {
            for key in &request.tag_keys {
                tags.remove(key);
            }
        }
        TagParams::Filter | TagParams::None => {}
    }
    tags
}
