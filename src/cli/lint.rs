//! The warnings of `ramgate check` (SPEC §6): policies that load but cannot do what their
//! author meant.
//!
//! * an `Action` (or `NotAction`) pattern of service `eci` that matches no action of the
//!   catalogue — a misspelt name — with the closest name as a hint;
//! * a `Resource` pattern that can match neither a container group of this account and
//!   region (`acs:eci:<region>:<account>:containergroup/<id>`) nor `*` (the resource of
//!   actions on no group), in a statement that can apply to an ECI action. A type segment
//!   spelt in another case than `containergroup` gets its own message: ARNs are compared
//!   case-sensitively, so `ContainerGroup/*` silently never matches;
//! * a policy file attached to no principal and not a guardrail.
//!
//! Positions come from re-reading each file with the positioned JSON reader the loader
//! uses; the file has already loaded without error, so its shape is known good.

use crate::catalogue;
use crate::diagnostics::{Diagnostic, Position};
use crate::policy::json::{self, Spanned, Value};
use crate::policy::pattern::Pattern;
use crate::snapshot::{Snapshot, PRINCIPALS_FILE};
use std::collections::HashSet;
use std::path::PathBuf;

/// The account and region Resource patterns must be able to match; None: any.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Every warning for the policy files of a loaded directory (`sources` as read for it).
pub fn warnings(
    snapshot: &Snapshot,
    sources: &[(PathBuf, String)],
    scope: &Scope,
) -> Vec<Diagnostic> {
    let attached = attached_policies(snapshot);
    let mut warnings = Vec::new();
    for (path, source) in sources {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == PRINCIPALS_FILE {
            continue;
        }
        let policy_name = name.strip_suffix(".json").unwrap_or(name);
        if !attached.contains(policy_name) {
            warnings.push(
                Diagnostic::warning(
                    path,
                    Position { line: 1, column: 1 },
                    format!("the policy {policy_name} is attached to no principal and is not a guardrail: it has no effect"),
                )
                .with_hint(format!(
                    "attach it in principals.toml (attach = [{{ policy = \"{policy_name}\" }}]), or delete the file"
                )),
            );
        }
        let Ok(root) = json::parse(source) else {
            continue;
        };
        for statement in statements(&root) {
            lint_statement(statement, scope, &mut |offset, message, hint| {
                warnings.push(
                    Diagnostic::warning(path, Position::of_offset(source, offset), message)
                        .with_hint(hint),
                );
            });
        }
    }
    warnings
}

fn attached_policies(snapshot: &Snapshot) -> HashSet<&str> {
    let directory = &snapshot.directory;
    let ids = directory
        .principals
        .iter()
        .flat_map(|p| {
            p.account_policies
                .iter()
                .chain(p.group_policies.iter().map(|(_, policy)| policy))
        })
        .chain(directory.guardrails.iter());
    ids.map(|&id| &*snapshot.policy(id).name).collect()
}

fn statements<'v>(root: &'v Spanned<'v>) -> Vec<&'v Spanned<'v>> {
    let Value::Object(members) = &root.value else {
        return Vec::new();
    };
    members
        .iter()
        .filter(|m| m.key == "Statement")
        .flat_map(|m| match &m.value.value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![&m.value],
            _ => Vec::new(),
        })
        .collect()
}

/// A string or a list of strings, with offsets.
fn strings<'v>(value: &'v Spanned<'v>) -> Vec<(usize, &'v str)> {
    let items = match &value.value {
        Value::Array(items) => items.as_slice(),
        _ => std::slice::from_ref(value),
    };
    items
        .iter()
        .filter_map(|item| match &item.value {
            Value::String(s) => Some((item.offset, &**s)),
            _ => None,
        })
        .collect()
}

fn lint_statement(
    statement: &Spanned<'_>,
    scope: &Scope,
    warn: &mut dyn FnMut(usize, String, String),
) {
    let Value::Object(members) = &statement.value else {
        return;
    };
    let mut may_be_eci = false;
    for m in members
        .iter()
        .filter(|m| m.key == "Action" || m.key == "NotAction")
    {
        may_be_eci |= m.key == "NotAction";
        for (offset, action) in strings(&m.value) {
            let service = action.split_once(':').map_or(action, |(s, _)| s);
            may_be_eci |= Pattern::new(&service.to_ascii_lowercase()).matches("eci");
            if let Some((message, hint)) = unknown_action(action) {
                warn(offset, message, hint);
            }
        }
    }
    if !may_be_eci {
        return;
    }
    for m in members.iter().filter(|m| m.key == "Resource") {
        for (offset, resource) in strings(&m.value) {
            if let Some((message, hint)) = unmatchable_resource(resource, scope) {
                warn(offset, message, hint);
            }
        }
    }
}

/// An `eci:` pattern no catalogued action matches, and the closest name.
fn unknown_action(action: &str) -> Option<(String, String)> {
    let (service, name) = action.split_once(':')?;
    if !service.eq_ignore_ascii_case("eci") {
        return None;
    }
    let pattern = Pattern::new(&action.to_ascii_lowercase());
    if catalogue::all()
        .iter()
        .any(|a| pattern.matches(a.ram_action))
    {
        return None;
    }
    let closest = catalogue::all()
        .iter()
        .map(|a| {
            (
                strsim::levenshtein(&name.to_ascii_lowercase(), &a.name.to_ascii_lowercase()),
                a,
            )
        })
        .min_by_key(|(distance, _)| *distance);
    let hint = match closest {
        Some((distance, a)) if distance <= name.len().max(4) / 3 => {
            format!("did you mean \"{}\"?", a.display)
        }
        _ => "no ECI action ramgate forwards has this name; see the action list in SPEC §2 (eci:* covers them all)".to_owned(),
    };
    Some((
        format!("\"{action}\" matches no ECI action: this entry allows or denies nothing"),
        hint,
    ))
}

const TYPE: &str = "containergroup";

/// Why a Resource pattern can match no resource ramgate evaluates, if it cannot.
fn unmatchable_resource(resource: &str, scope: &Scope) -> Option<(String, String)> {
    if can_match(resource, scope) {
        return None;
    }
    let folded = fold_type(resource);
    if folded != resource && can_match(&folded, scope) {
        return Some((
            format!("the resource type in \"{resource}\" is not spelt \"{TYPE}\": ARNs are compared case-sensitively, so this pattern never matches"),
            format!("write \"{folded}\""),
        ));
    }
    let what = match (&scope.region, &scope.account) {
        (Some(r), Some(a)) => format!("container group of account {a} in region {r}"),
        _ => "ECI container group".to_owned(),
    };
    let example = format!(
        "acs:eci:{}:{}:{TYPE}/*",
        scope.region.as_deref().unwrap_or("*"),
        scope.account.as_deref().unwrap_or("*")
    );
    Some((
        format!("\"{resource}\" can match no {what}: the statement never applies to one"),
        format!("container groups are \"acs:eci:<region>:<account>:{TYPE}/<id>\"; write \"{example}\" or \"*\""),
    ))
}

/// `resource` with every case-insensitive `containergroup` spelt in lowercase.
fn fold_type(resource: &str) -> String {
    let lower = resource.to_ascii_lowercase();
    let mut out = String::with_capacity(resource.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(TYPE) {
        out.push_str(&resource[rest..at]);
        out.push_str(TYPE);
        rest = at + TYPE.len();
    }
    out.push_str(&resource[rest..]);
    out
}

/// One unit of the set of ARNs ramgate evaluates, as a pattern over characters.
#[derive(Clone, Copy)]
enum Unit {
    Char(char),
    /// Any run of characters without `:` (an unknown region or account, or the id).
    Segment,
}

/// Whether the wildcard pattern `resource` matches `*` or some
/// `acs:eci:<region>:<account>:containergroup/<id>`: the two patterns' languages
/// intersect, decided by a search over pairs of positions.
fn can_match(resource: &str, scope: &Scope) -> bool {
    if Pattern::new(resource).matches("*") {
        return true;
    }
    let mut arn: Vec<Unit> = "acs:eci:".chars().map(Unit::Char).collect();
    for part in [&scope.region, &scope.account] {
        match part {
            Some(literal) => arn.extend(literal.chars().map(Unit::Char)),
            None => arn.push(Unit::Segment),
        }
        arn.push(Unit::Char(':'));
    }
    arn.extend(TYPE.chars().chain(['/']).map(Unit::Char));
    arn.push(Unit::Segment);
    let pattern: Vec<char> = resource.chars().collect();
    let (p_len, a_len) = (pattern.len(), arn.len());
    let mut seen = vec![false; (p_len + 1) * (a_len + 1)];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        let index = i * (a_len + 1) + j;
        if seen[index] {
            continue;
        }
        seen[index] = true;
        if i == p_len && j == a_len {
            return true;
        }
        let p = pattern.get(i).copied();
        let a = arn.get(j).copied();
        // Moves that consume nothing: a star of either side matching the empty run.
        if p == Some('*') {
            stack.push((i + 1, j));
        }
        if matches!(a, Some(Unit::Segment)) {
            stack.push((i, j + 1));
        }
        // Moves that consume one character on both sides.
        match (p, a) {
            (None, _) | (_, None) => {}
            // The pattern's star takes the ARN's character and stays (taking one from a
            // segment changes neither position: nothing to explore).
            (Some('*'), Some(Unit::Char(_))) => stack.push((i, j + 1)),
            (Some('*'), Some(Unit::Segment)) => {}
            (Some(c), Some(Unit::Char(d))) if c == '?' || c == d => stack.push((i + 1, j + 1)),
            (Some(_), Some(Unit::Char(_))) => {}
            (Some(c), Some(Unit::Segment)) if c != ':' => stack.push((i + 1, j)),
            (Some(_), Some(Unit::Segment)) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            account: Some("1234567890123456".into()),
            region: Some("cn-hangzhou".into()),
        }
    }

    #[test]
    fn resource_patterns_that_can_match_this_account_and_region() {
        for ok in [
            "*",
            "acs:eci:*:*:containergroup/*",
            "acs:eci:cn-hangzhou:1234567890123456:containergroup/eci-1*",
            "acs:eci:*:containergroup/*",
            "acs:eci:cn-*:*:*",
            "acs:eci:?n-hangzhou:*:containergroup/x",
            "acs:*",
            "*:containergroup/abc",
        ] {
            assert!(can_match(ok, &scope()), "{ok}");
            assert!(can_match(ok, &Scope::default()), "{ok} with any account");
        }
        for never in [
            "acs:eci:cn-beijing:*:containergroup/*",
            "acs:eci:*:999:containergroup/*",
            "acs:ecs:*:*:instance/*",
            "acs:eci:*:*:ContainerGroup/*",
            "acs:eci:cn-hangzhou:1234567890123456:containergroup",
        ] {
            assert!(!can_match(never, &scope()), "{never}");
        }
        assert!(can_match(
            "acs:eci:cn-beijing:*:containergroup/*",
            &Scope::default()
        ));
        assert!(!can_match(
            "acs:eci:cn:beijing:1:containergroup/*",
            &Scope::default()
        ));
    }

    #[test]
    fn a_type_segment_in_another_case_gets_its_own_hint() {
        let (message, hint) =
            unmatchable_resource("acs:eci:*:*:ContainerGroup/*", &scope()).expect("warned");
        assert!(message.contains("case-sensitively"), "{message}");
        assert_eq!(hint, "write \"acs:eci:*:*:containergroup/*\"");
    }

    #[test]
    fn a_misspelt_action_is_named_with_the_closest_one() {
        let (message, hint) = unknown_action("eci:DescribeContainerGroup").expect("warned");
        assert!(message.contains("eci:DescribeContainerGroup"), "{message}");
        assert_eq!(hint, "did you mean \"eci:DescribeContainerGroups\"?");
        assert!(unknown_action("eci:Describe*").is_none());
        assert!(unknown_action("ECI:deletecontainergroup").is_none());
        assert!(unknown_action("ecs:DescribeSecurityGroups").is_none());
        let (_, hint) = unknown_action("eci:Frobnicate*").expect("warned");
        assert!(hint.contains("eci:*"), "{hint}");
    }
}
