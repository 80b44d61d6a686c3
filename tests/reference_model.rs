//! Model-based test of the decision engine: random policy directories and requests, drawn
//! from a small alphabet so that matches, near-misses and evaluation errors are all
//! common, are decided by the engine (`Snapshot::build` + `Authorizer`) and by the
//! independent reference evaluator in `tests/reference/`, and the answers must agree.
//!
//! Covered: single-resource actions (with and without a tag change), Create, whether one
//! item survives a Describe, and actions on no container group; users with account- and
//! group-scoped attachments over two or three resource groups, root, and guardrails.
//! The run also counts outcomes and fails if fewer than 10% of decisions go either way,
//! so the generator cannot silently drift into testing only "deny".
//!
//! Besides: the engine's wildcard patterns against the reference matcher; the shipped demo
//! directory read by the reference's own loader (a few SCENARIOS rows, then a grid against
//! the engine); and, ignored until fixed, the minimal case of a known engine bug.

mod reference;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use ramgate::decision::{Authorizer, Caller, CreateOutcome, DescribePlan};
use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::principals::ROOT;
use ramgate::snapshot::{Account, Snapshot};
use reference::{Attachment, DescribeRequest, Env, RefTags, Target, Who, World};
use std::cell::Cell;
use std::net::IpAddr;
use std::path::Path;

const ACCOUNT: &str = "123";
const REGION: &str = "cn-hangzhou";
const USER: &str = "u";

/// How many random worlds (each asked [`QUERIES`] questions) one run draws by default;
/// `PROPTEST_CASES` overrides it.
const WORLDS: u32 = 2000;

const TAG_KEYS: &[&str] = &["env", "app"];
const TAG_VALUES: &[&str] = &["dev", "DEV", "7"];
const GROUPS: &[&str] = &["rg-default", "rg-a", "rg-b"];
/// Groups a container group may be in: `rg-gone` is never declared (a group removed by a
/// reload), `rg-b` only in some worlds.
const TARGET_GROUPS: &[&str] = &["rg-default", "rg-a", "rg-b", "rg-gone"];
const IDS: &[&str] = &["eci-1", "eci-2", "eci-10"];

const POLICY_ACTIONS: &[&str] = &[
    "eci:DeleteContainerGroup",
    "eci:Describe*",
    "eci:*",
    "eci:RestartContainerGroup",
    "ecs:*",
    "ECI:restartcontainergroup",
    "eci:CreateContainerGroup",
    "eci:*ContainerGroup?",
];
const POLICY_RESOURCES: &[&str] = &[
    "*",
    "acs:eci:*:*:containergroup/*",
    "acs:eci:cn-hangzhou:123:containergroup/eci-1",
    "acs:eci:*:123:containergroup/eci-?",
    "acs:eci:cn-hangzhou:999:containergroup/*",
];
const SINGLE_ACTIONS: &[&str] = &[
    "eci:DeleteContainerGroup",
    "eci:RestartContainerGroup",
    "eci:DescribeContainerLog",
    "eci:UpdateContainerGroup",
    "eci:ExecContainerCommand",
];
const OTHER_ACTIONS: &[&str] = &["eci:DescribeRegions", "ecs:DescribeSecurityGroups"];
const SOURCE_IPS: &[Option<&str>] = &[
    None,
    Some("10.1.2.3"),
    Some("192.168.1.1"),
    Some("172.16.0.1"),
    Some("::ffff:10.1.2.3"),
];

/// One `Operator: { Key: values }` entry.
#[derive(Debug, Clone)]
struct Cond {
    op: &'static str,
    key: String,
    values: Vec<String>,
    /// Write a single value as a one-item list.
    as_list: bool,
    /// Write values as JSON numbers or booleans rather than strings.
    bare: bool,
}

#[derive(Debug, Clone)]
struct Stmt {
    deny: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    resources: Vec<&'static str>,
    conds: Vec<Cond>,
    /// Write a one-item `Action` / `Resource` as a bare string rather than a list.
    bare_strings: bool,
}

#[derive(Debug, Clone)]
struct WorldSpec {
    /// Policy `p<i>` has these statements.
    policies: Vec<Vec<Stmt>>,
    with_rg_b: bool,
    /// The user's attachments: (policy index, scope).
    attach: Vec<(usize, Option<&'static str>)>,
    /// Indexes of guardrail policies (usually none).
    guardrails: Vec<usize>,
    service_role: bool,
}

#[derive(Debug, Clone)]
struct TargetSpec {
    id: &'static str,
    group: &'static str,
    tags: RefTags,
}

#[derive(Debug, Clone, Copy)]
struct EnvSpec {
    ip: Option<&'static str>,
    secure: bool,
}

/// How the tags of a single-resource request change, if they do.
#[derive(Debug, Clone)]
enum Change {
    None,
    /// `Tag.N` add or replace keys of the current tags (UpdateContainerGroup, TagResources).
    Overlay,
    /// Any resulting tags (UntagResources can produce any subset).
    To(RefTags),
}

#[derive(Debug, Clone)]
enum Query {
    Single {
        root: bool,
        action: &'static str,
        target: TargetSpec,
        request_tags: RefTags,
        change: Change,
        env: EnvSpec,
    },
    Create {
        root: bool,
        group: Option<&'static str>,
        tags: RefTags,
        env: EnvSpec,
    },
    Describe {
        root: bool,
        group: Option<&'static str>,
        /// Name the item's id (and a decoy's) in `ContainerGroupIds`.
        with_ids: bool,
        tags: RefTags,
        item: TargetSpec,
        decoy: TargetSpec,
        env: EnvSpec,
    },
    Other {
        root: bool,
        action: &'static str,
        tags: RefTags,
        env: EnvSpec,
    },
}

const QUERIES: usize = 12;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn tag_key() -> impl Strategy<Value = String> {
    (
        // Key names are case-insensitive before the `/`.
        select(
            &[
                "eci:tag/",
                "acs:ResourceTag/",
                "acs:RequestTag/",
                "acs:resourcetag/",
            ][..],
        ),
        // Tag keys are case-sensitive: `Env` is never a tag here.
        prop_oneof![6 => select(TAG_KEYS), 1 => Just("Env")],
    )
        .prop_map(|(prefix, key)| format!("{prefix}{key}"))
}

fn cond() -> impl Strategy<Value = Cond> {
    let make = |op, key, values: Vec<&str>, as_list, bare| Cond {
        op,
        key,
        values: strings(&values),
        as_list,
        bare,
    };
    prop_oneof![
        6 => (
            select(&[
                "StringEquals",
                "StringNotEquals",
                "StringEqualsIgnoreCase",
                "StringNotEqualsIgnoreCase",
            ][..]),
            tag_key(),
            vec(select(TAG_VALUES), 1..=2),
            any::<bool>(),
        )
            .prop_map(move |(op, key, values, list)| make(op, key, values, list, false)),
        2 => (
            select(&["StringLike", "StringNotLike"][..]),
            tag_key(),
            vec(select(&["d*", "?EV", "*", "7", "D*"][..]), 1..=2),
            any::<bool>(),
        )
            .prop_map(move |(op, key, values, list)| make(op, key, values, list, false)),
        // Tag values are sometimes not numbers: exercises the evaluation-error rule.
        2 => (
            select(&[
                "NumericLessThan",
                "NumericGreaterThanEquals",
                "NumericEquals",
                "NumericNotEquals",
            ][..]),
            tag_key(),
            vec(select(&["5", "10", "7.0"][..]), 1..=2),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(op, key, values, list, bare)| make(op, key, values, list, bare)),
        1 => (
            select(&["IpAddress", "NotIpAddress"][..]),
            vec(select(&["10.0.0.0/8", "192.168.1.1", "192.168.0.0/16", "0.0.0.0/0"][..]), 1..=2),
            any::<bool>(),
        )
            .prop_map(move |(op, values, list)| make(op, "acs:SourceIp".into(), values, list, false)),
        1 => (select(&["true", "false"][..]), any::<bool>())
            .prop_map(move |(v, bare)| make("Bool", "acs:SecureTransport".into(), vec![v], false, bare)),
        // Boolean and address operators on tags: an error whenever the tag is present.
        1 => (select(&["Bool", "IpAddress", "NotIpAddress"][..]), tag_key())
            .prop_map(move |(op, key)| {
                let value = if op == "Bool" { "true" } else { "10.0.0.0/8" };
                make(op, key, vec![value], false, false)
            }),
    ]
}

fn statement() -> impl Strategy<Value = Stmt> {
    (
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.08),
        vec(select(POLICY_ACTIONS), 1..=2),
        vec(select(POLICY_RESOURCES), 1..=2),
        prop_oneof![3 => vec(cond(), 0..=0), 4 => vec(cond(), 1..=1), 2 => vec(cond(), 2..=3)],
        any::<bool>(),
    )
        .prop_map(
            |(deny, not_action, actions, resources, conds, bare_strings)| Stmt {
                deny,
                not_action,
                actions,
                resources,
                conds,
                bare_strings,
            },
        )
}

fn scope() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![2 => Just(None), 3 => select(GROUPS).prop_map(Some)]
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    (
        vec(vec(statement(), 1..=3), 1..=4),
        any::<bool>(),
        vec((0..4usize, scope()), 1..=5),
        prop_oneof![4 => Just(Vec::new()), 1 => vec(0..4usize, 1..=2)],
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(policies, with_rg_b, attach, guardrails, service_role)| WorldSpec {
                with_rg_b,
                attach: attach
                    .into_iter()
                    .map(|(p, scope)| {
                        // Attachments may only name declared groups.
                        let scope =
                            scope.map(|g| if g == "rg-b" && !with_rg_b { "rg-a" } else { g });
                        (p % policies.len(), scope)
                    })
                    .collect(),
                guardrails: guardrails.into_iter().map(|p| p % policies.len()).collect(),
                policies,
                service_role,
            },
        )
}

fn tag_map() -> impl Strategy<Value = RefTags> {
    vec(option::weighted(0.7, select(TAG_VALUES)), TAG_KEYS.len()).prop_map(|values| {
        TAG_KEYS
            .iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
            .collect()
    })
}

fn request_tags() -> impl Strategy<Value = RefTags> {
    prop_oneof![2 => Just(RefTags::new()), 3 => tag_map()]
}

fn target() -> impl Strategy<Value = TargetSpec> {
    (select(IDS), select(TARGET_GROUPS), tag_map()).prop_map(|(id, group, tags)| TargetSpec {
        id,
        group,
        tags,
    })
}

fn env() -> impl Strategy<Value = EnvSpec> {
    (select(SOURCE_IPS), any::<bool>()).prop_map(|(ip, secure)| EnvSpec { ip, secure })
}

fn root() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.2)
}

fn requested_group() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![2 => Just(None), 3 => select(TARGET_GROUPS).prop_map(Some)]
}

fn query() -> impl Strategy<Value = Query> {
    let change = prop_oneof![
        3 => Just(Change::None),
        1 => Just(Change::Overlay),
        1 => tag_map().prop_map(Change::To),
    ];
    prop_oneof![
        5 => (root(), select(SINGLE_ACTIONS), target(), request_tags(), change, env()).prop_map(
            |(root, action, target, request_tags, change, env)| Query::Single {
                root,
                action,
                target,
                request_tags,
                change,
                env,
            }
        ),
        2 => (root(), requested_group(), request_tags(), env())
            .prop_map(|(root, group, tags, env)| Query::Create { root, group, tags, env }),
        // Requests that could see the item (its group named, or a subset of its tags as
        // filters) are made common, or nearly every item would be filtered out.
        3 => (
            root(),
            prop_oneof![Just(None), Just(Some(None)), requested_group().prop_map(Some)],
            any::<bool>(),
            prop_oneof![Just(None), Just(Some(RefTags::new())), request_tags().prop_map(Some)],
            target(),
            target(),
            env(),
        )
            .prop_map(|(root, group, with_ids, tags, item, decoy, env)| Query::Describe {
                root,
                // None here: name the item's own group.
                group: group.unwrap_or(Some(item.group)),
                with_ids,
                // None here: filter on the item's first tag.
                tags: tags.unwrap_or_else(|| item.tags.iter().take(1).map(|(k, v)| (k.clone(), v.clone())).collect()),
                item,
                decoy,
                env,
            }),
        1 => (root(), select(OTHER_ACTIONS), request_tags(), env())
            .prop_map(|(root, action, tags, env)| Query::Other { root, action, tags, env }),
    ]
}

/// Writes a condition value list: a bare string, or a list; strings, or bare JSON scalars.
fn json_values(c: &Cond) -> String {
    let one = |v: &String| {
        if c.bare {
            v.clone()
        } else {
            serde_json::to_string(v).unwrap()
        }
    };
    if c.values.len() == 1 && !c.as_list {
        one(&c.values[0])
    } else {
        let items: Vec<String> = c.values.iter().map(one).collect();
        format!("[{}]", items.join(","))
    }
}

/// The policy's JSON text, conditions in generation order (so the engine sees every
/// order), a key repeated under one operator dropped (that is a load error, not a policy).
fn policy_json(statements: &[Stmt]) -> String {
    let rendered: Vec<String> = statements
        .iter()
        .map(|s| {
            let list = |items: &[&str]| match items {
                [one] if s.bare_strings => serde_json::to_string(one).unwrap(),
                _ => serde_json::to_string(items).unwrap(),
            };
            let mut blocks: Vec<(&str, Vec<&Cond>)> = Vec::new();
            for c in &s.conds {
                match blocks.iter_mut().find(|(op, _)| *op == c.op) {
                    Some((_, keys)) if keys.iter().any(|k| k.key == c.key) => {}
                    Some((_, keys)) => keys.push(c),
                    None => blocks.push((c.op, vec![c])),
                }
            }
            let condition = if blocks.is_empty() {
                String::new()
            } else {
                let blocks: Vec<String> = blocks
                    .iter()
                    .map(|(op, keys)| {
                        let keys: Vec<String> = keys
                            .iter()
                            .map(|c| format!("{:?}:{}", c.key, json_values(c)))
                            .collect();
                        format!("{op:?}:{{{}}}", keys.join(","))
                    })
                    .collect();
                format!(",\"Condition\":{{{}}}", blocks.join(","))
            };
            format!(
                "{{\"Effect\":{:?},{:?}:{},\"Resource\":{}{condition}}}",
                if s.deny { "Deny" } else { "Allow" },
                if s.not_action { "NotAction" } else { "Action" },
                list(&s.actions),
                list(&s.resources),
            )
        })
        .collect();
    format!(
        "{{\"Version\":\"1\",\"Statement\":[\n{}\n]}}",
        rendered.join(",\n")
    )
}

fn reference_world(spec: &WorldSpec) -> World {
    let mut world = World::new(ACCOUNT, REGION);
    world.resource_groups = strings(&GROUPS[..if spec.with_rg_b { 3 } else { 2 }]);
    for (i, statements) in spec.policies.iter().enumerate() {
        world.add_policy(&format!("p{i}"), &policy_json(statements));
    }
    let attach = spec
        .attach
        .iter()
        .map(|(p, scope)| match scope {
            None => Attachment::account(&format!("p{p}")),
            Some(g) => Attachment::group(&format!("p{p}"), g),
        })
        .collect();
    world.users.insert(USER.to_owned(), attach);
    world.guardrails = spec.guardrails.iter().map(|p| format!("p{p}")).collect();
    if spec.service_role {
        world.authorize_service_role();
    }
    world
}

fn engine_tags(tags: &RefTags) -> Tags {
    Tags::from_pairs(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn meta(t: &TargetSpec) -> ContainerGroupMeta {
    ContainerGroupMeta {
        resource_group: t.group.to_owned(),
        tags: engine_tags(&t.tags),
    }
}

fn reference_target(t: &TargetSpec) -> Target {
    Target {
        id: t.id.to_owned(),
        resource_group: t.group.to_owned(),
        tags: t.tags.clone(),
    }
}

fn reference_env(e: EnvSpec) -> Env {
    Env {
        source_ip: e.ip.map(|ip| ip.parse::<IpAddr>().unwrap()),
        secure_transport: e.secure,
    }
}

/// Allowed / denied counts for one kind of question, across the whole run.
#[derive(Default)]
struct Tally {
    allowed: Cell<u32>,
    denied: Cell<u32>,
}

impl Tally {
    fn count(&self, allowed: bool) {
        let c = if allowed { &self.allowed } else { &self.denied };
        c.set(c.get() + 1);
    }

    fn total(&self) -> u32 {
        self.allowed.get() + self.denied.get()
    }

    fn share_allowed(&self) -> f64 {
        f64::from(self.allowed.get()) / f64::from(self.total().max(1))
    }
}

#[derive(Default)]
struct Tallies {
    single: Tally,
    create: Tally,
    describe: Tally,
    other: Tally,
}

/// Asks the engine and the reference one question; `Err` describes a disagreement.
fn check(
    spec: &WorldSpec,
    world: &World,
    snapshot: &Snapshot,
    query: &Query,
    tallies: &Tallies,
) -> Result<(), TestCaseError> {
    let root = match query {
        Query::Single { root, .. }
        | Query::Create { root, .. }
        | Query::Describe { root, .. }
        | Query::Other { root, .. } => *root,
    };
    let env = match query {
        Query::Single { env, .. }
        | Query::Create { env, .. }
        | Query::Describe { env, .. }
        | Query::Other { env, .. } => reference_env(*env),
    };
    let who = if root { Who::Root } else { Who::User(USER) };
    let caller = Caller {
        principal: if root {
            ROOT
        } else {
            snapshot.directory.user(USER).expect("the user exists")
        },
        source_ip: env.source_ip,
        secure_transport: env.secure_transport,
        now_unix_nanos: 0,
    };
    let auth = Authorizer::new(snapshot, caller);
    let disagree = |engine: &dyn std::fmt::Debug, oracle: &dyn std::fmt::Debug| {
        let policies: Vec<String> = world
            .policy_files
            .iter()
            .map(|(n, t)| format!("--- {n}.json\n{t}"))
            .collect();
        Err(TestCaseError::fail(format!(
            "engine {engine:?} but reference {oracle:?}\nquery: {query:#?}\n\
             --- principals.toml\n{}\n{}\nspec: {spec:?}",
            world.to_sources()[0].1,
            policies.join("\n")
        )))
    };
    match query {
        Query::Single {
            action,
            target,
            request_tags,
            change,
            ..
        } => {
            let resulting = match change {
                Change::None => None,
                Change::Overlay => {
                    let mut r = target.tags.clone();
                    r.extend(request_tags.clone());
                    Some(r)
                }
                Change::To(r) => Some(r.clone()),
            };
            let engine = auth
                .decide_resource(
                    &action.to_ascii_lowercase(),
                    target.id,
                    Some(&meta(target)),
                    &engine_tags(request_tags),
                    resulting.as_ref().map(engine_tags).as_ref(),
                )
                .allowed;
            let oracle = world.single(
                who,
                action,
                &reference_target(target),
                request_tags,
                resulting.as_ref(),
                env,
            );
            tallies.single.count(oracle);
            if engine != oracle {
                return disagree(&engine, &oracle);
            }
        }
        Query::Create { group, tags, .. } => {
            let engine =
                match auth.decide_create("eci:createcontainergroup", *group, &engine_tags(tags)) {
                    CreateOutcome::Allow { group, .. } => reference::CreateOutcome::Allowed {
                        resource_group: snapshot.directory.group_id(group).to_owned(),
                    },
                    CreateOutcome::Deny(_) => reference::CreateOutcome::Denied,
                    CreateOutcome::ServiceRoleNotAuthorized => {
                        reference::CreateOutcome::ServiceRoleNotAuthorized
                    }
                };
            let oracle = world.create(who, *group, tags, env);
            tallies
                .create
                .count(matches!(oracle, reference::CreateOutcome::Allowed { .. }));
            if engine != oracle {
                return disagree(&engine, &oracle);
            }
        }
        Query::Describe {
            group,
            with_ids,
            tags,
            item,
            decoy,
            ..
        } => {
            let action = "eci:describecontainergroups";
            let (item_meta, decoy_meta) = (meta(item), meta(decoy));
            let named: Vec<(&str, Option<&ContainerGroupMeta>)> = if *with_ids {
                vec![(decoy.id, Some(&decoy_meta)), (item.id, Some(&item_meta))]
            } else {
                Vec::new()
            };
            // The decoy may share the item's id; then the backend holds one of them only.
            let named: Vec<_> = if decoy.id == item.id {
                named.into_iter().skip(1).collect()
            } else {
                named
            };
            let engine = match auth.plan_describe(action, *group, &named, &engine_tags(tags)) {
                DescribePlan::SilentEmpty(_) => false,
                DescribePlan::Forward { visibility, .. } => {
                    auth.visible(action, &visibility, item.id, &item_meta)
                }
            };
            let ids: Vec<&str> = named.iter().map(|(id, _)| *id).collect();
            let request = DescribeRequest {
                resource_group: *group,
                ids: with_ids.then_some(&ids[..]),
                tags,
            };
            let oracle = world.describe_visible(who, &request, &reference_target(item), env);
            tallies.describe.count(oracle);
            if engine != oracle {
                return disagree(&engine, &oracle);
            }
        }
        Query::Other { action, tags, .. } => {
            let engine = auth
                .decide_other(&action.to_ascii_lowercase(), &engine_tags(tags))
                .allowed;
            let oracle = world.other(who, action, tags, env);
            tallies.other.count(oracle);
            if engine != oracle {
                return disagree(&engine, &oracle);
            }
        }
    }
    Ok(())
}

#[test]
fn engine_agrees_with_the_reference() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(WORLDS);
    let config = Config {
        cases,
        // Failures are reported with the shrunk input; no regression files in the tree.
        failure_persistence: None,
        ..Config::default()
    };
    let tallies = Tallies::default();
    let mut runner = TestRunner::new(config);
    let strategy = (world_spec(), vec(query(), QUERIES));
    let result = runner.run(&strategy, |(spec, queries)| {
        let world = reference_world(&spec);
        let account = Account {
            id: ACCOUNT.into(),
            region: REGION.into(),
        };
        let snapshot = Snapshot::build(Path::new("generated"), account, world.to_sources())
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "the engine refused a valid directory: {e}\n{:?}",
                    world.to_sources()
                ))
            })?;
        for q in &queries {
            check(&spec, &world, &snapshot, q, &tallies)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let total = Tally::default();
    for (name, t) in [
        ("single-resource", &tallies.single),
        ("create", &tallies.create),
        ("describe item", &tallies.describe),
        ("other", &tallies.other),
    ] {
        eprintln!(
            "{name}: {} decisions, {:.1}% allowed",
            t.total(),
            100.0 * t.share_allowed()
        );
        total.allowed.set(total.allowed.get() + t.allowed.get());
        total.denied.set(total.denied.get() + t.denied.get());
        let share = t.share_allowed();
        assert!(
            (0.10..=0.90).contains(&share),
            "{name}: {:.1}% allowed; the generator must keep both outcomes at 10% or more",
            100.0 * share
        );
    }
    eprintln!(
        "all: {} decisions, {:.1}% allowed",
        total.total(),
        100.0 * total.share_allowed()
    );
}

/// The engine's wildcard patterns (as used for actions, resources and `StringLike`) against
/// the reference's recursive matcher, on every shape (`*`, exact, `prefix*`, globs).
#[test]
fn patterns_agree_with_the_reference_matcher() {
    use ramgate::policy::pattern::Pattern;
    let config = Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    };
    let pattern = vec(select(&["a", "b", "*", "?", "é"][..]), 1..=6).prop_map(|p| p.concat());
    let text = vec(select(&["a", "b", "é", "*"][..]), 0..=7).prop_map(|t| t.concat());
    TestRunner::new(config)
        .run(&(pattern, text), |(p, t)| {
            prop_assert_eq!(
                Pattern::new(&p).matches(&t),
                reference::wildcard(&p, &t),
                "{:?} ~ {:?}",
                p,
                t
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A regression test for a bug the property test found: a Deny with one false and one
/// erroring condition (a tag `dev` under `NumericLessThan`) once denied or not depending on
/// which was written first. JSON member order carries no meaning, so both orders must
/// decide alike; SPEC §3 ("a Deny statement that cannot be evaluated denies") says deny.
#[test]
fn deny_with_a_false_and_an_erroring_condition() {
    let is_false = r#""StringEquals":{"eci:tag/env":"prod"}"#;
    let errors = r#""NumericLessThan":{"eci:tag/env":"5"}"#;
    let target = TargetSpec {
        id: "eci-1",
        group: "rg-default",
        tags: reference::tags(&[("env", "dev")]),
    };
    let mut answers = Vec::new();
    for (first, second) in [(is_false, errors), (errors, is_false)] {
        let mut world = World::new(ACCOUNT, REGION);
        world.add_policy(
            "all",
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:*","Resource":"*"}]}"#,
        );
        world.add_policy(
            "deny",
            &format!(
                r#"{{"Version":"1","Statement":[{{"Effect":"Deny","Action":"eci:*","Resource":"*",
                    "Condition":{{{first},{second}}}}}]}}"#
            ),
        );
        world.users.insert(
            USER.to_owned(),
            vec![Attachment::account("all"), Attachment::account("deny")],
        );
        let snapshot = Snapshot::build(
            Path::new("generated"),
            Account {
                id: ACCOUNT.into(),
                region: REGION.into(),
            },
            world.to_sources(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let caller = Caller {
            principal: snapshot.directory.user(USER).unwrap(),
            source_ip: None,
            secure_transport: false,
            now_unix_nanos: 0,
        };
        let engine = Authorizer::new(&snapshot, caller)
            .decide_resource(
                "eci:deletecontainergroup",
                target.id,
                Some(&meta(&target)),
                &Tags::new(),
                None,
            )
            .allowed;
        let oracle = world.single(
            Who::User(USER),
            "eci:DeleteContainerGroup",
            &reference_target(&target),
            &RefTags::new(),
            None,
            Env::default(),
        );
        answers.push((first, engine, oracle));
    }
    for (first, engine, oracle) in &answers {
        assert_eq!(engine, oracle, "with {first} first: {answers:?}");
    }
}

/// The demo directory (`config/policies`, SCENARIOS.md's setting) read by the reference's
/// own loader: the oracle answers a few SCENARIOS rows as the table says, and agrees with
/// the engine on a grid of users, actions, groups and tags (built-in policies included).
#[test]
fn demo_policies_agree_with_the_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("config/policies") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "principals.toml" || name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).expect("readable");
            sources.push((path, text));
        }
    }
    let (id, region) = ("1234567890123456", "cn-hangzhou");
    let world = World::from_sources(id, region, &sources);
    let account = Account {
        id: id.into(),
        region: region.into(),
    };
    let snapshot = Snapshot::build(&dir, account, sources).unwrap_or_else(|e| panic!("{e}"));

    let target = |group: &str, t: &[(&str, &str)]| Target {
        id: "eci-x".into(),
        resource_group: group.into(),
        tags: reference::tags(t),
    };
    let liumi_test = [("name", "liumi"), ("env", "test")];
    let none = RefTags::new();
    let env = Env::default();
    let user = Who::User;
    // SCENARIOS rows, answered by the oracle alone.
    let delete =
        |who, t: &Target| world.single(who, "eci:DeleteContainerGroup", t, &none, None, env);
    assert!(delete(user("test"), &target("rg-test-a", &[])), "R16");
    assert!(!delete(user("test"), &target("rg-test-b", &[])), "R17");
    assert!(delete(Who::Root, &target("rg-test-b", &[])), "R18");
    assert!(!delete(user("ro"), &target("rg-default", &[])), "R20");
    assert!(
        delete(user("liumi"), &target("rg-test-b", &liumi_test)),
        "T5"
    );
    assert!(
        !delete(user("liumi"), &target("rg-default", &[("name", "liumi")])),
        "T6"
    );
    let created = |who, g, t: &[(&str, &str)]| world.create(who, g, &reference::tags(t), env);
    let into = |g: &str| reference::CreateOutcome::Allowed {
        resource_group: g.into(),
    };
    assert_eq!(
        created(Who::Root, Some("rg-nope"), &[]),
        into("rg-default"),
        "R3"
    );
    assert_eq!(
        created(user("test"), None, &[]),
        reference::CreateOutcome::Denied,
        "R4"
    );
    assert_eq!(
        created(user("test"), Some("rg-test-a"), &[]),
        into("rg-test-a"),
        "R7"
    );
    assert_eq!(
        created(user("liumi"), None, &liumi_test),
        into("rg-default"),
        "T3"
    );
    let update_to = reference::tags(&[("name", "liumi2"), ("env", "pre")]);
    assert!(
        world.single(
            user("multi"),
            "eci:UpdateContainerGroup",
            &target("rg-default", &liumi_test),
            &update_to,
            Some(&update_to),
            env,
        ),
        "T16"
    );

    // The engine agrees everywhere on the grid.
    let users = ["test", "test2", "liumi", "ro", "multi"];
    let tag_sets: [&[(&str, &str)]; 4] = [
        &[],
        &liumi_test,
        &[("name", "liumi2"), ("env", "pre")],
        &[("name", "liumi"), ("env", "prod")],
    ];
    for name in users.iter().map(Some).chain([None]) {
        let (who, principal) = match name {
            Some(n) => (
                Who::User(n),
                snapshot.directory.user(n).expect("a demo user"),
            ),
            None => (Who::Root, ROOT),
        };
        let caller = Caller {
            principal,
            source_ip: None,
            secure_transport: false,
            now_unix_nanos: 0,
        };
        let auth = Authorizer::new(&snapshot, caller);
        for action in SINGLE_ACTIONS {
            for group in ["rg-default", "rg-test-a", "rg-test-b"] {
                for tags in tag_sets {
                    let spec = TargetSpec {
                        id: "eci-x",
                        group,
                        tags: reference::tags(tags),
                    };
                    let engine = auth
                        .decide_resource(
                            &action.to_ascii_lowercase(),
                            spec.id,
                            Some(&meta(&spec)),
                            &Tags::new(),
                            None,
                        )
                        .allowed;
                    let oracle =
                        world.single(who, action, &reference_target(&spec), &none, None, env);
                    assert_eq!(engine, oracle, "{who:?} {action} {group} {tags:?}");
                }
            }
        }
        for tags in tag_sets {
            for group in [None, Some("rg-test-a"), Some("rg-nope")] {
                let engine = match auth.decide_create(
                    "eci:createcontainergroup",
                    group,
                    &engine_tags(&reference::tags(tags)),
                ) {
                    CreateOutcome::Allow { group, .. } => {
                        Some(snapshot.directory.group_id(group).to_owned())
                    }
                    _ => None,
                };
                let oracle = match world.create(who, group, &reference::tags(tags), env) {
                    reference::CreateOutcome::Allowed { resource_group } => Some(resource_group),
                    _ => None,
                };
                assert_eq!(engine, oracle, "{who:?} create in {group:?} {tags:?}");
            }
        }
    }
}
