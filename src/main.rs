//! The `mcm-bridge` command line: parses arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the pipeline allocates and frees small buffers per event on
/// several threads (poll thread, coordinator, HTTP tasks), where glibc's arenas cost ~9 % of the
/// bridge's CPU in `perf` (malloc, free, consolidate).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Run(mcm_bridge::cli::run::RunArgs),
    /// Watch a running bridge judge live messages: each source record next to the MCM event it
    /// became, or why it was rejected (needs `observe.tap: true`).
    Tap(mcm_bridge::cli::tap::TapArgs),
    /// Check a configuration file (and its mapping rules) without touching Kafka or MCM; with
    /// `--online`, then also connect to both (the same as `doctor`).
    Validate {
        /// Configuration file.
        #[arg(long, short, default_value = "mcm-bridge.yaml")]
        config: PathBuf,
        /// Also check Kafka (brokers, login, topics, group and DLQ rights) and MCM (DNS, TCP, TLS,
        /// API key and platform id), changing nothing: see `doctor`.
        #[arg(long)]
        online: bool,
        /// With --online: `text` or `json` (one object per check).
        #[arg(long, value_enum, requires = "online")]
        format: Option<mcm_bridge::doctor::Format>,
        /// With --online: bound of each check (default 10s).
        #[arg(long, value_parser = mcm_bridge::cli::doctor::parse_timeout, requires = "online")]
        timeout: Option<std::time::Duration>,
    },
    /// Check that the bridge could work, without changing anything: the configuration, then Kafka
    /// (brokers, login, topics, READ on the group, WRITE on the DLQ topic — without joining or
    /// writing) and MCM (DNS, TCP, TLS, API key and platform id — with a request MCM must refuse).
    /// Exit 0: all passed (warnings allowed); 1: a check failed; 2: invalid configuration.
    Doctor(mcm_bridge::cli::doctor::DoctorArgs),
    /// The whole product on this machine: embedded Kafka, MCM sandbox, generator and the bridge.
    Demo(mcm_bridge::cli::demo::DemoArgs),
    /// Produce realistic shop traffic to Kafka.
    Generate(mcm_bridge::cli::generate::GenerateArgs),
    /// Re-run dead-lettered messages through the current mapping (after a fix); failures stay in the DLQ.
    ReplayDlq(mcm_bridge::cli::replay::ReplayArgs),
    /// Run a local Kafka-protocol broker (librdkafka's mock cluster) and print its address.
    DevBroker(mcm_bridge::cli::dev_broker::DevBrokerArgs),
    /// Run a local fake of the MCM User Event API (for the demo, tests and benchmarks).
    Sandbox(mcm_bridge::sandbox::SandboxArgs),
    /// Dry run: map one message from stdin and print the MCM event (or why it would be rejected).
    Map {
        #[arg(long, short, default_value = "mcm-bridge.yaml")]
        config: PathBuf,
        /// Topic the message arrives on (selects the mapping block).
        #[arg(long)]
        topic: String,
        /// Kafka record key.
        #[arg(long)]
        key: Option<String>,
        /// Kafka header, `name=value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 0)]
        partition: i32,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Record timestamp in Unix milliseconds (default: now).
        #[arg(long)]
        timestamp_ms: Option<i64>,
        /// For a `format: avro` or `protobuf` block: the schema (.avsc, .proto) the JSON
        /// message on stdin is encoded with, as a registry serializer would (docs/formats.md).
        #[arg(long, conflicts_with = "schema_subject")]
        schema_file: Option<PathBuf>,
        /// Instead of a file: the schema registered under this subject in the config's
        /// `schema_registry` (framed with its real id).
        #[arg(long)]
        schema_subject: Option<String>,
        /// The subject's version (a number, or `latest`).
        #[arg(long, default_value = "latest", requires = "schema_subject")]
        schema_version: String,
        /// For a `format: protobuf` block: the message type (full name) of the JSON message
        /// (default: the schema's first message).
        #[arg(long)]
        proto_message: Option<String>,
    },
    /// Run YAML test cases (message + metadata → expected MCM event or error) against the mappings.
    Test {
        #[arg(long, short, default_value = "mcm-bridge.yaml")]
        config: PathBuf,
        /// Case files.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Before any thread starts: glibc arenas are created per thread.
    mcm_bridge::malloc_tuning::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => mcm_bridge::cli::run::run(&args),
        Command::Tap(args) => mcm_bridge::cli::tap::run(&args),
        Command::Validate {
            config,
            online: false,
            ..
        } => mcm_bridge::cli::validate::run(&config),
        Command::Validate {
            config,
            online: true,
            format,
            timeout,
        } => mcm_bridge::cli::doctor::run(
            &config,
            &mcm_bridge::cli::doctor::OnlineArgs {
                format: format.unwrap_or_default(),
                timeout: timeout.unwrap_or(mcm_bridge::doctor::DEFAULT_TIMEOUT),
            },
        ),
        Command::Doctor(args) => mcm_bridge::cli::doctor::run(&args.config, &args.online),
        Command::Demo(args) => mcm_bridge::cli::demo::run(&args),
        Command::Generate(args) => mcm_bridge::cli::generate::run(&args),
        Command::ReplayDlq(args) => mcm_bridge::cli::replay::run(&args),
        Command::DevBroker(args) => mcm_bridge::cli::dev_broker::run(&args),
        Command::Sandbox(args) => mcm_bridge::sandbox::run(args),
        Command::Map {
            config,
            topic,
            key,
            headers,
            partition,
            offset,
            timestamp_ms,
            schema_file,
            schema_subject,
            schema_version,
            proto_message,
        } => mcm_bridge::cli::map::run(&mcm_bridge::cli::map::MapArgs {
            config: &config,
            topic: &topic,
            key: key.as_deref(),
            headers: &headers,
            partition,
            offset,
            timestamp_ms,
            schema_file: schema_file.as_deref(),
            schema_subject: schema_subject
                .as_deref()
                .map(|s| (s, schema_version.as_str())),
            proto_message: proto_message.as_deref(),
        }),
        Command::Test { config, cases } => mcm_bridge::cli::test::run(&config, &cases),
    }
}
