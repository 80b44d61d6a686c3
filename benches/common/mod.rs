//! What the benchmarks share: a large, generated policy directory (10,000 users, 10,000
//! tag-conditioned policies, account- and resource-group-scoped attachments) and a fixed
//! list of single-resource requests against it, so that every benchmark (the decision
//! benchmark, the Cedar comparison, the memory and reload measurements) works on the same
//! directory and the same requests, and every run on the same ones (a fixed seed).
//!
//! The explicit Deny compares `env` with `StringEquals` on `["prod", "production"]`: Cedar
//! has no case-insensitive comparison, and the Cedar comparison runs the very same
//! policies.
//!
//! Each bench target compiles this module on its own and uses part of it.
#![allow(dead_code)]

use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::snapshot::Account;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const ACCOUNT_ID: &str = "1234567890123456";
pub const REGION: &str = "cn-hangzhou";

pub const USERS: usize = 10_000;
pub const POLICIES: usize = 10_000;
pub const GROUPS: usize = 50;
pub const TEAMS: usize = 200;
pub const ENVS: &[&str] = &["dev", "test", "prod"];
/// Single-resource actions, as the catalogue spells their RAM action (lowercase).
pub const ACTIONS: &[&str] = &[
    "eci:deletecontainergroup",
    "eci:restartcontainergroup",
    "eci:describecontainerlog",
    "eci:execcontainercommand",
];
/// How many requests the generated list holds (cycled through by the benchmarks).
pub const REQUESTS: usize = 4096;

pub fn account() -> Account {
    Account {
        id: ACCOUNT_ID.into(),
        region: REGION.into(),
    }
}

/// A container group: its id, and what authorization reads about it.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub meta: ContainerGroupMeta,
}

pub fn group(id: &str, resource_group: &str, tags: &[(&str, &str)]) -> Group {
    Group {
        id: id.into(),
        meta: ContainerGroupMeta {
            resource_group: resource_group.into(),
            tags: Tags::from_pairs(tags.iter().copied()),
        },
    }
}

/// splitmix64: a fixed pseudo-random sequence, so every run benchmarks the same directory
/// and the same requests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Policy `i` allows its team (`team-<i % TEAMS>`) some actions on non-prod groups; every
/// fourth also denies deletes of prod-tagged groups, every tenth restricts by resource ARN.
pub fn policy_json(i: usize) -> String {
    let team = i % TEAMS;
    let actions = match i % 3 {
        0 => r#""eci:*""#,
        1 => r#"["eci:Describe*","eci:RestartContainerGroup"]"#,
        _ => r#"["eci:DeleteContainerGroup","eci:ExecContainerCommand","eci:Describe*"]"#,
    };
    let resource = if i % 10 == 0 {
        r#""acs:eci:*:*:containergroup/eci-1*""#
    } else {
        r#""acs:eci:*:*:containergroup/*""#
    };
    let mut json = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":{resource},
           "Condition":{{"StringEquals":{{"eci:tag/team":"team-{team}"}},
                        "StringNotEquals":{{"eci:tag/env":"prod"}}}}}}"#
    );
    if i % 4 == 0 {
        json.push_str(
            r#",{"Effect":"Deny","Action":"eci:DeleteContainerGroup","Resource":"*",
                "Condition":{"StringEquals":{"acs:ResourceTag/env":["prod","production"]}}}"#,
        );
    }
    json.push_str("]}");
    json
}

/// One request to decide: who (a user name and its ARN), what, on which container group.
pub struct Request {
    pub user: String,
    pub arn: String,
    pub action: &'static str,
    pub group: Group,
}

/// The generated directory (file name → content, as `Snapshot::build` takes it and as
/// [`write_dir`] writes it) and a fixed list of requests against it.
pub struct World {
    pub sources: Vec<(PathBuf, String)>,
    pub requests: Vec<Request>,
}

/// Builds the 10k/10k directory and [`REQUESTS`] requests.
pub fn generated_world() -> World {
    let mut rng = Rng(0x5eed);
    let mut toml = String::from("[account]\nguardrails = []\n\n");
    for g in 0..GROUPS {
        let default = if g == 0 { "default = true\n" } else { "" };
        writeln!(toml, "[[resource_groups]]\nid = \"rg-{g}\"\n{default}").unwrap();
    }
    // Each user: 2-4 policies, about a third of them scoped to one resource group.
    let mut attached: Vec<Vec<(usize, Option<usize>)>> = Vec::with_capacity(USERS);
    for u in 0..USERS {
        let picks: Vec<(usize, Option<usize>)> = (0..2 + rng.below(3))
            .map(|_| {
                let scope = (rng.below(3) == 0).then(|| rng.below(GROUPS));
                (rng.below(POLICIES), scope)
            })
            .collect();
        let attach: Vec<String> = picks
            .iter()
            .map(|(p, scope)| match scope {
                None => format!("{{ policy = \"p{p}\" }}"),
                Some(g) => format!("{{ policy = \"p{p}\", resource_group = \"rg-{g}\" }}"),
            })
            .collect();
        writeln!(
            toml,
            "[[users]]\nname = \"user-{u}\"\nattach = [{}]\n",
            attach.join(", ")
        )
        .unwrap();
        attached.push(picks);
    }
    toml.push_str(
        "[[roles]]\nname = \"AliyunECIContainerGroupRole\"\n\
         attach = [{ policy = \"AliyunECIContainerGroupRolePolicy\" }]\n",
    );
    let mut sources = vec![(PathBuf::from("principals.toml"), toml)];
    sources.extend((0..POLICIES).map(|i| (PathBuf::from(format!("p{i}.json")), policy_json(i))));

    // Requests: usually aimed at one of the user's own policies (its team, its group), so
    // that a realistic share is allowed; the rest random.
    let requests = (0..REQUESTS)
        .map(|n| {
            let u = rng.below(USERS);
            let aimed = rng.below(2) == 0;
            let (policy, scope) = attached[u][rng.below(attached[u].len())];
            let team = if aimed {
                policy % TEAMS
            } else {
                rng.below(TEAMS)
            };
            let rg = match scope {
                Some(g) if aimed => g,
                _ => rng.below(GROUPS),
            };
            let env = ENVS[rng.below(ENVS.len())];
            let team = format!("team-{team}");
            let user = format!("user-{u}");
            Request {
                arn: format!("acs:ram::{ACCOUNT_ID}:user/{user}"),
                user,
                action: ACTIONS[rng.below(ACTIONS.len())],
                group: group(
                    &format!("eci-{n}"),
                    &format!("rg-{rg}"),
                    &[("team", &team), ("env", env)],
                ),
            }
        })
        .collect();
    World { sources, requests }
}

/// Writes `sources` into `dir` (created if missing), for the programs that load a policy
/// directory from disk as `ramgate serve` does.
pub fn write_dir(dir: &Path, sources: &[(PathBuf, String)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in sources {
        std::fs::write(dir.join(name), content)?;
    }
    Ok(())
}

/// The median of `values` (sorted in place); 0 when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
