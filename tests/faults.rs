//! Fault injection: ramgate in front of a deliberately misbehaving backend.
//!
//! The backend here is a tiny HTTP server written in the test (a tokio `TcpListener` on
//! 127.0.0.1:0 writing raw responses). It answers metadata lookups (what ramgate's cache
//! sends: `DescribeContainerGroups` with `ContainerGroupIds`, as `ramgate-metadata`) and
//! forwarded calls separately, each either properly or in one bad way: connection closed,
//! no answer, a body that trickles, truncated or invalid JSON, HTML, JSON labelled as
//! HTML, a 70 MiB answer, 5xx, a list whose items lack their group or tags, an error that
//! carries items. A backend port with nothing listening covers refused connections.
//!
//! Every case must end in a clear, Alibaba-shaped error — 503 `ServiceUnavailable` when a
//! lookup fails, 502 `BadGateway` / 504 `GatewayTimeout` when a forwarded call does — and
//! never in an allow (nothing is forwarded after a failed lookup) nor in data the caller
//! may not see (an answer that cannot be filtered is not passed through).

mod corpus;
mod support;

use ramgate::request::encoding::parse_urlencoded;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{as_user, request_json, v3};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// ramgate's `[upstream] timeout_ms` in these tests.
const UPSTREAM_TIMEOUT_MS: u64 = 1000;

/// One way for the backend to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A proper answer.
    Fine,
    /// Reads the request and closes the connection without a word.
    Close,
    /// Reads the request and never answers.
    Hang,
    /// Sends the head, then the body one byte every 200 ms.
    SlowBody,
    /// Declares 400 bytes, sends 20, closes.
    Truncated,
    /// A complete answer that is not valid JSON.
    InvalidJson,
    /// 200 with an HTML page.
    Html,
    /// The proper JSON answer, labelled `text/html`.
    JsonAsHtml,
    /// 200 with a 70 MiB JSON document.
    Huge,
    /// 500 with Alibaba's `InternalError`.
    ServerError,
    /// 502 with an HTML page (a load balancer in the way).
    BadGatewayHtml,
    /// 200 with a JSON array instead of an object.
    NotAnObject,
    /// 200 with an empty body.
    Empty,
    /// A list whose items lack their resource group.
    MissingFields,
    /// A list whose items' tags are a string.
    WrongTypes,
    /// An object without the `ContainerGroups` list.
    NoList,
    /// 400 with an error code, and container groups beside it.
    ClientErrorWithItems,
    /// 200 with the filtered list empty, and container groups hidden elsewhere in the
    /// answer (another key, or a list nested in an object).
    HiddenItems,
    /// Each group asked for twice: first in another group with other tags, then as it is.
    TwoAnswers,
}

/// The container groups the fake backend knows: `(id prefix, resource group, tags)`.
fn group_of(id: &str) -> Option<Value> {
    let (group, tags) = if id.starts_with("eci-liumi") {
        (
            "rg-default",
            json!([{"Key": "name", "Value": "liumi"}, {"Key": "env", "Value": "test"}]),
        )
    } else if id.starts_with("eci-testa") {
        ("rg-test-a", json!([]))
    } else if id.starts_with("eci-secret") {
        ("rg-test-b", json!([{"Key": "env", "Value": "prod"}]))
    } else {
        return None;
    };
    Some(
        json!({"ContainerGroupId": id, "ContainerGroupName": id, "ResourceGroupId": group, "Tags": tags, "Status": "Running"}),
    )
}

/// A misbehaving backend: how it answers lookups and forwarded calls, and what was
/// forwarded to it.
#[derive(Clone)]
struct Fake {
    addr: SocketAddr,
    lookups: Arc<Mutex<Answer>>,
    forwards: Arc<Mutex<Answer>>,
    /// The `Action` of every call that was not a metadata lookup.
    forwarded: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake = Fake {
            addr: listener.local_addr().expect("addr"),
            lookups: Arc::new(Mutex::new(Answer::Fine)),
            forwards: Arc::new(Mutex::new(Answer::Fine)),
            forwarded: Arc::new(Mutex::new(Vec::new())),
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(stream));
            }
        });
        fake
    }

    fn set(&self, lookups: Answer, forwards: Answer) {
        *self.lookups.lock().unwrap() = lookups;
        *self.forwards.lock().unwrap() = forwards;
    }

    fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }

    /// One request per connection (answers say `connection: close`).
    async fn serve(self, mut stream: TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let params = parse_urlencoded(query).unwrap_or_default();
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let action = param("Action").unwrap_or_default();
        let lookup = head
            .to_ascii_lowercase()
            .contains("x-ramgate-principal: ramgate-metadata");
        let answer = if lookup {
            *self.lookups.lock().unwrap()
        } else {
            self.forwarded.lock().unwrap().push(action.clone());
            *self.forwards.lock().unwrap()
        };
        let ids: Vec<String> = param("ContainerGroupIds")
            .and_then(|ids| serde_json::from_str(&ids).ok())
            .unwrap_or_default();
        let fine = if action == "DescribeContainerGroups" {
            let items: Vec<Value> = if ids.is_empty() {
                ["eci-testa-1", "eci-liumi-1", "eci-secret-1"]
                    .iter()
                    .filter_map(|id| group_of(id))
                    .collect()
            } else {
                ids.iter().filter_map(|id| group_of(id)).collect()
            };
            json!({"RequestId": "fake", "TotalCount": items.len(), "ContainerGroups": items})
        } else {
            json!({"RequestId": "fake"})
        };
        let secret = group_of("eci-secret-9").expect("a secret group");
        let _ = respond(&mut stream, answer, &fine, &secret).await;
    }
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

async fn respond(
    stream: &mut TcpStream,
    answer: Answer,
    fine: &Value,
    secret: &Value,
) -> std::io::Result<()> {
    const JSON: &str = "application/json;charset=utf-8";
    let fine_bytes = fine.to_string().into_bytes();
    match answer {
        Answer::Fine => write_response(stream, "200 OK", JSON, &fine_bytes).await,
        Answer::Close => Ok(()),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        Answer::SlowBody => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                fine_bytes.len()
            );
            stream.write_all(head.as_bytes()).await?;
            for byte in &fine_bytes {
                stream.write_all(&[*byte]).await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(())
        }
        Answer::Truncated => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {JSON}\r\ncontent-length: 400\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream
                .write_all(&fine_bytes[..20.min(fine_bytes.len())])
                .await?;
            stream.flush().await
        }
        Answer::InvalidJson => {
            let body = br#"{"RequestId":"fake","TotalCount":1,"ContainerGroups":[{"ContainerGroupId":"eci-secret-9","#;
            write_response(stream, "200 OK", JSON, body).await
        }
        Answer::Html => {
            write_response(
                stream,
                "200 OK",
                "text/html",
                b"<html><body>It works!</body></html>",
            )
            .await
        }
        Answer::JsonAsHtml => write_response(stream, "200 OK", "text/html", &fine_bytes).await,
        Answer::Huge => {
            const SIZE: usize = 70 << 20;
            let (open, close) = (br#"{"RequestId":"fake","Pad":""#, br#""}"#);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                open.len() + SIZE + close.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(open).await?;
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..(SIZE >> 20) {
                stream.write_all(&chunk).await?;
            }
            stream.write_all(close).await
        }
        Answer::ServerError => {
            let body = json!({"RequestId": "fake", "Code": "InternalError", "Message": "The request processing has failed due to some unknown error."});
            write_response(
                stream,
                "500 Internal Server Error",
                JSON,
                body.to_string().as_bytes(),
            )
            .await
        }
        Answer::BadGatewayHtml => {
            write_response(
                stream,
                "502 Bad Gateway",
                "text/html",
                b"<html><h1>502 Bad Gateway</h1></html>",
            )
            .await
        }
        Answer::NotAnObject => write_response(stream, "200 OK", JSON, b"[1,2,3]").await,
        Answer::Empty => write_response(stream, "200 OK", JSON, b"").await,
        Answer::MissingFields => {
            let body = json!({"RequestId": "fake", "TotalCount": 1, "ContainerGroups": [{"ContainerGroupId": "eci-secret-9", "Tags": []}]});
            write_response(stream, "200 OK", JSON, body.to_string().as_bytes()).await
        }
        Answer::WrongTypes => {
            let body = json!({"RequestId": "fake", "TotalCount": 1, "ContainerGroups": [{"ContainerGroupId": "eci-secret-9", "ResourceGroupId": "rg-test-a", "Tags": "env=prod"}]});
            write_response(stream, "200 OK", JSON, body.to_string().as_bytes()).await
        }
        Answer::NoList => {
            write_response(
                stream,
                "200 OK",
                JSON,
                br#"{"RequestId":"fake","TotalCount":5}"#,
            )
            .await
        }
        Answer::TwoAnswers => {
            let items = fine["ContainerGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut doubled = Vec::new();
            for item in items {
                let mut other = item.clone();
                other["ResourceGroupId"] = json!("rg-test-b");
                other["Tags"] = json!([{"Key": "env", "Value": "prod"}]);
                doubled.push(other);
                doubled.push(item);
            }
            let body = json!({"RequestId": "fake", "TotalCount": doubled.len(), "ContainerGroups": doubled});
            write_response(stream, "200 OK", JSON, body.to_string().as_bytes()).await
        }
        Answer::HiddenItems => {
            let tag = json!({"ResourceId": "eci-secret-9", "ResourceType": "ALIYUN::ECI::CONTAINERGROUP", "TagKey": "env", "TagValue": "prod"});
            let body = json!({"RequestId": "fake", "TotalCount": 0, "ContainerGroups": [], "TagResources": [],
                "Extra": {"Items": [secret]}, "Result": {"TagResources": [tag]}});
            write_response(stream, "200 OK", JSON, body.to_string().as_bytes()).await
        }
        Answer::ClientErrorWithItems => {
            let body = json!({"RequestId": "fake", "Code": "InvalidParameter", "Message": "bad", "TotalCount": 1, "ContainerGroups": [secret]});
            write_response(stream, "400 Bad Request", JSON, body.to_string().as_bytes()).await
        }
    }
}

/// `ramgate serve` in front of `upstream`, with a short upstream timeout.
fn start_proxy(upstream: SocketAddr, policies: &std::path::Path) -> support::Proxy {
    let settings = support::ProxySettings {
        upstream_timeout_ms: UPSTREAM_TIMEOUT_MS,
        ..support::ProxySettings::default()
    };
    support::start_proxy_with(upstream, policies, &settings)
}

fn who(user: &str) -> String {
    as_user(user)
}

/// Deletes `id` as `user` through the proxy.
async fn delete(proxy: SocketAddr, user: &str, id: &str) -> (u16, Value) {
    let arn = who(user);
    let (status, _, body) = v3(
        proxy,
        "DeleteContainerGroup",
        &[("RegionId", "cn-hangzhou"), ("ContainerGroupId", id)],
        &[("x-ramgate-principal", arn.as_str())],
    )
    .await;
    (status.as_u16(), body)
}

/// Lists `rg-test-a` as `test` (a forwarded, filtered call that needs no lookup).
async fn describe_test_a(proxy: SocketAddr) -> (u16, Value) {
    let arn = who("test");
    let (status, _, body) = v3(
        proxy,
        "DescribeContainerGroups",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ResourceGroupId", "rg-test-a"),
        ],
        &[("x-ramgate-principal", arn.as_str())],
    )
    .await;
    (status.as_u16(), body)
}

/// A clear error: the status, Alibaba's shape, ramgate's `HostId`, the code.
fn assert_error(what: &str, (status, body): &(u16, Value), want: u16, code: &str) {
    assert_eq!(*status, want, "{what}: {body}");
    assert_eq!(body["Code"], code, "{what}: {body}");
    assert_eq!(body["HostId"], "ramgate", "{what}: {body}");
    assert!(
        body["RequestId"].as_str().is_some_and(|r| !r.is_empty()),
        "{what}: {body}"
    );
    assert!(
        body["Message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(
        body.get("ContainerGroups").is_none(),
        "{what}: data in an error: {body}"
    );
}

/// Every bad answer to a lookup (and no answer at all).
const LOOKUP_FAULTS: &[Answer] = &[
    Answer::Close,
    Answer::Hang,
    Answer::SlowBody,
    Answer::Truncated,
    Answer::InvalidJson,
    Answer::Html,
    Answer::JsonAsHtml,
    Answer::Huge,
    Answer::ServerError,
    Answer::BadGatewayHtml,
    Answer::NotAnObject,
    Answer::Empty,
    Answer::MissingFields,
    Answer::WrongTypes,
    Answer::NoList,
    Answer::ClientErrorWithItems,
    Answer::TwoAnswers,
];

#[tokio::test]
async fn a_lookup_that_fails_in_any_way_is_a_503_and_nothing_is_forwarded() {
    let fake = Fake::start().await;
    let policies = corpus::policy_dir("demo");
    let proxy_process = start_proxy(fake.addr, policies.path());
    let proxy = proxy_process.addr;
    for (n, answer) in LOOKUP_FAULTS.iter().enumerate() {
        fake.set(*answer, Answer::Fine);
        // A fresh id each time: nothing is cached yet.
        for user in ["liumi", "root"] {
            let id = format!("eci-liumi-{user}-{n}");
            let started = Instant::now();
            let got = delete(proxy, user, &id).await;
            assert_error(
                &format!("{answer:?} to {user}'s lookup"),
                &got,
                503,
                "ServiceUnavailable",
            );
            assert!(
                started.elapsed() < Duration::from_millis(UPSTREAM_TIMEOUT_MS * 3),
                "{answer:?}: answered after {:?}",
                started.elapsed()
            );
        }
        assert!(
            fake.forwarded().is_empty(),
            "{answer:?}: forwarded {:?}",
            fake.forwarded()
        );
    }
    // Failures are not cached: once the backend behaves, the same ids work at once.
    fake.set(Answer::Fine, Answer::Fine);
    let (status, body) = delete(proxy, "liumi", "eci-liumi-liumi-0").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.forwarded(), vec!["DeleteContainerGroup".to_owned()]);
    // A group that is not liumi's is still denied (the lookup answer decides).
    let (status, body) = delete(proxy, "liumi", "eci-secret-1").await;
    assert_eq!(status, 403, "{body}");
}

/// What each bad answer to a forwarded call becomes.
fn forward_expectation(answer: Answer, got: &(u16, Value)) -> (u16, &'static str) {
    match answer {
        Answer::Hang | Answer::SlowBody => (504, "GatewayTimeout"),
        // Reading 64 MiB may outlast the 1 s deadline on a busy machine: either is clear.
        Answer::Huge if got.0 == 504 => (504, "GatewayTimeout"),
        _ => (502, "BadGateway"),
    }
}

#[tokio::test]
async fn a_forwarded_call_that_fails_in_any_way_is_a_502_or_504() {
    let fake = Fake::start().await;
    let policies = corpus::policy_dir("demo");
    let proxy_process = start_proxy(fake.addr, policies.path());
    let proxy = proxy_process.addr;
    // A filtered list (Describe) and a plain call (Delete, after a proper lookup).
    let list_faults = [
        Answer::Close,
        Answer::Hang,
        Answer::SlowBody,
        Answer::Truncated,
        Answer::InvalidJson,
        Answer::Html,
        Answer::JsonAsHtml,
        Answer::Huge,
        Answer::ServerError,
        Answer::BadGatewayHtml,
        Answer::NotAnObject,
        Answer::Empty,
        Answer::MissingFields,
        Answer::WrongTypes,
        Answer::NoList,
    ];
    for answer in list_faults {
        fake.set(Answer::Fine, answer);
        let got = describe_test_a(proxy).await;
        let (want, code) = forward_expectation(answer, &got);
        assert_error(&format!("{answer:?} to a Describe"), &got, want, code);
    }
    let plain_faults = [
        Answer::Close,
        Answer::Hang,
        Answer::SlowBody,
        Answer::Truncated,
        Answer::InvalidJson,
        Answer::Html,
        Answer::JsonAsHtml,
        Answer::Huge,
        Answer::ServerError,
        Answer::BadGatewayHtml,
        Answer::NotAnObject,
        Answer::Empty,
    ];
    for (n, answer) in plain_faults.into_iter().enumerate() {
        fake.set(Answer::Fine, answer);
        let got = delete(proxy, "liumi", &format!("eci-liumi-{n}")).await;
        let (want, code) = forward_expectation(answer, &got);
        assert_error(&format!("{answer:?} to a Delete"), &got, want, code);
    }
    // A backend error is passed on as an error, and only as an error: the items it
    // carried are not (an unfiltered list must never reach the caller).
    fake.set(Answer::Fine, Answer::ClientErrorWithItems);
    for got in [
        describe_test_a(proxy).await,
        delete(proxy, "liumi", "eci-liumi-x").await,
    ] {
        assert_eq!(got.0, 400, "{}", got.1);
        assert_eq!(got.1["Code"], "InvalidParameter", "{}", got.1);
        assert!(got.1.get("ContainerGroups").is_none(), "{}", got.1);
        assert!(!got.1.to_string().contains("eci-secret"), "{}", got.1);
    }
    // Container groups hidden outside the lists ramgate filters are not passed through.
    fake.set(Answer::Fine, Answer::HiddenItems);
    let got = describe_test_a(proxy).await;
    assert_error(
        "items hidden beside a Describe's list",
        &got,
        502,
        "BadGateway",
    );
    let liumi = who("liumi");
    let (status, _, body) = v3(
        proxy,
        "ListTagResources",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ResourceType", "ContainerGroup"),
        ],
        &[("x-ramgate-principal", liumi.as_str())],
    )
    .await;
    assert_error(
        "items hidden in a ListTagResources answer",
        &(status.as_u16(), body),
        502,
        "BadGateway",
    );
    // The proxy is unharmed: a proper answer is filtered as usual.
    fake.set(Answer::Fine, Answer::Fine);
    let (status, body) = describe_test_a(proxy).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["ContainerGroups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ContainerGroupId"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids, vec!["eci-testa-1"], "{body}");
    assert_eq!(body["TotalCount"], 1, "{body}");
    let (status, body) = delete(proxy, "liumi", "eci-liumi-ok").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_backend_that_refuses_connections_is_a_502_or_503() {
    // An address nobody listens on: the port is held on 127.0.0.1 for the whole test (so
    // no other test's listener can take it), and the proxy is pointed at 127.0.0.3.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port: SocketAddr = ([127, 0, 0, 3], held.local_addr().expect("addr").port()).into();
    let policies = corpus::policy_dir("demo");
    let proxy_process = start_proxy(port, policies.path());
    let proxy = proxy_process.addr;
    let got = describe_test_a(proxy).await;
    assert_error("a refused Describe", &got, 502, "BadGateway");
    for user in ["liumi", "root"] {
        let got = delete(proxy, user, "eci-liumi-1").await;
        assert_error(
            &format!("{user}'s refused lookup"),
            &got,
            503,
            "ServiceUnavailable",
        );
    }
    // Create needs no lookup: its refused forward is a 502, and nothing is remembered.
    let arn = who("root");
    let (status, _, body) = request_json(
        proxy,
        "POST",
        "/?Action=CreateContainerGroup&Version=2018-08-08&RegionId=cn-hangzhou&ContainerGroupName=x&Container.1.Name=a&Container.1.Image=nginx",
        &[("x-ramgate-principal", arn.as_str())],
        "",
    )
    .await;
    assert_error(
        "a refused Create",
        &(status.as_u16(), body),
        502,
        "BadGateway",
    );
}
