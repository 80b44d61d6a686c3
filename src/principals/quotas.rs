//! `[[quotas]]` of `principals.toml` (SPEC §9), resolved: whom each entry covers, for which
//! actions, how many requests per rolling minute. Names are checked like every other
//! reference in the file (a user or role that is not declared, an action the catalogue
//! does not know, a limit below 1 are errors at their line and column).
//!
//! A principal and action matched by several entries get the smallest limit
//! ([`Directory::quota`]); counting is [`crate::quota`]'s.

use super::file::{PrincipalsFile, QuotaEntry};
use super::{Builder, Directory, PrincipalId, PrincipalKind, ROOT};
use toml::Spanned;

/// Who an entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSubject {
    /// `root`, `user/<name>`, `role/<name>`.
    Principal(PrincipalId),
    /// `user/*`.
    EveryUser,
    /// `role/*`.
    EveryRole,
}

/// One resolved `[[quotas]]` entry.
#[derive(Debug, Clone)]
pub struct QuotaRule {
    pub subjects: Vec<QuotaSubject>,
    /// Catalogue action names; `None` is `*`, every action.
    pub actions: Option<Vec<&'static str>>,
    pub per_minute: u32,
}

impl QuotaRule {
    fn covers(&self, directory: &Directory, principal: PrincipalId, action: &str) -> bool {
        let kind = directory.principal(principal).kind;
        let subject = self.subjects.iter().any(|s| match s {
            QuotaSubject::Principal(id) => *id == principal,
            QuotaSubject::EveryUser => kind == PrincipalKind::User,
            QuotaSubject::EveryRole => kind == PrincipalKind::Role,
        });
        subject
            && self
                .actions
                .as_ref()
                .is_none_or(|actions| actions.contains(&action))
    }
}

impl Directory {
    /// The requests per minute `principal` may make of `action`: the smallest limit of the
    /// entries that match both, or `None` when none does.
    pub fn quota(&self, principal: PrincipalId, action: &str) -> Option<u32> {
        self.quotas
            .iter()
            .filter(|rule| rule.covers(self, principal, action))
            .map(|rule| rule.per_minute)
            .min()
    }

    /// `root`, `user/<name>` or `role/<name>`: how quotas and their counters name a
    /// principal.
    pub fn quota_name(&self, principal: PrincipalId) -> String {
        let p = self.principal(principal);
        match p.kind {
            PrincipalKind::Root => "root".into(),
            PrincipalKind::User => format!("user/{}", p.name),
            PrincipalKind::Role => format!("role/{}", p.name),
        }
    }
}

impl Builder<'_> {
    pub(super) fn quotas(&mut self, file: &PrincipalsFile) {
        for entry in &file.quotas {
            if let Some(rule) = self.quota(entry) {
                self.dir.quotas.push(rule);
            }
        }
    }

    fn quota(&mut self, entry: &QuotaEntry) -> Option<QuotaRule> {
        let mut ok = true;
        if entry.principals.get_ref().is_empty() {
            self.error(
                &entry.principals,
                "a quota must name at least one principal",
                Some("e.g. principals = [\"user/liumi\", \"role/*\", \"root\"]".into()),
            );
            ok = false;
        }
        let mut subjects = Vec::new();
        for name in entry.principals.get_ref() {
            match self.quota_subject(name) {
                Some(subject) => subjects.push(subject),
                None => ok = false,
            }
        }
        if entry.actions.get_ref().is_empty() {
            self.error(
                &entry.actions,
                "a quota must name at least one action",
                Some(
                    "e.g. actions = [\"DescribeContainerLog\"], or [\"*\"] for every action".into(),
                ),
            );
            ok = false;
        }
        let mut actions = Some(Vec::new());
        for name in entry.actions.get_ref() {
            if name.get_ref() == "*" {
                actions = None;
                continue;
            }
            match crate::catalogue::lookup(name.get_ref()) {
                Some(spec) => {
                    if let Some(list) = &mut actions {
                        list.push(spec.name);
                    }
                }
                None => {
                    self.error(
                        name,
                        format!("\"{}\" is not an ECI action", name.get_ref()),
                        Some("use the API name as the SDKs send it, e.g. \"DescribeContainerLog\" (case matters), or \"*\" for every action".into()),
                    );
                    ok = false;
                }
            }
        }
        let per_minute = *entry.per_minute.get_ref();
        let per_minute = match u32::try_from(per_minute) {
            Ok(n) if n >= 1 => n,
            _ => {
                self.error(
                    &entry.per_minute,
                    format!("per_minute must be between 1 and {}, not {per_minute}", u32::MAX),
                    Some("the number of requests allowed per rolling minute; remove the entry for no limit".into()),
                );
                ok = false;
                0
            }
        };
        ok.then_some(QuotaRule {
            subjects,
            actions,
            per_minute,
        })
    }

    fn quota_subject(&mut self, name: &Spanned<String>) -> Option<QuotaSubject> {
        let text = name.get_ref().as_str();
        let found = match text.split_once('/') {
            _ if text == "root" => Some(QuotaSubject::Principal(ROOT)),
            Some(("user", "*")) => Some(QuotaSubject::EveryUser),
            Some(("role", "*")) => Some(QuotaSubject::EveryRole),
            Some(("user", user)) => self.dir.user(user).map(QuotaSubject::Principal),
            Some(("role", role)) => self.dir.role(role).map(QuotaSubject::Principal),
            _ => {
                self.error(
                    name,
                    format!("\"{text}\" does not name a principal"),
                    Some("write root, user/<name>, role/<name>, user/* or role/*".into()),
                );
                return None;
            }
        };
        if found.is_none() {
            self.error(
                name,
                format!("\"{text}\" is not declared in this file"),
                Some("declare it under [[users]] or [[roles]], or fix the name".into()),
            );
        }
        found
    }
}
