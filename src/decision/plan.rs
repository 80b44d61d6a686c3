//! From a canonical request and the metadata of the groups it names to a [`Plan`]: the one
//! place that maps an action's catalogue [`Kind`] to SPEC §3's rule for it, and rewrites
//! the request to what was authorized (the resolved group on Create, the surviving ids on
//! a list).

use super::{Authorizer, CreateOutcome, Decision, DescribePlan, Reason, Visibility};
use crate::catalogue::{Kind, TagParams};
use crate::model::{ContainerGroupMeta, Tags};
use crate::request::CanonicalRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Forward the (possibly rewritten) request; filter a list answer through `filter`.
    Forward {
        decision: Decision,
        filter: Option<Visibility>,
    },
    /// Answer an empty list without calling the backend (a denied Describe or list).
    SilentEmpty(Reason),
    /// 403 `Forbidden.RAM`.
    Deny(Decision),
    /// 403 `Forbidden.ServiceRoleNotAuthorized`.
    ServiceRoleNotAuthorized,
    /// 400 `OperationDenied.ResourceGroupImmutable`.
    ResourceGroupImmutable,
}

impl Plan {
    /// The decision log's word for it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Plan::Forward { .. } => "allow",
            Plan::SilentEmpty(_) => "silent_empty",
            _ => "deny",
        }
    }
}

/// Decides `request` (rewriting it in place); `metas[i]` is the metadata of
/// `request.ids[i]`, None when that group does not exist.
pub fn plan(
    auth: &Authorizer<'_>,
    request: &mut CanonicalRequest,
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
                    request.set_resource_group(&id);
                    Plan::Forward {
                        decision,
                        filter: None,
                    }
                }
                CreateOutcome::Deny(decision) => Plan::Deny(decision),
                CreateOutcome::ServiceRoleNotAuthorized => Plan::ServiceRoleNotAuthorized,
            }
        }
        Kind::Describe => {
            let planned = auth.plan_describe(
                action,
                request.resource_group.as_deref(),
                &ids,
                &request.tags,
            );
            forward_list(request, planned)
        }
        Kind::ListFiltered => {
            let planned = auth.plan_list(action, &ids, &request.tags);
            forward_list(request, planned)
        }
        Kind::Single | Kind::Multi => {
            let mut first = None;
            for (id, meta) in &ids {
                let resulting = meta
                    .filter(|_| request.action.changes_tags)
                    .map(|m| resulting_tags(request, &m.tags));
                let decision =
                    auth.decide_resource(action, id, *meta, &request.tags, resulting.as_ref());
                if !decision.allowed {
                    return Plan::Deny(decision);
                }
                let moves_group = meta.is_some_and(|m| {
                    request
                        .resource_group
                        .as_deref()
                        .is_some_and(|g| g != m.resource_group)
                });
                if moves_group {
                    return Plan::ResourceGroupImmutable;
                }
                first.get_or_insert(decision);
            }
            match first {
                Some(decision) => Plan::Forward {
                    decision,
                    filter: None,
                },
                // The parser guarantees these actions name at least one group.
                None => Plan::Deny(Decision::denied(Reason::NotFound)),
            }
        }
        Kind::Other => {
            let decision = auth.decide_other(action, &request.tags);
            if decision.allowed {
                Plan::Forward {
                    decision,
                    filter: None,
                }
            } else {
                Plan::Deny(decision)
            }
        }
    }
}

fn forward_list(request: &mut CanonicalRequest, planned: DescribePlan) -> Plan {
    match planned {
        DescribePlan::SilentEmpty(reason) => Plan::SilentEmpty(reason),
        DescribePlan::Forward {
            ids,
            visibility,
            decision,
        } => {
            if let Some(ids) = ids {
                request.set_ids(ids);
            }
            Plan::Forward {
                decision,
                filter: Some(visibility),
            }
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
