//! `principals.toml` as data: the account (guardrails, access keys, mTLS ids), resource
//! groups, users and roles with their policy attachments. Loading resolves every reference
//! (policy names, resource group ids) and every secret, and reports each problem with file,
//! line and column.

mod fast;
mod file;
mod quotas;
mod secret;

pub use quotas::{QuotaRule, QuotaSubject};

pub use secret::{KeyedMacs, Secret};

use crate::diagnostics::{Diagnostic, Diagnostics, Position, MAX_LISTED};
use crate::policy::builtin;
use file::{AccessKeyEntry, PrincipalEntry, PrincipalsFile};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// Index into [`Directory::principals`].
pub type PrincipalId = u32;
/// Index into the snapshot's policy table.
pub type PolicyId = u32;
/// Index into [`Directory::resource_groups`].
pub type GroupId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Root,
    User,
    Role,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The user or role name; `root` for the account.
    pub name: Arc<str>,
    /// Policies attached at account scope.
    pub account_policies: Vec<PolicyId>,
    /// Policies attached to one resource group each.
    pub group_policies: Vec<(GroupId, PolicyId)>,
}

#[derive(Debug, Clone)]
pub struct ResourceGroup {
    pub id: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Clone)]
pub struct AccessKey {
    pub principal: PrincipalId,
    pub secret: Secret,
    /// The signature HMACs, keyed with `secret` once, here (see [`KeyedMacs`]).
    pub macs: KeyedMacs,
}

/// Every principal and resource group, resolved. Principal 0 is the account (root).
#[derive(Debug, Clone)]
pub struct Directory {
    pub principals: Vec<Principal>,
    pub resource_groups: Vec<ResourceGroup>,
    pub default_group: GroupId,
    pub guardrails: Vec<PolicyId>,
    pub access_keys: HashMap<Arc<str>, AccessKey>,
    pub mtls_ids: HashMap<Arc<str>, PrincipalId>,
    /// `[[quotas]]`, in file order.
    pub quotas: Vec<QuotaRule>,
    users: HashMap<Arc<str>, PrincipalId>,
    roles: HashMap<Arc<str>, PrincipalId>,
    groups_by_id: HashMap<Arc<str>, GroupId>,
}

pub const ROOT: PrincipalId = 0;

impl Directory {
    pub fn principal(&self, id: PrincipalId) -> &Principal {
        &self.principals[id as usize]
    }

    pub fn user(&self, name: &str) -> Option<PrincipalId> {
        self.users.get(name).copied()
    }

    pub fn role(&self, name: &str) -> Option<PrincipalId> {
        self.roles.get(name).copied()
    }

    pub fn group(&self, id: &str) -> Option<GroupId> {
        self.groups_by_id.get(id).copied()
    }

    pub fn group_id(&self, group: GroupId) -> &str {
        &self.resource_groups[group as usize].id
    }

    /// `acs:ram::<account>:root|user/<n>|role/<n>|assumed-role/<n>/<session>` → principal.
    /// ARNs of other accounts, and malformed ones, are unknown.
    pub fn by_arn(&self, account_id: &str, arn: &str) -> Option<PrincipalId> {
        let rest = arn
            .strip_prefix("acs:ram::")?
            .strip_prefix(account_id)?
            .strip_prefix(':')?;
        if rest == "root" {
            return Some(ROOT);
        }
        if let Some(name) = rest.strip_prefix("user/") {
            return self.user(name);
        }
        if let Some(name) = rest.strip_prefix("role/") {
            return self.role(name);
        }
        let (role, session) = rest.strip_prefix("assumed-role/")?.split_once('/')?;
        (!session.is_empty() && !session.contains('/')).then_some(())?;
        self.role(role)
    }

    /// The ARN of a principal, as the backend and the decision log are told.
    pub fn arn(&self, account_id: &str, id: PrincipalId) -> String {
        let p = self.principal(id);
        match p.kind {
            PrincipalKind::Root => format!("acs:ram::{account_id}:root"),
            PrincipalKind::User => format!("acs:ram::{account_id}:user/{}", p.name),
            PrincipalKind::Role => format!("acs:ram::{account_id}:role/{}", p.name),
        }
    }
}

/// What loading needs from the policy side: the id of a policy name, if it exists.
pub trait PolicyNames {
    fn policy_id(&self, name: &str) -> Option<PolicyId>;
}

/// Whether the fast reader reads `source`; panics if it reads it other than the `toml`
/// crate does (spans included: `Spanned`'s `Debug` shows them), or reads what `toml`
/// rejects. For the unit tests and the fuzzer, which hold the two readers to one answer.
#[doc(hidden)]
pub fn fast_reader_agrees_with_toml(source: &str) -> bool {
    let Some(fast) = fast::read(source) else {
        return false;
    };
    match toml::from_str::<PrincipalsFile>(source) {
        Ok(slow) => assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{source}"),
        Err(e) => panic!("the fast reader read what toml rejects ({e}):\n{source}"),
    }
    true
}

/// Parses and resolves `principals.toml`. Warnings (e.g. no service role) come back with
/// the directory; any error fails the load with every problem found.
pub fn load(
    path: &Path,
    source: &str,
    policies: &dyn PolicyNames,
) -> Result<(Directory, Vec<Diagnostic>), Diagnostics> {
    // The fast reader takes the usual shape; anything else (including every invalid file)
    // goes to the `toml` crate, which reads it the same way or reports the exact error.
    let file = match fast::read(source) {
        Some(file) => file,
        None => toml::from_str::<PrincipalsFile>(source).map_err(|e| {
            let at = Position::of_offset(source, e.span().map_or(0, |s| s.start));
            let message = e.message().trim().to_owned();
            let hint = file::hint_for(&message);
            let mut d = Diagnostic::error(path, at, format!("invalid principals file: {message}"));
            d.hint = hint;
            Diagnostics(vec![d])
        })?,
    };
    let mut b = Builder {
        path,
        source,
        policies,
        problems: Vec::new(),
        unlisted: 0,
        dir: Directory {
            principals: Vec::new(),
            resource_groups: Vec::new(),
            default_group: 0,
            guardrails: Vec::new(),
            access_keys: HashMap::new(),
            mtls_ids: HashMap::new(),
            quotas: Vec::new(),
            users: HashMap::new(),
            roles: HashMap::new(),
            groups_by_id: HashMap::new(),
        },
        key_owner: HashMap::new(),
    };
    b.resource_groups(&file);
    b.account(&file);
    for (entries, kind) in [
        (&file.users, PrincipalKind::User),
        (&file.roles, PrincipalKind::Role),
    ] {
        for entry in entries {
            b.principal(entry, kind);
        }
    }
    b.dir.principals.shrink_to_fit();
    b.quotas(&file);
    let mut warnings = Vec::new();
    b.check_service_role(&mut warnings);
    if b.problems.iter().any(Diagnostic::is_error) {
        b.problems
            .sort_by_key(|d| (d.position.line, d.position.column));
        if b.unlisted > 0 {
            b.problems.push(Diagnostic::unlisted(path, b.unlisted));
        }
        return Err(Diagnostics(b.problems));
    }
    Ok((b.dir, warnings))
}

struct Builder<'a> {
    path: &'a Path,
    source: &'a str,
    policies: &'a dyn PolicyNames,
    problems: Vec<Diagnostic>,
    /// Problems found beyond [`MAX_LISTED`].
    unlisted: usize,
    dir: Directory,
    /// Access key ids and mTLS ids already taken, and by whom (for the error message).
    key_owner: HashMap<String, String>,
}

impl Builder<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> Position {
        Position::of_offset(self.source, s.span().start)
    }

    fn error<T>(&mut self, s: &Spanned<T>, message: impl Into<String>, hint: Option<String>) {
        // Past the listed ones, counted without finding the line: see [`MAX_LISTED`].
        if self.problems.len() >= MAX_LISTED {
            self.unlisted += 1;
            return;
        }
        let mut d = Diagnostic::error(self.path, self.at(s), message);
        d.hint = hint;
        self.problems.push(d);
    }

    fn resource_groups(&mut self, file: &PrincipalsFile) {
        let mut default = None;
        for g in &file.resource_groups {
            if self.dir.groups_by_id.contains_key(g.id.get_ref().as_str()) {
                self.error(
                    &g.id,
                    format!(
                        "the resource group \"{}\" is declared twice",
                        g.id.get_ref()
                    ),
                    Some("give each group its own id".into()),
                );
                continue;
            }
            let index = self.dir.resource_groups.len() as GroupId;
            let id: Arc<str> = g.id.get_ref().as_str().into();
            self.dir.groups_by_id.insert(id.clone(), index);
            self.dir.resource_groups.push(ResourceGroup {
                id,
                name: g.name.as_deref().unwrap_or(g.id.get_ref()).into(),
            });
            if g.default {
                if default.is_some() {
                    self.error(
                        &g.id,
                        "more than one resource group is marked default = true",
                        Some("exactly one group is the account's default".into()),
                    );
                }
                default = Some(index);
            }
        }
        match default {
            Some(d) => self.dir.default_group = d,
            None => self.problems.push(
                Diagnostic::error(self.path, Position { line: 1, column: 1 }, "no resource group is marked default = true")
                    .with_hint("add a [[resource_groups]] entry with default = true (e.g. id = \"rg-default\")"),
            ),
        }
    }

    fn account(&mut self, file: &PrincipalsFile) {
        let account = file.account.clone().unwrap_or_default();
        self.dir.principals.push(Principal {
            kind: PrincipalKind::Root,
            name: "root".into(),
            account_policies: Vec::new(),
            group_policies: Vec::new(),
        });
        for g in &account.guardrails {
            if let Some(id) = self.policy(g) {
                self.dir.guardrails.push(id);
            }
        }
        self.credentials(ROOT, "the account", &account.access_keys, &account.mtls);
    }

    fn policy(&mut self, name: &Spanned<String>) -> Option<PolicyId> {
        let found = self.policies.policy_id(name.get_ref());
        if found.is_none() {
            self.error(
                name,
                format!("no policy named \"{}\"", name.get_ref()),
                Some(format!(
                    "add {}.json to the policy directory, or use a built-in policy such as {}",
                    name.get_ref(),
                    builtin::FULL_ACCESS
                )),
            );
        }
        found
    }

    fn principal(&mut self, entry: &PrincipalEntry, kind: PrincipalKind) {
        let id = self.dir.principals.len() as PrincipalId;
        let name = entry.name.get_ref().as_str();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !valid_name {
            self.error(
                &entry.name,
                format!("\"{name}\" is not a valid name"),
                Some("use 1-64 letters, digits, '.', '_', '-' or '@'".into()),
            );
        }
        let (table, what) = match kind {
            PrincipalKind::Role => (&mut self.dir.roles, "role"),
            _ => (&mut self.dir.users, "user"),
        };
        let shared_name: Arc<str> = name.into();
        if table.insert(shared_name.clone(), id).is_some() {
            self.error(
                &entry.name,
                format!("the {what} \"{name}\" is declared twice"),
                None,
            );
        }
        let mut principal = Principal {
            kind,
            name: shared_name,
            account_policies: Vec::new(),
            group_policies: Vec::new(),
        };
        for a in &entry.attach {
            let Some(policy) = self.policy(&a.policy) else {
                continue;
            };
            match &a.resource_group {
                None => principal.account_policies.push(policy),
                Some(g) => match self.dir.group(g.get_ref()) {
                    Some(group) => principal.group_policies.push((group, policy)),
                    None => self.error(
                        g,
                        format!("no resource group with id \"{}\"", g.get_ref()),
                        Some("declare it under [[resource_groups]], or use the id (not the name) of a declared group".into()),
                    ),
                },
            }
        }
        // Pushing leaves spare capacity; a snapshot keeps 10,000s of these.
        principal.account_policies.shrink_to_fit();
        principal.group_policies.shrink_to_fit();
        self.dir.principals.push(principal);
        // Most principals have no credentials here: no owner name to format for them.
        if !(entry.access_keys.is_empty() && entry.mtls.is_empty()) {
            self.credentials(
                id,
                &format!("{what} {name}"),
                &entry.access_keys,
                &entry.mtls,
            );
        }
    }

    fn credentials(
        &mut self,
        owner: PrincipalId,
        owner_name: &str,
        keys: &[AccessKeyEntry],
        mtls: &[Spanned<String>],
    ) {
        for k in keys {
            if let Some(taken_by) = self.key_owner.get(k.id.get_ref()) {
                let message = format!(
                    "the access key id \"{}\" already belongs to {taken_by}",
                    k.id.get_ref()
                );
                self.error(
                    &k.id,
                    message,
                    Some("an access key belongs to one principal only".into()),
                );
                continue;
            }
            self.key_owner
                .insert(k.id.get_ref().clone(), owner_name.to_owned());
            let base = self.path.parent().unwrap_or(Path::new("."));
            let resolved = secret::resolve(k, base).and_then(|secret| {
                let macs = KeyedMacs::new(secret.expose()).ok_or_else(|| {
                    (
                        format!(
                            "the secret of access key \"{}\" cannot key an HMAC",
                            k.id.get_ref()
                        ),
                        "report this as a bug of ramgate".to_owned(),
                    )
                })?;
                Ok((secret, macs))
            });
            match resolved {
                Ok((secret, macs)) => {
                    self.dir.access_keys.insert(
                        k.id.get_ref().as_str().into(),
                        AccessKey {
                            principal: owner,
                            secret,
                            macs,
                        },
                    );
                }
                Err((message, hint)) => self.error(&k.id, message, Some(hint)),
            }
        }
        for m in mtls {
            let key = format!("mtls:{}", m.get_ref());
            if let Some(taken_by) = self.key_owner.get(&key) {
                let message = format!(
                    "the mTLS identity \"{}\" already belongs to {taken_by}",
                    m.get_ref()
                );
                self.error(
                    m,
                    message,
                    Some("an mTLS identity belongs to one principal only".into()),
                );
                continue;
            }
            self.key_owner.insert(key, owner_name.to_owned());
            self.dir.mtls_ids.insert(m.get_ref().as_str().into(), owner);
        }
    }

    fn check_service_role(&mut self, warnings: &mut Vec<Diagnostic>) {
        let role_policy = self.policies.policy_id(builtin::SERVICE_ROLE_POLICY);
        let authorized = self.dir.role(builtin::SERVICE_ROLE).is_some_and(|r| {
            role_policy.is_some_and(|p| self.dir.principal(r).account_policies.contains(&p))
        });
        if !authorized {
            warnings.push(
                Diagnostic::warning(
                    self.path,
                    Position { line: 1, column: 1 },
                    format!("the service role {} with {} is not declared: every CreateContainerGroup will be refused", builtin::SERVICE_ROLE, builtin::SERVICE_ROLE_POLICY),
                )
                .with_hint(service_role_hint()),
            );
        }
    }
}

/// How to authorize the ECI service role, for `ramgate check` and the API error.
pub fn service_role_hint() -> String {
    format!(
        "authorize the service role: add [[roles]] name = \"{}\" with attach = [{{ policy = \"{}\" }}] to principals.toml",
        builtin::SERVICE_ROLE,
        builtin::SERVICE_ROLE_POLICY
    )
}

#[cfg(test)]
mod tests;
