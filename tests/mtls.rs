//! mTLS end to end: the real `ramgate serve` with `[listen.tls]`, certificates made by
//! rcgen for each run. A client certificate from the configured CA whose URI SAN is liumi's
//! `mtls` id is served as liumi; one from another CA, an expired one, or none at all fails
//! the handshake, is counted in `ramgate_tls_handshake_failures_total`, and reaches nothing.

mod corpus;
mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Ramgate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIUMI_SPIFFE: &str = "spiffe://example.org/ns/dev/sa/liumi";
const LIUMI: &str = "acs:ram::1234567890123456:user/liumi";

/// A CA that can sign leaves.
struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    Ca {
        cert: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate and its key.
struct Leaf {
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

fn leaf(
    ca: &Ca,
    cn: Option<&str>,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Leaf {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed leaf");
    Leaf {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    }
}

fn uri(value: &str) -> SanType {
    SanType::URI(value.try_into().expect("ia5 uri"))
}

fn dns(value: &str) -> SanType {
    SanType::DnsName(value.try_into().expect("ia5 dns"))
}

fn client_leaf(ca: &Ca, expired: bool) -> Leaf {
    leaf(
        ca,
        Some("liumi"),
        vec![uri(LIUMI_SPIFFE)],
        ExtendedKeyUsagePurpose::ClientAuth,
        expired,
    )
}

/// Certificates for one run: the server's chain and the clients' CA.
struct Pki {
    server_ca: Ca,
    server: Leaf,
    clients_ca: Ca,
}

fn pki() -> Pki {
    let server_ca = ca("ramgate test server CA");
    let server = leaf(
        &server_ca,
        Some("localhost"),
        vec![dns("localhost")],
        ExtendedKeyUsagePurpose::ServerAuth,
        false,
    );
    Pki {
        server_ca,
        server,
        clients_ca: ca("ramgate test clients CA"),
    }
}

/// A backend with two of liumi's container groups (one she may see, one she may not), and
/// the proxy over TLS in front of it.
struct Setup {
    backend_child: Ramgate,
    proxy_child: Ramgate,
    dir: tempfile::TempDir,
    _policies: tempfile::TempDir,
    backend: SocketAddr,
    proxy: SocketAddr,
    visible: String,
    hidden: String,
}

async fn seed(backend: SocketAddr, name: &str, env: &str) -> String {
    let tags = [("name", "liumi"), ("env", env)];
    support::seed_group(backend, name, "rg-default", &tags).await
}

fn write_config(dir: &Path, backend: SocketAddr, policies: &Path, tls: &str) -> String {
    let config = dir.join("ramgate.toml");
    std::fs::write(
        &config,
        format!(
            "account_id = \"1234567890123456\"\n\
             [listen]\naddr = \"127.0.0.1:0\"\n\
             [listen.tls]\n{tls}\
             [admin]\naddr = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"http://{backend}\"\n\
             [policy]\ndir = {policies:?}\n\
             [log]\ndecisions = \"off\"\n",
            policies = policies.display().to_string(),
        ),
    )
    .expect("write ramgate.toml");
    config.display().to_string()
}

async fn setup(pki: &Pki, mutual: bool) -> Setup {
    let (backend_child, backend) = support::start_backend();
    let visible = seed(backend, "visible", "test").await;
    let hidden = seed(backend, "hidden", "prod").await;
    support::request(backend, "DELETE", "/_backend/requests", &[], "").await;

    let dir = tempfile::tempdir().expect("temp dir");
    // Relative paths: they are read relative to ramgate.toml.
    std::fs::write(dir.path().join("server.pem"), &pki.server.pem).expect("write");
    std::fs::write(dir.path().join("server-key.pem"), &pki.server.key_pem).expect("write");
    std::fs::write(dir.path().join("clients-ca.pem"), &pki.clients_ca.pem).expect("write");
    let mut tls = "cert = \"server.pem\"\nkey = \"server-key.pem\"\n".to_owned();
    if mutual {
        tls.push_str("client_ca = \"clients-ca.pem\"\n");
    }
    let policies = corpus::policy_dir("demo");
    let config = write_config(dir.path(), backend, policies.path(), &tls);
    let proxy_child = Ramgate::start(
        support::command(&["serve", "--config", &config]),
        &["proxy", "admin"],
    );
    let proxy = proxy_child.addr("proxy");
    Setup {
        backend_child,
        proxy_child,
        dir,
        _policies: policies,
        backend,
        proxy,
        visible,
        hidden,
    }
}

fn client_config(server_ca: &Ca, client: Option<&Leaf>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.cert.clone()).expect("server CA");
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.der.clone()], leaf.key())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    })
}

/// One HTTPS exchange; `Err` when the TLS handshake or the exchange fails.
async fn call(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    let exchange = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(connection);
        let mut request = hyper::Request::post(path_and_query).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("exchange: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, json))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

fn describe_both(setup: &Setup) -> String {
    format!(
        "/?{}",
        support::encode(&[
            ("Action", "DescribeContainerGroups"),
            ("Version", "2018-08-08"),
            ("RegionId", "cn-hangzhou"),
            (
                "ContainerGroupIds",
                &format!("[\"{}\",\"{}\"]", setup.visible, setup.hidden)
            ),
        ])
    )
}

fn returned_ids(body: &Value) -> Vec<String> {
    body["ContainerGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["ContainerGroupId"].as_str().map(str::to_owned))
        .collect()
}

async fn forwarded(backend: SocketAddr) -> Vec<Value> {
    let (_, recorded) = support::get_json(backend, "/_backend/requests").await;
    recorded.as_array().cloned().unwrap_or_default()
}

async fn handshake_failures(admin: SocketAddr) -> f64 {
    let (_, metrics) = support::get_json(admin, "/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("ramgate_tls_handshake_failures_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_client_certificate_from_the_ca_is_its_principal() {
    let pki = pki();
    let setup = setup(&pki, true).await;
    let good = client_leaf(&pki.clients_ca, false);
    let (status, body) = call(
        setup.proxy,
        client_config(&pki.server_ca, Some(&good)),
        &describe_both(&setup),
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("the good certificate is refused: {e}"));
    assert_eq!(status, 200, "{body}");
    // liumi's tag policy shows the env=test group and hides the env=prod one: the caller
    // is liumi, not root (who would see both) and not nobody (401).
    assert_eq!(returned_ids(&body), vec![setup.visible.clone()], "{body}");
    let principals: Vec<String> = forwarded(setup.backend)
        .await
        .iter()
        .filter_map(|r| {
            r["headers"]["x-ramgate-principal"]
                .as_str()
                .map(str::to_owned)
        })
        .filter(|p| p != "ramgate-metadata")
        .collect();
    assert!(
        !principals.is_empty() && principals.iter().all(|p| p == LIUMI),
        "{principals:?}"
    );
    drop(setup.backend_child);
}

#[tokio::test]
async fn certificates_from_another_ca_expired_or_missing_never_reach_the_backend() {
    let pki = pki();
    let setup = setup(&pki, true).await;
    let admin = setup.proxy_child.addr("admin");
    let before = handshake_failures(admin).await;
    let other_ca = ca("some other CA");
    let cases = [
        (
            "another CA",
            client_config(&pki.server_ca, Some(&client_leaf(&other_ca, false))),
        ),
        (
            "expired",
            client_config(&pki.server_ca, Some(&client_leaf(&pki.clients_ca, true))),
        ),
        ("no certificate", client_config(&pki.server_ca, None)),
    ];
    for (what, config) in cases {
        let result = call(setup.proxy, config, &describe_both(&setup), &[]).await;
        assert!(result.is_err(), "{what}: answered {result:?}");
    }
    // Plain HTTP on the TLS port gets no HTTP answer either.
    let mut tcp = TcpStream::connect(setup.proxy).await.expect("connect");
    tcp.write_all(
        format!(
            "POST {} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
            describe_both(&setup)
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );

    assert!(
        forwarded(setup.backend).await.is_empty(),
        "something reached the backend"
    );
    // The failures are counted (the server may log the last one just after the client
    // gave up: wait a little).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = handshake_failures(admin).await;
        if now >= before + 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "handshake failures counted: {before} -> {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tls_without_client_ca_serves_https_with_other_identities() {
    let pki = pki();
    let setup = setup(&pki, false).await;
    // No client certificate is asked for; the trusted header (from 127.0.0.1) names liumi.
    let (status, body) = call(
        setup.proxy,
        client_config(&pki.server_ca, None),
        &describe_both(&setup),
        &[("x-ramgate-principal", LIUMI)],
    )
    .await
    .unwrap_or_else(|e| panic!("HTTPS without client certificates: {e}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(returned_ids(&body), vec![setup.visible.clone()], "{body}");
    // And without any identity it is the usual 401.
    let (status, body) = call(
        setup.proxy,
        client_config(&pki.server_ca, None),
        &describe_both(&setup),
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status, body["Code"].as_str()),
        (401, Some("InvalidIdentity")),
        "{body}"
    );
}

#[test]
fn an_unusable_tls_configuration_stops_the_proxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = corpus::policy_dir("demo");
    let config = write_config(
        dir.path(),
        "127.0.0.1:9".parse().expect("addr"),
        policies.path(),
        "cert = \"missing.pem\"\nkey = \"missing-key.pem\"\n",
    );
    let mut child = support::command(&["serve", "--config", &config])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ramgate");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ramgate kept running with an unusable [listen.tls]");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains("missing.pem"),
        "the error names the file: {stderr}"
    );
}

#[test]
fn the_client_id_is_the_uri_san_else_the_dns_san_else_the_cn() {
    use ramgate::identity::mtls::client_id;
    let ca = ca("ids");
    let client = ExtendedKeyUsagePurpose::ClientAuth;
    let both = leaf(
        &ca,
        Some("cn"),
        vec![dns("svc.example.org"), uri(LIUMI_SPIFFE)],
        client.clone(),
        false,
    );
    assert_eq!(client_id(&both.der).as_deref(), Some(LIUMI_SPIFFE));
    let dns_only = leaf(
        &ca,
        Some("cn"),
        vec![dns("svc.example.org")],
        client.clone(),
        false,
    );
    assert_eq!(client_id(&dns_only.der).as_deref(), Some("svc.example.org"));
    let cn_only = leaf(&ca, Some("liumi-cn"), vec![], client.clone(), false);
    assert_eq!(client_id(&cn_only.der).as_deref(), Some("liumi-cn"));
    let nothing = leaf(&ca, None, vec![], client, false);
    assert_eq!(client_id(&nothing.der), None);
    assert_eq!(client_id(b"not a certificate"), None);
}

#[tokio::test]
async fn a_new_client_ca_applies_without_a_restart() {
    let pki = pki();
    let setup = setup(&pki, true).await;
    let old_client = client_config(&pki.server_ca, Some(&client_leaf(&pki.clients_ca, false)));
    let path = describe_both(&setup);
    assert!(call(setup.proxy, old_client.clone(), &path, &[])
        .await
        .is_ok());
    // Rotate the client CA: certificates of the new one work, the old ones stop working.
    let rotated = ca("ramgate test clients CA, rotated");
    let new_client = client_config(&pki.server_ca, Some(&client_leaf(&rotated, false)));
    std::fs::write(setup.dir.path().join("clients-ca.pem"), &rotated.pem).expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok((200, _)) = call(setup.proxy, new_client.clone(), &path, &[]).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated CA never applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        call(setup.proxy, old_client, &path, &[]).await.is_err(),
        "the old CA's certificates are refused now"
    );
    // A broken file changes nothing.
    std::fs::write(setup.dir.path().join("clients-ca.pem"), "not a certificate").expect("write");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _) = call(setup.proxy, new_client, &path, &[])
        .await
        .expect("still served");
    assert_eq!(status, 200);
    drop(setup.backend_child);
}
