//! Delivery: getting one mapped event to MCM with the retry policy, the circuit breaker and the
//! retrying sender the pipeline calls per message. `retry` and `circuit` are pure state and
//! arithmetic (no tokio); `sender` is the async shell that sleeps, waits and calls the client.

pub mod adaptive;
pub mod circuit;
pub mod rate_limit;
pub mod retry;
pub mod sender;
