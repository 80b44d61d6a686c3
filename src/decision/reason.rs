//! Why a decision came out as it did: the statement that allowed or denied, or the rule
//! that refused, plus the `PolicyType` / `NoPermissionType` Alibaba's `AccessDeniedDetail`
//! carries. Kept as indices so deciding allocates nothing; rendered to words on demand.

use super::Verdict;
use crate::principals::PolicyId;
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: PolicyId,
    pub statement: u16,
    /// Attached to a resource group rather than the account.
    pub group_scoped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    AccountLevelIdentityBasedPolicy,
    ResourceGroupLevelIdentityBasedPolicy,
    /// Guardrails, which act like control policies.
    ControlPolicy,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::AccountLevelIdentityBasedPolicy => "AccountLevelIdentityBasedPolicy",
            PolicyType::ResourceGroupLevelIdentityBasedPolicy => {
                "ResourceGroupLevelIdentityBasedPolicy"
            }
            PolicyType::ControlPolicy => "ControlPolicy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPermissionType {
    None,
    ImplicitDeny,
    ExplicitDeny,
}

impl NoPermissionType {
    pub fn as_str(self) -> &'static str {
        match self {
            NoPermissionType::None => "",
            NoPermissionType::ImplicitDeny => "ImplicitDeny",
            NoPermissionType::ExplicitDeny => "ExplicitDeny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Allowed by this statement (`NoPermissionType::None`), or denied by it (`ExplicitDeny`).
    Statement(StatementRef, NoPermissionType),
    /// A Deny statement that could not be evaluated, which denies.
    DenyErrored(StatementRef, PolicyType),
    /// A guardrail statement decided (allow or deny as the decision says).
    Guardrail(StatementRef),
    /// No statement allows.
    ImplicitDeny(PolicyType),
    /// The account is not subject to identity policies (and passed any guardrails).
    RootBypass,
    /// The request names a resource group that is not declared.
    UnknownResourceGroup,
    /// The container group does not exist: answered, for non-root callers, as a denial.
    NotFound,
    /// Denied (by this statement, if one decided) on a container group the caller may see
    /// nothing of: answered exactly like [`Reason::NotFound`], so that the answer tells
    /// neither that the group exists nor which statement its group and tags failed. The
    /// decision log keeps the statement.
    Concealed(Option<StatementRef>),
    /// Describe: every id named dropped out.
    NothingVisible,
    /// A list forwarded whole, its answer filtered item by item.
    PerItem,
}

impl Reason {
    pub(super) fn from_verdict(verdict: Verdict, implicit: PolicyType) -> Reason {
        match verdict {
            Verdict::Allow(at) if implicit == PolicyType::ControlPolicy => Reason::Guardrail(at),
            Verdict::Allow(at) => Reason::Statement(at, NoPermissionType::None),
            Verdict::ExplicitDeny(at, true) => {
                Reason::DenyErrored(at, Self::scope_type(at, implicit))
            }
            Verdict::ExplicitDeny(at, false) if implicit == PolicyType::ControlPolicy => {
                Reason::Guardrail(at)
            }
            Verdict::ExplicitDeny(at, false) => {
                Reason::Statement(at, NoPermissionType::ExplicitDeny)
            }
            Verdict::ImplicitDeny => Reason::ImplicitDeny(implicit),
        }
    }

    fn scope_type(at: StatementRef, fallback: PolicyType) -> PolicyType {
        match (fallback, at.group_scoped) {
            (PolicyType::ControlPolicy, _) => PolicyType::ControlPolicy,
            (_, true) => PolicyType::ResourceGroupLevelIdentityBasedPolicy,
            (_, false) => PolicyType::AccountLevelIdentityBasedPolicy,
        }
    }

    /// For `AccessDeniedDetail`.
    pub fn policy_type(&self) -> PolicyType {
        match *self {
            Reason::Statement(at, _) => {
                Self::scope_type(at, PolicyType::AccountLevelIdentityBasedPolicy)
            }
            Reason::DenyErrored(_, t) | Reason::ImplicitDeny(t) => t,
            Reason::Guardrail(_) => PolicyType::ControlPolicy,
            Reason::UnknownResourceGroup => PolicyType::ResourceGroupLevelIdentityBasedPolicy,
            Reason::RootBypass
            | Reason::NotFound
            | Reason::Concealed(_)
            | Reason::NothingVisible
            | Reason::PerItem => PolicyType::AccountLevelIdentityBasedPolicy,
        }
    }

    /// For `AccessDeniedDetail` (meaningful on denials).
    pub fn no_permission_type(&self, allowed: bool) -> NoPermissionType {
        match *self {
            _ if allowed => NoPermissionType::None,
            Reason::Statement(_, _) | Reason::DenyErrored(..) | Reason::Guardrail(_) => {
                NoPermissionType::ExplicitDeny
            }
            _ => NoPermissionType::ImplicitDeny,
        }
    }

    /// The statement that decided, if one did.
    pub fn statement(&self) -> Option<StatementRef> {
        match *self {
            Reason::Statement(at, _) | Reason::DenyErrored(at, _) | Reason::Guardrail(at) => {
                Some(at)
            }
            _ => None,
        }
    }

    /// In words, for logs and `ramgate explain`. Built into one string: this runs for every
    /// logged decision.
    pub fn describe(&self, snapshot: &Snapshot, allowed: bool) -> String {
        let mut out = String::with_capacity(160);
        let statement = |out: &mut String, at: StatementRef| {
            use std::fmt::Write;
            let policy = snapshot.policy(at.policy);
            let s = &policy.statements[at.statement as usize];
            let _ = write!(out, "statement {}", at.statement + 1);
            if let Some(sid) = s.sid.as_deref() {
                out.push_str(" (Sid \"");
                out.push_str(sid);
                out.push('"');
                out.push(')');
            }
            out.push_str(" of policy ");
            out.push_str(&policy.name);
            out.push_str(" [");
            match &policy.file {
                Some(f) => match f.to_str() {
                    Some(f) => out.push_str(f),
                    None => {
                        let _ = write!(out, "{}", f.display());
                    }
                },
                None => out.push_str("built-in"),
            }
            if policy.file.is_some() {
                let _ = write!(out, ":{}", s.line);
            }
            out.push(']');
        };
        let phrase = |out: &mut String, before: &str, at: StatementRef, after: &str| {
            out.push_str(before);
            statement(out, at);
            out.push_str(after);
        };
        match *self {
            Reason::Statement(at, _) if allowed => phrase(&mut out, "allowed by ", at, ""),
            Reason::Statement(at, _) => phrase(&mut out, "explicitly denied by ", at, ""),
            Reason::DenyErrored(at, _) => phrase(
                &mut out,
                "denied: ",
                at,
                " is a Deny whose condition could not be evaluated",
            ),
            Reason::Guardrail(at) if allowed => phrase(&mut out, "guardrail passed by ", at, ""),
            Reason::Guardrail(at) => phrase(&mut out, "explicitly denied by guardrail ", at, ""),
            Reason::ImplicitDeny(PolicyType::ControlPolicy) => {
                out.push_str("denied: no guardrail statement allows it")
            }
            Reason::ImplicitDeny(_) => {
                out.push_str("denied: no attached policy statement allows it (implicit deny)")
            }
            Reason::RootBypass => {
                out.push_str("allowed: the account (root) is not subject to identity policies")
            }
            Reason::UnknownResourceGroup => {
                out.push_str("denied: the request names a resource group that is not declared")
            }
            Reason::NotFound => {
                out.push_str("denied: the container group does not exist (answered as a denial)")
            }
            Reason::Concealed(at) => {
                out.push_str("denied");
                if let Some(at) = at {
                    phrase(&mut out, " by ", at, "");
                }
                out.push_str("; the caller may see nothing of this container group, so it is answered as one that does not exist");
            }
            Reason::NothingVisible => {
                out.push_str("denied: none of the container groups named may be seen")
            }
            Reason::PerItem => {
                out.push_str("forwarded: each item of the answer is checked on its own")
            }
        }
        out
    }
}

/// An allow or a denial, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl Decision {
    pub fn allowed(reason: Reason) -> Self {
        Self {
            allowed: true,
            reason,
        }
    }

    pub fn denied(reason: Reason) -> Self {
        Self {
            allowed: false,
            reason,
        }
    }
}
