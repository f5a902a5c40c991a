//! The local MCM sandbox: a fake User Event API server for the demo, the integration tests and
//! every benchmark.
//!
//! It answers like the real API (status codes, gRPC error envelope, plain-text 404 for unrouted
//! paths), validates bodies with the very rules the bridge applies before sending
//! ([`crate::mcm::validate`]), counts everything (`GET /_sandbox/stats`), optionally records
//! every accepted event to a JSON-lines file, and injects faults (500, 429, latency, outages) that
//! can be changed at runtime (`PUT /_sandbox/faults`).
//!
//! It serves plain HTTP or, like the real API, HTTPS ([`tls`]: certificate files or a generated
//! CA), HTTP/1.1 and HTTP/2 on one port, with an optional HTTP/2 stream limit ([`listen`]), and
//! counts how clients connect ([`traffic`]: connections, HTTP versions, peak concurrency).
//!
//! What it guarantees: no lock shared by all requests and no per-request logging on the event
//! route, so it is not the bottleneck of a benchmark; a stats answer reflects every event whose 200
//! had been sent before the stats request, in the counters and in the record file; the same
//! answers and faults whatever the transport. What it does not do: rate limiting by real quotas,
//! or de-duplicating (duplicates are accepted and counted, as the real API's de-duplication is
//! invisible to clients).
//!
//! In-process use: [`spawn`] → [`SandboxHandle`]. Embedded use: [`serve`] with a pre-bound
//! listener and a shutdown future. Command line: [`SandboxArgs`] / [`run`].

mod admin;
pub mod body;
mod cli;
pub mod config;
mod dedup;
mod delay;
pub mod envelope;
mod event_route;
pub mod faults;
mod handle;
mod listen;
pub mod recorder;
pub mod registry;
mod state;
pub mod stats;
pub mod tls;
pub mod traffic;

pub use cli::{run, SandboxArgs};
pub use config::{Faults, FaultsError, SandboxConfig};
pub use handle::SandboxHandle;
pub use stats::SandboxStats;
pub use tls::{SelfSigned, TlsError, TlsIdentity};

use axum::routing::{get, post, put};
use axum::Router;
use recorder::{RecordError, Recorder};
use state::Shared;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The event route, in axum's path syntax.
const EVENT_ROUTE: &str = "/rmp/event/v1/platforms/{platform_id}/userevents";

/// The event path for `platform_id`, e.g. `/rmp/event/v1/platforms/DEMO_TEST/userevents`.
pub fn events_path(platform_id: &str) -> String {
    format!("/rmp/event/v1/platforms/{platform_id}/userevents")
}

/// Why a sandbox could not start, stop cleanly, or answer a handle call.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid fault settings: {0}")]
    Faults(#[from] FaultsError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the sandbox server task ended abnormally: {0}")]
    Task(String),
    #[error("this sandbox does not record accepted events (start it with a record file)")]
    NotRecording,
    #[error("cannot read record file {path}: {source}")]
    ReadRecord {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Validates the config, builds the transport and starts the recorder.
fn prepare(cfg: &SandboxConfig) -> Result<(Arc<Shared>, listen::Transport), SandboxError> {
    cfg.faults.check()?;
    let tls = match &cfg.tls {
        Some(identity) => Some(tokio_rustls::TlsAcceptor::from(identity.server_config()?)),
        None => None,
    };
    let transport = listen::Transport {
        tls,
        h2_max_streams: cfg.h2_max_streams,
    };
    let recorder = cfg.record.as_deref().map(Recorder::start).transpose()?;
    Ok((Arc::new(Shared::new(cfg, recorder)?), transport))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            EVENT_ROUTE,
            post(event_route::post_event).fallback(event_route::method_not_allowed),
        )
        .route("/_sandbox/stats", get(admin::stats))
        .route("/_sandbox/wait", get(admin::wait))
        .route("/_sandbox/reset", post(admin::reset))
        .route(
            "/_sandbox/faults",
            put(admin::put_faults).get(admin::get_faults),
        )
        .fallback(|| async { envelope::page_not_found() })
        .with_state(shared)
}

/// Serves the sandbox on a pre-bound `listener` until `shutdown` completes, then finishes
/// in-flight requests and flushes the record file.
pub async fn serve(
    listener: TcpListener,
    cfg: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let (shared, transport) = prepare(&cfg)?;
    serve_shared(listener, shared, transport, shutdown).await
}

async fn serve_shared(
    listener: TcpListener,
    shared: Arc<Shared>,
    transport: listen::Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let router = router(Arc::clone(&shared));
    listen::serve(listener, router, transport, Arc::clone(&shared), shutdown).await;
    if let Some(recorder) = &shared.recorder {
        recorder.flush().await?;
    }
    Ok(())
}

/// Starts a sandbox on `127.0.0.1:<free port>` in the current tokio runtime. Dropping the handle
/// stops it; [`SandboxHandle::shutdown`] stops it and waits.
pub async fn spawn(cfg: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let addr = "127.0.0.1:0";
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: addr.into(),
            source,
        })?;
    spawn_on(listener, cfg)
}

/// Like [`spawn`], on a listener the caller bound.
pub fn spawn_on(listener: TcpListener, cfg: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: "listener".into(),
        source,
    })?;
    let (shared, transport) = prepare(&cfg)?;
    let tls = transport.tls.is_some();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // A dropped sender also resolves the receiver, so dropping the handle stops the server.
    let task = tokio::spawn(serve_shared(
        listener,
        shared.clone(),
        transport,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(SandboxHandle::new(
        addr,
        cfg.platform_id,
        tls,
        shared,
        stop,
        task,
    ))
}
