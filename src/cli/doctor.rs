//! `mcm-bridge doctor` and `mcm-bridge validate --online`: the offline checks of `validate`,
//! then the online checks of [`crate::doctor`], printed one line (or one JSON object) per check.
//! Exit 0 when every check passed (warnings allowed), 1 when an online check failed, 2 for an
//! invalid configuration (nothing is contacted then).

use crate::doctor::{self, Format};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Configuration file.
    #[arg(long, short, default_value = "mcm-bridge.yaml")]
    pub config: PathBuf,
    #[command(flatten)]
    pub online: OnlineArgs,
}

/// How the online checks run and print.
#[derive(Debug, Clone, clap::Args)]
pub struct OnlineArgs {
    /// `text`: one line per check; `json`: one JSON object per check and line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Bound of each check (e.g. 10s, 1m): a broker or host that does not answer within it fails.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub fn run(path: &Path, args: &OnlineArgs) -> ExitCode {
    let (config, plan) = match super::load_checked(path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.format == Format::Text {
        eprintln!(
            "checking Kafka at {} and MCM at {} (each check times out after {})",
            config.kafka.bootstrap_servers,
            config.mcm.events_url(),
            humantime::format_duration(args.timeout)
        );
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(doctor::report::EXIT_FAILED);
        }
    };
    let mut checks = doctor::offline(path, &config, &plan);
    checks.extend(rt.block_on(doctor::run(&config, &plan, args.timeout)));
    print!("{}", doctor::report::render(&checks, args.format));
    // The runtime may hold a connection attempt the checks stopped waiting for: not waited for.
    rt.shutdown_background();
    ExitCode::from(doctor::report::exit_code(&checks))
}
