//! Implementations of the subcommands; `main.rs` only dispatches here.

pub mod demo;
pub mod dev_broker;
pub mod doctor;
pub mod generate;
pub mod map;
pub mod replay;
pub mod run;
pub mod tap;
pub mod test;
pub mod validate;

use crate::config::decode::ConfigErrors;
use crate::config::Config;
use crate::mapping::MappingPlan;
use std::path::Path;
use std::process::ExitCode;

/// Loads the configuration and compiles its mapping rules, reporting every error of both at once.
pub fn load_config_and_plan(path: &Path) -> Result<(Config, MappingPlan), ConfigErrors> {
    crate::config::load_with(path, crate::mapping::compile)
}

/// [`load_config_and_plan`] for commands: prints the errors and yields exit code 2 on failure.
pub fn load_checked(path: &Path) -> Result<(Config, MappingPlan), ExitCode> {
    load_config_and_plan(path).map_err(|errors| {
        eprintln!("{}: {} error(s)", path.display(), errors.0.len());
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        ExitCode::from(validate::EXIT_INVALID_CONFIG)
    })
}

/// The schema registered under `subject` at `version` in `cfg`'s registry, for `map` and
/// `test` input; `Err` says why not in a sentence.
pub fn registered_schema(
    cfg: &Config,
    subject: &str,
    version: &str,
) -> Result<crate::schema::local::InputSchema, String> {
    let sr = cfg
        .schema_registry
        .as_ref()
        .ok_or("the config has no `schema_registry` section to fetch it from")?;
    let client = crate::schema::RegistryClient::new(sr).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    match rt.block_on(client.version(subject, version)) {
        Ok(Some((id, known))) => Ok(crate::schema::local::InputSchema::Registered { id, known }),
        Ok(None) => Err(format!("the registry has no version {version} of it")),
        Err(e) => Err(e.to_string()),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (Kubernetes, systemd, docker stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler could be installed: never resolve rather than stop at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
