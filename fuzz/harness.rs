//! The fuzz harness, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the stable
//! proptest runs and regression tests (`tests/fuzz_props.rs`), so a crashing input found by either
//! replays through exactly the same code.
//!
//! * [`process_message`]: one Kafka record (payload, key, header and timestamp bytes) through
//!   decode → route → map → validate → serialise, against every block of the five shipped example
//!   configurations. The first four bytes of the input steer it (see [`split_message`]); the rest
//!   is the payload, so a plain JSON seed with a 4-byte prefix is a useful corpus entry.
//! * [`load_config`]: arbitrary text through `config::load_str` and `mapping::compile`.
//!
//! Both return normally on every input; a panic, an abort, a stall or an out-of-memory is the
//! finding. They also check a few invariants that must hold for every accepted result.

#![allow(dead_code)]

use mcm_bridge::config::Config;
use mcm_bridge::mapping::{MappingPlan, Processed, SourceMessage, TopicMapping};
use mcm_bridge::mcm::validate::ValidateOptions;
use std::path::Path;
use std::sync::OnceLock;

/// The example configurations, embedded so the harness needs no working directory.
pub const EXAMPLES: [(&str, &str); 5] = [
    (
        "mcm-bridge.yaml",
        include_str!("../deploy/examples/mcm-bridge.yaml"),
    ),
    (
        "segment.yaml",
        include_str!("../deploy/examples/segment.yaml"),
    ),
    ("ga4.yaml", include_str!("../deploy/examples/ga4.yaml")),
    (
        "ga4-bigquery.yaml",
        include_str!("../deploy/examples/ga4-bigquery.yaml"),
    ),
    (
        "cdp-export.yaml",
        include_str!("../deploy/examples/cdp-export.yaml"),
    ),
];

/// Header names the examples read (`header:` sources) plus one they do not.
pub const HEADER_NAMES: [&str; 3] = ["x-platform", "x-other", "content-type"];

/// "Now" for validation: fixed so a run is reproducible (2024-06-01T00:00:00Z, a little after the
/// example cases' timestamps).
pub const NOW_MS: i64 = 1_717_200_000_000;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads one example (with `${VAR:-default}` defaults) and compiles its rules.
pub fn load_example(text: &str) -> (Config, MappingPlan) {
    let cfg = mcm_bridge::config::load_str(
        text,
        Path::new("."),
        &no_env,
        Vec::<(String, String)>::new(),
    )
    .unwrap_or_else(|e| panic!("example config invalid: {e}"));
    let mut errors = Vec::new();
    let plan = mcm_bridge::mapping::compile(&cfg.topics, &mut errors);
    assert!(errors.is_empty(), "example mapping errors: {errors:?}");
    (cfg, plan)
}

/// Every block of every example, compiled once per process.
pub fn blocks() -> &'static [&'static TopicMapping] {
    static BLOCKS: OnceLock<Vec<&'static TopicMapping>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let mut out = Vec::new();
        for (_, text) in EXAMPLES {
            let (_, plan) = load_example(text);
            let plan: &'static MappingPlan = Box::leak(Box::new(plan));
            out.extend(plan.blocks().iter());
        }
        assert!(!out.is_empty(), "the examples define topic blocks");
        out
    })
}

/// One fuzzer input, split into a Kafka record.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage<'a> {
    pub block: usize,
    pub key: Option<&'a [u8]>,
    pub headers: Vec<(&'static str, Option<&'a [u8]>)>,
    pub timestamp_ms: Option<i64>,
    pub offset: i64,
    pub payload: Option<&'a [u8]>,
}

/// Layout: `[block, flags, key_len, header_len, key.., header.., payload..]`.
///
/// `flags`: bit 0 key present, bits 1–2 which header name (0 = no header), bit 3 header value
/// null, bit 4 tombstone (no payload), bit 5 timestamp present (taken from `key_len`/`header_len`
/// scaled, so it varies without extra bytes), bit 6 negative offset-like metadata. Lengths are
/// clamped to what is left, so every byte string is a valid input.
pub fn split_message(data: &[u8]) -> RawMessage<'_> {
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    let (block, flags, key_len, hdr_len) = (b(0), b(1), b(2) as usize, b(3) as usize);
    let mut rest = data.get(4..).unwrap_or(&[]);
    let mut take = |n: usize| {
        let n = n.min(rest.len());
        let (a, r) = rest.split_at(n);
        rest = r;
        a
    };
    let key_bytes = take(key_len);
    let hdr_bytes = take(hdr_len);
    let key = (flags & 1 != 0).then_some(key_bytes);
    let header_name = match (flags >> 1) & 3 {
        0 => None,
        n => Some(HEADER_NAMES[(n - 1) as usize]),
    };
    let headers = header_name
        .map(|n| vec![(n, (flags & 8 == 0).then_some(hdr_bytes))])
        .unwrap_or_default();
    let payload = (flags & 16 == 0).then_some(rest);
    let timestamp_ms =
        (flags & 32 != 0).then(|| NOW_MS - (key_len as i64 * 256 + hdr_len as i64) * 1_000_000);
    let offset = if flags & 64 != 0 {
        i64::MAX - key_len as i64
    } else {
        key_len as i64
    };
    let n = blocks().len();
    RawMessage {
        block: block as usize % n,
        key,
        headers,
        timestamp_ms,
        offset,
        payload,
    }
}

/// Runs one record through a block and checks the invariants of the outcome.
pub fn process_message(data: &[u8]) {
    let raw = split_message(data);
    let block = blocks()[raw.block];
    let msg = SourceMessage {
        topic: &block.name,
        partition: 0,
        offset: raw.offset,
        key: raw.key,
        headers: &raw.headers,
        timestamp_ms: raw.timestamp_ms,
        payload: raw.payload,
    };
    let opts = ValidateOptions::at(NOW_MS);
    match block.process(&msg, &opts) {
        Processed::Deliver(event) => {
            let id = event.id.as_deref().unwrap_or_default();
            assert!(!id.is_empty(), "a delivered event has an id");
            let body = event.to_json_bytes();
            let back: serde_json::Value =
                serde_json::from_slice(&body).expect("the wire JSON parses back");
            assert!(back.is_object(), "the wire JSON is an object");
            // Processing is deterministic: a redelivered message yields the same event (contract 4).
            assert_eq!(
                block.process(&msg, &opts),
                Processed::Deliver(event),
                "processing is deterministic"
            );
        }
        Processed::Filtered { reason } => assert!(!reason.is_empty()),
        Processed::Reject { reason, .. } => {
            assert!(
                !reason.is_empty()
                    && reason
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "reason codes are snake_case: {reason:?}"
            );
        }
    }
}

/// The config loader and the rule compiler on arbitrary text.
///
/// `api_key_file` is skipped: it names a file to read, and a fuzzer that writes `/dev/zero` there
/// would only test the machine. `${VAR}` resolves from a fixed environment.
pub fn load_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("api_key_file") {
        return;
    }
    let env = |name: &str| (name == "MCM_API_KEY").then(|| "fuzz-key".to_string());
    let overrides = Vec::<(String, String)>::new();
    match mcm_bridge::config::load_str(text, Path::new("/nonexistent"), &env, overrides) {
        Ok(cfg) => {
            let mut errors = Vec::new();
            let _ = mcm_bridge::mapping::compile(&cfg.topics, &mut errors);
            // Error texts render (with their YAML paths) without panicking.
            for e in &errors {
                let _ = e.to_string();
            }
        }
        Err(errs) => {
            let msg = errs.to_string();
            assert!(!msg.is_empty(), "a rejected config says why");
        }
    }
    // The mapping compiler also on whatever `topics:` the text has, whether or not the rest of
    // the config is valid, so rule fuzzing does not depend on a valid `kafka:`/`mcm:` section.
    if let Ok(root) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        let topics = root.get("topics").unwrap_or(&root);
        let mut errors = Vec::new();
        let _ = mcm_bridge::mapping::compile(topics, &mut errors);
    }
}
