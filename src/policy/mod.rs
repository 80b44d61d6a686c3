//! RAM policy documents as data: parsed from JSON with positions ([`document`]), compiled
//! once into matchers ([`Statement`]), and evaluated purely against a [`Context`] — no I/O,
//! no locks. Where policies are *enforced* is `crate::decision`.

pub mod builtin;
pub mod condition;
pub mod document;
pub mod json;
pub mod pattern;
pub mod shared;

pub use condition::Context;
use condition::{Condition, EvalError};
use pattern::Pattern;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<Box<str>>,
    pub effect: Effect,
    /// Lowercased patterns: action names are case-insensitive.
    actions: Vec<Pattern>,
    /// `NotAction`: the statement covers every action *except* those listed.
    not_action: bool,
    resources: Vec<Pattern>,
    pub conditions: Vec<Condition>,
    /// Where the statement starts in its file (0 for built-ins).
    pub line: u32,
}

/// What one statement says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementResult {
    /// Action and resource are not covered.
    NotApplicable,
    /// Covered, but condition `index` is false.
    ConditionFailed(usize),
    /// Covered and every condition holds.
    Matches,
    /// Covered, and condition `index` could not be evaluated.
    Error(usize, EvalError),
}

impl Statement {
    /// `action` must already be lowercased (the catalogue keeps a lowercase copy).
    pub fn covers(&self, action_lower: &str, resource: &str) -> bool {
        self.covers_action(action_lower) && self.resources.iter().any(|p| p.matches(resource))
    }

    /// Whether `Action` (or `NotAction`) takes in `action_lower`, whatever the resource.
    pub fn covers_action(&self, action_lower: &str) -> bool {
        let action_listed = self.actions.iter().any(|p| p.matches(action_lower));
        action_listed != self.not_action
    }

    pub fn evaluate(
        &self,
        action_lower: &str,
        resource: &str,
        ctx: &Context<'_>,
    ) -> StatementResult {
        if !self.covers(action_lower, resource) {
            return StatementResult::NotApplicable;
        }
        // Every condition is evaluated: an error anywhere must win over a false elsewhere,
        // whatever order the JSON lists them in, because an erroring Deny denies.
        let mut failed = None;
        for (i, c) in self.conditions.iter().enumerate() {
            match c.evaluate(ctx) {
                Ok(true) => {}
                Ok(false) => {
                    failed.get_or_insert(i);
                }
                Err(e) => return StatementResult::Error(i, e),
            }
        }
        failed.map_or(StatementResult::Matches, StatementResult::ConditionFailed)
    }

    /// What this statement can cover of `action_lower` on the resources whose names start
    /// with `resource_prefix`, conditions aside.
    pub fn covers_prefix(&self, action_lower: &str, resource_prefix: &str) -> pattern::PrefixMatch {
        use pattern::PrefixMatch;
        let action_listed = self.actions.iter().any(|p| p.matches(action_lower));
        if action_listed == self.not_action {
            return PrefixMatch::None;
        }
        self.resources
            .iter()
            .map(|p| p.on_prefix(resource_prefix))
            .max_by_key(|m| match m {
                PrefixMatch::None => 0,
                PrefixMatch::Some => 1,
                PrefixMatch::Every => 2,
            })
            .unwrap_or(PrefixMatch::None)
    }

    /// True when some condition reads a tag: such a statement cannot allow a request that
    /// has no tags in play, which is why Describe needs ids or tags.
    pub fn reads_tags(&self) -> bool {
        use condition::Key;
        self.conditions.iter().any(|c| {
            matches!(
                c.key,
                Key::EciTag(_) | Key::ResourceTag(_) | Key::RequestTag(_)
            )
        })
    }
}

/// A named, compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: Arc<str>,
    /// The file it came from; `None` for built-in system policies.
    pub file: Option<Arc<std::path::Path>>,
    pub statements: Vec<Statement>,
}
