//! `/metrics` after a known mix of calls: every metric of SPEC §7 is there, with the
//! counts the calls imply, and label values stay bounded.

mod ops_support;
mod support;

use hyper::StatusCode;
use ops_support::{call, eventually, faults, metrics, sample, value};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use support::{request, seed_group, start_backend, start_proxy};

fn requests(text: &str, action: &str, decision: &str) -> f64 {
    sample(
        text,
        "ramgate_requests_total",
        &[("action", action), ("decision", decision)],
    )
    .unwrap_or(0.0)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Done-when 4.
#[tokio::test]
async fn metrics_count_a_known_mix_of_calls() {
    let started = unix_now();
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let proxy = start_proxy(backend, policies.path(), "", "");
    let (addr, admin) = (proxy.addr, proxy.admin);
    let tagged = seed_group(
        backend,
        "liumi-test",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    let prod = seed_group(
        backend,
        "liumi-prod",
        "rg-default",
        &[("name", "liumi"), ("env", "prod")],
    )
    .await;
    let unlucky = seed_group(
        backend,
        "liumi-unlucky",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;

    // Before any call: every series that can be created in advance is there, at zero.
    let text = metrics(admin).await;
    for name in ramgate::ops::metrics::NAMES {
        assert!(
            ramgate::ops::metrics::rendered_names(&text).contains(*name),
            "{name} missing before traffic:\n{text}"
        );
    }
    assert_eq!(value(&text, "ramgate_policy_generation", &[]), 1.0);
    assert_eq!(
        value(&text, "ramgate_tls_handshake_failures_total", &[]),
        0.0
    );

    let log = |id: &str| {
        let id = id.to_owned();
        async move {
            call(
                addr,
                "liumi",
                "DescribeContainerLog",
                &[("ContainerGroupId", &id), ("ContainerName", "app")],
            )
            .await
        }
    };
    // 3 allows: one cache miss (one lookup), then two hits; each forwarded.
    for _ in 0..3 {
        assert_eq!(log(&tagged).await.0, StatusCode::OK);
    }
    // 2 denials: a miss, then a hit.
    for _ in 0..2 {
        let (status, body) = call(
            addr,
            "liumi",
            "RestartContainerGroup",
            &[("ContainerGroupId", &prod)],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // 2 denials of a group that does not exist: a miss, then a negative hit.
    for _ in 0..2 {
        assert_eq!(log("eci-doesnotexist00000").await.0, StatusCode::FORBIDDEN);
    }
    // A silent empty list: `test` may list only in its resource group, and names none.
    let (status, body) = call(addr, "test", "DescribeContainerGroups", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["TotalCount"], 0, "{body}");
    // Errors: an unknown action (label `other`), no identity.
    let (status, _) = call(addr, "liumi", "NoSuchAction", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = support::post_query(
        addr,
        &[
            ("Action", "DescribeContainerGroups"),
            ("Version", "2018-08-08"),
            ("RegionId", "cn-hangzhou"),
        ],
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A failing metadata lookup: 503, counted, and an error.
    faults(backend, "fail_describe=true").await;
    assert_eq!(log(&unlucky).await.0, StatusCode::SERVICE_UNAVAILABLE);
    faults(backend, "fail_describe=false").await;

    // In flight: a slow backend holds one request. Held for seconds, so that a loaded
    // machine (a test run beside benchmarks once missed a 1 s window) still sees it.
    faults(backend, "delay_ms=3000").await;
    let slow =
        tokio::spawn(async move { call(addr, "root", "DescribeContainerGroups", &[]).await });
    let inflight = eventually(Duration::from_millis(2500), || async move {
        let text = metrics(admin).await;
        (sample(&text, "ramgate_inflight_requests", &[]) == Some(1.0)).then_some(())
    })
    .await;
    assert!(
        inflight.is_some(),
        "the slow request never showed in flight"
    );
    assert_eq!(slow.await.expect("the slow call").0, StatusCode::OK);
    faults(backend, "delay_ms=0").await;

    // Reloads: a broken file (an error), then a good change (a success).
    let policy = policies.path().join("eci-tag-multi.json");
    ops_support::write_atomically(&policy, "{\"Version\":\"1\",\"Statement\":[}\n");
    eventually(Duration::from_secs(3), || async move {
        (!ops_support::status(admin).await["last_reload_error"].is_null()).then_some(())
    })
    .await
    .expect("the broken file is reported");
    let before_fix = unix_now();
    ops_support::write_atomically(
        &policy,
        r#"{"Version":"1","Statement":[{"Action":"eci:Describe*","Resource":"*","Effect":"Allow"}]}"#,
    );
    eventually(Duration::from_secs(3), || async move {
        (ops_support::status(admin).await["generation"] == 2).then_some(())
    })
    .await
    .expect("the fixed file is loaded");

    let text = metrics(admin).await;
    let count = |name: &str| value(&text, &format!("{name}_count"), &[]);

    // Requests by action and decision.
    assert_eq!(requests(&text, "DescribeContainerLog", "allow"), 3.0);
    assert_eq!(requests(&text, "DescribeContainerLog", "deny"), 2.0);
    assert_eq!(requests(&text, "DescribeContainerLog", "error"), 1.0);
    assert_eq!(requests(&text, "RestartContainerGroup", "deny"), 2.0);
    assert_eq!(
        requests(&text, "DescribeContainerGroups", "silent_empty"),
        1.0
    );
    assert_eq!(requests(&text, "DescribeContainerGroups", "allow"), 1.0);
    assert_eq!(requests(&text, "DescribeContainerGroups", "error"), 1.0);
    assert_eq!(requests(&text, "other", "error"), 1.0);
    // 12 requests in all; 9 reached a decision; 4 were forwarded; 3 lookups were made.
    assert_eq!(count("ramgate_request_duration_seconds"), 12.0);
    assert_eq!(count("ramgate_decision_duration_seconds"), 9.0);
    assert_eq!(count("ramgate_upstream_duration_seconds"), 4.0);
    assert_eq!(count("ramgate_metadata_lookup_duration_seconds"), 3.0);
    // Histogram buckets from 10 µs to 10 s.
    for h in [
        "ramgate_request_duration_seconds",
        "ramgate_decision_duration_seconds",
        "ramgate_upstream_duration_seconds",
        "ramgate_metadata_lookup_duration_seconds",
    ] {
        let bucket = format!("{h}_bucket");
        assert!(
            sample(&text, &bucket, &[("le", "0.00001")]).is_some(),
            "{h}"
        );
        assert!(sample(&text, &bucket, &[("le", "10")]).is_some(), "{h}");
        assert_eq!(
            sample(&text, &bucket, &[("le", "+Inf")]),
            Some(count(h)),
            "{h}"
        );
    }
    // The slow request took over a second.
    assert!(
        value(
            &text,
            "ramgate_request_duration_seconds_bucket",
            &[("le", "0.5")]
        ) <= 11.0
    );

    // The metadata cache.
    let cache = |result: &str| {
        value(
            &text,
            "ramgate_metadata_cache_requests_total",
            &[("result", result)],
        )
    };
    assert_eq!(cache("miss"), 3.0);
    assert_eq!(cache("hit"), 3.0);
    assert_eq!(cache("negative_hit"), 1.0);
    assert_eq!(
        value(&text, "ramgate_metadata_lookup_errors_total", &[]),
        1.0
    );

    // Reloads, generation, last success, in flight, TLS.
    let reloads =
        |result: &str| value(&text, "ramgate_policy_reloads_total", &[("result", result)]);
    assert_eq!(reloads("error"), 1.0);
    assert_eq!(reloads("success"), 1.0);
    assert_eq!(value(&text, "ramgate_policy_generation", &[]), 2.0);
    let last = value(
        &text,
        "ramgate_policy_last_reload_success_timestamp_seconds",
        &[],
    );
    assert!(last >= before_fix && last <= unix_now(), "{last}");
    assert!(last > started);
    assert_eq!(value(&text, "ramgate_inflight_requests", &[]), 0.0);
    assert_eq!(
        value(&text, "ramgate_tls_handshake_failures_total", &[]),
        0.0
    );

    // Label values are bounded: catalogue actions or `other`, the five decisions.
    let (mut actions, mut decisions) = (BTreeSet::new(), BTreeSet::new());
    for line in text
        .lines()
        .filter(|l| l.starts_with("ramgate_requests_total{"))
    {
        let label = |key: &str| {
            line.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        actions.insert(label("action"));
        decisions.insert(label("decision"));
    }
    let expected: BTreeSet<String> = [
        "DescribeContainerLog",
        "RestartContainerGroup",
        "DescribeContainerGroups",
        "other",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(actions, expected);
    assert!(decisions
        .iter()
        .all(|d| ramgate::ops::metrics::DECISIONS.contains(&d.as_str())));
    for id in [&tagged, &prod, &unlucky] {
        assert!(!text.contains(id.as_str()), "an id in a label: {id}");
    }
    assert!(!text.contains("liumi"), "a principal in a label");

    // After traffic, every listed metric is still rendered (the list the dashboard test
    // checks against).
    let names = ramgate::ops::metrics::rendered_names(&text);
    for name in ramgate::ops::metrics::NAMES {
        assert!(names.contains(*name), "{name}");
    }
}

/// `would_deny` is the dry-run decision: forwarded, but counted apart.
#[tokio::test]
async fn dry_run_counts_would_deny() {
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let proxy = start_proxy(backend, policies.path(), "mode = \"dry-run\"", "");
    let prod = seed_group(
        backend,
        "liumi-prod",
        "rg-default",
        &[("name", "liumi"), ("env", "prod")],
    )
    .await;
    let (status, body) = call(
        proxy.addr,
        "liumi",
        "RestartContainerGroup",
        &[("ContainerGroupId", &prod)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = metrics(proxy.admin).await;
    assert_eq!(
        requests(&text, "RestartContainerGroup", "would_deny"),
        1.0,
        "{text}"
    );
    assert_eq!(requests(&text, "RestartContainerGroup", "deny"), 0.0);
}

/// The other admin endpoints answer as documented.
#[tokio::test]
async fn admin_endpoints_answer() {
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let proxy = start_proxy(backend, policies.path(), "", "");
    let (code, _, body) = request(proxy.admin, "GET", "/healthz", &[], "").await;
    assert_eq!(code, StatusCode::OK, "{body:?}");
    let (code, _, body) = request(proxy.admin, "GET", "/readyz", &[], "").await;
    assert_eq!(code, StatusCode::OK, "{body:?}");
    let (code, _, _) = request(proxy.admin, "GET", "/nope", &[], "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let st = ops_support::status(proxy.admin).await;
    assert_eq!(st["generation"], 1, "{st}");
    assert_eq!(st["mode"], "enforce", "{st}");
    assert_eq!(st["draining"], false, "{st}");
    assert_eq!(st["last_reload_error"], serde_json::Value::Null, "{st}");
    assert_eq!(st["content_hash"].as_str().map(str::len), Some(64), "{st}");
    assert!(st["loaded_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    let files = st["files"].as_array().expect("files");
    assert_eq!(files.len(), 3, "{st}");
}
