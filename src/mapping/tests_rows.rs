//! Generators for the projection properties (`tests_projection.rs`) of paths that choose
//! (`[key=…]` tests, `(a|b)` unions): GA4 BigQuery-like rows, paths over them, and a block that
//! reads them with such paths everywhere a path can be.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

pub(super) const ROW_KEYS: [&str; 12] = [
    "event_params",
    "key",
    "value",
    "string_value",
    "int_value",
    "double_value",
    "user_ids",
    "type",
    "ecommerce",
    "item_params",
    "price",
    "x",
];

/// A test segment drawn at random.
pub(super) fn test_segment() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "key",
            "type",
            "value.string_value",
            "value.int_value",
            "[0]",
        ]),
        prop::sample::select(vec!["=", "^=", "~="]),
        prop::sample::select(vec![
            "page_location",
            "email",
            "product",
            "3",
            "page_",
            "\"a]b\"",
            "\"\"",
            "\"^SKU-[12]$\"",
        ]),
    )
        .prop_map(|(sub, op, text)| format!("[{sub}{op}{text}]"))
}

/// A dotted path of keys, indices, tests and unions: mostly one that reads something in
/// GA4-like rows (an array, a test that fits its elements, a typed value), the rest at random.
pub(super) fn choosing_path() -> impl Strategy<Value = String> {
    /// An array, tests that fit its elements, and what to read from the chosen one.
    const FAMILIES: [(&str, &[&str], &[&str]); 4] = [
        (
            "event_params",
            &[
                "[key=page_location]",
                "[key=page_type]",
                "[key^=page_]",
                "[key~=^search]",
                "[value.string_value=product]",
                "[value.int_value=3]",
                "[value.string_value^=\"https://\"]",
            ],
            &[
                ".value.(string_value|int_value|double_value|float_value)",
                ".value.(int_value|string_value)",
                ".value",
                ".key",
                "",
            ],
        ),
        (
            "user_ids",
            &[
                "[type=email]",
                "[type~=^(email|mail)$]",
                "[type^=d]",
                "[value=d-1]",
            ],
            &[".value", ".type", ""],
        ),
        (
            "ecommerce.(items|products)",
            &[
                "[price=3]",
                "[quantity~=\"^[0-9]+$\"]",
                "[item_params[0].key=sku]",
            ],
            &[
                ".price",
                ".item_params[key=sku].value.(string_value|int_value)",
                "",
            ],
        ),
        (
            "item_params",
            &[
                "[key=sku]",
                "[key~=\"^SKU-[12]$\"]",
                "[value.string_value^=SKU-]",
            ],
            &[".value.(string_value|int_value)", ".key", ""],
        ),
    ];
    let fitting = prop::sample::select(FAMILIES.to_vec()).prop_flat_map(|(array, tests, tails)| {
        (
            prop::sample::select(tests.to_vec()),
            prop::sample::select(tails.to_vec()),
            any::<bool>(),
        )
            .prop_map(move |(test, tail, anchored)| {
                format!("{}{array}{test}{tail}", if anchored { "$." } else { "" })
            })
    });
    let key = prop::sample::select(ROW_KEYS.to_vec()).prop_map(String::from);
    let seg = prop_oneof![
        2 => key.clone().prop_map(|k| format!(".{k}")),
        1 => (-2i64..3).prop_map(|i| format!("[{i}]")),
        2 => test_segment(),
        1 => prop::collection::vec(key.clone(), 2..4).prop_map(|alts| format!(".({})", alts.join("|"))),
    ];
    let random = (key, prop::collection::vec(seg, 0..4))
        .prop_map(|(k, segs)| format!("{k}{}", segs.concat()));
    prop_oneof![3 => fitting, 1 => random]
}

/// An `each:` array: mostly one GA4-like rows have (through a union or a test), else any path.
pub(super) fn each_path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "ecommerce.(items|products)", "ecommerce.(products|x|items)", "(event_params|user_ids)",
            "event_params", "ecommerce.items[item_params[0].key=sku].item_params",
        ])
        .prop_map(String::from),
        1 => choosing_path(),
    ]
}

/// A path read from an `each:` element: mostly one that fits some element, else any path.
pub(super) fn inner_path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "value.(string_value|int_value)", "key", "type", "price", "(price|quantity)",
            "item_params[key=sku].value.(string_value|int_value)", "$.event_params[key=page_type].value",
        ])
        .prop_map(String::from),
        1 => choosing_path(),
    ]
}

/// A scalar as GA4 rows have them (and a few that are not).
pub(super) fn row_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec![
            "page_location",
            "product",
            "email",
            "mail",
            "PROMO-7",
            "a]b",
            "",
            "x"
        ])
        .prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        Just(Value::from(3.0)),
        any::<bool>().prop_map(Value::Bool),
    ]
}

/// A GA4 BigQuery-like row: `event_params` of `{key, value: {string_value|int_value|…}}` with
/// the unused typed members null, a typed identity list, items, and random JSON here and there.
pub(super) fn ga4_row() -> impl Strategy<Value = Value> {
    let param = (
        prop::sample::select(vec!["page_location", "page_type", "ga_session_id", "search_term", "sku", "x"]),
        prop::sample::select(vec!["string_value", "int_value", "double_value", "float_value"]),
        row_leaf(),
    )
        .prop_map(|(k, typed, v)| {
            let mut value = serde_json::json!({"string_value": null, "int_value": null, "double_value": null, "float_value": null});
            value[typed] = v;
            serde_json::json!({"key": k, "value": value})
        })
        .boxed();
    // Random parameters, often with the ones the rules look for, in any order.
    let typed = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"string_value": v, "int_value": null, "double_value": null}});
    let params = (
        prop::collection::vec(prop_oneof![8 => param.clone(), 1 => row_random()], 0..5),
        prop::option::weighted(0.5, Just(typed("page_type", "product"))),
        prop::option::weighted(0.7, Just(typed("page_location", "https://shop.example/p"))),
        prop::option::weighted(0.4, Just(typed("search_term", "shoes"))),
    )
        .prop_flat_map(|(mut p, page_type, location, search)| {
            p.extend(page_type);
            p.extend(location);
            p.extend(search);
            Just(p).prop_shuffle()
        });
    // Mostly well-formed items (a `sku` parameter, numbers), so that purchases are delivered.
    let number = || prop_oneof![4 => (1i64..50).prop_map(Value::from), 1 => row_leaf()];
    let item = (
        prop::option::weighted(0.8, (0i64..4).prop_map(|n| format!("SKU-{n}"))),
        prop::collection::vec(param.clone(), 0..3),
        number(),
        number(),
    )
        .prop_map(|(sku, mut params, price, q)| {
            if let Some(sku) = sku {
                params.push(serde_json::json!({"key": "sku", "value": {"string_value": sku, "int_value": null}}));
            }
            serde_json::json!({"item_params": params, "price": price, "quantity": q})
        });
    let id = (
        prop::sample::select(vec!["email", "mail", "device"]),
        prop::sample::select(vec!["A@x.com", " b@y.org ", "d-1"]),
    )
        .prop_map(|(t, v)| serde_json::json!({"type": t, "value": v}));
    (
        prop::sample::select(vec!["page_view", "purchase", "search"]),
        params,
        prop::collection::vec(item, 0..3),
        prop::sample::select(vec!["items", "products"]),
        prop::collection::vec(prop_oneof![4 => id, 1 => row_random()], 0..3),
        row_random(),
    )
        .prop_map(|(name, params, items, list, ids, extra)| {
            serde_json::json!({
                "event_name": name, "event_timestamp": 1_717_000_000_000_000_i64,
                "event_params": params, "ecommerce": {list: items}, "user_ids": ids, "extra": extra
            })
        })
}

/// Random JSON over [`ROW_KEYS`] and [`row_leaf`]s, so random paths find something.
fn row_random() -> impl Strategy<Value = Value> {
    row_leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(ROW_KEYS.to_vec()), inner), 0..5).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

/// Random JSON under a row's keys, or a GA4-like row.
pub(super) fn row_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => row_random().prop_map(|v| serde_json::json!({"event_params": v.clone(), "x": v})),
        3 => ga4_row(),
    ]
}

/// A block that reads GA4 rows with tests and unions everywhere a path can be.
pub(super) const GA4_ROWS: &str = r#"
- topic: ga4.rows
  fields:
    timestamp: {path: event_timestamp, transform: epoch_micros}
    channel_type: SITE
    user_id: {path: 'user_ids[type~=^(email|mail)$].value', transform: {sha256: {normalize: true}}}
    custom_id: '{{ event_params[key=ga_session_id].value.(int_value|string_value) }}'
    page_id: {path: 'event_params[key=page_location].value.(string_value|int_value|double_value|float_value)'}
  rules:
    - event_type: PAGE_VIEW
      when: {field: 'event_params[key=page_type].value.(string_value|int_value)', equals: product}
    - event_type: PURCHASE
      when: {field: event_name, equals: purchase}
      fields:
        revenue: {amount: {sum: {each: 'ecommerce.(items|products)', of: {path: price}, times: {path: quantity}}}, currency: USD}
        items:
          each: 'ecommerce.(items|products)'
          fields: {id: {path: 'item_params[key=sku].value.(string_value|int_value)'}, quantity: {path: quantity}, price: {amount: {path: price}, currency: USD}}
    - event_type: SEARCH
      when: {field: 'event_params[key^=search].key', exists: true}
      fields: {search_query: {path: 'event_params[key^=search].value.string_value'}}
    - event_type: HOME
"#;

/// The generated rows are not all rejected: the property above compares real events.
#[test]
fn ga4_rows_block_delivers_page_views_purchases_and_searches() {
    let y: Yaml = serde_yaml_ng::from_str(GA4_ROWS).expect("yaml");
    let mut errors = Vec::new();
    let plan = compile(&y, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let block = plan.route("ga4.rows").expect("routed");
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut delivered = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..300 {
        let v = ga4_row().new_tree(&mut runner).expect("a row").current();
        let bytes = serde_json::to_vec(&v).expect("serialisable");
        let msg = SourceMessage {
            payload: Some(&bytes),
            topic: "ga4.rows",
            ..SourceMessage::BARE
        };
        if let Processed::Deliver(e) = block.process(&msg, &ValidateOptions::at(1_800_000_000_000))
        {
            *delivered.entry(format!("{:?}", e.event_type)).or_default() += 1;
        }
    }
    for t in ["PageView", "Purchase", "Search"] {
        assert!(
            delivered.get(t).is_some_and(|n| *n > 5),
            "{t}: {delivered:?}"
        );
    }
}
