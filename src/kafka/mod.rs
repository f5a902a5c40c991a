//! Kafka I/O: the consumer with its rebalance context and poll thread, and the DLQ producer.

pub mod consumer;
pub mod dlq;
pub mod mock;
pub mod replay;
