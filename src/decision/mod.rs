//! The decision engine: SPEC §3's rules for every action family, as pure functions of the
//! current [`Snapshot`], the caller, the canonical request facts and the metadata of the
//! container groups involved (fetched beforehand by the caller). No I/O, no locks, no
//! allocation beyond the resource ARN.
//!
//! * `evaluate`: one policy set → Allow / explicit Deny / implicit Deny, where a statement
//!   that errors never allows and a Deny that errors denies.
//! * `Authorizer::authorize`: guardrails, then identity policies (root skips the latter).
//! * `actions`: Create, Describe (a [`DescribePlan`] and a per-item [`Visibility`]),
//!   single- and multi-resource actions, tag changes, and the rest.

mod actions;
mod plan;
mod reason;

pub use actions::{Attachments, CreateOutcome, DescribePlan, Reach, Visibility};
pub use plan::{plan, resulting_tags, Allowed, Denied, Plan, Rewrite};
pub use reason::{Decision, NoPermissionType, PolicyType, Reason, StatementRef};

use crate::model::Tags;
use crate::policy::{Context, Effect, StatementResult};
use crate::principals::{GroupId, PolicyId, PrincipalId, PrincipalKind, ROOT};
use crate::snapshot::Snapshot;
use std::net::IpAddr;

/// Who is asking, and the transport facts conditions may read.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub principal: PrincipalId,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
    pub now_unix_nanos: i128,
}

/// The outcome of one policy set for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow(StatementRef),
    /// `errored`: the Deny statement could not be evaluated, which counts as a match.
    ExplicitDeny(StatementRef, bool),
    ImplicitDeny,
}

/// Evaluates `policies` (with the scope each was attached at) against one request.
/// `trace`, when given, receives every statement's result (for `ramgate explain`); then
/// evaluation does not stop at the first Deny, so the trace is complete.
pub(crate) fn evaluate(
    snapshot: &Snapshot,
    policies: impl Iterator<Item = (PolicyId, bool)>,
    action_lower: &str,
    resource: &str,
    ctx: &Context<'_>,
    mut trace: Option<&mut Trace>,
) -> Verdict {
    let mut allow = None;
    let mut deny = None;
    for (policy, group_scoped) in policies {
        for (index, statement) in snapshot.policy(policy).statements.iter().enumerate() {
            let at = StatementRef {
                policy,
                statement: index as u16,
                group_scoped,
            };
            let result = statement.evaluate(action_lower, resource, ctx);
            let verdict = match (&result, statement.effect) {
                (StatementResult::Matches, Effect::Deny) => Some(Verdict::ExplicitDeny(at, false)),
                (StatementResult::Error(..), Effect::Deny) => Some(Verdict::ExplicitDeny(at, true)),
                (StatementResult::Matches, Effect::Allow) => {
                    allow.get_or_insert(at);
                    None
                }
                _ => None,
            };
            match trace.as_deref_mut() {
                Some(t) => {
                    t.push(TraceEntry {
                        at,
                        resource: resource.to_owned(),
                        result,
                        facts: ctx.describe_facts(&statement.conditions),
                    });
                    deny = deny.or(verdict);
                }
                None if verdict.is_some() => return verdict.unwrap_or(Verdict::ImplicitDeny),
                None => {}
            }
        }
    }
    deny.or(allow.map(Verdict::Allow))
        .unwrap_or(Verdict::ImplicitDeny)
}

/// Every statement evaluated for one decision, in order, for `ramgate explain`.
pub type Trace = Vec<TraceEntry>;

#[derive(Debug, Clone)]
pub struct TraceEntry {
    pub at: StatementRef,
    pub resource: String,
    pub result: StatementResult,
    /// What the request held for each condition's key (`absent` or the value).
    pub facts: Vec<String>,
}

/// The facts of one authorization question.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Question<'a> {
    pub(crate) action_lower: &'a str,
    pub(crate) resource: &'a str,
    /// The resource group whose attachments count besides account-scoped ones.
    pub(crate) group: Option<GroupId>,
    /// `eci:tag/*`.
    pub(crate) tags_in_play: Option<&'a Tags>,
    pub(crate) resource_tags: Option<&'a Tags>,
    pub(crate) request_tags: Option<&'a Tags>,
}

/// Answers `Question`s for one caller against one snapshot.
pub struct Authorizer<'s> {
    pub(crate) snapshot: &'s Snapshot,
    pub(crate) caller: Caller,
    /// Set by `ramgate explain` to record every statement evaluated.
    trace: Option<std::cell::RefCell<Trace>>,
}

impl<'s> Authorizer<'s> {
    pub fn new(snapshot: &'s Snapshot, caller: Caller) -> Self {
        Self {
            snapshot,
            caller,
            trace: None,
        }
    }

    /// An authorizer that records every statement it evaluates; see [`Self::take_trace`].
    pub fn tracing(snapshot: &'s Snapshot, caller: Caller) -> Self {
        Self {
            trace: Some(Default::default()),
            ..Self::new(snapshot, caller)
        }
    }

    pub fn take_trace(&self) -> Trace {
        self.trace.as_ref().map(|t| t.take()).unwrap_or_default()
    }

    pub(crate) fn is_root(&self) -> bool {
        self.caller.principal == ROOT
    }

    /// Guardrails (every principal, root included), then identity policies (root skips
    /// them): allowed only if both allow.
    pub(crate) fn authorize(&self, q: &Question<'_>) -> Decision {
        let ctx = Context {
            eci_tags: q.tags_in_play,
            resource_tags: q.resource_tags,
            request_tags: q.request_tags,
            source_ip: self.caller.source_ip,
            secure_transport: Some(self.caller.secure_transport),
            now_unix_nanos: Some(self.caller.now_unix_nanos),
        };
        let directory = &self.snapshot.directory;
        if !directory.guardrails.is_empty() {
            let guardrails = directory.guardrails.iter().map(|&p| (p, false));
            let mut trace = self.trace.as_ref().map(|t| t.borrow_mut());
            match evaluate(
                self.snapshot,
                guardrails,
                q.action_lower,
                q.resource,
                &ctx,
                trace.as_deref_mut(),
            ) {
                Verdict::Allow(_) => {}
                verdict => {
                    return Decision::denied(Reason::from_verdict(
                        verdict,
                        PolicyType::ControlPolicy,
                    ))
                }
            }
        }
        let principal = directory.principal(self.caller.principal);
        if principal.kind == PrincipalKind::Root {
            return Decision::allowed(Reason::RootBypass);
        }
        let group_policies = principal
            .group_policies
            .iter()
            .filter(move |(g, _)| Some(*g) == q.group)
            .map(|&(_, p)| (p, true));
        let attached = principal
            .account_policies
            .iter()
            .map(|&p| (p, false))
            .chain(group_policies);
        let implicit_type = if q.group.is_some() {
            PolicyType::ResourceGroupLevelIdentityBasedPolicy
        } else {
            PolicyType::AccountLevelIdentityBasedPolicy
        };
        let mut trace = self.trace.as_ref().map(|t| t.borrow_mut());
        match evaluate(
            self.snapshot,
            attached,
            q.action_lower,
            q.resource,
            &ctx,
            trace.as_deref_mut(),
        ) {
            Verdict::Allow(at) => Decision::allowed(Reason::Statement(at, NoPermissionType::None)),
            Verdict::ImplicitDeny => Decision::denied(Reason::ImplicitDeny(implicit_type)),
            verdict => Decision::denied(Reason::from_verdict(verdict, implicit_type)),
        }
    }

    /// `acs:eci:<region>:<account>:containergroup/<id>`. Built on every decision: one
    /// allocation of the right size and plain copies (`concat`), not `format!`'s machinery.
    pub(crate) fn container_group_arn(&self, id: &str) -> String {
        let a = &self.snapshot.account;
        ["acs:eci:", &a.region, ":", &a.id, ":containergroup/", id].concat()
    }
}

#[cfg(test)]
mod tests;
