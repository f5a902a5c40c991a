//! `mcm-bridge demo`: the whole product on one machine, no Kafka or Moloco account needed.
//!
//! Starts an in-process Kafka-protocol broker (librdkafka's mock cluster), the MCM sandbox on a
//! free port (with a little latency and some injected 500s/429s), the bridge with the shipped
//! "shop service" example mapping, and a generator producing realistic shop traffic — including a
//! few deliberately bad messages — to two topics. Shows live progress, then accounts for every
//! event: delivered (and accepted by the sandbox), dead-lettered (and present in the DLQ topic), or
//! filtered by a rule. Exit 0 only if the books balance.

use crate::generator::produce::{produce, ProduceCounts, ProducePlan};
use crate::kafka::mock::MockBroker;
use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, Totals};
use crate::sandbox::{Faults, SandboxConfig};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EXAMPLE: &str = include_str!("../../deploy/examples/mcm-bridge.yaml");
const DEMO_KEY: &str = "demo-key-0123456789";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Messages to produce.
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Messages per second produced.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Where to serve /metrics, /healthz, /readyz during the demo (falls back to a free port).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,
    /// Fraction of deliberately broken messages.
    #[arg(long, default_value_t = 0.01)]
    pub bad_share: f64,
    /// Fraction of sandbox answers that are 500 (retried by the bridge).
    #[arg(long, default_value_t = 0.02)]
    pub fail_rate: f64,
    /// Fraction of sandbox answers that are 429 (retried by the bridge).
    #[arg(long, default_value_t = 0.01)]
    pub throttle_rate: f64,
    /// Sandbox latency per request, e.g. 10ms.
    #[arg(long, default_value = "10ms")]
    pub latency: String,
    /// Keep running after the accounting, serving /metrics, until Ctrl-C (for Prometheus checks).
    #[arg(long)]
    pub linger: bool,
    /// How the shop events are written: `json`, or `avro` in the schema registry framing (an
    /// in-process, Confluent-compatible registry serves their schemas; docs/formats.md).
    #[arg(long, default_value = "json", value_parser = ["json", "avro"])]
    pub format: String,
}

struct Run {
    metrics: Arc<Metrics>,
    counts: Arc<ProduceCounts>,
}

impl Run {
    fn finished(&self) -> u64 {
        let t = &self.metrics.totals;
        Totals::get(&t.delivered)
            + Totals::get(&t.dead_lettered)
            + Totals::get(&t.filtered)
            + Totals::get(&t.dropped)
    }
}

/// The in-process registry of `--format avro` with the shop schemas registered, and the writers
/// that frame generated events with their ids.
async fn start_registry() -> Result<
    (
        crate::sandbox::registry::RegistryHandle,
        crate::generator::produce::ShopAvro,
    ),
    String,
> {
    use crate::generator::avro::{AvroWriter, SHOP_EVENTS_AVSC, SHOP_ORDERS_AVSC};
    use crate::sandbox::registry::{spawn_registry, RegistryConfig, SchemaType};
    let handle = spawn_registry(RegistryConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let writer = |subject: &str, text: &str| {
        let id = handle
            .register(subject, SchemaType::Avro, text, &[])
            .map_err(|e| e.to_string())?;
        AvroWriter::new(text, id)
    };
    let events = writer("shop.events-value", SHOP_EVENTS_AVSC)?;
    let orders = writer("shop.orders-value", SHOP_ORDERS_AVSC)?;
    Ok((
        handle,
        crate::generator::produce::ShopAvro { events, orders },
    ))
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let Some(latency) = crate::config::decode::parse_duration(&args.latency) else {
        eprintln!("--latency {:?}: expected e.g. 10ms", args.latency);
        return ExitCode::from(2);
    };
    crate::observe::logging::init(crate::config::LogFormat::Text, "warn,librdkafka=error");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(demo(args, latency))
}

async fn demo(args: &DemoArgs, latency: Duration) -> ExitCode {
    let broker = match start_broker() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot start the embedded Kafka broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut sandbox_cfg = SandboxConfig::new("DEMO_TEST", DEMO_KEY);
    sandbox_cfg.faults = Faults {
        fail_rate: args.fail_rate,
        throttle_rate: args.throttle_rate,
        latency,
        latency_jitter: latency / 2,
        ..Faults::default()
    };
    let sandbox = match crate::sandbox::spawn(sandbox_cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the MCM sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `--format avro`: the shop schemas registered in an in-process registry, as producers'
    // serializers would have registered them; the bridge fetches them from it.
    let (registry, avro) = if args.format == "avro" {
        match start_registry().await {
            Ok((handle, avro)) => (Some(handle), Some(avro)),
            Err(e) => {
                eprintln!("cannot start the in-process schema registry: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        (None, None)
    };
    let config_text = match &registry {
        Some(r) => crate::generator::avro::avro_example(EXAMPLE, &r.base_url()),
        None => EXAMPLE.to_string(),
    };
    let bootstrap = broker.bootstrap_servers().to_string();
    let base_url = sandbox.base_url();
    let env = |name: &str| -> Option<String> {
        match name {
            "KAFKA_BOOTSTRAP" => Some(bootstrap.clone()),
            "MCM_BASE_URL" => Some(base_url.clone()),
            "MCM_API_KEY" => Some(DEMO_KEY.to_string()),
            _ => None,
        }
    };
    let overrides = [
        // Retry quickly in the demo; production defaults follow Moloco's 5 s protocol.
        (
            "MCM_BRIDGE__MCM__RETRY__INITIAL_BACKOFF".to_string(),
            "50ms".to_string(),
        ),
        (
            "MCM_BRIDGE__MCM__RETRY__MAX_BACKOFF".to_string(),
            "1s".to_string(),
        ),
        (
            "MCM_BRIDGE__MCM__RETRY__MAX_ATTEMPTS".to_string(),
            "20".to_string(),
        ),
        (
            "MCM_BRIDGE__MCM__CIRCUIT_BREAKER__FAILURE_THRESHOLD".to_string(),
            "50".to_string(),
        ),
        (
            "MCM_BRIDGE__KAFKA__SESSION_TIMEOUT".to_string(),
            "10s".to_string(),
        ),
        (
            "MCM_BRIDGE__DELIVERY__DRAIN_TIMEOUT".to_string(),
            "5s".to_string(),
        ),
    ];
    let (config, plan) = match crate::config::load_str_with(
        &config_text,
        std::path::Path::new("."),
        &env,
        overrides,
        crate::mapping::compile,
    ) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("the embedded example configuration is invalid:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let dlq_topic = config.delivery.dlq_topic.clone();
    if let Err(e) = broker.create_topic(&dlq_topic, 1) {
        eprintln!("cannot create {dlq_topic}: {e}");
        return ExitCode::FAILURE;
    }
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new());
    let shutdown = CancellationToken::new();
    let listener = match tokio::net::TcpListener::bind(args.metrics_listen).await {
        Ok(l) => l,
        Err(_) => match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot bind a metrics port: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let metrics_addr = listener.local_addr().ok();
    tokio::spawn(crate::observe::server::serve(
        listener,
        metrics.clone(),
        health.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    println!("mcm-bridge demo");
    println!(
        "  kafka (embedded mock cluster): {}",
        broker.bootstrap_servers()
    );
    println!(
        "  MCM sandbox: {} (latency {}, {}% 500s, {}% 429s)",
        sandbox.base_url(),
        args.latency,
        args.fail_rate * 100.0,
        args.throttle_rate * 100.0
    );
    if let Some(a) = metrics_addr {
        println!("  metrics: http://{a}/metrics   health: http://{a}/readyz");
    }
    if let Some(r) = &registry {
        println!(
            "  schema registry (in-process): {} (shop.events-value, shop.orders-value; events written as Avro)",
            r.base_url()
        );
    }
    println!(
        "  producing {} shop events at {}/s to shop.events and shop.orders ({}% deliberately bad)\n",
        args.events,
        args.rate,
        args.bad_share * 100.0
    );

    let bridge = tokio::spawn(crate::pipeline::run(
        Arc::new(config),
        Arc::new(plan),
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    let counts = Arc::new(ProduceCounts::default());
    let producing = {
        let counts = counts.clone();
        let plan = ProducePlan {
            bootstrap: broker.bootstrap_servers().to_string(),
            events_topic: "shop.events".into(),
            orders_topic: "shop.orders".into(),
            rate: args.rate,
            limit: Some(args.events),
            seed: 42,
            bad_share: args.bad_share,
            shape: crate::generator::others::Shape::Shop,
            avro,
        };
        let stop = shutdown.clone();
        tokio::spawn(async move { produce(&plan, &counts, &stop).await })
    };
    let run = Run {
        metrics: metrics.clone(),
        counts: counts.clone(),
    };
    let interrupted = CancellationToken::new();
    {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            super::shutdown_signal().await;
            interrupted.cancel();
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120 + args.events / args.rate.max(1));
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut last_print = Instant::now() - Duration::from_secs(10);
    let mut produce_error = None;
    let mut producing = Some(producing);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if producing.as_ref().is_some_and(|p| p.is_finished()) {
            if let Some(p) = producing.take() {
                match p.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => produce_error = Some(e.to_string()),
                    Err(e) => produce_error = Some(e.to_string()),
                }
            }
        }
        let done = producing.is_none() && run.finished() >= ProduceCounts::get(&counts.produced);
        if tty || last_print.elapsed() >= Duration::from_secs(1) || done {
            print_progress(&run, started.elapsed(), tty);
            last_print = Instant::now();
        }
        if done
            || produce_error.is_some()
            || Instant::now() >= deadline
            || interrupted.is_cancelled()
        {
            break;
        }
    }
    if tty {
        println!();
    }
    if args.linger && !interrupted.is_cancelled() {
        println!("\nlingering: metrics stay up until Ctrl-C");
        interrupted.cancelled().await;
    }
    shutdown.cancel();
    let exit = bridge.await;
    let stats = sandbox.stats().await;
    let dlq_count = count_messages(broker.bootstrap_servers(), &dlq_topic);
    let _ = sandbox.shutdown().await;

    let t = &metrics.totals;
    let produced = ProduceCounts::get(&counts.produced);
    let delivered = Totals::get(&t.delivered);
    let dead = Totals::get(&t.dead_lettered);
    let filtered = Totals::get(&t.filtered);
    let dropped = Totals::get(&t.dropped);
    println!("\nsummary after {:.1}s", started.elapsed().as_secs_f64());
    println!("  produced        {produced:>8}");
    println!(
        "  delivered       {delivered:>8}   (expected {}; sandbox accepted {} unique ids, {} duplicate deliveries)",
        ProduceCounts::get(&counts.expect_deliver),
        stats.unique_ids,
        stats.duplicate_ids
    );
    println!(
        "  dead-lettered   {dead:>8}   (expected {}; {} records in {dlq_topic})",
        ProduceCounts::get(&counts.expect_dead_letter),
        dlq_count.map_or_else(|| "?".to_string(), |c| c.to_string())
    );
    println!(
        "  filtered        {filtered:>8}   (expected {}: kinds and order states the mapping skips)",
        ProduceCounts::get(&counts.expect_filter)
    );
    if dropped > 0 {
        println!("  dropped         {dropped:>8}");
    }
    println!(
        "  sandbox         {} requests, faults injected {:?}",
        stats.requests_total, stats.faults
    );
    for (reason, n) in dead_letter_reasons(&metrics) {
        println!("  dlq reason      {n:>8}   {reason}");
    }
    if interrupted.is_cancelled() && delivered + dead + filtered + dropped != produced {
        println!(
            "\ninterrupted: {} of {produced} messages finished; the rest were not committed and stay in Kafka.",
            delivered + dead + filtered + dropped
        );
        return ExitCode::from(130);
    }
    let mut problems = Vec::new();
    if let Some(e) = produce_error {
        problems.push(format!("producing failed: {e}"));
    }
    if !matches!(exit, Ok(Ok(_))) {
        problems.push(format!("the bridge ended abnormally: {exit:?}"));
    }
    if delivered + dead + filtered + dropped != produced {
        problems.push(format!(
            "{} of {produced} messages are unaccounted for",
            produced.saturating_sub(delivered + dead + filtered + dropped)
        ));
    }
    if stats.unique_ids < ProduceCounts::get(&counts.expect_deliver) {
        problems.push("the sandbox accepted fewer events than were deliverable".into());
    }
    if dlq_count != Some(dead) {
        problems.push(format!(
            "the DLQ topic holds {dlq_count:?} records, expected {dead}"
        ));
    }
    if ProduceCounts::get(&counts.expect_dead_letter) != dead {
        problems.push("dead-lettered count differs from the deliberately bad messages".into());
    }
    if problems.is_empty() {
        println!("\nevery event is accounted for: delivered, dead-lettered with a reason, or filtered by a rule.");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("PROBLEM: {p}");
        }
        ExitCode::FAILURE
    }
}

fn start_broker() -> Result<MockBroker, rdkafka::error::KafkaError> {
    let b = MockBroker::start(1)?;
    b.create_topic("shop.events", 4)?;
    b.create_topic("shop.orders", 2)?;
    Ok(b)
}

fn print_progress(run: &Run, elapsed: Duration, tty: bool) {
    let t = &run.metrics.totals;
    let produced = ProduceCounts::get(&run.counts.produced);
    let delivered = Totals::get(&t.delivered);
    let finished = run.finished();
    let rate = delivered as f64 / elapsed.as_secs_f64().max(0.001);
    let line = format!(
        "produced {produced:>7} | delivered {delivered:>7} | dead-lettered {:>5} | filtered {:>5} | in flight {:>4} | lag {:>6} | {rate:>7.0} delivered/s",
        Totals::get(&t.dead_lettered),
        Totals::get(&t.filtered),
        run.metrics.in_flight_messages.get(),
        produced.saturating_sub(finished),
    );
    if tty {
        print!("\r{line}");
        let _ = std::io::stdout().flush();
    } else {
        println!("{line}");
    }
}

fn dead_letter_reasons(m: &Metrics) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for family in m.registry.gather() {
        if family.name() != "mcm_bridge_messages_dead_lettered_total" {
            continue;
        }
        for metric in family.get_metric() {
            let labels: Vec<String> = metric
                .get_label()
                .iter()
                .map(|l| format!("{}={}", l.name(), l.value()))
                .collect();
            out.push((labels.join(" "), metric.get_counter().get_value() as u64));
        }
    }
    out.sort();
    out
}

/// Records in a topic: the sum of its partitions' high watermarks (nothing is ever deleted here).
fn count_messages(bootstrap: &str, topic: &str) -> Option<u64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let partitions = md.topics().first()?.partitions().len() as i32;
    let mut total = 0u64;
    for p in 0..partitions {
        let (lo, hi) = c.fetch_watermarks(topic, p, Duration::from_secs(5)).ok()?;
        total += u64::try_from(hi - lo).ok()?;
    }
    Some(total)
}
