//! The client side of TLS for the upstream (SPEC §8) and for the credential services (STS,
//! instance metadata): rustls with the `ring` provider only, as the listener, through
//! hyper-rustls. The server certificate is verified against the operating system's trust
//! store (rustls-native-certs) plus `[upstream] ca_file`; SNI and the host-name check use
//! the URL's host. A certificate that does not verify fails the handshake, so not a byte
//! of the request is sent.
//!
//! `http://` URLs keep working (the in-memory backend, the instance metadata service):
//! the connector speaks TLS only for `https://`.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The pooled client every upstream and credential call goes through.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The trust anchors: the system's, plus every certificate of `ca_file`. A system store
/// that cannot be read is only a warning when `ca_file` is given (a private CA is then all
/// that is trusted); with neither, no `https://` server could be verified, which is an
/// error.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!("reading the system's trusted certificates: {error}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        for cert in crate::net::tls::read_certs(path, "[upstream] ca_file")? {
            roots.add(cert).map_err(|e| {
                format!(
                    "[upstream] ca_file {}: not a usable CA certificate: {e}",
                    path.display()
                )
            })?;
        }
    } else if added == 0 {
        tracing::warn!("no trusted certificate found in the system store: https:// upstreams cannot be verified; install ca-certificates or set [upstream] ca_file");
    }
    Ok(roots)
}

/// The rustls client configuration over `roots` (ALPN is set by [`client`]).
pub fn client_config(roots: RootCertStore) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A keep-alive pooled client for `http://` and `https://` URLs, connecting within
/// `connect_timeout`.
pub fn client(config: ClientConfig, connect_timeout: Duration) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    // hyper-rustls's connector refuses plain http unless asked; the scheme of each
    // request decides.
    http.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// Whether a client error is a failed certificate verification (or another TLS failure):
/// the rustls error sits somewhere in the chain, inside an `io::Error`.
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if inner.is::<rustls::Error>() {
                return true;
            }
        }
        next = e.source();
    }
    false
}
