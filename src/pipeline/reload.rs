//! Live reload of the mapping rules: on SIGHUP, or when the configuration file changes under
//! `run --watch-config`, the file is loaded and checked as at start-up; valid rules replace the
//! running plan between two messages (the coordinator swaps it, see `coordinator::Coordinator`),
//! with no rebalance: nothing in flight is touched, and every message is mapped exactly once, by
//! the rules in force when it was taken.
//!
//! What can change live is the `topics` section's rules for the topics already subscribed. A
//! change to the set of topics (a subscription, hence a rebalance) is refused and the old rules
//! stay; a change to any other section (`kafka`, `mcm`, `delivery`, `observe`) is reported as
//! needing a restart (`config_restart_pending`) while the new rules still apply. [`judge`] decides,
//! without I/O; [`Reloader`] loads the file, acts and counts.

use crate::config::decode::ConfigErrors;
use crate::config::fingerprint::Fingerprint;
use crate::config::Config;
use crate::mapping::MappingPlan;
use crate::observe::metrics::Metrics;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the running bridge was started with, as a reload compares it.
#[derive(Debug, Clone)]
pub struct Running {
    pub subscriptions: Vec<String>,
    pub fingerprint: Fingerprint,
}

impl Running {
    pub fn of(config: &Config, plan: &MappingPlan) -> Running {
        Running {
            subscriptions: plan.subscriptions(),
            fingerprint: config.fingerprint.clone(),
        }
    }
}

/// The outcome of a reload.
#[derive(Debug)]
pub enum Verdict {
    /// New rules for the same topics: swap them in.
    Apply {
        plan: MappingPlan,
        hash: String,
        restart_pending: Vec<&'static str>,
    },
    /// The rules are the ones running.
    Unchanged { restart_pending: Vec<&'static str> },
    /// The file does not load or its rules do not compile: the old rules stay.
    Invalid(ConfigErrors),
    /// The rules subscribe to other topics: that needs a restart; the old rules stay.
    RestartRequired {
        running: Vec<String>,
        wanted: Vec<String>,
    },
}

impl Verdict {
    /// The `result` label of `config_reloads_total`.
    pub fn result(&self) -> &'static str {
        match self {
            Verdict::Apply { .. } => "applied",
            Verdict::Unchanged { .. } => "unchanged",
            Verdict::Invalid(_) => "invalid",
            Verdict::RestartRequired { .. } => "restart_required",
        }
    }
}

/// Judges a freshly loaded configuration against the running one.
pub fn judge(running: &Running, loaded: Result<(Config, MappingPlan), ConfigErrors>) -> Verdict {
    let (config, plan) = match loaded {
        Ok(v) => v,
        Err(errors) => return Verdict::Invalid(errors),
    };
    let wanted = plan.subscriptions();
    if wanted != running.subscriptions {
        return Verdict::RestartRequired {
            running: running.subscriptions.clone(),
            wanted,
        };
    }
    let restart_pending = running.fingerprint.changed_sections(&config.fingerprint);
    if config.fingerprint.topics == running.fingerprint.topics {
        return Verdict::Unchanged { restart_pending };
    }
    Verdict::Apply {
        plan,
        hash: config.fingerprint.topics,
        restart_pending,
    }
}

/// New rules for the coordinator, and how it says they are in force.
#[derive(Debug)]
pub struct PlanSwap {
    pub plan: Arc<MappingPlan>,
    /// Answered once the coordinator took the plan: every message taken after that is mapped by
    /// it.
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// Loads the configuration file when asked and hands valid new rules to the coordinator.
pub struct Reloader {
    path: PathBuf,
    running: Running,
    plans: mpsc::Sender<PlanSwap>,
    metrics: Arc<Metrics>,
    /// Listening from the start, so that a SIGHUP right after start reloads instead of taking
    /// its default action (terminating the process).
    hangups: Hangups,
    /// The file's bytes when last loaded (what `--watch-config` compares with).
    last: Option<Vec<u8>>,
}

impl Reloader {
    /// A reloader for the bridge started from `path` with `config` and `plan`; new plans go to
    /// the receiver the pipeline is given.
    pub fn new(
        path: PathBuf,
        config: &Config,
        plan: &MappingPlan,
        metrics: Arc<Metrics>,
    ) -> (Reloader, mpsc::Receiver<PlanSwap>) {
        let (plans, rx) = mpsc::channel(1);
        let reloader = Reloader {
            last: std::fs::read(&path).ok(),
            path,
            running: Running::of(config, plan),
            plans,
            metrics,
            hangups: hangups(),
        };
        (reloader, rx)
    }

    /// Loads the file once, acts on the verdict (logs it, counts it, swaps the rules) and returns
    /// its `result` label; `applied` once the coordinator has the new rules in force (`stopped`,
    /// uncounted, when the pipeline ended first). `why` says what asked (for the log).
    pub async fn reload(&mut self, why: &str) -> &'static str {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            crate::config::load_with(&path, crate::mapping::compile)
        })
        .await
        .unwrap_or_else(|e| {
            Err(ConfigErrors(vec![crate::config::decode::ConfigError::new(
                "",
                format!("the loader failed: {e}"),
            )]))
        });
        let verdict = judge(&self.running, loaded);
        let result = verdict.result();
        let file = self.path.display().to_string();
        match verdict {
            Verdict::Apply {
                plan,
                hash,
                restart_pending,
            } => {
                let (done, taken) = tokio::sync::oneshot::channel();
                let swap = PlanSwap {
                    plan: Arc::new(plan),
                    done,
                };
                if self.plans.send(swap).await.is_err() || taken.await.is_err() {
                    // The pipeline is stopping: nothing to swap into, nothing counted.
                    return "stopped";
                }
                let from = std::mem::replace(&mut self.running.fingerprint.topics, hash.clone());
                self.metrics.set_mapping_hash(&hash);
                tracing::info!(%file, trigger = why, from = %from, to = %hash, "mapping rules reloaded");
                self.note_restart_pending(&restart_pending);
            }
            Verdict::Unchanged { restart_pending } => {
                tracing::info!(%file, trigger = why, hash = %self.running.fingerprint.topics, "reload: mapping rules unchanged");
                self.note_restart_pending(&restart_pending);
            }
            Verdict::Invalid(errors) => {
                for e in &errors.0 {
                    tracing::error!(%file, trigger = why, error = %e, "reload refused: the running rules stay");
                }
            }
            Verdict::RestartRequired { running, wanted } => {
                tracing::error!(
                    %file,
                    trigger = why,
                    running = %running.join(","),
                    wanted = %wanted.join(","),
                    "reload refused: the topics to subscribe to changed, which needs a restart (a rebalance); the running rules stay"
                );
            }
        }
        self.metrics
            .config_reloads
            .with_label_values(&[result])
            .inc();
        result
    }

    fn note_restart_pending(&self, sections: &[&'static str]) {
        self.metrics
            .config_restart_pending
            .set(i64::from(!sections.is_empty()));
        if !sections.is_empty() {
            tracing::warn!(
                sections = %sections.join(","),
                "settings outside topics changed in the file: they take effect at the next restart"
            );
        }
    }

    /// Reloads on every SIGHUP and, with `watch`, whenever the file's content changes (checked
    /// every `watch` interval: polling also sees a Kubernetes ConfigMap's symlink swap, which
    /// file-event APIs report on the directory, not the file), until `shutdown`.
    pub async fn run(mut self, watch: Option<Duration>, shutdown: CancellationToken) {
        // tokio's interval panics on zero; a tenth of a second is already a busy poll.
        let watch = watch.map(|d| d.max(Duration::from_millis(100)));
        let mut hup = self.hangups.take();
        let mut poll = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = recv_hangup(&mut hup) => {
                    self.last = std::fs::read(&self.path).ok();
                    self.reload("SIGHUP").await;
                }
                _ = poll.tick(), if watch.is_some() => {
                    let now = std::fs::read(&self.path).ok();
                    if now.is_some() && now != self.last {
                        self.last = now;
                        self.reload("file changed").await;
                    }
                }
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;
// (A `Signal` needs a runtime: `Reloader::new` is called inside one, by `run` and the tests.)

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reload only with --watch-config");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

#[cfg(unix)]
async fn recv_hangup(h: &mut Hangups) -> Option<()> {
    match h {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(group: &str, topic: &str, page: &str, strict: bool) -> String {
        format!(
            r#"
kafka: {{bootstrap_servers: "127.0.0.1:9092", group_id: {group}}}
mcm: {{platform_name: acme, platform_id: ACME_TEST, api_key: k, strict_validation: {strict}}}
topics:
  - topic: {topic}
    rules:
      - event_type: HOME
        fields:
          id: {{path: id}}
          timestamp: {{path: ts}}
          channel_type: SITE
          user_id: {{path: user}}
          page_id: {page}
"#
        )
    }

    fn load(text: &str) -> Result<(Config, MappingPlan), ConfigErrors> {
        crate::config::load_str_with(
            text,
            Path::new("."),
            &|_: &str| None,
            Vec::<(String, String)>::new(),
            crate::mapping::compile,
        )
    }

    fn running(text: &str) -> Running {
        let (c, p) = load(text).unwrap_or_else(|e| panic!("test config: {e}"));
        Running::of(&c, &p)
    }

    #[test]
    fn new_rules_for_the_same_topics_apply() {
        let r = running(&config("g", "shop", "A", false));
        match judge(&r, load(&config("g", "shop", "B", false))) {
            Verdict::Apply {
                hash,
                restart_pending,
                ..
            } => {
                assert_ne!(hash, r.fingerprint.topics);
                assert!(restart_pending.is_empty());
            }
            other => panic!("expected Apply, got {other:?}"),
        }
    }

    #[test]
    fn the_same_rules_are_unchanged_and_other_sections_are_pending() {
        let r = running(&config("g", "shop", "A", false));
        assert!(matches!(
            judge(&r, load(&config("g", "shop", "A", false))),
            Verdict::Unchanged { ref restart_pending } if restart_pending.is_empty()
        ));
        match judge(&r, load(&config("h", "shop", "B", true))) {
            Verdict::Apply {
                restart_pending, ..
            } => assert_eq!(restart_pending, vec!["kafka", "mcm"]),
            other => panic!("expected Apply with a restart pending, got {other:?}"),
        }
    }

    #[test]
    fn other_topics_need_a_restart_and_bad_rules_are_refused() {
        let r = running(&config("g", "shop", "A", false));
        match judge(&r, load(&config("g", "shop2", "A", false))) {
            v @ Verdict::RestartRequired { .. } => assert_eq!(v.result(), "restart_required"),
            other => panic!("expected RestartRequired, got {other:?}"),
        }
        let bad = config("g", "shop", "A", false).replace("channel_type: SITE", "channel_type: TV");
        match judge(&r, load(&bad)) {
            Verdict::Invalid(errors) => {
                assert!(
                    errors.0.iter().any(|e| e.path.contains("channel_type")),
                    "{errors}"
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
