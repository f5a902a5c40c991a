//! Shared harness for whole-pipeline tests: a real Kafka-protocol broker (librdkafka's mock
//! cluster, in this process), the MCM sandbox over real HTTP, and the bridge's own `pipeline::run`.
#![allow(dead_code)]

pub mod alerting;
pub mod apache_kafka;
pub mod apicurio;
pub mod python_serializers;
pub use apache_kafka::{ApacheKafka, KafkaOptions};

use mcm_bridge::config::Config;
use mcm_bridge::kafka::mock::MockBroker;
use mcm_bridge::mapping::MappingPlan;
use mcm_bridge::observe::health::Health;
use mcm_bridge::observe::metrics::Metrics;
use mcm_bridge::pipeline::coordinator::Exit;
use mcm_bridge::sandbox::{SandboxConfig, SandboxHandle};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "test-key-7f3a";
pub const PLATFORM: &str = "TEST_PLATFORM";

/// The mapping used by pipeline tests: `kind` chooses the event type; `page` feeds PAGE_VIEW.
pub const TEST_TOPICS: &str = r#"
topics:
  - topic: events
    on_no_match: dlq
    fields:
      id: {path: id}
      timestamp: {path: ts, transform: epoch_millis}
      channel_type: SITE
      user_id: {path: user}
    rules:
      - when: {field: kind, equals: home}
        event_type: HOME
      - when: {field: kind, equals: page}
        event_type: PAGE_VIEW
        fields:
          page_id: {path: page}
"#;

/// The consumer group protocol a test's bridge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The classic protocol, cooperative-sticky (the default), client-side 6 s session.
    Classic,
    /// KIP-848 (`group.protocol=consumer`); the 6 s session is the broker's (scripts/kafka.py).
    Consumer,
}

/// Where a test's bridge connects: brokers and the group protocol. `&str` is a bootstrap list
/// with the classic protocol.
pub trait KafkaTarget {
    fn bootstrap(&self) -> &str;
    fn protocol(&self) -> Protocol {
        Protocol::Classic
    }
}

impl KafkaTarget for &str {
    fn bootstrap(&self) -> &str {
        self
    }
}

impl KafkaTarget for String {
    fn bootstrap(&self) -> &str {
        self
    }
}

impl KafkaTarget for TestBroker {
    fn bootstrap(&self) -> &str {
        self.bootstrap_servers()
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl<T: KafkaTarget> KafkaTarget for &T {
    fn bootstrap(&self) -> &str {
        (*self).bootstrap()
    }
    fn protocol(&self) -> Protocol {
        (*self).protocol()
    }
}

/// The `kafka:` settings of a test bridge for `target`.
pub fn kafka_yaml(target: &impl KafkaTarget, group: &str) -> String {
    let bootstrap = target.bootstrap();
    match target.protocol() {
        Protocol::Classic => format!(
            r#"kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: {group}
  session_timeout: 6s
  commit_interval: 200ms
  properties:
    heartbeat.interval.ms: 500"#
        ),
        Protocol::Consumer => format!(
            r#"kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: {group}
  group_protocol: consumer
  commit_interval: 200ms"#
        ),
    }
}

/// A bridge configuration pointing at `target` (a bootstrap list or a [`TestBroker`]) and the
/// sandbox.
pub fn config_text(
    target: impl KafkaTarget,
    sandbox_url: &str,
    group: &str,
    delivery_extra: &str,
    mcm_extra: &str,
) -> String {
    let kafka = kafka_yaml(&target, group);
    format!(
        r#"
{kafka}
mcm:
  base_url: {sandbox_url}
  allow_insecure_http: true
  platform_id: {PLATFORM}
  api_key: {API_KEY}
  timeout: 5s
  future_tolerance: 1h
  retry:
    initial_backoff: 10ms
    max_backoff: 200ms
    max_attempts: 50
  circuit_breaker:
    failure_threshold: 1000
    probe_interval: 500ms
{mcm_extra}
delivery:
  drain_timeout: 3s
{delivery_extra}
observe:
  listen: 127.0.0.1:0
{TEST_TOPICS}"#
    )
}

pub fn load(text: &str) -> (Config, MappingPlan) {
    let env = |_: &str| -> Option<String> { None };
    load_env(text, &env)
}

/// [`load`] with `${VAR}` served by `env`.
pub fn load_env(
    text: &str,
    env: &dyn mcm_bridge::config::interpolate::Env,
) -> (Config, MappingPlan) {
    let cfg =
        mcm_bridge::config::load_str(text, Path::new("."), env, Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
    let mut errors = Vec::new();
    let plan = mcm_bridge::mapping::compile(&cfg.topics, &mut errors);
    assert!(errors.is_empty(), "mapping errors: {errors:?}");
    (cfg, plan)
}

pub async fn sandbox(dir: &Path) -> SandboxHandle {
    let mut cfg = SandboxConfig::new(PLATFORM, API_KEY);
    cfg.record = Some(dir.join("accepted.jsonl"));
    mcm_bridge::sandbox::spawn(cfg)
        .await
        .expect("sandbox starts")
}

/// A running bridge (the library pipeline in this process).
pub struct Bridge {
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    task: tokio::task::JoinHandle<Exit>,
}

/// The bridge's logs, through libtest's capture: printed only for a failing test, next to its
/// panic, which is what a flaky failure in CI needs to be understood. `TEST_LOG` overrides the
/// filter (e.g. `TEST_LOG=debug`).
pub fn init_test_logs() {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "mcm_bridge=info,warn".into());
    // A second test in the same binary finds the subscriber already set: fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(tracing_subscriber::fmt::TestWriter::new().and(|| CapturedLogs))
        .with_ansi(false)
        .try_init();
}

/// Every log line of this test binary's in-process bridges (all tests of the binary together:
/// match on something unique to the test, such as its topic or group).
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct CapturedLogs;

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = LOGS.lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log lines that contain every one of `parts`.
pub fn log_lines_with(parts: &[&str]) -> Vec<String> {
    let Ok(l) = LOGS.lock() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&l)
        .lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .map(str::to_string)
        .collect()
}

impl Bridge {
    pub fn start(text: &str) -> Bridge {
        let (cfg, plan) = load(text);
        Bridge::start_loaded(cfg, plan)
    }

    /// Starts a bridge on a configuration already loaded (e.g. with [`load_env`]).
    pub fn start_loaded(cfg: Config, plan: MappingPlan) -> Bridge {
        Bridge::start_with(cfg, plan, Arc::new(Metrics::new()), Default::default())
    }

    /// [`Bridge::start_loaded`] with the pipeline's controls (live reloads) and its metrics.
    pub fn start_with(
        cfg: Config,
        plan: MappingPlan,
        metrics: Arc<Metrics>,
        controls: mcm_bridge::pipeline::Controls,
    ) -> Bridge {
        init_test_logs();
        let health = Arc::new(Health::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (metrics, health, shutdown) = (metrics.clone(), health.clone(), shutdown.clone());
            async move {
                mcm_bridge::pipeline::run_with(
                    Arc::new(cfg),
                    Arc::new(plan),
                    metrics,
                    health,
                    shutdown,
                    controls,
                )
                .await
                .expect("pipeline starts")
            }
        });
        Bridge {
            shutdown,
            metrics,
            health,
            task,
        }
    }

    /// True once the bridge's pipeline ended by itself (or was stopped).
    pub fn has_exited(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn stop(self) -> Exit {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("bridge stops within 30 s")
            .expect("bridge task")
    }

    /// Serves this bridge's `/metrics`, `/healthz` and `/readyz` on a free loopback port until
    /// the bridge stops; returns `host:port`.
    pub async fn serve_metrics(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(mcm_bridge::observe::server::serve(
            listener,
            self.metrics.clone(),
            self.health.clone(),
            self.shutdown.clone().cancelled_owned(),
        ));
        addr.to_string()
    }

    pub fn delivered(&self) -> u64 {
        self.metrics
            .totals
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn dead_lettered(&self) -> u64 {
        self.metrics
            .totals
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn finished(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let t = &self.metrics.totals;
        t.delivered.load(Relaxed)
            + t.dead_lettered.load(Relaxed)
            + t.filtered.load(Relaxed)
            + t.dropped.load(Relaxed)
    }
}

pub fn broker(topic: &str, partitions: i32) -> MockBroker {
    let b = MockBroker::start(1).expect("mock broker");
    b.create_topic(topic, partitions).expect("topic");
    b
}

/// Which broker a whole-service test runs against (see [`each_broker!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// librdkafka's mock cluster, in this process.
    Mock,
    /// Apache Kafka from its jars, one node, with the bridge on the given group protocol.
    Apache(Protocol),
}

impl Backend {
    /// `None` (and a line on stderr) when `SKIP_APACHE_KAFKA=1` skips real-broker tests.
    pub fn apache(protocol: Protocol) -> Option<Backend> {
        if apache_kafka::skipped() {
            eprintln!("SKIP_APACHE_KAFKA=1: skipping this Apache Kafka variant");
            return None;
        }
        Some(Backend::Apache(protocol))
    }

    /// Starts the broker and creates `topic` with `partitions` partitions.
    pub fn broker(self, topic: &str, partitions: i32) -> TestBroker {
        let b = self.start();
        b.create_topic(topic, partitions);
        b
    }

    /// Apache Kafka started with `opts` (e.g. 3 nodes), with the bridge on `protocol`.
    pub fn apache_with(protocol: Protocol, opts: &KafkaOptions) -> TestBroker {
        TestBroker {
            kind: BrokerKind::Apache(ApacheKafka::start(opts)),
            protocol,
        }
    }

    /// Starts the broker with no topic.
    pub fn start(self) -> TestBroker {
        match self {
            Backend::Mock => TestBroker {
                kind: BrokerKind::Mock(MockBroker::start(1).expect("mock broker")),
                protocol: Protocol::Classic,
            },
            Backend::Apache(protocol) => TestBroker {
                kind: BrokerKind::Apache(ApacheKafka::start_single()),
                protocol,
            },
        }
    }
}

/// A running broker of either kind, and the group protocol the test's bridges use on it.
pub struct TestBroker {
    kind: BrokerKind,
    pub protocol: Protocol,
}

enum BrokerKind {
    Mock(MockBroker),
    Apache(ApacheKafka),
}

impl TestBroker {
    pub fn bootstrap_servers(&self) -> &str {
        match &self.kind {
            BrokerKind::Mock(m) => m.bootstrap_servers(),
            BrokerKind::Apache(k) => k.bootstrap_servers(),
        }
    }

    /// Creates a topic (Apache Kafka does not auto-create: a DLQ topic must exist too).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match &self.kind {
            BrokerKind::Mock(m) => m.create_topic(topic, partitions).expect("topic"),
            BrokerKind::Apache(k) => k.create_topic_with(topic, partitions, &[]),
        }
    }

    pub fn mock(&self) -> Option<&MockBroker> {
        match &self.kind {
            BrokerKind::Mock(m) => Some(m),
            BrokerKind::Apache(_) => None,
        }
    }

    /// On Apache Kafka, asserts that `group` is a group of this test's protocol, as the broker
    /// lists it (`kafka-consumer-groups --list --type`): proof that `group_protocol: consumer`
    /// really runs KIP-848 rather than falling back to the classic protocol.
    pub fn assert_group_type(&self, group: &str) {
        let Some(k) = self.apache() else { return };
        let out = k.tool(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &["--bootstrap-server", "{bootstrap}", "--list", "--type"],
        );
        let want = match self.protocol {
            Protocol::Classic => "classic",
            Protocol::Consumer => "consumer",
        };
        let found = out.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&group)
                && cols.get(1).is_some_and(|t| t.eq_ignore_ascii_case(want))
        });
        assert!(
            found,
            "group {group} is not a {want} group on the broker:\n{out}"
        );
    }

    /// On Apache Kafka, the node id of `group`'s coordinator, as the broker describes it.
    pub fn group_coordinator(&self, group: &str) -> Option<u32> {
        let k = self.apache()?;
        let out = k.tool(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &[
                "--bootstrap-server",
                "{bootstrap}",
                "--describe",
                "--group",
                group,
                "--state",
            ],
        );
        // GROUP  COORDINATOR (ID)  ASSIGNMENT-STRATEGY  STATE  #MEMBERS
        // g      127.0.0.1:41234 (2)  ...
        out.lines()
            .filter(|l| l.split_whitespace().next() == Some(group))
            .find_map(|l| {
                let open = l.find('(')?;
                let close = l[open..].find(')')? + open;
                l[open + 1..close].trim().parse().ok()
            })
    }

    pub fn apache(&self) -> Option<&ApacheKafka> {
        match &self.kind {
            BrokerKind::Apache(k) => Some(k),
            BrokerKind::Mock(_) => None,
        }
    }
}

/// Runs the async test body `$name(backend: Backend)` three times, as `$name::mock`,
/// `$name::kafka_classic` and `$name::kafka_consumer`: on librdkafka's mock cluster, and on
/// Apache Kafka with each consumer group protocol.
#[macro_export]
macro_rules! each_broker {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mock() {
                super::$name(Backend::Mock).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn kafka_classic() {
                if let Some(b) = Backend::apache(Protocol::Classic) {
                    super::$name(b).await
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn kafka_consumer() {
                if let Some(b) = Backend::apache(Protocol::Consumer) {
                    super::$name(b).await
                }
            }
        }
    };
}

/// A JSON test event with a unique id.
pub fn event(id: &str, kind: &str) -> Vec<u8> {
    let now = chrono_now_ms() - 60_000;
    serde_json::to_vec(&serde_json::json!({
        "id": id, "kind": kind, "ts": now, "user": format!("user-{id}"), "page": format!("page-{id}")
    }))
    .expect("json")
}

pub fn chrono_now_ms() -> i64 {
    mcm_bridge::mcm::validate::now_ms()
}

/// A record to produce: partition, key, value.
pub type Record = (i32, Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces records and waits until all are acknowledged.
pub fn produce(bootstrap: &str, topic: &str, records: &[Record]) {
    produce_at(bootstrap, topic, records, None);
}

/// [`produce`] with every record's timestamp set to `timestamp_ms` (the producer's clock when
/// `None`).
pub fn produce_at(bootstrap: &str, topic: &str, records: &[Record], timestamp_ms: Option<i64>) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for (part, key, payload) in records {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(*part);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = payload {
            rec = rec.payload(v);
        }
        if let Some(ts) = timestamp_ms {
            rec = rec.timestamp(ts);
        }
        let mut rec = rec;
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    p.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

impl Bridge {
    /// [`wait_until`], but a timeout also prints the bridge's gauges and counters (histograms
    /// left out), so a failure in CI says what state the bridge was in.
    pub async fn wait(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if !poll_until(timeout, cond).await {
            let state: String = self
                .metrics
                .render()
                .lines()
                .filter(|l| !l.starts_with('#') && !l.contains("_bucket{"))
                .map(|l| format!("  {l}\n"))
                .collect();
            panic!("timed out after {timeout:?} waiting for {what}; bridge metrics:\n{state}");
        }
    }
}

/// Polls `cond` every 50 ms until it holds (true) or `timeout` passes (false).
async fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, cond).await,
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Committed offsets of `group` for each partition (`None` when nothing is committed).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// The high watermark (end offset) of each partition.
pub fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// Every record of `topic` (all partitions), read from the beginning.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
    let ends = end_offsets(bootstrap, topic, partitions);
    let total: i64 = ends.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    while (out.len() as i64) < total && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out
}

/// Headers of a message as a map (UTF-8 values).
pub fn headers(m: &OwnedMessage) -> BTreeMap<String, String> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The distinct ids the sandbox accepted (read back from its record file).
pub async fn accepted_set(sb: &SandboxHandle) -> std::collections::HashSet<String> {
    sb.accepted_ids()
        .await
        .expect("sandbox record")
        .into_iter()
        .collect()
}

/// Waits until the sandbox has accepted every id in `ids`; after `timeout` panics with `why`,
/// which is given the ids accepted so far (to say how many are missing, and what state the
/// bridge is in).
pub async fn wait_all_accepted(
    sb: &SandboxHandle,
    ids: &[String],
    timeout: Duration,
    why: impl Fn(&std::collections::HashSet<String>) -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = accepted_set(sb).await;
        if ids.iter().all(|id| got.contains(id)) {
            return;
        }
        assert!(Instant::now() < deadline, "{}", why(&got));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many of `ids` are not in `got`.
pub fn missing(ids: &[String], got: &std::collections::HashSet<String>) -> usize {
    ids.iter().filter(|id| !got.contains(*id)).count()
}

/// Counts of each id in `ids`.
pub fn counts(ids: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

/// [`config_text`] with another `topics:` section (a YAML text starting with `topics:`) in place of
/// [`TEST_TOPICS`], for tests that bring their own mapping.
pub fn config_text_with_topics(
    target: impl KafkaTarget,
    sandbox_url: &str,
    group: &str,
    delivery_extra: &str,
    mcm_extra: &str,
    topics: &str,
) -> String {
    config_text(target, sandbox_url, group, delivery_extra, mcm_extra)
        .replace(TEST_TOPICS, &format!("\n{}\n", topics.trim()))
}
