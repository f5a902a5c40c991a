//! The MCM User Event API: wire model, validation rules, and (elsewhere in this module) the HTTP
//! client and response classification.

pub mod classify;
pub mod client;
pub mod event;
pub(crate) mod json;
pub mod validate;
