//! Hot reload through the real binaries: a policy rewritten under load (every decision
//! checked against the reference evaluator on the old and the new rules), a Kubernetes
//! ConfigMap-style `..data` swap, and a malformed policy that changes nothing, is reported
//! with file and line, is counted, and is retried on `SIGHUP`.

mod ops_support;
mod reference;
mod support;

use hyper::StatusCode;
use ops_support::{call, eventually, metrics, sample, status, write_atomically};
use reference::{DescribeRequest, Env, RefTags, Target, Who, World};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{start_backend, start_proxy};

/// The demo's `eci-tag-liumi-test` moved from `env=test` to `env=prod`.
const LIUMI_PROD: &str = r#"{"Version":"1","Statement":[
 {"Action":"eci:*","Resource":"*","Effect":"Allow",
  "Condition":{"StringEquals":{"eci:tag/name":"liumi","eci:tag/env":"prod"}}},
 {"Action":["ecs:DescribeSecurityGroups"],"Resource":"*","Effect":"Allow"},
 {"Action":["vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:DescribeEipAddresses"],"Resource":"*","Effect":"Allow"}]}
"#;

const LIUMI_POLICY: &str = "eci-tag-liumi-test.json";

fn env() -> Env {
    Env {
        source_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        secure_transport: false,
    }
}

/// The reference world of a policy directory's files.
fn world(files: &[(PathBuf, String)]) -> World {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p.file_name().expect("a name")), t.clone()))
        .collect();
    World::from_sources(ops_support::ACCOUNT, ops_support::REGION, &sources)
}

fn read_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .expect("the policy directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            !name.starts_with('.') && (name.ends_with(".json") || name == "principals.toml")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p, text)
        })
        .collect();
    files.sort();
    files
}

/// One container group the tests act on.
#[derive(Clone)]
struct Group {
    id: String,
    target: Target,
}

async fn seed_group(backend: SocketAddr, name: &str, rg: &str, tags: &[(&str, &str)]) -> Group {
    let id = support::seed_group(backend, name, rg, tags).await;
    Group {
        target: Target {
            id: id.clone(),
            resource_group: rg.to_owned(),
            tags: reference::tags(tags),
        },
        id,
    }
}

/// The demo's container groups: one per interesting tag set and group.
async fn seed_demo(backend: SocketAddr) -> Vec<Group> {
    vec![
        seed_group(
            backend,
            "liumi-test",
            "rg-default",
            &[("name", "liumi"), ("env", "test")],
        )
        .await,
        seed_group(
            backend,
            "liumi-prod",
            "rg-default",
            &[("name", "liumi"), ("env", "prod")],
        )
        .await,
        seed_group(
            backend,
            "liumi2-pre",
            "rg-default",
            &[("name", "liumi2"), ("env", "pre")],
        )
        .await,
        seed_group(backend, "batch-a", "rg-test-a", &[("team", "a")]).await,
    ]
}

/// One kind of request the load repeats.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// `DescribeContainerLog` of one group: 200 when allowed, 403 `Forbidden.RAM` if not.
    Log,
    /// `DescribeContainerGroups` with `ContainerGroupIds=[id]`: the group is listed or
    /// silently left out.
    DescribeById,
}

#[derive(Clone, Debug)]
struct Case {
    who: &'static str,
    probe: Probe,
    group: usize,
    /// What the reference says under the old rules, and under the new.
    old: bool,
    new: bool,
}

fn expect(world: &World, who: &str, probe: Probe, g: &Group) -> bool {
    match probe {
        Probe::Log => world.single(
            Who::User(who),
            "eci:DescribeContainerLog",
            &g.target,
            &RefTags::new(),
            None,
            env(),
        ),
        Probe::DescribeById => {
            let ids = [g.id.as_str()];
            let request = DescribeRequest {
                resource_group: None,
                ids: Some(&ids),
                tags: &RefTags::new(),
            };
            world.describe_visible(Who::User(who), &request, &g.target, env())
        }
    }
}

/// Sends one probe; `Ok(allowed or listed)`, or `Err` for any answer that is neither an
/// allow nor a proper denial.
async fn run_probe(proxy: SocketAddr, case: &Case, groups: &[Group]) -> Result<bool, String> {
    let g = &groups[case.group];
    match case.probe {
        Probe::Log => {
            let (status, body) = call(
                proxy,
                case.who,
                "DescribeContainerLog",
                &[("ContainerGroupId", &g.id), ("ContainerName", "app")],
            )
            .await;
            match status {
                StatusCode::OK => Ok(true),
                StatusCode::FORBIDDEN if body["Code"] == "Forbidden.RAM" => Ok(false),
                _ => Err(format!("{status} {body}")),
            }
        }
        Probe::DescribeById => {
            let ids = format!("[\"{}\"]", g.id);
            let (status, body) = call(
                proxy,
                case.who,
                "DescribeContainerGroups",
                &[("ContainerGroupIds", &ids)],
            )
            .await;
            if status != StatusCode::OK {
                return Err(format!("{status} {body}"));
            }
            let listed = body["ContainerGroups"]
                .as_array()
                .ok_or_else(|| format!("no ContainerGroups in {body}"))?
                .iter()
                .any(|item| item["ContainerGroupId"] == g.id.as_str());
            Ok(listed)
        }
    }
}

struct Seen {
    case: usize,
    sent: Instant,
    done: Instant,
    result: Result<bool, String>,
}

/// Done-when 1: the policy file is rewritten (in place, not atomically: a reader may catch
/// it half-written) while a load of requests runs. No request fails; every decision is
/// the old rules' or the new rules' (per the reference evaluator); from one second after
/// the write, only the new rules'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_rewritten_under_load_applies_atomically_within_a_second() {
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let proxy = start_proxy(backend, policies.path(), "", "");
    let admin = proxy.admin;
    let groups = Arc::new(seed_demo(backend).await);

    let old_world = world(&read_files(policies.path()));
    let mut new_files = read_files(policies.path());
    for (path, text) in &mut new_files {
        if path.ends_with(LIUMI_POLICY) {
            *text = LIUMI_PROD.to_owned();
        }
    }
    let new_world = world(&new_files);

    let mut cases = Vec::new();
    for who in ["liumi", "multi", "test", "ro"] {
        for probe in [Probe::Log, Probe::DescribeById] {
            for (i, g) in groups.iter().enumerate() {
                cases.push(Case {
                    who,
                    probe,
                    group: i,
                    old: expect(&old_world, who, probe, g),
                    new: expect(&new_world, who, probe, g),
                });
            }
        }
    }
    let changing: Vec<usize> = (0..cases.len())
        .filter(|&i| cases[i].old != cases[i].new)
        .collect();
    assert!(
        changing.len() >= 4,
        "the rewrite must change some decisions: {cases:?}"
    );
    let cases = Arc::new(cases);

    let start = Instant::now();
    let write_at = start + Duration::from_millis(700);
    let stop_at = write_at + Duration::from_millis(2000);
    let mut workers = Vec::new();
    for w in 0..6usize {
        let (cases, groups) = (cases.clone(), groups.clone());
        let addr = proxy.addr;
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = w;
            while Instant::now() < stop_at {
                let case = i % cases.len();
                i += 7;
                let sent = Instant::now();
                let result = run_probe(addr, &cases[case], &groups).await;
                seen.push(Seen {
                    case,
                    sent,
                    done: Instant::now(),
                    result,
                });
            }
            seen
        }));
    }

    tokio::time::sleep_until(write_at.into()).await;
    let before_write = Instant::now();
    std::fs::write(policies.path().join(LIUMI_POLICY), LIUMI_PROD).expect("rewrite");
    let written = Instant::now();

    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.expect("a worker"));
    }

    let failures: Vec<String> = seen
        .iter()
        .filter_map(|s| {
            s.result
                .as_ref()
                .err()
                .map(|e| format!("{:?}: {e}", cases[s.case]))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        seen.len(),
        &failures[..failures.len().min(10)]
    );

    let settled = written + Duration::from_secs(1);
    let (mut before, mut during, mut after) = (0, 0, 0);
    for s in &seen {
        let case = &cases[s.case];
        let got = *s.result.as_ref().expect("checked above");
        if s.done < before_write {
            before += 1;
            assert_eq!(got, case.old, "before the write: {case:?}");
        } else if s.sent >= settled {
            after += 1;
            assert_eq!(
                got,
                case.new,
                "{:?} after the write: {case:?}",
                s.sent - written
            );
        } else {
            during += 1;
            assert!(
                got == case.old || got == case.new,
                "neither old nor new rules: {case:?}"
            );
        }
    }
    // Every changing case was asked before the write and after it settled.
    for &c in &changing {
        assert!(
            seen.iter().any(|s| s.case == c && s.done < before_write),
            "case {c} never asked before the write"
        );
        assert!(
            seen.iter().any(|s| s.case == c && s.sent >= settled),
            "case {c} never asked after the write settled"
        );
    }
    eprintln!(
        "{} requests: {before} before the write, {during} around it, {after} after",
        seen.len()
    );

    let st = status(admin).await;
    assert_eq!(st["generation"], 2, "{st}");
    assert_eq!(st["last_reload_error"], Value::Null, "{st}");
}

/// Lays out `files` the way the kubelet mounts a ConfigMap: the data in a timestamped
/// directory, `..data` linking to it, and each file a link through `..data`.
fn configmap_create(dir: &Path, version: &str, files: &[(&str, &str)]) {
    let data = dir.join(version);
    std::fs::create_dir(&data).expect("version directory");
    for (name, text) in files {
        std::fs::write(data.join(name), text).expect("write");
    }
    std::os::unix::fs::symlink(version, dir.join("..data")).expect("..data");
    for (name, _) in files {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).expect("a link");
    }
}

/// The kubelet's update, in its order: write the new version's directory, point a
/// temporary link at it and rename that over `..data` (atomic), then add links for new
/// keys, remove those of keys gone, and delete the old version.
fn configmap_update(dir: &Path, old: &str, version: &str, files: &[(&str, &str)]) {
    let data = dir.join(version);
    std::fs::create_dir(&data).expect("version directory");
    for (name, text) in files {
        std::fs::write(data.join(name), text).expect("write");
    }
    std::os::unix::fs::symlink(version, dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), link).expect("a new link");
        }
    }
    for entry in std::fs::read_dir(dir).expect("the directory") {
        let entry = entry.expect("an entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(entry.path()).expect("remove a stale link");
        }
    }
    std::fs::remove_dir_all(dir.join(old)).expect("remove the old version");
}

/// Done-when 2: a ConfigMap-style update (new timestamped directory, `..data` re-pointed
/// atomically, files as links through `..data`) applies, within a second.
#[tokio::test]
async fn a_configmap_data_swap_applies() {
    let (_backend_process, backend) = start_backend();
    let groups = seed_demo(backend).await;
    let (test_group, prod_group, pre_group) = (&groups[0], &groups[1], &groups[2]);

    let demo = ops_support::demo_files();
    let v1: Vec<(&str, &str)> = demo.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("policies");
    std::fs::create_dir(&dir).expect("policies");
    configmap_create(&dir, "..2026_11_28_10_00_00.123", &v1);
    let proxy = start_proxy(backend, &dir, "", "");
    let admin = proxy.admin;

    let log = |who: &'static str, g: &Group| {
        let id = g.id.clone();
        let addr = proxy.addr;
        async move {
            call(
                addr,
                who,
                "DescribeContainerLog",
                &[("ContainerGroupId", &id), ("ContainerName", "app")],
            )
            .await
            .0
        }
    };
    assert_eq!(log("liumi", test_group).await, StatusCode::OK);
    assert_eq!(log("liumi", prod_group).await, StatusCode::FORBIDDEN);
    assert_eq!(log("newbie", pre_group).await, StatusCode::UNAUTHORIZED);
    let st = status(admin).await;
    assert_eq!(st["generation"], 1, "{st}");
    let files: Vec<String> = st["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        files.len(),
        3,
        "dot entries are not policy files: {files:?}"
    );
    assert!(files.iter().all(|f| !f.contains("..")), "{files:?}");

    // The new version: liumi's policy moves to env=prod, and a new user with a new policy
    // file (a new key, whose link the kubelet adds after the swap).
    let principals = demo
        .iter()
        .find(|(n, _)| n == "principals.toml")
        .map(|(_, t)| t.clone())
        .expect("principals.toml")
        + "\n[[users]]\nname = \"newbie\"\nattach = [{ policy = \"eci-pre-readers\" }]\n";
    let pre_readers = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"eci:Describe*",
 "Resource":"*","Condition":{"StringEquals":{"eci:tag/env":"pre"}}}]}"#;
    let mut v2: Vec<(&str, &str)> = v1
        .iter()
        .map(|&(n, t)| match n {
            "principals.toml" => (n, principals.as_str()),
            LIUMI_POLICY => (n, LIUMI_PROD),
            _ => (n, t),
        })
        .collect();
    v2.push(("eci-pre-readers.json", pre_readers));
    configmap_update(
        &dir,
        "..2026_11_28_10_00_00.123",
        "..2026_11_28_10_05_00.456",
        &v2,
    );
    let swapped = Instant::now();

    let applied = eventually(Duration::from_secs(3), move || async move {
        (status(admin).await["generation"] == 2).then_some(())
    })
    .await;
    let took = swapped.elapsed();
    assert!(applied.is_some(), "not reloaded: {}", status(admin).await);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(log("liumi", prod_group).await, StatusCode::OK);
    assert_eq!(log("liumi", test_group).await, StatusCode::FORBIDDEN);
    assert_eq!(log("newbie", pre_group).await, StatusCode::OK);
    assert_eq!(log("newbie", prod_group).await, StatusCode::FORBIDDEN);
    let st = status(admin).await;
    assert_eq!(st["last_reload_error"], Value::Null, "{st}");
    assert!(
        st["files"].as_array().expect("files").iter().any(|f| f
            .as_str()
            .is_some_and(|f| f.ends_with("eci-pre-readers.json"))),
        "{st}"
    );
}

fn reloads(text: &str, result: &str) -> f64 {
    sample(text, "ramgate_policy_reloads_total", &[("result", result)]).unwrap_or(-1.0)
}

/// Done-when 3: a malformed policy (misplaced brackets) changes nothing: the old rules
/// still decide, `/v1/status` shows the error with file and line, the error is counted.
/// `SIGHUP` reloads (counted again, even with nothing changed), and a fixed file applies.
#[tokio::test]
async fn a_malformed_policy_keeps_the_old_rules_and_is_reported_and_sighup_reloads() {
    let (_backend_process, backend) = start_backend();
    let groups = seed_demo(backend).await;
    let (test_group, prod_group) = (groups[0].id.clone(), groups[1].id.clone());
    let policies = ops_support::policy_copy();
    let proxy = start_proxy(backend, policies.path(), "", "");
    let admin = proxy.admin;
    let log = |id: String| {
        let addr = proxy.addr;
        async move {
            call(
                addr,
                "liumi",
                "DescribeContainerLog",
                &[("ContainerGroupId", &id), ("ContainerName", "app")],
            )
            .await
            .0
        }
    };
    let text = metrics(admin).await;
    assert_eq!(reloads(&text, "error"), 0.0, "{text}");
    assert_eq!(reloads(&text, "success"), 0.0, "{text}");

    // The `]` on line 3 belongs after the condition's closing braces.
    let malformed = r#"{"Version":"1","Statement":[
 {"Action":"eci:*","Resource":"*","Effect":"Allow",
  "Condition":{"StringEquals":{"eci:tag/name":"liumi","eci:tag/env":"prod"]}}},
 {"Action":["ecs:DescribeSecurityGroups"],"Resource":"*","Effect":"Allow"}}
"#;
    let path = policies.path().join(LIUMI_POLICY);
    write_atomically(&path, malformed);

    let error = eventually(Duration::from_secs(3), move || async move {
        let st = status(admin).await;
        let e = st["last_reload_error"].clone();
        (!e.is_null()).then_some(e)
    })
    .await
    .expect("the reload error shows in /v1/status");
    let first = &error["problems"][0];
    assert!(
        first["file"]
            .as_str()
            .is_some_and(|f| f.ends_with(LIUMI_POLICY)),
        "{error}"
    );
    assert_eq!(first["line"], 3, "{error}");
    assert!(first["column"].as_u64().is_some_and(|c| c > 1), "{error}");
    // Seen by the watch, or by the periodic check if its tick came first.
    assert!(
        error["trigger"] == "watch" || error["trigger"] == "poll",
        "{error}"
    );
    let where_ = format!("{LIUMI_POLICY}:3:");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains(&where_)),
        "{error}"
    );
    // Logged, with file, line and column.
    assert!(
        proxy
            .process
            .wait_for_stderr(Duration::from_secs(2), |l| l
                .contains("policy reload failed")
                && l.contains(&where_))
            .is_some(),
        "{}",
        proxy.process.stderr_text()
    );
    // Still the old rules, still generation 1.
    assert_eq!(log(test_group.clone()).await, StatusCode::OK);
    assert_eq!(log(prod_group.clone()).await, StatusCode::FORBIDDEN);
    let st = status(admin).await;
    assert_eq!(st["generation"], 1, "{st}");
    // Counted once, although the watch and the periodic check both saw it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = metrics(admin).await;
    assert_eq!(reloads(&text, "error"), 1.0, "{text}");

    // SIGHUP reloads even though nothing changed: one more error, from the signal.
    proxy.process.signal("HUP");
    let text = eventually(Duration::from_secs(3), move || async move {
        let text = metrics(admin).await;
        (reloads(&text, "error") == 2.0).then_some(text)
    })
    .await
    .expect("SIGHUP reloads (and fails again)");
    assert_eq!(reloads(&text, "success"), 0.0, "{text}");
    let st = status(admin).await;
    assert_eq!(st["last_reload_error"]["trigger"], "signal", "{st}");
    assert_eq!(st["generation"], 1, "{st}");

    // Fixed: the new rules apply and the error is gone.
    write_atomically(&path, LIUMI_PROD);
    let st = eventually(Duration::from_secs(3), move || async move {
        let st = status(admin).await;
        (st["generation"] == 2).then_some(st)
    })
    .await
    .expect("the fixed policy is loaded");
    assert_eq!(st["last_reload_error"], Value::Null, "{st}");
    assert_eq!(log(prod_group).await, StatusCode::OK);
    assert_eq!(log(test_group).await, StatusCode::FORBIDDEN);
    let text = metrics(admin).await;
    assert_eq!(reloads(&text, "success"), 1.0, "{text}");
    assert_eq!(
        sample(&text, "ramgate_policy_generation", &[]),
        Some(2.0),
        "{text}"
    );

    // SIGHUP on a valid, unchanged directory: a successful reload, same generation.
    proxy.process.signal("HUP");
    let text = eventually(Duration::from_secs(3), move || async move {
        let text = metrics(admin).await;
        (reloads(&text, "success") == 2.0).then_some(text)
    })
    .await
    .expect("SIGHUP reloads");
    assert_eq!(reloads(&text, "error"), 2.0, "{text}");
    let st = status(admin).await;
    assert_eq!(st["generation"], 2, "{st}");
    assert_eq!(st["last_reload"]["trigger"], "signal", "{st}");
}
