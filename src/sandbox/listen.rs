//! The sandbox's accept loop: plain HTTP or TLS, HTTP/1.1 and HTTP/2 on one port, an optional
//! HTTP/2 stream limit, and a graceful stop.
//!
//! Why not `axum::serve` (which the sandbox used before): it can neither terminate TLS nor set
//! HTTP/2's `SETTINGS_MAX_CONCURRENT_STREAMS`, and tests need both to stand in for a cloud front
//! end. Underneath it is the same hyper-util server axum uses (version detected from the first
//! bytes, so HTTP/2 works with ALPN `h2` over TLS and with prior knowledge over plain TCP), and
//! the same router: validation and fault injection do not depend on how the client connected.
//!
//! Each connection runs in its own task; the TLS handshake happens there, under
//! [`HANDSHAKE_TIMEOUT`], so a slow or failing client never holds up the accept loop. On
//! shutdown the listener closes, every connection is asked to finish gracefully (HTTP/2 GOAWAY,
//! HTTP/1.1 close after the current answer) and the loop returns when the last one has.

use super::state::Shared;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the sandbox talks to its clients.
#[derive(Clone, Default)]
pub struct Transport {
    /// `None`: plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`; `None` keeps hyper's default (200).
    pub h2_max_streams: Option<u32>,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains the connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    transport: Transport,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if let Some(streams) = transport.h2_max_streams {
        builder.http2().max_concurrent_streams(streams);
    }
    let builder = Arc::new(builder);
    // Dropped to tell every connection to finish; each connection holds a receiver, so
    // `closed()` on the sender is "every connection has ended".
    let (stop, stopped) = watch::channel(());
    let (done, all_done) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        shared.traffic.connection();
        let connection = Connection {
            builder: Arc::clone(&builder),
            router: router.clone(),
            shared: Arc::clone(&shared),
            stop: stopped.clone(),
            _done: all_done.clone(),
        };
        tokio::spawn(connection.run(tcp, transport.tls.clone()));
    }
    drop(listener);
    drop(stop);
    drop((stopped, all_done));
    done.closed().await;
}

/// What a connection task needs.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    shared: Arc<Shared>,
    /// Changes (closes) when the sandbox stops.
    stop: watch::Receiver<()>,
    /// Held until this connection has ended.
    _done: watch::Receiver<()>,
}

impl Connection {
    async fn run(self, tcp: TcpStream, tls: Option<TlsAcceptor>) {
        // Answers are small and written whole; do not let Nagle hold one back.
        let _ = tcp.set_nodelay(true);
        match tls {
            None => self.serve(TokioIo::new(tcp)).await,
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => self.serve(TokioIo::new(stream)).await,
                    // The client refused our certificate, spoke plain HTTP, or stalled.
                    Ok(Err(_)) | Err(_) => self.shared.traffic.tls_handshake_failed(),
                }
            }
        }
    }

    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(self.router);
        let mut conn = pin!(self.builder.serve_connection(io, service));
        tokio::select! {
            // A failed connection (reset, protocol error) just ends; clients see their error.
            _ = conn.as_mut() => return,
            _ = self.stop.changed() => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// Per-connection accept errors (the peer gave up) are skipped; others (out of file descriptors)
/// get a pause so the loop does not spin, as hyper's and axum's loops do.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "sandbox: accept failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
