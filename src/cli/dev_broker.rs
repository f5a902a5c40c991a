//! `mcm-bridge dev-broker`: a Kafka-protocol broker (librdkafka's mock cluster) in its own process.
//!
//! For users without Docker, and for tests that SIGKILL bridge processes: the broker must outlive
//! them and expire their group membership correctly (tansu 0.6.0 never expires a killed member).
//! It prints `bootstrap.servers=HOST:PORT,…` on the first line of stdout, then reads commands on
//! stdin: `down` (all brokers down), `up`, `topic NAME PARTITIONS`, `quit`. When stdin is closed it
//! keeps running until SIGINT/SIGTERM.

use crate::kafka::mock::MockBroker;
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DevBrokerArgs {
    /// Topics to create, as NAME:PARTITIONS (repeatable), e.g. --topic shop.events:4
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    pub topics: Vec<String>,
    /// Number of mock brokers.
    #[arg(long, default_value_t = 1)]
    pub brokers: i32,
}

fn parse_topic(spec: &str) -> Result<(String, i32), String> {
    let (name, parts) = spec.rsplit_once(':').unwrap_or((spec, "1"));
    let parts: i32 = parts.parse().map_err(|_| {
        format!("--topic {spec:?}: partitions must be a number, e.g. shop.events:4")
    })?;
    if name.is_empty() || parts < 1 {
        return Err(format!(
            "--topic {spec:?}: expected NAME:PARTITIONS with PARTITIONS ≥ 1"
        ));
    }
    Ok((name.to_string(), parts))
}

pub fn run(args: &DevBrokerArgs) -> ExitCode {
    let topics: Result<Vec<_>, _> = args.topics.iter().map(|t| parse_topic(t)).collect();
    let topics = match topics {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let broker = match MockBroker::start(args.brokers.max(1)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot start the mock cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, parts) in &topics {
        if let Err(e) = broker.create_topic(name, *parts) {
            eprintln!("cannot create topic {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    let _ = std::io::stdout().flush();
    eprintln!("dev-broker ready; commands on stdin: down | up | topic NAME PARTITIONS | quit");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = match words.as_slice() {
            ["down"] => broker
                .set_brokers_up(false)
                .map(|()| "brokers down".to_string()),
            ["up"] => broker
                .set_brokers_up(true)
                .map(|()| "brokers up".to_string()),
            ["topic", name, parts] => match parts.parse::<i32>() {
                Ok(p) => broker
                    .create_topic(name, p)
                    .map(|()| format!("topic {name} created")),
                Err(_) => Ok(format!("bad partition count {parts:?}")),
            },
            ["quit"] => return ExitCode::SUCCESS,
            [] => continue,
            _ => Ok(format!("unknown command {line:?}")),
        };
        match result {
            Ok(msg) => println!("ok {msg}"),
            Err(e) => println!("error {e}"),
        }
        let _ = std::io::stdout().flush();
    }
    // stdin closed (e.g. started in the background): keep the cluster alive until a signal.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot wait for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(crate::cli::shutdown_signal());
    drop(broker);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_topic_specs() {
        assert_eq!(parse_topic("a.b:4"), Ok(("a.b".into(), 4)));
        assert_eq!(parse_topic("a"), Ok(("a".into(), 1)));
        assert!(parse_topic("a:x").is_err());
        assert!(parse_topic(":3").is_err());
        assert!(parse_topic("a:0").is_err());
    }
}
