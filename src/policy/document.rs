//! Policy JSON → compiled [`Policy`], collecting every problem in a document with its line
//! and column and a hint, instead of stopping at the first.

use super::condition::Condition;
use super::json::{self, Member, Spanned, Value};
use super::pattern::Pattern;
use super::{Effect, Policy, Statement};
use crate::diagnostics::{Diagnostic, Diagnostics, Position, MAX_LISTED};
use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Parses and compiles one policy document. `file` is `None` for built-ins.
pub fn parse_policy(name: &str, file: Option<&Path>, source: &str) -> Result<Policy, Diagnostics> {
    let display_file = file.unwrap_or(Path::new(name));
    let mut cx = Checker {
        file: display_file,
        source,
        problems: Vec::new(),
        unlisted: 0,
    };
    let root = match json::parse(source) {
        Ok(root) => root,
        Err(e) => {
            let mut d = Diagnostic::error(
                display_file,
                Position::of_offset(source, e.offset),
                format!("invalid JSON: {}", e.message),
            );
            if let Some(h) = e.hint {
                d = d.with_hint(h);
            }
            return Err(Diagnostics(vec![d]));
        }
    };
    let mut statements = cx.document(&root);
    statements.shrink_to_fit();
    if cx.unlisted > 0 {
        cx.problems
            .push(Diagnostic::unlisted(display_file, cx.unlisted));
    }
    if cx.problems.is_empty() {
        Ok(Policy {
            name: name.into(),
            file: file.map(Arc::from),
            statements,
        })
    } else {
        Err(Diagnostics(cx.problems))
    }
}

struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    problems: Vec<Diagnostic>,
    /// Problems found beyond [`MAX_LISTED`].
    unlisted: usize,
}

impl Checker<'_> {
    fn at(&self, offset: usize) -> Position {
        Position::of_offset(self.source, offset)
    }

    /// False (and the problem counted) once [`MAX_LISTED`] are listed.
    fn room(&mut self) -> bool {
        if self.problems.len() < MAX_LISTED {
            return true;
        }
        self.unlisted += 1;
        false
    }

    fn error(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) {
        if !self.room() {
            return;
        }
        let mut d = Diagnostic::error(self.file, self.at(offset), message);
        d.hint = hint;
        self.problems.push(d);
    }

    /// The members of an object, reporting keys given twice (`what` names the object).
    fn members<'v>(&mut self, value: &'v Spanned, what: &str) -> Option<&'v [Member<'v>]> {
        let Value::Object(members) = &value.value else {
            self.error(
                value.offset,
                format!("{what} must be an object, not {}", value.value.kind()),
                None,
            );
            return None;
        };
        for (repeated, _) in repeated_keys(members) {
            let m = &members[repeated];
            self.error(
                m.key_offset,
                format!("\"{}\" appears twice in {what}", m.key),
                Some("JSON keeps only one of them; merge the two into one entry".into()),
            );
        }
        Some(members)
    }

    fn document(&mut self, root: &Spanned) -> Vec<Statement> {
        let Some(members) = self.members(root, "the policy") else {
            return Vec::new();
        };
        let mut statements = Vec::new();
        let (mut version, mut found_statements) = (false, false);
        for m in members {
            match &*m.key {
                "Version" => {
                    version = true;
                    if m.value.value != Value::String("1".into()) {
                        self.error(
                            m.value.offset,
                            "\"Version\" must be \"1\"",
                            Some("write \"Version\": \"1\"".into()),
                        );
                    }
                }
                "Statement" => {
                    found_statements = true;
                    match &m.value.value {
                        Value::Array(items) => {
                            for item in items {
                                statements.extend(self.statement(item));
                            }
                        }
                        Value::Object(_) => statements.extend(self.statement(&m.value)),
                        other => self.error(
                            m.value.offset,
                            format!(
                                "\"Statement\" must be a list of statements, not {}",
                                other.kind()
                            ),
                            None,
                        ),
                    }
                }
                other => self.error(
                    m.key_offset,
                    format!("unknown field \"{other}\" in a policy"),
                    Some("a policy has only \"Version\" and \"Statement\"".into()),
                ),
            }
        }
        if !version {
            self.error(
                root.offset,
                "the policy has no \"Version\"",
                Some("add \"Version\": \"1\"".into()),
            );
        }
        if !found_statements {
            self.error(
                root.offset,
                "the policy has no \"Statement\"",
                Some("add \"Statement\": [ ... ]".into()),
            );
        }
        statements
    }

    fn statement(&mut self, value: &Spanned) -> Option<Statement> {
        let members = self.members(value, "a statement")?;
        let before = self.problems.len();
        let mut effect = None;
        let mut sid = None;
        let mut actions: Option<(Vec<Pattern>, bool)> = None;
        let mut resources = None;
        let mut conditions = Vec::new();
        for m in members {
            match &*m.key {
                "Effect" => match &m.value.value {
                    Value::String(s) if s == "Allow" => effect = Some(Effect::Allow),
                    Value::String(s) if s == "Deny" => effect = Some(Effect::Deny),
                    _ => self.error(m.value.offset, "\"Effect\" must be \"Allow\" or \"Deny\"", None),
                },
                "Sid" => match &m.value.value {
                    Value::String(s) => sid = Some((**s).into()),
                    _ => self.error(m.value.offset, "\"Sid\" must be a string", None),
                },
                "Action" | "NotAction" => {
                    if actions.is_some() {
                        self.error(m.key_offset, "a statement has both \"Action\" and \"NotAction\"", Some("keep one of them".into()));
                    }
                    let list = self.string_list(&m.value, &m.key).into_iter().filter_map(|(offset, a)| self.action(offset, a)).collect();
                    actions = Some((list, m.key == "NotAction"));
                }
                "Resource" => {
                    resources = Some(self.string_list(&m.value, "Resource").into_iter().map(|(_, r)| Pattern::new(r)).collect());
                }
                "Condition" => conditions = self.condition_block(&m.value),
                "Principal" | "NotPrincipal" => self.error(
                    m.key_offset,
                    format!("\"{}\" is not allowed in an identity policy", m.key),
                    Some("policies here are attached to users and roles in principals.toml; remove this field".into()),
                ),
                other => self.error(
                    m.key_offset,
                    format!("unknown field \"{other}\" in a statement"),
                    Some("a statement has \"Effect\", \"Action\" or \"NotAction\", \"Resource\", and optionally \"Condition\" and \"Sid\"".into()),
                ),
            }
        }
        if effect.is_none() && !members.iter().any(|m| m.key == "Effect") {
            self.error(
                value.offset,
                "the statement has no \"Effect\"",
                Some("add \"Effect\": \"Allow\" or \"Deny\"".into()),
            );
        }
        if actions.is_none() {
            self.error(
                value.offset,
                "the statement has no \"Action\"",
                Some("add \"Action\": \"eci:*\" or a list of actions".into()),
            );
        }
        if resources.is_none() {
            self.error(
                value.offset,
                "the statement has no \"Resource\"",
                Some("add \"Resource\": \"*\" or a list of ARNs".into()),
            );
        }
        if self.problems.len() > before {
            return None;
        }
        let (mut actions, not_action) = actions?;
        let mut resources: Vec<Pattern> = resources?;
        // Lists are built by pushing, which leaves spare capacity; a snapshot keeps tens of
        // thousands of them for as long as it lives (docs/PERFORMANCE.md §3).
        actions.shrink_to_fit();
        resources.shrink_to_fit();
        conditions.shrink_to_fit();
        Some(Statement {
            sid,
            effect: effect?,
            actions,
            not_action,
            resources,
            conditions,
            line: self.at(value.offset).line,
        })
    }

    fn action(&mut self, offset: usize, action: &str) -> Option<Pattern> {
        let well_formed = action == "*"
            || action.split_once(':').is_some_and(|(service, name)| {
                !service.is_empty() && !name.is_empty() && !name.contains(':')
            });
        if !well_formed {
            self.error(
                offset,
                format!("\"{action}\" is not an action"),
                Some(
                    "actions look like \"eci:DescribeContainerGroups\", \"eci:Describe*\" or \"*\""
                        .into(),
                ),
            );
            return None;
        }
        Some(Pattern::new(&action.to_ascii_lowercase()))
    }

    /// A string or a non-empty list of strings, with each item's offset.
    fn string_list<'v>(&mut self, value: &'v Spanned, field: &str) -> Vec<(usize, &'v str)> {
        let items = match &value.value {
            Value::Array(items) => items.as_slice(),
            _ => std::slice::from_ref(value),
        };
        if items.is_empty() {
            self.error(
                value.offset,
                format!("\"{field}\" is an empty list"),
                Some("list at least one entry".into()),
            );
        }
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::String(s) if !s.is_empty() => out.push((item.offset, &**s)),
                Value::String(_) => {
                    self.error(item.offset, format!("an empty string in \"{field}\""), None)
                }
                other => self.error(
                    item.offset,
                    format!("\"{field}\" takes strings, not {}", other.kind()),
                    None,
                ),
            }
        }
        out
    }

    fn condition_block(&mut self, value: &Spanned) -> Vec<Condition> {
        let Value::Object(operators) = &value.value else {
            self.error(
                value.offset,
                format!(
                    "\"Condition\" must be an object, not {}",
                    value.value.kind()
                ),
                None,
            );
            return Vec::new();
        };
        let mut conditions = Vec::new();
        let repeated_operators = repeated_keys(operators);
        let mut repeated_operators = repeated_operators.iter().peekable();
        for (i, op) in operators.iter().enumerate() {
            if repeated_operators.next_if(|(r, _)| *r == i).is_some() {
                self.error(
                    op.key_offset,
                    format!(
                        "the operator \"{}\" appears twice in one condition block",
                        op.key
                    ),
                    Some("put all its keys in one \"{}\": {{ ... }} object".replace("{}", &op.key)),
                );
            }
            let Value::Object(keys) = &op.value.value else {
                self.error(
                    op.value.offset,
                    format!(
                        "\"{}\" must map condition keys to values, not be {}",
                        op.key,
                        op.value.value.kind()
                    ),
                    None,
                );
                continue;
            };
            let repeated = repeated_keys(keys);
            let mut repeated = repeated.iter().peekable();
            for (j, key) in keys.iter().enumerate() {
                if let Some(&(_, first)) = repeated.next_if(|(r, _)| *r == j) {
                    if !self.room() {
                        continue;
                    }
                    let first_line = self.at(keys[first].key_offset).line;
                    self.error(
                        key.key_offset,
                        format!("the key \"{}\" is repeated in the same \"{}\" block (first on line {first_line}); JSON keeps only one of them", key.key, op.key),
                        Some(format!(
                            "to allow several values, list them: \"{}\": [\"v1\", \"v2\"]; to require different tag pairs, write separate statements",
                            key.key
                        )),
                    );
                    continue;
                }
                let values = self.condition_values(&key.value, &key.key);
                if values.is_empty() {
                    continue;
                }
                let raw: Vec<&str> = values.iter().map(|&(_, v)| v).collect();
                match Condition::build(&op.key, &key.key, &raw) {
                    Ok(c) => conditions.push(c),
                    Err(e) => {
                        let offset = match e.value_index {
                            Some(i) => values[i].0,
                            None if e.message.starts_with("unknown condition operator") => {
                                op.key_offset
                            }
                            None => key.key_offset,
                        };
                        self.error(offset, e.message, e.hint);
                    }
                }
            }
        }
        conditions
    }

    /// Condition values: a scalar or a list of scalars, each read as text.
    fn condition_values<'v>(&mut self, value: &'v Spanned, key: &str) -> Vec<(usize, &'v str)> {
        let items = match &value.value {
            Value::Array(items) => items.as_slice(),
            _ => std::slice::from_ref(value),
        };
        if items.is_empty() {
            self.error(
                value.offset,
                format!("the condition on \"{key}\" lists no values"),
                Some("give at least one value".into()),
            );
        }
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::String(s) => out.push((item.offset, &**s)),
                Value::Number(n) => out.push((item.offset, *n)),
                Value::Bool(b) => out.push((item.offset, if *b { "true" } else { "false" })),
                other => self.error(
                    item.offset,
                    format!(
                        "a condition value must be a string, number or boolean, not {}",
                        other.kind()
                    ),
                    None,
                ),
            }
        }
        out
    }
}

/// `(i, first)` for each member `i` whose key member `first` (earlier in the same object)
/// already has, in ascending `i`. Objects are usually a handful of keys, compared pairwise;
/// a large one is indexed, so that a file repeating one key many times is not quadratic.
fn repeated_keys(members: &[Member]) -> Vec<(usize, usize)> {
    if members.len() <= 16 {
        return (0..members.len())
            .filter_map(|i| {
                let first = members[..i].iter().position(|e| e.key == members[i].key)?;
                Some((i, first))
            })
            .collect();
    }
    let mut firsts: HashMap<&str, usize> = HashMap::with_capacity(members.len());
    let mut repeated = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match firsts.entry(&*m.key) {
            Entry::Occupied(first) => repeated.push((i, *first.get())),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    repeated
}

#[cfg(test)]
mod tests;
