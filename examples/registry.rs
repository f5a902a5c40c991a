//! A schema registry for benchmarks and manual tries: the sandbox's in-memory,
//! Confluent-compatible registry (`mcm_bridge::sandbox::registry`) as a process. Registers the
//! schemas given with `--register SUBJECT=FILE` (Avro), prints one JSON line with the URL and
//! their ids, then serves until killed. Used by `bench/run.sh` (row 3a); not part of the service.
//!
//! ```text
//! cargo run --release --example registry -- --listen 127.0.0.1:18081 --register bench.avro-value=bench/shop.avsc
//! ```

use clap::Parser;
use mcm_bridge::sandbox::registry::{spawn_registry_on, RegistryConfig, SchemaType};
use std::collections::BTreeMap;

#[derive(Parser)]
#[command(about = "Serve an in-memory Confluent-compatible schema registry")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// `SUBJECT=FILE`: an Avro schema to register at start (repeatable).
    #[arg(long)]
    register: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let handle = spawn_registry_on(listener, RegistryConfig::default())?;
    let mut ids = BTreeMap::new();
    for r in &args.register {
        let (subject, file) = r
            .split_once('=')
            .ok_or_else(|| format!("--register {r:?}: expected SUBJECT=FILE"))?;
        let schema = std::fs::read_to_string(file)?;
        let id = handle.register(subject, SchemaType::Avro, &schema, &[])?;
        ids.insert(subject.to_string(), id);
    }
    println!(
        "{}",
        serde_json::json!({"url": handle.base_url(), "ids": ids})
    );
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await?;
    Ok(())
}
