//! `ramgate demo`: the in-memory backend and the proxy on loopback, configured with
//! `config/ramgate.toml` and the demo policies of SCENARIOS.md, seeded with a few tagged
//! container groups, and ready-to-paste `curl` calls for an allowed, a denied and a
//! silently emptied request.
//!
//! With `--cloud` the backend also plays Alibaba Cloud ([`backend::cloud`]): the proxy
//! reaches it over HTTPS (the demo CA and certificate of `config/demo-cloud/`) and signs
//! every call ACS3 with a demo AccessKey of its own, as it would in front of the real ECI
//! endpoint. The curl calls are the same; only the way ramgate reaches the backend changes.

use crate::backend::{self, NewGroup};
use crate::config::Config;
use crate::net::Shutdown;
use crate::proxy;
use std::net::SocketAddr;
use std::path::Path;

const ACCOUNT: &str = "1234567890123456";

/// ramgate's own AccessKey in `demo --cloud` (demo-only, like the demo users' keys).
const CLOUD_KEY_ID: &str = "LTAIdemoRamgateUpstream";
const CLOUD_SECRET: &str = "demo-only-upstream-secret";

/// Puts the demo AccessKey where the credential chain's first source looks: the
/// environment. Call before any thread starts.
pub fn set_cloud_credentials() {
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_ID", CLOUD_KEY_ID);
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CLOUD_SECRET);
    std::env::remove_var("ALIBABA_CLOUD_SECURITY_TOKEN");
}

pub async fn run(config_path: &Path, cloud: bool) -> Result<(), String> {
    let mut config = Config::load(config_path).map_err(|e| e.to_string())?;
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let backend = backend::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    config.upstream.url = format!("http://{}", backend.addr);
    if cloud {
        let certs = config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("demo-cloud");
        let mode = backend::CloudMode {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: Some(crate::config::Tls {
                cert: certs.join("server.pem"),
                key: certs.join("server-key.pem"),
                client_ca: None,
            }),
            key: backend::cloud::CloudKey {
                access_key_id: CLOUD_KEY_ID.to_owned(),
                secret: CLOUD_SECRET.to_owned(),
                security_token: None,
            },
        };
        let (cloud_addr, serving) =
            backend::spawn_cloud(backend.backend.clone(), mode, shutdown.clone())
                .await
                .map_err(|e| format!("the demo cloud listener: {e}"))?;
        tokio::spawn(serving);
        config.upstream.url = format!("https://localhost:{}", cloud_addr.port());
        config.upstream.signing = crate::config::Signing::Acs3;
        config.upstream.ca_file = Some(certs.join("ca.pem"));
        config.upstream.credentials = Some(crate::config::UpstreamCredentials {
            source: crate::config::CredentialSource::Env,
            ..Default::default()
        });
    }
    let groups = [
        (
            "web-liumi-test",
            "rg-default",
            &[("name", "liumi"), ("env", "test")][..],
        ),
        (
            "web-liumi-prod",
            "rg-default",
            &[("name", "liumi"), ("env", "prod")][..],
        ),
        ("batch-a", "rg-test-a", &[("team", "a")][..]),
        ("batch-b", "rg-test-b", &[("team", "b")][..]),
    ];
    let mut ids = Vec::new();
    for (name, group, tags) in groups {
        let mut spec = NewGroup::new(name, config.region.clone())
            .resource_group(group)
            .container("app", "nginx:1.27");
        for (k, v) in tags {
            spec = spec.tag(*k, *v);
        }
        ids.push(backend.backend.create(spec));
    }
    let upstream = cloud.then(|| config.upstream.url.clone());
    let result = proxy::run_with(config, |proxy_addr, admin_addr| {
        print_tour(proxy_addr, admin_addr, &ids, upstream.as_deref())
    })
    .await;
    backend.stop().await;
    result
}

fn curl(proxy: SocketAddr, who: &str, query: &str) -> String {
    format!("curl -s -X POST -H 'x-ramgate-principal: acs:ram::{ACCOUNT}:{who}' 'http://{proxy}/?Version=2018-08-08&RegionId=cn-hangzhou&{query}'")
}

fn print_tour(proxy: SocketAddr, admin: SocketAddr, ids: &[String], cloud: Option<&str>) {
    let (test_ok, prod) = (&ids[0], &ids[1]);
    if let Some(url) = cloud {
        println!(
            "\nramgate demo --cloud: the backend plays Alibaba Cloud at {url} (HTTPS, the demo CA in config/demo-cloud/);\n\
             ramgate signs every call it makes ACS3-HMAC-SHA256 with its own AccessKey {CLOUD_KEY_ID}, and sends no x-ramgate-* header."
        );
    }
    println!(
        "\nramgate demo: proxy on http://{proxy}, admin on http://{admin}, in-memory backend behind it.\n\
         Seeded container groups: {} (name=liumi,env=test), {} (name=liumi,env=prod), {} (rg-test-a), {} (rg-test-b).\n\
         Callers come from 127.0.0.1, a trusted proxy, so the identity header is believed.\n",
        ids[0], ids[1], ids[2], ids[3]
    );
    let calls = [
        ("ALLOWED: liumi reads the log of a group tagged name=liumi,env=test", curl(proxy, "user/liumi", &format!("Action=DescribeContainerLog&ContainerGroupId={test_ok}"))),
        ("DENIED (403 Forbidden.RAM): liumi restarts a group tagged env=prod", curl(proxy, "user/liumi", &format!("Action=RestartContainerGroup&ContainerGroupId={prod}"))),
        ("SILENTLY EMPTIED (200, TotalCount 0): test lists without naming its resource group", curl(proxy, "user/test", "Action=DescribeContainerGroups")),
        ("ALLOWED: test lists its resource group rg-test-a", curl(proxy, "user/test", "Action=DescribeContainerGroups&ResourceGroupId=rg-test-a")),
        ("FILTERED: liumi lists by its tags and sees only the matching group", curl(proxy, "user/liumi", "Action=DescribeContainerGroups&Tag.1.Key=name&Tag.1.Value=liumi&Tag.2.Key=env&Tag.2.Value=test")),
        ("ALLOWED: the account (root) lists everything", curl(proxy, "root", "Action=DescribeContainerGroups")),
    ];
    for (what, command) in calls {
        println!("# {what}\n{command}\n");
    }
    println!("# Why was it denied?\ncargo run --release -- explain --config config/ramgate.toml --principal acs:ram::{ACCOUNT}:user/liumi --action RestartContainerGroup --target-group rg-default --resource-tag name=liumi --resource-tag env=prod\n");
    println!("# Metrics and status\ncurl -s http://{admin}/metrics | grep ramgate_requests_total\ncurl -s http://{admin}/v1/status\n\nPress Ctrl-C to stop.");
}
