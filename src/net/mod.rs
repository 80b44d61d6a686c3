//! Listener plumbing shared by the proxy, the admin listener and the backend: binding (and
//! announcing the real address), the shutdown signal, and the HTTP accept loop.
//!
//! Every listener announces itself once bound with `listening <name> <addr>`, the real
//! address included, so that `127.0.0.1:0` can be used in tests and the port found by
//! reading the log.

pub mod body;
mod serve;
mod shutdown;
pub mod tls;

pub use serve::{serve, serve_with, Acceptor, ConnInfo, PlainAcceptor, ServeOptions};
pub use shutdown::Shutdown;

use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Binds `addr` and announces the real address as `listening <name> <addr>`.
/// The error names the listener and the address.
pub async fn bind(name: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {addr} for {name}: {e}"))
    })?;
    announce(name, listener.local_addr()?);
    Ok(listener)
}

/// Logs `listening <name> <addr>` (tests and scripts find the real port in that line).
pub fn announce(name: &str, addr: SocketAddr) {
    tracing::info!("listening {name} {addr}");
}

#[cfg(test)]
mod tests;
