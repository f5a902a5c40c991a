//! End-to-end tests of the choosing path segments (`[key=…]` tests, `(a|b)` unions) in rules:
//! GA4 BigQuery export rows and typed identity lists, in fields, conditions and `each:`, and
//! their start-up errors at the YAML path. (Beside `tests.rs`, which is at its size limit.)

use super::tests::{compile_text, msg, out, plan_with, NOW};
use super::*;
use serde_json::json;

/// A GA4 BigQuery export row: parameters as `{key, value: {string_value|int_value|…}}` in no
/// fixed order, the unused typed members null; identities as a typed list; items as usual.
fn bigquery_row(page_type: serde_json::Value) -> serde_json::Value {
    let typed = |s: serde_json::Value, i: serde_json::Value| json!({"string_value": s, "int_value": i, "double_value": null, "float_value": null});
    json!({
        "ts": 1_700_000_000, "user": "u1", "event_name": "page_view",
        "event_params": [
            {"key": "ga_session_number", "value": typed(json!(null), json!(3))},
            {"key": "page_type", "value": typed(page_type, json!(null))},
            {"key": "page_location", "value": typed(json!("https://shop.example/p/1"), json!(null))},
        ],
        "identities": [{"type": "device", "value": "d-1"}, {"type": "mail", "value": "a@x.com"}],
        "items": [{"item_id": "SKU-1", "quantity": 2}]
    })
}

const BIGQUERY_RULES: &str = r#"  rules:
    - event_type: PAGE_VIEW
      when:
        all:
          - {field: 'event_params[key=page_type].value.(string_value|int_value)', equals: product}
          - {field: 'event_params[value.int_value=3].key', equals: ga_session_number}
      fields:
        page_id: {path: 'event_params[key=page_location].value.(string_value|int_value|double_value|float_value)'}
        custom_id: {path: 'identities[type~=^(email|mail)$].value'}
        session_id: '{{ event_params[key=ga_session_number].value.(string_value|int_value) }}'
    - event_type: PURCHASE
      fields:
        items: {each: items, fields: {id: {path: item_id}, quantity: {path: quantity}}}
"#;

#[test]
fn ga4_bigquery_rows_read_parameters_by_key_and_their_typed_value() {
    let p = plan_with(BIGQUERY_RULES).expect("compiles");
    let e = out(&p, bigquery_row(json!("product"))).expect("delivered");
    assert_eq!(e["event_type"], "PAGE_VIEW");
    assert_eq!(e["page_id"], "https://shop.example/p/1");
    assert_eq!(e["custom_id"], "a@x.com");
    assert_eq!(
        e["session_id"], "3",
        "the int_value, its string_value being null"
    );
    // Another page type: the condition's test finds the parameter, its value does not equal.
    let e = out(&p, bigquery_row(json!("cart"))).expect("delivered");
    assert_eq!(e["event_type"], "PURCHASE");
    assert_eq!(
        e["items"],
        json!([{"id": "SKU-1", "quantity": 2}]),
        "items as ever"
    );
    // The projected decode keeps what the tests and unions read: the same as a full decode.
    let block = p.route("t").expect("block");
    for page_type in [json!("product"), json!(7), json!(null)] {
        let bytes = serde_json::to_vec(&bigquery_row(page_type)).expect("json");
        let m = msg("t", &bytes, &[]);
        let opts = ValidateOptions::at(NOW);
        assert_eq!(
            block.process(&m, &opts),
            block.process_full_decode(&m, &opts)
        );
    }
    let params = block
        .need
        .child("event_params")
        .expect("event_params needed");
    assert!(
        params.child("key").is_some_and(need::Need::keeps_all),
        "the tested member"
    );
    let value = params.child("value").expect("value needed");
    for typed in ["string_value", "int_value", "double_value", "float_value"] {
        assert!(
            value.child(typed).is_some_and(need::Need::keeps_all),
            "{typed}"
        );
    }
    assert!(params.child("name").is_none(), "nothing else");
}

#[test]
fn a_bad_test_or_union_is_reported_at_its_yaml_path() {
    let errs = plan_with(
        r#"  rules:
    - event_type: PAGE_VIEW
      when: {field: 'event_params[key!=page_type].value', exists: true}
      fields:
        page_id: {path: 'event_params[key=page_location].value.(string_value|'}
        search_query: '{{ event_params[=x].value }}'
    - event_type: PURCHASE
      fields:
        revenue: {amount: {sum: {each: 'lines[sku=x', of: {path: price}}}, currency: USD}
        items: {each: 'lines[sku~=(]', fields: {id: {path: sku}}}
"#,
    )
    .expect_err("must fail");
    let expected = [
        "topics[0].rules[0].when.field: bad path \"event_params[key!=page_type].value\": unknown operator `!=` in `[key!=page_type]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)",
        "topics[0].rules[0].fields.page_id.path: bad path \"event_params[key=page_location].value.(string_value|\": unclosed `(`",
        "topics[0].rules[0].fields.search_query: template \"{{ event_params[=x].value }}\": bad path \"event_params[=x].value\": in `[=x]`: nothing before the operator: name the member to test, e.g. `[key=page_location]`",
        "topics[0].rules[1].fields.revenue.amount.sum.each: bad path \"lines[sku=x\": unclosed `[`",
    ];
    for e in expected {
        assert!(
            errs.iter().any(|x| x == e),
            "missing {e:?} in\n{}",
            errs.join("\n")
        );
    }
    let regex = "topics[0].rules[1].fields.items.each: bad path \"lines[sku~=(]\": bad regex \"(\" in a `~=` test: ";
    assert!(
        errs.iter().any(|x| x.starts_with(regex)),
        "{}",
        errs.join("\n")
    );
    assert_eq!(errs.len(), expected.len() + 1, "{}", errs.join("\n"));
    // Pointers have no tests: brackets there are key text, as before.
    assert!(compile_text("- topic: t\n  fields:\n    timestamp: {pointer: '/ts[key=x]'}\n    channel_type: SITE\n    user_id: {path: user}\n  rules: [{event_type: HOME}]\n").is_ok());
}
