//! The bridge's schema registry client against real servers: with several `schema_registry.urls`
//! and the first one hanging, the client fails over to the next and keeps asking the one that
//! answered, so a dead node costs one timeout, not one per schema fetched.

use mcm_bridge::config::schema_registry::{RegistryAuth, SchemaRegistryConfig};
use mcm_bridge::sandbox::registry::{spawn_registry, RegistryConfig, SchemaType};
use mcm_bridge::schema::{Known, RegistryClient};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str = r#"{"type":"record","name":"V","fields":[{"name":"id","type":"string"}]}"#;

/// A TCP server that accepts connections and never answers; counts the connections.
async fn hanging_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(socket); // held open, never answered
        }
    });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_first_url_costs_one_timeout_then_the_answering_one_is_asked_first() {
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let a = registry
        .register("a-value", SchemaType::Avro, SCHEMA, &[])
        .expect("a");
    let b = registry
        .register(
            "b-value",
            SchemaType::Avro,
            &SCHEMA.replace("\"V\"", "\"W\""),
            &[],
        )
        .expect("b");
    let (hanging, accepted) = hanging_server().await;
    let client = RegistryClient::new(&SchemaRegistryConfig {
        urls: vec![hanging, registry.base_url()],
        auth: RegistryAuth::None,
        tls: Default::default(),
        timeout: Duration::from_millis(300),
        cache_size: 10,
        max_backoff: Duration::from_secs(1),
    })
    .expect("client");
    for id in [a, b, a] {
        let known = client
            .fetch(id)
            .await
            .expect("fetched through the second URL");
        assert!(matches!(known, Known::Avro(_)), "{id}: {known:?}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "only the first fetch tried the hanging URL"
    );
    // The answering node goes down too: the client tries every URL again (and says so).
    registry.set_unavailable(true);
    let e = client.fetch(a).await.expect_err("nobody answers");
    assert!(
        e.to_string().contains("503") || e.to_string().contains("unavailable"),
        "{e}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the hanging URL asked again"
    );
    registry.shutdown().await.expect("registry stops");
}
