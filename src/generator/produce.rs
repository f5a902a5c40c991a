//! Produces generated shop traffic to Kafka at a target rate (for `generate` and `demo`).

use super::avro::AvroWriter;
use super::others::{Shape, SpecGenerator};
use super::shop::{Expect, ShopGenerator, ShopMessage, ShopTopic};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Counts of what was produced, by what the mapping is expected to do with it.
#[derive(Debug, Default)]
pub struct ProduceCounts {
    pub produced: AtomicU64,
    pub expect_deliver: AtomicU64,
    pub expect_filter: AtomicU64,
    pub expect_dead_letter: AtomicU64,
}

impl ProduceCounts {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Where and how fast to produce.
#[derive(Debug, Clone)]
pub struct ProducePlan {
    pub bootstrap: String,
    pub events_topic: String,
    pub orders_topic: String,
    /// Messages per second (0 = as fast as possible).
    pub rate: u64,
    /// Stop after this many messages (`None` = until cancelled).
    pub limit: Option<u64>,
    pub seed: u64,
    pub bad_share: f64,
    pub shape: Shape,
    /// Write the shop shape as Avro in the registry framing (`None`: JSON).
    pub avro: Option<ShopAvro>,
}

/// The writers of `--format avro`: one per shop topic, each with its schema's registry id.
#[derive(Debug, Clone)]
pub struct ShopAvro {
    pub events: AvroWriter,
    pub orders: AvroWriter,
}

enum Generator {
    Shop(ShopGenerator),
    Spec(SpecGenerator),
}

impl Generator {
    fn session(&mut self, now_secs: i64) -> Vec<ShopMessage> {
        match self {
            Generator::Shop(g) => g.session(now_secs),
            Generator::Spec(g) => g.session(now_secs),
        }
    }
}

/// A producer suited to bulk test traffic (idempotent, batched).
pub fn producer(bootstrap: &str) -> Result<FutureProducer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
}

/// Produces until `plan.limit` is reached or `stop` fires; waits for every message to be
/// acknowledged before returning.
pub async fn produce(
    plan: &ProducePlan,
    counts: &ProduceCounts,
    stop: &CancellationToken,
) -> Result<(), KafkaError> {
    let producer = producer(&plan.bootstrap)?;
    let mut generator = match plan.shape {
        Shape::Shop => Generator::Shop(ShopGenerator::new(plan.seed, plan.bad_share)),
        shape => Generator::Spec(SpecGenerator::new(shape, plan.seed, plan.bad_share)),
    };
    let started = Instant::now();
    let mut pending = Vec::new();
    'outer: while !stop.is_cancelled() {
        let now_secs = crate::mcm::validate::now_ms() / 1000;
        for m in generator.session(now_secs) {
            if plan
                .limit
                .is_some_and(|l| ProduceCounts::get(&counts.produced) >= l)
            {
                break 'outer;
            }
            let topic = match m.topic {
                ShopTopic::Events => &plan.events_topic,
                ShopTopic::Orders => &plan.orders_topic,
            };
            let payload = match (&plan.avro, &m.payload) {
                (Some(avro), Some(p)) => {
                    let writer = match m.topic {
                        ShopTopic::Events => &avro.events,
                        ShopTopic::Orders => &avro.orders,
                    };
                    // The shop schemas take every generated message (all fields optional).
                    Some(writer.encode(p).map_err(|e| {
                        tracing::error!(error = %e, "a generated message does not fit its Avro schema");
                        KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessage)
                    })?)
                }
                (_, p) => p.clone(),
            };
            let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(&m.key);
            if let Some(p) = &payload {
                record = record.payload(p);
            }
            let mut record = record;
            loop {
                match producer.send_result(record) {
                    Ok(fut) => {
                        pending.push(fut);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            counts.produced.fetch_add(1, Ordering::Relaxed);
            let bucket = match m.expect {
                Expect::Deliver => &counts.expect_deliver,
                Expect::Filter => &counts.expect_filter,
                Expect::DeadLetter => &counts.expect_dead_letter,
            };
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        if pending.len() > 10_000 {
            for f in pending.drain(..) {
                if let Ok(Err((e, _))) = f.await {
                    return Err(e);
                }
            }
        }
        if plan.rate > 0 {
            // Pace to the target rate: sleep until this many messages are due.
            let due = Duration::from_secs_f64(
                ProduceCounts::get(&counts.produced) as f64 / plan.rate as f64,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    for f in pending {
        if let Ok(Err((e, _))) = f.await {
            return Err(e);
        }
    }
    let _ = producer.flush(Duration::from_secs(30));
    Ok(())
}
