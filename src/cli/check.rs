//! `ramgate check DIR`: load a policy directory exactly as the proxy would and print every
//! problem as `<file>:<line>:<column>: error: <what>` plus a `hint:` line. Exit 1 on any
//! error, else 0 (warnings alone do not fail).

use crate::snapshot::{Account, Snapshot};
use std::io::Write;
use std::path::Path;

pub fn run(dir: &Path, out: &mut dyn Write) -> i32 {
    // The account id only shapes ARNs, which checking does not need.
    let account = Account {
        id: "0000000000000000".into(),
        region: "cn-hangzhou".into(),
    };
    let result = match Snapshot::load(dir, account) {
        Ok(snapshot) => {
            for w in &snapshot.warnings {
                let _ = writeln!(out, "{w}");
            }
            let _ = writeln!(
                out,
                "{}: ok ({} policy files, {} principals, {} resource groups)",
                dir.display(),
                snapshot.files.len().saturating_sub(1),
                snapshot.directory.principals.len(),
                snapshot.directory.resource_groups.len()
            );
            0
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
    };
    let _ = out.flush();
    result
}
