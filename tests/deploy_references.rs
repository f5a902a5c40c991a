//! The deployment files must only use what the binary has.
//!
//! Reads `docker-compose.yml`, `deploy/Dockerfile`, `deploy/compose/*.yaml`,
//! `deploy/kubernetes/**/*.yaml`, the Helm chart `deploy/helm/mcm-bridge/**`,
//! `deploy/systemd/*.service`, `docs/deployment.md` and `docs/operations.md`, and extracts
//! every `mcm-bridge <subcommand> --flag …` invocation (container commands and args, also as the
//! chart's templates write them, `ExecStart` lines, and command lines written in comments and
//! docs) and every `MCM_BRIDGE__A__B` environment override. Then:
//!
//! - each subcommand must exist and each flag must appear in `mcm-bridge <subcommand> --help`;
//! - each override must name a real config key: `deploy/examples/mcm-bridge.yaml` loaded with it
//!   set must have no error at that path (and must load cleanly when the file gives the value);
//! - the compose and Kubernetes configs, and the chart's default `config:`, must pass
//!   `mcm-bridge validate` (the Kubernetes ones both as the Deployment runs them and with the
//!   StatefulSet's group instance id) and keep the example's mapping rules (`topics:`) unchanged.
//!
//! Engine-free checks of the same files (schemas, linters): `scripts/check-deploy.sh`.

use mcm_bridge::config::load_str;
use regex::Regex;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mcm-bridge");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Files under `dir` (relative to the repo) whose name ends with one of `exts`, sorted.
fn files(dir: &str, exts: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("read_dir {dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| exts.iter().any(|x| n.ends_with(x)))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// The Kubernetes manifests: both variants, the shared base and the examples.
const KUBERNETES_DIRS: [&str; 4] = [
    "deploy/kubernetes",
    "deploy/kubernetes/base",
    "deploy/kubernetes/statefulset",
    "deploy/kubernetes/examples",
];

fn kubernetes_files() -> Vec<String> {
    KUBERNETES_DIRS
        .iter()
        .flat_map(|d| files(d, &[".yaml", ".yml"]))
        .collect()
}

/// The Helm chart: its plain YAML (Chart.yaml, values.yaml, ci/) and its templates, which are
/// Go templates (read as text only).
const CHART: &str = "deploy/helm/mcm-bridge";

fn chart_templates() -> Vec<String> {
    files(&format!("{CHART}/templates"), &[".yaml", ".tpl", ".txt"])
}

fn chart_files() -> Vec<String> {
    let mut all = files(CHART, &[".yaml"]);
    all.extend(files(&format!("{CHART}/ci"), &[".yaml"]));
    all.extend(chart_templates());
    all
}

/// Every file this test reads.
fn deploy_files() -> Vec<String> {
    let mut all = vec![
        "docker-compose.yml".to_string(),
        "deploy/Dockerfile".to_string(),
        "docs/deployment.md".to_string(),
        "docs/operations.md".to_string(),
    ];
    all.extend(files("deploy/compose", &[".yaml", ".yml"]));
    all.extend(kubernetes_files());
    all.extend(chart_files());
    all.extend(files("deploy/systemd", &[".service"]));
    all
}

/// One use of the binary: where it was found, the subcommand, the flags.
#[derive(Debug, Clone)]
struct Invocation {
    source: String,
    subcommand: String,
    flags: Vec<String>,
}

fn flag_of(token: &str) -> Option<String> {
    let re = Regex::new(r"^(--?[A-Za-z][A-Za-z0-9-]*)").expect("static regex");
    let t = token.trim_start_matches(['[', '(', '"', '\'']);
    if t == "--" || t == "-" {
        return None;
    }
    re.captures(t).map(|c| c[1].to_string())
}

/// An argv after the `mcm-bridge` program name.
fn from_argv(source: String, argv: &[String]) -> Option<Invocation> {
    let subcommand = argv.first()?.clone();
    let flags = argv[1..].iter().filter_map(|a| flag_of(a)).collect();
    Some(Invocation {
        source,
        subcommand,
        flags,
    })
}

/// Command lines written as text (comments, docs, ExecStart): `mcm-bridge <sub>` followed directly
/// by a flag, up to the end of the shell segment. Prose such as "mcm-bridge on Kubernetes" is not
/// followed by a flag and is skipped; so is a bare `mcm-bridge validate`, and `mcm-bridge` as the
/// value of another program's option (`kubectl -n mcm-bridge apply -k …`).
fn from_text(file: &str, text: &str) -> Vec<Invocation> {
    let start =
        Regex::new(r#"(?:^|(\S*)[ \t]+|[`'"(/=])mcm-bridge[ \t]+([a-z][a-z0-9-]*)[ \t]+(-[^\n]*)"#)
            .expect("static regex");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for segment in line.split("&&").flat_map(|s| s.split(['|', ';'])) {
            if let Some(c) = start.captures(segment) {
                if c.get(1).is_some_and(|prev| prev.as_str().starts_with('-')) {
                    continue;
                }
                let rest = c[3].split(['`', '#']).next().unwrap_or("");
                out.push(Invocation {
                    source: format!("{file}:{}", n + 1),
                    subcommand: c[2].to_string(),
                    flags: rest.split_whitespace().filter_map(flag_of).collect(),
                });
            }
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn is_bridge_image(v: &Value) -> bool {
    v.get("image")
        .and_then(Value::as_str)
        .is_some_and(|i| i.starts_with("mcm-bridge"))
        || v.get("build")
            .and_then(|b| b.get("dockerfile"))
            .and_then(Value::as_str)
            == Some("deploy/Dockerfile")
}

/// Services of docker-compose.yml that run the bridge image: their `command` is its argv.
fn from_compose() -> Vec<Invocation> {
    let mut doc: Value =
        serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("compose YAML");
    // The bridge services share their image and build through `<<: *bridge-image`.
    doc.apply_merge().expect("compose merge keys");
    let mut out = Vec::new();
    let Some(Value::Mapping(services)) = doc.get("services") else {
        panic!("docker-compose.yml has no services");
    };
    for (name, svc) in services {
        let name = name.as_str().unwrap_or_default();
        if !is_bridge_image(svc) {
            continue;
        }
        let argv = svc.get("command").map(strings).unwrap_or_default();
        out.extend(from_argv(
            format!("docker-compose.yml service {name}"),
            &argv,
        ));
    }
    out
}

/// `ENTRYPOINT ["mcm-bridge"]` + `CMD [...]` of the Dockerfile.
fn from_dockerfile() -> Vec<Invocation> {
    let text = read("deploy/Dockerfile");
    let json_line = |kw: &str| -> Option<Vec<String>> {
        let line = text.lines().rev().find(|l| l.starts_with(kw))?;
        serde_json::from_str(line[kw.len()..].trim()).ok()
    };
    let entry = json_line("ENTRYPOINT").expect("Dockerfile ENTRYPOINT as a JSON array");
    assert_eq!(entry, ["mcm-bridge"], "Dockerfile ENTRYPOINT");
    let cmd = json_line("CMD").expect("Dockerfile CMD as a JSON array");
    from_argv("deploy/Dockerfile CMD".into(), &cmd)
        .into_iter()
        .collect()
}

/// Containers of Kubernetes workloads that run the bridge image: `command` + `args`.
fn from_kubernetes() -> Vec<Invocation> {
    let mut out = Vec::new();
    for file in kubernetes_files() {
        let text = read(&file);
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let doc = <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let containers = doc
                .get("spec")
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("spec"))
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for c in containers.iter().filter(|c| is_bridge_image(c)) {
                let mut argv = c.get("command").map(strings).unwrap_or_default();
                if argv.first().is_some_and(|p| p.ends_with("mcm-bridge")) {
                    argv.remove(0);
                }
                argv.extend(c.get("args").map(strings).unwrap_or_default());
                let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
                out.extend(from_argv(format!("{file} container {name}"), &argv));
            }
        }
    }
    out
}

/// The container args of the chart's templates, written as a YAML flow sequence of literals on
/// one line (`args: ["run", "--config", "/etc/…"]`), the only YAML a template line can be read as.
fn from_helm() -> Vec<Invocation> {
    let mut out = Vec::new();
    for file in chart_templates() {
        for (n, line) in read(&file).lines().enumerate() {
            let Some(seq) = line.trim().strip_prefix("args:") else {
                continue;
            };
            assert!(
                !seq.contains("{{"),
                "{file}:{}: keep the container args literal, so this test can read them",
                n + 1
            );
            let argv: Value = serde_yaml_ng::from_str(seq)
                .unwrap_or_else(|e| panic!("{file}:{}: args: {e}", n + 1));
            out.extend(from_argv(format!("{file}:{}", n + 1), &strings(&argv)));
        }
    }
    out
}

fn all_invocations() -> Vec<Invocation> {
    let mut all = from_compose();
    all.extend(from_dockerfile());
    all.extend(from_kubernetes());
    all.extend(from_helm());
    for file in deploy_files() {
        all.extend(from_text(&file, &read(&file)));
    }
    all
}

/// `mcm-bridge <sub> --help`, or None when the subcommand does not exist.
fn help(sub: &str) -> Option<String> {
    let out = Command::new(BIN)
        .args([sub, "--help"])
        .output()
        .expect("run mcm-bridge");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn help_has_flag(help: &str, flag: &str) -> bool {
    let re = Regex::new(&format!(r"(^|[\s,\[]){}($|[\s,=<\]])", regex::escape(flag)))
        .expect("flag regex");
    help.lines().any(|l| re.is_match(l))
}

#[test]
fn extraction_finds_the_invocations_we_know_are_there() {
    let all = all_invocations();
    let has = |sub: &str, src: &str, flag: &str| {
        all.iter().any(|i| {
            i.subcommand == sub && i.source.starts_with(src) && i.flags.iter().any(|f| f == flag)
        })
    };
    assert!(has("run", "deploy/Dockerfile", "--config"), "{all:#?}");
    assert!(
        has(
            "generate",
            "docker-compose.yml service generator",
            "--orders-topic"
        ),
        "{all:#?}"
    );
    assert!(
        has(
            "sandbox",
            "docker-compose.yml service sandbox",
            "--platform-id"
        ),
        "{all:#?}"
    );
    assert!(
        has("run", "deploy/kubernetes/deployment.yaml", "--config"),
        "{all:#?}"
    );
    assert!(
        has(
            "run",
            "deploy/kubernetes/statefulset/statefulset.yaml",
            "--config"
        ),
        "{all:#?}"
    );
    assert!(
        has(
            "run",
            "deploy/helm/mcm-bridge/templates/_helpers.tpl",
            "--config"
        ),
        "{all:#?}"
    );
    assert!(
        has("replay-dlq", "docs/deployment.md", "--dlq-topic"),
        "{all:#?}"
    );
    assert!(
        has("run", "deploy/systemd/mcm-bridge.service", "--config"),
        "{all:#?}"
    );
    // Prose is not an invocation.
    assert!(from_text("x", "# mcm-bridge on Kubernetes: kubectl apply -k dir").is_empty());
    assert!(from_text("x", "kubectl -n mcm-bridge apply -k dir").is_empty());
    let text = "mcm-bridge validate -c a.yaml && mcm-bridge test -c a.yaml cases.yaml";
    let found = from_text("x", text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[1].subcommand, "test");
    assert_eq!(found[1].flags, ["-c"]);
    // The flag matcher knows long and short forms and rejects near misses.
    let run = help("run").expect("`mcm-bridge run --help`");
    assert!(help_has_flag(&run, "--config") && help_has_flag(&run, "-c"));
    assert!(!help_has_flag(&run, "--confi") && !help_has_flag(&run, "--configs"));
    assert!(help("no-such-subcommand").is_none());
}

#[test]
fn deploy_files_use_only_subcommands_and_flags_the_binary_has() {
    let mut by_sub: BTreeMap<String, Vec<Invocation>> = BTreeMap::new();
    for inv in all_invocations() {
        by_sub.entry(inv.subcommand.clone()).or_default().push(inv);
    }
    let mut problems = Vec::new();
    for (sub, uses) in &by_sub {
        let Some(help) = help(sub) else {
            let sources: BTreeSet<&str> = uses.iter().map(|u| u.source.as_str()).collect();
            problems.push(format!(
                "`mcm-bridge {sub}` does not exist in the binary (used in {sources:?})"
            ));
            continue;
        };
        for inv in uses {
            for flag in &inv.flags {
                if !help_has_flag(&help, flag) {
                    problems.push(format!(
                        "{}: `mcm-bridge {sub} {flag}`: no such flag in `mcm-bridge {sub} --help`",
                        inv.source
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "deployment files reference what the binary lacks:\n  {}",
        problems.join("\n  ")
    );
}

/// `MCM_BRIDGE__…` names, with the value the file gives when it is an assignment we can read
/// (`NAME: value`, `NAME=value`, or a Kubernetes `name:` / `value:` pair).
fn env_overrides() -> BTreeMap<String, (BTreeSet<String>, Option<String>)> {
    let name_re = Regex::new(r"MCM_BRIDGE__[A-Z0-9_]*[A-Z0-9]").expect("static regex");
    let assign_re =
        Regex::new(r"(MCM_BRIDGE__[A-Z0-9_]*[A-Z0-9])\s*[:=]\s*([^\s#]+)").expect("static regex");
    let mut out: BTreeMap<String, (BTreeSet<String>, Option<String>)> = BTreeMap::new();
    for file in deploy_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            for m in name_re.find_iter(line) {
                let entry = out.entry(m.as_str().to_string()).or_default();
                entry.0.insert(format!("{file}:{}", n + 1));
                let value = if line.trim_start().starts_with("- name:") {
                    lines
                        .get(n + 1)
                        .and_then(|l| l.trim().strip_prefix("value:"))
                        .map(|v| v.trim().to_string())
                } else {
                    assign_re
                        .captures(line)
                        .filter(|c| &c[1] == m.as_str())
                        .map(|c| c[2].to_string())
                };
                if let Some(v) = value.and_then(|v| resolve(&v)) {
                    entry.1.get_or_insert(v);
                }
            }
        }
    }
    out
}

/// Turns a value as written in a deploy file into one the config would see: compose's
/// `${VAR:-default}` → default, Kubernetes' `$(POD_NAME)` → a pod name. Placeholders (`<…>`),
/// Helm template actions (`{{ … }}`) and anything else unresolvable give None.
fn resolve(raw: &str) -> Option<String> {
    let v = raw.trim_matches(['"', '\'']);
    let compose = Regex::new(r"^\$\{[A-Z0-9_]+:-([^}]*)\}$").expect("static regex");
    if let Some(c) = compose.captures(v) {
        return Some(c[1].to_string());
    }
    if v == "$(POD_NAME)" {
        return Some("mcm-bridge-7c9d8f6b5-x2kqp".into());
    }
    (!v.contains(['$', '<', '>', '…']) && !v.contains("{{")).then(|| v.to_string())
}

fn example_env(name: &str) -> Option<String> {
    (name == "MCM_API_KEY").then(|| "test-key".to_string())
}

#[test]
fn env_overrides_in_deploy_files_name_real_config_keys() {
    let overrides = env_overrides();
    for name in [
        "MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID",
        "MCM_BRIDGE__MCM__API_KEY_FILE",
    ] {
        assert!(
            overrides.contains_key(name),
            "extraction found {overrides:?}"
        );
    }
    let (sources, _) = &overrides["MCM_BRIDGE__MCM__API_KEY_FILE"];
    assert!(
        sources.iter().any(|s| s.starts_with(CHART)),
        "the chart's {sources:?}"
    );
    let example = read("deploy/examples/mcm-bridge.yaml");
    let base = root().join("deploy/examples");
    // The mechanism: an unknown key under a section is reported at its path.
    let typo = [(
        "MCM_BRIDGE__KAFKA__GROUP_INSTANCE".to_string(),
        "x".to_string(),
    )];
    let errors = load_str(&example, &base, &example_env, typo).expect_err("unknown key");
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.path == "kafka.group_instance" && e.message.contains("unknown key")),
        "{errors}"
    );
    let mut problems = Vec::new();
    for (name, (sources, value)) in &overrides {
        let path = name["MCM_BRIDGE__".len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        // Without a readable value, any scalar shows whether the key is known.
        let v = value.clone().unwrap_or_else(|| "1".into());
        let result = load_str(&example, &base, &example_env, [(name.clone(), v.clone())]);
        match result {
            Ok(_) => {}
            Err(errors) => {
                for e in &errors.0 {
                    let at_path = e.path == path || path.starts_with(&format!("{}.", e.path));
                    if at_path && (value.is_some() || e.message.contains("unknown key")) {
                        problems.push(format!(
                            "{name}={v} ({sources:?}): {}: {}",
                            e.path, e.message
                        ));
                    } else if value.is_some() {
                        problems.push(format!(
                            "{name}={v} ({sources:?}) breaks the example config: {}: {}",
                            e.path, e.message
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "environment overrides that are not config keys:\n  {}",
        problems.join("\n  ")
    );
}

fn topics_of(text: &str, what: &str) -> Value {
    let v: Value = serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    v.get("topics")
        .cloned()
        .unwrap_or_else(|| panic!("{what} has no topics"))
}

fn validate(config: &Path, envs: &[(&str, &str)]) {
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(config)
        .env_remove("MCM_API_KEY")
        .envs(envs.iter().copied())
        .output()
        .expect("run mcm-bridge validate");
    assert!(
        out.status.success(),
        "mcm-bridge validate {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The config that kustomize generates the Kubernetes ConfigMap from.
fn kubernetes_config() -> String {
    read("deploy/kubernetes/base/mcm-bridge.yaml")
}

#[test]
fn compose_and_kubernetes_configs_validate_and_keep_the_example_mappings() {
    let example = topics_of(&read("deploy/examples/mcm-bridge.yaml"), "example");

    let compose = read("deploy/compose/mcm-bridge.yaml");
    assert_eq!(
        topics_of(&compose, "deploy/compose/mcm-bridge.yaml"),
        example,
        "deploy/compose/mcm-bridge.yaml topics differ from deploy/examples/mcm-bridge.yaml"
    );
    validate(
        &root().join("deploy/compose/mcm-bridge.yaml"),
        &[("MCM_API_KEY", "demo-key")],
    );

    let k8s = kubernetes_config();
    assert_eq!(
        topics_of(&k8s, "ConfigMap"),
        example,
        "deploy/kubernetes/base/mcm-bridge.yaml topics differ from deploy/examples/mcm-bridge.yaml"
    );
    // The Secret is mounted at api_key_file in the pod; here a temp file stands in for it.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("mcm-bridge.yaml");
    let key = dir.path().join("api-key");
    std::fs::write(&cfg, k8s).expect("write config");
    std::fs::write(&key, "demo-key\n").expect("write key");
    let key = key.to_string_lossy().into_owned();
    // As the Deployment runs it, and as the StatefulSet does (static membership).
    validate(&cfg, &[("MCM_BRIDGE__MCM__API_KEY_FILE", key.as_str())]);
    validate(
        &cfg,
        &[
            ("MCM_BRIDGE__MCM__API_KEY_FILE", key.as_str()),
            ("MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID", "mcm-bridge-3"),
        ],
    );
}

/// The chart's default `config:` (values.yaml) is a config the bridge accepts, as the chart runs
/// it: the key file comes from the environment (MCM_BRIDGE__MCM__API_KEY_FILE, pointing into the
/// mounted Secret), and the StatefulSet adds the group instance id. Its mapping rules are the
/// example's. (That it equals the kustomize config: scripts/check-deploy.sh.)
#[test]
fn chart_default_config_validates_and_keeps_the_example_mappings() {
    let values: Value =
        serde_yaml_ng::from_str(&read(&format!("{CHART}/values.yaml"))).expect("values.yaml");
    let config = values.get("config").expect("values.yaml has a config:");
    let text = serde_yaml_ng::to_string(config).expect("config as YAML");
    assert_eq!(
        topics_of(&text, "values.yaml config"),
        topics_of(&read("deploy/examples/mcm-bridge.yaml"), "example"),
        "{CHART}/values.yaml config.topics differ from deploy/examples/mcm-bridge.yaml"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("mcm-bridge.yaml");
    let key = dir.path().join("api-key");
    std::fs::write(&cfg, text).expect("write config");
    std::fs::write(&key, "demo-key\n").expect("write key");
    let key = key.to_string_lossy().into_owned();
    validate(&cfg, &[("MCM_BRIDGE__MCM__API_KEY_FILE", key.as_str())]);
    validate(
        &cfg,
        &[
            ("MCM_BRIDGE__MCM__API_KEY_FILE", key.as_str()),
            ("MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID", "mcm-bridge-3"),
        ],
    );
}
