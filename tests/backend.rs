//! The in-memory ECI backend, run as the real binary (`ramgate backend --listen
//! 127.0.0.1:0`) and driven over HTTP in both wire dialects.

mod support;

use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{get_json, post_form, request_json, start_backend, v3};

/// Creates a group (V3 dialect) and returns its id.
async fn create(addr: SocketAddr, name: &str, rg: Option<&str>, tags: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
        ("ContainerGroupName".to_owned(), name.to_owned()),
        ("Container.1.Name".to_owned(), "app".to_owned()),
        ("Container.1.Image".to_owned(), "nginx:1.25".to_owned()),
    ];
    if let Some(rg) = rg {
        params.push(("ResourceGroupId".to_owned(), rg.to_owned()));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("Tag.{}.Key", i + 1), (*k).to_owned()));
        params.push((format!("Tag.{}.Value", i + 1), (*v).to_owned()));
    }
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = v3(addr, "CreateContainerGroup", &params, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["ContainerGroupId"].as_str().expect("an id").to_owned()
}

async fn describe(addr: SocketAddr, params: &[(&str, &str)]) -> Value {
    let (status, _, body) = v3(addr, "DescribeContainerGroups", params, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(answer: &Value) -> BTreeSet<String> {
    answer["ContainerGroups"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|g| g["ContainerGroupId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(
        (status, body["Code"].as_str()),
        (want_status, Some(code)),
        "{body}"
    );
    assert!(body["RequestId"].is_string(), "{body}");
    assert_eq!(body["HostId"], "ramgate-backend");
    assert!(
        body["Message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Three groups in rg-a / rg-b, with tags.
async fn seed(addr: SocketAddr) -> (String, String, String) {
    let a1 = create(
        addr,
        "web-1",
        Some("rg-a"),
        &[("env", "test"), ("team", "a")],
    )
    .await;
    let a2 = create(
        addr,
        "web-2",
        Some("rg-a"),
        &[("env", "prod"), ("team", "a")],
    )
    .await;
    let b1 = create(
        addr,
        "db-1",
        Some("rg-b"),
        &[("env", "test"), ("team", "b")],
    )
    .await;
    (a1, a2, b1)
}

#[test]
fn listening_lines_are_found_in_any_log_format() {
    let plain = support::parse_listening("listening backend 127.0.0.1:9000");
    assert_eq!(
        plain,
        Some(("backend".into(), "127.0.0.1:9000".parse().unwrap()))
    );
    let traced = support::strip_ansi(
        "2024-01-01T00:00:00Z \u{1b}[32m INFO\u{1b}[0m ramgate::net: listening proxy [::1]:80",
    );
    assert_eq!(
        support::parse_listening(&traced),
        Some(("proxy".into(), "[::1]:80".parse().unwrap()))
    );
    assert_eq!(support::parse_listening("nothing here"), None);
}

#[tokio::test]
async fn describe_filters_each_and_combined() {
    let (_child, addr) = start_backend();
    let (a1, a2, b1) = seed(addr).await;
    let other_region = {
        let (status, _, body) = v3(
            addr,
            "CreateContainerGroup",
            &[("RegionId", "cn-shanghai"), ("ContainerGroupName", "sh-1")],
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["ContainerGroupId"].as_str().unwrap().to_owned()
    };

    let all = describe(addr, &[]).await;
    assert_eq!(all["TotalCount"], 4);
    assert_eq!(all["NextToken"], "");
    assert!(all["RequestId"].is_string());

    assert_eq!(
        ids(&describe(addr, &[("RegionId", "cn-hangzhou")]).await),
        set(&[&a1, &a2, &b1])
    );
    assert_eq!(
        ids(&describe(addr, &[("ResourceGroupId", "rg-a")]).await),
        set(&[&a1, &a2])
    );
    assert_eq!(
        ids(&describe(addr, &[("ResourceGroupId", "rg-default")]).await),
        set(&[&other_region])
    );
    assert_eq!(
        ids(&describe(addr, &[("Tag.1.Key", "env"), ("Tag.1.Value", "test")]).await),
        set(&[&a1, &b1])
    );
    let both_tags = describe(
        addr,
        &[
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "test"),
            ("Tag.2.Key", "team"),
            ("Tag.2.Value", "b"),
        ],
    )
    .await;
    assert_eq!(ids(&both_tags), set(&[&b1]));
    assert_eq!(both_tags["TotalCount"], 1);
    let by_ids = format!(r#"["{a2}","{b1}","eci-doesnotexist000000"]"#);
    assert_eq!(
        ids(&describe(addr, &[("ContainerGroupIds", &by_ids)]).await),
        set(&[&a2, &b1])
    );
    assert_eq!(
        ids(&describe(
            addr,
            &[("ContainerGroupIds", &by_ids), ("ResourceGroupId", "rg-a")]
        )
        .await),
        set(&[&a2])
    );
    assert_eq!(
        ids(&describe(addr, &[("ContainerGroupName", "db-1")]).await),
        set(&[&b1])
    );
    assert_eq!(
        describe(addr, &[("Status", "Running")]).await["TotalCount"],
        4
    );
    assert_eq!(
        describe(addr, &[("Status", "Stopped")]).await["TotalCount"],
        0
    );
    let none = describe(
        addr,
        &[
            ("ResourceGroupId", "rg-a"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "b"),
        ],
    )
    .await;
    assert_eq!(
        (none["TotalCount"].as_u64(), ids(&none).len()),
        (Some(0), 0)
    );

    // The item carries what clients and the proxy read.
    let item = &describe(addr, &[("ContainerGroupIds", &format!(r#"["{a1}"]"#))]).await
        ["ContainerGroups"][0];
    assert_eq!(item["ContainerGroupName"], "web-1");
    assert_eq!(item["RegionId"], "cn-hangzhou");
    assert_eq!(item["ResourceGroupId"], "rg-a");
    assert_eq!(item["Status"], "Running");
    assert_eq!(
        item["Tags"],
        json!([{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "a"}])
    );
    assert_eq!(item["Containers"][0]["Name"], "app");
    assert_eq!(item["Containers"][0]["Image"], "nginx:1.25");
    let created = item["CreationTime"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert!(a1.len() == 24 && a1.starts_with("eci-"), "{a1}");
    assert!(
        a1[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{a1}"
    );
}

#[tokio::test]
async fn describe_pages_in_creation_order() {
    let (_child, addr) = start_backend();
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            create(
                addr,
                &format!("g-{i}"),
                Some("rg-p"),
                &[("n", &i.to_string())],
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = describe(
            addr,
            &[
                ("ResourceGroupId", "rg-p"),
                ("Limit", "10"),
                ("NextToken", &token),
            ],
        )
        .await;
        pages += 1;
        assert_eq!(
            page["TotalCount"], 25,
            "TotalCount is every match, not the page"
        );
        let items = page["ContainerGroups"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(
            items
                .iter()
                .map(|g| g["ContainerGroupId"].as_str().unwrap().to_owned()),
        );
        token = page["NextToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every group once, in creation order");

    assert_eq!(
        describe(addr, &[]).await["ContainerGroups"]
            .as_array()
            .unwrap()
            .len(),
        20,
        "default limit"
    );
    for bad in ["0", "21", "ten"] {
        let (status, _, body) = v3(addr, "DescribeContainerGroups", &[("Limit", bad)], &[]).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");
    }
    let (status, _, body) = v3(
        addr,
        "DescribeContainerGroups",
        &[("NextToken", "garbage")],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");
    let (status, _, body) = v3(
        addr,
        "DescribeContainerGroups",
        &[("ContainerGroupIds", "eci-1")],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");
}

#[tokio::test]
async fn update_changes_tags_but_never_the_resource_group() {
    let (_child, addr) = start_backend();
    let (a1, _, _) = seed(addr).await;
    let (status, _, body) = v3(
        addr,
        "UpdateContainerGroup",
        &[
            ("ContainerGroupId", &a1),
            ("ResourceGroupId", "rg-a"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
            ("Tag.2.Key", "owner"),
            ("Tag.2.Value", "liumi"),
        ],
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let item = &describe(addr, &[("ContainerGroupIds", &format!(r#"["{a1}"]"#))]).await
        ["ContainerGroups"][0];
    assert_eq!(
        item["Tags"],
        json!([{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "liumi"}, {"Key": "team", "Value": "a"}])
    );

    let (status, _, body) = v3(
        addr,
        "UpdateContainerGroup",
        &[
            ("ContainerGroupId", &a1),
            ("ResourceGroupId", "rg-b"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "x"),
        ],
        &[],
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "OperationDenied.ResourceGroupImmutable",
    );
    let (_, state) = get_json(addr, "/_backend/state").await;
    let group = state["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == a1.as_str())
        .unwrap();
    assert_eq!(group["resource_group"], "rg-a");
    assert_eq!(
        group["tags"]["env"], "prod",
        "a refused update changes nothing"
    );
}

/// A tag API call on container groups (V3 dialect).
async fn tag_api(
    addr: SocketAddr,
    action: &str,
    params: &[(&str, &str)],
) -> (StatusCode, hyper::HeaderMap, Value) {
    let mut all = vec![
        ("RegionId", "cn-hangzhou"),
        ("ResourceType", "ContainerGroup"),
    ];
    all.extend_from_slice(params);
    v3(addr, action, &all, &[]).await
}

/// A group's tags as the state hook shows them (`{key: value}`).
async fn state_tags(addr: SocketAddr, id: &str) -> Value {
    let (_, state) = get_json(addr, "/_backend/state").await;
    let groups = state["groups"].as_array().expect("groups");
    groups.iter().find(|g| g["id"] == id).expect("the group")["tags"].clone()
}

#[tokio::test]
async fn tag_untag_and_list_tag_resources() {
    let (_child, addr) = start_backend();
    let (a1, a2, b1) = seed(addr).await;

    let (status, _, body) = tag_api(
        addr,
        "TagResources",
        &[
            ("ResourceId.1", &a1),
            ("ResourceId.2", &a2),
            ("Tag.1.Key", "cost"),
            ("Tag.1.Value", "c1"),
            ("Tag.2.Key", "env"),
            ("Tag.2.Value", "stage"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // One item per (resource, tag).
    let (status, _, listed) = tag_api(addr, "ListTagResources", &[("ResourceId.1", &a1)]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let pairs: Vec<(&str, &str)> = listed["TagResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["ResourceId"], a1.as_str());
            assert_eq!(i["ResourceType"], "ALIYUN::ECI::CONTAINERGROUP");
            (
                i["TagKey"].as_str().unwrap(),
                i["TagValue"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, vec![("cost", "c1"), ("env", "stage"), ("team", "a")]);
    assert_eq!(listed["NextToken"], "");

    // A tag filter selects the resources carrying it, and lists the pairs it names.
    let (_, _, listed) = tag_api(
        addr,
        "ListTagResources",
        &[("Tag.1.Key", "cost"), ("Tag.1.Value", "c1")],
    )
    .await;
    let items = listed["TagResources"].as_array().unwrap();
    let resources: BTreeSet<String> = items
        .iter()
        .map(|i| i["ResourceId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(resources, set(&[&a1, &a2]));
    assert!(items.iter().all(|i| i["TagKey"] == "cost"), "{listed}");

    // Paging one pair at a time visits every pair once.
    let mut token = String::new();
    let mut count = 0;
    loop {
        let (status, _, page) = tag_api(
            addr,
            "ListTagResources",
            &[("Limit", "1"), ("NextToken", &token)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        count += page["TagResources"].as_array().unwrap().len();
        token = page["NextToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
        assert!(count < 100, "paging does not end");
    }
    assert_eq!(count, 3 + 3 + 2, "a1 and a2 have three tags each, b1 two");

    let untag_keys = [
        ("ResourceId.1", a1.as_str()),
        ("TagKey.1", "cost"),
        ("TagKey.2", "absent"),
    ];
    let (status, _, body) = tag_api(addr, "UntagResources", &untag_keys).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let untag_all = [("ResourceId.1", a2.as_str()), ("All", "true")];
    let (status, _, body) = tag_api(addr, "UntagResources", &untag_all).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        state_tags(addr, &a1).await,
        json!({"env": "stage", "team": "a"})
    );
    assert_eq!(state_tags(addr, &a2).await, json!({}));
    assert_eq!(
        state_tags(addr, &b1).await,
        json!({"env": "test", "team": "b"})
    );

    // Errors: an unknown id (and then nothing changes), no resource type, no tag keys.
    let (status, _, body) = tag_api(
        addr,
        "TagResources",
        &[
            ("ResourceId.1", &b1),
            ("ResourceId.2", "eci-unknown"),
            ("Tag.1.Key", "x"),
            ("Tag.1.Value", "y"),
        ],
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "InvalidContainerGroup.NotFound",
    );
    let no_type = [("ResourceId.1", b1.as_str()), ("Tag.1.Key", "x")];
    let (status, _, body) = v3(addr, "TagResources", &no_type, &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MissingParameter");
    let (status, _, body) = tag_api(addr, "UntagResources", &[("ResourceId.1", &b1)]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MissingParameter");
    assert_eq!(
        state_tags(addr, &b1).await,
        json!({"env": "test", "team": "b"})
    );
}

#[tokio::test]
async fn single_group_actions() {
    let (_child, addr) = start_backend();
    let (a1, _, _) = seed(addr).await;
    let id = [("ContainerGroupId", a1.as_str())];

    let (status, _, body) = v3(addr, "RestartContainerGroup", &id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, state) = get_json(addr, "/_backend/state").await;
    assert_eq!(state["groups"][0]["restart_count"], 1);

    let (status, _, log) = v3(addr, "DescribeContainerLog", &id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["ContainerName"], "app");
    let content = log["Content"].as_str().unwrap();
    assert!(
        content.contains("nginx:1.25") && content.contains("restart"),
        "{content}"
    );
    let (status, _, body) = v3(
        addr,
        "DescribeContainerLog",
        &[("ContainerGroupId", &a1), ("ContainerName", "nope")],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");

    let (status, _, exported) = v3(addr, "ExportContainerGroupTemplate", &id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{exported}");
    let template = &exported["Template"];
    assert_eq!(template["ContainerGroupName"], "web-1");
    assert_eq!(template["ResourceGroupId"], "rg-a");
    assert_eq!(
        template["Containers"],
        json!([{"Name": "app", "Image": "nginx:1.25"}])
    );

    let exec = [
        ("ContainerGroupId", a1.as_str()),
        ("ContainerName", "app"),
        ("Command", r#"["echo","hi"]"#),
    ];
    let (status, _, body) = v3(addr, "ExecContainerCommand", &exec, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["WebSocketUri"].as_str().unwrap().starts_with("wss://"),
        "{body}"
    );
    assert!(body.get("SyncResponse").is_none());
    let mut sync = exec.to_vec();
    sync.push(("Sync", "true"));
    let (_, _, body) = v3(addr, "ExecContainerCommand", &sync, &[]).await;
    assert_eq!(body["SyncResponse"], "hi\n");
    let (status, _, body) = v3(
        addr,
        "ExecContainerCommand",
        &[
            ("ContainerGroupId", &a1),
            ("ContainerName", "app"),
            ("Command", "ls"),
        ],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");

    let (status, _, body) = v3(addr, "DeleteContainerGroup", &id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for action in [
        "DeleteContainerGroup",
        "RestartContainerGroup",
        "DescribeContainerLog",
        "ExportContainerGroupTemplate",
        "UpdateContainerGroup",
    ] {
        let (status, _, body) = v3(addr, action, &id, &[]).await;
        assert_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "InvalidContainerGroup.NotFound",
        );
    }
    assert_eq!(describe(addr, &[]).await["TotalCount"], 2);
}

#[tokio::test]
async fn fault_toggles() {
    let (_child, addr) = start_backend();
    let (a1, a2, b1) = seed(addr).await;
    let post = |q: &'static str| async move {
        request_json(addr, "POST", &format!("/_backend/faults?{q}"), &[], "").await
    };

    let (status, _, faults) = post("ignore_filters=true").await;
    assert_eq!(status, StatusCode::OK, "{faults}");
    assert_eq!(faults["ignore_filters"], true);
    let everything = describe(
        addr,
        &[
            ("ResourceGroupId", "rg-b"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "b"),
        ],
    )
    .await;
    assert_eq!(ids(&everything), set(&[&a1, &a2, &b1]));
    post("ignore_filters=false").await;
    assert_eq!(
        ids(&describe(addr, &[("ResourceGroupId", "rg-b")]).await),
        set(&[&b1])
    );

    let (_, before) = get_json(addr, "/_backend/state").await;
    post("fail_describe=true").await;
    let (status, _, body) = v3(addr, "DescribeContainerGroups", &[], &[]).await;
    assert_error(
        status,
        &body,
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
    );
    let (status, _, _) = v3(
        addr,
        "ExportContainerGroupTemplate",
        &[("ContainerGroupId", &a1)],
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "only Describe fails");
    let (_, after) = get_json(addr, "/_backend/state").await;
    assert_eq!(
        after["describe_calls"].as_u64().unwrap(),
        before["describe_calls"].as_u64().unwrap() + 1,
        "a failed describe was still received"
    );
    post("fail_describe=false").await;

    post("delay_ms=300").await;
    let started = Instant::now();
    describe(addr, &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    post("delay_ms=0").await;

    let (status, _, body) = post("explode=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_request_log_records_what_arrived() {
    let (_child, addr) = start_backend();
    let (status, _, _) = v3(
        addr,
        "DescribeContainerGroups",
        &[("RegionId", "cn-hangzhou"), ("Tag.1.Key", "a b")],
        &[("x-ramgate-principal", "acs:ram::1:user/test")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post_form(
        addr,
        &[
            ("Action", "DescribeContainerGroups"),
            ("RegionId", "cn-hangzhou"),
        ],
        &[("X-Custom", "v")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, log) = get_json(addr, "/_backend/requests").await;
    assert_eq!(status, StatusCode::OK);
    let log = log.as_array().expect("a list");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["path"], "/?RegionId=cn-hangzhou&Tag.1.Key=a%20b");
    assert_eq!(log[0]["headers"]["x-acs-action"], "DescribeContainerGroups");
    assert_eq!(
        log[0]["headers"]["x-ramgate-principal"],
        "acs:ram::1:user/test"
    );
    assert_eq!(log[0]["body"], "");
    assert_eq!(log[1]["path"], "/");
    assert_eq!(log[1]["headers"]["x-custom"], "v");
    assert_eq!(
        log[1]["body"],
        "Action=DescribeContainerGroups&RegionId=cn-hangzhou"
    );

    // Hooks are not recorded; clearing empties the log.
    let (status, _, cleared) = request_json(addr, "DELETE", "/_backend/requests", &[], "").await;
    assert_eq!(
        (status, cleared["cleared"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (_, log) = get_json(addr, "/_backend/requests").await;
    assert_eq!(log, json!([]));
}

#[tokio::test]
async fn errors_are_alibaba_shaped() {
    let (_child, addr) = start_backend();
    let (status, _, body) = v3(addr, "RunInstances", &[], &[]).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "InvalidAction.NotFound",
    );
    let (status, _, body) = request_json(
        addr,
        "POST",
        "/v1/other?Action=DescribeContainerGroups",
        &[],
        "",
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "InvalidAction.NotFound",
    );
    let (status, _, body) = v3(addr, "DeleteContainerGroup", &[], &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MissingParameter");
    let (status, _, body) = v3(
        addr,
        "DeleteContainerGroup",
        &[("ContainerGroupId", "eci-aaaaaaaaaaaaaaaaaaaa")],
        &[],
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "InvalidContainerGroup.NotFound",
    );
    let (status, _, body) = v3(
        addr,
        "CreateContainerGroup",
        &[("ContainerGroupName", "x")],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MissingParameter");
    let (status, _, body) = v3(
        addr,
        "CreateContainerGroup",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupName", "x"),
            ("Container.1.Image", "nginx"),
        ],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "MissingParameter");
    // Ambiguity: the action twice with different values, a parameter in query and body.
    let (status, _, body) = v3(
        addr,
        "DescribeContainerGroups",
        &[("Action", "DeleteContainerGroup")],
        &[],
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");
    let (status, _, body) = request_json(
        addr,
        "POST",
        "/?Action=DescribeContainerGroups&RegionId=cn-hangzhou",
        &[("content-type", "application/x-www-form-urlencoded")],
        "RegionId=cn-beijing",
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "InvalidParameter");
    let (status, headers, body) = v3(addr, "DescribeContainerGroups", &[], &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        headers["x-acs-request-id"].to_str().unwrap(),
        body["RequestId"].as_str().unwrap()
    );
}

#[tokio::test]
async fn both_dialects_and_the_state_reset() {
    let (_child, addr) = start_backend();
    // RPC: everything in a form body, the default resource group.
    let (status, _, body) = post_form(
        addr,
        &[
            ("Action", "CreateContainerGroup"),
            ("Version", "2018-08-08"),
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupName", "rpc-1"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "test"),
            ("AccessKeyId", "ignored"),
            ("Signature", "ignored"),
        ],
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rpc_id = body["ContainerGroupId"].as_str().unwrap().to_owned();
    // RPC over GET; equal actions in header and query are fine (SDKs in v1 mode send both).
    let (status, _, listed) = request_json(
        addr,
        "GET",
        "/?Action=DescribeContainerGroups&Version=2018-08-08&ResourceGroupId=rg-default",
        &[("x-acs-action", "DescribeContainerGroups")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(ids(&listed), set(&[&rpc_id]));
    // V3 sees the same state.
    assert_eq!(
        ids(&describe(addr, &[("Tag.1.Key", "env")]).await),
        set(&[&rpc_id])
    );

    let (status, _, state) = request_json(addr, "DELETE", "/_backend/state", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (state["groups"].clone(), state["describe_calls"].as_u64()),
        (json!([]), Some(0))
    );
    assert_eq!(describe(addr, &[]).await["TotalCount"], 0);
}
