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

use super::Acceptor;
use crate::config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::io;
use std::path::Path;
use std::sync::Arc;
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
    inner: tokio_rustls::TlsAcceptor,
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
            inner: tokio_rustls::TlsAcceptor::from(config),
        }
    }
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
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
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
        let stream = self.inner.accept(tcp).await?;
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
