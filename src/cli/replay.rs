//! `mcm-bridge replay-dlq`: re-run dead-lettered messages through the current mapping and
//! delivery, keeping the ones that fail again in the DLQ (see [`crate::kafka::replay`]).

use crate::kafka::replay::{replay, ReplayOptions};
use crate::observe::metrics::Metrics;
use crate::pipeline::deliver::Deliverer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Configuration file (its mapping is the one applied).
    #[arg(long, short, default_value = "mcm-bridge.yaml")]
    pub config: PathBuf,
    /// Dead-letter topic to replay (default: delivery.dlq_topic of the config).
    #[arg(long)]
    pub dlq_topic: Option<String>,
    /// Start at this time (RFC 3339, e.g. 2026-11-24T10:00:00Z) instead of where the last replay
    /// stopped.
    #[arg(long)]
    pub since: Option<String>,
    /// Map and validate only: send nothing, append nothing, commit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &ReplayArgs) -> ExitCode {
    let (config, plan) = match super::load_checked(&args.config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    crate::observe::logging::init(config.observe.log_format, &config.observe.log_level);
    let since_ms = match args
        .since
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        None => None,
        Some(Ok(t)) => Some(t.timestamp_millis()),
        Some(Err(e)) => {
            eprintln!("--since: {e} (expected RFC 3339, e.g. 2026-11-24T10:00:00Z)");
            return ExitCode::from(2);
        }
    };
    let opts = ReplayOptions {
        dlq_topic: args
            .dlq_topic
            .clone()
            .unwrap_or_else(|| config.delivery.dlq_topic.clone()),
        since_ms,
        // A shadow configuration never sends: its replay is a dry run too.
        dry_run: args.dry_run || config.is_shadow(),
    };
    if config.is_shadow() && !args.dry_run {
        eprintln!("delivery.mode is shadow: replaying as a dry run (nothing sent or appended)");
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
    rt.block_on(async move {
        let client = match crate::mcm::client::McmClient::new(&config.mcm) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("MCM client: {e}");
                return ExitCode::FAILURE;
            }
        };
        let deliverer = Deliverer::new(client, &config.mcm, Arc::new(Metrics::new()));
        match replay(&config, &plan, &deliverer, &opts).await {
            Ok(r) => {
                let mode = if opts.dry_run { " (dry run)" } else { "" };
                println!("replayed {}{mode}: read {}", opts.dlq_topic, r.read);
                if opts.dry_run {
                    println!("  would deliver   {}", r.would_deliver);
                } else {
                    println!("  delivered       {}", r.delivered);
                }
                println!("  filtered        {}", r.filtered);
                println!("  still failing   {} (kept in the DLQ)", r.still_failing);
                for (reason, n) in &r.reasons {
                    println!("    {n:>6}  {reason}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("replay failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
