//! An in-memory, Confluent-compatible Schema Registry for tests and the demo: the parts of the
//! REST contract a producer's serializer and the bridge's decoder use.
//!
//! Routes: `POST /subjects/{s}/versions` (register), `POST /subjects/{s}` (lookup),
//! `GET /schemas/ids/{id}[/schema]`, `GET /schemas/types`, `GET /subjects`,
//! `GET /subjects/{s}/versions`, `GET /subjects/{s}/versions/{v|latest}[/schema]`, `GET /config`
//! and `GET /config/{s}`; `GET /associations/…` (which confluent-kafka-python 2.16's default
//! subject name strategy asks before falling back to `<topic>-value`) answers 404, as a registry
//! without the associations API does. Answers, error codes and content types follow Confluent's API reference
//! ([`routes`], [`wire`]); ids, versions and de-duplication follow its server ([`store`]). Tests can require
//! HTTP basic auth ([`RegistryConfig::basic_auth`]), take the registry down at runtime
//! ([`RegistryHandle::set_unavailable`]: every request answers 503, error code 50003) and count
//! requests per route ([`RegistryHandle::hits`]) — counted before auth and outage, so every
//! attempt shows.
//!
//! What it does not do: compatibility checking (every new schema is accepted; `GET /config` says
//! `BACKWARD`, Confluent's default, but nothing enforces it), deleting, modes, contexts,
//! `normalize`, `format=resolved`, persistence, or TLS. A stored schema is answered as its first
//! registration spelled it, where Confluent answers Avro in its own canonical text.

mod gate;
mod routes;
mod store;
mod wire;

pub use gate::RouteKind;
pub use wire::{Reference, RegistryError, SchemaType, VersionSpec};

use super::SandboxError;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How a registry starts.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `Some((user, password))`: every request must carry these as HTTP basic auth, else 401.
    /// `None` (the default): no auth.
    pub basic_auth: Option<(String, String)>,
}

/// State shared by the handlers and the handle.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    unavailable: AtomicBool,
    hits: gate::Hits,
    /// The exact `Authorization` header value required, when auth is on.
    expected_authorization: Option<String>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        // Every store mutation is a single push after all checks, so a panic elsewhere while the
        // lock was held cannot have left it half-changed.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/subjects", get(routes::subjects))
        .route("/subjects/{subject}", post(routes::lookup))
        .route(
            "/subjects/{subject}/versions",
            post(routes::register).get(routes::versions),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(routes::version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(routes::version_raw),
        )
        .route("/schemas/ids/{id}", get(routes::schema_by_id))
        .route("/schemas/ids/{id}/schema", get(routes::schema_by_id_raw))
        .route("/schemas/types", get(routes::schema_types))
        .route("/config", get(routes::global_config))
        .route("/config/{subject}", get(routes::subject_config))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        // `layer`, not `route_layer`: unrouted requests are counted and gated too.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            gate::gate,
        ))
        .with_state(shared)
}

/// Starts a registry on `127.0.0.1:<free port>` in the current tokio runtime. Dropping the
/// handle stops it; [`RegistryHandle::shutdown`] stops it and waits.
pub async fn spawn_registry(cfg: RegistryConfig) -> Result<RegistryHandle, SandboxError> {
    let addr = "127.0.0.1:0";
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: addr.into(),
            source,
        })?;
    spawn_registry_on(listener, cfg)
}

/// Like [`spawn_registry`], on a listener the caller bound.
pub fn spawn_registry_on(
    listener: TcpListener,
    cfg: RegistryConfig,
) -> Result<RegistryHandle, SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: "listener".into(),
        source,
    })?;
    let shared = Arc::new(Shared {
        store: Mutex::new(Store::default()),
        unavailable: AtomicBool::new(false),
        hits: gate::Hits::default(),
        expected_authorization: cfg
            .basic_auth
            .as_ref()
            .map(|(user, password)| gate::basic_authorization(user, password)),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(Arc::clone(&shared));
    // A dropped sender also resolves the receiver, so dropping the handle stops the server.
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| SandboxError::Task(format!("schema registry: {e}")))
    });
    Ok(RegistryHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A running registry. Dropping it stops the server (without waiting).
#[derive(Debug)]
pub struct RegistryHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl RegistryHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: what a client's `schema.registry.url` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `true`: every request answers 503 (error code 50003) until set back to `false`.
    pub fn set_unavailable(&self, down: bool) {
        self.shared.unavailable.store(down, Ordering::Relaxed);
    }

    /// `GET /schemas/ids/{id}` requests received, whatever their answer.
    pub fn schema_by_id_hits(&self) -> u64 {
        self.hits(RouteKind::SchemaById)
    }

    /// Requests of one kind received, whatever their answer.
    pub fn hits(&self, kind: RouteKind) -> u64 {
        self.shared.hits.get(kind)
    }

    /// In-process registration (what `POST /subjects/{s}/versions` does), for tests and the demo.
    pub fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
        references: &[Reference],
    ) -> Result<u32, RegistryError> {
        self.shared
            .store()
            .register(subject, schema_type, schema, references)
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped on its own; then there is nobody to tell.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| SandboxError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}
