//! Observability: metrics, health endpoints and logging.

pub mod health;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod tap;
pub mod tap_server;
