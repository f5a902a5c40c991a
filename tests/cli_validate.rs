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
    for example in ["mcm-bridge", "segment", "ga4"] {
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
