//! In-process tests of request handling: dialects, errors and the answer shapes. The
//! integration tests in `tests/backend.rs` cover the actions end to end over HTTP.

use super::*;
use crate::request::encoding::encode_pairs;
use serde_json::json;

async fn call(b: &Backend, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
    let response = b.handle(req).await;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// V3: action in the header, parameters in the query.
async fn v3(b: &Backend, action: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let req = Request::post(format!("/?{}", encode_pairs(params.iter().copied())))
        .header("x-acs-action", action)
        .body(Full::new(Bytes::new()))
        .unwrap();
    call(b, req).await
}

#[tokio::test]
async fn both_dialects_reach_the_same_actions() {
    let b = Backend::new();
    let (status, created) = v3(
        &b,
        "CreateContainerGroup",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupName", "web"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "test"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["ContainerGroupId"].as_str().unwrap().to_owned();
    assert!(created["RequestId"].is_string());
    assert_eq!(b.get(&id).unwrap().resource_group, DEFAULT_RESOURCE_GROUP);

    let form = encode_pairs([
        ("Action", "DescribeContainerGroups"),
        ("RegionId", "cn-hangzhou"),
    ]);
    let req = Request::post("/")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let (status, described) = call(&b, req).await;
    assert_eq!(status, StatusCode::OK, "{described}");
    assert_eq!(described["TotalCount"], 1);
    assert_eq!(described["NextToken"], "");
    assert_eq!(
        described["ContainerGroups"][0]["ContainerGroupId"],
        id.as_str()
    );
    assert_eq!(
        described["ContainerGroups"][0]["Tags"],
        json!([{"Key": "env", "Value": "test"}])
    );
    assert_eq!(b.call_count("DescribeContainerGroups"), 1);
    assert_eq!(b.requests().len(), 2);
}

#[tokio::test]
async fn ambiguous_or_unknown_requests_are_refused() {
    let b = Backend::new();
    let (status, e) = v3(&b, "NoSuchAction", &[]).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (StatusCode::NOT_FOUND, Some("InvalidAction.NotFound"))
    );
    assert_eq!(e["HostId"], HOST_ID);

    let (status, e) = v3(
        &b,
        "DescribeContainerGroups",
        &[("Action", "DeleteContainerGroup")],
    )
    .await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameter"))
    );

    let req = Request::get("/?Action=DescribeContainerGroups&Limit=1&Limit=2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, e) = call(&b, req).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameter"))
    );

    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let (status, e) = call(&b, req).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MissingParameter"))
    );

    let req = Request::post("/other?Action=DescribeContainerGroups")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, e) = call(&b, req).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (StatusCode::NOT_FOUND, Some("InvalidAction.NotFound"))
    );

    let (status, e) = v3(
        &b,
        "DeleteContainerGroup",
        &[("ContainerGroupId", "eci-nope")],
    )
    .await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("InvalidContainerGroup.NotFound")
        )
    );
}

#[tokio::test]
async fn tag_changes_are_all_or_nothing() {
    let b = Backend::new();
    let id = b.create(NewGroup::new("a", "cn-hangzhou").tag("k", "v"));
    let (status, _) = v3(
        &b,
        "TagResources",
        &[
            ("ResourceType", "ContainerGroup"),
            ("ResourceId.1", &id),
            ("ResourceId.2", "eci-missing"),
            ("Tag.1.Key", "x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get(&id).unwrap().tags.len(),
        1,
        "the existing group was not changed"
    );
}

#[tokio::test]
async fn the_state_hook_counts_describes() {
    let b = Backend::new();
    b.create(NewGroup::new("a", "cn-hangzhou"));
    v3(&b, "DescribeContainerGroups", &[]).await;
    let req = Request::get("/_backend/state")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, state) = call(&b, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["describe_calls"], 1);
    assert_eq!(state["groups"][0]["resource_group"], DEFAULT_RESOURCE_GROUP);
}
