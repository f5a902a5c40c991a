//! Property: the projected decode (only what the rules read) never changes an outcome — for
//! arbitrary messages shaped like the shipped examples' inputs, every block gives exactly the
//! same `Processed` as with a full decode; and the pipeline's `process_wire` always gives exactly
//! the serialised event of `process`.

use super::tests_rows::*;
use super::*;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;

impl TopicMapping {
    pub(super) fn process_full_decode(
        &self,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
    ) -> Processed {
        match doc::decode(msg.payload) {
            Ok(doc) => self.process_doc(&doc, msg, opts, |e| e.into_owned()).0,
            Err(e) => Processed::Reject {
                class: RejectClass::Decode,
                reason: e.code().into(),
                detail: e.to_string(),
                schema_id: None,
            },
        }
    }
}

/// What `process_wire` must give, computed from `process`'s owned event.
fn wire_of(p: Processed) -> Processed<WireEvent> {
    match p {
        Processed::Deliver(e) => Processed::Deliver(WireEvent {
            event_type: e.event_type,
            body: e.to_json_bytes(),
        }),
        Processed::Filtered { reason } => Processed::Filtered { reason },
        Processed::Reject {
            class,
            reason,
            detail,
            schema_id,
        } => Processed::Reject {
            class,
            reason,
            detail,
            schema_id,
        },
    }
}

/// The shipped examples' plans, and a block whose paths choose array elements and typed values
/// ([`GA4_ROWS`]).
fn example_plans() -> Vec<MappingPlan> {
    let y: Yaml = serde_yaml_ng::from_str(GA4_ROWS).expect("yaml");
    let mut errors = Vec::new();
    let choosing = compile(&y, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
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
        let cfg = crate::config::load(&path).expect("example config loads");
        let mut errors = Vec::new();
        let plan = compile(&cfg.topics, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        plan
    })
    .chain([choosing])
    .collect()
}

const KEYS: [&str; 20] = [
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
    "qty",
    "currency",
    "occurred_at",
    "timestamp",
    "status",
    "product",
    "sku",
    "extra",
    "userId",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..3_000_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "track",
            "Order Completed",
            "page",
            "Home",
            "search",
            "usd",
            "paid",
            "purchase",
            "x"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..7).prop_map(
                |kv| Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>()
                )
            ),
        ]
    })
}

/// Every (topic, message) of the shipped case files, so perturbations start from real inputs.
fn example_messages() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in [
        "mcm-bridge.cases.yaml",
        "segment.cases.yaml",
        "ga4.cases.yaml",
        "ga4-bigquery.cases.yaml",
        "cdp-export.cases.yaml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/examples")
            .join(f);
        let text = std::fs::read_to_string(path).expect("case file");
        for case in cases::parse(&text).expect("valid cases") {
            if let Some(v) = case
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_slice(p).ok())
            {
                out.push((case.topic, v));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn perturbed_real_messages_map_the_same_with_projection(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((prop::sample::select(KEYS.to_vec()), any::<bool>(), json()), 1..4),
    ) {
        let messages = example_messages();
        let (topic, mut v) = messages[pick.index(messages.len())].clone();
        for (key, nested, value) in edits {
            // Either at the root or one level down (inside properties/events/lines/…).
            let target = if nested {
                v.as_object_mut().and_then(|m| m.values_mut().find(|x| x.is_object()))
            } else {
                Some(&mut v)
            };
            if let Some(Value::Object(m)) = target {
                m.insert(key.to_string(), value);
            }
        }
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        let opts = ValidateOptions::at(1_800_000_000_000);
        for plan in example_plans() {
            if let Some(block) = plan.route(&topic) {
                let msg = SourceMessage { topic: &topic, partition: 0, offset: 1, key: None, headers: &[], timestamp_ms: None, payload: Some(&bytes) };
                prop_assert_eq!(block.process(&msg, &opts), block.process_full_decode(&msg, &opts));
                prop_assert_eq!(block.process_wire(&msg, &opts), wire_of(block.process(&msg, &opts)));
            }
        }
    }

    #[test]
    fn projected_decode_gives_the_same_outcome_as_a_full_decode(v in prop_oneof![json(), ga4_row()]) {
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        let opts = ValidateOptions::at(1_800_000_000_000);
        for plan in example_plans() {
            for topic in plan.subscriptions() {
                let block = plan.route(&topic).expect("routed");
                let msg = SourceMessage { topic: &topic, partition: 0, offset: 1, key: None, headers: &[], timestamp_ms: None, payload: Some(&bytes) };
                prop_assert_eq!(block.process(&msg, &opts), block.process_full_decode(&msg, &opts));
                prop_assert_eq!(block.process_wire(&msg, &opts), wire_of(block.process(&msg, &opts)));
            }
        }
    }
}

#[test]
fn wire_path_serialises_exactly_the_owned_event_of_every_example_case() {
    let opts = ValidateOptions::at(1_800_000_000_000);
    let plans = example_plans();
    let mut delivered = 0;
    for (topic, v) in example_messages() {
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        for plan in &plans {
            if let Some(block) = plan.route(&topic) {
                let msg = SourceMessage {
                    topic: &topic,
                    partition: 0,
                    offset: 1,
                    key: None,
                    headers: &[],
                    timestamp_ms: None,
                    payload: Some(&bytes),
                };
                let owned = block.process(&msg, &opts);
                delivered += usize::from(matches!(owned, Processed::Deliver(_)));
                assert_eq!(block.process_wire(&msg, &opts), wire_of(owned), "{v}");
            }
        }
    }
    assert!(delivered > 10, "the examples deliver events ({delivered})");
}

/// Text borrowed from the message is written without an escape scan; text that had escapes in
/// the message (decoded, so possibly holding quotes, backslashes or control characters) must
/// still be escaped: the wire body equals serde_json's for every such value.
#[test]
fn escaped_message_text_is_escaped_on_the_wire_and_plain_text_is_copied() {
    let opts = ValidateOptions::at(1_800_000_000_000);
    let plans = example_plans();
    let segment = plans
        .iter()
        .find_map(|p| p.route("segment.events"))
        .expect("segment block");
    let values = [
        "plain-id",
        "quo\"te",
        "back\\slash",
        "tab\there",
        "nl\nx",
        "ctl\u{1}\u{1f}",
        "é€😀",
        "sl/ash",
        "\u{7f}del",
    ];
    let mut delivered = 0;
    for v in values {
        let msg = serde_json::json!({
            "type": "track",
            "event": "Order Completed",
            "messageId": v,
            "timestamp": "2024-05-29T16:26:43.000Z",
            "userId": v,
            "anonymousId": format!("{v}-anon"),
            // The locale goes through `language` (ISO 639-1 codes only, nothing to escape).
            "context": {"ip": v, "locale": "en-US", "userAgent": v, "page": {"path": v, "referrer": v}},
            "properties": {
                "revenue": 3, "currency": "usd",
                "products": [{"product_id": v, "price": 1, "quantity": 3}, {"sku": v, "price": 2}]
            }
        });
        let bytes = serde_json::to_vec(&msg).expect("serialisable");
        let m = SourceMessage {
            topic: "segment.events",
            partition: 0,
            offset: 1,
            key: None,
            headers: &[],
            timestamp_ms: None,
            payload: Some(&bytes),
        };
        let owned = segment.process(&m, &opts);
        if let Processed::Deliver(e) = &owned {
            delivered += 1;
            let serde = serde_json::to_vec(e).expect("serialisable");
            match segment.process_wire(&m, &opts) {
                Processed::Deliver(w) => assert_eq!(
                    String::from_utf8_lossy(&w.body),
                    String::from_utf8_lossy(&serde),
                    "{v:?}"
                ),
                other => panic!("{v:?}: {other:?}"),
            }
        }
        assert_eq!(segment.process_wire(&m, &opts), wire_of(owned), "{v:?}");
    }
    assert_eq!(delivered, values.len(), "every value maps");
}

// Paths that choose (`[key=…]` tests and `(a|b)` unions): each path drawn at random over GA4
// BigQuery-like rows, alone and read from the elements of an `each:`, against its own need.
// (The block that uses them in rules is among `example_plans`.)

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Each path alone, and each path read from the elements of an `each:` path: what the
    /// projection its need makes gives exactly what a full decode gives.
    #[test]
    fn choosing_paths_read_the_same_from_their_projection(
        paths in prop::collection::vec(choosing_path(), 1..4),
        each in each_path(),
        inner in inner_path(),
        v in row_json(),
    ) {
        let mut parsed: Vec<path::Path> = paths.iter().map(|p| path::Path::parse(p).expect("generated paths parse")).collect();
        let each = path::Path::parse(&each).expect("each");
        let mut inner = path::Path::parse(&inner).expect("inner");
        let mut need = need::Need::default();
        parsed.iter().for_each(|p| p.need_value(&mut need, &[]));
        source::need_each(&each, &mut need, &[], |need, scope| inner.need_value(need, scope));
        need.number();
        parsed.iter_mut().for_each(|p| p.hint(&need, &[]));
        if let Some(scope) = source::each_scope(&each, &[]) {
            inner.hint(&need, &scope);
        }
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        let full = doc::decode(Some(&bytes)).expect("an object");
        let projected = need::decode(Some(&bytes), &need).expect("an object");
        let read = |d: &doc::Doc<'_>| {
            let mut out: Vec<Option<doc::Tree>> = parsed.iter().map(|p| p.resolve(d, d.root()).map(|n| d.tree(n))).collect();
            for el in each.resolve(d, d.root()).and_then(|a| d.items(a)).unwrap_or_default() {
                out.push(inner.resolve(d, el).map(|n| d.tree(n)));
            }
            out
        };
        prop_assert_eq!(read(&projected), read(&full), "{:?} each {} {}", paths, each, inner);
    }
}
