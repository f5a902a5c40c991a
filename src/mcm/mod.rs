//! The MCM User Event API: wire model, validation rules, and (elsewhere in this module) the HTTP
//! client and response classification.

pub mod classify;
pub mod client;
pub mod event;
mod h2_book;
pub mod h2_pool;
pub(crate) mod json;
pub mod validate;
