//! Benchmark ceiling: a plain rdkafka consumer-group member that reads a topic from the beginning
//! until it has seen `--count` messages, and does nothing else with them (no mapping, no HTTP, no
//! commits). Its rate is the most any Kafka → X service on this broker and machine can reach.
//! Used by `bench/run.sh`; not part of the service.
//!
//! ```text
//! cargo run --release --example consume_only -- --brokers 127.0.0.1:19092 --topic bench.multi --count 500000
//! ```
//!
//! The clock starts before the consumer is created (like the bridge's, which starts at process
//! start), so group join is included; the rate from the first message is printed as well.
//! Prints one JSON line.

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Read a topic to the end as fast as possible and report the rate")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long)]
    topic: String,
    /// Stop after this many messages.
    #[arg(long)]
    count: u64,
    /// Consumer group id (use a fresh one per run).
    #[arg(long, default_value = "bench-consume-only")]
    group: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[&args.topic])?;

    let deadline = started + Duration::from_secs(args.timeout);
    let (mut messages, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    while messages < args.count {
        if Instant::now() > deadline {
            return Err(format!("timed out after {messages} of {} messages", args.count).into());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                messages += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => {
                errors += 1;
                if errors <= 5 {
                    eprintln!("consume error: {e}");
                }
            }
            None => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let from_first = first.map_or(secs, |f| f.elapsed().as_secs_f64());
    println!(
        r#"{{"messages":{messages},"bytes":{bytes},"seconds":{secs:.3},"rate":{:.0},"rate_from_first":{:.0},"errors":{errors}}}"#,
        messages as f64 / secs,
        messages as f64 / from_first
    );
    Ok(())
}
