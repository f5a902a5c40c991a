//! `mcm-bridge validate`: load and check a configuration (and its mapping rules) without touching
//! Kafka or MCM. Prints a short summary and `ok` (exit 0), or every error with its YAML path
//! (exit 2). Never prints the API key.

use crate::config::Config;
use crate::mapping::MappingPlan;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Exit code for an invalid configuration (DESIGN.md contract 7).
pub const EXIT_INVALID_CONFIG: u8 = 2;

pub fn run(path: &Path) -> ExitCode {
    match super::load_config_and_plan(path) {
        Ok((cfg, plan)) => {
            print!("{}", summary(path, &cfg, &plan));
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

/// The human summary of a valid configuration.
pub fn summary(path: &Path, cfg: &Config, plan: &MappingPlan) -> String {
    let mut s = String::new();
    let k = &cfg.kafka;
    let m = &cfg.mcm;
    let d = &cfg.delivery;
    let _ = writeln!(s, "config:   {}", path.display());
    let _ = writeln!(
        s,
        "kafka:    {} group {} ({})",
        k.bootstrap_servers,
        k.group_id,
        k.group_protocol.describe()
    );
    let _ = writeln!(s, "security: {}", k.security.describe());
    let _ = writeln!(
        s,
        "mcm:      {} (api key from {}, timeout {}, max_in_flight {})",
        m.events_url(),
        m.api_key_source,
        humantime::format_duration(m.timeout),
        m.max_in_flight
    );
    let _ = writeln!(
        s,
        "delivery: {} ordering, permanent failures → {} ({}), drain {}, final commit {}",
        d.ordering.as_str(),
        d.on_permanent_failure.as_str(),
        d.dlq_topic,
        humantime::format_duration(d.drain_timeout),
        humantime::format_duration(d.final_commit_timeout)
    );
    let mut schema_warnings = Vec::new();
    for block in plan.blocks() {
        let format = match block.local_schema() {
            Some(local) => {
                schema_warnings.extend(unschema_paths(&block.name, block, local));
                format!(", {}", local.describe())
            }
            None if block.format.is_schemad() => format!(", {}", block.format.as_str()),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "topic:    {} ({} rule(s){format}{})",
            block.name,
            block.rule_count(),
            block
                .on_failure()
                .map(|p| format!(", on failure {}", p.as_str()))
                .unwrap_or_default()
        );
    }
    if !cfg.env_overrides.is_empty() {
        let _ = writeln!(s, "env:      overrides {}", cfg.env_overrides.join(", "));
    }
    for w in cfg.warnings.iter().chain(&schema_warnings) {
        let _ = writeln!(s, "warning:  {w}");
    }
    s
}

/// The paths `block`'s rules read that its own schema file cannot hold — a warning, not an
/// error, as `doctor`'s registry check says it: a rule may read an alternative on purpose
/// (`first:` over an old and a new field).
fn unschema_paths(
    name: &str,
    block: &crate::mapping::TopicMapping,
    local: &crate::schema::file::LocalSchema,
) -> Option<String> {
    let missing: Vec<String> = block
        .need()
        .paths()
        .into_iter()
        .filter(|p| !local.has_path(p))
        .map(|p| p.join("."))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "topic {name}: the rules read {} {} has no field for: {}",
            if missing.len() == 1 {
                "a path"
            } else {
                "paths"
            },
            local.file(),
            missing.join(", ")
        )
    })
}
