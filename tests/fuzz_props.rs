//! The fuzz harness (`fuzz/harness.rs`) on stable Rust, without libFuzzer:
//!
//! * every seed (`fuzz/seeds/`) and every saved crashing input (`tests/fuzz-regressions/`) is
//!   replayed on each `cargo test` — a crash found by `cargo fuzz` stays fixed;
//! * a short property run mutates the seeds (byte flips, splices, truncation) and also tries
//!   structured random JSON; the `#[ignore]`d `fuzz_*` tests are the same properties for long runs:
//!
//! ```text
//! PROPTEST_CASES=2000000 cargo test --release --test fuzz_props -- --ignored fuzz_
//! ```

#[path = "../fuzz/harness.rs"]
mod harness;

use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in [
        root().join("fuzz/seeds").join(target),
        root().join("tests/fuzz-regressions").join(target),
    ] {
        for f in files(&dir) {
            out.push(std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        }
    }
    out
}

#[test]
fn seeds_and_saved_crashes_replay_cleanly() {
    let messages = corpus("process_message");
    assert!(messages.len() >= 40, "the message seeds are present");
    for (i, m) in messages.iter().enumerate() {
        let r = std::panic::catch_unwind(|| harness::process_message(m));
        assert!(r.is_ok(), "process_message input #{i} panicked");
    }
    let configs = corpus("load_config");
    assert!(configs.len() >= 3, "the config seeds are present");
    for c in &configs {
        harness::load_config(c);
    }
}

#[test]
fn the_seeds_reach_every_outcome() {
    // The corpus is only useful if it exercises delivery, filtering and rejection alike.
    use mcm_bridge::mapping::{Processed, SourceMessage};
    use mcm_bridge::mcm::validate::ValidateOptions;
    let (mut delivered, mut filtered, mut rejected) = (0, 0, 0);
    for m in corpus("process_message") {
        let raw = harness::split_message(&m);
        let block = harness::blocks()[raw.block];
        let msg = SourceMessage {
            topic: &block.name,
            partition: 0,
            offset: raw.offset,
            key: raw.key,
            headers: &raw.headers,
            timestamp_ms: raw.timestamp_ms,
            payload: raw.payload,
        };
        match block.process(&msg, &ValidateOptions::at(harness::NOW_MS)) {
            Processed::Deliver(_) => delivered += 1,
            Processed::Filtered { .. } => filtered += 1,
            Processed::Reject { .. } => rejected += 1,
        }
    }
    assert!(
        delivered >= 20 && filtered >= 1 && rejected >= 5,
        "delivered {delivered}, filtered {filtered}, rejected {rejected}"
    );
}

/// A seed with random edits: the shape libFuzzer's mutators produce, without coverage feedback.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..6), 0..8),
        any::<prop::sample::Index>(),
        0..n,
    )
        .prop_map(move |(i, edits, cut, j)| {
            let mut d = seeds[i].clone();
            for (at, byte, op) in edits {
                if d.is_empty() {
                    d.push(byte);
                    continue;
                }
                let k = at.index(d.len());
                match op {
                    0 => d[k] = byte,
                    1 => d.insert(k, byte),
                    2 => {
                        d.remove(k);
                    }
                    3 => d[k] ^= 1 << (byte % 8),
                    // Interesting JSON tokens in the middle of the text.
                    4 => {
                        let tok: &[u8] = match byte % 8 {
                            0 => b"1e400",
                            1 => b"99999999999999999999999",
                            2 => b"null",
                            3 => b"[[[[[[[[",
                            4 => b"\"\\ud800\"",
                            5 => b"-0.0",
                            6 => b"{}",
                            _ => b"\xff",
                        };
                        d.splice(k..k, tok.iter().copied());
                    }
                    // Splice in a piece of another seed.
                    _ => {
                        let other = &seeds[j];
                        if !other.is_empty() {
                            let from = at.index(other.len());
                            d.splice(k..k, other[from..].iter().copied().take(64));
                        }
                    }
                }
            }
            if cut.index(4) == 0 && !d.is_empty() {
                d.truncate(cut.index(d.len()));
            }
            d
        })
}

/// Random JSON objects built from the keys the example rules read, with wrong types everywhere.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-zA-Z0-9 ._:@-]{0,12}".prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "page_view",
            "product_view",
            "cart_add",
            "search",
            "paid",
            "track",
            "Order Completed",
            "Product Viewed",
            "purchase",
            "view_item",
            "usd",
            "EUR",
            "1717000000",
            "2024-05-29T16:26:40.000Z",
        ])
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop::sample::select(vec![
        "kind",
        "event_id",
        "occurred_at",
        "customer",
        "email",
        "device_id",
        "user_agent",
        "page",
        "type",
        "product",
        "id",
        "price_cents",
        "currency",
        "qty",
        "lines",
        "sku",
        "unit_price_cents",
        "status",
        "order_id",
        "placed_at",
        "type",
        "event",
        "messageId",
        "timestamp",
        "userId",
        "properties",
        "products",
        "price",
        "quantity",
        "event_name",
        "event_timestamp",
        "items",
        "item_id",
        "params",
        "query",
        "channel",
    ]);
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn structured_message() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 4]>(),
        json_value(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(prefix, v, extra)| {
            let mut d = prefix.to_vec();
            // Keep the key/header lengths small so most of the input stays the JSON payload.
            d[2] = extra.len().min(d[2] as usize % 8) as u8;
            d[3] = (extra.len() - d[2] as usize).min(d[3] as usize % 8) as u8;
            d.extend_from_slice(&extra);
            d.extend(serde_json::to_vec(&v).expect("json"));
            d
        })
}

fn config_mutations() -> impl Strategy<Value = Vec<u8>> {
    mutated(corpus("load_config"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic(d in mutated(corpus("process_message"))) {
        harness::process_message(&d);
    }

    #[test]
    fn structured_messages_never_panic(d in structured_message()) {
        harness::process_message(&d);
    }

    #[test]
    fn mutated_configs_never_panic(d in config_mutations()) {
        harness::load_config(&d);
    }
}

// Long runs: the same properties, with the case count from PROPTEST_CASES (default 100,000).
fn long() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(long())]

    #[test]
    #[ignore = "long run: PROPTEST_CASES=2000000 cargo test --release --test fuzz_props -- --ignored fuzz_"]
    fn fuzz_messages_mutated(d in mutated(corpus("process_message"))) {
        harness::process_message(&d);
    }

    #[test]
    #[ignore = "long run: PROPTEST_CASES=2000000 cargo test --release --test fuzz_props -- --ignored fuzz_"]
    fn fuzz_messages_structured(d in structured_message()) {
        harness::process_message(&d);
    }

    #[test]
    #[ignore = "long run: PROPTEST_CASES=2000000 cargo test --release --test fuzz_props -- --ignored fuzz_"]
    fn fuzz_configs_mutated(d in config_mutations()) {
        harness::load_config(&d);
    }
}
