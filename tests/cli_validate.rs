//! `mcm-bridge validate` as users run it: exit 0 with a summary for the shipped example, exit 2
//! with every planted error and its YAML path for a broken file.

use std::process::Command;

fn validate(path: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["validate", "--config", path])
        .env_remove("MCM_API_KEY")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shipped_examples_validate() {
    for example in [
        "mcm-bridge",
        "segment",
        "ga4",
        "avro-orders",
        "avro-product-views",
    ] {
        let (code, stdout, stderr) = validate(&format!("deploy/examples/{example}.yaml"));
        assert_eq!(code, 0, "{example}: {stderr}");
        assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
        assert!(!stdout.contains("demo-key"), "the API key is never printed");
    }
}

#[test]
fn three_planted_errors_are_all_reported_with_paths() {
    let (code, _, stderr) = validate("tests/data/three-errors.yaml");
    assert_eq!(code, 2, "{stderr}");
    for needle in [
        "mcm.retry.max_backoff: invalid duration \"5 secs\"",
        "delivery.ordering: \"sorted\" is not one of",
        "topics[0].rules[0].fields.timestamp.transform: unknown transform `epoch_secs` (did you mean `epoch_seconds`?)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

#[test]
fn missing_file_is_a_config_error() {
    let (code, _, stderr) = validate("tests/data/does-not-exist.yaml");
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn a_bad_array_test_in_a_path_is_reported_at_its_yaml_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad-test.yaml");
    let config = r#"kafka: {bootstrap_servers: "b:9092", group_id: g}
mcm: {platform_name: acme, platform_id: ACME_TEST, api_key: k}
topics:
  - topic: ga4.rows
    rules:
      - event_type: PAGE_VIEW
        fields:
          timestamp: {path: event_timestamp, transform: epoch_micros}
          channel_type: SITE
          user_id: {path: 'ids[type==email].value'}
          page_id: {path: 'event_params[key=page_location].value.(string_value|int_value)'}
"#;
    std::fs::write(&path, config).expect("written");
    let (code, _, stderr) = validate(path.to_str().expect("utf-8 path"));
    assert_eq!(code, 2, "{stderr}");
    let needle = "topics[0].rules[0].fields.user_id.path: bad path \"ids[type==email].value\": unknown operator `==` in `[type==email]`";
    assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    assert!(
        stderr.contains("1 error(s)"),
        "the valid test path is accepted:\n{stderr}"
    );
}
