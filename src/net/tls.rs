//! TLS for the proxy listener (`[listen.tls]`), and mutual TLS when `client_ca` is set: an
//! [`Acceptor`] that completes the rustls handshake before any HTTP is read, and reports
//! the verified client certificate's identity (URI SAN, else DNS SAN, else CN) as
//! [`TlsMeta::client_id`].
//!
//! With `client_ca`, a client certificate is required and verified against that CA by
//! webpki (chain, validity dates, key usage for client auth); a connection without one, or
//! with one from another CA or expired, fails the handshake and never reaches HTTP, so
//! nothing of it is ever forwarded. Every failed handshake is counted
//! (`ramgate_tls_handshake_failures_total`), timeouts included.
//!
//! Only the `ring` provider is compiled in and it is passed explicitly, so the process-wide
//! default provider never matters.
//!
//! Certificates, key and client CA are re-read when their files change ([`TlsAcceptor::spawn_reload`]):
//! each handshake uses the configuration current when it starts, and a set of files that
//! cannot be used changes nothing.

use super::{Acceptor, Shutdown};
use crate::config;
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// What the handshake established about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsMeta {
    /// The verified client certificate's identity; `None` without a client certificate
    /// (TLS without `client_ca`) or when it names nothing.
    pub client_id: Option<String>,
}

/// Terminates TLS on accepted connections.
#[derive(Clone)]
pub struct TlsAcceptor {
    current: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

impl TlsAcceptor {
    /// Reads the certificate, key and client CA of `[listen.tls]`. The error names the file
    /// and says what is wrong with it (never the key's content).
    pub fn from_config(tls: &config::Tls) -> Result<Self, String> {
        Ok(Self::new(Arc::new(server_config(tls)?)))
    }

    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(ArcSwap::new(config)),
        }
    }

    /// Re-reads `tls`'s files whenever their content changes (checked twice a second, the
    /// policy directory's pace) and swaps the new configuration in; a set that cannot be
    /// used is logged and changes nothing. Stops with `shutdown`.
    pub fn spawn_reload(&self, tls: config::Tls, shutdown: Shutdown) {
        let current = self.current.clone();
        tokio::spawn(async move {
            let mut seen = fingerprint(&tls);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => return,
                }
                let now = fingerprint(&tls);
                if now == seen {
                    continue;
                }
                seen = now;
                match server_config(&tls) {
                    Ok(config) => {
                        current.store(Arc::new(config));
                        tracing::info!("TLS certificates reloaded");
                    }
                    Err(e) => {
                        tracing::error!("TLS reload failed, keeping the previous certificates: {e}")
                    }
                }
            }
        });
    }
}

/// What the certificate, key and client CA files hold now.
fn fingerprint(tls: &config::Tls) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for path in [Some(&tls.cert), Some(&tls.key), tls.client_ca.as_ref()]
        .into_iter()
        .flatten()
    {
        std::fs::read(path).ok()?.hash(&mut h);
    }
    Some(h.finish())
}

/// The rustls configuration of `[listen.tls]`: HTTP/2 and HTTP/1.1 by ALPN, client
/// certificates required and verified when `client_ca` is given.
pub fn server_config(tls: &config::Tls) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&tls.cert, "[listen.tls] cert")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        format!(
            "[listen.tls] key {}: cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            tls.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca, "[listen.tls] client_ca")? {
                roots.add(cert).map_err(|e| {
                    format!(
                        "[listen.tls] client_ca {}: not a usable CA certificate: {e}",
                        ca.display()
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("[listen.tls] client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "[listen.tls] cert {} and key {} do not make a usable pair: {e}",
            tls.cert.display(),
            tls.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate of a PEM file; none is an error.
pub(crate) fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{what} {}: cannot read PEM certificates: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate in the file (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

impl Acceptor for TlsAcceptor {
    type Stream = TlsStream<TcpStream>;
    type Meta = TlsMeta;

    async fn accept(&self, tcp: TcpStream) -> io::Result<(Self::Stream, TlsMeta)> {
        // Counts the failure when dropped armed: on a handshake error, and also when the
        // accept loop gives up on a handshake that takes too long (it drops this future).
        let mut failed = FailureGuard(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        let stream = acceptor.accept(tcp).await?;
        let (_, connection) = stream.get_ref();
        let client_id = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| crate::identity::mtls::client_id(cert.as_ref()));
        failed.0 = false;
        Ok((stream, TlsMeta { client_id }))
    }
}

struct FailureGuard(bool);

impl Drop for FailureGuard {
    fn drop(&mut self) {
        if self.0 {
            crate::ops::metrics::tls_handshake_failed();
        }
    }
}
