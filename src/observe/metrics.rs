//! Prometheus metrics. The names are part of the product: the shipped Grafana dashboard and the
//! alert rules depend on them, so they never change. Labels have bounded cardinality: topic,
//! partition, event type, reason codes, classes, HTTP status codes — never a user, item or message
//! id, and never the API key. On Linux the registry also carries the standard `process_*` metrics
//! (CPU seconds, resident memory, file descriptors, threads) of the prometheus crate's process
//! collector. Every name is listed in docs/operations.md ("Metrics").

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX: &str = "mcm_bridge";

/// Process-wide totals for progress displays and tests (cheap to read, no label lookups).
#[derive(Debug, Default)]
pub struct Totals {
    pub consumed: AtomicU64,
    pub delivered: AtomicU64,
    pub filtered: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub dropped: AtomicU64,
    pub committed_commits: AtomicU64,
}

impl Totals {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every metric the bridge exports.
pub struct Metrics {
    pub registry: Registry,
    pub totals: Totals,
    pub messages_consumed: IntCounterVec,
    pub events_delivered: IntCounterVec,
    pub messages_filtered: IntCounterVec,
    pub messages_dead_lettered: IntCounterVec,
    pub messages_dropped: IntCounterVec,
    pub delivery_failures: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_responses: IntCounterVec,
    pub http_request_duration: Histogram,
    pub retries: IntCounterVec,
    pub in_flight_messages: IntGauge,
    pub in_flight_bytes: IntGauge,
    pub retries_waiting: IntGauge,
    pub concurrency_limit: IntGauge,
    pub circuit_state: IntGauge,
    pub halted: IntGauge,
    pub commits: IntCounterVec,
    pub commit_latency: Histogram,
    pub consumer_lag_messages: IntGaugeVec,
    pub consumer_lag_seconds: IntGaugeVec,
    pub partition_last_progress: IntGaugeVec,
    pub assigned_partitions: IntGauge,
    pub rebalances: IntCounterVec,
    pub stale_acks: IntCounter,
    pub partition_pauses: IntCounter,
    pub partition_rewinds: IntCounterVec,
    pub messages_expired: IntCounterVec,
    pub uncommitted_messages: IntGauge,
    pub commits_stalled: IntGauge,
    pub offset_gaps_unchecked: IntCounter,
    pub retention_headroom_messages: IntGaugeVec,
    pub retention_headroom_seconds: IntGaugeVec,
    pub topic_retention_seconds: IntGaugeVec,
    pub build_info: IntGaugeVec,
    pub platform_info: IntGaugeVec,
    pub topic_partitions: IntGaugeVec,
    pub ready: IntGauge,
    pub dlq_write_failures: IntCounter,
    pub kafka_access_denied: IntCounterVec,
    pub dead_letters_held: IntGauge,
    /// 1 in shadow mode (`delivery.mode: shadow`, `run --dry-run`), 0 otherwise.
    pub shadow_mode: IntGauge,
    pub shadow_would_deliver: IntCounterVec,
    pub shadow_would_dead_letter: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub mapping_info: IntGaugeVec,
    pub config_restart_pending: IntGauge,
    /// Schema registry fetches by result (`pipeline::schema_wait`).
    pub schema_fetches: IntCounterVec,
    /// Messages held until their schema is fetched.
    pub schema_wait_messages: IntGauge,
    /// Read on every finished message: which of the two families above it counts in.
    shadow: std::sync::atomic::AtomicBool,
}

/// Status codes pre-created at zero on `http_responses_total`: the ones the MCM API documents and
/// the ones its failure protocol turns on, so the first of each is visible to `rate()`.
const PRECREATED_CODES: [&str; 11] = [
    "200", "400", "401", "403", "404", "429", "500", "502", "503", "504", "error",
];

fn name(n: &str) -> String {
    format!("{PREFIX}_{n}")
}

fn counter_vec(r: &Registry, n: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name(n), help), labels)
        .expect("metric definition is static and valid");
    r.register(Box::new(c.clone()))
        .expect("each metric is registered once");
    c
}

fn gauge(r: &Registry, n: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name(n), help).expect("metric definition is static and valid");
    r.register(Box::new(g.clone()))
        .expect("each metric is registered once");
    g
}

fn gauge_vec(r: &Registry, n: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name(n), help), labels)
        .expect("metric definition is static and valid");
    r.register(Box::new(g.clone()))
        .expect("each metric is registered once");
    g
}

fn histogram(r: &Registry, n: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name(n), help).buckets(buckets))
        .expect("metric definition is static and valid");
    r.register(Box::new(h.clone()))
        .expect("each metric is registered once");
    h
}

/// The `result` label values of `schema_fetches_total`.
pub const SCHEMA_FETCH_RESULTS: [&str; 5] =
    ["ok", "not_found", "invalid", "unavailable", "refused"];

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let m = Metrics {
            messages_consumed: counter_vec(&r, "messages_consumed_total", "Messages taken from Kafka.", &["topic"]),
            events_delivered: counter_vec(
                &r,
                "events_delivered_total",
                "Events accepted by MCM (2xx).",
                &["topic", "event_type"],
            ),
            messages_filtered: counter_vec(
                &r,
                "messages_filtered_total",
                "Messages deliberately skipped by a mapping rule.",
                &["topic", "reason"],
            ),
            messages_dead_lettered: counter_vec(
                &r,
                "messages_dead_lettered_total",
                "Messages written to the dead-letter topic (and acknowledged by Kafka).",
                &["topic", "reason"],
            ),
            messages_dropped: counter_vec(
                &r,
                "messages_dropped_total",
                "Undeliverable messages dropped by an on_failure: drop policy.",
                &["topic", "reason"],
            ),
            delivery_failures: counter_vec(
                &r,
                "delivery_failures_total",
                "Messages that could not be delivered, by class (decode, mapping, validation, permanent, exhausted, fatal).",
                &["topic", "class"],
            ),
            http_requests: counter_vec(&r, "http_requests_total", "Requests to the MCM API.", &["status_class"]),
            http_responses: counter_vec(
                &r,
                "http_responses_total",
                "MCM API answers by HTTP status code as the server sent it (100-599), or `error` when no response came (timeout, connection error).",
                &["code"],
            ),
            http_request_duration: histogram(
                &r,
                "http_request_duration_seconds",
                "MCM API request latency.",
                latency_buckets.clone(),
            ),
            retries: counter_vec(&r, "retries_total", "Retried MCM requests.", &["reason"]),
            in_flight_messages: gauge(&r, "in_flight_messages", "Messages taken from Kafka and not yet finished."),
            in_flight_bytes: gauge(&r, "in_flight_bytes", "Payload bytes of in-flight messages."),
            retries_waiting: gauge(
                &r,
                "retries_waiting_messages",
                "In-flight messages waiting out a retry backoff (parked: they hold no request slot).",
            ),
            concurrency_limit: gauge(
                &r,
                "concurrency_limit",
                "Requests allowed in flight now (adaptive, within min/max_in_flight).",
            ),
            circuit_state: gauge(&r, "circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open."),
            halted: gauge(&r, "halted", "1 while delivery is halted (MCM configuration error, dead letters the DLQ topic refuses, or on_failure: halt)."),
            commits: counter_vec(&r, "commits_total", "Offset commits.", &["result"]),
            commit_latency: histogram(&r, "commit_latency_seconds", "Synchronous offset commit latency.", latency_buckets),
            consumer_lag_messages: gauge_vec(
                &r,
                "consumer_lag_messages",
                "Broker end offset minus the group's committed offset, sampled from the broker every 2 s (also while paused).",
                &["topic", "partition"],
            ),
            consumer_lag_seconds: gauge_vec(
                &r,
                "consumer_lag_seconds",
                "Age of the oldest message taken from this partition and not finished (0 when none; a backlog not yet fetched shows in consumer_lag_messages).",
                &["topic", "partition"],
            ),
            partition_last_progress: gauge_vec(
                &r,
                "partition_last_progress_timestamp_seconds",
                "When the partition's watermark last advanced (Unix seconds).",
                &["topic", "partition"],
            ),
            assigned_partitions: gauge(&r, "assigned_partitions", "Partitions currently assigned to this member."),
            rebalances: counter_vec(&r, "rebalances_total", "Rebalance events.", &["kind"]),
            stale_acks: {
                let c = IntCounter::new(
                    name("stale_acks_total"),
                    "Acknowledgements dropped because their partition was revoked (older generation).",
                )
                .expect("static metric");
                r.register(Box::new(c.clone())).expect("registered once");
                c
            },
            partition_pauses: {
                let c = IntCounter::new(
                    name("partition_pauses_total"),
                    "Partitions paused in librdkafka (circuit open, halt, shutdown, or a budget full for over 2 s); each resume refetches.",
                )
                .expect("static metric");
                r.register(Box::new(c.clone())).expect("registered once");
                c
            },
            partition_rewinds: counter_vec(
                &r,
                "partition_rewinds_total",
                "Offsets went backwards within an assignment (the broker lost or replaced the log); tracking restarted.",
                &["topic", "partition"],
            ),
            messages_expired: counter_vec(
                &r,
                "messages_expired_total",
                "Offsets skipped because the broker had deleted them (retention, delete-records) before the bridge processed them: events neither delivered nor dead-lettered. An upper bound (markers and compacted records in the range count too).",
                &["topic", "partition"],
            ),
            uncommitted_messages: gauge(
                &r,
                "uncommitted_messages",
                "Messages finished (delivered, dead-lettered, filtered) but not yet covered by a confirmed commit, over all partitions: what the next owners would replay now.",
            ),
            commits_stalled: gauge(
                &r,
                "commits_stalled",
                "1 while intake is stopped because no commit has been confirmed for 5 commit intervals (at least 1 s) with finished work waiting; partitions over delivery.max_uncommitted_per_partition stop too.",
            ),
            offset_gaps_unchecked: {
                let c = IntCounter::new(
                    name("offset_gaps_unchecked_total"),
                    "Skipped offset ranges that could not be checked against the log start (more than 100,000 waiting); a loss among them would go uncounted.",
                )
                .expect("static metric");
                r.register(Box::new(c.clone())).expect("registered once");
                c
            },
            retention_headroom_messages: gauge_vec(
                &r,
                "retention_headroom_messages",
                "The group's committed offset minus the log start offset: messages retention may still delete before it reaches offsets this group has not finished. Negative: committed offsets are already gone.",
                &["topic", "partition"],
            ),
            retention_headroom_seconds: gauge_vec(
                &r,
                "retention_headroom_seconds",
                "The topic's retention.ms minus the age of the oldest unfinished message: time left before it may be deleted (only for topics with time-based retention).",
                &["topic", "partition"],
            ),
            topic_retention_seconds: gauge_vec(
                &r,
                "topic_retention_seconds",
                "The topic's retention.ms in seconds, as the broker reports it (absent for -1, unlimited).",
                &["topic"],
            ),
            build_info: gauge_vec(&r, "build_info", "Build information.", &["version"]),
            platform_info: gauge_vec(
                &r,
                "platform_info",
                "1, labelled with the MCM platform id this bridge delivers to and its Kafka consumer group (what alerts and the dashboard join on to tell groups and test/production platforms apart).",
                &["platform_id", "group"],
            ),
            topic_partitions: gauge_vec(
                &r,
                "topic_partitions",
                "Partitions of each subscribed topic, from the broker's metadata (every 30 s): compare with the sum of assigned_partitions over the group to see partitions without an owner.",
                &["topic"],
            ),
            ready: gauge(&r, "ready", "1 while /readyz answers 200, 0 while it answers 503 (set at each scrape)."),
            dlq_write_failures: {
                let c = IntCounter::new(
                    name("dlq_write_failures_total"),
                    "Failed dead-letter writes (retried; the offset stays uncommitted).",
                )
                .expect("static metric");
                r.register(Box::new(c.clone())).expect("registered once");
                c
            },
            kafka_access_denied: counter_vec(
                &r,
                "kafka_access_denied_total",
                "Kafka refused the bridge's login (right=authenticate) or a right it needs (read on the group or a topic: the bridge stops; write on the DLQ topic: dead letters are held), once per occurrence, not per retry.",
                &["right", "resource"],
            ),
            dead_letters_held: gauge(
                &r,
                "dead_letters_held",
                "Dead letters waiting because Kafka refused the DLQ write (their partitions paused, their offsets not committed) until a probe gets through.",
            ),
            shadow_mode: gauge(
                &r,
                "shadow_mode",
                "1 while the bridge runs in shadow mode (delivery.mode: shadow, run --dry-run): it maps and validates, never POSTs to MCM nor writes the DLQ, and counts in shadow_would_*_total instead of events_delivered_total and messages_dead_lettered_total.",
            ),
            shadow_would_deliver: counter_vec(
                &r,
                "shadow_would_deliver_total",
                "Shadow mode: events that passed mapping and validation and would have been POSTed to MCM.",
                &["topic", "event_type"],
            ),
            shadow_would_dead_letter: counter_vec(
                &r,
                "shadow_would_dead_letter_total",
                "Shadow mode: messages that would have been dead-lettered, by reject reason.",
                &["topic", "reason"],
            ),
            config_reloads: counter_vec(
                &r,
                "config_reloads_total",
                "Configuration reloads (SIGHUP or a changed file under run --watch-config), by result: applied, unchanged, invalid (the old rules stay), restart_required (the topics changed: the old rules stay).",
                &["result"],
            ),
            mapping_info: gauge_vec(
                &r,
                "mapping_info",
                "1, labelled with the hash of the mapping rules in use (the interpolated topics section): which rules each replica runs after a reload.",
                &["hash"],
            ),
            config_restart_pending: gauge(
                &r,
                "config_restart_pending",
                "1 when the configuration file holds settings outside topics that differ from the running ones (kafka, mcm, delivery, observe): they take effect at the next restart.",
            ),
            schema_fetches: counter_vec(
                &r,
                "schema_fetches_total",
                "Schema registry fetches (a schema id and its references), by result: ok, not_found (the registry has no such id: its messages are dead-lettered as schema_not_found), invalid (the schema does not parse), unavailable (retried; consumption waits) and refused (401/403 or an answer that is not a registry's: consumption waits until fixed).",
                &["result"],
            ),
            schema_wait_messages: gauge(
                &r,
                "schema_wait_messages",
                "Messages held (consumption paused) until the schema they name is fetched from the registry; stays above 0 while the registry is unavailable or refuses.",
            ),
            shadow: std::sync::atomic::AtomicBool::new(false),
            registry: r,
            totals: Totals::default(),
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Pre-create the label values every dashboard and alert uses, at zero, so the first
        // increment is visible to rate() instead of creating the series.
        for result in ["ok", "error"] {
            m.commits.with_label_values(&[result]);
        }
        for class in ["2xx", "3xx", "4xx", "5xx", "error"] {
            m.http_requests.with_label_values(&[class]);
        }
        for code in PRECREATED_CODES {
            m.http_responses.with_label_values(&[code]);
        }
        for kind in ["assign", "revoke", "lost"] {
            m.rebalances.with_label_values(&[kind]);
        }
        for reason in ["throttled", "server_error", "timeout", "connect"] {
            m.retries.with_label_values(&[reason]);
        }
        for result in ["applied", "unchanged", "invalid", "restart_required"] {
            m.config_reloads.with_label_values(&[result]);
        }
        for result in SCHEMA_FETCH_RESULTS {
            m.schema_fetches.with_label_values(&[result]);
        }
        m.register_process_collector();
        m
    }

    /// The standard `process_*` metrics (CPU, memory, file descriptors, threads), read from
    /// `/proc/self` at each scrape. Linux only; elsewhere nothing is registered.
    #[cfg(target_os = "linux")]
    fn register_process_collector(&self) {
        let collector = prometheus::process_collector::ProcessCollector::for_self();
        if let Err(e) = self.registry.register(Box::new(collector)) {
            tracing::warn!(error = %e, "cannot register the process metrics");
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn register_process_collector(&self) {}

    /// Sets `platform_info{platform_id, group}` to 1: which MCM platform this bridge delivers
    /// to, for which consumer group. Set once at start-up (both come from the configuration).
    pub fn set_platform(&self, platform_id: &str, group: &str) {
        self.platform_info
            .with_label_values(&[platform_id, group])
            .set(1);
    }

    /// Shadow mode from now on: finished messages count in `shadow_would_*_total`.
    pub fn set_shadow(&self) {
        self.shadow.store(true, Ordering::Relaxed);
        self.shadow_mode.set(1);
    }

    /// Counts one event MCM accepted, or in shadow mode one that would have been sent.
    pub fn count_delivered(&self, topic: &str, event_type: &str) {
        let family = if self.shadow.load(Ordering::Relaxed) {
            &self.shadow_would_deliver
        } else {
            &self.events_delivered
        };
        family.with_label_values(&[topic, event_type]).inc();
        Totals::inc(&self.totals.delivered);
    }

    /// Counts one message written to the DLQ, or in shadow mode one that would have been.
    pub fn count_dead_lettered(&self, topic: &str, reason: &str) {
        let family = if self.shadow.load(Ordering::Relaxed) {
            &self.shadow_would_dead_letter
        } else {
            &self.messages_dead_lettered
        };
        family.with_label_values(&[topic, reason]).inc();
        Totals::inc(&self.totals.dead_lettered);
    }

    /// Sets `mapping_info{hash}` to 1 for the rules now in use (and drops the previous hash).
    pub fn set_mapping_hash(&self, hash: &str) {
        self.mapping_info.reset();
        self.mapping_info.with_label_values(&[hash]).set(1);
    }

    /// Counts one MCM answer in `http_requests_total{status_class}` and
    /// `http_responses_total{code}`.
    pub fn count_response(&self, status: Option<u16>) {
        self.http_requests
            .with_label_values(&[Metrics::status_class(status)])
            .inc();
        let mut buf = [0u8; 3];
        self.http_responses
            .with_label_values(&[Metrics::status_code(status, &mut buf)])
            .inc();
    }

    /// The `code` label of `http_responses_total`: the status as the server sent it when it is a
    /// valid HTTP status (100-599), `error` when there was no response, `other` for anything
    /// outside that range (bounded cardinality whatever a proxy answers). Written into `buf`, so
    /// counting an answer allocates nothing.
    pub fn status_code(status: Option<u16>, buf: &mut [u8; 3]) -> &str {
        match status {
            None => "error",
            Some(s @ 100..=599) => {
                // Three ASCII digits: always valid UTF-8.
                buf[0] = b'0' + (s / 100) as u8;
                buf[1] = b'0' + (s / 10 % 10) as u8;
                buf[2] = b'0' + (s % 10) as u8;
                std::str::from_utf8(buf).unwrap_or("other")
            }
            Some(_) => "other",
        }
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// `2xx`, `4xx`, `5xx`, or `error` (no response).
    pub fn status_class(status: Option<u16>) -> &'static str {
        match status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            _ => "error",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(status: Option<u16>) -> String {
        let mut buf = [0u8; 3];
        Metrics::status_code(status, &mut buf).to_string()
    }

    #[test]
    fn status_codes_are_labelled_as_sent_within_the_valid_range() {
        assert_eq!(code(Some(200)), "200");
        assert_eq!(code(Some(401)), "401");
        assert_eq!(code(Some(429)), "429");
        assert_eq!(code(Some(100)), "100");
        assert_eq!(code(Some(599)), "599");
        assert_eq!(code(None), "error");
    }

    #[test]
    fn status_codes_outside_http_are_one_bounded_label() {
        for s in [0, 1, 99, 600, 999, u16::MAX] {
            assert_eq!(code(Some(s)), "other", "status {s}");
        }
        let labels: std::collections::HashSet<String> =
            (0..=u16::MAX).map(|s| code(Some(s))).collect();
        assert_eq!(labels.len(), 501, "100..=599 and `other`");
    }

    #[test]
    fn a_response_counts_its_class_and_its_code() {
        let m = Metrics::new();
        m.count_response(Some(429));
        m.count_response(Some(429));
        m.count_response(None);
        assert_eq!(m.http_requests.with_label_values(&["4xx"]).get(), 2);
        assert_eq!(m.http_responses.with_label_values(&["429"]).get(), 2);
        assert_eq!(m.http_responses.with_label_values(&["error"]).get(), 1);
        assert_eq!(m.http_requests.with_label_values(&["error"]).get(), 1);
    }

    #[test]
    fn platform_info_names_the_platform_and_the_group() {
        let m = Metrics::new();
        m.set_platform("ACME_TEST", "shop-bridge");
        let text = m.render();
        assert!(
            text.contains(
                r#"mcm_bridge_platform_info{group="shop-bridge",platform_id="ACME_TEST"} 1"#
            ),
            "{text}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_exported() {
        let text = Metrics::new().render();
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
            assert!(text.contains(&format!("\n{name} ")), "{name} missing");
        }
    }
}
