//! `ramgate explain`: one decision, taken by the real engine against the real policy
//! directory, and the reason in words: which statement allowed or denied, and for every
//! statement looked at, whether it applied and which condition failed.

use crate::catalogue::{self, Kind};
use crate::config::Config;
use crate::decision::{
    Authorizer, Caller, CreateOutcome, Decision, DescribePlan, Reason, TraceEntry,
};
use crate::model::{ContainerGroupMeta, Tags};
use crate::policy::StatementResult;
use crate::principals::ROOT;
use crate::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;

/// The command's arguments (see `ramgate explain --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub config: PathBuf,
    pub principal: String,
    pub action: String,
    pub resource_group: Option<String>,
    pub tags: Vec<(String, String)>,
    pub target_group: Option<String>,
    pub resource_tags: Vec<(String, String)>,
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

/// `k=v` for `--tag` and `--resource-tag`.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

const TARGET_ID: &str = "eci-explain-target";

fn explain(args: &Args, out: &mut dyn Write) -> Result<bool, String> {
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let snapshot =
        Snapshot::load(&config.policy.dir, config.account()).map_err(|e| e.to_string())?;
    let principal = snapshot
        .directory
        .by_arn(&config.account_id, &args.principal)
        .ok_or_else(|| {
            format!(
                "{} is not a principal of account {} in {}",
                args.principal,
                config.account_id,
                config.policy.dir.display()
            )
        })?;
    let caller = Caller {
        principal,
        source_ip: None,
        secure_transport: false,
        now_unix_nanos: time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
    };
    let auth = Authorizer::tracing(&snapshot, caller);
    let request_tags = Tags::from_pairs(args.tags.iter().cloned());
    let name = args.action.strip_prefix("eci:").unwrap_or(&args.action);
    let spec = catalogue::lookup(name)
        .filter(|_| !args.action.contains(':') || args.action.starts_with("eci:"));
    let target = args.target_group.as_ref().map(|g| ContainerGroupMeta {
        resource_group: g.clone(),
        tags: Tags::from_pairs(args.resource_tags.iter().cloned()),
    });
    let (decision, detail): (Decision, String) = match spec.map(|s| (s, s.kind)) {
        None if args.action.starts_with("eci:") => {
            return Err(format!(
                "{} is not an ECI action ramgate knows",
                args.action
            ))
        }
        None => {
            let lower = args.action.to_ascii_lowercase();
            (auth.decide_other(&lower, &request_tags), String::new())
        }
        Some((spec, Kind::Create)) => match auth.decide_create(
            spec.ram_action,
            args.resource_group.as_deref(),
            &request_tags,
        ) {
            CreateOutcome::Allow { group, decision } => (
                decision,
                format!(
                    "created in resource group {}",
                    snapshot.directory.group_id(group)
                ),
            ),
            CreateOutcome::Deny(decision) => (decision, String::new()),
            CreateOutcome::ServiceRoleNotAuthorized => {
                let _ = writeln!(
                    out,
                    "DENIED (403 Forbidden.ServiceRoleNotAuthorized)\n{}",
                    crate::principals::service_role_hint()
                );
                return Ok(false);
            }
        },
        Some((spec, Kind::Describe)) => {
            let ids: Vec<(&str, Option<&ContainerGroupMeta>)> =
                target.iter().map(|t| (TARGET_ID, Some(t))).collect();
            match auth.plan_describe(
                spec.ram_action,
                args.resource_group.as_deref(),
                &ids,
                &request_tags,
            ) {
                DescribePlan::SilentEmpty(reason) => (
                    Decision::denied(reason),
                    "answered with an empty list (silent denial)".into(),
                ),
                DescribePlan::Forward { decision, .. } => (
                    decision,
                    "forwarded; each returned item is checked again on its own tags".into(),
                ),
            }
        }
        Some((spec, Kind::Other)) => (
            auth.decide_other(spec.ram_action, &request_tags),
            String::new(),
        ),
        Some((spec, _)) => {
            let target = target.as_ref().ok_or("this action acts on a container group: give --target-group (and --resource-tag k=v for its tags)")?;
            let resulting = (spec.changes_tags && !request_tags.is_empty()).then(|| {
                let mut t = target.tags.clone();
                for (k, v) in request_tags.iter() {
                    t.set(k.to_owned(), v.to_owned());
                }
                t
            });
            let d = auth.decide_resource(
                spec.ram_action,
                TARGET_ID,
                Some(target),
                &request_tags,
                resulting.as_ref(),
            );
            let moves = args
                .resource_group
                .as_ref()
                .is_some_and(|g| *g != target.resource_group);
            if d.allowed && moves {
                let _ = writeln!(out, "DENIED (400 OperationDenied.ResourceGroupImmutable): a container group never changes resource group");
                return Ok(false);
            }
            (d, String::new())
        }
    };
    let verdict = if decision.allowed {
        "ALLOWED"
    } else {
        "DENIED"
    };
    let _ = writeln!(
        out,
        "{verdict}: {} by {}",
        display_action(&args.action),
        args.principal
    );
    let _ = writeln!(
        out,
        "  {}",
        decision.reason.describe(&snapshot, decision.allowed)
    );
    if !detail.is_empty() {
        let _ = writeln!(out, "  {detail}");
    }
    if !decision.allowed {
        let _ = writeln!(
            out,
            "  AccessDeniedDetail: NoPermissionType={} PolicyType={}",
            decision.reason.no_permission_type(false).as_str(),
            decision.reason.policy_type().as_str()
        );
    }
    if principal == ROOT && !matches!(decision.reason, Reason::Guardrail(_)) {
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
            let _ = writeln!(out, "  {}", describe_entry(&snapshot, entry));
        }
    }
    let _ = out.flush();
    Ok(decision.allowed)
}

fn display_action(action: &str) -> String {
    if action.contains(':') {
        action.to_owned()
    } else {
        format!("eci:{action}")
    }
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
