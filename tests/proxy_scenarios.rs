//! Every row of SCENARIOS.md end to end: the real `ramgate backend` and `ramgate serve`
//! on 127.0.0.1:0, each case sent in one of the two wire dialects (alternating), and the
//! backend's state checked afterwards — nothing created, changed or deleted when a call
//! was denied. The same rows are decided through `explain`'s code path and must agree.

mod corpus;
mod support;

use corpus::{Case, Expect};
use ramgate::cli::explain;
use ramgate::cli::hypothetical::{self, Hypothetical, Outcome};
use ramgate::decision::Authorizer;
use ramgate::model::{ContainerGroupMeta, Tags};
use ramgate::snapshot::{Account, Snapshot};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use support::{as_user, post_form, request_json, start_backend, start_proxy, v3};

/// The backend's groups: id → (resource group, tags).
async fn backend_state(backend: SocketAddr) -> BTreeMap<String, (String, Value)> {
    let (status, body) = support::get_json(backend, "/_backend/state").await;
    assert!(status.is_success(), "{body}");
    body["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    (
                        g["id"].as_str().unwrap_or_default().to_owned(),
                        (
                            g["resource_group"].as_str().unwrap_or_default().to_owned(),
                            g["tags"].clone(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Empties the backend and creates the scenario world on it directly; returns name → id.
async fn seed_world(backend: SocketAddr) -> HashMap<String, String> {
    let (status, _, _) = request_json(backend, "DELETE", "/_backend/state", &[], "").await;
    assert!(status.is_success());
    let mut ids = HashMap::new();
    for g in corpus::world().groups {
        let tags: Vec<(&str, &str)> = g
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let id = support::seed_group(backend, &g.name, &g.resource_group, &tags).await;
        ids.insert(g.name, id);
    }
    ids
}

async fn send(
    proxy: SocketAddr,
    case: &Case,
    ids: &HashMap<String, String>,
    rpc: bool,
) -> (u16, Value) {
    let id_of = |name: &str| {
        ids.get(name)
            .cloned()
            .unwrap_or_else(|| format!("eci-unknown-{name}"))
    };
    let params = corpus::wire_params(case, &id_of);
    let arn = as_user(&case.caller);
    let identity = [("x-ramgate-principal", arn.as_str())];
    let (status, _, body) = if rpc {
        let mut form: Vec<(&str, &str)> = vec![("Action", case.action.as_str())];
        form.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        post_form(proxy, &form, &identity).await
    } else {
        let query: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        v3(proxy, &case.action, &query, &identity).await
    };
    (status.as_u16(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_row_holds_through_the_proxy() {
    let (_backend_process, backend) = start_backend();
    // A short metadata TTL: the world is re-created between cases with new ids anyway.
    every_row(backend, |policies| start_proxy(backend, policies, "", "")).await;
}

/// SPEC §8 end to end: every row through a proxy that signs each call ACS3 with its own
/// AccessKey and reaches the backend playing Alibaba Cloud over HTTPS (a test CA in
/// `ca_file`). The backend's cloud listener checks every call it receives — forwarded
/// calls and metadata lookups — and counts those it rejected and those that carried an
/// `x-ramgate-*` header: both must stay at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_row_holds_through_a_signing_proxy_over_https() {
    let cloud = support::cloud::start_cloud_backend(None, &["localhost", "127.0.0.1"]);
    let env = support::cloud::env_key();
    let count = every_row(cloud.hooks, |policies| {
        support::cloud::start_signing_proxy(&cloud, policies, "source = \"env\"", &env)
    })
    .await;
    let stats = cloud.stats().await;
    assert_eq!(stats["rejected"], serde_json::json!({}), "{stats}");
    assert_eq!(stats["with_ramgate_header"], 0, "{stats}");
    let verified = stats["verified"].as_u64().unwrap_or_default();
    assert!(
        verified >= (count / 2) as u64,
        "the cloud verified {verified} calls for {count} rows: {stats}"
    );
}

/// Runs every decision row through a proxy that `start` runs in front of `backend`
/// (whose plain listener seeds and inspects the world); returns how many rows ran.
async fn every_row(
    backend: SocketAddr,
    start: impl Fn(&std::path::Path) -> support::Proxy,
) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for (file, scenarios) in corpus::decision_files() {
        let policies = corpus::policy_dir(&scenarios.setting);
        let proxy = start(policies.path());
        for case in &scenarios.cases {
            let ids = seed_world(backend).await;
            let names: HashMap<&String, &String> = ids.iter().map(|(n, i)| (i, n)).collect();
            let before = backend_state(backend).await;
            let rpc = count % 2 == 1;
            count += 1;
            let (status, body) = send(proxy.addr, case, &ids, rpc).await;
            let after = backend_state(backend).await;
            let label = format!(
                "{file} {} {} as {} ({}) {:?}",
                case.row,
                case.action,
                case.caller,
                if rpc { "RPC" } else { "V3" },
                case.note
            );
            let code = body["Code"].as_str().unwrap_or_default().to_owned();
            let problem = match &case.expect {
                Expect::Word(w) if w == "allow" => {
                    (status != 200).then(|| format!("expected 200, got {status} {body}"))
                }
                Expect::Word(_) => {
                    if status != 403 || code != "Forbidden.RAM" {
                        Some(format!("expected 403 Forbidden.RAM, got {status} {body}"))
                    } else if after != before {
                        Some("a denied call changed the backend".to_owned())
                    } else {
                        None
                    }
                }
                Expect::CreatedIn { created_in } => {
                    let new: Vec<_> = after
                        .iter()
                        .filter(|(id, _)| !before.contains_key(*id))
                        .collect();
                    match (status, new.as_slice()) {
                        (200, [(_, (group, _))]) if group == created_in => None,
                        _ => Some(format!("expected one group created in {created_in}, got {status} {body}, new {new:?}")),
                    }
                }
                Expect::Returns { returns } => {
                    let mut got: Vec<String> = body["ContainerGroups"]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .map(|i| {
                                    names
                                        .get(
                                            &i["ContainerGroupId"]
                                                .as_str()
                                                .unwrap_or_default()
                                                .to_owned(),
                                        )
                                        .map_or("?".to_owned(), |n| n.to_string())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    got.sort();
                    let total = body["TotalCount"].as_u64();
                    if status != 200 || got != *returns || total != Some(returns.len() as u64) {
                        Some(format!("expected 200 with {returns:?}, got {status} {got:?} TotalCount {total:?}: {body}"))
                    } else {
                        None
                    }
                }
                Expect::Error { error } => {
                    if code != *error || after != before {
                        Some(format!(
                            "expected {error} and no change, got {status} {body}"
                        ))
                    } else {
                        None
                    }
                }
            };
            if let Some(p) = problem {
                failures.push(format!("{label}: {p}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_file_rows_keep_the_running_proxy_on_its_last_good_policies() {
    let (_backend_process, backend) = start_backend();
    let ids = seed_world(backend).await;
    let policies = corpus::policy_dir("demo");
    let proxy = start_proxy(backend, policies.path(), "", "");
    let liumi = as_user("liumi");
    let identity = [("x-ramgate-principal", liumi.as_str())];
    let log = [
        ("RegionId", "cn-hangzhou"),
        ("ContainerGroupId", ids["d1"].as_str()),
    ];
    let (status, _, _) = v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
    assert_eq!(status, 200);
    for case in corpus::policy_file_cases().cases {
        std::fs::write(policies.path().join(&case.file), &case.content).unwrap();
        // Give the reload a chance to see (and refuse) the broken file.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let (status, _, body) = v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
        assert_eq!(
            status, 200,
            "{}: the proxy must keep its last good policies: {body}",
            case.row
        );
        let (_, statusdoc) = support::get_json(proxy.admin, "/v1/status").await;
        let error = statusdoc["last_reload_error"].to_string();
        let location = format!("{}:{}:{}", case.file, case.expect.line, case.expect.column);
        assert!(
            error.contains(&location),
            "{}: /v1/status should name {location}: {statusdoc}",
            case.row
        );
        std::fs::remove_file(policies.path().join(&case.file)).unwrap();
    }
}

/// The facts of a scenario case, as `explain`, `test` and `who-can` describe a request.
fn hypothetical(case: &Case) -> (Hypothetical, Vec<String>) {
    let world = corpus::world().groups;
    let names: Vec<String> = case
        .target
        .iter()
        .chain(&case.ids)
        .chain(&case.resource_ids)
        .cloned()
        .collect();
    let targets = names
        .iter()
        .map(|name| {
            let g = world
                .iter()
                .find(|g| g.name == *name)
                .unwrap_or_else(|| panic!("{name} is not in the world"));
            ContainerGroupMeta {
                resource_group: g.resource_group.clone(),
                tags: Tags::from_pairs(g.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            }
        })
        .collect();
    let untag_keys = (1..)
        .map_while(|n| case.params.get(&format!("TagKey.{n}")).cloned())
        .collect();
    let facts = Hypothetical {
        action: case.action.clone(),
        resource_group: case.group.clone(),
        tags: case
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        untag_keys,
        targets,
    };
    (facts, names)
}

/// Issue 12: `explain`'s code path (the adapter all offline commands share, and the
/// planner) and the running proxy give every scenario row the same answer: the same
/// outcome, the same refusal code, the same returned groups and the same created-in group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_the_proxy_agree_on_every_scenario_row() {
    let (_backend_process, backend) = start_backend();
    let account = Account {
        id: "1234567890123456".into(),
        region: "cn-hangzhou".into(),
    };
    let mut disagreements = Vec::new();
    let mut count = 0;
    for (file, scenarios) in corpus::decision_files() {
        let policies = corpus::policy_dir(&scenarios.setting);
        let snapshot = Snapshot::load(policies.path(), account.clone()).expect("policies");
        let proxy = start_proxy(backend, policies.path(), "", "");
        for case in &scenarios.cases {
            let ids = seed_world(backend).await;
            let by_id: HashMap<&String, &String> = ids.iter().map(|(n, i)| (i, n)).collect();
            let before = backend_state(backend).await;
            let (status, body) = send(proxy.addr, case, &ids, count % 2 == 1).await;
            count += 1;
            let after = backend_state(backend).await;
            let (facts, target_names) = hypothetical(case);
            let principal = snapshot
                .directory
                .by_arn("1234567890123456", &corpus::arn(&case.caller))
                .expect("caller");
            let auth = Authorizer::new(&snapshot, explain::offline_caller(principal));
            let decided = facts.prepare("cn-hangzhou").expect("prepare").decide(&auth);
            let returned: Option<Vec<String>> = body["ContainerGroups"].as_array().map(|items| {
                let mut names: Vec<String> = items
                    .iter()
                    .filter_map(|i| i["ContainerGroupId"].as_str())
                    .map(|id| {
                        by_id
                            .get(&id.to_owned())
                            .map_or("?".into(), |n| n.to_string())
                    })
                    .collect();
                names.sort();
                names
            });
            let proxy_outcome = match (status, &returned) {
                (200, Some(names)) if names.is_empty() => Outcome::Empty,
                (200, _) => Outcome::Allow,
                _ => Outcome::Deny,
            };
            let code = body["Code"].as_str().map(str::to_owned);
            let mut problems = Vec::new();
            if decided.outcome != proxy_outcome {
                problems.push(format!(
                    "explain says {}, the proxy answered {status} {body}",
                    decided.outcome.as_str()
                ));
            }
            if decided.outcome == Outcome::Deny && decided.code().map(str::to_owned) != code {
                problems.push(format!("codes differ: {:?} and {code:?}", decided.code()));
            }
            if !decided.request.ids.is_empty() && decided.outcome != Outcome::Deny {
                let mut named: Vec<String> = decided
                    .returned
                    .iter()
                    .map(|id| {
                        let n: usize = id
                            .strip_prefix(hypothetical::TARGET_ID)
                            .and_then(|rest| rest.strip_prefix('-'))
                            .map_or(1, |n| n.parse().unwrap_or(0));
                        target_names[n - 1].clone()
                    })
                    .collect();
                named.sort();
                if decided.request.action.name == "DescribeContainerGroups"
                    && Some(&named) != returned.as_ref()
                {
                    problems.push(format!("returned: {named:?} and {returned:?}"));
                }
            }
            if case.action == "CreateContainerGroup" && status == 200 {
                let created: Vec<&String> = after
                    .iter()
                    .filter(|(id, _)| !before.contains_key(*id))
                    .map(|(_, (group, _))| group)
                    .collect();
                if created != [decided.request.resource_group.as_ref().expect("resolved")] {
                    problems.push(format!(
                        "created in {created:?}, explain says {:?}",
                        decided.request.resource_group
                    ));
                }
            }
            for p in problems {
                disagreements.push(format!(
                    "{file} {} {} as {}: {p}",
                    case.row, case.action, case.caller
                ));
            }
        }
    }
    assert!(count > 50, "only {count} rows ran");
    assert!(
        disagreements.is_empty(),
        "{} of {count} rows disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
