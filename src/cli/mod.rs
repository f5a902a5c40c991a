//! Implementations of the subcommands; `main.rs` only dispatches here.

pub mod map;
pub mod test;
pub mod validate;
