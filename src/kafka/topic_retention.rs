//! Each subscribed topic's `retention.ms`, read from the broker (DescribeConfigs) for the
//! retention headroom gauges (see [`super::retention`]).
//!
//! Read on the lag sampler's thread through an admin client of its own, once per topic and again
//! every [`REFRESH`] (retention is changed rarely, by an operator). A principal without
//! DescribeConfigs rights, or a broker that does not answer, leaves the value unknown: the time
//! headroom is then simply not exported (logged once), and nothing else depends on it.

use super::security::QuietContext;
use crate::config::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::error::KafkaResult;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often a topic's retention is read again.
pub const REFRESH: Duration = Duration::from_secs(300);
/// How long one DescribeConfigs request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Known `retention.ms` per topic (-1: unlimited), with when each was read.
pub struct TopicRetention {
    admin: AdminClient<QuietContext>,
    known: HashMap<String, (i64, Instant)>,
    warned: bool,
}

impl TopicRetention {
    pub fn new(k: &KafkaConfig) -> KafkaResult<TopicRetention> {
        let c = super::admin_config(k, "admin");
        Ok(TopicRetention {
            admin: c
                .create_with_context(QuietContext {
                    client: "retention",
                })
                .map_err(|e| super::security::scrub(e, k))?,
            known: HashMap::new(),
            warned: false,
        })
    }

    /// `retention.ms` of `topic`, if known.
    pub fn get(&self, topic: &str) -> Option<i64> {
        self.known.get(topic).map(|(ms, _)| *ms)
    }

    /// Reads the retention of those of `topics` not read within [`REFRESH`] (one request).
    pub fn refresh<'a>(&mut self, topics: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut due: Vec<&str> = topics
            .into_iter()
            .filter(|t| {
                self.known
                    .get(*t)
                    .is_none_or(|(_, at)| now.duration_since(*at) >= REFRESH)
            })
            .collect();
        due.sort_unstable();
        due.dedup();
        if due.is_empty() {
            return;
        }
        let specs: Vec<ResourceSpecifier<'_>> =
            due.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let opts = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
        // The lag sampler's own thread: blocking here delays only the next sample.
        let answer = futures::executor::block_on(self.admin.describe_configs(&specs, &opts));
        let results = match answer {
            Ok(r) => r,
            Err(e) => {
                self.warn_once(&format!("describe configs: {e}"));
                return;
            }
        };
        for (topic, result) in due.iter().zip(results) {
            let retention = result.map_err(|code| code.to_string()).and_then(|res| {
                res.get("retention.ms")
                    .and_then(|e| e.value.as_deref())
                    .and_then(|v| v.parse::<i64>().ok())
                    // rdkafka 0.39 turns a per-topic error (TOPIC_AUTHORIZATION_FAILED without
                    // DESCRIBE_CONFIGS) into an empty answer.
                    .ok_or_else(|| format!("no retention.ms in the answer (without the DescribeConfigs right the broker answers nothing: kafka-acls --add --operation DescribeConfigs --topic {topic})"))
            });
            match retention {
                Ok(ms) => {
                    self.known.insert(topic.to_string(), (ms, now));
                }
                Err(e) => self.warn_once(&format!("topic {topic}: {e}")),
            }
        }
    }

    fn warn_once(&mut self, what: &str) {
        if !self.warned {
            tracing::warn!(error = what, "cannot read topic retention (DescribeConfigs); retention_headroom_seconds is not exported for such topics");
            self.warned = true;
        }
    }
}
