//! A real Prometheus for tests: scrapes a bridge's `/metrics` every second with the shipped alert
//! rules (deploy/prometheus/alerts.yml) loaded, so a test can show an alert *firing* on what a
//! real failure did to the metrics, not only the counter moving.
//!
//! `prometheus` must be on PATH (scripts/test.sh installs it with the monitoring tools); with
//! `SKIP_MONITORING=1` the tests that need it skip that part, otherwise its absence fails them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `None` (with a note on stderr) when the monitoring checks are skipped on purpose.
pub fn wanted() -> bool {
    if std::env::var("SKIP_MONITORING").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_MONITORING=1: not checking the alert with a real Prometheus");
        return false;
    }
    true
}

pub struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free port, scraping `target` (`host:port`) as job `mcm-bridge`.
    pub fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tmp");
        let alerts = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - \"{}\"\n\
                 scrape_configs:\n  - job_name: mcm-bridge\n    static_configs:\n      - targets: [\"{target}\"]\n",
                alerts.display()
            ),
        )
        .expect("prometheus.yml");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`prometheus` on PATH (apt-get install prometheus, or SKIP_MONITORING=1)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The alerts Prometheus reports as firing now, as (name, labels JSON).
    pub async fn firing(&self) -> Vec<(String, serde_json::Value)> {
        let Ok(resp) = reqwest::get(format!("{}/api/v1/alerts", self.url)).await else {
            return Vec::new();
        };
        let Ok(body) = resp.json::<serde_json::Value>().await else {
            return Vec::new();
        };
        body["data"]["alerts"]
            .as_array()
            .map(|alerts| {
                alerts
                    .iter()
                    .filter(|a| a["state"] == "firing")
                    .map(|a| {
                        (
                            a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                            a["labels"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `alert` fires with every `(label, value)` of `labels`; panics after `timeout`
    /// with what was firing.
    pub async fn wait_firing(&self, alert: &str, labels: &[(&str, &str)], timeout: Duration) {
        let start = Instant::now();
        loop {
            let firing = self.firing().await;
            if firing.iter().any(|(name, l)| {
                name == alert && labels.iter().all(|(k, v)| l[*k].as_str() == Some(*v))
            }) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{alert} {labels:?} not firing after {timeout:?}; firing: {firing:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
