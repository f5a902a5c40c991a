//! Synthetic commerce traffic for the demo, the `generate` command and benchmarks.

pub mod avro;
pub mod others;
pub mod produce;
pub mod shop;

#[cfg(test)]
mod testkit;
