//! Fuzz target: the `principals.toml` loader, through `ramgate::snapshot::Snapshot::build`
//! with the fuzzer's bytes as `principals.toml` beside the demo policies: TOML parsing,
//! reference resolution (policies, resource groups, access keys, mTLS ids) and the
//! diagnostics with their positions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramgate::snapshot::Snapshot;
use ramgate_fuzz::{demo_account, demo_sources};
use std::path::{Path, PathBuf};

/// `secret_file` is read at load time: keep the fuzzer away from device and process files
/// (`/dev/zero` would never end). Operators choose that path; attackers do not.
fn names_a_special_file(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => ["dev", "proc", "sys"].iter().any(|d| s.contains(d)),
        toml::Value::Array(items) => items.iter().any(names_a_special_file),
        toml::Value::Table(t) => t.values().any(names_a_special_file),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(table) = source.parse::<toml::Table>() {
        if table.values().any(names_a_special_file) {
            return;
        }
    }
    let mut sources = demo_sources();
    sources.retain(|(p, _)| p != Path::new("principals.toml"));
    sources.push((PathBuf::from("principals.toml"), source.to_owned()));
    match Snapshot::build(
        Path::new("/nonexistent/ramgate-fuzz"),
        demo_account(),
        sources,
    ) {
        Ok(snapshot) => {
            // A loaded directory is consistent: root first, exactly one default group,
            // every attachment resolved.
            let dir = &snapshot.directory;
            assert!(!dir.principals.is_empty());
            assert!((dir.default_group as usize) < dir.resource_groups.len());
            for p in &dir.principals {
                for id in &p.account_policies {
                    assert!((*id as usize) < snapshot.policies.len());
                }
                for (g, id) in &p.group_policies {
                    assert!((*g as usize) < dir.resource_groups.len());
                    assert!((*id as usize) < snapshot.policies.len());
                }
            }
            for key in dir.access_keys.values() {
                assert!((key.principal as usize) < dir.principals.len());
                assert!(!key.secret.expose().is_empty());
            }
        }
        Err(problems) => {
            assert!(!problems.0.is_empty());
            let _ = problems.to_string();
        }
    }
});
