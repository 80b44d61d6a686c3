//! Helpers for tests of ramgate in front of "Alibaba Cloud" (SPEC §8): certificates made by
//! rcgen for each run, `ramgate backend` in cloud mode (HTTPS, one AccessKey), a signing
//! `ramgate serve` in front of it, and what the backend's cloud listener counted.

use super::{get_json, start_proxy_with, Proxy, ProxySettings, Ramgate};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// ramgate's own AccessKey in these tests (the backend's one accepted key).
pub const KEY_ID: &str = "LTAIramgateUpstreamTest";
pub const SECRET: &str = "upstream-test-secret";

/// A CA that signs server certificates, its certificate written to `ca.pem`.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

pub fn test_ca(name: &str) -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    TestCa {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

impl TestCa {
    /// A server certificate for `names` (DNS names or IP addresses) and its key, as PEM.
    pub fn server(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        (cert.pem(), key.serialize_pem())
    }
}

/// `ramgate backend` with a cloud listener, and the files it was started with.
pub struct CloudBackend {
    pub process: Ramgate,
    /// The plain listener: hooks (`/_backend/...`) and unsigned calls, for seeding.
    pub hooks: SocketAddr,
    /// The cloud listener: HTTPS, calls signed by [`KEY_ID`] only.
    pub cloud: SocketAddr,
    /// The CA that signed the cloud listener's certificate (for `ca_file`).
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
}

impl CloudBackend {
    /// `https://localhost:<port>`: the certificate names `localhost` and `127.0.0.1`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.cloud.port())
    }

    /// What the cloud listener counted: `verified`, `rejected` {code: n},
    /// `with_ramgate_header`.
    pub async fn stats(&self) -> Value {
        get_json(self.hooks, "/_backend/state").await.1["cloud"].clone()
    }
}

/// Starts the backend in cloud mode accepting [`KEY_ID`] (with `token`, when given), its
/// certificate for `names` signed by a fresh test CA.
pub fn start_cloud_backend(token: Option<&str>, names: &[&str]) -> CloudBackend {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = test_ca("ramgate test cloud CA");
    let (cert, key) = ca.server(names);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    };
    let ca_file = write("ca.pem", &ca.pem);
    let cert = write("server.pem", &cert);
    let key = write("server-key.pem", &key);
    let mut cmd = super::command(&[
        "backend",
        "--listen",
        "127.0.0.1:0",
        "--cloud-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert.to_string_lossy(),
        "--tls-key",
        &key.to_string_lossy(),
        "--access-key-id",
        KEY_ID,
        "--access-key-secret-env",
        "RAMGATE_TEST_CLOUD_SECRET",
    ]);
    cmd.env("RAMGATE_TEST_CLOUD_SECRET", SECRET);
    if let Some(token) = token {
        cmd.args(["--security-token-env", "RAMGATE_TEST_CLOUD_TOKEN"]);
        cmd.env("RAMGATE_TEST_CLOUD_TOKEN", token);
    }
    let process = Ramgate::start(cmd, &["backend", "cloud"]);
    CloudBackend {
        hooks: process.addr("backend"),
        cloud: process.addr("cloud"),
        process,
        ca_file,
        dir,
    }
}

/// `ramgate serve` with `signing = "acs3"` in front of `cloud`, trusting its CA;
/// `credentials` is the `[upstream.credentials]` table's body, `env` the child's
/// `ALIBABA_CLOUD_*` variables.
pub fn start_signing_proxy(
    cloud: &CloudBackend,
    policy_dir: &Path,
    credentials: &str,
    env: &[(&str, &str)],
) -> Proxy {
    let url = cloud.url();
    let upstream = format!(
        "signing = \"acs3\"\nca_file = \"{}\"\n",
        cloud.ca_file.display()
    );
    let tables = format!("[upstream.credentials]\n{credentials}\n");
    start_proxy_with(
        cloud.hooks,
        policy_dir,
        &ProxySettings {
            upstream_url: Some(&url),
            upstream: &upstream,
            tables: &tables,
            env,
            ..ProxySettings::default()
        },
    )
}

/// The environment of a long-term AccessKey: the cloud backend's.
pub fn env_key() -> [(&'static str, &'static str); 2] {
    [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
    ]
}

/// Waits until the proxy's `/readyz` answers 200 (with a credential to sign with).
pub async fn wait_ready(proxy: &Proxy, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, _) = get_json(proxy.admin, "/readyz").await;
        if status.is_success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not become ready within {timeout:?}; stderr:\n{}",
            proxy.process.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request a [`Fake`] received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Answer = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

/// A fake service on 127.0.0.1 (STS, instance metadata, an upstream) that records every
/// request and answers with `answer`'s status and JSON body. Stops when dropped.
pub struct Fake {
    pub addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    pub async fn start(answer: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> Fake {
        use http_body_util::{BodyExt, Full};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a fake");
        let addr = listener.local_addr().expect("fake address");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let answer: std::sync::Arc<Answer> = std::sync::Arc::new(answer);
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (answer, recorded) = (answer.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (answer, recorded) = (answer.clone(), recorded.clone());
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                let seen = Seen {
                                    method: parts.method.to_string(),
                                    path: parts
                                        .uri
                                        .path_and_query()
                                        .map_or("/", |p| p.as_str())
                                        .to_owned(),
                                    headers: parts.headers,
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                };
                                let (status, text) = answer(&seen);
                                recorded.lock().expect("fake log").push(seen);
                                let mut response =
                                    hyper::Response::new(Full::new(bytes::Bytes::from(text)));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).expect("status");
                                response.headers_mut().insert(
                                    hyper::header::CONTENT_TYPE,
                                    hyper::header::HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Fake { addr, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("fake log").clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The time `from_now` ahead, as STS and IMDS write `Expiration`.
pub fn expiration_in(from_now: Duration) -> String {
    let at = std::time::SystemTime::now() + from_now;
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    ramgate::upstream::credentials::rfc3339(secs as i64)
}
