//! Helpers for integration tests: run the real `ramgate` binary, find the addresses it
//! listens on from its `listening <name> <addr>` lines, and talk HTTP to it.
//!
//! Test helpers panic with a message on failure: that is how a test fails.

#![allow(dead_code)]

pub mod cloud;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child may take to announce its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP exchange may take before the test fails instead of hanging.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `ramgate <args>`, ready for `.env(..)` / `.current_dir(..)` before [`Ramgate::start`].
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ramgate"));
    cmd.args(args);
    cmd
}

/// Runs `ramgate` with `args` to completion: its exit code, and stdout then stderr.
pub fn run_to_end(args: &[&str]) -> (i32, String) {
    let out = command(args).output().expect("run ramgate");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A running `ramgate` child process. Killed on drop.
pub struct Ramgate {
    child: Child,
    addrs: HashMap<String, SocketAddr>,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

/// Starts `ramgate backend --listen 127.0.0.1:0`; returns it and the backend's address.
pub fn start_backend() -> (Ramgate, SocketAddr) {
    let child = Ramgate::start(
        command(&["backend", "--listen", "127.0.0.1:0"]),
        &["backend"],
    );
    let addr = child.addr("backend");
    (child, addr)
}

/// A running `ramgate serve` with its temporary configuration.
pub struct Proxy {
    pub process: Ramgate,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// Holds `ramgate.toml` (and whatever the test puts beside it) alive.
    pub dir: tempfile::TempDir,
}

/// Starts `ramgate serve` in front of `backend`, with `policy_dir`. `top` is TOML placed
/// before the tables (e.g. `mode = "dry-run"`); `tables` is appended (e.g. an
/// `[identity]` or `[metadata]` table; `[listen]`, `[admin]`, `[upstream]`, `[policy]` and
/// `[log]` are written here).
pub fn start_proxy(
    backend: SocketAddr,
    policy_dir: &std::path::Path,
    top: &str,
    tables: &str,
) -> Proxy {
    start_proxy_with(
        backend,
        policy_dir,
        &ProxySettings {
            top,
            tables,
            ..ProxySettings::default()
        },
    )
}

/// What [`start_proxy_with`] writes into the tables it owns, besides the addresses.
pub struct ProxySettings<'a> {
    /// TOML before the tables.
    pub top: &'a str,
    /// Extra keys of `[listen]` (e.g. `max_connections = 4`).
    pub listen: &'a str,
    /// `[upstream] timeout_ms`.
    pub upstream_timeout_ms: u64,
    /// Tables appended after the ones written here.
    pub tables: &'a str,
    /// `[log] decisions`: `off`, `stdout` or a file path.
    pub decisions: &'a str,
    /// `[upstream] url`; `None`: `http://<backend>`.
    pub upstream_url: Option<&'a str>,
    /// Extra keys of `[upstream]` (e.g. `signing = "acs3"`).
    pub upstream: &'a str,
    /// Environment of the child; every inherited `ALIBABA_CLOUD_*` variable is removed
    /// first, so the credential chain sees only what the test sets.
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for ProxySettings<'_> {
    fn default() -> Self {
        Self {
            top: "",
            listen: "",
            upstream_timeout_ms: 5000,
            tables: "",
            decisions: "off",
            upstream_url: None,
            upstream: "",
            env: &[],
        }
    }
}

/// [`start_proxy`] with keys for the `[listen]` and `[upstream]` tables it writes.
pub fn start_proxy_with(
    backend: SocketAddr,
    policy_dir: &std::path::Path,
    settings: &ProxySettings<'_>,
) -> Proxy {
    let ProxySettings {
        top,
        listen,
        upstream_timeout_ms,
        tables,
        decisions,
        upstream_url,
        upstream,
        env,
    } = settings;
    let url = upstream_url.map_or_else(|| format!("http://{backend}"), str::to_owned);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let config = format!(
        "account_id = \"1234567890123456\"\n{top}\n\
         [listen]\naddr = \"127.0.0.1:0\"\n{listen}\n[admin]\naddr = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{url}\"\ntimeout_ms = {upstream_timeout_ms}\n{upstream}\n\
         [policy]\ndir = \"{}\"\n[log]\ndecisions = \"{decisions}\"\n{tables}\n",
        policy_dir.display()
    );
    let path = dir.path().join("ramgate.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let mut cmd = command(&["serve", "--config", &path.to_string_lossy()]);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("ALIBABA_CLOUD_")) {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    let process = Ramgate::start(cmd, &["proxy", "admin"]);
    let (addr, admin) = (process.addr("proxy"), process.addr("admin"));
    Proxy {
        process,
        addr,
        admin,
        dir,
    }
}

/// The identity header of a demo-account principal (`root` or a user name).
pub fn as_user(name: &str) -> String {
    if name == "root" {
        "acs:ram::1234567890123456:root".to_owned()
    } else {
        format!("acs:ram::1234567890123456:user/{name}")
    }
}

impl Ramgate {
    /// Spawns `cmd` and waits until it has logged `listening <name> <addr>` for every name.
    pub fn start(mut cmd: Command, names: &[&str]) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            drain(pipe, "stderr", stderr.clone(), Some(tx));
        }
        if let Some(pipe) = child.stdout.take() {
            drain(pipe, "stdout", stdout.clone(), None);
        }
        let mut this = Self {
            child,
            addrs: HashMap::new(),
            stderr,
            stdout,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !names.iter().all(|n| this.addrs.contains_key(*n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((name, addr)) => {
                    this.addrs.insert(name, addr);
                }
                Err(_) => panic!(
                    "ramgate did not announce {names:?} (got {:?}); stderr:\n{}",
                    this.addrs,
                    this.stderr_text()
                ),
            }
        }
        this
    }

    /// The address announced for `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.addrs))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// Waits until a stdout line satisfies `pred`; returns it.
    pub fn wait_for_stdout(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for_line(&self.stdout, timeout, pred)
    }

    /// Waits until a stderr line satisfies `pred`; returns it.
    pub fn wait_for_stderr(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for_line(&self.stderr, timeout, pred)
    }

    /// Sends a signal (e.g. `"TERM"`, `"HUP"`) with the system's `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }
}

impl Drop for Ramgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` line by line on a thread until it closes: keeps every line, echoes it (so
/// a failing test shows the child's log), and reports `listening <name> <addr>` lines.
fn drain(
    pipe: impl Read + Send + 'static,
    label: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
    announce: Option<mpsc::Sender<(String, SocketAddr)>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            eprintln!("[ramgate {label}] {line}");
            if let (Some(tx), Some(found)) = (&announce, parse_listening(&line)) {
                let _ = tx.send(found);
            }
            if let Ok(mut all) = lines.lock() {
                all.push(line);
            }
        }
    });
}

fn wait_for_line(
    lines: &Mutex<Vec<String>>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(line) = lines.lock().ok()?.iter().find(|l| pred(l)) {
            return Some(line.clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `... listening <name> <addr> ...` → `(name, addr)`.
pub fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    let (_, rest) = line.split_once("listening ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let addr = words.next()?.trim_matches(|c: char| c == '"' || c == ',');
    Some((name.to_owned(), addr.parse().ok()?))
}

/// Removes terminal colour sequences (`ESC [ ... m`) a log formatter may add.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- HTTP ----

/// `a=1&b=2`, RFC 3986-encoded, in the order given.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    ramgate::request::encoding::encode_pairs(pairs.iter().copied())
}

/// Any request; the body comes back raw.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    try_request(addr, method, path_and_query, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`request`], for a peer that may be down (a backend being restarted): a failed exchange
/// is an error, not a panic.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let method = Method::from_bytes(method.as_bytes())
        .unwrap_or_else(|e| panic!("bad method {method:?}: {e}"));
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path_and_query}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Full::new(body.into()))
        .unwrap_or_else(|e| panic!("cannot build a request for {path_and_query:?}: {e}"));
    // A client per call: each `#[tokio::test]` has its own runtime, and pooled
    // connections must not outlive the runtime that drives them.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client
            .request(req)
            .await
            .map_err(|e| format!("request to {addr} failed: {e:?}"))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {addr} failed: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {HTTP_TIMEOUT:?}"))?
}

/// Like [`request`], the body parsed as JSON (a non-JSON body comes back as a string).
pub async fn request_json(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, bytes) = request(addr, method, path_and_query, headers, body).await;
    (status, headers, to_json(&bytes))
}

/// The V3 shape: `POST /?<query>` with an empty body.
pub async fn post_query(
    addr: SocketAddr,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    request_json(
        addr,
        "POST",
        &format!("/?{}", encode(query)),
        headers,
        Bytes::new(),
    )
    .await
}

/// A V3 call without signature: action in `x-acs-action`, parameters in the query.
pub async fn v3(
    addr: SocketAddr,
    action: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut all = vec![("x-acs-action", action), ("x-acs-version", "2018-08-08")];
    all.extend_from_slice(headers);
    post_query(addr, query, &all).await
}

/// The RPC shape: `POST /` with the parameters in a form body.
pub async fn post_form(
    addr: SocketAddr,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request_json(addr, "POST", "/", &all, encode(form)).await
}

/// `GET path` answered with JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = request_json(addr, "GET", path, &[], Bytes::new()).await;
    (status, body)
}

fn to_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// splitmix64: a small, seedable generator for tests that draw many random choices (they
/// print the seed, so a failing run can be replayed).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True once in `in_n` draws.
    pub fn chance(&mut self, in_n: usize) -> bool {
        self.below(in_n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The requests `ramgate backend` recorded, oldest first.
pub async fn recorded(backend: SocketAddr) -> Vec<Value> {
    get_json(backend, "/_backend/requests")
        .await
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Forgets the backend's recorded requests.
pub async fn clear_recorded(backend: SocketAddr) {
    request_json(backend, "DELETE", "/_backend/requests", &[], "").await;
}

/// Creates a container group directly on the backend (no authorization there), with one
/// container named `app`; returns its id. The one way tests seed container groups.
pub async fn seed_group(
    backend: SocketAddr,
    name: &str,
    group: &str,
    tags: &[(&str, &str)],
) -> String {
    seed_group_with(backend, name, group, tags, "app").await
}

/// [`seed_group`] with its one container named `container`.
pub async fn seed_group_with(
    backend: SocketAddr,
    name: &str,
    group: &str,
    tags: &[(&str, &str)],
    container: &str,
) -> String {
    let mut p: Vec<(String, String)> = vec![
        ("RegionId".into(), "cn-hangzhou".into()),
        ("ContainerGroupName".into(), name.into()),
        ("ResourceGroupId".into(), group.into()),
        ("Container.1.Name".into(), container.into()),
        ("Container.1.Image".into(), "nginx:1.27".into()),
    ];
    for (i, (k, v)) in tags.iter().enumerate() {
        p.push((format!("Tag.{}.Key", i + 1), (*k).to_owned()));
        p.push((format!("Tag.{}.Value", i + 1), (*v).to_owned()));
    }
    let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, _, body) = v3(backend, "CreateContainerGroup", &pairs, &[]).await;
    assert!(status.is_success(), "seeding {name}: {status} {body}");
    body["ContainerGroupId"]
        .as_str()
        .unwrap_or_else(|| panic!("seeding {name}: no id in {body}"))
        .to_owned()
}

// ---- Signed requests ----

/// An RPC v1 (HMAC-SHA1) signed `GET /?...` query for `params` (which name the `Action`),
/// as `aliyun-python-sdk-core` sends it, with a fresh nonce and the current time.
pub fn signed_v1_query(params: &[(&str, &str)], key_id: &str, secret: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let nonce = uuid::Uuid::new_v4().to_string();
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_else(|e| panic!("formatting the time: {e}"));
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    pairs.extend([
        ("AccessKeyId", key_id),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce.as_str()),
        ("SignatureVersion", "1.0"),
        ("Timestamp", timestamp.as_str()),
        ("Version", "2018-08-08"),
    ]);
    pairs.sort_unstable();
    let canonical = encode(&pairs);
    let string_to_sign = format!(
        "GET&%2F&{}",
        ramgate::request::encoding::rfc3986_encode(&canonical)
    );
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|e| panic!("HMAC key: {e}"));
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{canonical}&{}", encode(&[("Signature", &signature)]))
}

// ---- Redis ----

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// Whether `redis-server` can be run. Without it the cluster tests skip, except on CI
/// (`CI=true`, where scripts/test.sh installs it), where they fail.
pub fn redis_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed (scripts/test.sh installs it)"
        );
        eprintln!("skipped: redis-server is not installed (scripts/test.sh installs it)");
    }
    found
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut this = Self {
            child: None,
            port,
            dir,
        };
        this.restart();
        this
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is persisted), waiting until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it answers `PING`.
    fn answers(&self) -> bool {
        use std::io::Write;
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
