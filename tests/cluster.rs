//! `[cluster]` (SPEC §9): three `ramgate serve` replicas sharing one `redis-server` on a
//! free loopback port and one backend. A signed request replayed to another replica is
//! refused; a retag through one replica governs the others within a second; a quota of N
//! per minute admits N calls spread over the replicas; and with Redis killed mid-run,
//! `on_unavailable` decides what signed requests get, header identities go on, retags are
//! still respected within a second, and when Redis is back signed requests are served
//! again and each replica dropped its cache once.
//!
//! Needs `redis-server` (scripts/test.sh installs it): skipped without it, except with
//! `CI=true`, where that fails.

mod ops_support;
mod support;

use ops_support::{call, eventually, metrics, policy_copy, status, value};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    redis_available, request_json, seed_group, signed_v1_query, start_backend, start_proxy, Proxy,
    Ramgate, RedisServer,
};

const LIUMI_KEY: (&str, &str) = ("LTAIliumiExampleKey", "inline-only-for-demos");
/// The quota of the test: `ro` may list 7 times a minute.
const QUOTA: usize = 7;
/// How soon a change through one replica must govern the others.
const WITHIN: Duration = Duration::from_secs(1);

struct Cluster {
    redis: RedisServer,
    backend: SocketAddr,
    replicas: Vec<Proxy>,
    _backend: Ramgate,
    _policies: tempfile::TempDir,
}

/// Redis, a backend and three replicas with `on_unavailable`, once all are subscribed.
async fn cluster(on_unavailable: &str) -> Option<Cluster> {
    if !redis_available() {
        return None;
    }
    let redis = RedisServer::start();
    let (backend_process, backend) = start_backend();
    let policies = policy_copy();
    let principals = policies.path().join("principals.toml");
    let mut text = std::fs::read_to_string(&principals).expect("principals.toml");
    text.push_str(&format!(
        "\n[[quotas]]\nprincipals = [\"user/ro\"]\nactions = [\"DescribeContainerGroups\"]\nper_minute = {QUOTA}\n\
         \n[[quotas]]\nprincipals = [\"user/*\"]\nactions = [\"*\"]\nper_minute = 1000\n"
    ));
    std::fs::write(&principals, text).expect("write principals.toml");
    let tables = format!(
        "[cluster]\nredis_url = \"{}\"\non_unavailable = \"{on_unavailable}\"\n",
        redis.url()
    );
    let replicas: Vec<Proxy> = (0..3)
        .map(|_| start_proxy(backend, policies.path(), "", &tables))
        .collect();
    for replica in &replicas {
        wait_connected(replica, true).await;
    }
    Some(Cluster {
        redis,
        backend,
        replicas,
        _backend: backend_process,
        _policies: policies,
    })
}

async fn wait_connected(replica: &Proxy, connected: bool) -> Value {
    eventually(Duration::from_secs(10), || async {
        let cluster = status(replica.admin).await["cluster"].clone();
        (cluster["connected"] == connected).then_some(cluster)
    })
    .await
    .unwrap_or_else(|| panic!("replica {} never had connected = {connected}", replica.addr))
}

/// liumi's own test group, and the parameters of a call on it.
async fn liumi_group(backend: SocketAddr) -> String {
    seed_group(
        backend,
        "liumi-app",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await
}

/// `DescribeContainerLog` on `id`, signed with liumi's AccessKey (RPC v1): the query.
fn signed_log_call(id: &str) -> String {
    signed_v1_query(
        &[
            ("Action", "DescribeContainerLog"),
            ("RegionId", "cn-hangzhou"),
            ("ContainerGroupId", id),
            ("ContainerName", "app"),
        ],
        LIUMI_KEY.0,
        LIUMI_KEY.1,
    )
}

async fn send(replica: &Proxy, query: &str) -> (u16, Value) {
    let (status, _, body) = request_json(replica.addr, "GET", &format!("/?{query}"), &[], "").await;
    (status.as_u16(), body)
}

async fn log_as_liumi(replica: &Proxy, id: &str) -> u16 {
    call(
        replica.addr,
        "liumi",
        "DescribeContainerLog",
        &[("ContainerGroupId", id), ("ContainerName", "app")],
    )
    .await
    .0
    .as_u16()
}

/// Root removes the `env` tag of `id` through `replica`: liumi's policy no longer covers it.
async fn untag_env(replica: &Proxy, id: &str) {
    let (status, body) = call(
        replica.addr,
        "root",
        "UntagResources",
        &[
            ("ResourceType", "ContainerGroup"),
            ("ResourceId.1", id),
            ("TagKey.1", "env"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Every replica refuses liumi on `id` within [`WITHIN`] of `since` (when the retag was
/// answered).
async fn all_refuse_within(replicas: &[Proxy], id: &str, since: Instant) {
    for (i, replica) in replicas.iter().enumerate() {
        let refused = eventually(WITHIN, || async {
            (log_as_liumi(replica, id).await == 403).then_some(())
        })
        .await;
        assert!(
            refused.is_some(),
            "replica {i} still allowed liumi {:?} after the retag",
            since.elapsed()
        );
    }
    assert!(
        since.elapsed() <= WITHIN + Duration::from_millis(500),
        "{:?}",
        since.elapsed()
    );
}

#[tokio::test]
async fn replicas_share_nonces_invalidations_and_quotas() {
    let Some(c) = cluster("deny").await else {
        return;
    };
    let id = liumi_group(c.backend).await;

    // A signed request accepted by one replica is a replay for every other.
    let signed = signed_log_call(&id);
    let (code, body) = send(&c.replicas[0], &signed).await;
    assert_eq!(code, 200, "{body}");
    for replica in &c.replicas[1..] {
        let (code, body) = send(replica, &signed).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["Code"], "SignatureNonceUsed", "{body}");
    }

    // Every replica has liumi's group cached as hers; root untags it through replica 0.
    for replica in &c.replicas {
        assert_eq!(log_as_liumi(replica, &id).await, 200);
    }
    untag_env(&c.replicas[0], &id).await;
    let untagged_at = Instant::now();
    all_refuse_within(&c.replicas, &id, untagged_at).await;

    // A quota of 7 a minute over three replicas: 7 served, the rest throttled, and the
    // backend never sees the throttled ones.
    let mut served = 0;
    let mut throttled = 0;
    for i in 0..QUOTA + 5 {
        let (status, headers, body) = support::post_query(
            c.replicas[i % 3].addr,
            &[
                ("Action", "DescribeContainerGroups"),
                ("Version", "2018-08-08"),
                ("RegionId", "cn-hangzhou"),
            ],
            &[("x-ramgate-principal", &support::as_user("ro"))],
        )
        .await;
        match status.as_u16() {
            200 => served += 1,
            400 => {
                assert_eq!(body["Code"], "Throttling.User", "{body}");
                assert_eq!(
                    body["Message"], "Request was denied due to user flow control.",
                    "{body}"
                );
                let retry_after: u64 = headers
                    .get("x-acs-retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no x-acs-retry-after in {headers:?}"));
                assert!((1..=60_000).contains(&retry_after), "{retry_after}");
                throttled += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((served, throttled), (QUOTA, 5));
    let forwarded = support::recorded(c.backend)
        .await
        .iter()
        .filter(|r| r.to_string().contains("user/ro"))
        .count();
    assert_eq!(forwarded, QUOTA, "only admitted calls reach the backend");
    let mut counted = 0.0;
    for replica in &c.replicas {
        let text = metrics(replica.admin).await;
        counted += value(
            &text,
            "ramgate_requests_total",
            &[
                ("action", "DescribeContainerGroups"),
                ("decision", "throttled"),
            ],
        );
        assert!(value(&text, "ramgate_cluster_connected", &[]) == 1.0);
    }
    assert_eq!(counted, 5.0);
    let sent: f64 = {
        let text = metrics(c.replicas[0].admin).await;
        value(
            &text,
            "ramgate_cluster_invalidations_total",
            &[("direction", "sent")],
        )
    };
    assert!(sent >= 1.0, "the untag was published");
}

/// Redis killed and brought back, with `on_unavailable`; returns the cluster for more.
async fn outage(on_unavailable: &str) -> Option<Cluster> {
    let mut c = cluster(on_unavailable).await?;
    let id = liumi_group(c.backend).await;
    for replica in &c.replicas {
        assert_eq!(log_as_liumi(replica, &id).await, 200);
    }
    c.redis.kill();
    for replica in &c.replicas {
        let cluster = wait_connected(replica, false).await;
        assert!(cluster["last_error"].is_string(), "{cluster}");
    }

    // Signed requests: 503 and nothing forwarded with "deny", served with "local".
    for replica in &c.replicas {
        support::clear_recorded(c.backend).await;
        let (code, body) = send(replica, &signed_log_call(&id)).await;
        if on_unavailable == "deny" {
            assert_eq!(code, 503, "{body}");
            assert_eq!(body["Code"], "ServiceUnavailable", "{body}");
            assert!(
                support::recorded(c.backend).await.is_empty(),
                "nothing is forwarded on a nonce that could not be claimed"
            );
        } else {
            assert_eq!(code, 200, "{body}");
            // This replica still remembers the nonce.
            let signed = signed_log_call(&id);
            assert_eq!(send(replica, &signed).await.0, 200);
            let (code, body) = send(replica, &signed).await;
            assert_eq!(
                (code, &body["Code"]),
                (400, &Value::from("SignatureNonceUsed"))
            );
        }
        // Header identities go on.
        assert_eq!(log_as_liumi(replica, &id).await, 200);
    }

    // A retag made while Redis is down is still respected within a second everywhere.
    untag_env(&c.replicas[1], &id).await;
    let untagged_at = Instant::now();
    all_refuse_within(&c.replicas, &id, untagged_at).await;

    // Redis back: signed requests are served again within a few seconds, and each replica
    // dropped its cache once.
    c.redis.restart();
    let other = seed_group(
        c.backend,
        "liumi-other",
        "rg-default",
        &[("name", "liumi"), ("env", "test")],
    )
    .await;
    for replica in &c.replicas {
        let cluster = wait_connected(replica, true).await;
        assert_eq!(cluster["resubscriptions"], 1, "{cluster}");
        let served = eventually(Duration::from_secs(5), || async {
            (send(replica, &signed_log_call(&other)).await.0 == 200).then_some(())
        })
        .await;
        assert!(served.is_some(), "signed requests are served again");
        let text = metrics(replica.admin).await;
        assert!(value(&text, "ramgate_cluster_errors_total", &[]) >= 1.0);
    }
    Some(c)
}

#[tokio::test]
async fn redis_outage_with_deny_refuses_signed_requests_and_recovers() {
    let Some(c) = outage("deny").await else {
        return;
    };
    // Shared again: a replay across replicas is refused.
    let id = liumi_group(c.backend).await;
    let signed = signed_log_call(&id);
    assert_eq!(send(&c.replicas[2], &signed).await.0, 200);
    assert_eq!(send(&c.replicas[0], &signed).await.0, 400);
}

#[tokio::test]
async fn redis_outage_with_local_serves_signed_requests_and_recovers() {
    outage("local").await;
}
