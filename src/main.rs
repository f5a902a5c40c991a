//! The `mcm-bridge` command line: parses arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mcm-bridge",
    version,
    about = "Kafka → Moloco Commerce Media User Event API bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge: consume, map, deliver, commit.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = "mcm-bridge.yaml")]
        config: PathBuf,
    },
    /// Check a configuration file (and its mapping rules) without touching Kafka or MCM.
    Validate {
        /// Configuration file.
        #[arg(long, short, default_value = "mcm-bridge.yaml")]
        config: PathBuf,
    },
    /// Run a local Kafka-protocol broker (librdkafka's mock cluster) and print its address.
    DevBroker(mcm_bridge::cli::dev_broker::DevBrokerArgs),
    /// Run a local fake of the MCM User Event API (for the demo, tests and benchmarks).
    Sandbox(mcm_bridge::sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => mcm_bridge::cli::run::run(&config),
        Command::Validate { config } => mcm_bridge::cli::validate::run(&config),
        Command::DevBroker(args) => mcm_bridge::cli::dev_broker::run(&args),
        Command::Sandbox(args) => mcm_bridge::sandbox::run(args),
    }
}
