//! An in-process Kafka-protocol broker: librdkafka's mock cluster, for the demo, `dev-broker`
//! and tests. It speaks the real protocol (consumer groups, commits, produce/fetch) and supports
//! fault injection; it lives exactly as long as the [`MockBroker`] value.
#![allow(unsafe_code)]

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaRespErr;

/// A mock Kafka cluster kept alive by its owning producer handle.
pub struct MockBroker {
    handle: BaseProducer,
    bootstrap: String,
}

impl MockBroker {
    /// Starts a cluster with `brokers` brokers. Consumer groups form immediately (the mock's
    /// default initial rebalance delay of ~3 s is set to 0).
    pub fn start(brokers: i32) -> KafkaResult<MockBroker> {
        let handle: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        // SAFETY: `native_ptr` is a live rd_kafka_t owned by `handle`; librdkafka returns the mock
        // cluster it created for that handle (or NULL, checked). The pointer is used only while
        // `handle` is alive, inside this call.
        unsafe {
            let raw = rdkafka::bindings::rd_kafka_handle_mock_cluster(handle.client().native_ptr());
            if raw.is_null() {
                return Err(KafkaError::MockCluster(
                    rdkafka::types::RDKafkaErrorCode::Fail,
                ));
            }
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(raw, 0);
        }
        let bootstrap = handle
            .client()
            .mock_cluster()
            .ok_or(KafkaError::MockCluster(
                rdkafka::types::RDKafkaErrorCode::Fail,
            ))?
            .bootstrap_servers();
        Ok(MockBroker { handle, bootstrap })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    fn with<T>(
        &self,
        f: impl FnOnce(
            &rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        ) -> KafkaResult<T>,
    ) -> KafkaResult<T> {
        let mock = self
            .handle
            .client()
            .mock_cluster()
            .ok_or(KafkaError::MockCluster(
                rdkafka::types::RDKafkaErrorCode::Fail,
            ))?;
        f(&mock)
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        self.with(|m| m.create_topic(topic, partitions, 1))
    }

    /// Takes every broker down (clients see transport failures) or back up.
    pub fn set_brokers_up(&self, up: bool) -> KafkaResult<()> {
        self.with(|m| {
            if up {
                m.broker_up(-1)
            } else {
                m.broker_down(-1)
            }
        })
    }

    /// Makes the next `n` requests of `api` fail with `err` (fault injection).
    pub fn inject_errors(
        &self,
        api: rdkafka::types::RDKafkaApiKey,
        err: RDKafkaRespErr,
        n: usize,
    ) -> KafkaResult<()> {
        self.with(|m| {
            m.request_errors(api, &vec![err; n]);
            Ok(())
        })
    }

    /// Drops the errors still queued for `api` by [`MockBroker::inject_errors`].
    pub fn clear_errors(&self, api: rdkafka::types::RDKafkaApiKey) -> KafkaResult<()> {
        self.with(|m| {
            m.clear_request_errors(api);
            Ok(())
        })
    }
}
