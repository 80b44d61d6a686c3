//! The scenario corpus (`tests/scenarios/*.json`): SCENARIOS.md's rows as data, shared by
//! the engine-level runner (`tests/scenarios.rs`) and the end-to-end one.
#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
pub struct World {
    pub groups: Vec<WorldGroup>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorldGroup {
    pub name: String,
    pub resource_group: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct File {
    pub setting: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub row: String,
    #[serde(default)]
    pub note: Option<String>,
    pub caller: String,
    pub action: String,
    /// `ResourceGroupId`.
    #[serde(default)]
    pub group: Option<String>,
    /// `Tag.N` (numbered in key order).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// World names for `ContainerGroupIds`.
    #[serde(default)]
    pub ids: Vec<String>,
    /// World name for `ContainerGroupId`.
    #[serde(default)]
    pub target: Option<String>,
    /// World names for `ResourceId.N` (tag APIs).
    #[serde(default)]
    pub resource_ids: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    Word(String),
    CreatedIn { created_in: String },
    Returns { returns: Vec<String> },
    Error { error: String },
}

#[derive(Debug, Deserialize)]
pub struct PolicyFileCases {
    pub cases: Vec<PolicyFileCase>,
}

#[derive(Debug, Deserialize)]
pub struct PolicyFileCase {
    pub row: String,
    pub file: String,
    pub content: String,
    pub expect: PolicyFileExpect,
}

#[derive(Debug, Deserialize)]
pub struct PolicyFileExpect {
    pub line: u32,
    pub column: u32,
    pub message_contains: Vec<String>,
    pub hint_contains: Vec<String>,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = root().join("tests/scenarios").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn world() -> World {
    read("world.json")
}

/// Every decision file (all but the world and the policy-file rows).
pub fn decision_files() -> Vec<(String, File)> {
    [
        "resource_groups.json",
        "tags.json",
        "guardrails.json",
        "service_role.json",
    ]
    .iter()
    .map(|n| (n.to_string(), read(n)))
    .collect()
}

pub fn policy_file_cases() -> PolicyFileCases {
    read("policy_files.json")
}

/// The demo policy directory, changed as a setting says, written to a fresh temp dir.
pub fn policy_dir(setting: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = root().join("config/policies");
    for entry in std::fs::read_dir(&demo).expect("config/policies") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    let principals = dir.path().join("principals.toml");
    let text = std::fs::read_to_string(&principals).expect("principals.toml");
    let changed = match setting {
        "demo" => text,
        "tag_policy_guardrail" => {
            text.replace("guardrails = []", "guardrails = [\"eci-tag-liumi-test\"]")
        }
        "no_service_role" => {
            let start = text
                .find("[[roles]]")
                .expect("the demo declares the service role");
            text[..start].to_owned()
        }
        other => panic!("unknown setting {other}"),
    };
    std::fs::write(&principals, changed).expect("write principals.toml");
    dir
}

/// The ARN of a scenario caller in the demo account.
pub fn arn(caller: &str) -> String {
    match caller {
        "root" => "acs:ram::1234567890123456:root".to_owned(),
        user => format!("acs:ram::1234567890123456:user/{user}"),
    }
}

/// The wire parameters of a case (without `Action`), with world names mapped to ids.
pub fn wire_params(case: &Case, id_of: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("Version".into(), "2018-08-08".into()),
        ("RegionId".into(), "cn-hangzhou".into()),
    ];
    if let Some(g) = &case.group {
        p.push(("ResourceGroupId".into(), g.clone()));
    }
    for (i, (k, v)) in case.tags.iter().enumerate() {
        p.push((format!("Tag.{}.Key", i + 1), k.clone()));
        p.push((format!("Tag.{}.Value", i + 1), v.clone()));
    }
    if !case.ids.is_empty() {
        let ids: Vec<String> = case.ids.iter().map(|n| id_of(n)).collect();
        p.push((
            "ContainerGroupIds".into(),
            serde_json::to_string(&ids).expect("json"),
        ));
    }
    if let Some(t) = &case.target {
        p.push(("ContainerGroupId".into(), id_of(t)));
    }
    if !case.resource_ids.is_empty() {
        p.push(("ResourceType".into(), "ContainerGroup".into()));
        for (i, n) in case.resource_ids.iter().enumerate() {
            p.push((format!("ResourceId.{}", i + 1), id_of(n)));
        }
    }
    if case.action == "CreateContainerGroup" {
        p.push(("ContainerGroupName".into(), "scenario".into()));
        p.push(("Container.1.Name".into(), "app".into()));
        p.push(("Container.1.Image".into(), "nginx".into()));
    }
    p.extend(case.params.iter().map(|(k, v)| (k.clone(), v.clone())));
    p
}
