//! Property: the evaluator never panics, whatever the record holds — arbitrary JSON (wrong types,
//! missing fields, huge numbers, deep nesting), arbitrary bytes (invalid UTF-8), arbitrary keys
//! and headers — and every rejection carries a non-empty reason code.

use mcm_bridge::config;
use mcm_bridge::mapping::{self, MappingPlan, Processed, SourceMessage};
use mcm_bridge::mcm::validate::ValidateOptions;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::OnceLock;

fn plans() -> &'static Vec<(MappingPlan, Vec<String>)> {
    static P: OnceLock<Vec<(MappingPlan, Vec<String>)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            "mcm-bridge.yaml",
            "segment.yaml",
            "ga4.yaml",
            "ga4-bigquery.yaml",
            "cdp-export.yaml",
        ]
        .iter()
        .map(|f| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/examples")
                .join(f);
            let cfg = config::load(&path).expect("example config loads");
            let mut errors = Vec::new();
            let plan = mapping::compile(&cfg.topics, &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            let topics = plan.subscriptions();
            (plan, topics)
        })
        .collect()
    })
}

/// Keys the example rules look at, so generated messages hit real paths and conditions.
const KEYS: [&str; 43] = [
    "kind",
    "type",
    "event",
    "events",
    "name",
    "params",
    "items",
    "properties",
    "products",
    "lines",
    "price",
    "price_cents",
    "qty",
    "quantity",
    "currency",
    "occurred_at",
    "timestamp",
    "timestamp_micros",
    "placed_at",
    "status",
    "product",
    "page",
    "context",
    "user_agent",
    "event_name",
    "event_params",
    "key",
    "value",
    "string_value",
    "int_value",
    "double_value",
    "event_timestamp",
    "item_id",
    "ecommerce",
    "platform",
    "device",
    "language",
    "identities",
    "channel",
    "locale",
    "order",
    "line_type",
    "unit_price",
];
const WORDS: [&str; 23] = [
    "page_view",
    "product_view",
    "cart_add",
    "search",
    "paid",
    "track",
    "page",
    "Order Completed",
    "purchase",
    "view_item",
    "usd",
    "Home",
    "page_location",
    "currency",
    "(not set)",
    "https://shop.example/c/x?gclid=1",
    "en-US",
    "WEB",
    "order_placed",
    "app-ios",
    "customer_id",
    "2026-11-24 10:00:05.123",
    "product",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(WORDS.to_vec()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8).prop_map(
                |kv| Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>()
                )
            ),
        ]
    })
}

fn process_everywhere(payload: Option<&[u8]>, key: Option<&[u8]>, header: &[u8]) {
    let headers: [(&str, Option<&[u8]>); 1] = [("x-platform", Some(header))];
    for (plan, topics) in plans() {
        for topic in topics {
            let block = plan.route(topic).expect("subscribed topics route");
            let msg = SourceMessage {
                topic,
                partition: 0,
                offset: i64::MAX,
                key,
                headers: &headers,
                timestamp_ms: Some(i64::MIN),
                payload,
            };
            match block.process(&msg, &ValidateOptions::now()) {
                Processed::Reject { reason, detail, .. } => {
                    assert!(!reason.is_empty() && !detail.is_empty());
                }
                Processed::Deliver(e) => {
                    let _ = e.to_json_bytes();
                }
                Processed::Filtered { .. } => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(v in json(), key in prop::option::of(prop::collection::vec(any::<u8>(), 0..8)), header in prop::collection::vec(any::<u8>(), 0..8)) {
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        process_everywhere(Some(&bytes), key.as_deref(), &header);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        process_everywhere(Some(&bytes), None, b"web");
    }

    #[test]
    fn deep_nesting_never_panics(depth in 0usize..2000, open in prop::sample::select(vec!["[", "{\"events\":"])) {
        let close = if open == "[" { "]" } else { "}" };
        let text = format!("{{\"kind\":{}1{}}}", open.repeat(depth), close.repeat(depth));
        process_everywhere(Some(text.as_bytes()), None, b"ios");
    }
}

#[test]
fn tombstones_are_rejected_not_panicking() {
    process_everywhere(None, None, b"");
}
