//! `mcm-bridge run`: the service. Loads and checks the configuration (exit 2 on any error, before
//! touching Kafka), serves `/metrics`, `/healthz`, `/readyz`, runs the pipeline until SIGTERM or
//! SIGINT, then drains, commits and exits 0 — or exits 3 when Kafka refused the login or a right
//! needed to consume (after committing what finished; see `pipeline::coordinator`), or 4 when the
//! final commit did not land in time (see `pipeline::shutdown`).
//!
//! `--dry-run` is shadow mode (`delivery.mode: shadow`); SIGHUP, and with `--watch-config` a
//! changed file, reload the mapping rules live (`pipeline::reload`).

use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use crate::observe::tap::Tap;
use crate::pipeline::coordinator::Exit;
use crate::pipeline::reload::Reloader;
use crate::pipeline::Controls;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exit code when Kafka refused the login or a right needed to consume (READ on the group or a
/// topic). Not 2: a supervisor should restart it (with backoff), since the right may be granted
/// meanwhile; systemd's `RestartPreventExitStatus=2` still restarts it.
pub const EXIT_KAFKA_ACCESS_DENIED: u8 = 3;

/// Exit code when the bridge stopped but its final commit did not land within
/// `delivery.final_commit_timeout` (broker down, group rebalancing): nothing is lost, but the
/// next owner delivers again everything taken since the last stored commit, which the log line
/// `final commit failed: …` counts. Not 0, so that an operator and a supervisor see it.
pub const EXIT_FINAL_COMMIT_FAILED: u8 = 4;

/// How long the runtime waits at exit for blocking tasks still running: a final commit or a
/// consumer close abandoned after its own bound must not hold the process (tokio would wait
/// for them for ever).
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(long, short, default_value = "mcm-bridge.yaml")]
    pub config: PathBuf,
    /// Shadow mode (as `delivery.mode: shadow`): consume under `delivery.shadow_group_id`, map
    /// and validate, count what would be delivered or dead-lettered; never POST to MCM, never
    /// write the DLQ, commit only the shadow group's offsets.
    #[arg(long)]
    pub dry_run: bool,
    /// Reload the mapping rules when the configuration file changes (checked every
    /// `--watch-interval`), as on SIGHUP.
    #[arg(long)]
    pub watch_config: bool,
    /// How often `--watch-config` reads the file.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub watch_interval: Duration,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let (mut config, plan) = match super::load_checked(&args.config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.dry_run {
        config.enter_shadow_mode();
    }
    crate::observe::logging::init(config.observe.log_format, &config.observe.log_level);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new());
        let shutdown = CancellationToken::new();
        let listener = match tokio::net::TcpListener::bind(config.observe.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(listen = %config.observe.listen, error = %e, "cannot bind observe.listen");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %config.observe.listen, "serving /metrics, /healthz, /readyz");
        let server = tokio::spawn(crate::observe::server::serve(
            listener,
            metrics.clone(),
            health.clone(),
            shutdown.clone().cancelled_owned(),
        ));
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                super::shutdown_signal().await;
                tracing::info!("signal received; shutting down");
                shutdown.cancel();
            });
        }
        let tap = match config.observe.tap {
            None => None,
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    let tap = Arc::new(Tap::default());
                    tracing::info!(listen = %addr, "serving /tap (observe.tap)");
                    tokio::spawn(crate::observe::tap_server::serve(
                        l,
                        tap.clone(),
                        shutdown.clone(),
                        shutdown.clone().cancelled_owned(),
                    ));
                    Some(tap)
                }
                Err(e) => {
                    tracing::error!(listen = %addr, error = %e, "cannot bind observe.tap_listen");
                    return ExitCode::FAILURE;
                }
            },
        };
        let (reloader, reloads) =
            Reloader::new(args.config.clone(), &config, &plan, metrics.clone());
        tokio::spawn(reloader.run(
            args.watch_config.then_some(args.watch_interval),
            shutdown.clone(),
        ));
        let result = crate::pipeline::run_with(
            Arc::new(config),
            Arc::new(plan),
            metrics,
            health,
            shutdown.clone(),
            Controls {
                reloads: Some(reloads),
                tap,
            },
        )
        .await;
        shutdown.cancel();
        let _ = server.await;
        match result {
            Ok(Exit::AccessDenied) => ExitCode::from(EXIT_KAFKA_ACCESS_DENIED),
            Ok(Exit::FinalCommitFailed { .. }) => ExitCode::from(EXIT_FINAL_COMMIT_FAILED),
            Ok(Exit::Shutdown | Exit::ConsumerGone) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "pipeline failed to start");
                ExitCode::FAILURE
            }
        }
    });
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    code
}
