//! Arbitrary text through the config loader (`config::load_str`) and the rule compiler
//! (`mapping::compile`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::load_config(data);
});
