//! mcm-bridge: Kafka consumer group → per-topic YAML mapping → Moloco Commerce Media User Event API.
//!
//! The library holds everything; `src/main.rs` only parses the command line. See DESIGN.md for the
//! data flow and the contracts every module keeps.
#![deny(unsafe_code, rust_2018_idioms)]

pub mod cli;
pub mod config;
pub mod delivery;
pub mod doctor;
pub mod generator;
pub mod kafka;
pub mod malloc_tuning;
pub mod mapping;
pub mod mcm;
pub mod observe;
pub mod pipeline;
pub mod sandbox;
pub mod schema;
