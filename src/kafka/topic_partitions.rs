//! `topic_partitions{topic}`: how many partitions each subscribed topic has, from the broker's
//! metadata. Every member exports `assigned_partitions`; when their sum over the group stays
//! below the sum of these totals, some partitions are processed by nobody (no member, or a
//! member Prometheus cannot see) — and since lag series exist only on the owning member, nothing
//! else would show it (alert `McmBridgePartitionsUnowned`).
//!
//! Read on the lag sampler's thread with its client, every [`REFRESH`]: one Metadata request for
//! each exact topic name, or one for all topics when a `pattern:` block is subscribed (the
//! pattern is matched here as librdkafka matches it: a regex search over the topic name, with
//! internal `__…` topics left out). A failed request keeps the last values; a topic that is gone
//! from the answer loses its series. Matching is pure ([`Subscriptions::totals`]) and tested
//! here; the request is a thin shell.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::metadata::Metadata;
use regex::Regex;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::observe::metrics::Metrics;

/// How often the partition counts are read again (partitions are added rarely, by an operator).
pub const REFRESH: Duration = Duration::from_secs(30);
/// How long one Metadata request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the consumer subscribes to: exact names, and librdkafka regex subscriptions (`^…`).
#[derive(Debug)]
pub struct Subscriptions {
    exact: Vec<String>,
    patterns: Vec<Regex>,
}

impl Subscriptions {
    /// From the consumer's subscription list. A pattern the `regex` crate cannot compile (it was
    /// compiled once already by the mapping plan, so this does not happen in practice) is left
    /// out and logged: its topics then have no total, which only hides them from the check.
    pub fn new(subscriptions: &[String]) -> Subscriptions {
        let mut exact = Vec::new();
        let mut patterns = Vec::new();
        for s in subscriptions {
            if s.starts_with('^') {
                match Regex::new(s) {
                    Ok(re) => patterns.push(re),
                    Err(e) => {
                        tracing::warn!(pattern = %s, error = %e, "cannot match this subscription pattern; its topics have no topic_partitions total")
                    }
                }
            } else {
                exact.push(s.clone());
            }
        }
        Subscriptions { exact, patterns }
    }

    fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    fn subscribed(&self, topic: &str) -> bool {
        self.exact.iter().any(|t| t == topic)
            || (!topic.starts_with("__") && self.patterns.iter().any(|re| re.is_match(topic)))
    }

    /// Partition counts of the subscribed topics among `topics` (name, partition count, whether
    /// the broker answered without an error). Topics with an error or no partitions are left
    /// out: nothing there can be owned.
    pub fn totals<'a>(
        &self,
        topics: impl IntoIterator<Item = (&'a str, usize, bool)>,
    ) -> BTreeMap<String, i64> {
        topics
            .into_iter()
            .filter(|(name, n, ok)| *ok && *n > 0 && self.subscribed(name))
            .map(|(name, n, _)| (name.to_string(), i64::try_from(n).unwrap_or(i64::MAX)))
            .collect()
    }
}

/// The refresh state: when the counts were last read, and which topics have a series.
pub struct TopicPartitions {
    subscriptions: Subscriptions,
    next: Instant,
    published: BTreeMap<String, i64>,
    failing: bool,
}

impl TopicPartitions {
    pub fn new(subscriptions: &[String]) -> TopicPartitions {
        TopicPartitions {
            subscriptions: Subscriptions::new(subscriptions),
            next: Instant::now(),
            published: BTreeMap::new(),
            failing: false,
        }
    }

    /// Reads the counts if [`REFRESH`] has passed since the last read, and publishes them.
    pub fn refresh<C: ConsumerContext>(&mut self, client: &BaseConsumer<C>, metrics: &Metrics) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + REFRESH;
        match self.fetch(client) {
            Ok(totals) => {
                if self.failing {
                    tracing::info!("topic metadata can be read again");
                    self.failing = false;
                }
                self.publish(totals, metrics);
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "cannot read topic metadata; topic_partitions keeps its last values");
                    self.failing = true;
                }
            }
        }
    }

    fn fetch<C: ConsumerContext>(
        &self,
        client: &BaseConsumer<C>,
    ) -> rdkafka::error::KafkaResult<BTreeMap<String, i64>> {
        let answers: Vec<Metadata> = if self.subscriptions.has_patterns() {
            vec![client.fetch_metadata(None, REQUEST_TIMEOUT)?]
        } else {
            self.subscriptions
                .exact
                .iter()
                .map(|t| client.fetch_metadata(Some(t), REQUEST_TIMEOUT))
                .collect::<Result<_, _>>()?
        };
        let topics = answers.iter().flat_map(|m| {
            m.topics()
                .iter()
                .map(|t| (t.name(), t.partitions().len(), t.error().is_none()))
        });
        Ok(self.subscriptions.totals(topics))
    }

    fn publish(&mut self, totals: BTreeMap<String, i64>, metrics: &Metrics) {
        for gone in self.published.keys().filter(|t| !totals.contains_key(*t)) {
            let _ = metrics.topic_partitions.remove_label_values(&[gone]);
        }
        for (topic, n) in &totals {
            metrics.topic_partitions.with_label_values(&[topic]).set(*n);
        }
        self.published = totals;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(list: &[&str]) -> Subscriptions {
        Subscriptions::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn exact_names_and_patterns_count_their_topics_only() {
        let s = subs(&["shop.orders", r"^(shop\.ev.*).*"]);
        let totals = s.totals([
            ("shop.orders", 8, true),
            ("shop.events", 8, true),
            ("shop.events.eu", 3, true),
            ("shop.returns", 4, true),
            ("billing", 12, true),
        ]);
        assert_eq!(
            totals,
            BTreeMap::from([
                ("shop.events".to_string(), 8),
                ("shop.events.eu".to_string(), 3),
                ("shop.orders".to_string(), 8),
            ])
        );
    }

    #[test]
    fn topics_with_errors_or_no_partitions_have_no_total() {
        let s = subs(&["a", "b", "^c.*"]);
        let totals = s.totals([("a", 0, true), ("b", 4, false), ("c1", 2, true)]);
        assert_eq!(totals, BTreeMap::from([("c1".to_string(), 2)]));
    }

    #[test]
    fn patterns_leave_internal_topics_out_but_exact_names_do_not() {
        let s = subs(&["^.*"]);
        let totals = s.totals([("__consumer_offsets", 50, true), ("orders", 2, true)]);
        assert_eq!(totals, BTreeMap::from([("orders".to_string(), 2)]));
        let s = subs(&["__special"]);
        assert_eq!(s.totals([("__special", 1, true)]).len(), 1);
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_left_out() {
        let s = subs(&["^(unclosed", "orders"]);
        assert!(!s.has_patterns());
        assert_eq!(s.totals([("orders", 1, true)]).len(), 1);
    }

    #[test]
    fn a_topic_gone_from_the_answer_loses_its_series() {
        let m = Metrics::new();
        let mut tp = TopicPartitions::new(&["a".to_string(), "b".to_string()]);
        tp.publish(BTreeMap::from([("a".into(), 2), ("b".into(), 3)]), &m);
        tp.publish(BTreeMap::from([("a".into(), 4)]), &m);
        let text = m.render();
        assert!(
            text.contains(r#"mcm_bridge_topic_partitions{topic="a"} 4"#),
            "{text}"
        );
        assert!(!text.contains(r#"topic="b""#), "{text}");
    }
}
