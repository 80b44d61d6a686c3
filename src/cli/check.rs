//! `ramgate check DIR [--strict] [--config FILE]`: load a policy directory exactly as the
//! proxy would and print every problem as `<file>:<line>:<column>: error: <what>` plus a
//! `hint:` line, then the warnings of [`super::lint`] the same way. Exit 1 on any error, or
//! on any warning with `--strict`; else 0.
//!
//! `principals.toml` names no account id or region (they are `ramgate.toml`'s), so a
//! `Resource` pattern is checked against the account and region of `--config` when given,
//! and otherwise against any account and region (only patterns that can match no ECI
//! container group at all are reported).

use super::lint::{self, Scope};
use crate::config::Config;
use crate::snapshot::{self, Account, Snapshot};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The command's arguments (see `ramgate check --help`).
#[derive(Debug, Clone)]
pub struct Args {
    pub dir: PathBuf,
    pub strict: bool,
    pub config: Option<PathBuf>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> i32 {
    let code = check(args, out);
    let _ = out.flush();
    code
}

fn check(args: &Args, out: &mut dyn Write) -> i32 {
    let dir = &args.dir;
    let (account, scope) = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => {
                let scope = Scope {
                    account: Some(config.account_id.clone()),
                    region: Some(config.region.clone()),
                };
                (config.account(), scope)
            }
            Err(problems) => {
                let _ = writeln!(out, "{problems}");
                return 1;
            }
        },
        // The account id only shapes ARNs, which loading does not need.
        None => (
            Account {
                id: "0000000000000000".into(),
                region: "cn-hangzhou".into(),
            },
            Scope::default(),
        ),
    };
    let loaded = snapshot::read_sources(dir).and_then(|sources| {
        let snapshot = Snapshot::build(dir, account, sources.clone())?;
        Ok((snapshot, sources))
    });
    match loaded {
        Ok((snapshot, sources)) => {
            let mut warnings = snapshot.warnings.clone();
            warnings.extend(lint::warnings(&snapshot, &sources, &scope));
            for w in &warnings {
                let _ = writeln!(out, "{w}");
            }
            summary(dir, &snapshot, warnings.len(), args.strict, out)
        }
        Err(problems) => {
            for p in &problems.0 {
                let _ = writeln!(out, "{p}");
            }
            let errors = problems.0.iter().filter(|d| d.is_error()).count();
            let _ = writeln!(
                out,
                "{}: {errors} error(s); nothing would be loaded",
                dir.display()
            );
            1
        }
    }
}

fn summary(
    dir: &Path,
    snapshot: &Snapshot,
    warnings: usize,
    strict: bool,
    out: &mut dyn Write,
) -> i32 {
    let counts = format!(
        "{} policy files, {} principals, {} resource groups",
        snapshot.files.len().saturating_sub(1),
        snapshot.directory.principals.len(),
        snapshot.directory.resource_groups.len()
    );
    if strict && warnings > 0 {
        let _ = writeln!(
            out,
            "{}: {warnings} warning(s), which --strict makes fail ({counts})",
            dir.display()
        );
        return 1;
    }
    let noted = match warnings {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    };
    let _ = writeln!(out, "{}: ok ({counts}){noted}", dir.display());
    0
}
