//! One policy snapshot: the whole policy directory (`principals.toml` and `<Policy>.json`
//! files) plus the built-in policies, loaded, validated and compiled together. The proxy
//! reads the current snapshot once per request; a reload builds a new one and swaps it in
//! whole, or changes nothing.

use crate::diagnostics::{Diagnostic, Diagnostics, Position};
use crate::policy::{builtin, document, Policy};
use crate::principals::{self, Directory, PolicyId, PolicyNames};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub const PRINCIPALS_FILE: &str = "principals.toml";

/// What a snapshot needs from `ramgate.toml`.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Arc<str>,
    pub region: Arc<str>,
}

#[derive(Debug)]
pub struct Snapshot {
    pub account: Account,
    pub policies: Vec<Policy>,
    policy_ids: HashMap<Arc<str>, PolicyId>,
    pub directory: Directory,
    /// The files it was built from, sorted.
    pub files: Vec<PathBuf>,
    /// A hash of every file's name and content, to notice changes events missed.
    pub content_hash: u64,
    pub warnings: Vec<Diagnostic>,
    /// Set by whoever swaps it in; 0 until then.
    pub generation: u64,
    pub loaded_at: SystemTime,
}

impl PolicyNames for HashMap<Arc<str>, PolicyId> {
    fn policy_id(&self, name: &str) -> Option<PolicyId> {
        self.get(name).copied()
    }
}

impl Snapshot {
    pub fn policy(&self, id: PolicyId) -> &Policy {
        &self.policies[id as usize]
    }

    pub fn policy_id(&self, name: &str) -> Option<PolicyId> {
        self.policy_ids.get(name).copied()
    }

    /// Loads `dir`, collecting every problem of every file before failing.
    pub fn load(dir: &Path, account: Account) -> Result<Snapshot, Diagnostics> {
        let paths = list_files(dir).map_err(|e| {
            Diagnostics(vec![Diagnostic::error(
                dir,
                Position::default(),
                format!("cannot read the policy directory: {e}"),
            )
            .with_hint("check that [policy] dir points at a readable directory")])
        })?;
        let mut sources = Vec::with_capacity(paths.len());
        let mut problems = Vec::new();
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(source) => sources.push((path, source)),
                Err(e) => problems.push(Diagnostic::error(
                    &path,
                    Position::default(),
                    format!("cannot read the file: {e}"),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }
        Self::build(dir, account, sources)
    }

    /// Builds a snapshot from file contents already read (`dir` names the directory in
    /// messages): `principals.toml` and `<PolicyName>.json` files.
    pub fn build(
        dir: &Path,
        account: Account,
        mut sources: Vec<(PathBuf, String)>,
    ) -> Result<Snapshot, Diagnostics> {
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems = Vec::new();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut policies = builtin::all();
        let mut principals_source = None;
        for (path, source) in &sources {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            (name, source).hash(&mut hasher);
            if name == PRINCIPALS_FILE {
                principals_source = Some((path, source));
                continue;
            }
            let policy_name = name.strip_suffix(".json").unwrap_or(name);
            if builtin::is_builtin(policy_name) {
                problems.push(
                    Diagnostic::error(
                        path,
                        Position { line: 1, column: 1 },
                        format!("\"{policy_name}\" is the name of a built-in system policy"),
                    )
                    .with_hint("rename the file: a custom policy cannot replace a system policy"),
                );
                continue;
            }
            match document::parse_policy(policy_name, Some(path), source) {
                Ok(p) => policies.push(p),
                Err(d) => problems.extend(d.0),
            }
        }
        let policy_ids: HashMap<Arc<str>, PolicyId> = policies
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i as PolicyId))
            .collect();
        let Some((principals_path, principals_source)) = principals_source else {
            problems.push(
                Diagnostic::error(
                    &dir.join(PRINCIPALS_FILE),
                    Position::default(),
                    "the policy directory has no principals.toml",
                )
                .with_hint(
                    "add principals.toml with the account, resource groups, users and roles",
                ),
            );
            return Err(Diagnostics(problems));
        };
        let (directory, warnings) =
            match principals::load(principals_path, principals_source, &policy_ids) {
                Ok(ok) => ok,
                Err(d) => {
                    problems.extend(d.0);
                    return Err(Diagnostics(problems));
                }
            };
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }
        Ok(Snapshot {
            account,
            policies,
            policy_ids,
            directory,
            files: sources.into_iter().map(|(p, _)| p).collect(),
            content_hash: hasher.finish(),
            warnings,
            generation: 0,
            loaded_at: SystemTime::now(),
        })
    }
}

/// The files a snapshot is built from: `principals.toml` and `*.json` directly in `dir`
/// (links followed), skipping names that start with `.` (a ConfigMap's `..data` and
/// `..<timestamp>` entries).
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !(name == PRINCIPALS_FILE || name.ends_with(".json")) {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
