//! The MCM User Event API: wire model, validation rules, and (elsewhere in this module) the HTTP
//! client and response classification.

pub mod event;
pub mod validate;
