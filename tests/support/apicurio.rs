//! A real Confluent-compatible schema registry for tests: Apicurio Registry, built from Maven
//! Central and started by `scripts/apicurio.sh` (its header says why this version and how),
//! speaking Confluent's REST API under `/apis/ccompat/v7`. Its schemas live in an H2 file
//! database in a temporary directory, so a SIGKILLed registry restarted on the same port comes
//! back with them, as a real deployment's would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/apicurio.sh");

pub struct Apicurio {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Apicurio {
    /// Builds (once per machine) and starts the registry; `None` when SKIP_APACHE_KAFKA=1 says
    /// this machine runs no Java.
    pub async fn start() -> Option<Apicurio> {
        if std::env::var("SKIP_APACHE_KAFKA").is_ok_and(|v| v == "1") {
            eprintln!("SKIP_APACHE_KAFKA=1: skipping the Apicurio Registry test");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut a = Apicurio {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tmp"),
        };
        a.restart().await;
        Some(a)
    }

    /// The Confluent-compatible base URL (`schema_registry.url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port)
    }

    /// Kills the registry with SIGKILL (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port and database, and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let log = self.dir.path().join("apicurio.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let db: PathBuf = self.dir.path().join("db");
        let child = Command::new("bash")
            .arg(SCRIPT)
            .arg("start")
            .arg(self.port.to_string())
            .env(
                "APICURIO_JDBC_URL",
                format!("jdbc:h2:file:{}", db.display()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("scripts/apicurio.sh start");
        self.child = Some(child);
        // A first build (Maven, ~230 MB from Maven Central) may run before it starts.
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "apicurio.sh exited ({status}):\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
            if self.answers().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "Apicurio did not answer within 10 minutes:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Apicurio {
    /// Whether `GET /apis/ccompat/v7/subjects` answers 200.
    async fn answers(&self) -> bool {
        let url = format!("{}/subjects", self.url());
        let client = reqwest::Client::new();
        matches!(
            client.get(&url).timeout(Duration::from_secs(5)).send().await,
            Ok(r) if r.status().is_success()
        )
    }
}

impl Drop for Apicurio {
    fn drop(&mut self) {
        self.kill();
    }
}
