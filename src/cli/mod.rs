//! Implementations of the subcommands; `main.rs` only dispatches here.

pub mod validate;
