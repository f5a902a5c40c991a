//! `mcm-bridge sandbox`: the command-line front of the sandbox.
//!
//! Binds the listen address (port 0 works), prints exactly one start-up line with the real
//! address (`http://` or `https://`, and the CA file a generated certificate is signed by) so
//! scripts can wait for it, and serves on a multi-threaded runtime until SIGINT or SIGTERM. The
//! API key may come from `MCM_API_KEY` so that it does not show in `ps`. TLS comes from PEM files
//! (`--tls-cert`, `--tls-key`) or is generated (`--tls-self-signed DIR`).

use super::config::{Faults, SandboxConfig};
use super::tls::{SelfSigned, TlsIdentity};
use super::SandboxError;
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `mcm-bridge sandbox`. (No `Debug`: it would print the API key.)
#[derive(Args, Clone)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port (printed at start-up).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The platform id the sandbox accepts; any other answers 404.
    #[arg(long, default_value = "DEMO_TEST")]
    pub platform_id: String,
    /// The accepted X-API-Key value (prefer the environment variable: command lines are public).
    #[arg(long, env = "MCM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Write every accepted event as one JSON line to this file (truncated at start-up).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Probability of answering 500.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fail_rate: f64,
    /// Probability of answering 429.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub throttle_rate: f64,
    /// Delay added to every response, e.g. 50ms.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Extra uniform random delay in [0, jitter] per response.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency_jitter: Duration,
    /// Start an outage after this many accepted requests.
    #[arg(long, requires = "outage_for")]
    pub outage_after: Option<u64>,
    /// How long the outage answers 503, e.g. 30s.
    #[arg(long, requires = "outage_after", value_parser = humantime::parse_duration)]
    pub outage_for: Option<Duration>,
    /// Seconds to send in Retry-After on 429 answers.
    #[arg(long)]
    pub retry_after: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a generated CA and a certificate for 127.0.0.1 and localhost; writes
    /// DIR/ca.pem (point mcm.tls.ca_file at it), DIR/server.pem and DIR/server.key.
    #[arg(long, value_name = "DIR")]
    pub tls_self_signed: Option<PathBuf>,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (default 200), e.g. to stand in
    /// for a front end that allows few streams.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub h2_max_streams: Option<u32>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

impl SandboxArgs {
    /// The library configuration these arguments describe.
    pub fn to_config(&self) -> SandboxConfig {
        SandboxConfig {
            platform_id: self.platform_id.clone(),
            api_key: self.api_key.clone(),
            record: self.record.clone(),
            faults: Faults {
                fail_rate: self.fail_rate,
                throttle_rate: self.throttle_rate,
                latency: self.latency,
                latency_jitter: self.latency_jitter,
                outage_after: self.outage_after,
                outage_for: self.outage_for.unwrap_or_default(),
                retry_after: self.retry_after,
            },
            tls: None,
            h2_max_streams: self.h2_max_streams,
        }
    }

    /// The TLS identity the flags ask for (read, or generated and written), and the CA file
    /// clients should trust when it was generated. `None`: plain HTTP.
    pub fn tls(&self) -> Result<Option<(TlsIdentity, Option<PathBuf>)>, SandboxError> {
        if let Some(dir) = &self.tls_self_signed {
            let generated = SelfSigned::generate()?;
            let files = generated.write_to(dir)?;
            return Ok(Some((generated.identity, Some(files.ca))));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((TlsIdentity::from_pem_files(cert, key)?, None))),
            // clap requires both or neither.
            _ => Ok(None),
        }
    }
}

/// Runs the sandbox until SIGINT/SIGTERM. Exit codes: 0 clean stop, 1 runtime failure, 2 invalid
/// settings (the project's convention for configuration errors).
pub fn run(args: SandboxArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandbox: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (SandboxError::Faults(_) | SandboxError::Record(_) | SandboxError::Tls(_))) => {
            eprintln!("sandbox: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: SandboxArgs) -> Result<(), SandboxError> {
    let mut cfg = args.to_config();
    // Check before binding, so a bad flag never leaves a half-started server.
    cfg.faults.check()?;
    let tls = args.tls()?;
    let ca_note = match &tls {
        Some((_, Some(ca))) => format!(", CA {}", ca.display()),
        _ => String::new(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    cfg.tls = tls.map(|(identity, _)| Arc::new(identity));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: args.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: args.listen.to_string(),
        source,
    })?;
    let platform = cfg.platform_id.clone();
    let serving = super::serve(listener, cfg, crate::cli::shutdown_signal());
    // Printed after the listener is bound (connections queue in the backlog until `serve` polls
    // it), so a script that waits for this line can connect at once.
    println!("sandbox listening on {scheme}://{addr} (platform {platform}{ca_note})");
    // stdout may be a pipe; a script is waiting for this line now, not at exit.
    let _ = std::io::stdout().flush();
    serving.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn flags_build_the_fault_knobs() {
        let cli = Cli::try_parse_from([
            "x",
            "--api-key",
            "k",
            "--fail-rate",
            "0.2",
            "--latency",
            "50ms",
            "--outage-after",
            "10",
            "--outage-for",
            "30s",
            "--retry-after",
            "2",
        ])
        .expect("valid flags");
        let cfg = cli.args.to_config();
        assert_eq!(cfg.platform_id, "DEMO_TEST");
        assert_eq!(cfg.faults.fail_rate, 0.2);
        assert_eq!(cfg.faults.latency, Duration::from_millis(50));
        assert_eq!(cfg.faults.outage_after, Some(10));
        assert_eq!(cfg.faults.outage_for, Duration::from_secs(30));
        assert_eq!(cfg.faults.retry_after, Some(2));
    }

    #[test]
    fn tls_flags_come_in_pairs_and_exclude_the_generated_certificate() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["x", "--api-key", "k"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        assert!(parse(&["--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["--tls-key", "k.pem"]).is_err());
        assert!(parse(&[
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--tls-self-signed",
            "d"
        ])
        .is_err());
        assert!(parse(&["--h2-max-streams", "0"]).is_err());
        let cli = parse(&["--tls-self-signed", "d", "--h2-max-streams", "4"]).expect("valid");
        assert_eq!(cli.args.to_config().h2_max_streams, Some(4));
        assert_eq!(cli.args.tls_self_signed, Some(PathBuf::from("d")));
    }

    #[test]
    fn generated_certificate_is_written_with_its_ca() {
        let dir = tempfile::tempdir().expect("tmp");
        let cli = Cli::try_parse_from([
            "x",
            "--api-key",
            "k",
            "--tls-self-signed",
            &dir.path().display().to_string(),
        ])
        .expect("valid");
        let (identity, ca) = cli.args.tls().expect("generated").expect("tls on");
        assert_eq!(ca, Some(dir.path().join("ca.pem")));
        assert_eq!(identity.cert_chain.len(), 1);
        // And the written pair serves as --tls-cert/--tls-key.
        let cli = Cli::try_parse_from([
            "x",
            "--api-key",
            "k",
            "--tls-cert",
            &dir.path().join("server.pem").display().to_string(),
            "--tls-key",
            &dir.path().join("server.key").display().to_string(),
        ])
        .expect("valid");
        let (read, ca) = cli.args.tls().expect("read").expect("tls on");
        assert_eq!((read.cert_chain, ca), (identity.cert_chain, None));
    }

    #[test]
    fn bad_rates_and_half_an_outage_are_refused() {
        assert!(Cli::try_parse_from(["x", "--api-key", "k", "--fail-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["x", "--api-key", "k", "--outage-after", "3"]).is_err());
    }
}
