//! Tests of the accept loop against raw TCP clients, so that what is observed is exactly
//! what goes over the wire (closed connections, timeouts, drained requests).

use super::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A server whose every answer is the peer address, after `delay`.
async fn start(opts: ServeOptions, delay: Duration) -> (SocketAddr, Shutdown, JoinHandle<()>) {
    let listener = bind("test", "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(serve(
        listener,
        move |peer: SocketAddr| {
            service_fn(move |_req| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    peer.to_string(),
                ))))
            })
        },
        opts,
        shutdown.clone(),
    ));
    (addr, shutdown, handle)
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n";

/// Reads one response with a content-length; `None` if the connection closes first.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return Some(text[head_end + 4..head_end + 4 + len].to_owned());
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn passes_the_peer_address_to_the_service() {
    let (addr, shutdown, handle) = start(ServeOptions::default(), Duration::ZERO).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    let body = read_response(&mut c).await.expect("a response");
    assert_eq!(body, c.local_addr().unwrap().to_string());
    shutdown.trigger();
    handle.await.unwrap();
}

#[tokio::test]
async fn closes_connections_over_the_limit_at_once() {
    let opts = ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    };
    let (addr, shutdown, handle) = start(opts, Duration::ZERO).await;

    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(GET).await.unwrap();
    assert!(read_response(&mut first).await.is_some());

    // `first` is kept alive, so the only slot is taken.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let _ = second.write_all(GET).await;
    let answer = tokio::time::timeout(Duration::from_secs(2), read_response(&mut second))
        .await
        .expect("closed promptly, not left hanging");
    assert_eq!(answer, None);

    // Once the first goes away, the slot is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut third = TcpStream::connect(addr).await.unwrap();
        let _ = third.write_all(GET).await;
        if read_response(&mut third).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off() {
    let opts = ServeOptions {
        header_read_timeout: Some(Duration::from_millis(100)),
        ..ServeOptions::default()
    };
    let (addr, shutdown, handle) = start(opts, Duration::ZERO).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection still open long after the header timeout"
    );
    shutdown.trigger();
    handle.await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (addr, shutdown, handle) = start(ServeOptions::default(), Duration::from_millis(300)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.trigger();
    let body = read_response(&mut c).await;
    assert_eq!(body, Some(c.local_addr().unwrap().to_string()));
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("serve returns once drained")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn the_drain_is_bounded_by_the_grace_period() {
    let opts = ServeOptions {
        grace: Duration::from_millis(100),
        ..ServeOptions::default()
    };
    let (addr, shutdown, handle) = start(opts, Duration::from_secs(30)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("serve gives up after the grace period")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(read_response(&mut c).await, None);
}
