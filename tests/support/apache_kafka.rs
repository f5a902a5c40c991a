//! Apache Kafka for whole-service tests: the real broker, started from its Maven Central jars by
//! `scripts/kafka.sh` (KRaft, 1 or 3 nodes on loopback, persistent data so a node can be
//! SIGKILLed and restarted). Each test gets its own cluster in a temporary directory; the script
//! ties the JVMs to this test process (`--watch-pid`), so an aborted run leaves none behind.
//!
//! `SKIP_APACHE_KAFKA=1` skips the real-broker tests (a laptop without Java); without it, a
//! missing Java or Maven fails the test loudly, so CI can never skip them by accident.

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// True when the real-broker tests are to be skipped (`SKIP_APACHE_KAFKA=1`).
pub fn skipped() -> bool {
    std::env::var("SKIP_APACHE_KAFKA").is_ok_and(|v| v == "1")
}

/// How a cluster is started.
#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// 1 (default) or 3 nodes, every one broker and controller.
    pub brokers: u32,
    /// A SASL_SSL listener (SCRAM-SHA-512 over TLS, ACLs enforced) next to PLAINTEXT.
    pub sasl_ssl: bool,
    /// SCRAM users created at format time, `(name, password)`.
    pub scram_users: Vec<(String, String)>,
    /// Broker properties overriding the script's test defaults.
    pub set: Vec<(String, String)>,
}

/// A running Apache Kafka cluster; SIGKILLed and deleted on drop.
pub struct ApacheKafka {
    dir: tempfile::TempDir,
    bootstrap: String,
    sasl_ssl_bootstrap: Option<String>,
    ca_file: Option<PathBuf>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.py")
}

fn run_script(args: &[String]) -> String {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs scripts/kafka.py");
    assert!(
        out.status.success(),
        "scripts/kafka.py {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl ApacheKafka {
    /// One node, PLAINTEXT only: what most tests need.
    pub fn start_single() -> ApacheKafka {
        ApacheKafka::start(&KafkaOptions::default())
    }

    pub fn start(opts: &KafkaOptions) -> ApacheKafka {
        let dir = tempfile::Builder::new()
            .prefix("apache-kafka-")
            .tempdir()
            .expect("temp dir");
        let mut args = vec![
            "start".to_string(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--brokers".into(),
            opts.brokers.max(1).to_string(),
            "--watch-pid".into(),
            std::process::id().to_string(),
            // Two tests run at once on 2 cores: a small heap is plenty for test traffic.
            "--heap".into(),
            "384m".into(),
        ];
        if opts.sasl_ssl {
            args.push("--sasl-ssl".into());
        }
        for (name, password) in &opts.scram_users {
            args.push("--scram-user".into());
            args.push(format!("{name}:{password}"));
        }
        for (k, v) in &opts.set {
            args.push("--set".into());
            args.push(format!("{k}={v}"));
        }
        let out = run_script(&args);
        let info: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!("scripts/kafka.py start printed no JSON ({e}): {out}");
        });
        let text = |k: &str| info.get(k).and_then(|v| v.as_str()).map(str::to_string);
        ApacheKafka {
            bootstrap: text("bootstrap").expect("bootstrap in the start output"),
            sasl_ssl_bootstrap: text("sasl_ssl_bootstrap"),
            ca_file: text("ca_file").map(PathBuf::from),
            dir,
        }
    }

    /// The PLAINTEXT listeners (the harness's own, a super user when ACLs are on).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The SASL_SSL listeners, when started with `sasl_ssl`.
    pub fn sasl_ssl_bootstrap(&self) -> Option<&str> {
        self.sasl_ssl_bootstrap.as_deref()
    }

    /// The CA that signed the brokers' certificate, when started with `sasl_ssl`.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn node_args(&self, verb: &str, node: Option<u32>) -> Vec<String> {
        let mut args = vec![
            verb.to_string(),
            "--dir".into(),
            self.dir.path().display().to_string(),
        ];
        if let Some(n) = node {
            args.push("--node".into());
            args.push(n.to_string());
        }
        args
    }

    /// SIGKILLs one node (or all): the data stays for [`ApacheKafka::start_again`].
    pub fn kill(&self, node: Option<u32>) {
        run_script(&self.node_args("kill", node));
    }

    /// Stops one node (or all) with SIGTERM: a controlled shutdown.
    pub fn stop(&self, node: Option<u32>) {
        run_script(&self.node_args("stop", node));
    }

    /// Starts stopped or killed nodes again on the same ports and data; returns when they are up.
    pub fn start_again(&self, node: Option<u32>) {
        let mut args = self.node_args("start", node);
        args.push("--watch-pid".into());
        args.push(std::process::id().to_string());
        run_script(&args);
    }

    /// Runs a Kafka CLI class (e.g. `org.apache.kafka.tools.AclCommand`) with `{bootstrap}`
    /// replaced by the PLAINTEXT listeners; panics with its output when it fails.
    pub fn tool(&self, class: &str, args: &[&str]) -> String {
        let mut all = vec![
            "tool".to_string(),
            "--dir".into(),
            self.dir.path().display().to_string(),
            class.to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        run_script(&all)
    }

    /// Runs `op` with an admin client of this cluster on a thread of its own: the admin future
    /// is driven by librdkafka, and blocking on it from a test's tokio worker would stall it.
    fn with_admin<T: Send + 'static>(
        &self,
        op: impl FnOnce(&AdminClient<DefaultClientContext>, &AdminOptions) -> T + Send + 'static,
    ) -> T {
        let bootstrap = self.bootstrap.clone();
        std::thread::spawn(move || {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .expect("admin client");
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            op(&admin, &opts)
        })
        .join()
        .expect("admin thread")
    }

    /// Creates a topic (replication factor: every node, up to 3) with topic-level `configs`.
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let (name, configs) = (name.to_string(), owned(configs));
        let replication = self.bootstrap.split(',').count().min(3) as i32;
        self.with_admin(move |admin, opts| {
            let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(replication));
            for (k, v) in &configs {
                topic = topic.set(k, v);
            }
            let res = futures::executor::block_on(admin.create_topics([&topic], opts));
            for r in res.expect("create_topics request") {
                if let Err((t, e)) = r {
                    panic!("creating topic {t}: {e}");
                }
            }
        });
    }

    /// Sets a topic's configuration to `configs` (AlterConfigs: settings not named return to
    /// their defaults).
    pub fn alter_topic(&self, name: &str, configs: &[(&str, &str)]) {
        let (name, configs) = (name.to_string(), owned(configs));
        self.with_admin(move |admin, opts| {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&name));
            for (k, v) in &configs {
                alter = alter.set(k, v);
            }
            let res = futures::executor::block_on(admin.alter_configs([&alter], opts));
            for r in res.expect("alter_configs request") {
                if let Err((spec, e)) = r {
                    panic!("altering {spec:?}: {e}");
                }
            }
        });
    }

    /// Deletes a topic.
    pub fn delete_topic(&self, name: &str) {
        let name = name.to_string();
        self.with_admin(move |admin, opts| {
            let res = futures::executor::block_on(admin.delete_topics(&[&name], opts));
            for r in res.expect("delete_topics request") {
                if let Err((t, e)) = r {
                    panic!("deleting topic {t}: {e}");
                }
            }
        });
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        // SIGKILL: the data is thrown away with the directory, nothing to shut down cleanly.
        let _ = Command::new("python3")
            .arg(script())
            .args(["kill", "--dir"])
            .arg(self.dir.path())
            .output();
    }
}
