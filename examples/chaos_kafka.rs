//! Kafka side of the chaos harness (`chaos/chaos.py`): produce the numbered events, read the
//! dead-letter topic back, and measure the consumer group's lag.
//!
//! ```text
//! chaos_kafka produce --bootstrap B --topics chaos.a:4,chaos.b:4 --count N --rate R \
//!                     --invalid-every K --out DIR
//! chaos_kafka read-dlq --bootstrap B --topic chaos.dlq
//! chaos_kafka lag --bootstrap B --group G --topics chaos.a:4,chaos.b:4
//! chaos_kafka create-topic --bootstrap B --topic T --partitions P --replication R \
//!                          [--configs k=v,k=v]
//! chaos_kafka leaders --bootstrap B --topics chaos.a,chaos.b,__consumer_offsets
//! ```
//!
//! `produce` writes `DIR/invalid.jsonl` (the deliberately invalid ids and their kind) and
//! `DIR/failed.txt` (ids whose produce was not acknowledged), and prints one JSON summary line on
//! stdout. Every record has the id as its Kafka key, so a dead-lettered record names its id even
//! when its value is not JSON. `read-dlq` prints one JSON line per DLQ record (key + headers).
//! With `--group G --max-backlog M`, `produce` pauses while the group's committed offsets are
//! more than M events behind what was acknowledged (the mock broker keeps a bounded log per
//! partition and would otherwise drop unconsumed events). `lag` prints `{"lag": L, "end": E, "committed": C}` summed over the partitions.
//!
//! It is a plain blocking program (no tokio), so `std::thread::sleep` is fine here.
#![allow(clippy::disallowed_methods)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn usage() -> ExitCode {
    eprintln!(
        "usage: chaos_kafka produce --bootstrap B --topics T:P,… --count N [--rate R] \
         [--invalid-every K] [--prefix P] [--group G --max-backlog M] --out DIR\n       chaos_kafka read-dlq --bootstrap B \
         --topic T\n       chaos_kafka lag --bootstrap B --group G --topics T:P,…\n       \
         chaos_kafka create-topic --bootstrap B --topic T --partitions P --replication R \
         [--configs k=v,…]\n       chaos_kafka leaders --bootstrap B --topics T,…"
    );
    ExitCode::from(2)
}

/// `--name value` pairs after the subcommand.
fn flags(args: &[String]) -> Option<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let k = k.strip_prefix("--")?;
        m.insert(k.to_string(), it.next()?.clone());
    }
    Some(m)
}

fn topics(spec: &str) -> Option<Vec<(String, i32)>> {
    spec.split(',')
        .map(|t| {
            let (name, p) = t.rsplit_once(':')?;
            Some((name.to_string(), p.parse().ok()?))
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        return usage();
    };
    let Some(f) = flags(rest) else {
        return usage();
    };
    let result = match cmd.as_str() {
        "produce" => produce(&f),
        "read-dlq" => read_dlq(&f),
        "lag" => lag(&f),
        "create-topic" => create_topic(&f),
        "leaders" => leaders(&f),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos_kafka {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn need<'a>(f: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str, String> {
    f.get(k)
        .map(String::as_str)
        .ok_or_else(|| format!("--{k} is required"))
}

fn num<T: std::str::FromStr>(f: &BTreeMap<String, String>, k: &str, d: T) -> Result<T, String> {
    match f.get(k) {
        None => Ok(d),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{k} {v:?} is not a number")),
    }
}

/// Counts acknowledgements and remembers the sequence numbers whose produce failed.
struct Acks {
    acked: AtomicU64,
    failed: Mutex<Vec<(usize, String)>>,
}

struct AckContext(Arc<Acks>);

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                if let Ok(mut v) = self.0.failed.lock() {
                    v.push((seq, e.to_string()));
                }
            }
        }
    }
}

/// The three kinds of deliberately invalid message, in rotation.
const INVALID_KINDS: [&str; 3] = ["not_json", "no_rule", "bad_timestamp"];

fn payload(id: &str, seq: usize, invalid: Option<&str>) -> Vec<u8> {
    let ts = now_ms() - 1_000;
    let user = format!("u{}", seq % 10_007);
    let v = match invalid {
        None => serde_json::json!({"id": id, "kind": "home", "ts": ts, "user": user}),
        Some("not_json") => return format!("{{not json: {id}").into_bytes(),
        Some("no_rule") => {
            serde_json::json!({"id": id, "kind": "teleport", "ts": ts, "user": user})
        }
        Some(_) => serde_json::json!({"id": id, "kind": "home", "ts": "yesterday", "user": user}),
    };
    v.to_string().into_bytes()
}

fn produce(f: &BTreeMap<String, String>) -> Result<(), String> {
    let bootstrap = need(f, "bootstrap")?;
    let topics = topics(need(f, "topics")?).ok_or("--topics: expected NAME:P,NAME:P")?;
    let count: usize = num(f, "count", 1000)?;
    let rate: f64 = num(f, "rate", 0.0)?;
    let invalid_every: usize = num(f, "invalid-every", 0)?;
    let prefix = f.get("prefix").map(String::as_str).unwrap_or("e");
    let out = PathBuf::from(need(f, "out")?);
    let slots: Vec<(&str, i32)> = topics
        .iter()
        .flat_map(|(t, p)| (0..*p).map(move |i| (t.as_str(), i)))
        .collect();
    if slots.is_empty() {
        return Err("no partitions".into());
    }
    let acks = Arc::new(Acks {
        acked: AtomicU64::new(0),
        failed: Mutex::new(Vec::new()),
    });
    let producer: BaseProducer<AckContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // Broker outages are part of the schedule: buffer and retry through them.
        .set("message.timeout.ms", "900000")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(AckContext(acks.clone()))
        .map_err(|e| format!("producer: {e}"))?;
    let mut invalid_file = std::fs::File::create(out.join("invalid.jsonl"))
        .map_err(|e| format!("invalid.jsonl: {e}"))?;
    // Flow control: the broker keeps a bounded log per partition (librdkafka's mock cluster drops
    // the oldest data beyond ~5 MB per partition, like retention), so producing far ahead of the
    // group would delete unconsumed events. Pause while the group's backlog exceeds the bound.
    let max_backlog: i64 = num(f, "max-backlog", 0)?;
    let lag_reader = match f.get("group") {
        Some(g) if max_backlog > 0 => Some(reader(bootstrap, g)?),
        _ => None,
    };
    let mut lag_tpl = TopicPartitionList::new();
    for (t, n) in &topics {
        for p in 0..*n {
            lag_tpl.add_partition(t, p);
        }
    }
    let start = Instant::now();
    let mut next_due = start;
    let mut last_report = Instant::now();
    let mut last_lag_check = Instant::now();
    let mut paused_for = Duration::ZERO;
    let mut invalid_n = 0usize;
    for seq in 0..count {
        if let Some(c) = &lag_reader {
            if last_lag_check.elapsed() >= Duration::from_millis(500) {
                last_lag_check = Instant::now();
                let pause_start = Instant::now();
                let mut warned = false;
                loop {
                    producer.poll(Duration::ZERO);
                    let acked = acks.acked.load(Ordering::Relaxed) as i64;
                    let committed = committed_sum(c, &lag_tpl);
                    match committed {
                        Some(done) if acked - done <= max_backlog => break,
                        _ => {}
                    }
                    if !warned && pause_start.elapsed() > Duration::from_secs(5) {
                        warned = true;
                        eprintln!("produce: paused, group backlog above {max_backlog}");
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                paused_for += pause_start.elapsed();
            }
        }
        if rate > 0.0 {
            let now = Instant::now();
            if next_due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep(next_due - now);
            } else if now - next_due > Duration::from_secs(1) {
                next_due = now; // after a pause: no burst to catch up
            }
            next_due += Duration::from_secs_f64(1.0 / rate);
        }
        let id = format!("{prefix}{seq:09}");
        let invalid = (invalid_every > 0 && seq % invalid_every == invalid_every / 2).then(|| {
            let k = INVALID_KINDS[invalid_n % INVALID_KINDS.len()];
            invalid_n += 1;
            k
        });
        if let Some(kind) = invalid {
            writeln!(
                invalid_file,
                "{}",
                serde_json::json!({"id": id, "kind": kind})
            )
            .map_err(|e| format!("invalid.jsonl: {e}"))?;
        }
        let body = payload(&id, seq, invalid);
        let (topic, partition) = slots[seq % slots.len()];
        let headers = OwnedHeaders::new().insert(Header {
            key: "chaos.id",
            value: Some(id.as_str()),
        });
        let mut rec = BaseRecord::with_opaque_to(topic, seq)
            .partition(partition)
            .key(id.as_bytes())
            .payload(&body)
            .headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    // Queue full (e.g. during a broker outage): serve callbacks and try again.
                    producer.poll(Duration::from_millis(50));
                    rec = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "produce: sent {} acked {}",
                seq + 1,
                acks.acked.load(Ordering::Relaxed)
            );
        }
    }
    invalid_file.flush().map_err(|e| e.to_string())?;
    producer
        .flush(Duration::from_secs(900))
        .map_err(|e| format!("flush: {e}"))?;
    let failed = acks.failed.lock().map(|v| v.clone()).unwrap_or_default();
    let mut ff = std::fs::File::create(out.join("failed.txt")).map_err(|e| e.to_string())?;
    for (seq, why) in &failed {
        writeln!(ff, "{prefix}{seq:09}\t{why}").map_err(|e| e.to_string())?;
    }
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "acked": acks.acked.load(Ordering::Relaxed),
            "failed": failed.len(),
            "invalid": invalid_n,
            "seconds": start.elapsed().as_secs_f64(),
            "paused_seconds": paused_for.as_secs_f64(),
        })
    );
    Ok(())
}

fn reader(bootstrap: &str, group: &str) -> Result<BaseConsumer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))
}

fn partitions_of(c: &BaseConsumer, topic: &str) -> Result<Vec<i32>, String> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata for {topic}: {e}"))?;
    Ok(md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// Sum of the group's committed offsets over `tpl`; `None` when the broker does not answer.
fn committed_sum(c: &BaseConsumer, tpl: &TopicPartitionList) -> Option<i64> {
    let got = c
        .committed_offsets(tpl.clone(), Duration::from_secs(5))
        .ok()?;
    Some(
        got.elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum(),
    )
}

fn read_dlq(f: &BTreeMap<String, String>) -> Result<(), String> {
    let bootstrap = need(f, "bootstrap")?;
    let topic = need(f, "topic")?;
    let timeout = Duration::from_secs(num(f, "timeout-secs", 120)?);
    let c = reader(bootstrap, "chaos-dlq-reader")?;
    let parts = partitions_of(&c, topic)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for p in &parts {
        let (lo, hi) = c
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .map_err(|e| format!("watermarks {topic}/{p}: {e}"))?;
        if hi > lo {
            remaining.insert(*p, hi);
        }
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let start = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while !remaining.is_empty() {
        if start.elapsed() > timeout {
            return Err(format!(
                "timed out; partitions not read to the end: {remaining:?}"
            ));
        }
        let Some(r) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = r.map_err(|e| format!("poll: {e}"))?;
        let mut headers = serde_json::Map::new();
        if let Some(h) = m.headers() {
            for h in h.iter() {
                headers.insert(
                    h.key.to_string(),
                    String::from_utf8_lossy(h.value.unwrap_or_default())
                        .into_owned()
                        .into(),
                );
            }
        }
        let line = serde_json::json!({
            "key": m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            "partition": m.partition(),
            "offset": m.offset(),
            "headers": headers,
        });
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
        if let Some(hi) = remaining.get(&m.partition()) {
            if m.offset() + 1 >= *hi {
                remaining.remove(&m.partition());
            }
        }
    }
    out.flush().map_err(|e| e.to_string())
}

fn lag(f: &BTreeMap<String, String>) -> Result<(), String> {
    let bootstrap = need(f, "bootstrap")?;
    let group = need(f, "group")?;
    let topics = topics(need(f, "topics")?).ok_or("--topics: expected NAME:P,NAME:P")?;
    let c = reader(bootstrap, group)?;
    let mut tpl = TopicPartitionList::new();
    for (t, n) in &topics {
        for p in 0..*n {
            tpl.add_partition(t, p);
        }
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| format!("committed offsets: {e}"))?;
    let (mut end, mut committed) = (0i64, 0i64);
    for (t, n) in &topics {
        for p in 0..*n {
            let (_, hi) = c
                .fetch_watermarks(t, p, Duration::from_secs(10))
                .map_err(|e| format!("watermarks {t}/{p}: {e}"))?;
            end += hi;
            if let Some(Offset::Offset(o)) = got.find_partition(t, p).map(|e| e.offset()) {
                committed += o;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"lag": end - committed, "end": end, "committed": committed})
    );
    Ok(())
}

fn create_topic(f: &BTreeMap<String, String>) -> Result<(), String> {
    let bootstrap = need(f, "bootstrap")?;
    let topic = need(f, "topic")?;
    let partitions: i32 = num(f, "partitions", 1)?;
    let replication: i32 = num(f, "replication", 1)?;
    let configs: Vec<(&str, &str)> = f
        .get("configs")
        .map(|c| {
            c.split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    kv.split_once('=')
                        .ok_or(format!("--configs: {kv:?} is not k=v"))
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin: {e}"))?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (k, v) in &configs {
        new = new.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let rt = futures::executor::block_on(admin.create_topics([&new], &opts))
        .map_err(|e| format!("create {topic}: {e}"))?;
    for r in rt {
        r.map_err(|(t, e)| format!("create {t}: {e}"))?;
    }
    Ok(())
}

fn leaders(f: &BTreeMap<String, String>) -> Result<(), String> {
    let bootstrap = need(f, "bootstrap")?;
    let names: Vec<&str> = need(f, "topics")?
        .split(',')
        .filter(|t| !t.is_empty())
        .collect();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("client: {e}"))?;
    let mut out = serde_json::Map::new();
    for name in names {
        let md = c
            .fetch_metadata(Some(name), Duration::from_secs(10))
            .map_err(|e| format!("metadata for {name}: {e}"))?;
        for t in md.topics() {
            if let Some(e) = t.error() {
                return Err(format!("metadata for {name}: {e:?}"));
            }
            for p in t.partitions() {
                out.insert(
                    format!("{}/{}", t.name(), p.id()),
                    serde_json::json!({
                        "leader": p.leader(),
                        "replicas": p.replicas(),
                        "isr": p.isr(),
                    }),
                );
            }
        }
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
