//! A pool of HTTP/2 connections to one origin that honours each server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` and opens as many connections as the requests in flight need.
//!
//! hyper's pooled client keeps one HTTP/2 connection per host, so the bridge's concurrency was
//! capped at the server's stream limit (measured behind nginx allowing 16 streams with a 50 ms
//! sink: 311 events/s = 16 / 50 ms, against 4,949/s over HTTP/1.1). This pool asks [`Book`] (the
//! pure bookkeeping, tested on its own) where each request goes, and does the I/O: connects (TCP,
//! TLS with ALPN `h2` through the same connector as the HTTP/1.1 client, or HTTP/2 with prior
//! knowledge on plain http), drives each connection in its own task, and tells the book what the
//! server advertised and when a connection closed.
//!
//! How the limit is learnt: connections are built with an initial send-stream limit no server can
//! advertise ([`UNSETTLED`]); the server's first SETTINGS frame always replaces it (with its
//! limit, or "unlimited" when it names none), so the connection's task sees the change right after
//! the frame was read and reports it. Connects run in their own task: a request that gives up
//! (timeout) does not waste the connection, which joins the pool for the next request.
//!
//! Not handled here: timeouts (the caller bounds the whole exchange), retries of requests the
//! server received (the delivery sender decides). A request the connection never sent (it was
//! closing) is tried on another connection, as hyper's pooled client does.

use super::h2_book::{Book, Choice};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::{Request, Response, Uri};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Sender = http2::SendRequest<Full<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The initial send-stream limit of a new connection: a value a server cannot send (SETTINGS
/// values are 32-bit), so "still this value" means "the server's SETTINGS have not arrived".
const UNSETTLED: usize = usize::MAX - 1;

/// How often a request the connection never sent is tried on another one.
const UNSENT_TRIES: usize = 3;

/// Why a request over the pool failed. The message names the step; the sources say why.
#[derive(Debug, thiserror::Error)]
pub enum H2Error {
    #[error("connect error")]
    Connect(#[source] BoxError),
    #[error(
        "the server did not agree to HTTP/2 in the TLS handshake (ALPN); set mcm.http_version to auto or http1"
    )]
    NotNegotiated,
    #[error("HTTP/2 handshake failed")]
    Handshake(#[source] hyper::Error),
    #[error("the connect this request waited for failed")]
    SharedConnect,
    #[error("request failed")]
    Request(#[source] hyper::Error),
    #[error("the connect task ended without an answer")]
    ConnectTaskGone,
}

/// Timings of the pool's connections.
#[derive(Debug, Clone, Copy)]
pub struct H2Settings {
    /// Most connections the pool opens (the bridge's `max_in_flight`: each carries at least one).
    pub max_connections: usize,
    /// Interval of the keep-alive PINGs while requests are open: a dead connection is closed
    /// instead of timing out every request given to it.
    pub keep_alive_interval: Duration,
    pub keep_alive_timeout: Duration,
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct H2Pool {
    shared: Arc<Shared>,
}

struct Shared {
    book: Mutex<Book<Sender>>,
    /// Wakes requests waiting for a connect, a SETTINGS frame or a free slot.
    changed: Notify,
    connector: HttpsConnector<HttpConnector>,
    builder: http2::Builder<TokioExecutor>,
    /// Scheme and authority to connect to.
    origin: Uri,
}

/// A stream slot on one connection: given back when dropped (after the response body was read).
pub struct Lease {
    shared: Arc<Shared>,
    id: u64,
    sender: Sender,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if lock(&self.shared.book).release(self.id) {
            self.shared.changed.notify_waiters();
        }
    }
}

impl H2Pool {
    /// A pool for `origin` (any URI with scheme and authority). `connector` must offer only `h2`
    /// in ALPN for https; plain http speaks HTTP/2 with prior knowledge.
    pub fn new(
        origin: Uri,
        connector: HttpsConnector<HttpConnector>,
        settings: H2Settings,
    ) -> H2Pool {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_max_send_streams(UNSETTLED)
            .keep_alive_interval(settings.keep_alive_interval)
            .keep_alive_timeout(settings.keep_alive_timeout);
        H2Pool {
            shared: Arc::new(Shared {
                book: Mutex::new(Book::new(settings.max_connections)),
                changed: Notify::new(),
                connector,
                builder,
                origin,
            }),
        }
    }

    /// Open connections (for tests and logs).
    pub fn connections(&self) -> usize {
        lock(&self.shared.book).connections()
    }

    /// Sends `request` on a connection with a free stream. Keep the [`Lease`] until the response
    /// body has been read: the stream is the server's to count until then.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease), H2Error> {
        let mut tries = 0;
        loop {
            let mut lease = self.acquire().await?;
            match lease.sender.try_send_request(request).await {
                Ok(response) => return Ok((response, lease)),
                Err(mut e) => {
                    tries += 1;
                    match e.take_message() {
                        // Never sent: the connection is closing. Another one may take it.
                        Some(unsent) if tries < UNSENT_TRIES => {
                            lock(&self.shared.book).remove(lease.id);
                            request = unsent;
                        }
                        _ => return Err(H2Error::Request(e.into_error())),
                    }
                }
            }
        }
    }

    async fn acquire(&self) -> Result<Lease, H2Error> {
        loop {
            // Registered before the book is read, so a change between the read and the wait
            // still wakes this request.
            let mut changed = pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            let choice = lock(&self.shared.book).choose();
            match choice {
                Choice::Use { id, handle } => {
                    return Ok(Lease {
                        shared: Arc::clone(&self.shared),
                        id,
                        sender: handle,
                    })
                }
                Choice::Connect => return self.connect().await,
                Choice::Wait { failures } => {
                    let waiting = Waiting(&self.shared);
                    changed.await;
                    drop(waiting);
                    if lock(&self.shared.book).failures() != failures {
                        return Err(H2Error::SharedConnect);
                    }
                }
            }
        }
    }

    /// Opens a connection in a task of its own (it outlives a request that gives up) and returns
    /// the lease the book gave its opener.
    async fn connect(&self) -> Result<Lease, H2Error> {
        let shared = Arc::clone(&self.shared);
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let booked = ConnectBooked(Some(Arc::clone(&shared)));
            let result = match establish(&shared).await {
                Ok((sender, connection)) => {
                    let id = lock(&shared.book).connected(sender.clone());
                    booked.disarm();
                    tokio::spawn(drive(Arc::clone(&shared), id, connection));
                    tracing::debug!(
                        connections = lock(&shared.book).connections(),
                        "http/2 connection opened"
                    );
                    Ok(Lease {
                        shared: Arc::clone(&shared),
                        id,
                        sender,
                    })
                }
                Err(e) => {
                    drop(booked); // books the failure and wakes the waiters
                    Err(e)
                }
            };
            shared.changed.notify_waiters();
            // If the request gave up meanwhile, its lease is dropped here and the slot returns.
            let _ = tx.send(result);
        });
        rx.await.unwrap_or(Err(H2Error::ConnectTaskGone))
    }
}

/// TCP (+ TLS) and the HTTP/2 handshake.
async fn establish(
    shared: &Shared,
) -> Result<(Sender, http2::Connection<Io, Full<Bytes>, TokioExecutor>), H2Error> {
    use tower_service::Service;
    let mut connector = shared.connector.clone();
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(H2Error::Connect)?;
    let io = connector
        .call(shared.origin.clone())
        .await
        .map_err(H2Error::Connect)?;
    if matches!(io, MaybeHttpsStream::Https(_)) && !io.connected().is_negotiated_h2() {
        return Err(H2Error::NotNegotiated);
    }
    shared
        .builder
        .handshake(io)
        .await
        .map_err(H2Error::Handshake)
}

/// Runs one connection until it closes, reporting the server's stream limit whenever it changes.
async fn drive(
    shared: Arc<Shared>,
    id: u64,
    connection: http2::Connection<Io, Full<Bytes>, TokioExecutor>,
) {
    let mut connection = pin!(connection);
    let mut seen = UNSETTLED;
    let result = std::future::poll_fn(|cx| {
        let polled = connection.as_mut().poll(cx);
        let limit = connection.current_max_send_streams();
        if limit != seen {
            seen = limit;
            tracing::debug!(limit, "http/2 server stream limit");
            lock(&shared.book).set_limit(id, limit);
            shared.changed.notify_waiters();
        }
        polled
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "http/2 connection ended");
    }
    lock(&shared.book).remove(id);
    shared.changed.notify_waiters();
}

/// A waiter's place in the book, given back however the wait ends (also when the request is
/// dropped by its timeout).
struct Waiting<'a>(&'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.0.book).stop_waiting();
    }
}

/// A connect the book counts as in progress: reported as failed unless disarmed, so even a
/// panicking connect cannot leave the book waiting for it forever.
struct ConnectBooked(Option<Arc<Shared>>);

impl ConnectBooked {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ConnectBooked {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            lock(&shared.book).connect_failed();
            shared.changed.notify_waiters();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The book is plain counters changed in single calls; a panic elsewhere while holding the
    // lock cannot leave it half-updated, so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
