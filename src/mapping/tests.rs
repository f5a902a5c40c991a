//! End-to-end tests per operator: each compiles a small YAML block and processes messages.

use super::*;
use serde_json::json;

pub(super) const NOW: i64 = 1_800_000_000_000;

/// A block with the always-required fields shared, plus `rules`/extra keys from the test.
pub(super) fn plan_with(extra: &str) -> Result<MappingPlan, Vec<String>> {
    let text = format!(
        "- topic: t\n  fields:\n    timestamp: {{path: ts, transform: epoch_seconds}}\n    channel_type: SITE\n    user_id: {{path: user}}\n{extra}"
    );
    compile_text(&text)
}

pub(super) fn compile_text(text: &str) -> Result<MappingPlan, Vec<String>> {
    let y: Yaml = serde_yaml_ng::from_str(text).expect("test yaml");
    let mut errors = Vec::new();
    let p = compile(&y, &mut errors);
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors.into_iter().map(|e| e.to_string()).collect())
    }
}

pub(super) fn msg<'a>(
    topic: &'a str,
    payload: &'a [u8],
    headers: &'a [(&'a str, Option<&'a [u8]>)],
) -> SourceMessage<'a> {
    SourceMessage {
        topic,
        partition: 3,
        offset: 42,
        key: Some(b"k1"),
        headers,
        timestamp_ms: Some(1_700_000_000_999),
        payload: Some(payload),
    }
}

fn run(p: &MappingPlan, v: serde_json::Value) -> Processed {
    let bytes = serde_json::to_vec(&v).expect("json");
    let headers: &[(&str, Option<&[u8]>)] =
        &[("x-user", Some(b"hdr-user")), ("bad", Some(b"\xff"))];
    p.route("t")
        .expect("route")
        .process(&msg("t", &bytes, headers), &ValidateOptions::at(NOW))
}

/// The delivered event as JSON, or the reject reason.
pub(super) fn out(p: &MappingPlan, v: serde_json::Value) -> Result<serde_json::Value, String> {
    match run(p, v) {
        Processed::Deliver(e) => Ok(serde_json::to_value(&e).expect("ser")),
        Processed::Filtered { reason } => Err(format!("filtered:{reason}")),
        Processed::Reject { reason, detail, .. } => Err(format!("{reason}: {detail}")),
    }
}

fn field(p: &MappingPlan, v: serde_json::Value, name: &str) -> serde_json::Value {
    let e = out(p, v).unwrap_or_else(|e| panic!("rejected: {e}"));
    e.pointer(name).cloned().unwrap_or(serde_json::Value::Null)
}

const HOME: &str = "  rules:\n    - event_type: HOME\n";

#[test]
fn minimal_rule_builds_event_with_derived_id() {
    let p = plan_with(HOME).expect("compiles");
    let e = out(&p, json!({"ts": 1_700_000_000, "user": "u1"})).expect("delivered");
    assert_eq!(
        e,
        json!({"id": "t:3:42", "event_type": "HOME", "timestamp": 1_700_000_000_000_i64, "channel_type": "SITE", "user_id": "u1"})
    );
}

#[test]
fn derived_id_is_stable_and_bounded() {
    assert_eq!(derived_id("shop", 0, 7), "shop:0:7");
    assert_eq!(derived_id("shop", 0, 7), derived_id("shop", 0, 7));
    let long = "t".repeat(200);
    let id = derived_id(&long, 1, 2);
    assert_eq!(id.len(), 64);
    assert_eq!(id, derived_id(&long, 1, 2));
    assert_ne!(id, derived_id(&long, 1, 3));
}

#[test]
fn sources_path_pointer_const_template_first_default() {
    let p = plan_with(
        r#"  rules:
    - event_type: PAGE_VIEW
      fields:
        id: {pointer: /meta/ids/0}
        page_id: "CAT:{{ page.cat }}:{{ page.n }}"
        referrer_page_id: {template: "R:{{ page.missing }}", default: NONE}
        custom_id: {first: [{path: a}, {path: b}, {const: fallback}]}
        domain: {const: shop.example}
"#,
    )
    .expect("compiles");
    let e = out(&p, json!({"ts": 1_700_000_000, "user": "u", "meta": {"ids": ["m-1"]}, "page": {"cat": "shoes", "n": 2}, "a": "", "b": "bee"})).expect("ok");
    assert_eq!(e["id"], "m-1");
    assert_eq!(e["page_id"], "CAT:shoes:2");
    assert_eq!(e["referrer_page_id"], "NONE");
    assert_eq!(e["custom_id"], "bee");
    assert_eq!(e["domain"], "shop.example");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "page": {"cat": "x", "n": 1}}),
    )
    .expect("ok");
    assert_eq!(e["custom_id"], "fallback");
    assert_eq!(
        e["id"], "t:3:42",
        "missing mapped id falls back to the derived one"
    );
}

#[test]
fn kafka_metadata_sources() {
    let p = plan_with(
        r#"  rules:
    - event_type: PAGE_VIEW
      fields:
        timestamp: {kafka: timestamp}
        user_id: {header: x-user}
        custom_id: {kafka: key}
        page_id: {kafka: topic}
        session_id: {kafka: partition}
        decision_track_id: {kafka: offset}
"#,
    )
    .expect("compiles");
    let e = out(&p, json!({})).expect("ok");
    assert_eq!(e["timestamp"], 1_700_000_000_999_i64);
    assert_eq!(e["user_id"], "hdr-user");
    assert_eq!(e["custom_id"], "k1");
    assert_eq!(e["page_id"], "t");
    assert_eq!(e["session_id"], "3");
    assert_eq!(e["decision_track_id"], "42");
    let p =
        plan_with("  rules:\n    - event_type: HOME\n      fields: {custom_id: {header: bad}}\n")
            .expect("compiles");
    assert!(out(&p, json!({"ts": 1_700_000_000}))
        .is_err_and(|e| e.starts_with("invalid_utf8: custom_id")));
}

#[test]
fn conditions_first_match_wins_and_no_match_policy() {
    let rules = r#"  rules:
    - when: {all: [{field: type, equals: page}, {field: page.name, in: [Home, home]}]}
      event_type: HOME
    - when: {any: [{field: type, matches: "^search"}, {field: query, exists: true}]}
      event_type: SEARCH
      fields: {search_query: {path: query, default: "*"}}
    - when: {not: {field: n, equals: 2.0}}
      event_type: PAGE_VIEW
      fields: {page_id: {path: type}}
"#;
    let p = plan_with(rules).expect("compiles");
    let base = |v: serde_json::Value| {
        let mut m = json!({"ts": 1_700_000_000, "user": "u"});
        if let (Some(m), Some(v)) = (m.as_object_mut(), v.as_object()) {
            m.extend(v.clone());
        }
        m
    };
    assert_eq!(
        field(
            &p,
            base(json!({"type": "page", "page": {"name": "home"}})),
            "/event_type"
        ),
        "HOME"
    );
    assert_eq!(
        field(&p, base(json!({"type": "searched"})), "/event_type"),
        "SEARCH"
    );
    assert_eq!(
        field(
            &p,
            base(json!({"type": "x", "query": "red"})),
            "/search_query"
        ),
        "red"
    );
    assert_eq!(
        field(
            &p,
            base(json!({"type": "page", "page": {"name": "Other"}})),
            "/event_type"
        ),
        "PAGE_VIEW"
    );
    assert_eq!(
        out(&p, base(json!({"type": "y", "n": 2}))),
        Err("filtered:no_matching_rule".into())
    );
    let p = plan_with(&format!("  on_no_match: dlq\n{rules}")).expect("compiles");
    let r = run(&p, base(json!({"type": "y", "n": 2})));
    assert!(
        matches!(
            r,
            Processed::Reject {
                class: RejectClass::NoMatch,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn conditions_on_headers_and_kafka_metadata() {
    let p = plan_with(
        "  rules:\n    - when: {header: x-user, equals: nobody}\n      event_type: LAND\n    - when: {kafka: key, matches: '^k'}\n      event_type: HOME\n",
    )
    .expect("compiles");
    assert_eq!(
        field(&p, json!({"ts": 1_700_000_000, "user": "u"}), "/event_type"),
        "HOME"
    );
}

#[test]
fn items_each_with_sum_for_revenue() {
    let p = plan_with(
        r#"  rules:
    - event_type: PURCHASE
      fields:
        items:
          each: order.lines
          fields:
            id: {path: sku}
            quantity: {path: qty}
            price: {amount: {path: cents, transform: {divide: 100}}, currency: {path: $.order.currency, transform: currency}}
        revenue:
          amount: {sum: {each: order.lines, of: {path: cents}, times: {path: qty}}, transform: [{divide: 100}, {round: 2}]}
          currency: {path: order.currency, transform: currency}
"#,
    )
    .expect("compiles");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "order": {"currency": "eur", "lines": [
        {"sku": "A", "qty": 2, "cents": 1999}, {"sku": "B", "qty": "1", "cents": 501}]}}),
    )
    .expect("ok");
    assert_eq!(
        e["items"],
        json!([
        {"id": "A", "quantity": 2, "price": {"currency": "EUR", "amount": 19.99}},
        {"id": "B", "quantity": 1, "price": {"currency": "EUR", "amount": 5.01}}])
    );
    assert_eq!(e["revenue"], json!({"currency": "EUR", "amount": 44.99}));
    let r = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "order": {"currency": "EUR", "lines": [{"sku": "A", "qty": 1.5, "cents": 1}]}}),
    );
    assert_eq!(
        r,
        Err("invalid_number: items[0].quantity: 1.5 is not a whole number (source `qty`)".into())
    );
    let r = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "order": {"lines": {"sku": "A"}}}),
    );
    assert!(
        r.as_ref()
            .is_err_and(|e| e.starts_with("type_mismatch: items:")),
        "{r:?}"
    );
    let r = out(&p, json!({"ts": 1_700_000_000, "user": "u", "order": {}}));
    assert!(
        r.as_ref().is_err_and(|e| e.starts_with("missing_items")),
        "{r:?}"
    );
}

#[test]
fn text_url_language_and_datetime_steps_work_together_in_a_rule() {
    // The worked example of docs/mapping.md (Transforms), plus split, replace, strip and truncate.
    let p = compile_text(
        r#"
- topic: t
  fields:
    timestamp:
      path: created_at
      transform: {datetime: {format: "%Y-%m-%d %H:%M:%S%.f", zone: Europe/Berlin}}
    channel_type: SITE
    user_id: {path: user, transform: [trim, {strip_prefix: "user:"}, {truncate: 8}]}
    custom_id: {path: ga_cookie, transform: {split: {on: ".", index: -2}}}
    device:
      language: {path: context.locale, transform: language}
  rules:
    - event_type: PAGE_VIEW
      fields:
        page_id:
          path: context.page.url
          transform:
            - {url: path}
            - {regex: "^/p/(\\d+)$"}
          default: OTHER_PAGE
        referrer_page_id:
          path: context.page.referrer
          transform: [{url: without_query}, {replace: {pattern: "^https?://", with: ""}}, {strip_suffix: "/"}]
        search_query: {path: context.page.url, transform: {url: {query: q}}}
"#,
    )
    .expect("compiles");
    let message = |created: &str, locale: &str, url: &str| {
        json!({
            "created_at": created, "user": "  user:0123456789 ", "ga_cookie": "GA1.1.1234.5678",
            "context": {"locale": locale, "page": {"url": url, "referrer": "https://www.example.com/list/?page=2#top"}}
        })
    };
    let e = out(
        &p,
        message(
            "2026-11-24 10:00:05.123",
            "pt-BR",
            "https://shop.example/p/123?q=red+shoes",
        ),
    )
    .expect("delivered");
    assert_eq!(e["timestamp"], json!(1_795_510_805_123_i64));
    assert_eq!(e["user_id"], json!("01234567"));
    assert_eq!(e["custom_id"], json!("1234"));
    assert_eq!(e["device"], json!({"language": "pt"}));
    assert_eq!(e["page_id"], json!("123"));
    assert_eq!(e["referrer_page_id"], json!("www.example.com/list"));
    assert_eq!(e["search_query"], json!("red shoes"));
    // The regex finds nothing on another page: the source's default applies; no `q`: no field.
    let e = out(&p, message("2026-11-24", "en", "/cart"));
    assert!(
        e.as_ref().is_err_and(
            |e| e.starts_with("invalid_timestamp: timestamp: \"2026-11-24\" does not match")
        ),
        "{e:?}"
    );
    let e = out(&p, message("2026-11-24 10:00:05", "en_US", "/cart")).expect("delivered");
    assert_eq!(e["page_id"], json!("OTHER_PAGE"));
    assert_eq!(e["device"], json!({"language": "en"}));
    assert_eq!(e.get("search_query"), None);
    // A locale without a language, and a local time the zone skips, are rejected with reasons.
    let r = out(&p, message("2026-11-24 10:00:05", "english", "/p/1"));
    assert!(
        r.as_ref()
            .is_err_and(|e| e.starts_with("unknown_language: device.language: \"english\"")),
        "{r:?}"
    );
    let r = out(&p, message("2026-03-29 02:30:00", "en", "/p/1"));
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("does not exist in Europe/Berlin")),
        "{r:?}"
    );
    assert!(
        r.as_ref()
            .is_err_and(|e| e.starts_with("invalid_timestamp: timestamp:")),
        "{r:?}"
    );
}

#[test]
fn new_transform_arguments_are_checked_at_start_up_with_rule_paths() {
    let errs = plan_with(
        r#"  rules:
    - event_type: PAGE_VIEW
      fields:
        page_id: {path: url, transform: [{url: pth}, {regex: "(\\d+"}]}
        referrer_page_id: {path: ref, transform: {replace: {pattern: "(a)", with: "$2"}}}
        device: {language: {path: l, transform: {language: en}}}
        search_query: {path: q, transform: {datetime: {format: "%H:%M", zone: Europe/Berlinn}}}
"#,
    )
    .expect_err("bad arguments");
    // In the order the fields are compiled (MCM's field order), each at its own path.
    let at = "topics[0].rules[0].fields";
    assert_eq!(
        errs,
        [
            format!("{at}.search_query.transform.datetime.format: format \"%H:%M\": no complete date (a year, month and day, e.g. %Y-%m-%d; read back as \"04:05\"); a time alone cannot be placed"),
            format!("{at}.search_query.transform.datetime.zone: unknown time zone \"Europe/Berlinn\" (did you mean `Europe/Berlin`?)"),
            format!("{at}.page_id.transform[0].url: unknown URL part `pth` (did you mean `path`?): write `{{url: path}}`, `{{url: host}}`, `{{url: without_query}}` or `{{url: {{query: name}}}}`"),
            format!("{at}.page_id.transform[1].regex: invalid regular expression \"(\\\\d+\": unclosed group"),
            format!("{at}.referrer_page_id.transform.replace.with: `$2` refers to a group the pattern does not have: the pattern has group 1; 0 is the whole match; `$$` is a literal `$`"),
            format!("{at}.device.language.transform.language: `language` takes no argument"),
        ]
    );
}

#[test]
fn single_item_from_top_level_fields() {
    let p = plan_with(
        "  rules:\n    - event_type: ITEM_PAGE_VIEW\n      fields:\n        items: [{id: {path: product.id}, price: {amount: {path: product.price}, currency: USD}}]\n",
    )
    .expect("compiles");
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "product": {"id": 17, "price": "9.5"}}),
    )
    .expect("ok");
    assert_eq!(
        e["items"],
        json!([{"id": "17", "price": {"currency": "USD", "amount": 9.5}}])
    );
}

#[test]
fn user_agent_fills_device_fields_unless_mapped() {
    let p = plan_with(
        "  rules:\n    - event_type: HOME\n      fields:\n        device: {user_agent: {path: ua}, persistent_id: {path: did}, model: {path: model}}\n",
    )
    .expect("compiles");
    let ua = "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "ua": ua, "did": "d-1"}),
    )
    .expect("ok");
    assert_eq!(
        e["device"],
        json!({"os": "Android", "os_version": "13", "persistent_id": "d-1", "model": "SM-S918B", "ua": ua})
    );
    let e = out(
        &p,
        json!({"ts": 1_700_000_000, "user": "u", "ua": ua, "model": "Galaxy S23"}),
    )
    .expect("ok");
    assert_eq!(e["device"]["model"], "Galaxy S23");
}

#[test]
fn enum_fields_accept_any_case_and_reject_others() {
    let p =
        plan_with("  rules:\n    - event_type: HOME\n      fields: {channel_type: {path: ch}}\n")
            .expect("compiles");
    assert_eq!(
        field(
            &p,
            json!({"ts": 1_700_000_000, "user": "u", "ch": "mobile_site"}),
            "/channel_type"
        ),
        "MOBILE_SITE"
    );
    let r = out(&p, json!({"ts": 1_700_000_000, "user": "u", "ch": "web"}));
    assert!(
        r.as_ref()
            .is_err_and(|e| e.starts_with("invalid_enum: channel_type")),
        "{r:?}"
    );
}

#[test]
fn runtime_errors_name_field_and_source() {
    let p = plan_with(HOME).expect("compiles");
    assert_eq!(
        out(&p, json!({"user": "u"})),
        Err(
            "path_not_found: timestamp: no value in the message and no default (source `ts`)"
                .into()
        )
    );
    assert_eq!(
        out(&p, json!({"ts": {"s": 1}, "user": "u"})),
        Err("type_mismatch: timestamp: expected a number, found an object (source `ts`)".into())
    );
    assert_eq!(
        out(&p, json!({"ts": 1_700_000_000, "user": ["u"]})),
        Err("type_mismatch: user_id: expected text, found an array (source `user`)".into())
    );
    assert!(out(&p, json!({"ts": 1_700_000_000})).is_err_and(|e| e.starts_with("no_identifier")));
    assert!(out(&p, json!({"ts": 1e300, "user": "u"}))
        .is_err_and(|e| e.starts_with("number_out_of_range")));
    let route = p.route("t").expect("route");
    let o = ValidateOptions::at(NOW);
    let code = |payload: Option<&[u8]>| match route.process(
        &SourceMessage {
            payload,
            ..msg("t", b"", &[])
        },
        &o,
    ) {
        Processed::Reject {
            class: RejectClass::Decode,
            reason,
            ..
        } => reason,
        other => format!("{other:?}"),
    };
    assert_eq!(code(None), "tombstone");
    assert_eq!(code(Some(b"{")), "invalid_json");
    assert_eq!(code(Some(b"\xff")), "invalid_utf8");
    assert_eq!(code(Some(b"42")), "not_an_object");
}

#[test]
fn routing_exact_before_patterns_and_subscriptions() {
    let p = compile_text(
        r#"
- pattern: 'shop\..*'
  on_failure: halt
  fields: {timestamp: {kafka: timestamp}, channel_type: SITE, custom_id: {kafka: key}}
  rules: [{event_type: HOME}]
- topic: shop.orders
  fields: {timestamp: {kafka: timestamp}, channel_type: SITE, custom_id: {kafka: key}}
  rules: [{event_type: LAND}]
"#,
    )
    .expect("compiles");
    assert_eq!(
        p.route("shop.orders").map(|b| b.name.as_str()),
        Some("shop.orders")
    );
    assert_eq!(
        p.route("shop.events").map(|b| b.name.as_str()),
        Some(r"shop\..*")
    );
    assert_eq!(
        p.route("shop.events").and_then(TopicMapping::on_failure),
        Some(FailurePolicy::Halt)
    );
    assert!(p.route("other").is_none());
    assert!(
        p.route("xshop.a").is_none(),
        "patterns are anchored like librdkafka's"
    );
    // Whole-name form: the broker matches it in full under the consumer protocol (KIP-848).
    assert_eq!(p.subscriptions(), ["shop.orders", r"^(shop\..*).*"]);
}

#[test]
fn start_up_errors_carry_yaml_paths() {
    let errs = plan_with(
        r#"  on_no_match: ignore
  rules:
    - event_type: PURCHASE
      when: {field: "a..b", equals: 1}
      fields:
        revenue: {amount: {path: total, transform: lowr}, currency: usd}
        user_idd: {path: u}
        page_id: {path: "items[x]"}
        items: {each: lines, fields: {quantity: two, id: {path: sku}}}
    - event_type: SEARCH
    - event_type: PURCHASED
    - event_type: HOME
      fields: {channel_type: WEB, timestamp: {const: yesterday}, device: {os: {path: os, transform: {lookup: {table: {a: 1}}}}}}
"#,
    )
    .expect_err("must fail");
    let expected = [
        "topics[0].on_no_match: \"ignore\" is not one of: skip, dlq",
        "topics[0].rules[0].when.field: bad path \"a..b\": empty segment (two dots, or a dot at the start)",
        "topics[0].rules[0].fields.page_id.path: bad path \"items[x]\": `[…]` holds an integer index, a \"quoted key\" or a test such as `[key=value]`",
        "topics[0].rules[0].fields.items.fields.quantity: constant \"two\" is not a whole number",
        "topics[0].rules[0].fields.revenue.amount.transform: unknown transform `lowr` (did you mean `lower`?)",
        "topics[0].rules[0].fields.revenue.currency: constant \"usd\" is not an MCM currency code (upper-case, e.g. USD, EUR, KRW)",
        "topics[0].rules[0].fields.user_idd: unknown key (did you mean `user_id`?)",
        "topics[0].rules[1]: event type SEARCH needs search_query, and neither this rule's nor the block's `fields:` provide it",
        "topics[0].rules[2].event_type: \"PURCHASED\" is not an MCM event type (HOME, LAND, PAGE_VIEW, ITEM_PAGE_VIEW, ADD_TO_CART, ADD_TO_WISHLIST, SEARCH, PURCHASE)",
        "topics[0].rules[3].fields.timestamp: constant \"yesterday\" is not a whole number",
        "topics[0].rules[3].fields.channel_type: constant \"WEB\" is not a channel_type (APP, SITE, DESKTOP_SITE, MOBILE_SITE)",
    ];
    for e in expected {
        assert!(
            errs.iter().any(|x| x == e),
            "missing {e:?} in\n{}",
            errs.join("\n")
        );
    }
    assert_eq!(errs.len(), expected.len(), "{}", errs.join("\n"));
}

#[test]
fn a_bad_path_in_a_required_field_is_reported_as_itself_not_as_a_missing_field() {
    // The rule writes page_id; its path does not parse. One error, at the path, and not the
    // false "neither this rule's nor the block's fields provide it".
    let errs = plan_with(
        "  rules:\n    - event_type: PAGE_VIEW\n      fields: {page_id: {path: \"page[x]\"}}\n",
    )
    .expect_err("must fail");
    assert_eq!(
        errs,
        ["topics[0].rules[0].fields.page_id.path: bad path \"page[x]\": `[…]` holds an integer index, a \"quoted key\" or a test such as `[key=value]`"]
    );
    // The same in the block's shared fields: the rules do not each claim it is missing.
    let errs = compile_text(
        "- topic: t\n  fields:\n    timestamp: {path: ts, transform: epoch_seconds}\n    channel_type: SITE\n    user_id: {path: user}\n    page_id: {path: \"page[x]\"}\n  rules:\n    - event_type: PAGE_VIEW\n    - event_type: PAGE_VIEW\n",
    )
    .expect_err("must fail");
    assert_eq!(errs.len(), 1, "{}", errs.join("\n"));
    assert!(
        errs[0].starts_with("topics[0].fields.page_id.path: bad path"),
        "{errs:?}"
    );
    // Truly missing, the field is still named.
    let errs = plan_with("  rules:\n    - event_type: PAGE_VIEW\n").expect_err("must fail");
    assert_eq!(
        errs,
        ["topics[0].rules[0]: event type PAGE_VIEW needs page_id, and neither this rule's nor the block's `fields:` provide it"]
    );
}

#[test]
fn block_level_errors() {
    let errs = compile_text("- rules: []\n- topic: a\n  pattern: b\n  rules: [{event_type: HOME}]\n- {topic: t, rules: [{event_type: HOME}]}\n- {topic: t, rules: [{event_type: HOME}]}\n").expect_err("fails");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("topics[0]: a block needs `topic:`")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("topics[0].rules: required")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("topics[1].pattern: give either")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("topics[3].topic: topic \"t\" is mapped by an earlier block")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("topics[2].rules[0]: event type HOME needs timestamp")),
        "{errs:?}"
    );
}

#[test]
fn reject_classes_and_reason_codes_are_pinned() {
    // DLQ headers, metrics labels and `expect: {error: …}` in users' case files read these.
    let classes = [
        RejectClass::Decode,
        RejectClass::Mapping,
        RejectClass::Validation,
        RejectClass::NoMatch,
    ];
    assert_eq!(
        classes.map(RejectClass::as_str),
        ["decode", "mapping", "validation", "no_match"]
    );
    let reasons = [
        MapReason::PathNotFound,
        MapReason::TypeMismatch,
        MapReason::InvalidNumber,
        MapReason::NumberOutOfRange,
        MapReason::InvalidTimestamp,
        MapReason::UnknownCurrency,
        MapReason::UnknownLanguage,
        MapReason::LookupNoMatch,
        MapReason::InvalidEnum,
        MapReason::InvalidUtf8,
    ];
    assert_eq!(
        reasons.map(MapReason::code),
        [
            "path_not_found",
            "type_mismatch",
            "invalid_number",
            "number_out_of_range",
            "invalid_timestamp",
            "unknown_currency",
            "unknown_language",
            "lookup_no_match",
            "invalid_enum",
            "invalid_utf8",
        ]
    );
}

#[test]
fn kafka_fields_and_no_match_policies_are_read_by_name() {
    let errs = compile_text(
        "- topic: t\n  on_no_match: drop\n  rules:\n    - event_type: HOME\n      fields:\n        timestamp: {kafka: timestamp}\n        channel_type: SITE\n        user_id: {kafka: key}\n        custom_id: {kafka: Key}\n",
    )
    .expect_err("bad names");
    assert_eq!(
        errs,
        [
            "topics[0].on_no_match: \"drop\" is not one of: skip, dlq",
            "topics[0].rules[0].fields.custom_id.kafka: \"Key\" is not one of: key, topic, partition, offset, timestamp",
        ]
    );
}
