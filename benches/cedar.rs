//! ramgate's decision engine against the `cedar-policy` crate (a general policy engine), on
//! the same policies and the same requests, in one run:
//!
//! * `demo` — SCENARIOS.md's demo set (`config/policies` plus the built-in system policies
//!   it attaches): every demo user × the single-resource actions × container groups inside
//!   and outside their groups, with matching and non-matching tags.
//! * `generated_10k` — the 10,000-user, 10,000-policy directory of `benches/common`.
//!
//! Every ramgate policy is translated mechanically into Cedar: each statement becomes a
//! Cedar *template* (`permit`/`forbid(principal == ?principal, action in [...], resource in
//! ?resource) when {...}`), action wildcards are expanded over the ECI catalogue, resource
//! patterns become `resource.arn like "..."`, tag conditions become entity-tag tests
//! (`resource.hasTag(k) && resource.getTag(k) == v`), and every attachment becomes a
//! template link whose `?resource` is the account (account scope) or the resource group
//! (group scope); container groups are children of their resource group, which is a child
//! of the account. Before anything is timed the bench asserts that both engines reach the
//! same decision on every request it benchmarks.
//!
//! Cedar is measured twice, and both favourably: requests and entities are built before
//! the clock starts (ramgate's requests likewise), and
//! * `cedar_sliced`: each request is decided against only its principal's policies (a
//!   policy set per principal, built beforehand) — how Cedar is meant to be used at scale;
//! * `cedar_full`: against the whole policy set, as one would load it naively.
//!
//! After criterion, a side-by-side summary interleaves the engines round by round over the
//! same requests and prints the median per decision and the ratios (so that load from other
//! processes falls on both alike). Run: `cargo bench --features cedar --bench cedar`.

mod common;

use cedar_policy::{
    Authorizer as CedarAuthorizer, Context as CedarContext, Decision as CedarDecision, Entities,
    EntityUid, PolicyId as CedarPolicyId, PolicySet, Request as CedarRequest, SlotId, Template,
};
use common::{account, group, median, Group, Request, ACCOUNT_ID, REGION};
use criterion::{BenchmarkId, Criterion};
use ramgate::decision::{Authorizer, Caller};
use ramgate::model::Tags;
use ramgate::policy::pattern::Pattern;
use ramgate::principals::{PrincipalId, PrincipalKind};
use ramgate::snapshot::Snapshot;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The built-in system policies the demo set attaches, as SPEC §3 defines them (ramgate
/// compiles its own copy; the decision-equality check below would catch a difference).
const BUILTINS: &[(&str, &str)] = &[
    (
        "AliyunECIFullAccess",
        r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Action":"eci:*","Resource":"*"},
            {"Effect":"Allow","Action":"ecs:DescribeSecurityGroups","Resource":"*"},
            {"Effect":"Allow","Action":["vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:DescribeEipAddresses"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunECIReadOnlyAccess",
        r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Action":["eci:Describe*","eci:List*"],"Resource":"*"},
            {"Effect":"Allow","Action":"ecs:DescribeSecurityGroups","Resource":"*"},
            {"Effect":"Allow","Action":["vpc:DescribeVpcs","vpc:DescribeVSwitches"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunECIContainerGroupRolePolicy",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*","Action":["cr:Get*"]}]}"#,
    ),
];

fn caller(principal: PrincipalId) -> Caller {
    Caller {
        principal,
        source_ip: None,
        secure_transport: true,
        now_unix_nanos: 0,
    }
}

// ---------------------------------------------------------------------------------------
// Translation: ramgate policies → Cedar templates, attachments → links.
// ---------------------------------------------------------------------------------------

/// A JSON string or list of strings, as policies write `Action`, `Resource` and values.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().expect("a string").to_owned())
            .collect(),
        other => panic!("not a string or list: {other}"),
    }
}

/// A Cedar string literal.
fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A ramgate wildcard (`*` only) as a Cedar `like` pattern.
fn like_pattern(p: &str) -> String {
    // ramgate's `*` is Cedar's `*`; Cedar has no single-character wildcard.
    assert!(!p.contains('?'), "Cedar's like has no `?`: {p}");
    lit(p)
}

/// One condition as a Cedar expression over the resource's entity tags. Only what the
/// benchmarked policies use is translated; anything else stops the bench.
fn condition(operator: &str, key: &str, values: &[String]) -> String {
    let lower = key.to_ascii_lowercase();
    let tag = ["eci:tag/", "acs:resourcetag/"]
        .iter()
        .find_map(|p| lower.starts_with(p).then(|| &key[p.len()..]))
        .unwrap_or_else(|| panic!("untranslated condition key {key}"));
    let get = format!("resource.getTag({})", lit(tag));
    let has = format!("resource.hasTag({})", lit(tag));
    let any = |each: &dyn Fn(&str) -> String| {
        let alternatives: Vec<String> = values.iter().map(|v| each(v)).collect();
        format!("({has} && ({}))", alternatives.join(" || "))
    };
    match operator {
        "StringEquals" => any(&|v| format!("{get} == {}", lit(v))),
        "StringNotEquals" => format!("!{}", any(&|v| format!("{get} == {}", lit(v)))),
        "StringLike" => any(&|v| format!("{get} like {}", like_pattern(v))),
        "StringNotLike" => format!("!{}", any(&|v| format!("{get} like {}", like_pattern(v)))),
        other => panic!("untranslated operator {other}"),
    }
}

/// The Cedar templates of one ramgate policy: one per statement that names an ECI action.
fn templates(policy: &str, json: &str) -> Vec<Template> {
    let doc: Value = serde_json::from_str(json).expect("policy JSON");
    let statements = doc["Statement"].as_array().expect("Statement list");
    let catalogue = ramgate::catalogue::all();
    let mut out = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let patterns: Vec<Pattern> = strings(&s["Action"])
            .iter()
            .map(|a| Pattern::new(&a.to_ascii_lowercase()))
            .collect();
        let actions: Vec<String> = catalogue
            .iter()
            .filter(|spec| patterns.iter().any(|p| p.matches(spec.ram_action)))
            .map(|spec| format!("Action::{}", lit(spec.ram_action)))
            .collect();
        if actions.is_empty() {
            continue; // no ECI action: it can never decide an ECI request
        }
        let mut when: Vec<String> = Vec::new();
        let resources = strings(&s["Resource"]);
        if !resources.iter().any(|r| r == "*") {
            let alternatives: Vec<String> = resources
                .iter()
                .map(|r| format!("resource.arn like {}", like_pattern(r)))
                .collect();
            when.push(format!("({})", alternatives.join(" || ")));
        }
        if let Some(conditions) = s.get("Condition").and_then(Value::as_object) {
            for (operator, keys) in conditions {
                for (key, values) in keys.as_object().expect("keys") {
                    when.push(condition(operator, key, &strings(values)));
                }
            }
        }
        let effect = match s["Effect"].as_str() {
            Some("Allow") => "permit",
            Some("Deny") => "forbid",
            other => panic!("effect {other:?}"),
        };
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(" when {{ {} }}", when.join(" && "))
        };
        let src = format!(
            "{effect}(principal == ?principal, action in [{}], resource in ?resource){when};",
            actions.join(", ")
        );
        let id = CedarPolicyId::new(format!("{policy}#{i}"));
        out.push(Template::parse(Some(id), &src).unwrap_or_else(|e| panic!("{src}: {e}")));
    }
    out
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{kind}::{}", lit(id))).expect("an entity uid")
}

/// The Cedar side of one snapshot: the templates of every policy, every principal's links,
/// the whole set, and a set per principal built on demand.
struct CedarWorld {
    templates: HashMap<String, Vec<Template>>,
    /// principal → (policy name, `?resource`) per attachment.
    links: HashMap<PrincipalId, Vec<(String, EntityUid)>>,
}

impl CedarWorld {
    fn new(snapshot: &Snapshot, json_of: &dyn Fn(&str) -> String) -> Self {
        let directory = &snapshot.directory;
        let account = uid("Account", ACCOUNT_ID);
        let mut templates = HashMap::new();
        let mut links = HashMap::new();
        for (id, p) in directory.principals.iter().enumerate() {
            if p.kind != PrincipalKind::User {
                continue; // the benchmarked requests come from users
            }
            let scoped = p
                .account_policies
                .iter()
                .map(|&policy| (policy, account.clone()))
                .chain(
                    p.group_policies
                        .iter()
                        .map(|&(g, policy)| (policy, uid("ResourceGroup", directory.group_id(g)))),
                );
            let mut mine = Vec::new();
            for (policy, scope) in scoped {
                let name = snapshot.policy(policy).name.to_string();
                templates
                    .entry(name.clone())
                    .or_insert_with(|| self::templates(&name, &json_of(&name)));
                mine.push((name, scope));
            }
            links.insert(id as PrincipalId, mine);
        }
        Self { templates, links }
    }

    /// A policy set with the links of `principals` (and the templates they use).
    fn policy_set(&self, principals: impl Iterator<Item = PrincipalId>) -> PolicySet {
        let mut set = PolicySet::new();
        let mut added = std::collections::HashSet::new();
        let mut n = 0usize;
        for principal in principals {
            let name = uid_of_principal(principal);
            for (policy, scope) in &self.links[&principal] {
                for t in &self.templates[policy] {
                    if added.insert(t.id().clone()) {
                        set.add_template(t.clone()).expect("template added");
                    }
                    n += 1;
                    let vals = HashMap::from([
                        (SlotId::principal(), name.clone()),
                        (SlotId::resource(), scope.clone()),
                    ]);
                    set.link(t.id().clone(), CedarPolicyId::new(format!("l{n}")), vals)
                        .expect("link");
                }
            }
        }
        set
    }
}

/// Users are Cedar `User` entities named by principal id (names are unique per id).
fn uid_of_principal(principal: PrincipalId) -> EntityUid {
    uid("User", &principal.to_string())
}

/// The account, every resource group, and the container groups the requests name.
fn entities(snapshot: &Snapshot, groups: &[&Group]) -> Entities {
    let account = json!({"uid": {"type": "Account", "id": ACCOUNT_ID}, "attrs": {}, "parents": []});
    let mut list = vec![account];
    for g in &snapshot.directory.resource_groups {
        list.push(json!({
            "uid": {"type": "ResourceGroup", "id": &*g.id},
            "attrs": {},
            "parents": [{"type": "Account", "id": ACCOUNT_ID}],
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for g in groups {
        if !seen.insert(g.id.clone()) {
            continue;
        }
        let tags: BTreeMap<&str, &str> = g.meta.tags.iter().collect();
        list.push(json!({
            "uid": {"type": "ContainerGroup", "id": g.id},
            "attrs": {"arn": format!("acs:eci:{REGION}:{ACCOUNT_ID}:containergroup/{}", g.id)},
            "parents": [{"type": "ResourceGroup", "id": g.meta.resource_group}],
            "tags": tags,
        }));
    }
    Entities::from_json_value(Value::Array(list), None).expect("entities")
}

// ---------------------------------------------------------------------------------------
// The two benchmarked sets.
// ---------------------------------------------------------------------------------------

/// One benchmarked decision, prepared for both engines.
struct Case {
    principal: PrincipalId,
    action: &'static str,
    group: Group,
    cedar: CedarRequest,
}

/// A set ready to run: ramgate's snapshot, Cedar's sets and entities, the cases.
struct Bench {
    name: &'static str,
    snapshot: Snapshot,
    cases: Vec<Case>,
    entities: Entities,
    full: PolicySet,
    sliced: HashMap<PrincipalId, PolicySet>,
    allowed: usize,
    /// The request's own tags: none (single-resource calls decide on the target's).
    no_tags: Tags,
}

impl Bench {
    fn new(
        name: &'static str,
        snapshot: Snapshot,
        json_of: &dyn Fn(&str) -> String,
        requests: Vec<(PrincipalId, &'static str, Group)>,
    ) -> Self {
        let world = CedarWorld::new(&snapshot, json_of);
        let mut principals: Vec<PrincipalId> = world.links.keys().copied().collect();
        principals.sort_unstable();
        let full = world.policy_set(principals.into_iter());
        let mut sliced = HashMap::new();
        for (p, _, _) in &requests {
            sliced
                .entry(*p)
                .or_insert_with(|| world.policy_set(std::iter::once(*p)));
        }
        let groups: Vec<&Group> = requests.iter().map(|(_, _, g)| g).collect();
        let entities = entities(&snapshot, &groups);
        let cases: Vec<Case> = requests
            .into_iter()
            .map(|(principal, action, group)| Case {
                cedar: CedarRequest::new(
                    uid_of_principal(principal),
                    uid("Action", action),
                    uid("ContainerGroup", &group.id),
                    CedarContext::empty(),
                    None,
                )
                .expect("a Cedar request"),
                principal,
                action,
                group,
            })
            .collect();
        let mut bench = Self {
            name,
            snapshot,
            cases,
            entities,
            full,
            sliced,
            allowed: 0,
            no_tags: Tags::new(),
        };
        bench.check_same_decisions();
        bench
    }

    fn ramgate(&self, c: &Case) -> bool {
        Authorizer::new(&self.snapshot, caller(c.principal))
            .decide_resource(
                c.action,
                &c.group.id,
                Some(&c.group.meta),
                &self.no_tags,
                None,
            )
            .allowed
    }

    fn cedar(&self, c: &Case, set: &PolicySet) -> bool {
        CedarAuthorizer::new()
            .is_authorized(&c.cedar, set, &self.entities)
            .decision()
            == CedarDecision::Allow
    }

    fn sliced(&self, c: &Case) -> bool {
        self.cedar(c, &self.sliced[&c.principal])
    }

    fn full(&self, c: &Case) -> bool {
        self.cedar(c, &self.full)
    }

    /// Both engines (and both ways of running Cedar) must agree on every benchmarked
    /// request, and both outcomes must be common, or the comparison means nothing.
    fn check_same_decisions(&mut self) {
        let mut allowed = 0;
        for (i, c) in self.cases.iter().enumerate() {
            let ours = self.ramgate(c);
            let theirs = self.sliced(c);
            assert_eq!(
                ours, theirs,
                "{}: request {i} ({} {} on {:?}): ramgate {ours}, Cedar {theirs}",
                self.name, c.principal, c.action, c.group
            );
            if i < FULL_CHECKED {
                assert_eq!(ours, self.full(c), "{}: request {i}: full set", self.name);
            }
            allowed += usize::from(ours);
        }
        let n = self.cases.len();
        assert!(
            allowed * 10 >= n && allowed * 10 <= n * 9,
            "{}: {allowed} of {n} requests allowed",
            self.name
        );
        self.allowed = allowed;
    }
}

/// How many requests the whole-set Cedar run checks and times: on the 10k set one such
/// decision takes tens of milliseconds.
const FULL_CHECKED: usize = 32;

fn demo_bench() -> Bench {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies");
    let snapshot = Snapshot::load(&dir, account()).expect("the demo policies load");
    let json_of = move |name: &str| -> String {
        BUILTINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, j)| (*j).to_owned())
            .unwrap_or_else(|| {
                std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("policy file")
            })
    };
    let groups = [
        group(
            "eci-liumi",
            "rg-default",
            &[("name", "liumi"), ("env", "test")],
        ),
        group(
            "eci-prod",
            "rg-default",
            &[("name", "liumi"), ("env", "prod")],
        ),
        group(
            "eci-pre",
            "rg-test-b",
            &[("name", "liumi2"), ("env", "pre")],
        ),
        group("eci-a", "rg-test-a", &[]),
        group(
            "eci-a-tagged",
            "rg-test-a",
            &[("name", "liumi"), ("env", "test")],
        ),
        group("eci-b", "rg-test-b", &[("app", "web")]),
    ];
    let actions = [
        "eci:describecontainerlog",
        "eci:deletecontainergroup",
        "eci:restartcontainergroup",
        "eci:exportcontainergrouptemplate",
        "eci:execcontainercommand",
        "eci:updatecontainergroup",
    ];
    let mut requests = Vec::new();
    for user in ["test", "test2", "liumi", "ro", "multi"] {
        let p = snapshot.directory.user(user).expect("a demo user");
        for action in actions {
            for g in &groups {
                requests.push((p, action, g.clone()));
            }
        }
    }
    Bench::new("demo", snapshot, &json_of, requests)
}

fn generated_bench() -> Bench {
    let world = common::generated_world();
    let json: HashMap<String, String> = world
        .sources
        .iter()
        .filter_map(|(path, content)| {
            let name = path.to_str()?.strip_suffix(".json")?;
            Some((name.to_owned(), content.clone()))
        })
        .collect();
    let snapshot = Snapshot::build(Path::new("generated"), account(), world.sources)
        .unwrap_or_else(|e| panic!("the generated directory must load: {e}"));
    let requests = world
        .requests
        .into_iter()
        .map(
            |Request {
                 user,
                 action,
                 group,
                 ..
             }| {
                let p = snapshot.directory.user(&user).expect("a generated user");
                (p, action, group)
            },
        )
        .collect();
    let json_of = |name: &str| json[name].clone();
    Bench::new("generated_10k", snapshot, &json_of, requests)
}

// ---------------------------------------------------------------------------------------
// Measurement.
// ---------------------------------------------------------------------------------------

fn criterion_runs(c: &mut Criterion, b: &Bench) {
    let mut g = c.benchmark_group(format!("cedar_{}", b.name));
    g.bench_function(BenchmarkId::new("ramgate", b.cases.len()), |bench| {
        let mut next = b.cases.iter().cycle();
        bench.iter(|| b.ramgate(black_box(next.next().expect("cycle"))))
    });
    g.bench_function(BenchmarkId::new("cedar_sliced", b.cases.len()), |bench| {
        let mut next = b.cases.iter().cycle();
        bench.iter(|| b.sliced(black_box(next.next().expect("cycle"))))
    });
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    let full_cases = &b.cases[..b.cases.len().min(FULL_CHECKED)];
    g.bench_function(BenchmarkId::new("cedar_full", full_cases.len()), |bench| {
        let mut next = full_cases.iter().cycle();
        bench.iter(|| b.full(black_box(next.next().expect("cycle"))))
    });
    g.finish();
}

/// Nanoseconds per decision over one pass of `cases`.
fn pass(cases: &[Case], decide: &dyn Fn(&Case) -> bool) -> f64 {
    let started = Instant::now();
    let mut allowed = 0usize;
    for c in cases {
        allowed += usize::from(decide(black_box(c)));
    }
    black_box(allowed);
    started.elapsed().as_nanos() as f64 / cases.len() as f64
}

/// Rounds of passes per engine, interleaved, so that noise falls on both; medians of the
/// per-decision times and of the per-round ratios. Each engine runs two passes in a row and
/// the second is kept (warm caches, as criterion measures); ramgate's first pass, right
/// after Cedar's, is kept too (`ramgate_cold`): Cedar's passes evict ramgate's policies
/// from the CPU caches, as a proxy's networking does between decisions.
struct Summary {
    set: &'static str,
    requests: usize,
    allowed: usize,
    ramgate: f64,
    ramgate_cold: f64,
    sliced: f64,
    full: f64,
    ratio_sliced: f64,
    ratio_full: f64,
}

fn side_by_side(b: &Bench, rounds: usize) -> Summary {
    let full_cases = &b.cases[..b.cases.len().min(FULL_CHECKED)];
    let (mut ours, mut cold, mut sliced, mut full) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut r_sliced, mut r_full) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        cold.push(pass(&b.cases, &|c| b.ramgate(c)));
        let o = pass(&b.cases, &|c| b.ramgate(c));
        pass(&b.cases, &|c| b.sliced(c));
        let s = pass(&b.cases, &|c| b.sliced(c));
        ours.push(o);
        sliced.push(s);
        r_sliced.push(s / o);
        // The whole-set run is slow: a short pass, every tenth round.
        if round % 10 == 0 {
            let o_small = pass(full_cases, &|c| b.ramgate(c));
            let f = pass(full_cases, &|c| b.full(c));
            full.push(f);
            r_full.push(f / o_small);
        }
    }
    Summary {
        set: b.name,
        requests: b.cases.len(),
        allowed: b.allowed,
        ramgate: median(&mut ours),
        ramgate_cold: median(&mut cold),
        sliced: median(&mut sliced),
        full: median(&mut full),
        ratio_sliced: median(&mut r_sliced),
        ratio_full: median(&mut r_full),
    }
}

fn print_summary(rows: &[Summary]) {
    println!();
    println!("Side by side, one run, medians per decision (ns):");
    println!(
        "| set | requests (allowed) | ramgate | ramgate, cold | Cedar, sliced | Cedar, whole set | Cedar sliced / ramgate | Cedar whole / ramgate |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} ({}) | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}× | {:.0}× |",
            r.set,
            r.requests,
            r.allowed,
            r.ramgate,
            r.ramgate_cold,
            r.sliced,
            r.full,
            r.ratio_sliced,
            r.ratio_full
        );
    }
    println!();
    for r in rows {
        let under = r.ramgate < 1000.0;
        let cold = if r.ramgate_cold < 1000.0 {
            "met"
        } else {
            "NOT met"
        };
        let ten = r.ratio_sliced >= 10.0;
        println!(
            "budget {}: median {:.0} ns < 1 µs: {} (cold: {:.0} ns, {cold}); ≥ 10× faster than Cedar (sliced, the stricter): {:.1}× {}",
            r.set,
            r.ramgate,
            if under { "met" } else { "NOT met" },
            r.ramgate_cold,
            r.ratio_sliced,
            if ten { "met" } else { "NOT met" },
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) only checks
    // that both engines agree, quickly.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sets = [demo_bench(), generated_bench()];
    if !benchmarking {
        println!("both engines agree on every request of every set");
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args();
    for b in &sets {
        criterion_runs(&mut c, b);
    }
    c.final_summary();
    let rows: Vec<Summary> = sets.iter().map(|b| side_by_side(b, 30)).collect();
    print_summary(&rows);
}
