//! ramgate in front of "Alibaba Cloud" (SPEC §8), beyond the scenario rows
//! (tests/proxy_scenarios.rs runs those through a signing proxy):
//!
//! * the signer against the official Python SDK's recorded Authorization headers
//!   (`tests/fixtures/signatures/signer_vectors.json`, made by `record_signer.py`);
//! * upstream TLS: a certificate from another CA, or for another name, is a 502 and
//!   nothing reaches the backend; `ca_file` makes a private CA work;
//! * each credential source against fakes on 127.0.0.1 (environment with and without an
//!   STS token, credentials file, OIDC against a fake STS, the ECS RAM role against a fake
//!   instance metadata service that requires the IMDSv2 token), refreshes during a run of
//!   requests, a refresh that keeps failing, and an upstream that refuses ramgate's key;
//! * metadata lookups retried, re-signed, on throttling.

mod support;

use http::header::{HeaderName, HeaderValue};
use ramgate::upstream::credentials::{Credential, Source};
use ramgate::upstream::sign::{sign, Freshness};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cloud::{
    env_key, expiration_in, start_cloud_backend, start_signing_proxy, wait_ready, CloudBackend,
    Fake, KEY_ID, SECRET,
};
use support::{get_json, v3};

const ROOT: &str = "acs:ram::1234567890123456:root";

fn demo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies")
}

/// A list call (no metadata lookup): root, through the trusted header.
async fn list(proxy: std::net::SocketAddr) -> (u16, Value) {
    let (status, _, body) = v3(
        proxy,
        "DescribeContainerGroups",
        &[("RegionId", "cn-hangzhou")],
        &[("x-ramgate-principal", ROOT)],
    )
    .await;
    (status.as_u16(), body)
}

// ---- the signer ----

#[test]
fn the_signer_reproduces_the_python_sdks_authorization_headers() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signatures/signer_vectors.json");
    let text = std::fs::read_to_string(&path).expect("signer_vectors.json");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 3);
    let str_of = |v: &Value| v.as_str().expect("a string").to_owned();
    for v in vectors {
        let name = str_of(&v["name"]);
        let sdk = &v["sdk"];
        let (_, query) = str_of(&sdk["path"])
            .split_once('?')
            .map(|(p, q)| (p.to_owned(), q.to_owned()))
            .expect("a query");
        let params = ramgate::request::encoding::parse_urlencoded(&query).expect("decodes");
        let pairs = || params.iter().map(|(n, k)| (n.as_str(), k.as_str()));

        // What the SDK sent, with every header it signed: the shared canonical form must
        // give its Authorization byte for byte.
        let authorization = str_of(&sdk["authorization"]);
        let signed_names = authorization
            .split("SignedHeaders=")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("SignedHeaders");
        let header = |wanted: &str| {
            sdk["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .find(|h| {
                    h[0].as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
                })
                .map(|h| str_of(&h[1]))
                .unwrap_or_else(|| panic!("{name}: no {wanted} header"))
        };
        let values: Vec<(String, String)> = signed_names
            .split(';')
            .map(|n| {
                (
                    n.to_owned(),
                    ramgate::acs3::header_value([header(n).as_str()]),
                )
            })
            .collect();
        let headers: Vec<(&str, &str)> = values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let (canonical, signed) = ramgate::acs3::canonical_request(
            "POST",
            &ramgate::acs3::canonical_query(pairs()),
            &headers,
            &header("x-acs-content-sha256"),
        );
        let secret = str_of(&v["secret"]);
        let signature =
            ramgate::acs3::signature(&secret, &ramgate::acs3::string_to_sign(&canonical));
        assert_eq!(
            ramgate::acs3::authorization(&str_of(&v["access_key_id"]), &signed, &signature),
            authorization,
            "{name}: the SDK's request"
        );

        // ramgate's signer, with the same date and nonce, over what it sends upstream.
        let token = v["security_token"].as_str().map(str::to_owned);
        let credential = Credential::new(
            str_of(&v["access_key_id"]),
            secret,
            token.clone(),
            None,
            Source::Env,
            0,
        );
        let given = [
            ("x-acs-action", header("x-acs-action")),
            ("x-acs-version", header("x-acs-version")),
            ("accept", "application/json".to_owned()),
            ("x-ramgate-principal", ROOT.to_owned()),
            ("x-ramgate-request-id", "r-1".to_owned()),
            ("x-forwarded-for", "10.0.0.1".to_owned()),
            ("user-agent", "the caller's agent".to_owned()),
        ]
        .map(|(n, v)| {
            (
                HeaderName::from_static(n),
                HeaderValue::from_str(&v).expect("value"),
            )
        });
        let fresh = Freshness {
            date: str_of(&v["date"]),
            nonce: str_of(&v["nonce"]),
        };
        let out = sign(
            &credential,
            &str_of(&v["ramgate"]["host"]),
            pairs(),
            given,
            &fresh,
        )
        .expect("signs");
        assert_eq!(
            out.authorization,
            str_of(&v["ramgate"]["authorization"]),
            "{name}: ramgate's signer"
        );
        let names: Vec<&str> = out.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("x-ramgate-") || *n == "x-forwarded-for"),
            "{name}: {names:?}"
        );
        assert_eq!(
            names.contains(&"x-acs-security-token"),
            token.is_some(),
            "{name}: {names:?}"
        );
        let agent = out
            .headers
            .iter()
            .find(|(n, _)| n == "user-agent")
            .map(|(_, v)| v.to_str().unwrap_or_default());
        assert!(
            agent.is_some_and(|a| a.starts_with("ramgate/")),
            "{name}: {agent:?}"
        );
        // The query sent is the canonical query itself.
        assert_eq!(out.query, ramgate::acs3::canonical_query(pairs()));
    }
}

// ---- TLS ----

/// Sends one list call through a proxy in front of `cloud` whose `ca_file` is `ca_pem`
/// (none: the system roots only) and `url`; returns the answer and what reached the cloud.
async fn through(cloud: &CloudBackend, url: &str, ca_pem: Option<&str>) -> ((u16, Value), u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let upstream = match ca_pem {
        Some(pem) => {
            let ca = dir.path().join("ca.pem");
            std::fs::write(&ca, pem).expect("write ca");
            format!("signing = \"acs3\"\nca_file = \"{}\"\n", ca.display())
        }
        None => "signing = \"acs3\"\n".to_owned(),
    };
    let env = env_key();
    let proxy = support::start_proxy_with(
        cloud.hooks,
        &demo_policies(),
        &support::ProxySettings {
            upstream_url: Some(url),
            upstream: &upstream,
            tables: "[upstream.credentials]\nsource = \"env\"\n",
            env: &env,
            ..support::ProxySettings::default()
        },
    );
    let answer = list(proxy.addr).await;
    let (_, state) = get_json(cloud.hooks, "/_backend/state").await;
    (answer, state["requests_total"].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_certificate_that_does_not_verify_is_a_502_and_nothing_is_sent() {
    let cloud = start_cloud_backend(None, &["localhost", "127.0.0.1"]);
    let other_ca = support::cloud::test_ca("some other CA");
    for (what, ca) in [
        ("another CA", Some(other_ca.pem.as_str())),
        ("the system roots only", None),
    ] {
        let ((status, body), received) = through(&cloud, &cloud.url(), ca).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (502, Some("BadGateway")),
            "{what}: {body}"
        );
        assert!(
            body["Message"]
                .as_str()
                .unwrap_or_default()
                .contains("certificate"),
            "{what}: {body}"
        );
        assert_eq!(received, 0, "{what}: nothing may reach the upstream");
    }
    // The right CA, but a certificate for another name.
    let named_elsewhere = start_cloud_backend(None, &["eci.example.internal"]);
    let ca = std::fs::read_to_string(&named_elsewhere.ca_file).expect("ca");
    let ((status, body), received) =
        through(&named_elsewhere, &named_elsewhere.url(), Some(&ca)).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (502, Some("BadGateway")),
        "name mismatch: {body}"
    );
    assert_eq!(received, 0, "name mismatch: nothing may reach the upstream");
    // ca_file makes the private CA work, by name and by IP address.
    let ca = std::fs::read_to_string(&cloud.ca_file).expect("ca");
    for url in [
        cloud.url(),
        format!("https://127.0.0.1:{}", cloud.cloud.port()),
    ] {
        let ((status, body), received) = through(&cloud, &url, Some(&ca)).await;
        assert_eq!(status, 200, "{url}: {body}");
        assert_eq!(received, 1, "{url}");
        let (_, _, _) = support::request(cloud.hooks, "DELETE", "/_backend/state", &[], "").await;
    }
    assert_eq!(cloud.stats().await["rejected"], serde_json::json!({}));
}

// ---- credential sources ----

/// Sends `n` list calls `every` apart; returns the statuses that were not 200.
async fn run_of_requests(
    proxy: std::net::SocketAddr,
    n: usize,
    every: Duration,
) -> Vec<(u16, Value)> {
    let mut failed = Vec::new();
    for _ in 0..n {
        let (status, body) = list(proxy).await;
        if status != 200 {
            failed.push((status, body));
        }
        tokio::time::sleep(every).await;
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_credentials_with_and_without_an_sts_token() {
    // Without a token.
    let cloud = start_cloud_backend(None, &["localhost"]);
    let proxy = start_signing_proxy(&cloud, &demo_policies(), "source = \"env\"", &env_key());
    let (status, body) = list(proxy.addr).await;
    assert_eq!(status, 200, "{body}");
    let (_, doc) = get_json(proxy.admin, "/v1/status").await;
    let shown = &doc["upstream_credentials"];
    assert_eq!(shown["source"], "env", "{doc}");
    assert_eq!(shown["access_key_id"], KEY_ID, "{doc}");
    assert!(
        !doc.to_string().contains(SECRET),
        "the secret must never be shown: {doc}"
    );

    // With a token: the backend insists on it (and on x-acs-accesskey-id).
    let token = "CAIS/env+token==";
    let cloud = start_cloud_backend(Some(token), &["localhost"]);
    let mut env = env_key().to_vec();
    env.push(("ALIBABA_CLOUD_SECURITY_TOKEN", token));
    let proxy = start_signing_proxy(&cloud, &demo_policies(), "source = \"default\"", &env);
    let (status, body) = list(proxy.addr).await;
    assert_eq!(status, 200, "{body}");
    let recorded = support::recorded(cloud.hooks).await;
    let sent = recorded.last().expect("one call");
    assert_eq!(sent["headers"]["x-acs-security-token"], token);
    assert_eq!(sent["headers"]["x-acs-accesskey-id"], KEY_ID);
    assert!(sent["headers"]["authorization"]
        .as_str()
        .unwrap_or_default()
        .contains("x-acs-security-token"));
    let metrics = support::request(proxy.admin, "GET", "/metrics", &[], "")
        .await
        .2;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(!metrics.contains(SECRET) && !metrics.contains(token));
    for line in proxy
        .process
        .stderr_lines()
        .iter()
        .chain(&proxy.process.stdout_lines())
    {
        assert!(
            !line.contains(SECRET) && !line.contains("env+token"),
            "a secret in the log: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credentials_file_is_read_from_alibaba_cloud_credentials_file() {
    let cloud = start_cloud_backend(None, &["localhost"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!("[default]\ntype = access_key\naccess_key_id = LTAIwrong\naccess_key_secret = wrong\n\n[ramgate]\ntype = access_key\naccess_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n"),
    )
    .expect("write credentials");
    let file = file.to_string_lossy().into_owned();
    let env = [
        ("ALIBABA_CLOUD_CREDENTIALS_FILE", file.as_str()),
        ("ALIBABA_CLOUD_PROFILE", "ramgate"),
        ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
    ];
    let proxy = start_signing_proxy(&cloud, &demo_policies(), "source = \"default\"", &env);
    let (status, body) = list(proxy.addr).await;
    assert_eq!(status, 200, "{body}");
    let (_, doc) = get_json(proxy.admin, "/v1/status").await;
    assert_eq!(doc["upstream_credentials"]["source"], "file", "{doc}");
}

/// A fake STS answering `AssumeRoleWithOIDC` with ramgate's key and `token`, valid for
/// `lifetime`, the first `successes` times (then 503 `ServiceUnavailable`); it records
/// the OIDC tokens it was sent.
async fn fake_sts(
    token: &'static str,
    lifetime: Duration,
    successes: usize,
) -> (Fake, Arc<std::sync::Mutex<Vec<String>>>) {
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = AtomicUsize::new(0);
    let seen_tokens = tokens.clone();
    let fake = Fake::start(move |seen| {
        let form = ramgate::request::encoding::parse_urlencoded(&seen.body).unwrap_or_default();
        let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let well_formed = seen.method == "POST"
            && seen.path.contains("Action=AssumeRoleWithOIDC")
            && !seen.path.contains("OIDCToken")
            && field("RoleArn").as_deref() == Some("acs:ram::1234567890123456:role/ramgate")
            && field("OIDCProviderArn").is_some();
        if !well_formed {
            return (400, r#"{"Code":"InvalidParameter","Message":"not an AssumeRoleWithOIDC call"}"#.into());
        }
        seen_tokens.lock().expect("tokens").push(field("OIDCToken").unwrap_or_default());
        if calls.fetch_add(1, Ordering::SeqCst) >= successes {
            return (503, r#"{"Code":"ServiceUnavailable","Message":"down"}"#.into());
        }
        let answer = serde_json::json!({
            "RequestId": "sts-1",
            "AssumedRoleUser": {"Arn": "acs:ram::1234567890123456:role/ramgate/s", "AssumedRoleId": "1:s"},
            "Credentials": {"AccessKeyId": KEY_ID, "AccessKeySecret": SECRET, "SecurityToken": token, "Expiration": expiration_in(lifetime)},
        });
        (200, answer.to_string())
    })
    .await;
    (fake, tokens)
}

fn oidc_env(token_file: &str) -> [(&str, &str); 3] {
    [
        (
            "ALIBABA_CLOUD_ROLE_ARN",
            "acs:ram::1234567890123456:role/ramgate",
        ),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "acs:ram::1234567890123456:oidc-provider/ack-rrsa",
        ),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file),
    ]
}

/// A cloud backend expecting an STS token, a fake STS handing it out (`lifetime`,
/// `successes` as [`fake_sts`]), an OIDC token file holding `oidc-token-1`, and a ready
/// signing proxy whose `[upstream.credentials] source` is `source`.
struct OidcSetup {
    cloud: CloudBackend,
    _sts: Fake,
    tokens: Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    token_file: PathBuf,
    proxy: support::Proxy,
}

async fn oidc_setup(source: &str, lifetime: Duration, successes: usize) -> OidcSetup {
    const TOKEN: &str = "CAIS/oidc-sts-token";
    let cloud = start_cloud_backend(Some(TOKEN), &["localhost"]);
    let (sts, tokens) = fake_sts(TOKEN, lifetime, successes).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "oidc-token-1").expect("token");
    let token_path = token_file.to_string_lossy().into_owned();
    let credentials = format!("source = \"{source}\"\nsts_endpoint = \"{}\"", sts.url());
    let proxy = start_signing_proxy(
        &cloud,
        &demo_policies(),
        &credentials,
        &oidc_env(&token_path),
    );
    wait_ready(&proxy, Duration::from_secs(10)).await;
    OidcSetup {
        cloud,
        _sts: sts,
        tokens,
        _dir: dir,
        token_file,
        proxy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_credentials_refresh_during_a_run_of_requests_with_the_rotated_token() {
    // Six seconds: refreshed when three remain, usable until about 5.4 s.
    let OidcSetup {
        cloud,
        tokens,
        token_file,
        proxy,
        _sts,
        _dir,
    } = oidc_setup("default", Duration::from_secs(6), usize::MAX).await;
    // RRSA rotates the token file; the next refresh must send the new one.
    std::fs::write(&token_file, "oidc-token-2").expect("rotate the token");
    let started = Instant::now();
    let failed = run_of_requests(proxy.addr, 90, Duration::from_millis(100)).await;
    assert!(
        failed.is_empty(),
        "requests failed while the credential was refreshed: {failed:?}"
    );
    assert!(
        started.elapsed() > Duration::from_secs(8),
        "the run must outlive the first credential"
    );
    let tokens = tokens.lock().expect("tokens").clone();
    assert!(
        tokens.len() >= 2,
        "STS was asked {} times: {tokens:?}",
        tokens.len()
    );
    assert_eq!(tokens[0], "oidc-token-1");
    assert!(
        tokens[1..].iter().all(|t| t == "oidc-token-2"),
        "{tokens:?}"
    );
    let (_, doc) = get_json(proxy.admin, "/v1/status").await;
    assert_eq!(doc["upstream_credentials"]["source"], "oidc", "{doc}");
    assert!(
        doc["upstream_credentials"]["expiration"].is_string(),
        "{doc}"
    );
    let metrics = support::request(proxy.admin, "GET", "/metrics", &[], "")
        .await
        .2;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.lines().any(
            |l| l.starts_with("ramgate_upstream_credential_refreshes_total{")
                && l.contains("source=\"oidc\"")
                && l.contains("result=\"success\"")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    assert_eq!(cloud.stats().await["rejected"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_keeps_failing_ends_in_503s_once_the_credential_expires() {
    let OidcSetup {
        cloud,
        tokens,
        proxy,
        _sts,
        _dir,
        ..
    } = oidc_setup("oidc", Duration::from_secs(4), 1).await;
    let (status, body) = list(proxy.addr).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = cloud.stats().await;
    for _ in 0..5 {
        let (status, body) = list(proxy.addr).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (503, Some("ServiceUnavailable")),
            "{body}"
        );
        assert!(!body.to_string().contains(SECRET));
    }
    let after = cloud.stats().await;
    assert_eq!(
        before, after,
        "nothing may be sent once the credential expired"
    );
    assert_eq!(
        after["rejected"],
        serde_json::json!({}),
        "no stale-signed call: {after}"
    );
    assert!(
        tokens.lock().expect("tokens").len() >= 2,
        "the refresher kept trying"
    );
    let (status, _) = get_json(proxy.admin, "/readyz").await;
    assert_eq!(status, 503);
    let (_, doc) = get_json(proxy.admin, "/v1/status").await;
    assert!(
        doc["upstream_credentials"]["last_refresh_error"]
            .as_str()
            .is_some_and(|e| e.contains("ServiceUnavailable")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ecs_ram_role_comes_from_instance_metadata_with_the_imdsv2_token() {
    let token = "CAIS/ecs-role-token";
    let cloud = start_cloud_backend(Some(token), &["localhost"]);
    const IMDS_TOKEN: &str = "imds-session-token";
    let imds = Fake::start(move |seen| {
        let has_token = seen.header("x-aliyun-ecs-metadata-token") == Some(IMDS_TOKEN);
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", "/latest/api/token")
                if seen
                    .header("x-aliyun-ecs-metadata-token-ttl-seconds")
                    .is_some() =>
            {
                (200, IMDS_TOKEN.into())
            }
            ("GET", _) if !has_token => (401, "unauthorized".into()),
            ("GET", "/latest/meta-data/ram/security-credentials/") => {
                (200, "ramgate-node-role".into())
            }
            ("GET", "/latest/meta-data/ram/security-credentials/ramgate-node-role") => (
                200,
                serde_json::json!({
                    "Code": "Success", "AccessKeyId": KEY_ID, "AccessKeySecret": SECRET,
                    "SecurityToken": token, "Expiration": expiration_in(Duration::from_secs(3600)),
                    "LastUpdated": expiration_in(Duration::ZERO),
                })
                .to_string(),
            ),
            _ => (404, "not found".into()),
        }
    })
    .await;
    let credentials = format!(
        "source = \"ecs_ram_role\"\nimds_endpoint = \"{}\"",
        imds.url()
    );
    let proxy = start_signing_proxy(&cloud, &demo_policies(), &credentials, &[]);
    wait_ready(&proxy, Duration::from_secs(10)).await;
    let (status, body) = list(proxy.addr).await;
    assert_eq!(status, 200, "{body}");
    let seen = imds.seen();
    assert_eq!(
        seen.first().map(|s| (s.method.as_str(), s.path.as_str())),
        Some(("PUT", "/latest/api/token"))
    );
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.header("x-aliyun-ecs-metadata-token") == Some(IMDS_TOKEN)),
        "{seen:?}"
    );
    let (_, doc) = get_json(proxy.admin, "/v1/status").await;
    assert_eq!(
        doc["upstream_credentials"]["source"], "ecs_ram_role",
        "{doc}"
    );
}

// ---- failures ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_refuses_ramgates_key_is_a_502_that_does_not_name_it() {
    let cloud = start_cloud_backend(None, &["localhost"]);
    let env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret"),
    ];
    let proxy = start_signing_proxy(&cloud, &demo_policies(), "source = \"env\"", &env);
    let (status, body) = list(proxy.addr).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (502, Some("BadGateway")),
        "{body}"
    );
    assert!(
        !body.to_string().contains(KEY_ID),
        "the caller must not see ramgate's key: {body}"
    );
    assert!(
        body["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("SignatureDoesNotMatch"),
        "{body}"
    );
    let metrics = support::request(proxy.admin, "GET", "/metrics", &[], "")
        .await
        .2;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("ramgate_upstream_auth_failures_total{code=\"SignatureDoesNotMatch\"} 1")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lookups_are_retried_with_a_fresh_signature_on_throttling() {
    // A plain-HTTP upstream (signing works over http:// too) that throttles the first
    // lookup, then answers; forwarded calls are answered once.
    let calls = AtomicUsize::new(0);
    let upstream = Fake::start(move |seen| {
        let action = seen.header("x-acs-action").unwrap_or_default().to_owned();
        if action == "DescribeContainerGroups" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return (400, r#"{"RequestId":"t","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#.into());
        }
        match action.as_str() {
            "DescribeContainerGroups" => (200, r#"{"RequestId":"r","TotalCount":1,"ContainerGroups":[{"ContainerGroupId":"eci-1","ResourceGroupId":"rg-default","Tags":[]}]}"#.into()),
            _ => (200, r#"{"RequestId":"r","Content":"log"}"#.into()),
        }
    })
    .await;
    let env = env_key();
    let url = upstream.url();
    let proxy = support::start_proxy_with(
        upstream.addr,
        &demo_policies(),
        &support::ProxySettings {
            upstream_url: Some(&url),
            upstream: "signing = \"acs3\"\n",
            tables: "[upstream.credentials]\nsource = \"env\"\n",
            env: &env,
            ..support::ProxySettings::default()
        },
    );
    let (status, _, body) = v3(
        proxy.addr,
        "DescribeContainerLog",
        &[("RegionId", "cn-hangzhou"), ("ContainerGroupId", "eci-1")],
        &[("x-ramgate-principal", ROOT)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = upstream.seen();
    let lookups: Vec<_> = seen
        .iter()
        .filter(|s| s.header("x-acs-action") == Some("DescribeContainerGroups"))
        .collect();
    assert_eq!(
        lookups.len(),
        2,
        "one throttled lookup, one retry: {seen:?}"
    );
    let nonces: Vec<_> = lookups
        .iter()
        .map(|s| s.header("x-acs-signature-nonce"))
        .collect();
    assert!(
        nonces[0].is_some() && nonces[0] != nonces[1],
        "each try is signed afresh: {nonces:?}"
    );
    assert!(seen.iter().all(|s| !s
        .headers
        .keys()
        .any(|k| k.as_str().starts_with("x-ramgate-"))));
    let forwarded = seen
        .iter()
        .filter(|s| s.header("x-acs-action") == Some("DescribeContainerLog"))
        .count();
    assert_eq!(forwarded, 1);
}
