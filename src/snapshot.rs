//! One policy snapshot: the whole policy directory (`principals.toml` and `<Policy>.json`
//! files) plus the built-in policies, loaded, validated and compiled together. The proxy
//! reads the current snapshot once per request; a reload builds a new one and swaps it in
//! whole, or changes nothing.

use crate::diagnostics::{Diagnostic, Diagnostics, Position};
use crate::policy::{builtin, document, shared, Policy};
use crate::principals::{self, Directory, PolicyId, PolicyNames};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
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
    /// SHA-256 of every file's name and content (each length-prefixed, in path order):
    /// published on `/v1/status`, so two replicas can compare what they enforce.
    pub content_hash: [u8; 32],
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

    /// [`Self::content_hash`] in lower-case hex, as `/v1/status` shows it.
    pub fn content_hash_hex(&self) -> String {
        hex::encode(self.content_hash)
    }

    /// Loads `dir`, collecting every problem of every file before failing.
    pub fn load(dir: &Path, account: Account) -> Result<Snapshot, Diagnostics> {
        Self::build(dir, account, read_sources(dir)?)
    }

    /// Builds a snapshot from file contents already read (`dir` names the directory in
    /// messages): `principals.toml` and `<PolicyName>.json` files.
    ///
    /// A policy's id is its place in the table (the built-ins, then the files by name), so
    /// the ids are known from the file names alone, and `principals.toml` (the larger part
    /// of a big directory's build) is resolved on a second thread while the policies
    /// compile.
    pub fn build(
        dir: &Path,
        account: Account,
        mut sources: Vec<(PathBuf, String)>,
    ) -> Result<Snapshot, Diagnostics> {
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems = Vec::new();
        let mut hasher = Sha256::new();
        let mut policy_files = Vec::with_capacity(sources.len());
        let mut principals_source = None;
        for (path, source) in &sources {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            for part in [name.as_bytes(), source.as_bytes()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
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
            policy_files.push((policy_name, path, source));
        }
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
        let mut policies = builtin::all();
        let policy_ids: HashMap<Arc<str>, PolicyId> = policies
            .iter()
            .map(|p| p.name.clone())
            .chain(policy_files.iter().map(|(name, _, _)| Arc::from(*name)))
            .enumerate()
            .map(|(i, name)| (name, i as PolicyId))
            .collect();
        let loaded = std::thread::scope(|scope| {
            let principals =
                scope.spawn(|| principals::load(principals_path, principals_source, &policy_ids));
            shared::sharing(|| {
                for (name, path, source) in &policy_files {
                    match document::parse_policy(name, Some(path), source) {
                        Ok(p) => policies.push(p),
                        Err(d) => problems.extend(d.0),
                    }
                }
            });
            principals
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let (directory, warnings) = match loaded {
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
            content_hash: hasher.finalize().into(),
            warnings,
            generation: 0,
            loaded_at: SystemTime::now(),
        })
    }
}

/// Reads every file a snapshot of `dir` is built from, sorted by path, reporting every
/// file that cannot be read. A large directory is read on a few threads: ten thousand
/// small files cost tens of milliseconds of system calls.
pub fn read_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, Diagnostics> {
    let paths = list_files(dir).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            dir,
            Position::default(),
            format!("cannot read the policy directory: {e}"),
        )
        .with_hint("check that [policy] dir points at a readable directory")])
    })?;
    let read = |paths: &[PathBuf]| -> Vec<Result<(PathBuf, String), Diagnostic>> {
        let mut buffer = Vec::new();
        paths
            .iter()
            .map(|path| match read_text(path, &mut buffer) {
                Ok(source) => Ok((path.clone(), source)),
                Err(e) => Err(Diagnostic::error(
                    path,
                    Position::default(),
                    format!("cannot read the file: {e}"),
                )),
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let results: Vec<_> = if paths.len() < 256 || threads == 1 {
        read(&paths)
    } else {
        std::thread::scope(|scope| {
            let chunks: Vec<_> = paths
                .chunks(paths.len().div_ceil(threads))
                .map(|chunk| scope.spawn(move || read(chunk)))
                .collect();
            chunks
                .into_iter()
                .flat_map(|chunk| {
                    chunk
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut sources = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok(source) => sources.push(source),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(Diagnostics(problems))
    }
}

/// A file's text, as `std::fs::read_to_string` reads it (the same errors) but without its
/// `stat` for the size: read into `buffer`, reused from file to file, then copied out. Of
/// the five system calls per file a reload of ten thousand files makes, that is one.
fn read_text(path: &Path, buffer: &mut Vec<u8>) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        if len == buffer.len() {
            buffer.resize((2 * len).max(64 * 1024), 0);
        }
        match file.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    match std::str::from_utf8(&buffer[..len]) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )),
    }
}

/// The files a snapshot is built from: `principals.toml` and `*.json` directly in `dir`
/// (links followed), skipping names that start with `.` (a ConfigMap's `..data` and
/// `..<timestamp>` entries).
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !(name == PRINCIPALS_FILE || name.ends_with(".json")) {
            continue;
        }
        // Only links (a ConfigMap's files are links into `..data`) need a second look.
        let file_type = entry.file_type()?;
        if file_type.is_file()
            || (file_type.is_symlink()
                && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
        {
            names.push(name);
        }
    }
    // One directory, names without '/': the names' order is the paths' order, and
    // comparing names is much cheaper than comparing paths component by component.
    names.sort_unstable();
    Ok(names.iter().map(|name| dir.join(name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_as_read_to_string_does() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(200_000);
        std::fs::write(dir.path().join("b.json"), &big).unwrap();
        std::fs::write(dir.path().join("a.json"), "é").unwrap();
        std::fs::write(dir.path().join("empty.json"), "").unwrap();
        std::fs::write(dir.path().join(PRINCIPALS_FILE), "").unwrap();
        std::fs::write(dir.path().join(".hidden.json"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let sources = read_sources(dir.path()).unwrap();
        let names: Vec<_> = sources
            .iter()
            .map(|(p, s)| {
                (
                    p.strip_prefix(dir.path()).unwrap().to_str().unwrap(),
                    s.len(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a.json", 2),
                ("b.json", 200_000),
                ("empty.json", 0),
                (PRINCIPALS_FILE, 0)
            ]
        );

        let bad = dir.path().join("c.json");
        std::fs::write(&bad, b"{\"\xff\"}").unwrap();
        let e = read_sources(dir.path()).unwrap_err().0;
        let expected = std::fs::read_to_string(&bad).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].message, format!("cannot read the file: {expected}"));
        assert_eq!(e[0].file, bad);
    }
}
