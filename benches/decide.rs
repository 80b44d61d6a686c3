//! The cost of ONE authorization decision, which every proxied request pays:
//!
//! * `demo/*` — the demo policy set shipped in `config/policies` (SCENARIOS.md's setting):
//!   a tag-conditioned user on a matching group, a group-scoped user on a group of its
//!   group (also with the principal looked up by ARN first, as the identity header path
//!   does), and a Describe plan.
//! * `generated/*` — `benches/common`'s directory (the one the Cedar, memory and reload
//!   measurements use): 10,000 users and 10,000 policies with tag conditions, attached at
//!   account scope and to ~50 resource groups; each iteration decides the next of its
//!   fixed, pseudo-randomly drawn list of single-resource requests (different users,
//!   groups and tags, allowed and denied), so the median is that of a typical decision,
//!   not of one cached path.
//!
//! Criterion reports medians; nothing else is printed. Measurement times are short so
//! `cargo bench --bench decide` stays well under a minute (command-line flags such as
//! `--measurement-time` or `--quick` still override them).

mod common;

use common::{account, group, Group, Request, ACCOUNT_ID};
use criterion::{criterion_group, criterion_main, Criterion};
use ramgate::decision::{Authorizer, Caller, DescribePlan};
use ramgate::model::Tags;
use ramgate::principals::PrincipalId;
use ramgate::snapshot::Snapshot;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

fn caller(principal: PrincipalId) -> Caller {
    Caller {
        principal,
        source_ip: None,
        secure_transport: true,
        now_unix_nanos: 0,
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

fn generated(c: &mut Criterion) {
    let world = common::generated_world();
    let snapshot = Snapshot::build(Path::new("generated"), account(), world.sources)
        .unwrap_or_else(|e| panic!("the generated directory must load: {e}"));
    let user = |r: &Request| snapshot.directory.user(&r.user).expect("generated user");
    let requests: Vec<(PrincipalId, Request)> =
        world.requests.into_iter().map(|r| (user(&r), r)).collect();
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
        .filter(|(who, r)| decide(*who, r).allowed)
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
            let (who, r) = next.next().expect("cycle");
            decide(black_box(*who), black_box(r))
        })
    });
    g.bench_function("by_arn_then_decide_resource", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let (_, r) = next.next().expect("cycle");
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
