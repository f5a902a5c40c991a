//! Benchmark loader: writes shop-shaped JSON messages (the `shop.events` shape of
//! `deploy/examples/mcm-bridge.yaml`) to a Kafka topic as fast as librdkafka allows, or at a fixed
//! rate. Used by `bench/run.sh`; not part of the service.
//!
//! ```text
//! cargo run --release --example produce -- --brokers 127.0.0.1:19092 --topic bench.multi --count 500000
//! cargo run --release --example produce -- --brokers 127.0.0.1:19092 --topic bench.steady --rate 2000 --seconds 300
//! ```
//!
//! Every message gets a unique `event_id` (`<run>-<n>`), an `occurred_at` one second in the past
//! (epoch seconds, as the shop producer sends it), and one of four kinds in rotation: product
//! view, cart add, search, home page view. The record key is the device id, so the default
//! partitioner spreads messages over all partitions. Prints one JSON line with the figures.
//!
//! `--shape shop-v2` writes the same events the way many CDPs and GA4's BigQuery export lay them
//! out, which only mapping rules v2 can read: identifiers in a typed list
//! (`customer.ids: [{type: email, value}, {type: device, value}]`), a locale (`en-US`) for the
//! device language, and full page URLs (`page.url`) instead of paths. `bench/run.sh` maps it with
//! `bench/bridge-v2.yaml.tmpl` (row 3v) to compare its CPU per event with the shop shape's.
//!
//! `--avro-schema bench/shop.avsc --schema-id N` writes the same events as Avro in the schema
//! registry framing (magic byte 0, the id, the datum), as Confluent's serializers do: row 3a maps
//! them with the same rules and `format: avro`, to show what decoding Avro costs.

// A plain synchronous program (no tokio runtime): blocking sleeps are the right tool here.
#![allow(clippy::disallowed_methods)]

use clap::Parser;
use mcm_bridge::generator::avro::{avro_of, framed};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(about = "Load shop-shaped JSON messages into a Kafka topic")]
struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to write to (must exist).
    #[arg(long)]
    topic: String,
    /// Number of messages (ignored when --seconds is given with --rate).
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Messages per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// With --rate: produce for this many seconds (count = rate × seconds).
    #[arg(long)]
    seconds: Option<f64>,
    /// Messages per produce batch (`batch.num.messages`); 1 writes one record batch per message.
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Prefix of every event id, so that ids are unique across runs.
    #[arg(long, default_value = "bench")]
    run: String,
    /// Message layout: `shop` (bench/bridge.yaml.tmpl) or `shop-v2` (bench/bridge-v2.yaml.tmpl).
    #[arg(long, value_enum, default_value_t = Shape::Shop)]
    shape: Shape,
    /// Write Avro with this schema (an `.avsc` whose fields are the shape's) instead of JSON.
    #[arg(long, requires = "schema_id")]
    avro_schema: Option<std::path::PathBuf>,
    /// The registry's id of `--avro-schema`, written in each value's framing.
    #[arg(long)]
    schema_id: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Shape {
    Shop,
    ShopV2,
}

/// Counts delivery outcomes reported by librdkafka.
#[derive(Default)]
struct Counting {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("delivery failed: {e}");
                }
                0
            }
        };
    }
}

/// (user agent, channel) pairs that agree, so APP events carry a mobile OS as MCM requires.
const UAS: [(&str, &str); 3] = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "ios"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "web"),
];

/// Locales for `shop-v2`'s `locale` (mapped to ISO 639-1 with the `language` transform).
const LOCALES: [&str; 4] = ["en-US", "de_DE", "pt-BR", "ko"];

/// One shop message; `n` selects the kind and varies the ids.
fn message(shape: Shape, run: &str, n: u64, now_secs: u64) -> (String, String) {
    let device = format!("dev-{}", n % 5003);
    let (ua, ch) = UAS[(n % 3) as usize];
    let ts = now_secs.saturating_sub(1);
    let u = n % 10_007;
    let common = match shape {
        Shape::Shop => format!(
            r#""event_id":"{run}-{n}","occurred_at":{ts},"channel":"{ch}","customer":{{"email":" User{u}@Example.com "}},"device_id":"{device}","user_agent":"{ua}""#
        ),
        Shape::ShopV2 => format!(
            r#""event_id":"{run}-{n}","occurred_at":{ts},"channel":"{ch}","customer":{{"ids":[{{"type":"device","value":"{device}"}},{{"type":"email","value":" User{u}@Example.com "}}]}},"locale":"{l}","user_agent":"{ua}""#,
            l = LOCALES[(n % 4) as usize],
        ),
    };
    let page = match shape {
        Shape::Shop => r#""type":"home","path":"/""#,
        Shape::ShopV2 => r#""type":"home","url":"https://shop.example/?utm_source=mail""#,
    };
    let sku = n % 997;
    let body = match n % 4 {
        0 => format!(
            r#"{{"kind":"product_view",{common},"product":{{"sku":"sku-{sku}","seller":"seller-{s}","price_cents":{p},"currency":"usd"}}}}"#,
            s = n % 31,
            p = 199 + (n % 50) * 100,
        ),
        1 => format!(
            r#"{{"kind":"cart_add",{common},"quantity":{q},"product":{{"sku":"sku-{sku}","seller":"seller-{s}","price_cents":{p},"currency":"usd"}}}}"#,
            q = 1 + n % 3,
            s = n % 31,
            p = 199 + (n % 50) * 100,
        ),
        2 => format!(
            r#"{{"kind":"search",{common},"query":"  running shoes size {q} "}}"#,
            q = 36 + n % 10,
        ),
        _ => format!(r#"{{"kind":"page_view",{common},"page":{{{page}}}}}"#),
    };
    (device, body)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let count = match (args.rate, args.seconds) {
        (r, Some(s)) if r > 0 => (r as f64 * s).round() as u64,
        _ => args.count,
    };
    let producer: ThreadedProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("linger.ms", if args.batch > 1 { "10" } else { "0" })
        .set("batch.num.messages", args.batch.to_string())
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("acks", "1")
        .create_with_context(Counting::default())?;

    let avro = match (&args.avro_schema, args.schema_id) {
        (Some(file), Some(id)) => Some((
            apache_avro::Schema::parse_str(&std::fs::read_to_string(file)?)?,
            id,
        )),
        _ => None,
    };
    let started = Instant::now();
    let mut ts = now_secs();
    for n in 0..count {
        if args.rate > 0 {
            // Pace against the schedule, not per message, so sleeps do not accumulate drift.
            let due = Duration::from_secs_f64(n as f64 / args.rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        if n % 1000 == 0 {
            ts = now_secs();
        }
        let (key, body) = message(args.shape, &args.run, n, ts);
        let body: Vec<u8> = match &avro {
            None => body.into_bytes(),
            Some((schema, id)) => {
                let json: serde_json::Value = serde_json::from_str(&body)?;
                let datum = apache_avro::to_avro_datum(schema, avro_of(&json, schema)?)?;
                framed(*id, &datum)
            }
        };
        let mut record = BaseRecord::to(&args.topic).key(&key).payload(&body);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let secs = started.elapsed().as_secs_f64();
    let ctx = producer.context();
    let (ok, failed) = (
        ctx.ok.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    println!(
        r#"{{"produced":{ok},"failed":{failed},"seconds":{secs:.3},"rate":{:.0}}}"#,
        ok as f64 / secs
    );
    if failed > 0 || ok != count {
        return Err(format!("{failed} failed, {ok} of {count} delivered").into());
    }
    Ok(())
}
