//! Issue 11 ("Hardening round 2"): one regression test per finding, named after it, through
//! the real proxy in front of the in-memory backend wherever the finding was end to end.
//! Each test also checks what reached the backend: a refused request never does.
//!
//! The policy directory is the demo one plus three users:
//! * `noprod`: `eci:*` on everything, denied when `eci:tag/env` is `prod` (finding 2, and
//!   the hidden groups of findings 5 and 6);
//! * `notprod`: `eci:*` allowed while `eci:tag/env` is not `prod` (finding 2's Update);
//! * `nobody`: no policy at all (finding 5).

mod corpus;
mod reference;
mod support;

use reference::{tag_change, Env, RefTags, Target, Who};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    as_user, clear_recorded, get_json, recorded, request_json, seed_group, start_backend,
    start_proxy_with, v3, Proxy, ProxySettings, Ramgate,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NO_PROD: &str = r#"{"Version":"1","Statement":[
 {"Effect":"Allow","Action":"eci:*","Resource":"*"},
 {"Effect":"Deny","Action":"eci:*","Resource":"*","Condition":{"StringEquals":{"eci:tag/env":"prod"}}}]}"#;
const NOT_PROD: &str = r#"{"Version":"1","Statement":[
 {"Effect":"Allow","Action":"eci:*","Resource":"*","Condition":{"StringNotEquals":{"eci:tag/env":"prod"}}}]}"#;

/// The tags liumi's policy (`eci-tag-liumi-test`) allows.
const LIUMI_TEST: &[(&str, &str)] = &[("name", "liumi"), ("env", "test")];

struct World {
    _backend_process: Ramgate,
    backend: SocketAddr,
    proxy: Proxy,
    _policies: tempfile::TempDir,
}

/// The demo policies plus `noprod`, `notprod` and `nobody`.
pub fn policy_dir() -> tempfile::TempDir {
    let dir = corpus::policy_dir("demo");
    std::fs::write(dir.path().join("eci-no-prod.json"), NO_PROD).expect("write");
    std::fs::write(dir.path().join("eci-not-prod.json"), NOT_PROD).expect("write");
    let principals = dir.path().join("principals.toml");
    let mut text = std::fs::read_to_string(&principals).expect("principals.toml");
    text.push_str(
        "\n[[users]]\nname = \"noprod\"\nattach = [{ policy = \"eci-no-prod\" }]\n\
         \n[[users]]\nname = \"notprod\"\nattach = [{ policy = \"eci-not-prod\" }]\n\
         \n[[users]]\nname = \"nobody\"\nattach = []\n",
    );
    std::fs::write(&principals, text).expect("write principals.toml");
    dir
}

fn world(listen: &str) -> World {
    let (backend_process, backend) = start_backend();
    let policies = policy_dir();
    let proxy = start_proxy_with(
        backend,
        policies.path(),
        &ProxySettings {
            listen,
            ..ProxySettings::default()
        },
    );
    World {
        _backend_process: backend_process,
        backend,
        proxy,
        _policies: policies,
    }
}

/// The backend's tags of `id`.
async fn tags_of(backend: SocketAddr, id: &str) -> Value {
    let (_, state) = get_json(backend, "/_backend/state").await;
    state["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["id"] == id))
        .map(|g| g["tags"].clone())
        .unwrap_or(Value::Null)
}

/// `action` with `params` through the proxy as `user`.
async fn call(w: &World, user: &str, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let who = as_user(user);
    let mut all = vec![("RegionId", "cn-hangzhou")];
    all.extend_from_slice(params);
    let (status, _, body) = v3(
        w.proxy.addr,
        action,
        &all,
        &[("x-ramgate-principal", who.as_str())],
    )
    .await;
    (status.as_u16(), body)
}

/// The requests the backend received from callers (not ramgate's own metadata lookups).
async fn forwarded(backend: SocketAddr) -> Vec<Value> {
    recorded(backend)
        .await
        .into_iter()
        .filter(|r| r["headers"]["x-ramgate-principal"] != "ramgate-metadata")
        .collect()
}

fn without_request_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("RequestId");
    }
    v
}

#[tokio::test]
async fn finding_1_untag_resources_with_tag_n_skips_the_resulting_tags_check() {
    let w = world("");
    let g = seed_group(w.backend, "g", "rg-default", LIUMI_TEST).await;
    let target = [
        ("ResourceType", "ContainerGroup"),
        ("ResourceId.1", g.as_str()),
    ];
    let mut untag = target.to_vec();
    untag.push(("TagKey.1", "env"));
    let (status, body) = call(&w, "liumi", "UntagResources", &untag).await;
    assert_eq!(status, 403, "{body}");
    clear_recorded(w.backend).await;
    let mut with_tag = untag.clone();
    with_tag.extend([("Tag.1.Key", "env"), ("Tag.1.Value", "test")]);
    let (status, body) = call(&w, "liumi", "UntagResources", &with_tag).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{body}"
    );
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Tag.1.Key") && message.contains("UntagResources"),
        "{message}"
    );
    assert!(forwarded(w.backend).await.is_empty());
    assert_eq!(
        tags_of(w.backend, &g).await,
        serde_json::json!({"name": "liumi", "env": "test"})
    );
}

#[tokio::test]
async fn finding_2_all_true_skips_the_resulting_tags_check() {
    let w = world("");
    let g = seed_group(w.backend, "g", "rg-default", &[("env", "test")]).await;
    let set_prod = [
        ("ResourceType", "ContainerGroup"),
        ("ResourceId.1", g.as_str()),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ];
    let (status, body) = call(&w, "noprod", "TagResources", &set_prod).await;
    assert_eq!(status, 403, "{body}");
    clear_recorded(w.backend).await;
    let mut with_all = set_prod.to_vec();
    with_all.push(("All", "true"));
    let (status, body) = call(&w, "noprod", "TagResources", &with_all).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["Message"].as_str().unwrap_or_default().contains("All"),
        "{body}"
    );
    // The same with UpdateContainerGroup for a StringNotEquals allow.
    let update = [
        ("ContainerGroupId", g.as_str()),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ];
    let (status, body) = call(&w, "notprod", "UpdateContainerGroup", &update).await;
    assert_eq!(status, 403, "{body}");
    let mut with_all = update.to_vec();
    with_all.push(("All", "true"));
    let (status, body) = call(&w, "notprod", "UpdateContainerGroup", &with_all).await;
    assert_eq!(status, 400, "{body}");
    // TagKey.N outside UntagResources too.
    let mut with_keys = set_prod.to_vec();
    with_keys.push(("TagKey.1", "env"));
    let (status, body) = call(&w, "noprod", "TagResources", &with_keys).await;
    assert_eq!(status, 400, "{body}");
    assert!(forwarded(w.backend).await.is_empty());
    assert_eq!(
        tags_of(w.backend, &g).await,
        serde_json::json!({"env": "test"})
    );
    // And the backend, the same model, refuses what the proxy refuses.
    let mut direct = vec![("RegionId", "cn-hangzhou")];
    direct.extend_from_slice(&set_prod);
    direct.push(("All", "true"));
    let (status, _, body) = v3(w.backend, "TagResources", &direct, &[]).await;
    assert_eq!(status, 400, "{body}");
}

/// Root's `TagResources` of `env=<value>` on `id`, through the proxy.
async fn set_env(w: &World, id: &str, value: &str) -> (u16, Value) {
    let params = [
        ("ResourceType", "ContainerGroup"),
        ("ResourceId.1", id),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", value),
    ];
    call(w, "root", "TagResources", &params).await
}

/// Finding 3 (and Done-when 3): many rounds of a tag write on G racing a lookup that names
/// G among 50 ids; once the write has answered, the next decision on G must see its result.
async fn rounds_of_writes_racing_lookups(w: &World, rounds: usize) {
    let g = seed_group(w.backend, "g", "rg-default", LIUMI_TEST).await;
    let mut ids: Vec<String> = (0..49).map(|i| format!("eci-absent-{i:02}")).collect();
    // In the first batch of 20, but not first: its data is fetched before the write
    // while the lookup reaches it only after all three batches are in.
    ids.insert(5, g.clone());
    for round in 0..rounds {
        // Back to a tag set liumi may use, through the proxy (which forgets G).
        let (status, body) = set_env(w, &g, "test").await;
        assert_eq!(status, 200, "{body}");
        // G is not cached now: the lookup below fetches it, racing the write.
        assert_eq!(tags_of(w.backend, &g).await["env"], "test");

        let list: Vec<(String, String)> =
            std::iter::once(("ResourceType".into(), "ContainerGroup".into()))
                .chain(
                    ids.iter()
                        .enumerate()
                        .map(|(i, id)| (format!("ResourceId.{}", i + 1), id.clone())),
                )
                .collect();
        let liumi = as_user("liumi");
        let addr = w.proxy.addr;
        let lookup = tokio::spawn(async move {
            let mut q: Vec<(&str, &str)> = vec![("RegionId", "cn-hangzhou")];
            q.extend(list.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            v3(
                addr,
                "ListTagResources",
                &q,
                &[("x-ramgate-principal", liumi.as_str())],
            )
            .await
        });
        // Let the lookup start (its batches are under way) before the write.
        tokio::time::sleep(Duration::from_millis((round % 4) as u64 * 3)).await;
        let (status, body) = set_env(w, &g, "prod").await;
        assert_eq!(status, 200, "{body}");
        // The write has answered: no decision may rest on the tags from before it, whether
        // asked while the racing lookup is still under way (odd rounds) or after it ended.
        if round % 2 == 1 {
            let (status, body) = call(
                w,
                "liumi",
                "DescribeContainerLog",
                &[("ContainerGroupId", &g)],
            )
            .await;
            assert_eq!(
                status, 403,
                "round {round}: a decision on tags older than a completed write: {body}"
            );
        }
        let _ = lookup.await.expect("join");
        let (status, body) = call(
            w,
            "liumi",
            "DescribeContainerLog",
            &[("ContainerGroupId", &g)],
        )
        .await;
        assert_eq!(status, 403, "round {round}, after the lookup ended: {body}");
    }
}

#[tokio::test]
async fn finding_3_a_tag_change_through_the_proxy_can_stay_invisible_for_the_ttl() {
    let w = world("");
    rounds_of_writes_racing_lookups(&w, 25).await;
    let (status, _, body) =
        request_json(w.backend, "POST", "/_backend/faults?delay_ms=20", &[], "").await;
    assert!(status.is_success(), "{body}");
    rounds_of_writes_racing_lookups(&w, 15).await;
}

#[tokio::test]
async fn finding_4_a_denial_tells_whether_a_container_group_exists() {
    let w = world("");
    // test2 may use rg-default only; liumi groups tagged name=liumi, env=test only.
    let elsewhere = seed_group(w.backend, "g", "rg-test-a", LIUMI_TEST).await;
    let untagged = seed_group(w.backend, "g", "rg-default", &[("env", "prod")]).await;
    for (user, existing) in [
        ("test2", &elsewhere),
        ("liumi", &untagged),
        ("noprod", &untagged),
    ] {
        let (s1, denied) = call(
            &w,
            user,
            "DeleteContainerGroup",
            &[("ContainerGroupId", existing)],
        )
        .await;
        let (s2, missing) = call(
            &w,
            user,
            "DeleteContainerGroup",
            &[("ContainerGroupId", "eci-does-not-exist")],
        )
        .await;
        assert_eq!((s1, s2), (403, 403), "{user}: {denied} / {missing}");
        assert_eq!(
            without_request_id(denied.clone()),
            without_request_id(missing.clone()),
            "{user}: a denial on a group it cannot see differs from one on a missing id"
        );
    }
    // A group the caller may see keeps the detail of why it was denied.
    let visible = seed_group(w.backend, "g", "rg-default", &[("env", "test")]).await;
    let update = [
        ("ContainerGroupId", visible.as_str()),
        ("Tag.1.Key", "env"),
        ("Tag.1.Value", "prod"),
    ];
    let (status, body) = call(&w, "noprod", "UpdateContainerGroup", &update).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["AccessDeniedDetail"]["NoPermissionType"], "ExplicitDeny",
        "{body}"
    );
}

#[tokio::test]
async fn finding_5_list_actions_without_ids_are_forwarded_for_any_principal() {
    let w = world("");
    let visible = seed_group(w.backend, "g", "rg-default", &[("a", "1")]).await;
    let hidden = seed_group(
        w.backend,
        "g",
        "rg-default",
        &[("env", "prod"), ("secret", "s3cr3t")],
    )
    .await;
    clear_recorded(w.backend).await;
    for action in ["ListTagResources", "DescribeContainerGroupStatus"] {
        let params: &[(&str, &str)] = if action == "ListTagResources" {
            &[("ResourceType", "ContainerGroup")]
        } else {
            &[]
        };
        let (status, body) = call(&w, "nobody", action, params).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["TotalCount"], 0, "{action}: {body}");
    }
    assert!(
        forwarded(w.backend).await.is_empty(),
        "a list was forwarded for a principal with no policy"
    );
    // Pages of one item: the paging token must not name the hidden group's tags.
    let (status, body) = call(
        &w,
        "noprod",
        "ListTagResources",
        &[("ResourceType", "ContainerGroup"), ("Limit", "1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    assert!(text.contains(&visible), "{text}");
    assert!(
        !text.contains(&hidden) && !text.contains("secret"),
        "{text}"
    );
    assert_eq!(body["NextToken"].as_str().unwrap_or_default(), "", "{body}");
}

#[tokio::test]
async fn finding_6_describe_paging_confirms_hidden_groups() {
    let w = world("");
    seed_group(w.backend, "g", "rg-default", &[("team", "x")]).await;
    let query = [("Tag.1.Key", "team"), ("Tag.1.Value", "x"), ("Limit", "1")];
    let (status, without) = call(&w, "noprod", "DescribeContainerGroups", &query).await;
    assert_eq!(status, 200, "{without}");
    // A group the caller cannot see, matching the guessed tag.
    let hidden = seed_group(
        w.backend,
        "g",
        "rg-default",
        &[("team", "x"), ("env", "prod")],
    )
    .await;
    let (status, with) = call(&w, "noprod", "DescribeContainerGroups", &query).await;
    assert_eq!(status, 200, "{with}");
    assert!(!with.to_string().contains(&hidden));
    assert_eq!(without_request_id(with), without_request_id(without));
    // A caller who sees everything keeps the backend's paging.
    let (status, body) = call(
        &w,
        "test2",
        "DescribeContainerGroups",
        &[("ResourceGroupId", "rg-default"), ("Limit", "1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["TotalCount"], 2, "{body}");
    assert_ne!(body["NextToken"].as_str().unwrap_or_default(), "", "{body}");
}

#[tokio::test]
async fn finding_7_a_stalled_body_holds_a_connection_slot_forever() {
    let w = world("max_connections = 5\nheader_read_timeout_ms = 400");
    let root = as_user("root");
    let head = format!(
        "POST /?Action=DescribeContainerGroups&Version=2018-08-08&RegionId=cn-hangzhou HTTP/1.1\r\n\
         Host: x\r\nx-ramgate-principal: {root}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\n"
    );
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(w.proxy.addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("write");
        stalled.push(s);
    }
    // Every stalled request is refused and its connection closed, within the deadline.
    for mut s in stalled {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "a stalled body kept its connection open");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 400"),
            "{text}"
        );
    }
    // The slots are free again.
    let started = Instant::now();
    let (status, body) = call(&w, "root", "DescribeContainerGroups", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(forwarded(w.backend).await.len() <= 1);
}

#[tokio::test]
async fn finding_8_tag_key_without_value_is_authorized_as_empty_but_forwarded_as_any() {
    let w = world("");
    seed_group(w.backend, "g", "rg-default", LIUMI_TEST).await;
    clear_recorded(w.backend).await;
    for (action, extra) in [
        (
            "DescribeContainerGroups",
            vec![
                ("Tag.1.Key", "name"),
                ("Tag.1.Value", "liumi"),
                ("Tag.2.Key", "env"),
            ],
        ),
        (
            "ListTagResources",
            vec![("ResourceType", "ContainerGroup"), ("Tag.1.Key", "env")],
        ),
    ] {
        let (status, body) = call(&w, "liumi", action, &extra).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("InvalidParameter")),
            "{action}: {body}"
        );
    }
    assert!(forwarded(w.backend).await.is_empty());
    // Where Tag.N are tags to set, a key alone is the empty value for ramgate and backend.
    let g = seed_group(w.backend, "g", "rg-default", &[("a", "1")]).await;
    let (status, body) = call(
        &w,
        "root",
        "TagResources",
        &[
            ("ResourceType", "ContainerGroup"),
            ("ResourceId.1", &g),
            ("Tag.1.Key", "k"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tags_of(w.backend, &g).await,
        serde_json::json!({"a": "1", "k": ""})
    );
}

#[tokio::test]
async fn finding_9_region_id_other_than_the_configured_region_is_forwarded() {
    let w = world("");
    clear_recorded(w.backend).await;
    let who = as_user("root");
    let (status, _, body) = v3(
        w.proxy.addr,
        "DescribeContainerGroups",
        &[("RegionId", "cn-shanghai")],
        &[("x-ramgate-principal", who.as_str())],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{body}"
    );
    assert!(
        body["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("RegionId"),
        "{body}"
    );
    assert!(forwarded(w.backend).await.is_empty());
}

/// The reference's view of [`policy_dir`].
fn reference_world(dir: &std::path::Path) -> reference::World {
    let sources: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(dir)
        .expect("policy dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            (path, text)
        })
        .collect();
    reference::World::from_sources("1234567890123456", "cn-hangzhou", &sources)
}

fn ref_tags(v: &Value) -> RefTags {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Done-when 2: random mixes of `Tag.N`, `TagKey.N`, `All` and other actions' parameters
/// on the tag-changing actions, through the proxy. Whatever the backend's tags become, the
/// caller's policy (the reference evaluator's reading of it) allows both the old and the new
/// tag set; a request the reference's parameter model refuses is a 400 that changes nothing;
/// and what changed is exactly what the model says the action does.
#[tokio::test]
async fn tag_changes_through_the_proxy_only_ever_leave_allowed_tags() {
    let w = world("");
    let oracle = reference_world(w._policies.path());
    let seed_value: u64 = std::env::var("RAMGATE_TAG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1111);
    let mut rng = support::SplitMix(seed_value);
    const POOL: &[(&str, &str)] = &[
        ("name", "liumi"),
        ("env", "test"),
        ("env", "prod"),
        ("name", "liumi2"),
        ("env", "pre"),
        ("team", "x"),
    ];
    const CALLERS: &[&str] = &[
        "liumi", "multi", "noprod", "notprod", "test2", "ro", "nobody",
    ];
    const ACTIONS: &[&str] = &["TagResources", "UntagResources", "UpdateContainerGroup"];
    let mut groups = Vec::new();
    for tags in [
        LIUMI_TEST,
        &[("name", "liumi2"), ("env", "pre")],
        &[("env", "prod")],
        &[],
    ] {
        groups.push(seed_group(w.backend, "g", "rg-default", tags).await);
    }
    let (mut changed, mut refused, mut denied) = (0, 0, 0);
    for round in 0..150 {
        let id = rng.pick(&groups).clone();
        let caller = *rng.pick(CALLERS);
        let action = *rng.pick(ACTIONS);
        let mut params: Vec<(String, String)> = Vec::new();
        if action == "UpdateContainerGroup" {
            params.push(("ContainerGroupId".into(), id.clone()));
        } else {
            params.push(("ResourceType".into(), "ContainerGroup".into()));
            params.push(("ResourceId.1".into(), id.clone()));
        }
        // Mostly what the action takes, often mixed with what it does not.
        let mixed = rng.chance(2);
        let sets = action != "UntagResources";
        let mut request_tags = RefTags::new();
        if sets || mixed {
            for _ in 0..=rng.below(2) {
                let (k, v) = *rng.pick(POOL);
                if request_tags.contains_key(k) {
                    continue;
                }
                let n = request_tags.len() + 1;
                params.push((format!("Tag.{n}.Key"), k.into()));
                let value = if rng.chance(5) { "" } else { v };
                if !value.is_empty() || rng.chance(2) {
                    params.push((format!("Tag.{n}.Value"), value.into()));
                }
                request_tags.insert(k.into(), value.into());
            }
        }
        if !sets || mixed {
            let mut keys = std::collections::BTreeSet::new();
            match rng.below(3) {
                0 => params.push(("All".into(), "true".into())),
                1 if mixed => params.push(("All".into(), "false".into())),
                _ => {}
            }
            for _ in 0..=rng.below(2) {
                keys.insert(rng.pick(POOL).0);
            }
            if sets || rng.chance(2) || !params.iter().any(|(n, _)| n == "All") {
                for (n, key) in (1..).zip(keys) {
                    params.push((format!("TagKey.{n}"), key.into()));
                }
            }
        }
        // Other actions' parameters, taken or not.
        match rng.below(6) {
            0 => params.push(("Limit".into(), "5".into())),
            1 => params.push(("ContainerName".into(), "app".into())),
            2 => params.push(("ContainerGroupIds".into(), format!("[\"{id}\"]"))),
            _ => {}
        }
        // ContainerGroupIds names groups another way than these actions take: always 400.
        let other_refused = params.iter().any(|(n, _)| n == "ContainerGroupIds");

        let (_, before_state) = get_json(w.backend, "/_backend/state").await;
        let before = before_state["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["id"] == id.as_str()))
            .map(|g| ref_tags(&g["tags"]))
            .expect("seeded group");
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = call(&w, caller, action, &pairs).await;
        let after = ref_tags(&tags_of(w.backend, &id).await);
        let what = format!("round {round}: {caller} {action} {params:?} on {before:?}: {status} {body} → {after:?}");
        let model = tag_change(action, &params, &before);
        if status == 400 && body["HostId"] == "ramgate" {
            assert!(
                model.is_err() || other_refused,
                "refused, but the model takes it: {what}"
            );
            assert_eq!(before, after, "{what}");
            refused += 1;
            continue;
        }
        assert!(
            model.is_ok() && !other_refused,
            "accepted, but the model refuses it ({model:?}): {what}"
        );
        if status == 403 {
            assert_eq!(before, after, "{what}");
            denied += 1;
            continue;
        }
        assert_eq!(status, 200, "{what}");
        let target = Target {
            id: id.clone(),
            resource_group: "rg-default".into(),
            tags: before.clone(),
        };
        let who = if caller == "root" {
            Who::Root
        } else {
            Who::User(caller)
        };
        let env = Env {
            source_ip: Some("127.0.0.1".parse().expect("ip")),
            secure_transport: false,
        };
        assert!(
            oracle.single(
                who,
                &format!("eci:{action}"),
                &target,
                &request_tags,
                Some(&after),
                env
            ),
            "the backend's tags are not ones the caller may have before and after: {what}"
        );
        assert_eq!(
            Ok(after.clone()),
            model,
            "the backend did otherwise than the model: {what}"
        );
        if before != after {
            changed += 1;
        }
    }
    // The mix exercises every outcome.
    assert!(
        changed > 5 && refused > 20 && denied > 5,
        "changed {changed}, refused {refused}, denied {denied}"
    );
}
