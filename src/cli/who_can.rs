//! `ramgate who-can --config FILE --action ACTION [...]`: every principal (root first, then
//! users and roles in `principals.toml`'s order) for whom the planner allows a request,
//! one line each: the ARN, then the policy and statement that allow it.
//!
//! Every principal listed is decided by the planner, one by one ([`allowed`]). What makes
//! it fast on ten thousand principals is what it leaves out, and why that is exact: a
//! non-root principal none of whose policies has an `Allow` statement whose `Action` takes
//! in the action is refused by every authorization question the planner can ask about
//! this action (guardrails can only refuse more), so the planner's answer cannot depend on
//! which of those principals asks. One of them is decided as their representative; only if
//! it is allowed are the others decided too.

use super::explain::{self, offline_caller};
use super::hypothetical::{Decided, Outcome, Prepared, RequestFlags};
use crate::decision::Authorizer;
use crate::principals::{PrincipalId, ROOT};
use crate::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;

/// The command's arguments (see `ramgate who-can --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub config: PathBuf,
    pub request: RequestFlags,
}

/// Exit codes: 0 answered (whoever, or nobody, is allowed), 2 bad input.
pub fn run(args: &Args, out: &mut dyn Write) -> i32 {
    let Some((config, snapshot)) = explain::load_or_report(&args.config, out) else {
        return 2;
    };
    let hypothetical = args.request.hypothetical();
    let prepared = match hypothetical.prepare(&config.region) {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return 2;
        }
    };
    let mut text = String::new();
    for (principal, decided) in allowed(&snapshot, &prepared) {
        let reason = decided.describe(&snapshot);
        let arn = snapshot.directory.arn(&config.account_id, principal);
        text.push_str(&arn);
        text.push_str("  ");
        text.push_str(&reason);
        text.push('\n');
    }
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    0
}

/// Every principal the planner allows `prepared` for, in directory order (root first),
/// with the planner's answer.
pub fn allowed(snapshot: &Snapshot, prepared: &Prepared) -> Vec<(PrincipalId, Decided)> {
    let action = prepared.request().action.ram_action;
    let may_allow: Vec<bool> = snapshot
        .policies
        .iter()
        .map(|p| {
            p.statements
                .iter()
                .any(|s| s.effect == crate::policy::Effect::Allow && s.covers_action(action))
        })
        .collect();
    let directory = &snapshot.directory;
    let decide = |principal: PrincipalId| {
        let auth = Authorizer::new(snapshot, offline_caller(principal));
        prepared.decide(&auth)
    };
    // The planner's answer for the principals no policy of whose may allow the action:
    // decided once, for the first of them, when there is one.
    let mut uncovered_allowed: Option<bool> = None;
    let mut allowed = Vec::new();
    for index in 0..directory.principals.len() {
        let principal = index as PrincipalId;
        let p = directory.principal(principal);
        let covered = principal == ROOT
            || p.account_policies
                .iter()
                .chain(p.group_policies.iter().map(|(_, policy)| policy))
                .any(|&policy| may_allow[policy as usize]);
        if !covered {
            let representative = *uncovered_allowed
                .get_or_insert_with(|| decide(principal).outcome == Outcome::Allow);
            if !representative {
                continue;
            }
        }
        let decided = decide(principal);
        if decided.outcome == Outcome::Allow {
            allowed.push((principal, decided));
        }
    }
    allowed
}
