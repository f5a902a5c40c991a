//! Runs every shipped example mapping against its case file, exactly as `mcm-bridge test` does,
//! and checks that the runner really fails on a wrong expectation.

use mcm_bridge::config;
use mcm_bridge::mapping::{self, cases, MappingPlan};
use mcm_bridge::mcm::validate::ValidateOptions;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples")
}

fn plan(config_file: &str) -> MappingPlan {
    let cfg = config::load(&examples().join(config_file))
        .unwrap_or_else(|e| panic!("{config_file}: {e}"));
    let mut errors = Vec::new();
    let plan = mapping::compile(&cfg.topics, &mut errors);
    assert!(errors.is_empty(), "{config_file}: {errors:?}");
    plan
}

fn run_cases(config_file: &str, case_file: &str) -> Vec<cases::CaseResult> {
    let plan = plan(config_file);
    let text = std::fs::read_to_string(examples().join(case_file)).expect("case file readable");
    let mut list = cases::parse(&text).unwrap_or_else(|e| panic!("{case_file}: {e:?}"));
    // As `mcm-bridge test` does: schema files are read relative to the case file.
    for case in &mut list {
        if let Some(name) = &case.schema_file {
            case.schema = Some(mcm_bridge::schema::local::InputSchema::Text(
                std::fs::read_to_string(examples().join(name))
                    .unwrap_or_else(|e| panic!("{case_file}: schema_file {name}: {e}")),
            ));
        }
    }
    list.iter()
        .map(|c| cases::run(&plan, c, &ValidateOptions::now()))
        .collect()
}

fn assert_all_pass(config_file: &str, case_file: &str, min_cases: usize) {
    let results = run_cases(config_file, case_file);
    assert!(
        results.len() >= min_cases,
        "{case_file}: only {} cases",
        results.len()
    );
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {}", r.name, r.diff.join("; ")))
        .collect();
    assert!(failures.is_empty(), "{case_file}:\n{}", failures.join("\n"));
}

#[test]
fn shop_service_example_passes_its_cases() {
    assert_all_pass("mcm-bridge.yaml", "mcm-bridge.cases.yaml", 20);
}

#[test]
fn avro_orders_example_passes_its_cases() {
    assert_all_pass("avro-orders.yaml", "avro-orders.cases.yaml", 3);
}

/// The registry-less example: its cases are encoded with the block's own schema file, in its
/// single-object framing.
#[test]
fn avro_product_views_example_passes_its_cases() {
    assert_all_pass(
        "avro-product-views.yaml",
        "avro-product-views.cases.yaml",
        3,
    );
}

#[test]
fn segment_example_passes_its_cases() {
    assert_all_pass("segment.yaml", "segment.cases.yaml", 16);
}

#[test]
fn ga4_example_passes_its_cases() {
    assert_all_pass("ga4.yaml", "ga4.cases.yaml", 14);
}

#[test]
fn ga4_bigquery_example_passes_its_cases() {
    assert_all_pass("ga4-bigquery.yaml", "ga4-bigquery.cases.yaml", 16);
}

#[test]
fn cdp_export_example_passes_its_cases() {
    assert_all_pass("cdp-export.yaml", "cdp-export.cases.yaml", 13);
}

#[test]
fn case_runner_reports_wrong_expectations_with_a_field_diff() {
    let plan = plan("segment.yaml");
    let text = r#"
- name: wrong amount and reason
  topic: segment.events
  message: {type: track, event: Product Added, messageId: m, timestamp: "2024-05-29T16:26:41Z", userId: u, properties: {product_id: p, price: 12}}
  expect:
    event: {id: m, event_type: ADD_TO_CART, timestamp: 1717000001000, channel_type: SITE, user_id: u, items: [{id: p, price: {currency: USD, amount: 13}}]}
- name: expects an error but gets an event
  topic: segment.events
  message: {type: track, event: Products Searched, messageId: m, timestamp: "2024-05-29T16:26:41Z", userId: u, properties: {query: q}}
  expect: {error: missing_search_query}
- name: unrouted topic
  topic: nowhere
  message: {}
  expect: {filtered: true}
"#;
    let list = cases::parse(text).expect("valid case file");
    let results: Vec<_> = list
        .iter()
        .map(|c| cases::run(&plan, c, &ValidateOptions::now()))
        .collect();
    assert_eq!(
        results[0].diff,
        ["items[0].price.amount: expected 13, got 12.0"]
    );
    assert!(
        results[1].diff[0].starts_with("expected error missing_search_query, got an event"),
        "{:?}",
        results[1].diff
    );
    assert_eq!(
        results[2].diff,
        ["no topic block matches topic \"nowhere\""]
    );
}

#[test]
fn examples_subscribe_to_their_topics() {
    assert_eq!(
        plan("mcm-bridge.yaml").subscriptions(),
        ["shop.events", "shop.orders"]
    );
    assert_eq!(plan("segment.yaml").subscriptions(), ["segment.events"]);
    assert_eq!(plan("ga4.yaml").subscriptions(), ["ga4.events"]);
}

/// Row 3v of `bench/run.sh` maps `produce --shape shop-v2` messages with
/// `bench/bridge-v2.yaml.tmpl`: its placeholders filled in as the script fills them, the template
/// must validate and map one message of each kind as `bench/bridge-v2.cases.yaml` expects (a
/// benchmark of rejections would measure nothing).
#[test]
fn bench_rules_v2_template_maps_its_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let template =
        std::fs::read_to_string(root.join("bench/bridge-v2.yaml.tmpl")).expect("template");
    let mut text = template;
    for (placeholder, value) in [
        ("@BOOTSTRAP@", "127.0.0.1:9092"),
        ("@GROUP@", "bench"),
        ("@BASE_URL@", "http://127.0.0.1:8080"),
        ("@MAX_IN_FLIGHT@", "512"),
        ("@OBSERVE@", "127.0.0.1:9100"),
        ("@HTTP_VERSION@", "auto"),
        ("@TLS@", "# plain http"),
        ("@LOG_LEVEL@", "info"),
        ("@TOPIC@", "bench.v2"),
    ] {
        text = text.replace(placeholder, value);
    }
    let body = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    let unfilled: Vec<&str> = body.filter(|l| l.contains('@')).collect();
    assert!(unfilled.is_empty(), "unfilled placeholders: {unfilled:?}");
    let env = |name: &str| (name == "MCM_API_KEY").then(|| "bench-key".to_string());
    let cfg = config::load_str(&text, root, &env, Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("bench/bridge-v2.yaml.tmpl: {e}"));
    let mut errors = Vec::new();
    let plan = mapping::compile(&cfg.topics, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let cases_text =
        std::fs::read_to_string(root.join("bench/bridge-v2.cases.yaml")).expect("cases");
    let list = cases::parse(&cases_text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(list.len(), 4, "one case per message kind of produce.rs");
    for c in &list {
        let r = cases::run(&plan, c, &ValidateOptions::now());
        assert!(r.passed(), "{}: {}", r.name, r.diff.join("; "));
    }
}
