//! The operator HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (200 while the poll
//! thread and the coordinator keep beating, 503 with the reason once either is silent past the
//! liveness bound) and `/readyz` (200 when ready, with notes such as "idle" or "circuit open";
//! 503 with the reason otherwise). What ready and alive mean, and why: [`super::health`].

use super::health::{Health, Liveness};
use super::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

/// Serves the endpoints on a pre-bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render_metrics(State(s): State<AppState>) -> impl IntoResponse {
    // `ready` answers what /readyz would answer now, so alerts see the same readiness as the
    // orchestrator does.
    s.metrics.ready.set(i64::from(s.health.readiness().is_ok()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.liveness() {
        Liveness::NotArmed => (
            StatusCode::OK,
            Json(serde_json::json!({"alive": true, "pipeline": "not running"})),
        ),
        Liveness::Alive { bound, silence } => {
            let loops: serde_json::Map<String, serde_json::Value> = silence
                .iter()
                .map(|(l, quiet)| (l.name().to_string(), serde_json::json!(quiet.as_secs_f64())))
                .collect();
            (
                StatusCode::OK,
                Json(serde_json::json!({
                    "alive": true,
                    "bound_seconds": bound.as_secs(),
                    "silent_seconds": loops,
                })),
            )
        }
        Liveness::Wedged(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"alive": false, "reason": reason})),
        ),
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.readiness() {
        Ok(ready) => (
            StatusCode::OK,
            Json(serde_json::json!({
                "ready": true,
                "assigned_partitions": ready.assigned,
                "notes": ready.notes,
            })),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "reason": reason})),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The endpoints over real HTTP on loopback, with [`Health`] driven directly: a stopped
    //! heartbeat is a loop that does not beat after arming. The staleness decision itself is
    //! unit-tested in [`super::super::health`].
    use super::*;
    use std::time::Duration;

    async fn serve_health(health: Arc<Health>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(serve(
            listener,
            Arc::new(Metrics::new()),
            health,
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    async fn get(base: &str, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::get(format!("{base}{path}"))
            .await
            .expect("GET over loopback");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("JSON body");
        (status, body)
    }

    #[tokio::test]
    async fn healthz_answers_503_naming_the_loop_that_stopped_beating() {
        let health = Arc::new(Health::new());
        health.arm_liveness(Duration::from_millis(1));
        // Sleeping only makes the coordinator's silence longer: the outcome does not depend on
        // how fast the machine is.
        tokio::time::sleep(Duration::from_millis(20)).await;
        health.heartbeat(crate::observe::health::Loop::Poll).beat();
        let base = serve_health(health).await;
        let (status, body) = get(&base, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["alive"], false);
        let reason = body["reason"].as_str().expect("reason");
        assert!(reason.contains("coordinator silent for"), "{reason}");
    }

    #[tokio::test]
    async fn healthz_is_200_with_each_loops_silence_while_both_beat() {
        let health = Arc::new(Health::new());
        health.arm_liveness(Duration::from_secs(3600));
        for l in crate::observe::health::Loop::ALL {
            health.heartbeat(l).beat();
        }
        let base = serve_health(health).await;
        let (status, body) = get(&base, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["alive"], true);
        assert_eq!(body["bound_seconds"], 3600);
        assert!(
            body["silent_seconds"]["kafka poll thread"].is_number(),
            "{body}"
        );
        assert!(body["silent_seconds"]["coordinator"].is_number(), "{body}");
    }

    #[tokio::test]
    async fn healthz_is_200_while_the_pipeline_is_not_running() {
        let base = serve_health(Arc::new(Health::new())).await;
        let (status, body) = get(&base, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["pipeline"], "not running");
    }

    #[tokio::test]
    async fn readyz_is_200_for_an_idle_member_and_for_an_open_circuit() {
        let health = Arc::new(Health::new());
        health.set_joined();
        health.set_circuit_open(true);
        let base = serve_health(health).await;
        let (status, body) = get(&base, "/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["assigned_partitions"], 0);
        let notes = body["notes"].to_string();
        assert!(
            notes.contains("idle") && notes.contains("circuit open"),
            "{notes}"
        );
    }

    #[tokio::test]
    async fn readyz_is_503_before_joining_and_when_mcm_rejects_the_key() {
        let health = Arc::new(Health::new());
        let base = serve_health(health.clone()).await;
        let (status, body) = get(&base, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not yet joined")));
        health.set_assigned(4);
        health.set_config_error(Some("MCM answered 401: bad key".into()));
        let (status, body) = get(&base, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body["reason"].as_str().is_some_and(|r| r.contains("401")));
    }
}
