//! Conditional values (`when:` on a source, `if`/`then`/`else`) and `where:` filters on
//! `each:` arrays: what they give, what they read (projection), and their start-up errors.

use super::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;

fn plan(rules: &str) -> Result<MappingPlan, Vec<String>> {
    let text = format!(
        "- topic: t\n  fields:\n    timestamp: {{path: ts, transform: epoch_seconds}}\n    channel_type: SITE\n  rules:\n{rules}"
    );
    let y: Yaml = serde_yaml_ng::from_str(&text).expect("test yaml");
    let mut errors = Vec::new();
    let p = compile(&y, &mut errors);
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors.into_iter().map(|e| e.to_string()).collect())
    }
}

/// The delivered event as JSON, or `reason: detail`.
fn out(p: &MappingPlan, v: serde_json::Value) -> Result<serde_json::Value, String> {
    let bytes = serde_json::to_vec(&v).expect("json");
    let m = SourceMessage {
        topic: "t",
        partition: 0,
        offset: 7,
        key: Some(b"k"),
        headers: &[],
        timestamp_ms: Some(1_700_000_000_000),
        payload: Some(&bytes),
    };
    match p
        .route("t")
        .expect("route")
        .process(&m, &ValidateOptions::at(NOW))
    {
        Processed::Deliver(e) => Ok(serde_json::to_value(&e).expect("ser")),
        Processed::Filtered { reason } => Err(format!("filtered:{reason}")),
        Processed::Reject { reason, detail, .. } => Err(format!("{reason}: {detail}")),
    }
}

/// Segment's identifiers in one rule: `user_id` when there is a `userId`, the anonymous id as
/// `custom_id` only when there is not (what took two copies of every rule before).
const SEGMENT_IDS: &str = r#"    - event_type: HOME
      fields:
        user_id: {path: userId}
        custom_id: {path: anonymousId, when: {field: userId, exists: false}}
        session_id:
          if: {field: context.channel, equals: app}
          then: {path: context.app_session}
          else: {path: context.web_session, transform: upper, default: NO-SESSION}
"#;

#[test]
fn when_leaves_a_field_out_unless_its_condition_holds() {
    let p = plan(SEGMENT_IDS).expect("compiles");
    let known = out(
        &p,
        json!({"ts": 1_700_000_000, "userId": "u1", "anonymousId": "a1"}),
    )
    .expect("delivered");
    assert_eq!(known["user_id"], json!("u1"));
    assert!(known.get("custom_id").is_none(), "{known}");
    let anonymous = out(&p, json!({"ts": 1_700_000_000, "anonymousId": "a1"})).expect("ok");
    assert_eq!(anonymous["custom_id"], json!("a1"));
    assert!(anonymous.get("user_id").is_none(), "{anonymous}");
    // A blank userId is absent for `exists` too, so the anonymous id is used.
    let blank = out(
        &p,
        json!({"ts": 1_700_000_000, "userId": "  ", "anonymousId": "a1"}),
    );
    assert_eq!(blank.map(|e| e["custom_id"].clone()), Ok(json!("a1")));
}

#[test]
fn if_picks_a_branch_and_the_else_branch_keeps_its_own_transforms_and_default() {
    let p = plan(SEGMENT_IDS).expect("compiles");
    let base = json!({"ts": 1_700_000_000, "userId": "u"});
    let with = |ctx: serde_json::Value| {
        let mut m = base.clone();
        m["context"] = ctx;
        out(&p, m).map(|e| e["session_id"].clone())
    };
    assert_eq!(
        with(json!({"channel": "app", "app_session": "s-app", "web_session": "w"})),
        Ok(json!("s-app"))
    );
    assert_eq!(
        with(json!({"channel": "web", "app_session": "s-app", "web_session": "w1"})),
        Ok(json!("W1"))
    );
    assert_eq!(with(json!({"channel": "web"})), Ok(json!("NO-SESSION")));
    // `then:` has no default: an app message without a session leaves the field out.
    assert_eq!(with(json!({"channel": "app"})), Ok(serde_json::Value::Null));
}

#[test]
fn a_false_when_drops_the_default_too_and_an_if_without_else_is_absent() {
    let p = plan(
        r#"    - event_type: HOME
      fields:
        user_id: {const: fallback, when: {field: tier, in: [gold, silver]}}
        custom_id: {if: {field: anon, equals: true}, then: {path: anon_id}}
        domain: {path: site, default: shop.example, when: {not: {field: test, equals: true}}}
"#,
    )
    .expect("compiles");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "tier": "gold", "anon": true, "anon_id": "x"}),
    )
    .expect("ok");
    assert_eq!(
        (&e["user_id"], &e["custom_id"], &e["domain"]),
        (&json!("fallback"), &json!("x"), &json!("shop.example"))
    );
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "tier": "bronze", "anon": false, "anon_id": "x", "test": true, "site": "s"}),
    );
    // No identifier is left: the validator rejects the event, as without the fields.
    assert!(
        e.as_ref().is_err_and(|e| e.starts_with("no_identifier")),
        "{e:?}"
    );
}

#[test]
fn conditions_inside_each_read_the_element_and_dollar_reads_the_root() {
    let p = plan(
        r#"    - event_type: PURCHASE
      fields:
        user_id: {path: user}
        items:
          each: lines
          where: {not: {field: kind, equals: shipping}}
          fields:
            id: {path: sku}
            seller_id: {path: seller, when: {field: $.marketplace, equals: true}}
            quantity: {if: {field: kind, equals: bundle}, then: {path: bundle_qty}, else: {path: qty}}
            price: {amount: {path: price}, currency: USD}
        revenue:
          amount: {sum: {each: lines, where: {field: kind, in: [item, bundle]}, of: {path: price}, times: {path: qty}}}
          currency: USD
        shipping_charge:
          amount: {sum: {each: lines, where: {field: kind, equals: shipping}, of: {path: price}}}
          currency: USD
"#,
    )
    .expect("compiles");
    let order = |marketplace: bool| {
        json!({"ts": 1_700_000_000, "user": "u", "marketplace": marketplace, "lines": [
            {"kind": "item", "sku": "A", "qty": 2, "price": 10, "seller": "s1"},
            {"kind": "shipping", "sku": "SHIP", "qty": 1, "price": 4.5},
            {"kind": "bundle", "sku": "B", "qty": 1, "bundle_qty": 3, "price": 7, "seller": "s2"}
        ]})
    };
    let e = out(&p, order(true)).expect("delivered");
    assert_eq!(
        e["items"],
        json!([
            {"id": "A", "quantity": 2, "seller_id": "s1", "price": {"currency": "USD", "amount": 10.0}},
            {"id": "B", "quantity": 3, "seller_id": "s2", "price": {"currency": "USD", "amount": 7.0}}
        ])
    );
    assert_eq!(e["revenue"], json!({"currency": "USD", "amount": 27.0}));
    assert_eq!(
        e["shipping_charge"],
        json!({"currency": "USD", "amount": 4.5})
    );
    let e = out(&p, order(false)).expect("delivered");
    assert!(e["items"][0].get("seller_id").is_none(), "{e}");
    // Every element filtered out: no items, which a PURCHASE cannot do without.
    let none = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "lines": [{"kind": "shipping", "sku": "S", "price": 1}]}),
    );
    assert!(
        none.as_ref().is_err_and(|e| e.starts_with("missing_items")),
        "{none:?}"
    );
}

#[test]
fn projection_keeps_what_conditions_read() {
    // Conditions read members no field reads (`tier`, `lines[].kind`, `$.marketplace`): the
    // projected decode must keep them, or every condition would see them absent.
    let p = plan(
        r#"    - event_type: PURCHASE
      fields:
        user_id: {const: u, when: {field: tier, equals: gold}}
        custom_id: {if: {field: flags.anon, exists: true}, then: {const: anon}, else: {const: known}}
        items:
          each: lines
          where: {field: kind, equals: item}
          fields:
            id: {path: sku}
            seller_id: {path: seller, when: {field: $.marketplace, equals: true}}
        revenue:
          amount: {sum: {each: lines, where: {field: kind, equals: item}, of: {path: price}}}
          currency: USD
"#,
    )
    .expect("compiles");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "tier": "gold", "flags": {"anon": 1}, "marketplace": true, "noise": [1, 2],
               "lines": [{"kind": "item", "sku": "A", "price": 2, "seller": "s"}, {"kind": "fee", "sku": "F", "price": 1}]}),
    )
    .expect("delivered");
    assert_eq!(e["user_id"], json!("u"));
    assert_eq!(e["custom_id"], json!("anon"));
    assert_eq!(e["items"], json!([{"id": "A", "seller_id": "s"}]));
    assert_eq!(e["revenue"]["amount"], json!(2.0));
}

#[test]
fn conditional_start_up_errors_carry_yaml_paths() {
    let errs = plan(
        r#"    - event_type: HOME
      fields:
        user_id: {path: u, when: {field: "a..b", exists: true}}
        custom_id: {if: {field: x, equals: 1}}
        session_id: {path: s, then: {path: t}}
        domain: {if: {field: x, sometimes: 1}, then: {path: d}, else: {path: "e["}}
        channel_type: {if: {field: app, equals: true}, then: APP, else: WEB}
        items: {each: lines, where: {equals: 1}, fields: {id: {path: sku}}}
"#,
    )
    .expect_err("must fail");
    let expected = [
        "topics[0].rules[0].fields.user_id.when.field: bad path \"a..b\": empty segment (two dots, or a dot at the start)",
        "topics[0].rules[0].fields.custom_id.then: required: the source used when the condition holds (`else:` is optional; without it the value is absent)",
        "topics[0].rules[0].fields.session_id.then: `then` belongs to an `if:` source (`{if: <condition>, then: <source>, else: <source>}`)",
        "topics[0].rules[0].fields.channel_type: constant \"WEB\" is not a channel_type (APP, SITE, DESKTOP_SITE, MOBILE_SITE)",
    ];
    for e in expected {
        assert!(
            errs.iter().any(|x| x == e),
            "missing {e:?} in\n{}",
            errs.join("\n")
        );
    }
    let at = |prefix: &str| errs.iter().any(|x| x.starts_with(prefix));
    assert!(
        at("topics[0].rules[0].fields.domain.if"),
        "{}",
        errs.join("\n")
    );
    assert!(
        at("topics[0].rules[0].fields.domain.else.path: bad path"),
        "{}",
        errs.join("\n")
    );
    assert!(
        at("topics[0].rules[0].fields.items.where"),
        "{}",
        errs.join("\n")
    );
}

#[test]
fn root_paths_inside_an_each_kept_whole_are_still_projected() {
    // A pointer `each:` whose token may be an index keeps the array whole; `$.` paths read from
    // its elements (a `where:` on the root, an item's `$.currency`) lie outside it and must be
    // recorded too, or the projected message would miss them.
    let p = plan(
        r#"    - event_type: PURCHASE
      fields:
        user_id: {path: user}
        items:
          each: /orders/0/lines
          where: {field: $.market, equals: US}
          fields:
            id: {path: sku}
            price: {amount: {path: price}, currency: {path: $.currency}}
"#,
    )
    .expect("compiles");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "market": "US", "currency": "EUR",
               "orders": [{"lines": [{"sku": "a", "price": 2}]}]}),
    )
    .expect("delivered");
    assert_eq!(
        e["items"],
        json!([{"id": "a", "price": {"currency": "EUR", "amount": 2.0}}])
    );
}

#[test]
fn blank_text_skips_the_transforms_and_takes_the_default() {
    // A blank locale is as absent as a missing one: no `unknown_language` rejection for an
    // optional field, and a `default:` applies as it does for a bare path.
    let p = plan(
        r#"    - event_type: HOME
      fields:
        user_id: {path: user}
        device: {language: {path: locale, transform: language}}
        domain: {path: site, transform: [trim, lower], default: shop.example}
"#,
    )
    .expect("compiles");
    for blank in ["", "   "] {
        let e = out(
            &p,
            json!({"ts": 1_700_000_000, "user": "u", "locale": blank, "site": blank}),
        )
        .expect("delivered");
        assert!(e.get("device").is_none(), "{e}");
        assert_eq!(e["domain"], json!("shop.example"));
    }
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "locale": "pt-BR", "site": " Shop.Example "}),
    )
    .expect("delivered");
    assert_eq!(
        (&e["device"]["language"], &e["domain"]),
        (&json!("pt"), &json!("shop.example"))
    );
}

#[test]
fn a_default_next_to_if_covers_the_missing_branch_and_one_inside_when_does_not() {
    let p = plan(
        r#"    - event_type: HOME
      fields:
        user_id: {path: u}
        custom_id: {if: {field: app, equals: true}, then: {path: sid}, default: web-visitor}
        domain: {path: site, default: shop.example, when: {field: app, equals: true}}
"#,
    )
    .expect("compiles");
    let web = out(
        &p,
        json!({"ts": 1_700_000_000, "u": "a", "app": false, "sid": "s"}),
    )
    .expect("ok");
    assert_eq!(web["custom_id"], json!("web-visitor"));
    assert!(web.get("domain").is_none(), "{web}");
    let app = out(&p, json!({"ts": 1_700_000_000, "u": "a", "app": true})).expect("ok");
    assert_eq!(
        (&app["custom_id"], &app["domain"]),
        (&json!("web-visitor"), &json!("shop.example"))
    );
}
