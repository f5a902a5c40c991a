//! The delivery pipeline: Kafka → map → MCM → commit, keeping DESIGN.md contracts 1–7.

pub mod budget;
pub mod lanes;
pub mod offset_tracker;
