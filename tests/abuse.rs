//! Connection-level abuse of the proxy listener, over raw TCP: request smuggling shapes
//! (Content-Length with Transfer-Encoding, conflicting Content-Lengths), oversized heads,
//! slow-header clients, connection floods over `[listen] max_connections`, invalid UTF-8
//! and percent-encoding, methods and paths ramgate does not serve.
//!
//! Each attempt must be refused (a 4xx, or the connection closed), and nothing may reach
//! the backend: every test ends by reading the in-memory backend's request log
//! (`GET /_backend/requests`), and the smuggling test also checks that the container group
//! a smuggled request tried to delete still exists.

mod corpus;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    as_user, clear_recorded, get_json, recorded, start_backend, start_proxy_with, v3, Proxy,
    ProxySettings, Ramgate,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DESCRIBE: &str = "DescribeContainerGroups";

/// What came back on a raw connection.
#[derive(Debug)]
struct Exchange {
    /// Every byte the proxy wrote before closing (or before `wait` ran out).
    bytes: Vec<u8>,
    /// The proxy closed (or reset) the connection.
    closed: bool,
}

impl Exchange {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status codes of every HTTP/1.1 response in the stream, in order.
    fn statuses(&self) -> Vec<u16> {
        self.text()
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, m)| self.text()[i + m.len()..].get(..3)?.parse().ok())
            .collect()
    }
}

/// Writes `bytes` on a new connection to `addr`, then reads until the proxy closes the
/// connection, or until it has answered and then stayed quiet for [`LINGER`] (long enough
/// for a second, smuggled request's answer to follow), or until `wait` passes.
async fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Exchange {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // A refused write (the proxy already closed) is an answer too.
    let _ = stream.write_all(bytes).await;
    read_until_closed(&mut stream, wait).await
}

/// How long a connection that has answered may stay quiet before the exchange is over.
const LINGER: Duration = Duration::from_millis(500);

async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Exchange {
    let deadline = tokio::time::Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let until = if answered(&bytes) {
            deadline.min(tokio::time::Instant::now() + LINGER)
        } else {
            deadline
        };
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Exchange {
                    bytes,
                    closed: true,
                }
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => {
                return Exchange {
                    bytes,
                    closed: false,
                }
            }
        }
    }
}

/// True once `bytes` hold at least one complete response (head and `content-length` body).
fn answered(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

/// A backend, and a proxy in front of it with `listen` in its `[listen]` table.
struct Setup {
    _backend: Ramgate,
    backend: SocketAddr,
    _proxy: Proxy,
    addr: SocketAddr,
    admin: SocketAddr,
    _policies: tempfile::TempDir,
}

fn setup(listen: &str) -> Setup {
    let (backend_process, backend) = start_backend();
    let policies = corpus::policy_dir("demo");
    let settings = ProxySettings {
        listen,
        ..ProxySettings::default()
    };
    let proxy = start_proxy_with(backend, policies.path(), &settings);
    Setup {
        _backend: backend_process,
        backend,
        addr: proxy.addr,
        admin: proxy.admin,
        _proxy: proxy,
        _policies: policies,
    }
}

async fn assert_nothing_reached(backend: SocketAddr, what: &str) {
    let got = recorded(backend).await;
    assert!(
        got.is_empty(),
        "{what}: requests reached the backend: {got:#?}"
    );
}

async fn group_exists(backend: SocketAddr, id: &str) -> bool {
    let (_, state) = get_json(backend, "/_backend/state").await;
    state["groups"]
        .as_array()
        .is_some_and(|groups| groups.iter().any(|g| g.to_string().contains(id)))
}

/// A request head, with `extra` header lines (each ending in `\r\n`).
fn head(method: &str, target: &str, version: &str, extra: &str) -> String {
    format!("{method} {target} {version}\r\nHost: ramgate\r\n{extra}\r\n")
}

#[tokio::test]
async fn smuggling_attempts_are_refused_and_nothing_reaches_the_backend() {
    let s = setup("");
    let (backend, proxy) = (s.backend, &s);
    let victim = support::seed_group(backend, "victim", "rg-test-b", &[]).await;
    clear_recorded(backend).await;
    let root = as_user("root");
    // What a front proxy would not see: a second request, claiming the account's identity,
    // hidden in the first one's body.
    let smuggled = format!(
        "POST /?Action=DeleteContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou&ContainerGroupId={victim} HTTP/1.1\r\n\
         Host: ramgate\r\nx-ramgate-principal: {root}\r\nContent-Length: 0\r\n\r\n"
    );
    // The outer request would be forwarded if it were served: root listing a group.
    let outer = format!(
        "/?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou&ResourceGroupId=rg-test-b"
    );
    let id_line = format!("x-ramgate-principal: {root}\r\n");
    let chunked_then_smuggled = format!("0\r\n\r\n{smuggled}");
    let n = chunked_then_smuggled.len();
    let cases: Vec<(&str, String)> = vec![
        (
            "Content-Length then Transfer-Encoding",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "Transfer-Encoding then Content-Length",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "Content-Length 0 with Transfer-Encoding",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "two different Content-Lengths",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Content-Length: 0\r\nContent-Length: {}\r\n", smuggled.len()))
                + &smuggled,
        ),
        (
            "a Content-Length list",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Content-Length: 0, {}\r\n", smuggled.len()))
                + &smuggled,
        ),
        (
            "Transfer-Encoding not ending in chunked",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "an obfuscated Transfer-Encoding",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding: xchunked\r\nContent-Length: 0\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "whitespace before the colon",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding : chunked\r\nContent-Length: 0\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            head("POST", &outer, "HTTP/1.0", &format!("{id_line}Transfer-Encoding: chunked\r\n"))
                + &chunked_then_smuggled,
        ),
        (
            "a chunked body",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding: chunked\r\nConnection: close\r\n"))
                + "0\r\n\r\n",
        ),
        (
            "an invalid chunk size",
            head("POST", &outer, "HTTP/1.1", &format!("{id_line}Transfer-Encoding: chunked\r\n"))
                + "zz\r\n\r\n"
                + &smuggled,
        ),
        (
            "a bare LF line ending before the smuggled request",
            format!("POST {outer} HTTP/1.1\nHost: ramgate\n{id_line}Content-Length: 0\nTransfer-Encoding: chunked\n\n")
                + &chunked_then_smuggled,
        ),
    ];
    for (what, bytes) in cases {
        let got = exchange(proxy.addr, bytes.as_bytes(), Duration::from_secs(5)).await;
        let statuses = got.statuses();
        assert!(
            got.closed,
            "{what}: the connection stays open after an ambiguous request: {}",
            got.text()
        );
        assert!(
            statuses.len() <= 1,
            "{what}: the smuggled request was answered: {}",
            got.text()
        );
        assert!(
            statuses.iter().all(|s| (400..500).contains(s)),
            "{what}: not refused: {}",
            got.text()
        );
        assert_nothing_reached(backend, what).await;
    }
    assert!(
        group_exists(backend, &victim).await,
        "the smuggled delete went through"
    );
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let s = setup("");
    let (backend, proxy) = (s.backend, &s);
    clear_recorded(backend).await;
    let root = as_user("root");
    let target = format!("/?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou");
    let many: String = (0..500).map(|i| format!("x-filler-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "a 1 MiB header",
            head(
                "POST",
                &target,
                "HTTP/1.1",
                &format!(
                    "x-ramgate-principal: {root}\r\nx-big: {}\r\n",
                    "a".repeat(1 << 20)
                ),
            ),
        ),
        (
            "500 headers",
            head(
                "POST",
                &target,
                "HTTP/1.1",
                &format!("x-ramgate-principal: {root}\r\n{many}"),
            ),
        ),
        (
            "a 1 MiB request target",
            head(
                "POST",
                &format!("{target}&ContainerGroupName={}", "a".repeat(1 << 20)),
                "HTTP/1.1",
                &format!("x-ramgate-principal: {root}\r\n"),
            ),
        ),
    ];
    for (what, bytes) in cases {
        let got = exchange(proxy.addr, bytes.as_bytes(), Duration::from_secs(5)).await;
        let statuses = got.statuses();
        assert!(
            statuses.iter().all(|s| (400..500).contains(s)) && got.closed,
            "{what}: {statuses:?} {}",
            got.text().chars().take(300).collect::<String>()
        );
        assert_nothing_reached(backend, what).await;
    }
    // A body over max_body_bytes is refused, whether declared or streamed.
    let big = 2 << 20;
    let got = exchange(
        proxy.addr,
        head("POST", "/", "HTTP/1.1", &format!("x-ramgate-principal: {root}\r\ncontent-type: application/x-www-form-urlencoded\r\nContent-Length: {big}\r\n")).as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(got.statuses(), vec![413], "{}", got.text());
    assert_nothing_reached(backend, "a declared oversized body").await;
}

#[tokio::test]
async fn slow_header_clients_are_cut_off() {
    let s = setup("header_read_timeout_ms = 500");
    let (backend, proxy) = (s.backend, &s);
    clear_recorded(backend).await;
    let root = as_user("root");
    let partial = format!(
        "POST /?Action={DESCRIBE}&Version=2018-08-08 HTTP/1.1\r\nHost: ramgate\r\nx-ramgate-principal: {root}\r\n"
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a client that sends nothing", Vec::new()),
        ("a client that stops after one byte", b"P".to_vec()),
        ("a client that stops mid-head", partial.clone().into_bytes()),
        (
            "a client that stops inside the HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let started = Instant::now();
        let got = exchange(proxy.addr, &bytes, Duration::from_secs(10)).await;
        assert!(
            got.closed,
            "{what}: still open after {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: closed only after {:?}",
            started.elapsed()
        );
        assert!(
            got.statuses().iter().all(|s| (400..500).contains(s)),
            "{what}: {}",
            got.text()
        );
    }
    // A trickle: one byte every 100 ms never completes the head within 500 ms.
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let mut cut = false;
    for byte in partial.as_bytes() {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    if !cut {
        let got = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        cut = got.closed;
    }
    assert!(cut, "a trickling client was never cut off");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_nothing_reached(backend, "slow clients").await;
    // The listener still serves a normal client.
    let (status, _, body) = v3(
        proxy.addr,
        DESCRIBE,
        &[("RegionId", "cn-hangzhou")],
        &[("x-ramgate-principal", root.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn connections_over_max_connections_are_closed() {
    let s = setup("max_connections = 4");
    let (backend, proxy) = (s.backend, &s);
    let root = as_user("root");
    let request = head(
        "POST",
        &format!("/?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou"),
        "HTTP/1.1",
        &format!("x-ramgate-principal: {root}\r\nContent-Length: 0\r\n"),
    );
    // Four keep-alive connections, each served once and held open.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let got = read_until_closed(&mut stream, Duration::from_millis(1500)).await;
        assert_eq!(got.statuses(), vec![200], "{}", got.text());
        assert!(
            !got.closed,
            "a keep-alive connection under the limit was closed"
        );
        held.push(stream);
    }
    clear_recorded(backend).await;
    // A flood over the limit: every one is closed without an answer.
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(tokio::spawn({
            let (addr, request) = (proxy.addr, request.clone());
            async move { exchange(addr, request.as_bytes(), Duration::from_secs(3)).await }
        }));
    }
    for one in flood {
        let got = one.await.expect("join");
        assert!(
            got.closed && got.statuses().is_empty(),
            "a connection over the limit was served: {}",
            got.text()
        );
    }
    assert_nothing_reached(backend, "connections over the limit").await;
    // The held connections still work, and closing one frees a slot.
    let mut first = held.remove(0);
    first.write_all(request.as_bytes()).await.expect("write");
    let got = read_until_closed(&mut first, Duration::from_millis(1500)).await;
    assert_eq!(got.statuses(), vec![200], "{}", got.text());
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = exchange(proxy.addr, request.as_bytes(), Duration::from_millis(1500)).await;
        if got.statuses() == vec![200] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a freed slot was never reused: {}",
            got.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    let (status, _) = get_json(proxy.admin, "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn invalid_utf8_and_percent_encoding_are_refused() {
    let s = setup("");
    let (backend, proxy) = (s.backend, &s);
    clear_recorded(backend).await;
    let root = as_user("root");
    let base = format!("/?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou");
    // `Connection: close` ends each exchange with the answer (no keep-alive to wait out).
    let id = format!("x-ramgate-principal: {root}\r\nConnection: close\r\n");
    let form = "application/x-www-form-urlencoded";
    let with_body = |content_type: &str, extra: &str, body: &[u8]| -> Vec<u8> {
        let mut bytes = head(
            "POST",
            "/",
            "HTTP/1.1",
            &format!(
                "{id}content-type: {content_type}\r\n{extra}Content-Length: {}\r\n",
                body.len()
            ),
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    let query = |q: &str| -> Vec<u8> {
        head(
            "POST",
            &format!("{base}&{q}"),
            "HTTP/1.1",
            &format!("{id}Content-Length: 0\r\n"),
        )
        .into_bytes()
    };
    let mut raw_target = b"POST /?Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec();
    raw_target.extend_from_slice(id.as_bytes());
    raw_target.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let mut raw_identity = head(
        "POST",
        &base,
        "HTTP/1.1",
        "Content-Length: 0\r\nConnection: close\r\n",
    )
    .into_bytes();
    raw_identity.truncate(raw_identity.len() - 2);
    raw_identity
        .extend_from_slice(b"x-ramgate-principal: acs:ram::1234567890123456:user/t\xe9st\r\n\r\n");
    let rpc = b"Action=DescribeContainerGroups&Version=2018-08-08";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "an encoded invalid UTF-8 value",
            query("ContainerGroupName=%FF%FE"),
        ),
        (
            "an overlong UTF-8 encoding",
            query("ContainerGroupName=%C0%AF"),
        ),
        (
            "an encoded lone surrogate",
            query("ContainerGroupName=%ED%A0%80"),
        ),
        (
            "a truncated UTF-8 sequence",
            query("ContainerGroupName=%E2%82"),
        ),
        ("a stray percent", query("ContainerGroupName=50%")),
        ("a short escape", query("ContainerGroupName=%4")),
        ("a non-hex escape", query("ContainerGroupName=%G1")),
        ("an invalid UTF-8 name", query("%FF=1")),
        ("a NUL in a name", query("Region%00Id=x")),
        ("a control character in a name", query("Region%0AId=x")),
        (
            "an encoded reserved name in another case",
            query("%72esourceGroupId=rg-test-a"),
        ),
        ("raw non-ASCII bytes in the request target", raw_target),
        (
            "a form body that is not UTF-8",
            with_body(
                form,
                "",
                b"Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=\xff",
            ),
        ),
        (
            "an encoded invalid UTF-8 form value",
            with_body(
                form,
                "",
                b"Action=DescribeContainerGroups&Version=2018-08-08&ContainerGroupName=%C3%28",
            ),
        ),
        (
            "a form body in another charset",
            with_body(&format!("{form}; charset=iso-8859-1"), "", rpc),
        ),
        (
            "a body of another type",
            with_body(
                "application/json",
                "",
                b"{\"Action\":\"DescribeContainerGroups\"}",
            ),
        ),
        (
            "a compressed form body",
            with_body(form, "content-encoding: gzip\r\n", b"\x1f\x8b\x08\x00"),
        ),
        ("an identity header that is not ASCII", raw_identity),
    ];
    for (what, bytes) in cases {
        let got = exchange(proxy.addr, &bytes, Duration::from_secs(5)).await;
        let statuses = got.statuses();
        assert!(
            !statuses.is_empty() || got.closed,
            "{what}: no answer: {}",
            got.text()
        );
        assert!(
            statuses.iter().all(|s| (400..500).contains(s)),
            "{what}: not refused: {}",
            got.text()
        );
        assert_nothing_reached(backend, what).await;
    }
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let s = setup("");
    let (backend, proxy) = (s.backend, &s);
    clear_recorded(backend).await;
    let root = as_user("root");
    // `Connection: close` ends each exchange with the answer (no keep-alive to wait out).
    let id = format!("x-ramgate-principal: {root}\r\nContent-Length: 0\r\nConnection: close\r\n");
    let q = format!("?Action={DESCRIBE}&Version=2018-08-08&RegionId=cn-hangzhou");
    let paths = [
        format!("/api{q}"),
        format!("//{q}"),
        format!("/%2F{q}"),
        format!("/.{q}"),
        format!("/./{q}"),
        format!("/..{q}"),
        format!("/../{q}"),
        format!("/;{q}"),
        format!("/%3F{q}"),
        format!("/%20{q}"),
        format!("/index.html{q}"),
        format!("/_backend/requests{q}"),
        format!("/metrics{q}"),
        format!("http://ramgate/api{q}"),
        "*".to_owned(),
    ];
    for path in &paths {
        for method in ["POST", "GET", "OPTIONS"] {
            let got = exchange(
                proxy.addr,
                head(method, path, "HTTP/1.1", &id).as_bytes(),
                Duration::from_secs(5),
            )
            .await;
            let statuses = got.statuses();
            assert!(
                statuses.len() == 1 && (400..500).contains(&statuses[0]),
                "{method} {path}: {}",
                got.text()
            );
        }
    }
    for method in [
        "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND",
    ] {
        let got = exchange(
            proxy.addr,
            head(method, &format!("/{q}"), "HTTP/1.1", &id).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        let statuses = got.statuses();
        assert!(
            statuses.len() == 1 && (400..500).contains(&statuses[0]),
            "{method}: {}",
            got.text()
        );
    }
    let got = exchange(
        proxy.addr,
        format!("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n{id}\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        got.statuses().iter().all(|s| (400..500).contains(s)),
        "CONNECT: {}",
        got.text()
    );
    assert_nothing_reached(backend, "other paths and methods").await;
}
