//! The delivery step as the coordinator sees it: one call per message that ends in an
//! [`AckResult`], with per-attempt HTTP metrics recorded on the way.

use super::work::AckResult;
use crate::config::McmConfig;
use crate::delivery::adaptive::{AdaptiveLimit, Signal};
use crate::delivery::circuit::{CircuitBreaker, CircuitState};
use crate::delivery::rate_limit::TokenBucket;
use crate::delivery::sender::{Sender, Step, Tally, Verdict};
use crate::kafka::dlq::DlqReason;
use crate::mcm::classify::Outcome;
use crate::mcm::classify::RetryKind;
use crate::mcm::client::{Attempt, McmClient, Transport};
use crate::observe::metrics::Metrics;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The MCM client with request metrics (`http_requests_total`, `http_responses_total`,
/// `http_request_duration_seconds`), the optional rate limit, and the adaptive concurrency
/// limit's feedback.
pub struct MeteredClient {
    client: McmClient,
    metrics: Arc<Metrics>,
    rate: Option<Mutex<TokenBucket>>,
    adaptive: Option<Arc<Mutex<AdaptiveLimit>>>,
}

impl MeteredClient {
    async fn wait_for_token(&self) {
        let Some(bucket) = &self.rate else { return };
        loop {
            let wait = match bucket.lock() {
                Ok(mut b) => b.take(Instant::now()),
                Err(_) => return,
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    fn feed_back(&self, attempt: &Attempt) {
        let Some(a) = &self.adaptive else { return };
        let signal = match &attempt.outcome {
            Outcome::Retryable {
                kind: RetryKind::Throttled,
                ..
            } => Signal::Throttled,
            Outcome::Retryable { .. } => Signal::Failed,
            _ => Signal::Answered(attempt.elapsed),
        };
        if let Ok(mut l) = a.lock() {
            l.observe(signal, Instant::now());
            self.metrics
                .concurrency_limit
                .set(i64::try_from(l.limit()).unwrap_or(i64::MAX));
        }
    }
}

impl Transport for MeteredClient {
    async fn send(&self, body: Bytes) -> Attempt {
        self.wait_for_token().await;
        let attempt = self.client.send(body).await;
        self.feed_back(&attempt);
        self.metrics.count_response(attempt.status);
        self.metrics
            .http_request_duration
            .observe(attempt.elapsed.as_secs_f64());
        attempt
    }
}

/// Delivers message bodies with retries, backoff and the circuit breaker.
pub struct Deliverer {
    sender: Sender<MeteredClient>,
    metrics: Arc<Metrics>,
    adaptive: Option<Arc<Mutex<AdaptiveLimit>>>,
    max_in_flight: usize,
}

impl Deliverer {
    pub fn new(client: McmClient, cfg: &McmConfig, metrics: Arc<Metrics>) -> Deliverer {
        let breaker = Arc::new(Mutex::new(CircuitBreaker::new(&cfg.circuit_breaker)));
        let adaptive = cfg.adaptive_concurrency.then(|| {
            Arc::new(Mutex::new(AdaptiveLimit::new(
                cfg.min_in_flight,
                cfg.max_in_flight,
            )))
        });
        let limit = adaptive
            .as_ref()
            .and_then(|a| a.lock().ok().map(|l| l.limit()))
            .unwrap_or(cfg.max_in_flight);
        metrics
            .concurrency_limit
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
        let transport = MeteredClient {
            client,
            metrics: metrics.clone(),
            rate: (cfg.rate_limit > 0)
                .then(|| Mutex::new(TokenBucket::new(cfg.rate_limit, Instant::now()))),
            adaptive: adaptive.clone(),
        };
        Deliverer {
            sender: Sender::new(transport, cfg.retry.clone(), breaker),
            metrics,
            adaptive,
            max_in_flight: cfg.max_in_flight,
        }
    }

    /// Delivers one body until it has a final answer (or `cancel` fires), waiting out each
    /// backoff inside the call (`replay-dlq`: nothing else competes for its request slots).
    pub async fn deliver(&self, body: Bytes, cancel: &CancellationToken) -> AckResult {
        let r = self.sender.deliver(body, cancel).await;
        let retried = match r.verdict {
            // The last reason of an exhausted delivery ended it; it was not retried.
            Verdict::Exhausted(_) => r.retry_reasons.len().saturating_sub(1),
            _ => r.retry_reasons.len(),
        };
        for kind in r.retry_reasons.iter().take(retried) {
            self.count_retry(*kind);
        }
        ack_of(r.verdict)
    }

    /// One attempt for the pipeline: a final [`AckResult`], or [`AckResult::RetryAfter`] — the
    /// coordinator then parks the message, request slot released, until the delay has passed
    /// and calls this again with the same `tally`.
    pub async fn attempt(
        &self,
        body: &Bytes,
        tally: &mut Tally,
        cancel: &CancellationToken,
    ) -> AckResult {
        match self.sender.attempt(body, cancel, tally).await {
            Step::Done(verdict) => ack_of(verdict),
            Step::Retry { delay, kind, .. } => {
                self.count_retry(kind);
                AckResult::RetryAfter { delay }
            }
        }
    }

    fn count_retry(&self, kind: RetryKind) {
        self.metrics
            .retries
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// One attempt, bypassing retries and the breaker: used to find out whether a configuration
    /// error (401/403/404) has been fixed.
    pub async fn probe(&self, body: Bytes) -> AckResult {
        let attempt = self.sender.transport().send(body).await;
        match attempt.outcome {
            Outcome::Delivered { .. } => AckResult::Delivered,
            o @ Outcome::Permanent { .. } => AckResult::Undeliverable(reason_of("permanent", &o)),
            o @ Outcome::Fatal { .. } => fatal_of(&o),
            Outcome::Retryable { .. } => AckResult::ProbeInconclusive,
        }
    }

    /// Requests that may be in flight now: the adaptive limit, or `max_in_flight` when off.
    pub fn concurrency_limit(&self) -> usize {
        self.adaptive
            .as_ref()
            .and_then(|a| a.lock().ok().map(|l| l.limit()))
            .unwrap_or(self.max_in_flight)
    }

    /// Open or half-open: consumption stays paused until a probe closes the breaker.
    pub fn circuit_is_open(&self) -> bool {
        self.sender.circuit_state() != CircuitState::Closed
    }

    pub fn circuit_metric(&self) -> i64 {
        self.sender.circuit_state().metric_value()
    }
}

/// The acknowledgement for a final verdict.
fn ack_of(verdict: Verdict) -> AckResult {
    match verdict {
        Verdict::Delivered(_) => AckResult::Delivered,
        Verdict::Permanent(o) => AckResult::Undeliverable(reason_of("permanent", &o)),
        Verdict::Exhausted(o) => AckResult::Undeliverable(reason_of("exhausted", &o)),
        Verdict::Fatal(o) => fatal_of(&o),
        Verdict::Cancelled(_) => AckResult::Cancelled,
    }
}

/// DLQ reason for an outcome: the class, a stable reason code, status and body snippet.
fn reason_of(class: &str, o: &Outcome) -> DlqReason {
    let (reason, snippet) = match o {
        Outcome::Permanent {
            status,
            body_snippet,
            ..
        } => (format!("http_{status}"), Some(body_snippet.clone())),
        Outcome::Retryable { kind, detail, .. } => (
            format!("retries_exhausted_{}", kind.as_str()),
            Some(detail.clone()),
        ),
        Outcome::Fatal {
            status,
            body_snippet,
            ..
        } => (format!("http_{status}"), Some(body_snippet.clone())),
        Outcome::Delivered { status } => (format!("http_{status}"), None),
    };
    DlqReason {
        class: class.to_string(),
        reason,
        http_status: o.status(),
        response_snippet: snippet,
        schema_id: None,
    }
}

fn fatal_of(o: &Outcome) -> AckResult {
    match o {
        Outcome::Fatal {
            status,
            hint,
            body_snippet,
        } => AckResult::Fatal {
            status: *status,
            detail: format!("{hint}: {body_snippet}"),
        },
        other => AckResult::Fatal {
            status: other.status().unwrap_or(0),
            detail: "unexpected outcome".into(),
        },
    }
}
