//! The cost of ONE authorization decision, which every proxied request pays:
//!
//! * `demo/*` — the demo policy set shipped in `config/policies` (SCENARIOS.md's setting):
//!   a tag-conditioned user on a matching group, a group-scoped user on a group of its
//!   group (also with the principal looked up by ARN first, as the identity header path
//!   does), and a Describe plan.
//! * `generated/*` — a large directory built in memory: 10,000 users and 10,000 policies
//!   with tag conditions, attached at account scope and to ~50 resource groups; each
//!   iteration decides the next of a fixed, pseudo-randomly drawn list of single-resource
//!   requests (different users, groups and tags, allowed and denied), so the median is
//!   that of a typical decision, not of one cached path.
//!
//! Criterion reports medians; nothing else is printed. Measurement times are short so
//! `cargo bench --bench decide` stays well under a minute (command-line flags such as
//! `--measurement-time` or `--quick` still override them).

use criterion::{criterion_group, criterion_main, Criterion};
use ramgate::decision::{Authorizer, Caller, DescribePlan};
use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::principals::PrincipalId;
use ramgate::snapshot::{Account, Snapshot};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ACCOUNT_ID: &str = "1234567890123456";

fn account() -> Account {
    Account {
        id: ACCOUNT_ID.into(),
        region: "cn-hangzhou".into(),
    }
}

fn caller(principal: PrincipalId) -> Caller {
    Caller {
        principal,
        source_ip: None,
        secure_transport: true,
        now_unix_nanos: 0,
    }
}

/// A container group: its id, and what authorization reads about it.
struct Group {
    id: String,
    meta: ContainerGroupMeta,
}

fn group(id: &str, resource_group: &str, tags: &[(&str, &str)]) -> Group {
    Group {
        id: id.into(),
        meta: ContainerGroupMeta {
            resource_group: resource_group.into(),
            tags: Tags::from_pairs(tags.iter().copied()),
        },
    }
}

fn demo(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies");
    let snapshot = Snapshot::load(&dir, account()).expect("the demo policies load");
    let user = |name| snapshot.directory.user(name).expect("a demo user");
    let (liumi, test) = (user("liumi"), user("test"));
    let tagged = group(
        "eci-liumi",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    );
    let in_test_a = group("eci-a", "rg-test-a", &[]);
    let no_tags = Tags::new();
    let liumi_tags = Tags::from_pairs([("name", "liumi"), ("env", "test")]);

    // Check once, outside the measurement, that each variant takes the path it names.
    let restart = |who, target: &Group| {
        Authorizer::new(&snapshot, caller(who)).decide_resource(
            "eci:restartcontainergroup",
            &target.id,
            Some(&target.meta),
            &no_tags,
            None,
        )
    };
    assert!(restart(liumi, &tagged).allowed);
    assert!(restart(test, &in_test_a).allowed);
    let describe = || {
        Authorizer::new(&snapshot, caller(liumi)).plan_describe(
            "eci:describecontainergroups",
            None,
            &[],
            &liumi_tags,
        )
    };
    assert!(matches!(describe(), DescribePlan::Forward { .. }));
    let test_arn = format!("acs:ram::{ACCOUNT_ID}:user/test");

    let mut g = c.benchmark_group("demo");
    g.bench_function("liumi_restart_tagged_group", |b| {
        b.iter(|| restart(black_box(liumi), black_box(&tagged)))
    });
    g.bench_function("test_restart_in_rg_test_a", |b| {
        b.iter(|| restart(black_box(test), black_box(&in_test_a)))
    });
    g.bench_function("test_restart_in_rg_test_a_by_arn", |b| {
        b.iter(|| {
            let who = snapshot
                .directory
                .by_arn(ACCOUNT_ID, black_box(&test_arn))
                .expect("known");
            restart(who, black_box(&in_test_a))
        })
    });
    g.bench_function("liumi_describe_plan_by_tags", |b| {
        b.iter(|| black_box(describe()))
    });
    g.finish();
}

/// splitmix64: a fixed pseudo-random sequence, so every run benchmarks the same directory
/// and the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const USERS: usize = 10_000;
const POLICIES: usize = 10_000;
const GROUPS: usize = 50;
const TEAMS: usize = 200;
const ENVS: &[&str] = &["dev", "test", "prod"];
const ACTIONS: &[&str] = &[
    "eci:deletecontainergroup",
    "eci:restartcontainergroup",
    "eci:describecontainerlog",
    "eci:execcontainercommand",
];

/// Policy `i` allows its team (`team-<i % TEAMS>`) some actions on non-prod groups; every
/// fourth also denies deletes of prod-tagged groups, every tenth restricts by resource ARN.
fn policy_json(i: usize) -> String {
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
                "Condition":{"StringEqualsIgnoreCase":{"acs:ResourceTag/env":["prod","PROD"]}}}"#,
        );
    }
    json.push_str("]}");
    json
}

/// One request to decide: who, what, on which container group.
struct Request {
    principal: PrincipalId,
    arn: String,
    action: &'static str,
    group: Group,
}

/// The generated directory and a fixed list of requests against it.
fn generated_world() -> (Snapshot, Vec<Request>) {
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
    let snapshot = Snapshot::build(Path::new("generated"), account(), sources)
        .unwrap_or_else(|e| panic!("the generated directory must load: {e}"));

    // Requests: usually aimed at one of the user's own policies (its team, its group), so
    // that a realistic share is allowed; the rest random.
    let requests = (0..4096)
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
            let name = format!("user-{u}");
            Request {
                principal: snapshot.directory.user(&name).expect("generated user"),
                arn: format!("acs:ram::{ACCOUNT_ID}:user/{name}"),
                action: ACTIONS[rng.below(ACTIONS.len())],
                group: group(
                    &format!("eci-{n}"),
                    &format!("rg-{rg}"),
                    &[("team", &team), ("env", env)],
                ),
            }
        })
        .collect();
    (snapshot, requests)
}

fn generated(c: &mut Criterion) {
    let (snapshot, requests) = generated_world();
    let no_tags = Tags::new();
    let decide = |who, r: &Request| {
        Authorizer::new(&snapshot, caller(who)).decide_resource(
            r.action,
            &r.group.id,
            Some(&r.group.meta),
            &no_tags,
            None,
        )
    };
    // Both outcomes must be common, or the median describes only one path.
    let allowed = requests
        .iter()
        .filter(|r| decide(r.principal, r).allowed)
        .count();
    assert!(
        allowed * 10 >= requests.len() && allowed * 10 <= requests.len() * 9,
        "{allowed} of {} generated requests allowed",
        requests.len()
    );

    let mut g = c.benchmark_group("generated_10k");
    g.bench_function("decide_resource", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let r = next.next().expect("cycle");
            decide(black_box(r.principal), black_box(r))
        })
    });
    g.bench_function("by_arn_then_decide_resource", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let r = next.next().expect("cycle");
            let who = snapshot
                .directory
                .by_arn(ACCOUNT_ID, black_box(&r.arn))
                .expect("known");
            decide(who, black_box(r))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = demo, generated
}
criterion_main!(benches);
