//! A keep-alive HTTP/1.1 load generator over TLS with a client certificate, for the `mtls`
//! workload of benches/load.sh (wrk cannot present a client certificate). Like `wrk -t1`:
//! one thread, CONNS connections, each sending the same GET again as soon as the last
//! answer is read, for DURATION seconds; then one line:
//!
//! `requests <n> rps <r> p50_ms <x> p99_ms <y> non2xx <z>`
//!
//! ```text
//! tls_load URL CONNS DURATION_SECS CA_PEM CERT_PEM KEY_PEM
//! ```
//!
//! Loopback only: the URL's host must be 127.0.0.1, and the server certificate is verified
//! against CA_PEM for the name `localhost`.

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    non_2xx: u64,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, conns, secs, ca, cert, key] = args.as_slice() else {
        return Err("usage: tls_load URL CONNS DURATION_SECS CA_PEM CERT_PEM KEY_PEM".into());
    };
    let uri: http::Uri = url.parse()?;
    let addr = match (uri.host(), uri.port_u16()) {
        (Some("127.0.0.1"), Some(port)) => std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        _ => return Err("the URL must be https://127.0.0.1:<port>/...".into()),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key)?)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let conns: usize = conns.parse()?;
    let until = Instant::now() + Duration::from_secs(secs.parse()?);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let tally = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (connector, uri) = (connector.clone(), uri.clone());
            tasks.push(tokio::spawn(async move {
                connection(connector, addr, uri, until).await
            }));
        }
        let mut all = Tally::default();
        for task in tasks {
            let tally = task.await??;
            all.latencies_us.extend(tally.latencies_us);
            all.non_2xx += tally.non_2xx;
        }
        Ok::<_, Error>(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = tally.latencies_us;
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let at = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1));
        latencies.get(at - 1).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "requests {} rps {:.0} p50_ms {:.3} p99_ms {:.3} non2xx {}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        quantile(0.5),
        quantile(0.99),
        tally.non_2xx
    );
    Ok(())
}

/// One keep-alive connection, sending requests one after another until `until`.
async fn connection(
    connector: tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    uri: http::Uri,
    until: Instant,
) -> Result<Tally, Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut tally = Tally::default();
    while Instant::now() < until {
        let request = http::Request::get(path.as_str())
            .header(http::header::HOST, "localhost")
            .body(Empty::<bytes::Bytes>::new())?;
        let sent = Instant::now();
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        tally
            .latencies_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        tally.non_2xx += u64::from(!ok);
    }
    Ok(tally)
}
