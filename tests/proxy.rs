//! The enforcing proxy through the real binaries: identity refusals, ambiguous requests
//! never reaching the backend, exactly the canonical parameters forwarded without
//! credentials, the metadata cache, fail-closed lookups, item-by-item filtering against a
//! backend that ignores filters, dry-run, and body limits.

mod corpus;
mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use support::{
    as_user, clear_recorded, get_json, post_query, recorded, request_json, start_backend,
    start_proxy, v3, Proxy,
};

const DESCRIBE: &str = "DescribeContainerGroups";

/// A group seeded with a container name that needs encoding, to check what is forwarded.
async fn create(backend: SocketAddr, name: &str, group: &str, tags: &[(&str, &str)]) -> String {
    support::seed_group_with(backend, name, group, tags, "a b*~").await
}

async fn state(backend: SocketAddr) -> Value {
    get_json(backend, "/_backend/state").await.1
}

async fn describe_calls(backend: SocketAddr) -> u64 {
    state(backend).await["describe_calls"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

async fn faults(backend: SocketAddr, query: &str) {
    let (status, _, body) = request_json(
        backend,
        "POST",
        &format!("/_backend/faults?{query}"),
        &[],
        "",
    )
    .await;
    assert!(status.is_success(), "{body}");
}

fn setup(tables: &str) -> (support::Ramgate, SocketAddr, Proxy, tempfile::TempDir) {
    let (backend_process, backend) = start_backend();
    let policies = corpus::policy_dir("demo");
    let proxy = start_proxy(backend, policies.path(), "", tables);
    (backend_process, backend, proxy, policies)
}

fn who(user: &str) -> [(&'static str, String); 1] {
    [("x-ramgate-principal", as_user(user))]
}

fn h<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn identity_header_from_an_untrusted_peer_is_refused() {
    let (_b, backend, _, _) = setup("");
    let policies = corpus::policy_dir("demo");
    // 127.0.0.1 is not trusted by this proxy.
    let proxy = start_proxy(
        backend,
        policies.path(),
        "",
        "[identity]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    );
    clear_recorded(backend).await;
    let (status, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[("RegionId", "cn-hangzhou")],
        &h(&who("root")),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["Code"], "InvalidIdentity");
    assert!(
        recorded(backend).await.is_empty(),
        "nothing may reach the backend"
    );
}

#[tokio::test]
async fn missing_unknown_and_foreign_identities_are_refused() {
    let (_b, backend, proxy, _p) = setup("");
    clear_recorded(backend).await;
    for header in [
        None,
        Some("acs:ram::1234567890123456:user/nobody"),
        Some("acs:ram::9999999999999999:root"),
        Some("not-an-arn"),
    ] {
        let headers: Vec<(&str, &str)> =
            header.iter().map(|v| ("x-ramgate-principal", *v)).collect();
        let (status, _, body) = v3(
            proxy.addr,
            DESCRIBE,
            &[("RegionId", "cn-hangzhou")],
            &headers,
        )
        .await;
        assert_eq!(status, 401, "{header:?}: {body}");
        assert_eq!(body["Code"], "InvalidIdentity");
    }
    let two = [
        ("x-ramgate-principal", "acs:ram::1234567890123456:root"),
        ("x-ramgate-principal", "acs:ram::1234567890123456:user/test"),
    ];
    let (status, _, _) = v3(proxy.addr, DESCRIBE, &[("RegionId", "cn-hangzhou")], &two).await;
    assert_eq!(status, 401, "two identities");
    assert!(recorded(backend).await.is_empty());
}

#[tokio::test]
async fn ambiguous_and_unknown_requests_never_reach_the_backend() {
    let (_b, backend, proxy, _p) = setup("");
    let id = create(backend, "g", "rg-default", &[]).await;
    clear_recorded(backend).await;
    let root = as_user("root");
    let auth = ("x-ramgate-principal", root.as_str());
    let base = "Version=2018-08-08&RegionId=cn-hangzhou";
    // (what, path and query, extra headers, body, expected status)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str, u16);
    let cases: Vec<Case> = vec![
        (
            "a parameter twice",
            format!(
                "/?Action=DescribeContainerLog&{base}&ContainerGroupId={id}&ContainerGroupId={id}"
            ),
            vec![],
            "",
            400,
        ),
        (
            "names differing only in case",
            format!("/?Action={DESCRIBE}&{base}&resourcegroupid=rg-test-a"),
            vec![],
            "",
            400,
        ),
        (
            "conflicting action header",
            format!("/?Action=DeleteContainerGroup&{base}&ContainerGroupId={id}"),
            vec![("x-acs-action", "DescribeContainerLog")],
            "",
            400,
        ),
        (
            "tag index gap",
            format!("/?Action={DESCRIBE}&{base}&Tag.1.Key=a&Tag.1.Value=b&Tag.3.Key=c"),
            vec![],
            "",
            400,
        ),
        (
            "tag value without key",
            format!("/?Action={DESCRIBE}&{base}&Tag.1.Value=b"),
            vec![],
            "",
            400,
        ),
        (
            "tag key twice",
            format!("/?Action={DESCRIBE}&{base}&Tag.1.Key=a&Tag.2.Key=a"),
            vec![],
            "",
            400,
        ),
        (
            "ids not a JSON array",
            format!("/?Action={DESCRIBE}&{base}&ContainerGroupIds=eci-1"),
            vec![],
            "",
            400,
        ),
        (
            "ids repeated",
            format!("/?Action={DESCRIBE}&{base}&ContainerGroupIds=%5B%22a%22%2C%22a%22%5D"),
            vec![],
            "",
            400,
        ),
        (
            "empty ids",
            format!("/?Action={DESCRIBE}&{base}&ContainerGroupIds=%5B%5D"),
            vec![],
            "",
            400,
        ),
        (
            "Limit over 20",
            format!("/?Action={DESCRIBE}&{base}&Limit=21"),
            vec![],
            "",
            400,
        ),
        (
            "query and body both",
            format!("/?Action={DESCRIBE}&{base}"),
            vec![("content-type", "application/x-www-form-urlencoded")],
            "RegionId=cn-hangzhou",
            400,
        ),
        (
            "bad percent-encoding",
            format!("/?Action={DESCRIBE}&{base}&ContainerGroupName=%zz"),
            vec![],
            "",
            400,
        ),
        (
            "unknown action",
            format!("/?Action=DescribeEverything&{base}"),
            vec![],
            "",
            404,
        ),
        (
            "action in the wrong case",
            format!("/?Action=describecontainergroups&{base}"),
            vec![],
            "",
            404,
        ),
        (
            "a path other than /",
            format!("/api?Action={DESCRIBE}&{base}"),
            vec![],
            "",
            404,
        ),
    ];
    for (what, path, mut headers, body, want) in cases {
        headers.push(auth);
        let (status, _, answer) =
            request_json(proxy.addr, "POST", &path, &headers, body.to_owned()).await;
        assert_eq!(status.as_u16(), want, "{what}: {answer}");
        let code = answer["Code"].as_str().unwrap_or_default();
        let expected: &[&str] = if want == 404 {
            &["InvalidAction.NotFound"]
        } else {
            &["InvalidParameter", "MissingParameter"]
        };
        assert!(expected.contains(&code), "{what}: {answer}");
    }
    // A body declared larger than `max_body_bytes` is refused from its head alone: only the
    // head is sent (a client writing the body could meet the closed connection first).
    let (status, answer) = head_only(
        proxy.addr,
        &format!(
            "POST /?Action={DESCRIBE}&Version=2018-08-08 HTTP/1.1\r\nhost: ramgate\r\n{}: {}\r\ncontent-length: {}\r\n\r\n",
            auth.0,
            auth.1,
            2 << 20
        ),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["Code"], "RequestTooLarge");
    assert!(
        recorded(backend).await.is_empty(),
        "a refused request reached the backend"
    );
}

#[tokio::test]
async fn the_backend_receives_exactly_the_canonical_parameters_and_no_credentials() {
    let (_b, backend, proxy, _p) = setup("");
    let id = create(
        backend,
        "g",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    // Warm the cache so the only recorded request is the forwarded one.
    let liumi = as_user("liumi");
    let identity = [("x-ramgate-principal", liumi.as_str())];
    let log = [
        ("RegionId", "cn-hangzhou"),
        ("ContainerGroupId", id.as_str()),
        ("ContainerName", "a b*~"),
    ];
    v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
    clear_recorded(backend).await;
    // RPC dialect, parameters out of order, credentials-looking extras, a form body.
    let form = format!("ContainerName=a+b%2A~&ContainerGroupId={id}&RegionId=cn-hangzhou&Format=JSON&Action=DescribeContainerLog&Version=2018-08-08");
    let headers = [
        ("x-ramgate-principal", liumi.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-forwarded-for", "203.0.113.9"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "secret-hop"),
        ("cookie", "session=1"),
    ];
    let (status, _, body) = request_json(proxy.addr, "POST", "/", &headers, form).await;
    assert_eq!(status, 200, "{body}");
    let got = recorded(backend).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], format!("/?Action=DescribeContainerLog&ContainerGroupId={id}&ContainerName=a%20b%2A~&RegionId=cn-hangzhou&Version=2018-08-08"));
    assert_eq!(r["body"], "");
    let forwarded: HashMap<String, String> = serde_json::from_value(r["headers"].clone()).unwrap();
    assert_eq!(forwarded["x-ramgate-principal"], liumi);
    assert_eq!(forwarded["x-acs-action"], "DescribeContainerLog");
    assert_eq!(forwarded["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    for banned in [
        "authorization",
        "cookie",
        "x-hop",
        "connection",
        "content-type",
        "x-acs-signature-nonce",
    ] {
        assert!(
            !forwarded.contains_key(banned),
            "{banned} was forwarded: {forwarded:?}"
        );
    }
}

#[tokio::test]
async fn the_metadata_cache_saves_lookups_and_follows_writes() {
    let (_b, backend, proxy, _p) = setup("");
    let id = create(
        backend,
        "g",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    let liumi = as_user("liumi");
    let identity = [("x-ramgate-principal", liumi.as_str())];
    let log = [
        ("RegionId", "cn-hangzhou"),
        ("ContainerGroupId", id.as_str()),
    ];
    let before = describe_calls(backend).await;
    let (status, _, _) = v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
    assert_eq!(status, 200);
    assert_eq!(
        describe_calls(backend).await,
        before + 1,
        "the first call looks up"
    );
    let (status, _, _) = v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
    assert_eq!(status, 200);
    assert_eq!(
        describe_calls(backend).await,
        before + 1,
        "the second call makes no lookup"
    );

    // Concurrent misses of one id make one lookup (the backend answers slowly meanwhile).
    let fresh = create(
        backend,
        "h",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    faults(backend, "delay_ms=300").await;
    let before = describe_calls(backend).await;
    let calls = (0..8).map(|_| {
        let (addr, fresh, liumi) = (proxy.addr, fresh.clone(), liumi.clone());
        tokio::spawn(async move {
            let q = [
                ("RegionId", "cn-hangzhou"),
                ("ContainerGroupId", fresh.as_str()),
            ];
            v3(
                addr,
                "DescribeContainerLog",
                &q,
                &[("x-ramgate-principal", liumi.as_str())],
            )
            .await
            .0
        })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(
        describe_calls(backend).await,
        before + 1,
        "eight concurrent misses, one lookup"
    );
    faults(backend, "delay_ms=0").await;

    // A retag through the proxy takes effect on the very next call.
    let tag = [
        ("RegionId", "cn-hangzhou"),
        ("ResourceType", "ContainerGroup"),
        ("ResourceId.1", id.as_str()),
        ("Tag.1.Key", "name"),
        ("Tag.1.Value", "liumi"),
    ];
    let (status, _, body) = v3(proxy.addr, "TagResources", &tag, &h(&who("root"))).await;
    assert_eq!(status, 200, "{body}");
    let untag = [
        ("RegionId", "cn-hangzhou"),
        ("ResourceType", "ContainerGroup"),
        ("ResourceId.1", id.as_str()),
        ("TagKey.1", "env"),
    ];
    let (status, _, body) = v3(proxy.addr, "UntagResources", &untag, &h(&who("root"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = v3(proxy.addr, "DescribeContainerLog", &log, &identity).await;
    assert_eq!(
        status, 403,
        "the untagged group is no longer liumi's: {body}"
    );
}

#[tokio::test]
async fn a_failing_lookup_is_a_503_never_an_allow() {
    let (_b, backend, proxy, _p) = setup("");
    let id = create(
        backend,
        "g",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    faults(backend, "fail_describe=true").await;
    clear_recorded(backend).await;
    for user in ["liumi", "root"] {
        let (status, _, body) = v3(
            proxy.addr,
            "DeleteContainerGroup",
            &[
                ("RegionId", "cn-hangzhou"),
                ("ContainerGroupId", id.as_str()),
            ],
            &h(&who(user)),
        )
        .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["Code"], "ServiceUnavailable");
    }
    let deletes: Vec<Value> = recorded(backend)
        .await
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .contains("DeleteContainerGroup")
        })
        .collect();
    assert!(deletes.is_empty(), "nothing was forwarded");
    assert!(state(backend).await["groups"]
        .as_array()
        .is_some_and(|g| g.len() == 1));
}

#[tokio::test]
async fn an_unreachable_backend_is_a_502() {
    let (mut backend_process, backend) = start_backend();
    let policies = corpus::policy_dir("demo");
    let proxy = start_proxy(backend, policies.path(), "", "");
    backend_process.signal("KILL");
    backend_process.wait_exit(std::time::Duration::from_secs(5));
    let (status, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[("RegionId", "cn-hangzhou")],
        &h(&who("root")),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    let (status, _, body) = v3(
        proxy.addr,
        "DeleteContainerGroup",
        &[("RegionId", "cn-hangzhou"), ("ContainerGroupId", "eci-x")],
        &h(&who("root")),
    )
    .await;
    assert_eq!(
        status, 503,
        "a lookup that cannot be made fails closed: {body}"
    );
}

#[tokio::test]
async fn describe_is_filtered_item_by_item_when_the_backend_ignores_filters() {
    let (_b, backend, proxy, _p) = setup("");
    let a = create(backend, "a", "rg-test-a", &[]).await;
    let _b1 = create(backend, "b", "rg-test-b", &[]).await;
    let ok = create(
        backend,
        "ok",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    let _prod = create(
        backend,
        "prod",
        "rg-default",
        &[("name", "liumi"), ("env", "prod")],
    )
    .await;
    faults(backend, "ignore_filters=true").await;
    let ids = |body: &Value| -> Vec<String> {
        body["ContainerGroups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["ContainerGroupId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (status, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[
            ("RegionId", "cn-hangzhou"),
            ("ResourceGroupId", "rg-test-a"),
        ],
        &h(&who("test")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), vec![a.clone()], "{body}");
    assert_eq!(body["TotalCount"], 1, "TotalCount corrected: {body}");
    let tags = [
        ("RegionId", "cn-hangzhou"),
        ("Tag.1.Key", "name"),
        ("Tag.1.Value", "liumi"),
        ("Tag.2.Key", "env"),
        ("Tag.2.Value", "test"),
    ];
    let (_, _, body) = v3(proxy.addr, DESCRIBE, &tags, &h(&who("liumi"))).await;
    assert_eq!(ids(&body), vec![ok.clone()], "{body}");
    let json_ids = format!("[\"{ok}\"]");
    let (_, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupIds", json_ids.as_str()),
        ],
        &h(&who("liumi")),
    )
    .await;
    assert_eq!(ids(&body), vec![ok.clone()], "{body}");
    let list = [
        ("RegionId", "cn-hangzhou"),
        ("ResourceType", "ContainerGroup"),
    ];
    let (status, _, body) = v3(proxy.addr, "ListTagResources", &list, &h(&who("liumi"))).await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<&str> = body["TagResources"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["ResourceId"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !listed.is_empty() && listed.iter().all(|r| *r == ok),
        "{body}"
    );
}

#[tokio::test]
async fn dry_run_forwards_what_it_would_deny() {
    let (_b, backend) = start_backend();
    let id = create(backend, "g", "rg-test-b", &[]).await;
    let policies = corpus::policy_dir("demo");
    let proxy = start_proxy(backend, policies.path(), "mode = \"dry-run\"", "");
    let (status, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[("RegionId", "cn-hangzhou")],
        &h(&who("test")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["TotalCount"], 1, "not emptied in dry-run: {body}");
    let (status, _, body) = v3(
        proxy.addr,
        "DescribeContainerLog",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupId", id.as_str()),
        ],
        &h(&who("test")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = v3(proxy.addr, DESCRIBE, &[("RegionId", "cn-hangzhou")], &[]).await;
    assert_eq!(status, 401, "unknown identities are still refused");
    let (status, _, _) = post_query(
        proxy.addr,
        &[
            ("Action", DESCRIBE),
            ("Version", "2018-08-08"),
            ("Limit", "99"),
        ],
        &h(&who("test")),
    )
    .await;
    assert_eq!(status, 400, "malformed requests are still refused");
}

#[tokio::test]
async fn h2_clients_are_served_and_forwarded_as_http1() {
    use http_body_util::{BodyExt, Full};
    let (_b, backend, proxy, _p) = setup("");
    create(backend, "g", "rg-test-a", &[]).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let uri = format!("http://{}/?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou&ResourceGroupId=rg-test-a", proxy.addr);
    let request = http::Request::post(uri)
        .header("x-ramgate-principal", as_user("test"))
        .body(Full::default())
        .unwrap();
    let response = client.request(request).await.expect("h2 request");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["TotalCount"], 1, "{body}");
}

/// Sends `head` (a request head, no body) and reads the answer until the proxy closes the
/// connection: its status and its body as JSON.
async fn head_only(addr: SocketAddr, head: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(head.as_bytes())
        .await
        .expect("send the head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the proxy answers and closes");
    read.expect("read the answer");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, json)
}
