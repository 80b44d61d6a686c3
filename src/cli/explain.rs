//! `ramgate explain`: one decision, taken by the real engine against the real policy
//! directory, and the reason in words: which statement allowed or denied, and for every
//! statement looked at, whether it applied and which condition failed.

use super::hypothetical::{Decided, RequestFlags};
use crate::config::Config;
use crate::decision::{Authorizer, Caller, Reason, TraceEntry};
use crate::policy::StatementResult;
use crate::principals::{PrincipalId, ROOT};
use crate::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;

/// The command's arguments (see `ramgate explain --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub config: PathBuf,
    pub principal: String,
    pub request: RequestFlags,
}

/// Exit codes: 0 allowed, 1 denied, 2 bad input.
pub fn run(args: &Args, out: &mut dyn Write) -> i32 {
    match explain(args, out) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            2
        }
    }
}

/// The config and the policy directory it names, loaded as the proxy loads them.
pub fn load(config: &std::path::Path) -> Result<(Config, Snapshot), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let snapshot =
        Snapshot::load(&config.policy.dir, config.account()).map_err(|e| e.to_string())?;
    Ok((config, snapshot))
}

/// [`load`], or None after printing why not (`error: ...`).
pub fn load_or_report(config: &std::path::Path, out: &mut dyn Write) -> Option<(Config, Snapshot)> {
    load(config)
        .map_err(|message| {
            let _ = writeln!(out, "error: {message}");
        })
        .ok()
}

/// The principal an ARN names in the loaded directory.
pub fn principal(config: &Config, snapshot: &Snapshot, arn: &str) -> Result<PrincipalId, String> {
    snapshot
        .directory
        .by_arn(&config.account_id, arn)
        .ok_or_else(|| {
            format!(
                "{arn} is not a principal of account {} in {}",
                config.account_id,
                config.policy.dir.display()
            )
        })
}

/// The caller the offline commands decide for: no source address, no TLS, now.
pub fn offline_caller(principal: PrincipalId) -> Caller {
    Caller {
        principal,
        source_ip: None,
        secure_transport: false,
        now_unix_nanos: time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
    }
}

fn explain(args: &Args, out: &mut dyn Write) -> Result<bool, String> {
    let (config, snapshot) = load(&args.config)?;
    let principal = principal(&config, &snapshot, &args.principal)?;
    let hypothetical = args.request.hypothetical();
    let prepared = hypothetical
        .prepare(&config.region)
        .map_err(|e| e.to_string())?;
    let auth = Authorizer::tracing(&snapshot, offline_caller(principal));
    let decided = prepared.decide(&auth);
    let text = explanation(&snapshot, &args.principal, principal, &decided, &auth);
    let _ = write!(out, "{text}");
    let _ = out.flush();
    Ok(decided.outcome == super::hypothetical::Outcome::Allow)
}

/// The verdict, the reason, what the proxy does besides, and every statement `auth` (a
/// tracing authorizer) evaluated: `explain`'s output, and what `test` prints on a failure.
pub fn explanation(
    snapshot: &Snapshot,
    arn: &str,
    principal: PrincipalId,
    decided: &Decided,
    auth: &Authorizer<'_>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verdict = match decided.outcome {
        super::hypothetical::Outcome::Allow => "ALLOWED",
        super::hypothetical::Outcome::Deny => "DENIED",
        super::hypothetical::Outcome::Empty => "DENIED (empty answer)",
    };
    let _ = writeln!(
        out,
        "{verdict}: {} by {arn}",
        decided.request.action.display
    );
    let _ = writeln!(out, "  {}", decided.describe(snapshot));
    let detail = decided.detail();
    if !detail.is_empty() {
        let _ = writeln!(out, "  {detail}");
    }
    let guardrail = decided
        .decision()
        .is_some_and(|d| matches!(d.reason, Reason::Guardrail(_)));
    if principal == ROOT && !guardrail {
        let _ = writeln!(
            out,
            "  (the account is not subject to identity policies; only guardrails apply)"
        );
    }
    let trace = auth.take_trace();
    if trace.is_empty() {
        let _ = writeln!(out, "  no policy statement was evaluated");
    } else {
        let _ = writeln!(out, "statements evaluated:");
        for entry in &trace {
            let _ = writeln!(out, "  {}", describe_entry(snapshot, entry));
        }
    }
    out
}

fn describe_entry(snapshot: &Snapshot, e: &TraceEntry) -> String {
    let policy = snapshot.policy(e.at.policy);
    let statement = &policy.statements[e.at.statement as usize];
    let place = match &policy.file {
        Some(f) => format!("{}:{}", f.display(), statement.line),
        None => "built-in".into(),
    };
    let scope = if e.at.group_scoped {
        "resource-group scope"
    } else {
        "account scope"
    };
    let effect = format!("{:?}", statement.effect);
    let head = format!(
        "{} statement {} ({effect}, {scope}) [{place}]",
        policy.name,
        e.at.statement + 1
    );
    let result = match &e.result {
        StatementResult::NotApplicable => format!("does not cover this action on {}", e.resource),
        StatementResult::Matches => "matches: every condition holds".into(),
        StatementResult::ConditionFailed(i) => format!(
            "condition failed: {} (found: {})",
            statement.conditions[*i].describe(),
            e.facts.get(*i).map_or("?", String::as_str)
        ),
        StatementResult::Error(i, err) => format!(
            "condition could not be evaluated: {} ({err})",
            statement.conditions[*i].describe()
        ),
    };
    format!("{head}: {result}")
}
