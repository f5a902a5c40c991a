//! Unit tests of paths: parsing (both spellings and every error), resolving, projection needs
//! and slot hints.

use super::*;
use crate::mapping::doc::{self, decode};
use crate::mapping::need;
use proptest::prelude::*;

const MSG: &[u8] =
    br#"{"order":{"lines":[{"sku":"A"},{"sku":"B"}],"n":null},"a/b":{"~x":1},"k.d":2,"01":3}"#;

fn get(path: &str) -> Option<String> {
    let d = decode(Some(MSG)).expect("json");
    let p = Path::parse(path).expect("path");
    p.resolve(&d, d.root()).map(|v| format!("{v:?}"))
}

#[test]
fn dotted_paths_resolve() {
    assert_eq!(get("order.lines[1].sku").as_deref(), Some(r#"Str("B")"#));
    assert_eq!(get("order.lines[-2].sku").as_deref(), Some(r#"Str("A")"#));
    assert_eq!(get("$.order.lines[0].sku").as_deref(), Some(r#"Str("A")"#));
    assert_eq!(get(r#"["k.d"]"#).as_deref(), Some("Int(2)"));
    assert_eq!(get("order.lines[2].sku"), None);
    assert_eq!(get("order.n"), None, "null is absent");
    assert_eq!(get("order.lines.sku"), None);
}

#[test]
fn pointers_resolve_with_escapes() {
    assert_eq!(get("/order/lines/0/sku").as_deref(), Some(r#"Str("A")"#));
    assert_eq!(get("/a~1b/~0x").as_deref(), Some("Int(1)"));
    assert_eq!(get("$/01").as_deref(), Some("Int(3)"));
}

#[test]
fn slot_hints_read_projected_objects_and_leave_others_to_names() {
    use crate::mapping::need::{self, Need};
    let mut need = Need::default();
    need.keep(&["z"]);
    need.keep(&["order", "n"]);
    need.keep(&["order", "lines", "sku"]);
    need.keep(&["whole"]);
    let unnumbered = need.clone();
    need.number();
    let hinted = |text: &str, scope: &[String]| {
        let mut p = Path::parse(text).expect("path");
        p.hint(&need, scope);
        p
    };
    let slots = |p: &Path| -> Vec<Option<u32>> {
        p.segs
            .iter()
            .map(|s| match s {
                Seg::Key(_, h) => h.map(|h| h.index),
                _ => None,
            })
            .collect()
    };
    let lines = hinted("order.lines[1].sku", &[]);
    assert_eq!(slots(&lines), [Some(1), Some(1), None, Some(0)]);
    let sku = hinted("sku", &["order".into(), "lines".into()]);
    assert_eq!(slots(&sku), [Some(0)]);
    assert_eq!(slots(&hinted("$.z", &["order".into()])), [Some(0)]);
    assert_eq!(slots(&hinted("whole.x", &[])), [Some(2), None]);

    let mut bare = Path::parse("order.lines[1].sku").expect("path");
    bare.hint(&unnumbered, &[]);
    assert_eq!(
        slots(&bare),
        [None, None, None, None],
        "no numbers, no hints"
    );

    // The same keys in another order: the hints name the other need, so names are used.
    let mut other = Need::default();
    other.keep(&["order", "lines", "sku"]);
    other.keep(&["order", "n"]);
    other.keep(&["z"]);
    other.number();
    let projected = need::decode(Some(MSG), &need).expect("json");
    let reordered = need::decode(Some(MSG), &other).expect("json");
    let full = decode(Some(MSG)).expect("json");
    for doc in [&projected, &reordered, &full] {
        let line = lines.resolve(doc, doc.root()).expect("sku");
        assert_eq!(line, &Node::Str("B".into()));
        assert_eq!(bare.resolve(doc, doc.root()), Some(line));
        assert_eq!(
            hinted("order.n", &[]).resolve(doc, doc.root()),
            None,
            "null is absent"
        );
        assert_eq!(hinted("z", &[]).resolve(doc, doc.root()), None, "absent");
    }
    // A route that meets something other than the projected object it expects.
    let scalar = need::decode(Some(br#"{"order":"x","z":[1]}"#), &need).expect("json");
    assert_eq!(hinted("order.n", &[]).resolve(&scalar, scalar.root()), None);
    let z = hinted("z", &[]).resolve(&scalar, scalar.root());
    assert_eq!(
        z.map(|z| scalar.tree(z)),
        Some(doc::Tree::Arr(vec![doc::Tree::Int(1)]))
    );
    assert!(hinted("order.n", &[]).route.is_some());
    assert!(lines.route.is_none(), "an index segment: walked");
}

#[test]
fn bad_syntax_is_reported() {
    for bad in [
        "", "a..b", ".a", "a.", "a[", "a[x]", "a.[0]", "a]", "{{ a }}", " a", "/a/~2",
    ] {
        assert!(Path::parse(bad).is_err(), "{bad:?} should be rejected");
    }
    for good in [
        "a",
        "a[0][1]",
        "a[-1].b",
        "$",
        "$.a",
        "/",
        "$/a",
        r#"a["x.y"].z"#,
    ] {
        assert!(Path::parse(good).is_ok(), "{good:?} should parse");
    }
}

/// A GA4 BigQuery-like row and a CDP identity list: values in lists in no fixed order, typed
/// members that are JSON null when unused, and elements that are not objects.
const ROW: &str = r#"{
  "event_params": [
    "scalar", null, ["nested"], {"value": {"string_value": "no key"}},
    {"key": "ga_session_number", "value": {"string_value": null, "int_value": 3, "double_value": null}},
    {"key": {"k": "page_location"}, "value": {"string_value": "object key"}},
    {"key": "page_location", "value": {"string_value": "https://shop.example/p?q=1", "int_value": null}},
    {"key": "page_location", "value": {"string_value": "second"}},
    {"key": "price", "value": {"double_value": 9.5}},
    {"key": true, "value": {"string_value": "boolean key"}},
    {"key": "a]b.c", "value": {"string_value": "odd"}},
    {"key": "say \"hi\"", "value": {"string_value": "quoted"}},
    {"key": " padded ", "value": {"string_value": "padded"}},
    {"key": "", "value": {"string_value": "empty"}}
  ],
  "ids": [{"type": "device", "value": "d1"}, {"type": "email", "value": "a@x"}, {"type": "mail", "value": "b@x"}],
  "promos": [{"code": "X-1"}, {"code": "PROMO-7"}, {"code": "PROMO-8"}],
  "nums": [{"n": 3.0, "v": "float 3"}, {"n": 3, "v": "int 3"}, {"n": 12, "v": "twelve"}, {"n": "3", "v": "text 3"}],
  "matrix": [["b", 1], ["a", 2]],
  "obj": {"key": "page_location"},
  "u": {"a": null, "b": {"c": 1}, "d": 2, "k.d": 4}
}"#;

/// `path` read from the root of [`ROW`], as debug text.
fn pick(path: &str) -> Option<String> {
    let d = decode(Some(ROW.as_bytes())).expect("json");
    let p = Path::parse(path).unwrap_or_else(|e| panic!("{e}"));
    p.resolve(&d, d.root()).map(|v| match v {
        Node::Str(s) => s.to_string(),
        other => format!("{other:?}"),
    })
}

#[test]
fn a_test_chooses_the_first_matching_element() {
    let ga =
        "event_params[key=page_location].value.(string_value|int_value|double_value|float_value)";
    assert_eq!(pick(ga).as_deref(), Some("https://shop.example/p?q=1"));
    assert_eq!(
        pick("event_params[value.string_value=second].key").as_deref(),
        Some("page_location"),
        "a dotted sub-path"
    );
    assert_eq!(
        pick("ids[type~=^(email|mail)$].value").as_deref(),
        Some("a@x")
    );
    assert_eq!(
        pick("promos[code^=PROMO-].code").as_deref(),
        Some("PROMO-7")
    );
    assert_eq!(
        pick("matrix[[0]=a][1]").as_deref(),
        Some("Int(2)"),
        "an index sub-path"
    );
    assert_eq!(
        pick("$.ids[type=email].value").as_deref(),
        Some("a@x"),
        "anchored"
    );
    assert_eq!(
        pick("event_params[-1].key").as_deref(),
        Some(""),
        "indices unchanged"
    );
}

#[test]
fn equality_reads_numbers_by_value_and_booleans_as_text() {
    assert_eq!(
        pick("nums[n=3].v").as_deref(),
        Some("float 3"),
        "3 matches 3.0"
    );
    assert_eq!(pick("nums[n=3.0].v").as_deref(), Some("float 3"));
    assert_eq!(pick("nums[n=12].v").as_deref(), Some("twelve"));
    assert_eq!(pick("nums[n=1.2e1].v").as_deref(), Some("twelve"));
    assert_eq!(
        pick("nums[n=03].v"),
        None,
        "not a JSON number: only text \"03\" would match"
    );
    assert_eq!(
        pick(r#"nums[n="3"].v"#).as_deref(),
        Some("float 3"),
        "quoting changes nothing"
    );
    assert_eq!(
        pick("event_params[value.int_value=3].key").as_deref(),
        Some("ga_session_number")
    );
    assert_eq!(
        pick("event_params[key=true].value.string_value").as_deref(),
        Some("boolean key")
    );
    // `^=` and `~=` read a number's text as `when: matches` does (3.0 is "3").
    assert_eq!(pick("nums[n^=1].v").as_deref(), Some("twelve"));
    assert_eq!(pick("nums[n~=^3$].v").as_deref(), Some("float 3"));
}

#[test]
fn quoted_texts_hold_brackets_dots_quotes_and_spaces() {
    for (path, want) in [
        (r#"event_params[key="a]b.c"].value.string_value"#, "odd"),
        (
            r#"event_params[key="say ""hi"""].value.string_value"#,
            "quoted",
        ),
        (
            r#"event_params[key=" padded "].value.string_value"#,
            "padded",
        ),
        (r#"event_params[key=""].value.string_value"#, "empty"),
        (r#"event_params[key~="^\w+\]b"].value.string_value"#, "odd"),
    ] {
        assert_eq!(pick(path).as_deref(), Some(want), "{path}");
    }
}

#[test]
fn no_match_a_non_array_and_odd_elements_are_absent_not_errors() {
    for path in [
        "ids[type=phone].value",
        "obj[key=page_location]",
        "u.d[key=x]",
        "u[key=x]",
        "missing[key=x]",
        "event_params[key=page_location][0]",
        "event_params[value=no key]",
        "event_params[k=page_location]",
        "event_params[key~=^nothing$]",
        "promos[code^=promo-]",
    ] {
        assert_eq!(pick(path), None, "{path}");
    }
    // Scope: a test at the start reads the scope itself, an array inside an `each:`.
    let d = decode(Some(ROW.as_bytes())).expect("json");
    let ids = d.get(d.root(), "ids").expect("ids");
    let p = Path::parse("[type=email].value").expect("path");
    assert_eq!(p.resolve(&d, ids), Some(&Node::Str("a@x".into())));
}

#[test]
fn a_union_reads_the_first_member_present_and_not_null() {
    assert_eq!(
        pick("u.(a|b).c").as_deref(),
        Some("Int(1)"),
        "null is passed over"
    );
    assert_eq!(pick("u.(x|d)").as_deref(), Some("Int(2)"));
    assert_eq!(pick(r#"u.(x|"k.d")"#).as_deref(), Some("Int(4)"));
    assert_eq!(
        pick("(missing|u).d").as_deref(),
        Some("Int(2)"),
        "at the start"
    );
    assert_eq!(
        pick("u.(d|b).c"),
        None,
        "chosen by presence, not by what follows"
    );
    assert_eq!(pick("u.(a|x)"), None);
    assert_eq!(pick("u.d.(a|b)"), None, "not an object");
    assert_eq!(
        pick("event_params[key=ga_session_number].value.(string_value|int_value)").as_deref(),
        Some("Int(3)")
    );
}

/// The reason in `bad path "<path>": <reason>`.
fn why(path: &str) -> String {
    let e = Path::parse(path).expect_err(path);
    let prefix = format!("bad path {path:?}: ");
    e.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{e:?} lacks {prefix:?}"))
        .to_string()
}

#[test]
fn bad_tests_and_unions_say_what_is_wrong() {
    let sub_only = "a test's sub-path holds keys, `[n]` and `[\"quoted key\"]` only";
    for (path, want) in [
        ("a[x]", "`[…]` holds an integer index, a \"quoted key\" or a test such as `[key=value]`"),
        ("a[]", "`[…]` holds an integer index, a \"quoted key\" or a test such as `[key=value]`"),
        ("a[k=x", "unclosed `[`"),
        ("a[=x]", "in `[=x]`: nothing before the operator: name the member to test, e.g. `[key=page_location]`"),
        ("a[k!=x]", "unknown operator `!=` in `[k!=x]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)"),
        ("a[k==x]", "unknown operator `==` in `[k==x]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)"),
        ("a[k>3]", "unknown operator `>` in `[k>3]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)"),
        ("a[k$=x]", "unknown operator `$=` in `[k$=x]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)"),
        ("a[k*=x]", "unknown operator `*=` in `[k*=x]` (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)"),
        ("a[k=]", "in `[k=]`: no text after the operator (write `\"\"` to match empty text)"),
        ("a[k= x]", "in `[k= x]`: the text \" x\" has leading or trailing spaces: quote it to keep them"),
        ("a[k =x]", "in `[k =x]`: no spaces around the operator (quote a text that has leading or trailing spaces)"),
        ("a[k=\"x]", "in `[k=\"x]`: unclosed quoted text (a `\"` inside is written `\"\"`)"),
        ("a[k=\"x\"y]", "in `[k=\"x\"y]`: `]` must follow a quoted text (a `\"` inside is written `\"\"`)"),
        ("a[k..b=x]", "in `[k..b=x]`: sub-path \"k..b\": empty segment (two dots, or a dot at the start)"),
        ("a[$.k=x]", "in `[$.k=x]`: the sub-path is relative to the element, `$` cannot anchor it (quote a key that starts with `$`: `[[\"$type\"]=x]`)"),
        ("a[k[x=1]=2]", &format!("in `[k[x=1]`: {sub_only}")),
        // Quotes at both ends with more between: a test on a quoted key, not a key.
        ("a[\"k\"=\"x\"]", &format!("in `[\"k\"=\"x\"]`: {sub_only} (a key holding `\"` or `(` is quoted that way: `[[\"a(b)\"]=x]`)")),
        ("a.(legacy)", "`(legacy)` names one key: a union lists at least two (`(a|b)`); a key that starts with `(` is written `[\"(legacy)\"]`"),
        ("a[\"k\"=x]", &format!("in `[\"k\"=x]`: {sub_only} (a key holding `\"` or `(` is quoted that way: `[[\"a(b)\"]=x]`)")),
        ("a[(k|j)=x]", &format!("in `[(k|j)=x]`: {sub_only} (a key holding `\"` or `(` is quoted that way: `[[\"a(b)\"]=x]`)")),
        ("a.(x|y", "unclosed `(`"),
        ("a.(", "unclosed `(`"),
        ("a.(\"x|y)", "unclosed `\"` in `(…)`"),
        ("a[0](x|y)", "a key must follow a dot"),
        ("a.(x|y)z", "a key must follow a dot"),
    ] {
        assert_eq!(why(path), want, "{path}");
    }
    let hint = "`(…)` lists keys separated by `|`, e.g. `value.(string_value|int_value)`; quote a key holding `.`, `[`, `]`, `(`, `)`, `|` or spaces: `(\"a.b\"|c)`";
    for (path, want) in [
        ("a.(x||y)", format!("an empty key in `(…)`; {hint}")),
        ("a.()", format!("an empty key in `(…)`; {hint}")),
        ("a.( x|y)", format!("a space in \" x\" in `(…)`; {hint}")),
        (
            "a.(not set|y)",
            format!("a space in \"not set\" in `(…)`; {hint}"),
        ),
        ("a.(x.y|z)", hint.to_string()),
        ("a.(\"x\"y)", hint.to_string()),
    ] {
        assert_eq!(why(path), want, "{path}");
    }
    let bad_regex = why("a[k~=(]");
    assert!(
        bad_regex.starts_with("bad regex \"(\" in a `~=` test: "),
        "{bad_regex}"
    );
}

#[test]
fn good_tests_and_unions_parse_into_their_segments() {
    for good in [
        "a[k=x]",
        "a[k=x=y]",
        "a[k=[x]",
        "a[k.b[0][-1]=x].c",
        r#"a[["k.d"]=x]"#,
        r#"a[["$type"]=x]"#,
        "a[k^=x][0][j~=^y$]",
        "[k=x]",
        "$.a[k=x]",
        "a.(x|y).z",
        "(x|y)",
        r#"a.("x.y"|"(z)"|"")"#,
        "a.(x|y)[k=v].(p|q)",
        "price(usd)",
    ] {
        assert!(Path::parse(good).is_ok(), "{good:?} should parse");
    }
    let p = Path::parse("a[k=x=y].(b|\"c.d\")").expect("path");
    assert!(matches!(&p.segs[2], Seg::Union(alts) if alts == &["b", "c.d"]));
    assert_eq!(p.to_string(), "a[k=x=y].(b|\"c.d\")", "shown as written");
    // The two original bracket forms keep their meaning.
    let q = Path::parse(r#"a[ 1 ]["k=v"]"#).expect("path");
    assert_eq!(q.segs[1], Seg::Index(1));
    assert_eq!(q.segs[2], Seg::Key("k=v".into(), None));
    assert_eq!(
        Path::parse("price(usd)").expect("path").segs,
        [Seg::Key("price(usd)".into(), None)],
        "`(` inside a key is part of it"
    );
}

#[test]
fn reach_records_tests_and_every_union_alternative() {
    let p = Path::parse("event_params[key=page_location].value.(string_value|int_value)")
        .expect("path");
    let r = p.reach(&["scope"]);
    assert_eq!(r.tested, [["scope", "event_params", "key"]]);
    assert_eq!(
        r.ends,
        [
            ["scope", "event_params", "value", "string_value"],
            ["scope", "event_params", "value", "int_value"]
        ]
    );
    assert!(!r.stopped);
    let r = Path::parse("$.a.(x|y)[k.m[0]=1].b").expect("path");
    let r = r.reach(&["scope"]);
    assert_eq!(r.tested, [["a", "x", "k", "m"], ["a", "y", "k", "m"]]);
    assert_eq!(r.ends, [["a", "x", "b"], ["a", "y", "b"]]);
    // Seven two-way unions would be 128 branches: the prefix of 64 is kept whole instead.
    let many = Path::parse("(a|b).(a|b).(a|b).(a|b).(a|b).(a|b).(a|b).z").expect("path");
    let r = many.reach(&[]);
    assert_eq!((r.ends.len(), r.ends[0].len(), r.stopped), (64, 6, true));
    let r = Path::parse("/a/0/b").expect("pointer");
    assert_eq!(r.reach(&[]).ends, [["a"]]);
}

#[test]
fn tests_and_unions_read_projected_documents_and_keep_ordinary_routes() {
    let paths = [
        "event_params[key=page_location].value.(string_value|int_value|double_value|float_value)",
        "event_params[value.int_value=3].key",
        "ids[type~=^(email|mail)$].value",
        "u.(a|b).c",
        "nums[n=3].v",
    ];
    let mut need = Need::default();
    let parsed: Vec<Path> = paths
        .iter()
        .map(|p| Path::parse(p).expect("path"))
        .collect();
    for p in &parsed {
        p.need_value(&mut need, &[]);
    }
    need.keep(&["u", "d"]);
    need.number();
    let full = decode(Some(ROW.as_bytes())).expect("json");
    let projected = need::decode(Some(ROW.as_bytes()), &need).expect("json");
    for mut p in parsed {
        let want = p.resolve(&full, full.root()).map(|n| full.tree(n));
        assert!(want.is_some(), "{p} reads something");
        let got = p
            .resolve(&projected, projected.root())
            .map(|n| projected.tree(n));
        assert_eq!(got, want, "{p} unhinted");
        p.hint(&need, &[]);
        assert!(p.route.is_none(), "{p}: walked");
        let got = p
            .resolve(&projected, projected.root())
            .map(|n| projected.tree(n));
        assert_eq!(got, want, "{p} hinted");
    }
    // Keys after a test are hinted (all elements share a need); after a union they are not.
    let mut p = Path::parse("event_params[key=price].value").expect("path");
    p.hint(&need, &[]);
    assert!(matches!(
        &p.segs[..],
        [Seg::Key(_, Some(_)), Seg::Select(_), Seg::Key(_, Some(_))]
    ));
    let mut p = Path::parse("u.(a|b).c").expect("path");
    p.hint(&need, &[]);
    assert!(matches!(
        &p.segs[..],
        [Seg::Key(_, Some(_)), Seg::Union(_), Seg::Key(_, None)]
    ));
    let mut plain = Path::parse("u.d").expect("path");
    plain.hint(&need, &[]);
    assert!(plain.route.is_some(), "ordinary paths keep their route");
}

/// Small JSON values over the keys and texts the path strategy uses.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..4).prop_map(Value::from),
        Just(Value::from(3.0)),
        prop::sample::select(vec!["x", "k", "3", "true", "", "a]"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["a", "k", "x", "b", "value"]).prop_map(String::from),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text either parses or is an error; whatever parses resolves on any message without
    /// panicking, and gives the same answer on the projection its own need makes.
    #[test]
    fn parsing_any_text_and_resolving_what_parses_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[a-kx$.\\[\\]()|=^~!<>*\" 0-9-]{0,24}",
        ],
        root in json(),
    ) {
        let Ok(mut p) = Path::parse(&text) else { return Ok(()) };
        let v = serde_json::json!({ "a": root.clone(), "k": root });
        let bytes = serde_json::to_vec(&v).expect("json");
        let full = decode(Some(bytes.as_slice())).expect("object");
        let want = p.resolve(&full, full.root()).map(|n| full.tree(n));
        let mut need = Need::default();
        p.need_value(&mut need, &[]);
        need.number();
        p.hint(&need, &[]);
        let projected = need::decode(Some(bytes.as_slice()), &need).expect("object");
        let got = p.resolve(&projected, projected.root()).map(|n| projected.tree(n));
        prop_assert_eq!(got, want, "{}", text);
        if let Some(arr) = full.get(full.root(), "a") {
            let _ = p.resolve(&full, arr);
        }
    }
}
