//! SPEC §3's rules per action family, on top of [`Authorizer::authorize`].

use super::{Authorizer, Decision, Question, Reason};
use crate::model::{ContainerGroupMeta, Tags};
use crate::policy::builtin;
use crate::principals::{GroupId, PolicyId};

/// The RAM action whose allowance makes a container group visible to a caller.
const DESCRIBE: &str = "eci:describecontainergroups";

/// Create: allowed into a resolved resource group, denied, or refused because the ECI
/// service role is not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Allow { group: GroupId, decision: Decision },
    Deny(Decision),
    ServiceRoleNotAuthorized,
}

/// What to do with a DescribeContainerGroups (or another list that answers with items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribePlan {
    /// Answer an empty list without asking the backend.
    SilentEmpty(Reason),
    /// Forward, narrowed to `ids` when the request named ids, and filter every item of the
    /// answer through `visibility`.
    Forward {
        ids: Option<Vec<String>>,
        visibility: Visibility,
        decision: Decision,
    },
}

/// The per-item check applied to a list answer: the same group, ids and attachments as
/// the plan, and each item authorized on its own tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// Items must be in this group (the one the request named).
    pub group: Option<GroupId>,
    /// Attachments of this group count (None: account-scoped only).
    pub attachments: Attachments,
    /// Items must be one of these (the authorized ids), when ids were named.
    pub ids: Option<Vec<String>>,
    /// The request's tag filters: items must carry them.
    pub request_tags: Tags,
    /// The caller may see every item the backend can answer this request with, so the
    /// answer's paging (`TotalCount`, `NextToken`) reveals nothing hidden and passes as
    /// SPEC §3 says; otherwise a page tells only what is on it (docs/SECURITY.md).
    pub exhaustive: bool,
}

/// How far a caller's policies reach over the container groups of the account, conditions
/// aside, for a list that names no ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No Allow statement can cover any container group: a list is answered empty.
    Nothing,
    /// Some groups may be visible, some not.
    Some,
    /// Every group is visible: an unconditional Allow covers them all and nothing can deny.
    Everything,
}

/// Which group-scoped attachments count for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachments {
    /// Account-scoped, plus those of this group (or none).
    Named(Option<GroupId>),
    /// Account-scoped, plus those of the item's own group (lists with no group parameter).
    ItemsOwnGroup,
}

impl Authorizer<'_> {
    /// `eci:CreateContainerGroup` into `requested_group` (None: the default group).
    pub fn decide_create(
        &self,
        action_lower: &str,
        requested_group: Option<&str>,
        request_tags: &Tags,
    ) -> CreateOutcome {
        let directory = &self.snapshot.directory;
        let group = match requested_group.map(|g| directory.group(g)) {
            None => directory.default_group,
            Some(Some(g)) => g,
            Some(None) if self.is_root() => directory.default_group,
            Some(None) => {
                return CreateOutcome::Deny(Decision::denied(Reason::UnknownResourceGroup))
            }
        };
        let resource = self.container_group_arn("*");
        let decision = self.authorize(&Question {
            action_lower,
            resource: &resource,
            group: Some(group),
            tags_in_play: Some(request_tags),
            resource_tags: None,
            request_tags: Some(request_tags),
        });
        if !decision.allowed {
            return CreateOutcome::Deny(decision);
        }
        if !self.service_role_authorized() {
            return CreateOutcome::ServiceRoleNotAuthorized;
        }
        CreateOutcome::Allow { group, decision }
    }

    fn service_role_authorized(&self) -> bool {
        let directory = &self.snapshot.directory;
        let role_policy: Option<PolicyId> = self.snapshot.policy_id(builtin::SERVICE_ROLE_POLICY);
        directory.role(builtin::SERVICE_ROLE).is_some_and(|r| {
            role_policy.is_some_and(|p| directory.principal(r).account_policies.contains(&p))
        })
    }

    /// An action on one existing container group (`meta`: None when it does not exist).
    /// `resulting_tags`: for a tag change, the tags the group would have afterwards, which
    /// must be allowed as well as its current ones.
    pub fn decide_resource(
        &self,
        action_lower: &str,
        id: &str,
        meta: Option<&ContainerGroupMeta>,
        request_tags: &Tags,
        resulting_tags: Option<&Tags>,
    ) -> Decision {
        let Some(meta) = meta else {
            if !self.is_root() {
                return Decision::denied(Reason::NotFound);
            }
            // Root is forwarded (the backend answers "not found"), but only past the
            // guardrails, judged with no group and no tags since there are none to read.
            let resource = self.container_group_arn(id);
            return self.authorize(&Question {
                action_lower,
                resource: &resource,
                group: None,
                tags_in_play: None,
                resource_tags: None,
                request_tags: Some(request_tags),
            });
        };
        let resource = self.container_group_arn(id);
        let group = self.snapshot.directory.group(&meta.resource_group);
        let question = |tags_in_play| Question {
            action_lower,
            resource: &resource,
            group,
            tags_in_play: Some(tags_in_play),
            resource_tags: Some(&meta.tags),
            request_tags: Some(request_tags),
        };
        let current = self.authorize(&question(&meta.tags));
        let decision = match resulting_tags {
            Some(resulting) if current.allowed => self.authorize(&question(resulting)),
            _ => current,
        };
        if decision.allowed || self.is_root() || self.may_describe(&resource, group, meta) {
            return decision;
        }
        // The caller may see nothing of this group: its denial must not tell that the group
        // exists, nor which of the caller's statements its group and tags failed, so it is
        // the denial of an id that does not exist (SPEC §3).
        Decision::denied(Reason::Concealed(decision.reason.statement()))
    }

    /// Whether the caller may see the group at all: `DescribeContainerGroups` on it would
    /// return it (its own group's attachments and tags count).
    fn may_describe(
        &self,
        resource: &str,
        group: Option<crate::principals::GroupId>,
        meta: &ContainerGroupMeta,
    ) -> bool {
        self.authorize(&Question {
            action_lower: DESCRIBE,
            resource,
            group,
            tags_in_play: Some(&meta.tags),
            resource_tags: Some(&meta.tags),
            request_tags: Some(&meta.tags),
        })
        .allowed
    }

    /// An action that involves no container group: account-scoped attachments only, on
    /// resource `*`, with no tags in play.
    pub fn decide_other(&self, action_lower: &str, request_tags: &Tags) -> Decision {
        self.authorize(&Question {
            action_lower,
            resource: "*",
            group: None,
            tags_in_play: None,
            resource_tags: None,
            request_tags: Some(request_tags),
        })
    }

    /// DescribeContainerGroups. `ids` are the ids the request named (empty: none), with
    /// their metadata (None: does not exist), in order.
    pub fn plan_describe(
        &self,
        action_lower: &str,
        requested_group: Option<&str>,
        ids: &[(&str, Option<&ContainerGroupMeta>)],
        request_tags: &Tags,
    ) -> DescribePlan {
        let group = match requested_group {
            None => None,
            Some(g) => match self.snapshot.directory.group(g) {
                Some(g) => Some(g),
                None => return DescribePlan::SilentEmpty(Reason::UnknownResourceGroup),
            },
        };
        let everything = ids.is_empty()
            && self.reach(action_lower, Attachments::Named(group)) == Reach::Everything;
        let visibility = |ids: Option<Vec<String>>| Visibility {
            group,
            attachments: Attachments::Named(group),
            exhaustive: ids.is_some() || everything,
            ids,
            request_tags: request_tags.clone(),
        };
        if ids.is_empty() {
            let resource = self.container_group_arn("*");
            let decision = self.authorize(&Question {
                action_lower,
                resource: &resource,
                group,
                tags_in_play: Some(request_tags),
                resource_tags: None,
                request_tags: Some(request_tags),
            });
            return if decision.allowed {
                DescribePlan::Forward {
                    ids: None,
                    visibility: visibility(None),
                    decision,
                }
            } else {
                DescribePlan::SilentEmpty(decision.reason)
            };
        }
        let probe = visibility(None);
        let mut last_denial = Reason::NothingVisible;
        let mut first_allow = None;
        let mut kept = Vec::with_capacity(ids.len());
        for (id, meta) in ids {
            let Some(meta) = meta else { continue };
            match self.item_decision(action_lower, &probe, id, meta, false) {
                Some(d) if d.allowed => {
                    first_allow.get_or_insert(d);
                    kept.push((*id).to_owned());
                }
                Some(d) => last_denial = d.reason,
                None => {}
            }
        }
        match first_allow {
            Some(decision) => DescribePlan::Forward {
                ids: Some(kept.clone()),
                visibility: visibility(Some(kept)),
                decision,
            },
            None => DescribePlan::SilentEmpty(last_denial),
        }
    }

    /// A list action whose items are container groups but that names no resource group
    /// (ListTagResources, metrics): ids are kept one by one with their own group's
    /// attachments; with no ids, everything is forwarded and filtered item by item.
    pub(crate) fn plan_list(
        &self,
        action_lower: &str,
        ids: &[(&str, Option<&ContainerGroupMeta>)],
        request_tags: &Tags,
    ) -> DescribePlan {
        let mut visibility = Visibility {
            group: None,
            attachments: Attachments::ItemsOwnGroup,
            ids: None,
            request_tags: Tags::new(),
            exhaustive: true,
        };
        if ids.is_empty() {
            // Decided before anything is forwarded: a caller no statement of which can
            // allow this action on any container group gets the silent empty answer.
            return match self.reach(action_lower, Attachments::ItemsOwnGroup) {
                Reach::Nothing => DescribePlan::SilentEmpty(Reason::ImplicitDeny(
                    super::PolicyType::AccountLevelIdentityBasedPolicy,
                )),
                reach => {
                    visibility.exhaustive = reach == Reach::Everything;
                    DescribePlan::Forward {
                        ids: None,
                        visibility,
                        decision: Decision::allowed(Reason::PerItem),
                    }
                }
            };
        }
        let mut kept = Vec::new();
        let mut first_allow = None;
        let mut last_denial = Reason::NothingVisible;
        for (id, meta) in ids {
            let decision = self.decide_resource(action_lower, id, *meta, request_tags, None);
            if decision.allowed && meta.is_some() {
                first_allow.get_or_insert(decision);
                kept.push((*id).to_owned());
            } else if !decision.allowed {
                last_denial = decision.reason;
            }
        }
        match first_allow {
            Some(decision) => {
                visibility.ids = Some(kept.clone());
                DescribePlan::Forward {
                    ids: Some(kept),
                    visibility,
                    decision,
                }
            }
            None => DescribePlan::SilentEmpty(last_denial),
        }
    }

    /// How far the caller's policies reach over the account's container groups for
    /// `action_lower` ([`Reach`]). Every attachment of the caller counts towards "some"
    /// (any group's items may be answered); only `counted` ones towards "everything", and
    /// then no guardrail and no Deny statement attached anywhere may cover the action.
    pub fn reach(&self, action_lower: &str, counted: Attachments) -> Reach {
        use crate::policy::pattern::PrefixMatch;
        use crate::policy::Effect;
        let prefix = self.container_group_arn("");
        let directory = &self.snapshot.directory;
        let guarded = !directory.guardrails.is_empty();
        if self.is_root() {
            return if guarded {
                Reach::Some
            } else {
                Reach::Everything
            };
        }
        let principal = directory.principal(self.caller.principal);
        let named = match counted {
            Attachments::Named(g) => g,
            Attachments::ItemsOwnGroup => None,
        };
        let all = principal.account_policies.iter().map(|&p| (p, true)).chain(
            principal
                .group_policies
                .iter()
                .map(|&(g, p)| (p, Some(g) == named)),
        );
        let (mut some, mut every, mut denies) = (false, false, false);
        for (policy, is_counted) in all {
            for statement in &self.snapshot.policy(policy).statements {
                let covers = statement.covers_prefix(action_lower, &prefix);
                match (statement.effect, covers) {
                    (_, PrefixMatch::None) => {}
                    (Effect::Deny, _) => denies = true,
                    (Effect::Allow, PrefixMatch::Every)
                        if is_counted && statement.conditions.is_empty() =>
                    {
                        some = true;
                        every = true;
                    }
                    (Effect::Allow, _) => some = true,
                }
            }
        }
        match (some, every && !denies && !guarded) {
            (false, _) => Reach::Nothing,
            (true, true) => Reach::Everything,
            (true, false) => Reach::Some,
        }
    }

    /// Whether one item of a list answer may be returned.
    pub fn visible(
        &self,
        action_lower: &str,
        visibility: &Visibility,
        id: &str,
        item: &ContainerGroupMeta,
    ) -> bool {
        self.item_decision(action_lower, visibility, id, item, true)
            .is_some_and(|d| d.allowed)
    }

    /// None when the item is outside the plan's group or ids (or, with `filter_tags`, lacks
    /// the request's tag filters); else the decision on its own tags.
    fn item_decision(
        &self,
        action_lower: &str,
        v: &Visibility,
        id: &str,
        item: &ContainerGroupMeta,
        filter_tags: bool,
    ) -> Option<Decision> {
        let item_group = self.snapshot.directory.group(&item.resource_group);
        if v.group.is_some() && item_group != v.group {
            return None;
        }
        if v.ids
            .as_ref()
            .is_some_and(|ids| !ids.iter().any(|kept| kept == id))
        {
            return None;
        }
        if filter_tags && !item.tags.contains_all(&v.request_tags) {
            return None;
        }
        let group = match v.attachments {
            Attachments::Named(g) => g,
            Attachments::ItemsOwnGroup => item_group,
        };
        let resource = self.container_group_arn(id);
        Some(self.authorize(&Question {
            action_lower,
            resource: &resource,
            group,
            tags_in_play: Some(&item.tags),
            resource_tags: Some(&item.tags),
            request_tags: Some(&v.request_tags),
        }))
    }
}
