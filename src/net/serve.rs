//! The accept loop: one task per connection, HTTP/1.1 and h2 on the same port, a cap on
//! concurrent connections, a header read timeout, and a bounded graceful drain.
//!
//! The loop is generic over an [`Acceptor`] so that the proxy can put TLS (with client
//! certificates) between the TCP accept and HTTP without this module knowing about it: the
//! acceptor turns a `TcpStream` into any `AsyncRead + AsyncWrite` stream plus whatever it
//! learned on the way (`Meta`, e.g. the peer's certificate), and the service factory gets
//! that along with the addresses.

use super::Shutdown;
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Knobs of one listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Used in log lines only (`proxy`, `admin`, `backend`).
    pub name: String,
    /// Connections served at once; one more is closed as soon as it is accepted, so an
    /// overload sheds connections instead of queueing them without bound.
    pub max_connections: usize,
    /// How long a client may take to send a complete HTTP/1 request head (slowloris guard).
    /// `None` disables it.
    pub header_read_timeout: Option<Duration>,
    /// How long the acceptor (e.g. a TLS handshake) may take.
    pub handshake_timeout: Duration,
    /// After shutdown, how long in-flight connections may take before they are cut.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            name: "server".to_owned(),
            max_connections: 10_000,
            header_read_timeout: Some(Duration::from_secs(10)),
            handshake_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(30),
        }
    }
}

/// What a service factory learns about the connection it will serve.
#[derive(Debug, Clone)]
pub struct ConnInfo<M = ()> {
    /// The TCP peer (before any `X-Forwarded-For` interpretation).
    pub peer: SocketAddr,
    /// The local address the connection arrived on.
    pub local: SocketAddr,
    /// What the acceptor found out (nothing for plain TCP; e.g. a client certificate for TLS).
    pub meta: M,
}

/// Turns an accepted TCP connection into the stream HTTP is spoken over.
pub trait Acceptor: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Meta: Send + 'static;

    fn accept(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = io::Result<(Self::Stream, Self::Meta)>> + Send;
}

/// Plain TCP: the stream is the socket itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainAcceptor;

impl Acceptor for PlainAcceptor {
    type Stream = TcpStream;
    type Meta = ();

    async fn accept(&self, tcp: TcpStream) -> io::Result<(TcpStream, ())> {
        Ok((tcp, ()))
    }
}

/// Serves plain HTTP on `listener` until `shutdown`, then drains (see [`serve_with`]).
/// `make_service` is called once per connection with the peer's address.
pub async fn serve<F, S, B>(
    listener: TcpListener,
    make_service: F,
    opts: ServeOptions,
    shutdown: Shutdown,
) where
    F: Fn(SocketAddr) -> S + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    serve_with(
        listener,
        PlainAcceptor,
        move |conn: ConnInfo| make_service(conn.peer),
        opts,
        shutdown,
    )
    .await
}

/// Serves HTTP/1.1 and h2 over whatever `acceptor` makes of each TCP connection.
///
/// On `shutdown` the listener is closed at once, every connection is asked to finish
/// (idle keep-alive connections close, in-flight requests complete, h2 sends GOAWAY), and
/// whatever is still running after `opts.grace` is aborted. Returns when all are gone.
pub async fn serve_with<A, F, S, B>(
    listener: TcpListener,
    acceptor: A,
    make_service: F,
    opts: ServeOptions,
    shutdown: Shutdown,
) where
    A: Acceptor,
    F: Fn(ConnInfo<A::Meta>) -> S + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let acceptor = Arc::new(acceptor);
    let make_service = Arc::new(make_service);
    let limit = Arc::new(Semaphore::new(
        opts.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let name = opts.name.as_str();

    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(listener = name, "accept failed: {e}");
                        // Typically out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(listener = name, %peer, "max_connections reached; closing the new connection");
                    drop(tcp);
                    continue;
                };
                // Small request/response exchanges: do not let Nagle delay them.
                let _ = tcp.set_nodelay(true);
                let local = match tcp.local_addr() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!(listener = name, %peer, "connection gone before serving: {e}");
                        continue;
                    }
                };
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                let make_service = make_service.clone();
                let builder = builder.clone();
                let handshake_timeout = opts.handshake_timeout;
                let opts_header_read_timeout = opts.header_read_timeout;
                let name = opts.name.clone();
                tasks.spawn(async move {
                    // Held for the connection's whole life: this is what the limit counts.
                    let _permit = permit;
                    let (stream, meta) = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(accepted)) => accepted,
                        Ok(Err(e)) => {
                            tracing::debug!(listener = %name, %peer, "handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(listener = %name, %peer, "handshake timed out");
                            return;
                        }
                    };
                    let service = make_service(ConnInfo { peer, local, meta });
                    // hyper's header_read_timeout only starts once the HTTP/1 parser runs;
                    // before that, the version sniffing reads with no deadline at all.
                    let stream = FirstBytesDeadline::new(stream, opts_header_read_timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(listener = %name, %peer, "connection ended with an error: {e}");
                    }
                });
            }
        }
    }
    drop(listener);

    let open = tasks.len();
    if open > 0 {
        tracing::info!(listener = name, open, "draining connections");
    }
    let drain = async {
        graceful.shutdown().await;
        while tasks.join_next().await.is_some() {}
    };
    if tokio::time::timeout(opts.grace, drain).await.is_err() {
        tracing::warn!(
            listener = name,
            left = tasks.len(),
            "grace period over; closing the remaining connections"
        );
        tasks.shutdown().await;
    }
}

/// The length of the HTTP/2 connection preface: hyper-util's `auto` builder reads up to this
/// many bytes to tell HTTP/1 from h2 before either protocol's own timers run.
const VERSION_SNIFF_BYTES: usize = 24;

/// A stream whose first [`VERSION_SNIFF_BYTES`] bytes must arrive within a deadline.
///
/// hyper-util's `auto` builder reads the first bytes of a connection to choose HTTP/1 or
/// h2 without any timeout, and hyper's `header_read_timeout` only starts after that; a
/// client that sends nothing (or stops inside the h2 preface) would hold its connection,
/// and a slot of `max_connections`, forever. So reads fail with `TimedOut` once the
/// deadline passes before those bytes arrived; after them the stream is a plain
/// pass-through and the protocols' own timers apply (tests/abuse.rs
/// `slow_header_clients_are_cut_off`).
struct FirstBytesDeadline<S> {
    inner: S,
    /// Armed until enough bytes were read; `None` when disabled or done.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    read: usize,
}

impl<S> FirstBytesDeadline<S> {
    fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            read: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytesDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.read += buf.filled().len() - before;
                if this.read >= VERSION_SNIFF_BYTES {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request within the header read timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytesDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
