//! The tap: what the bridge does with live messages, for an operator to watch (`mcm-bridge tap`,
//! Vector's `vector tap`). Each message the coordinator judges is offered here; while no one
//! watches, an offer is one atomic load and nothing is built. A watcher gets the source record
//! next to the MCM event it became, byte for byte the body that is POSTed (identifiers hashed as
//! sent; the API key is a request header and never part of it), or the reason it was rejected.
//!
//! Lossy by design: a watcher that falls behind is told how many records it missed rather than
//! slowing the pipeline (a bounded broadcast channel). Records are kept serialised, with the
//! source cut at 8 KiB, so a stalled watcher holds at most [`BACKLOG`] lines of a few KiB each.
//! While watched, each message costs the coordinator one record (two small JSON encodings), unless
//! every watcher wants rejects only and the message was not rejected. Served on its own listener, off unless
//! `observe.tap` is set, on loopback unless configured otherwise (`crate::observe::tap_server`):
//! source records hold whatever the producers put in them.

use crate::mapping::{Processed, SourceMessage, WireEvent};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Records a watcher may fall behind by before it misses some.
const BACKLOG: usize = 256;

/// Source payloads larger than this are shown as the start of their text: the tap is for reading
/// by a person, and the cap bounds what a stalled watcher holds.
const MAX_SOURCE_BYTES: usize = 8 * 1024;

/// How many watchers at once: each one costs the coordinator a record per message.
pub const MAX_WATCHERS: usize = 4;

/// One judged message, as a watcher sees it (one JSON line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TapRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    /// The record's value: its JSON, or its text when it is not JSON or longer than 8 KiB (cut there), or null.
    pub source: serde_json::Value,
    /// `deliver`, `filtered` or `reject`.
    pub outcome: &'static str,
    /// The MCM event exactly as sent (`deliver`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// Reject class (`decode`, `mapping`, `validation`, `no_match`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
    /// Reject reason code or filter reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TapRecord {
    pub fn of(source: &SourceMessage<'_>, processed: &Processed<WireEvent>) -> TapRecord {
        let mut r = TapRecord {
            topic: source.topic.to_string(),
            partition: source.partition,
            offset: source.offset,
            key: source.key.map(|k| String::from_utf8_lossy(k).into_owned()),
            timestamp_ms: source.timestamp_ms,
            source: source.payload.map_or(serde_json::Value::Null, source_value),
            outcome: "deliver",
            event: None,
            class: None,
            reason: None,
            detail: None,
        };
        match processed {
            Processed::Deliver(wire) => {
                r.event =
                    Some(serde_json::from_slice(&wire.body).unwrap_or_else(|_| {
                        String::from_utf8_lossy(&wire.body).into_owned().into()
                    }));
            }
            Processed::Filtered { reason } => {
                r.outcome = "filtered";
                r.reason = Some((*reason).to_string());
            }
            Processed::Reject {
                class,
                reason,
                detail,
                ..
            } => {
                r.outcome = "reject";
                r.class = Some(class.as_str());
                r.reason = Some(reason.clone());
                r.detail = Some(detail.clone());
            }
        }
        r
    }

    pub fn is_rejected(&self) -> bool {
        self.outcome == "reject"
    }
}

/// A record as it travels to the watchers: what their filters read, and its JSON line.
#[derive(Debug, Clone, PartialEq)]
pub struct TapLine {
    pub topic: String,
    pub rejected: bool,
    /// The record's JSON, newline-terminated.
    pub json: bytes::Bytes,
}

impl TapLine {
    pub fn of(record: &TapRecord) -> TapLine {
        let mut json = serde_json::to_vec(record).unwrap_or_default();
        json.push(b'\n');
        TapLine {
            topic: record.topic.clone(),
            rejected: record.is_rejected(),
            json: json.into(),
        }
    }
}

fn source_value(payload: &[u8]) -> serde_json::Value {
    if payload.len() <= MAX_SOURCE_BYTES {
        if let Ok(v) = serde_json::from_slice(payload) {
            return v;
        }
    }
    let cut = &payload[..payload.len().min(MAX_SOURCE_BYTES)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < payload.len() {
        text.push_str(&format!("… ({} bytes)", payload.len()));
    }
    text.into()
}

/// What a watcher wants to see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TapFilter {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only rejected messages.
    pub rejected_only: bool,
    /// The share of the matching messages to show, in (0, 1]; 1 shows every one.
    pub sample: Option<f64>,
}

impl TapFilter {
    pub fn accepts(&self, r: &TapLine) -> bool {
        if self.topic.as_deref().is_some_and(|t| t != r.topic) {
            return false;
        }
        if self.rejected_only && !r.rejected {
            return false;
        }
        match self.sample {
            Some(p) if p < 1.0 => rand::random::<f64>() < p,
            _ => true,
        }
    }
}

/// The hub the coordinator offers records to.
pub struct Tap {
    tx: broadcast::Sender<Arc<TapLine>>,
    watchers: AtomicUsize,
    /// Watchers that want more than rejects: while none does, accepted messages build nothing.
    want_all: AtomicUsize,
}

impl Default for Tap {
    fn default() -> Tap {
        Tap {
            tx: broadcast::channel(BACKLOG).0,
            watchers: AtomicUsize::new(0),
            want_all: AtomicUsize::new(0),
        }
    }
}

/// Why a watcher was turned away.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{MAX_WATCHERS} tap sessions are already open")]
pub struct TooManyWatchers;

impl Tap {
    /// True while someone watches: only then is a record built.
    pub fn is_watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Offers one judged message to the watchers (nothing happens when there are none).
    pub fn offer(&self, source: &SourceMessage<'_>, processed: &Processed<WireEvent>) {
        if !self.is_watched() {
            return;
        }
        let rejected = matches!(processed, Processed::Reject { .. });
        if !rejected && self.want_all.load(Ordering::Relaxed) == 0 {
            return;
        }
        // No receiver left between the check and the send: the record is simply dropped.
        let _ = self
            .tx
            .send(Arc::new(TapLine::of(&TapRecord::of(source, processed))));
    }

    /// A new watcher with what it wants to see; it stops counting when the [`Watcher`] is
    /// dropped.
    pub fn watch(self: &Arc<Tap>, filter: TapFilter) -> Result<Watcher, TooManyWatchers> {
        let before = self.watchers.fetch_add(1, Ordering::Relaxed);
        if !filter.rejected_only {
            self.want_all.fetch_add(1, Ordering::Relaxed);
        }
        let watcher = Watcher {
            rx: self.tx.subscribe(),
            tap: self.clone(),
            filter,
        };
        if before >= MAX_WATCHERS {
            return Err(TooManyWatchers);
        }
        Ok(watcher)
    }
}

/// One watcher's subscription.
pub struct Watcher {
    rx: broadcast::Receiver<Arc<TapLine>>,
    tap: Arc<Tap>,
    filter: TapFilter,
}

/// What a watcher gets next.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// A record its filter accepts.
    Record(Arc<TapLine>),
    /// It fell behind and missed this many records.
    Missed(u64),
    /// The bridge is stopping.
    Closed,
}

impl Watcher {
    /// The next record the filter accepts (cancel-safe: nothing is lost by dropping the future).
    pub async fn next(&mut self) -> Seen {
        loop {
            match self.rx.recv().await {
                Ok(r) if self.filter.accepts(&r) => return Seen::Record(r),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Seen::Missed(n),
                Err(broadcast::error::RecvError::Closed) => return Seen::Closed,
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.tap.watchers.fetch_sub(1, Ordering::Relaxed);
        if !self.filter.rejected_only {
            self.tap.want_all.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::RejectClass;
    use crate::mcm::event::EventType;

    fn source<'a>(topic: &'a str, payload: &'a [u8]) -> SourceMessage<'a> {
        SourceMessage {
            topic,
            partition: 2,
            offset: 41,
            key: Some(b"k-1"),
            headers: &[],
            timestamp_ms: Some(7),
            payload: Some(payload),
        }
    }

    fn delivered() -> Processed<WireEvent> {
        Processed::Deliver(WireEvent {
            event_type: EventType::Home,
            body: br#"{"id":"e1","user_id":"ab12"}"#.to_vec(),
        })
    }

    fn rejected() -> Processed<WireEvent> {
        Processed::Reject {
            class: RejectClass::Validation,
            reason: "missing_field".into(),
            detail: "user_id: required".into(),
            schema_id: None,
        }
    }

    #[tokio::test]
    async fn a_watcher_sees_the_source_next_to_the_event_sent() {
        let tap = Arc::new(Tap::default());
        let src = source("shop", br#"{"id":"e1","email":"A@x"}"#);
        tap.offer(&src, &delivered()); // no one watching: dropped
        assert!(!tap.is_watched());
        let mut w = tap.watch(TapFilter::default()).expect("a watcher");
        assert!(tap.is_watched());
        tap.offer(&src, &delivered());
        let Seen::Record(r) = w.next().await else {
            panic!("expected a record");
        };
        assert!(r.json.ends_with(b"\n"));
        let line: serde_json::Value = serde_json::from_slice(&r.json).expect("JSON");
        assert_eq!(line["topic"], "shop");
        assert_eq!(line["partition"], 2);
        assert_eq!(line["offset"], 41);
        assert_eq!(line["key"], "k-1");
        assert_eq!(line["source"]["email"], "A@x");
        assert_eq!(line["outcome"], "deliver");
        assert_eq!(
            line["event"],
            serde_json::json!({"id": "e1", "user_id": "ab12"})
        );
        assert!(line.get("reason").is_none());
        drop(w);
        assert!(!tap.is_watched());
    }

    #[tokio::test]
    async fn rejects_carry_their_reason_and_odd_payloads_their_text() {
        let tap = Arc::new(Tap::default());
        let only_rejects = TapFilter {
            rejected_only: true,
            ..TapFilter::default()
        };
        let mut w = tap.watch(only_rejects).expect("a watcher");
        // Only rejects are wanted: an accepted message is not even built.
        tap.offer(&source("shop", b"{}"), &delivered());
        assert_eq!(tap.tx.len(), 0);
        tap.offer(&source("shop", b"{not json"), &rejected());
        let Seen::Record(line) = w.next().await else {
            panic!("expected a record");
        };
        assert!(line.rejected);
        let r = TapRecord::of(&source("shop", b"{not json"), &rejected());
        assert_eq!(r.source, serde_json::json!("{not json"));
        assert_eq!(r.outcome, "reject");
        assert_eq!(r.class, Some("validation"));
        assert_eq!(r.reason.as_deref(), Some("missing_field"));
        let big = vec![b'x'; MAX_SOURCE_BYTES + 10];
        let text = source_value(&big);
        assert!(text
            .as_str()
            .is_some_and(|t| t.ends_with(&format!("({} bytes)", big.len()))));
    }

    #[tokio::test]
    async fn a_slow_watcher_is_told_what_it_missed_and_watchers_are_bounded() {
        let tap = Arc::new(Tap::default());
        let mut w = tap.watch(TapFilter::default()).expect("a watcher");
        let src = source("shop", b"{}");
        for _ in 0..BACKLOG + 5 {
            tap.offer(&src, &delivered());
        }
        assert_eq!(w.next().await, Seen::Missed(5));
        let more: Vec<_> = (1..MAX_WATCHERS)
            .map(|_| tap.watch(TapFilter::default()))
            .collect();
        assert!(more.iter().all(Result::is_ok));
        assert_eq!(tap.watch(TapFilter::default()).err(), Some(TooManyWatchers));
        drop(more);
        drop(w);
        assert_eq!(tap.want_all.load(Ordering::Relaxed), 0);
        assert!(
            tap.watch(TapFilter::default()).is_ok(),
            "a turned-away watcher does not hold a place"
        );
    }

    #[test]
    fn the_filter_picks_topic_rejects_and_a_sample() {
        let line =
            |topic, p: &Processed<WireEvent>| TapLine::of(&TapRecord::of(&source(topic, b"{}"), p));
        let ok = line("shop", &delivered());
        let bad = line("shop", &rejected());
        let other = line("ads", &delivered());
        let f = TapFilter {
            topic: Some("shop".into()),
            ..TapFilter::default()
        };
        assert!(f.accepts(&ok) && f.accepts(&bad) && !f.accepts(&other));
        let f = TapFilter {
            rejected_only: true,
            ..TapFilter::default()
        };
        assert!(!f.accepts(&ok) && f.accepts(&bad));
        let none = TapFilter {
            sample: Some(0.0),
            ..TapFilter::default()
        };
        assert!(!(0..100).any(|_| none.accepts(&ok)));
    }
}
