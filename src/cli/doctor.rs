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
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// Shortest and longest `--timeout`: below a second a healthy broker or TLS handshake can miss
/// it; above ten minutes a dead one would look like a hang.
const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(600);

/// `--timeout`: a duration between 1s and 10m.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if TIMEOUT_RANGE.contains(&d) {
        Ok(d)
    } else {
        Err("must be between 1s and 10m".into())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_a_duration_between_a_second_and_ten_minutes() {
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("500ms").is_err());
        assert!(parse_timeout("1h").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}
