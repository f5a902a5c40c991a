//! One Kafka record through decode → map → validate → serialise over every block of the three
//! example configurations. Input layout: see `split_message` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::process_message(data);
});
