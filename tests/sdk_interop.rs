//! Alibaba Cloud's official Python SDKs, unmodified, against the real `ramgate serve`: the
//! tag scenarios of SCENARIOS.md (caller liumi, who signs with access key
//! `LTAIliumiExampleKey`) made three ways — `alibabacloud-eci20180808` with its default
//! ACS3-HMAC-SHA256 signature, the same SDK with `signature_algorithm='v2'` (RPC v1), and
//! `aliyun-python-sdk-core`'s `CommonRequest` (RPC v1). Allowed calls return data, denied
//! ones raise the SDK's exception with `Forbidden.RAM` and 403, a wrong secret raises
//! `SignatureDoesNotMatch`; and the backend only ever learns the caller from
//! `x-ramgate-principal`, never a credential. Over a `[[quotas]]` limit, the SDK with
//! throttling retry settings retries as told and then raises its `ThrottlingException`
//! with `Throttling.User`.
//!
//! The SDKs live in the virtual environment `scripts/test.sh` makes (`.venv`, or the python
//! named by `RAMGATE_SDK_PYTHON`). Without it the test is skipped loudly, except under
//! `CI=true`, where it fails.

mod corpus;
mod support;

use corpus::{Case, Expect};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::Ramgate;

const KEY_ID: &str = "LTAIliumiExampleKey";
const SECRET: &str = "inline-only-for-demos";
const LIUMI: &str = "acs:ram::1234567890123456:user/liumi";

/// The venv's python with both SDKs importable, or why not.
fn sdk_python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("RAMGATE_SDK_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => corpus::root().join(".venv/bin/python"),
    };
    if !python.exists() {
        return Err(format!("{} does not exist", python.display()));
    }
    let probe = Command::new(&python)
        .args(["-c", "import alibabacloud_eci20180808, aliyunsdkcore"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !probe.status.success() {
        return Err(format!(
            "{} cannot import the SDKs: {}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr)
        ));
    }
    Ok(python)
}

/// The python to use; `None` means skip (announced loudly), and under CI=true a missing
/// venv fails the test instead.
fn python_or_skip() -> Option<PathBuf> {
    match sdk_python() {
        Ok(python) => Some(python),
        Err(why) => {
            let hint = "run scripts/test.sh (it creates .venv with tests/sdk/requirements.txt), or set RAMGATE_SDK_PYTHON";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the SDK interop test needs the Python SDKs under CI: {why}; {hint}");
            }
            eprintln!("\n**********\nSKIPPED: the SDK interop test: {why}; {hint}\n**********\n");
            None
        }
    }
}

/// A backend seeded with the scenario world, and the proxy in front of it.
struct Setup {
    _backend: Ramgate,
    _proxy: Ramgate,
    _dir: tempfile::TempDir,
    backend: SocketAddr,
    proxy: SocketAddr,
    admin: SocketAddr,
    /// World name → container group id.
    ids: BTreeMap<String, String>,
}

/// [`setup_with`] the demo policies as they are.
async fn setup() -> Setup {
    setup_with("").await
}

/// The world, and a proxy whose `principals.toml` ends with `principals_extra`.
async fn setup_with(principals_extra: &str) -> Setup {
    let (backend_child, backend) = support::start_backend();
    let mut ids = BTreeMap::new();
    for group in corpus::world().groups {
        let mut params = vec![
            ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
            ("ContainerGroupName".to_owned(), group.name.clone()),
            ("ResourceGroupId".to_owned(), group.resource_group.clone()),
            ("Container.1.Name".to_owned(), "app".to_owned()),
            ("Container.1.Image".to_owned(), "nginx".to_owned()),
        ];
        for (i, (k, v)) in group.tags.iter().enumerate() {
            params.push((format!("Tag.{}.Key", i + 1), k.clone()));
            params.push((format!("Tag.{}.Value", i + 1), v.clone()));
        }
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, _, body) = support::v3(backend, "CreateContainerGroup", &pairs, &[]).await;
        assert!(
            status.is_success(),
            "seeding {}: {status} {body}",
            group.name
        );
        let id = body["ContainerGroupId"]
            .as_str()
            .unwrap_or_else(|| panic!("seeding {}: {body}", group.name))
            .to_owned();
        ids.insert(group.name, id);
    }
    // Only what goes through the proxy from here on is examined.
    support::request(backend, "DELETE", "/_backend/requests", &[], "").await;

    let dir = tempfile::tempdir().expect("temp dir");
    let policies = corpus::policy_dir("demo");
    let policy_path = dir.path().join("policies");
    std::fs::create_dir(&policy_path).expect("policies dir");
    for entry in std::fs::read_dir(policies.path()).expect("policy copy") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), policy_path.join(entry.file_name())).expect("copy");
    }
    let principals = policy_path.join("principals.toml");
    let text = std::fs::read_to_string(&principals).expect("principals.toml");
    std::fs::write(&principals, format!("{text}\n{principals_extra}")).expect("write");
    let config = dir.path().join("ramgate.toml");
    std::fs::write(
        &config,
        format!(
            "account_id = \"1234567890123456\"\n\
             [listen]\naddr = \"127.0.0.1:0\"\n\
             [admin]\naddr = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"http://{backend}\"\n\
             [policy]\ndir = {policy:?}\n\
             [log]\ndecisions = \"off\"\n",
            policy = policy_path.display().to_string(),
        ),
    )
    .expect("write ramgate.toml");
    let config_arg = config.display().to_string();
    let proxy_child = Ramgate::start(
        support::command(&["serve", "--config", &config_arg]),
        &["proxy", "admin"],
    );
    let proxy = proxy_child.addr("proxy");
    let admin = proxy_child.addr("admin");
    Setup {
        _backend: backend_child,
        _proxy: proxy_child,
        _dir: dir,
        backend,
        proxy,
        admin,
        ids,
    }
}

/// One call of the plan, and what to expect of it.
#[derive(Clone)]
struct Planned {
    what: String,
    call: Value,
    expect: Expect,
}

fn plan(ids: &BTreeMap<String, String>) -> Vec<Planned> {
    let id_of = |name: &str| {
        ids.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no world group {name}"))
    };
    let tags: corpus::File = serde_json::from_str(
        &std::fs::read_to_string(corpus::root().join("tests/scenarios/tags.json"))
            .expect("tags.json"),
    )
    .expect("tags.json parses");
    let mut calls: Vec<Planned> = tags
        .cases
        .iter()
        // liumi is the tag scenarios' caller with an access key; `multi` has none.
        .filter(|c: &&Case| c.caller == "liumi")
        .map(|case| Planned {
            what: format!("{} {}", case.row, case.action),
            call: json!({
                "access_key_id": KEY_ID,
                "secret": SECRET,
                "action": case.action,
                "params": corpus::wire_params(case, &id_of),
            }),
            expect: case.expect.clone(),
        })
        .collect();
    let describe_d1 = json!([
        ["RegionId", "cn-hangzhou"],
        ["ContainerGroupIds", format!("[\"{}\"]", id_of("d1"))]
    ]);
    calls.push(Planned {
        what: "a wrong secret".into(),
        call: json!({"access_key_id": KEY_ID, "secret": "not-liumi's-secret",
                      "action": "DescribeContainerGroups", "params": describe_d1}),
        expect: Expect::Error {
            error: "SignatureDoesNotMatch".into(),
        },
    });
    calls.push(Planned {
        what: "an unknown access key".into(),
        call: json!({"access_key_id": "LTAInobodysKey00000", "secret": SECRET,
                      "action": "DescribeContainerGroups", "params": describe_d1}),
        expect: Expect::Error {
            error: "InvalidAccessKeyId.NotFound".into(),
        },
    });
    calls
}

fn run_python(python: &Path, mode: &str, proxy: SocketAddr, calls: &[Planned]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_file = dir.path().join("plan.json");
    let plan = json!({
        "mode": mode,
        "endpoint": proxy.to_string(),
        "calls": calls.iter().map(|c| c.call.clone()).collect::<Vec<_>>(),
    });
    std::fs::write(&plan_file, plan.to_string()).expect("write the plan");
    let script = corpus::root().join("tests/sdk/run_calls.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(&plan_file)
        // The SDKs read proxies from the environment; the proxy is on loopback.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{mode}: {} failed ({}):\n{stderr}",
        script.display(),
        output.status
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{mode}: the script's output is not JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(results.len(), calls.len(), "{mode}: one result per call");
    results
}

async fn group_of(backend: SocketAddr, id: &str) -> Option<String> {
    let (_, state) = support::get_json(backend, "/_backend/state").await;
    state["groups"].as_array()?.iter().find_map(|g| {
        (g["id"] == id).then(|| g["resource_group"].as_str().unwrap_or_default().to_owned())
    })
}

/// Checks every result against its row; returns the failures.
async fn check(mode: &str, setup: &Setup, calls: &[Planned], results: &[Value]) -> Vec<String> {
    let names: BTreeMap<&str, &str> = setup
        .ids
        .iter()
        .map(|(n, id)| (id.as_str(), n.as_str()))
        .collect();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut failures = Vec::new();
    for (planned, result) in calls.iter().zip(results) {
        let what = format!("{mode}: {}", planned.what);
        let ok = result["ok"].as_bool() == Some(true);
        match &planned.expect {
            Expect::Word(word) if word == "deny" => {
                let refused = !ok
                    && result["code"] == "Forbidden.RAM"
                    && result["status"].as_u64() == Some(403);
                if !refused {
                    failures.push(format!(
                        "{what}: expected the SDK to raise Forbidden.RAM (403), got {result}"
                    ));
                } else if mode != "core" && result["auth_action"].is_null() {
                    failures.push(format!(
                        "{what}: the SDK did not see AccessDeniedDetail: {result}"
                    ));
                }
            }
            Expect::Word(word) if word == "allow" => {
                if !ok {
                    failures.push(format!("{what}: expected success, got {result}"));
                }
            }
            Expect::CreatedIn { created_in } => {
                let id = result["body"]["ContainerGroupId"]
                    .as_str()
                    .map(str::to_owned);
                match (ok, id) {
                    (true, Some(id)) => {
                        let group = group_of(setup.backend, &id).await;
                        if group.as_deref() != Some(created_in.as_str()) {
                            failures.push(format!(
                                "{what}: created {id} in {group:?}, expected {created_in}"
                            ));
                        }
                        created.insert(id);
                    }
                    _ => failures.push(format!("{what}: expected a creation, got {result}")),
                }
            }
            Expect::Returns { returns } => {
                if !ok {
                    failures.push(format!("{what}: expected a list, got {result}"));
                    continue;
                }
                let mut got = Vec::new();
                for item in result["body"]["ContainerGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let id = item["ContainerGroupId"].as_str().unwrap_or_default();
                    match names.get(id) {
                        Some(name) => got.push(name.to_string()),
                        // Groups this run created (T3, T4) legitimately match tag filters.
                        None if created.contains(id) => {}
                        None => got.push(format!("<unknown {id}>")),
                    }
                }
                got.sort();
                let mut want = returns.clone();
                want.sort();
                if got != want {
                    failures.push(format!("{what}: returned {got:?}, expected {want:?}"));
                }
            }
            Expect::Error { error } => {
                if ok || result["code"] != error.as_str() {
                    failures.push(format!(
                        "{what}: expected the SDK to raise {error}, got {result}"
                    ));
                }
            }
            other => failures.push(format!("{what}: no rule for the expectation {other:?}")),
        }
    }
    failures
}

/// Everything the backend received came through the proxy stripped of credentials, with
/// the caller named only by `x-ramgate-principal`.
async fn check_forwarded(mode: &str, backend: SocketAddr) -> Vec<String> {
    let (_, recorded) = support::get_json(backend, "/_backend/requests").await;
    let recorded = recorded.as_array().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    let mut as_liumi = 0;
    for request in &recorded {
        let headers = request["headers"].as_object().cloned().unwrap_or_default();
        let path = request["path"].as_str().unwrap_or_default();
        match headers.get("x-ramgate-principal").and_then(Value::as_str) {
            Some(LIUMI) => as_liumi += 1,
            // The proxy's own metadata lookups.
            Some("ramgate-metadata") => {}
            other => failures.push(format!(
                "{mode}: forwarded with principal {other:?}: {request}"
            )),
        }
        for name in headers.keys() {
            let credential = name == "authorization"
                || (name.starts_with("x-acs-")
                    && name != "x-acs-action"
                    && name != "x-acs-version");
            if credential {
                failures.push(format!(
                    "{mode}: the header {name} reached the backend: {request}"
                ));
            }
        }
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        for pair in query.split('&') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            if [
                "AccessKeyId",
                "Signature",
                "SignatureMethod",
                "SignatureVersion",
                "SignatureNonce",
                "SignatureType",
                "Timestamp",
                "SecurityToken",
            ]
            .contains(&name)
            {
                failures.push(format!(
                    "{mode}: the parameter {name} reached the backend: {path}"
                ));
            }
        }
        if request["body"].as_str().is_some_and(|b| !b.is_empty()) {
            failures.push(format!("{mode}: a body reached the backend: {request}"));
        }
    }
    if as_liumi == 0 {
        failures.push(format!(
            "{mode}: nothing was forwarded on liumi's behalf: {recorded:?}"
        ));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_run_the_tag_scenarios_through_ramgate() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let mut failures = Vec::new();
    let mut made = 0;
    for mode in ["v3", "v3-rpc", "core"] {
        // A fresh world per SDK: the scenarios create and update container groups.
        let setup = setup().await;
        let calls = plan(&setup.ids);
        let (python, proxy) = (python.clone(), setup.proxy);
        let calls_for_python = calls.clone();
        let results = tokio::task::spawn_blocking(move || {
            run_python(&python, mode, proxy, &calls_for_python)
        })
        .await
        .expect("the python runner");
        made += results.len();
        failures.extend(check(mode, &setup, &calls, &results).await);
        failures.extend(check_forwarded(mode, setup.backend).await);
    }
    assert!(
        failures.is_empty(),
        "{} of {made} SDK calls went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("the SDKs made {made} calls through ramgate, all as expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reports_a_quota_refusal_as_throttling_after_its_retries() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let setup = setup_with(
        "[[quotas]]\nprincipals = [\"user/liumi\"]\nactions = [\"DescribeContainerGroups\"]\nper_minute = 2\n",
    )
    .await;
    let describe = json!({
        "access_key_id": KEY_ID,
        "secret": SECRET,
        "action": "DescribeContainerGroups",
        // liumi's own groups: forwarded (unfiltered, she would get a silent empty list).
        "params": [["RegionId", "cn-hangzhou"], ["Tag.1.Key", "name"], ["Tag.1.Value", "liumi"],
                   ["Tag.2.Key", "env"], ["Tag.2.Value", "test"]],
    });
    let calls: Vec<Planned> = (0..3)
        .map(|i| Planned {
            what: format!("describe {i}"),
            call: describe.clone(),
            expect: Expect::Word("allow".into()),
        })
        .collect();
    let proxy = setup.proxy;
    let results =
        tokio::task::spawn_blocking(move || run_python(&python, "v3-retry", proxy, &calls))
            .await
            .expect("the python runner");
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[1]["ok"], true, "{}", results[1]);
    let refused = &results[2];
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["exception"], "ThrottlingException", "{refused}");
    assert_eq!(refused["code"], "Throttling.User", "{refused}");
    assert_eq!(refused["status"], 400, "{refused}");
    assert!(
        refused["retry_after"].as_u64().is_some_and(|ms| ms > 0),
        "{refused}"
    );
    // The SDK retried as its settings say (three attempts), each refused, none forwarded.
    let (_, _, text) = support::request(setup.admin, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&text);
    let throttled: f64 = text
        .lines()
        .find(|l| {
            l.starts_with("ramgate_requests_total{")
                && l.contains("action=\"DescribeContainerGroups\"")
                && l.contains("decision=\"throttled\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no throttled requests counted:\n{text}"));
    assert_eq!(throttled, 3.0, "one refusal per attempt");
    let forwarded = support::recorded(setup.backend)
        .await
        .iter()
        .filter(|r| r["headers"]["x-ramgate-principal"] == LIUMI)
        .count();
    assert_eq!(forwarded, 2, "only the admitted calls are forwarded");
}
