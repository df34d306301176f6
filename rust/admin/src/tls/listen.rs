//! Accepting connections, through TLS or not: the gRPC port's incoming stream (for tonic's
//! `serve_with_incoming_shutdown`) and the HTTP port's `axum::serve::Listener`.
//!
//! With TLS, one task accepts TCP connections and spawns each handshake with a timeout, so a
//! client that connects and sends nothing (or garbage) never holds up the others; finished
//! handshakes are queued for the server. Only so many handshakes run at once: beyond that, the
//! task stops accepting, and further connections wait in the kernel's accept backlog instead of
//! in our memory.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use super::TlsAcceptor;

/// The keepalive tonic's `TcpIncoming` sets on the plain gRPC port: detects vanished clients.
const GRPC_KEEPALIVE: Duration = Duration::from_secs(60);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 128;

/// A server-side connection, TLS or plain TCP.
#[derive(Debug)]
pub enum MaybeTlsStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(s) => s,
            MaybeTlsStream::Tls(s) => s.get_ref().0,
        }
    }

    /// The ALPN protocol the handshake settled on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            MaybeTlsStream::Plain(_) => None,
            MaybeTlsStream::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }
}

impl Connected for MaybeTlsStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        let tcp = self.tcp();
        TcpConnectInfo {
            local_addr: tcp.local_addr().ok(),
            remote_addr: tcp.peer_addr().ok(),
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Accepted = (MaybeTlsStream, SocketAddr);

/// Bounds on the TLS handshakes of one port, which anyone who can reach it may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// A client gets this long from TCP accept to a finished handshake; then it is closed.
    pub timeout: Duration,
    /// Handshakes in progress at once; more connections are not accepted until one ends.
    pub max_concurrent: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            timeout: Duration::from_secs(10),
            max_concurrent: 256,
        }
    }
}

/// The accept task of a TLS port; aborted (closing the listening socket) when its receiving
/// side is dropped, as tonic and axum do on shutdown.
struct TlsAccepting {
    accepted: mpsc::Receiver<Accepted>,
    local_addr: io::Result<SocketAddr>,
    task: JoinHandle<()>,
}

impl TlsAccepting {
    fn start(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        keepalive: Option<Duration>,
        limits: HandshakeLimits,
    ) -> Self {
        let local_addr = listener.local_addr();
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let task = tokio::spawn(accept_loop(listener, acceptor, keepalive, limits, sender));
        TlsAccepting {
            accepted,
            local_addr,
            task,
        }
    }
}

impl Drop for TlsAccepting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    keepalive: Option<Duration>,
    limits: HandshakeLimits,
    sender: mpsc::Sender<Accepted>,
) {
    let handshakes = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
    loop {
        // A slot before the accept: while all are taken, connections stay in the backlog.
        let permit = tokio::select! {
            () = sender.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // Never closed: the semaphore lives in this function.
                Err(_) => return,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = sender.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin on it.
                    tracing::debug!("TCP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY small responses wait for the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        if let Some(time) = keepalive {
            let keepalive = socket2::TcpKeepalive::new().with_time(time);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        }
        let acceptor = acceptor.inner.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(limits.timeout, acceptor.accept(tcp)).await;
            // The slot is for the handshake only, not for the connection's life.
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = sender
                        .send((MaybeTlsStream::Tls(Box::new(tls)), peer))
                        .await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(
                    %peer,
                    "TLS handshake not done within {:?}",
                    limits.timeout
                ),
            }
        });
    }
}

/// The gRPC port's connections, for `serve_with_incoming_shutdown`.
pub struct GrpcIncoming(GrpcIncomingInner);

enum GrpcIncomingInner {
    Plain(TcpIncoming),
    Tls(TlsAccepting),
}

impl GrpcIncoming {
    /// Plain TCP with TCP_NODELAY and keepalive (as the server had without TLS).
    pub fn plain(listener: TcpListener) -> Self {
        GrpcIncoming(GrpcIncomingInner::Plain(
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(GRPC_KEEPALIVE)),
        ))
    }

    /// TLS handshakes by `acceptor` (whose ALPN should offer `h2`), with the default limits.
    pub fn tls(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self::tls_with_limits(listener, acceptor, HandshakeLimits::default())
    }

    pub fn tls_with_limits(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        limits: HandshakeLimits,
    ) -> Self {
        GrpcIncoming(GrpcIncomingInner::Tls(TlsAccepting::start(
            listener,
            acceptor,
            Some(GRPC_KEEPALIVE),
            limits,
        )))
    }
}

impl Stream for GrpcIncoming {
    type Item = io::Result<MaybeTlsStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            GrpcIncomingInner::Plain(incoming) => Pin::new(incoming)
                .poll_next(cx)
                .map(|next| next.map(|accepted| accepted.map(MaybeTlsStream::Plain))),
            GrpcIncomingInner::Tls(accepting) => accepting
                .accepted
                .poll_recv(cx)
                .map(|next| next.map(|(stream, _)| Ok(stream))),
        }
    }
}

/// The HTTP port's connections, for `axum::serve`.
pub struct HttpListener(HttpListenerInner);

enum HttpListenerInner {
    Plain(TcpListener),
    Tls(TlsAccepting),
}

impl HttpListener {
    pub fn plain(listener: TcpListener) -> Self {
        HttpListener(HttpListenerInner::Plain(listener))
    }

    /// TLS handshakes by `acceptor` (whose ALPN should offer only `http/1.1`), with the
    /// default limits.
    pub fn tls(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self::tls_with_limits(listener, acceptor, HandshakeLimits::default())
    }

    pub fn tls_with_limits(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        limits: HandshakeLimits,
    ) -> Self {
        HttpListener(HttpListenerInner::Tls(TlsAccepting::start(
            listener, acceptor, None, limits,
        )))
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = MaybeTlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (MaybeTlsStream, SocketAddr) {
        match &mut self.0 {
            HttpListenerInner::Plain(listener) => {
                let (tcp, peer) = axum::serve::Listener::accept(listener).await;
                (MaybeTlsStream::Plain(tcp), peer)
            }
            HttpListenerInner::Tls(accepting) => match accepting.accepted.recv().await {
                Some(accepted) => accepted,
                // The accept task ends only when the receiver is gone, which cannot be while
                // `self` exists; should it panic, no connection will ever come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            HttpListenerInner::Plain(listener) => listener.local_addr(),
            HttpListenerInner::Tls(accepting) => match &accepting.local_addr {
                Ok(addr) => Ok(*addr),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            },
        }
    }
}
