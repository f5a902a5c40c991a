//! `GET /tap` on the tap listener (`observe.tap`): a stream of JSON lines, one per judged message
//! that passes the query's filter (`topic`, `rejected_only`, `sample`), ending after `limit` lines
//! or when the bridge stops. A line `{"missed": n}` says the watcher fell behind by `n` records;
//! an empty line every 15 s of silence is a keepalive (a watcher that went away without closing
//! its connection is noticed by the write, and frees its place).
//! See [`super::tap`] for what a line holds.

use super::tap::{Seen, Tap, TapFilter, Watcher};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct TapState {
    tap: Arc<Tap>,
    stop: CancellationToken,
}

/// The query of `GET /tap`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapQuery {
    pub topic: Option<String>,
    pub limit: Option<u64>,
    #[serde(default)]
    pub rejected_only: bool,
    pub sample: Option<f64>,
}

pub fn router(tap: Arc<Tap>, stop: CancellationToken) -> Router {
    Router::new()
        .route("/tap", get(tap_stream))
        .with_state(TapState { tap, stop })
}

/// Serves `/tap` on a pre-bound listener until `shutdown` completes; open streams end then too.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tap: Arc<Tap>,
    stop: CancellationToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(tap, stop))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn tap_stream(State(s): State<TapState>, Query(q): Query<TapQuery>) -> Response {
    if let Some(p) = q.sample {
        if !(p > 0.0 && p <= 1.0) {
            return (StatusCode::BAD_REQUEST, "sample must be in (0, 1]\n").into_response();
        }
    }
    let filter = TapFilter {
        topic: q.topic,
        rejected_only: q.rejected_only,
        sample: q.sample,
    };
    let watcher = match s.tap.watch(filter) {
        Ok(w) => w,
        Err(e) => return (StatusCode::TOO_MANY_REQUESTS, format!("{e}\n")).into_response(),
    };
    let session = Session {
        watcher,
        left: q.limit,
        stop: s.stop,
    };
    let lines = futures::stream::unfold(session, |mut s| async move {
        let line = s.next_line().await?;
        Some((Ok::<Bytes, Infallible>(line), s))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// How long a tap stream may stay silent before it sends an empty line.
const KEEPALIVE: Duration = Duration::from_secs(15);

struct Session {
    watcher: Watcher,
    /// Lines still to send (`None`: until the watcher goes away).
    left: Option<u64>,
    stop: CancellationToken,
}

impl Session {
    async fn next_line(&mut self) -> Option<Bytes> {
        if self.left == Some(0) {
            return None;
        }
        let seen = tokio::select! {
            () = self.stop.cancelled() => return None,
            () = tokio::time::sleep(KEEPALIVE) => return Some(Bytes::from_static(b"\n")),
            seen = self.watcher.next() => seen,
        };
        match seen {
            Seen::Record(line) => {
                if let Some(left) = &mut self.left {
                    *left = left.saturating_sub(1);
                }
                Some(line.json.clone())
            }
            // Not counted against the limit: it is news about the stream, not a record.
            Seen::Missed(n) => Some(Bytes::from(format!("{{\"missed\":{n}}}\n"))),
            Seen::Closed => None,
        }
    }
}
