//! Kafka I/O: the consumer with its rebalance context and poll thread, the lag sampler, and the
//! DLQ producer.

pub mod consumer;
pub mod dlq;
pub mod lag;
pub mod mock;
pub mod replay;
