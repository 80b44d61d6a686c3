//! Graceful shutdown of the real binary: on SIGTERM readiness turns false (the admin
//! listener keeps answering while the proxy drains), the proxy stops accepting, in-flight
//! requests finish, and the process exits 0; the drain is bounded by `[shutdown] grace_ms`.

mod ops_support;
mod support;

use hyper::StatusCode;
use ops_support::{call, eventually, faults, metrics, sample};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::{request, start_backend, start_proxy};

fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
}

async fn wait_inflight(admin: SocketAddr, n: f64) {
    let seen = eventually(Duration::from_secs(3), move || async move {
        let text = metrics(admin).await;
        (sample(&text, "ramgate_inflight_requests", &[]) == Some(n)).then_some(())
    })
    .await;
    assert!(seen.is_some(), "never {n} requests in flight");
}

/// Done-when 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_0() {
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let mut proxy = start_proxy(
        backend,
        policies.path(),
        "",
        "[shutdown]\ngrace_ms = 10000\n",
    );
    let (addr, admin) = (proxy.addr, proxy.admin);
    faults(backend, "delay_ms=1500").await;

    let slow: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let (status, body) = call(addr, "root", "DescribeContainerGroups", &[]).await;
                (status, body, Instant::now())
            })
        })
        .collect();
    wait_inflight(admin, 4.0).await;

    proxy.process.signal("TERM");
    let signalled = Instant::now();

    // Not ready any more, while the admin listener still answers.
    let draining = eventually(Duration::from_secs(1), move || async move {
        let (code, _, _) = request(admin, "GET", "/readyz", &[], "").await;
        (code == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    assert!(draining.is_some(), "/readyz still ready after SIGTERM");
    let st = ops_support::status(admin).await;
    assert_eq!(st["draining"], true, "{st}");
    // No new connections.
    let closed = eventually(Duration::from_secs(1), move || async move {
        refuses(addr).then_some(())
    })
    .await;
    assert!(closed.is_some(), "the proxy still accepts connections");
    // /healthz and /metrics still answer during the drain.
    let (code, _, _) = request(admin, "GET", "/healthz", &[], "").await;
    assert_eq!(code, StatusCode::OK);
    let text = metrics(admin).await;
    assert_eq!(sample(&text, "ramgate_inflight_requests", &[]), Some(4.0));

    // The requests in flight complete normally.
    for task in slow {
        let (status, body, done) = task.await.expect("a slow call");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["ContainerGroups"].is_array(), "{body}");
        assert!(
            done > signalled,
            "finished before the signal: not a drain test"
        );
    }
    let exit = tokio::task::spawn_blocking(move || {
        let exit = proxy.process.wait_exit(Duration::from_secs(8));
        (exit, proxy)
    })
    .await
    .expect("waiting for the exit");
    let (exit, proxy) = exit;
    let exit = exit.unwrap_or_else(|| {
        panic!(
            "no exit after the drain; stderr:\n{}",
            proxy.process.stderr_text()
        )
    });
    assert!(exit.success(), "{exit:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "{:?}",
        signalled.elapsed()
    );
    // Both listeners are gone.
    assert!(refuses(addr));
    assert!(refuses(admin));
}

/// A request slower than `grace_ms` does not hold the exit.
#[tokio::test]
async fn the_drain_is_bounded_by_grace_ms() {
    let (_backend_process, backend) = start_backend();
    let policies = ops_support::policy_copy();
    let mut proxy = start_proxy(backend, policies.path(), "", "[shutdown]\ngrace_ms = 300\n");
    let (addr, admin) = (proxy.addr, proxy.admin);
    faults(backend, "delay_ms=20000").await;
    // A raw connection: the request is cut at the end of the grace period, which the
    // HTTP helper would report as a failure of the test.
    let slow = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut c = TcpStream::connect(addr).expect("connect");
        let _ = c.set_read_timeout(Some(Duration::from_secs(15)));
        let head = "POST /?Action=DescribeContainerGroups&Version=2018-08-08&RegionId=cn-hangzhou HTTP/1.1\r\n\
                    host: ramgate\r\nx-ramgate-principal: acs:ram::1234567890123456:root\r\ncontent-length: 0\r\n\r\n";
        c.write_all(head.as_bytes()).expect("send");
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        answer
    });
    wait_inflight(admin, 1.0).await;
    proxy.process.signal("TERM");
    let signalled = Instant::now();
    let exit = tokio::task::spawn_blocking(move || {
        let exit = proxy.process.wait_exit(Duration::from_secs(8));
        (exit, proxy)
    })
    .await
    .expect("waiting for the exit");
    let (exit, proxy) = exit;
    let exit = exit.unwrap_or_else(|| panic!("no exit; stderr:\n{}", proxy.process.stderr_text()));
    assert!(exit.success(), "{exit:?}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}");
    let answer = slow.join().expect("the raw client");
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the cut request cannot have succeeded"
    );
}
