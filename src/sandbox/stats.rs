//! Request accounting: lock-free counters on the request path, a typed snapshot for
//! `GET /_sandbox/stats` and [`super::SandboxHandle::stats`].
//!
//! Every counter is a relaxed atomic in a fixed slot (event types, reject reasons and fault kinds
//! are closed sets), so counting never takes a lock or allocates. A snapshot reads the counters one
//! by one: under concurrent load it is not a single instant (e.g. `accepted_total` may be one
//! ahead of the per-type sum); at rest it is exact.

use super::body::{RejectReason, ShapeReason};
use super::traffic::TrafficStats;
use crate::mcm::event::EventType;
use crate::mcm::validate::Reason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An injected fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 500 from `fail_rate`.
    Fail,
    /// 429 from `throttle_rate`.
    Throttle,
    /// 503 during an outage.
    Outage,
}

impl FaultKind {
    const ALL: [FaultKind; 3] = [FaultKind::Fail, FaultKind::Throttle, FaultKind::Outage];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Fail => "fail_500",
            FaultKind::Throttle => "throttle_429",
            FaultKind::Outage => "outage_503",
        }
    }
}

/// An authentication or routing refusal on the event route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    MissingKey,
    WrongKey,
    UnknownPlatform,
}

impl AuthFailure {
    const ALL: [AuthFailure; 3] = [
        AuthFailure::MissingKey,
        AuthFailure::WrongKey,
        AuthFailure::UnknownPlatform,
    ];

    pub fn status(self) -> u16 {
        match self {
            AuthFailure::MissingKey => 401,
            AuthFailure::WrongKey => 403,
            AuthFailure::UnknownPlatform => 404,
        }
    }
}

const REASONS: usize = ShapeReason::ALL.len() + Reason::ALL.len();

fn reason_slot(r: RejectReason) -> usize {
    match r {
        RejectReason::Shape(s) => s as usize,
        RejectReason::Rule(r) => ShapeReason::ALL.len() + r as usize,
    }
}

fn type_slot(t: EventType) -> usize {
    t as usize
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    accepted_by_type: [AtomicU64; EventType::ALL.len()],
    rejected_by_reason: [AtomicU64; REASONS],
    auth: [AtomicU64; AuthFailure::ALL.len()],
    faults: [AtomicU64; FaultKind::ALL.len()],
    duplicate_ids: AtomicU64,
    unique_ids: AtomicU64,
    method_not_allowed: AtomicU64,
    record_errors: AtomicU64,
    /// Unix ms of the first and the latest answered event (200 or 400), 0 = none yet: a
    /// benchmark reads its start and end from here instead of polling the counters often.
    first_answer_ms: AtomicU64,
    last_answer_ms: AtomicU64,
}

impl Counters {
    /// Counts a request on the event route.
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Counts an accepted event; `new_id` is `Some(true)` for a first-seen id, `Some(false)` for a
    /// duplicate and `None` when the event had no id.
    pub fn accepted(&self, t: EventType, new_id: Option<bool>) {
        self.answered_now();
        self.accepted.fetch_add(1, Relaxed);
        self.accepted_by_type[type_slot(t)].fetch_add(1, Relaxed);
        match new_id {
            Some(true) => self.unique_ids.fetch_add(1, Relaxed),
            Some(false) => self.duplicate_ids.fetch_add(1, Relaxed),
            None => 0,
        };
    }

    /// Counts a rejected body once, and each of its reasons once.
    pub fn rejected(&self, reasons: impl IntoIterator<Item = RejectReason>) {
        self.answered_now();
        self.rejected.fetch_add(1, Relaxed);
        for r in reasons {
            self.rejected_by_reason[reason_slot(r)].fetch_add(1, Relaxed);
        }
    }

    /// Stamps an answer's time. Called before the answer is counted, so whoever sees the count
    /// reach N also sees a `last_answer` at least as late as the N-th answer's (give or take
    /// another request answered at the same moment). Both stamps are read before they are
    /// written: at benchmark rates most answers fall in a millisecond already stamped, and a
    /// plain load leaves the shared cache line alone.
    fn answered_now(&self) {
        let now = u64::try_from(crate::mcm::validate::now_ms()).unwrap_or(0);
        if self.first_answer_ms.load(Relaxed) == 0 {
            // Only the first stamp sticks; a failed exchange just means someone was earlier.
            let _ = self
                .first_answer_ms
                .compare_exchange(0, now, Relaxed, Relaxed);
        }
        if self.last_answer_ms.load(Relaxed) < now {
            self.last_answer_ms.fetch_max(now, Relaxed);
        }
    }

    /// Events answered so far (accepted + rejected).
    pub fn answered(&self) -> u64 {
        self.accepted.load(Relaxed) + self.rejected.load(Relaxed)
    }

    pub fn auth_failure(&self, f: AuthFailure) {
        self.auth[f as usize].fetch_add(1, Relaxed);
    }

    pub fn fault(&self, f: FaultKind) {
        self.faults[f as usize].fetch_add(1, Relaxed);
    }

    pub fn method_not_allowed(&self) {
        self.method_not_allowed.fetch_add(1, Relaxed);
    }

    pub fn record_error(&self) {
        self.record_errors.fetch_add(1, Relaxed);
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        let singles = [
            &self.requests,
            &self.accepted,
            &self.rejected,
            &self.duplicate_ids,
            &self.unique_ids,
            &self.method_not_allowed,
            &self.record_errors,
            &self.first_answer_ms,
            &self.last_answer_ms,
        ];
        let slots = self
            .accepted_by_type
            .iter()
            .chain(&self.rejected_by_reason)
            .chain(&self.auth)
            .chain(&self.faults);
        for c in singles.into_iter().chain(slots) {
            c.store(0, Relaxed);
        }
    }

    /// A snapshot; maps list only non-zero entries so that the JSON stays readable.
    pub fn snapshot(&self) -> SandboxStats {
        let mut rejected_by_reason = BTreeMap::new();
        let all_reasons = ShapeReason::ALL
            .into_iter()
            .map(RejectReason::Shape)
            .chain(Reason::ALL.into_iter().map(RejectReason::Rule));
        for r in all_reasons {
            let n = self.rejected_by_reason[reason_slot(r)].load(Relaxed);
            if n > 0 {
                *rejected_by_reason.entry(r.code().to_string()).or_insert(0) += n;
            }
        }
        SandboxStats {
            requests_total: self.requests.load(Relaxed),
            accepted_total: self.accepted.load(Relaxed),
            rejected_total: self.rejected.load(Relaxed),
            accepted_by_type: nonzero(EventType::ALL.map(|t| {
                (
                    t.as_str().to_string(),
                    self.accepted_by_type[type_slot(t)].load(Relaxed),
                )
            })),
            rejected_by_reason,
            auth_failures: nonzero(
                AuthFailure::ALL
                    .map(|f| (f.status().to_string(), self.auth[f as usize].load(Relaxed))),
            ),
            duplicate_ids: self.duplicate_ids.load(Relaxed),
            unique_ids: self.unique_ids.load(Relaxed),
            faults: nonzero(
                FaultKind::ALL
                    .map(|f| (f.name().to_string(), self.faults[f as usize].load(Relaxed))),
            ),
            method_not_allowed: self.method_not_allowed.load(Relaxed),
            record_errors: self.record_errors.load(Relaxed),
            first_answer_unix_ms: nonzero_ms(&self.first_answer_ms),
            last_answer_unix_ms: nonzero_ms(&self.last_answer_ms),
            // Counted apart from the answers; `Shared::snapshot` fills it in.
            traffic: TrafficStats::default(),
        }
    }
}

fn nonzero_ms(stamp: &AtomicU64) -> Option<u64> {
    Some(stamp.load(Relaxed)).filter(|ms| *ms > 0)
}

fn nonzero<const N: usize>(entries: [(String, u64); N]) -> BTreeMap<String, u64> {
    entries.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// A snapshot of the counters (the JSON of `GET /_sandbox/stats`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SandboxStats {
    /// Requests on the event route (any method that reached the POST handler).
    pub requests_total: u64,
    /// 200 answers.
    pub accepted_total: u64,
    /// 400 answers.
    pub rejected_total: u64,
    /// Accepted events by `event_type` wire name.
    pub accepted_by_type: BTreeMap<String, u64>,
    /// Rejections by reason code; a body with several problems counts once per reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// 401 / 403 / 404 answers by status.
    pub auth_failures: BTreeMap<String, u64>,
    /// Accepted events whose `id` had been accepted before.
    pub duplicate_ids: u64,
    /// Distinct `id`s accepted.
    pub unique_ids: u64,
    /// Injected faults by kind (`fail_500`, `throttle_429`, `outage_503`).
    pub faults: BTreeMap<String, u64>,
    /// 405 answers on the event path.
    pub method_not_allowed: u64,
    /// Recorder write/flush failures (the file may be missing events when this is non-zero).
    pub record_errors: u64,
    /// When the first event was answered (200 or 400), Unix ms; absent before any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_unix_ms: Option<u64>,
    /// When the latest event was answered, Unix ms: a run's end, once every event is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answer_unix_ms: Option<u64>,
    /// Connections, HTTP versions and peak concurrency (see [`super::traffic`]).
    #[serde(default)]
    pub traffic: TrafficStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_groups_by_type_reason_status_and_fault() {
        let c = Counters::default();
        for _ in 0..3 {
            c.request();
        }
        c.accepted(EventType::Purchase, Some(true));
        c.accepted(EventType::Purchase, Some(false));
        c.accepted(EventType::Home, None);
        c.rejected([
            RejectReason::Rule(Reason::NoIdentifier),
            RejectReason::Rule(Reason::MissingPageId),
        ]);
        c.rejected([RejectReason::Shape(ShapeReason::InvalidJson)]);
        c.rejected([RejectReason::Rule(Reason::NoIdentifier)]);
        c.auth_failure(AuthFailure::WrongKey);
        c.fault(FaultKind::Throttle);
        c.fault(FaultKind::Throttle);

        let s = c.snapshot();
        assert_eq!(s.requests_total, 3);
        assert_eq!(s.accepted_total, 3);
        assert_eq!(s.rejected_total, 3);
        assert_eq!(s.accepted_by_type.get("PURCHASE"), Some(&2));
        assert_eq!(s.accepted_by_type.get("HOME"), Some(&1));
        assert_eq!(s.accepted_by_type.get("SEARCH"), None);
        assert_eq!(s.rejected_by_reason.get("no_identifier"), Some(&2));
        assert_eq!(s.rejected_by_reason.get("missing_page_id"), Some(&1));
        assert_eq!(s.rejected_by_reason.get("invalid_json"), Some(&1));
        assert_eq!(s.auth_failures.get("403"), Some(&1));
        assert_eq!(s.faults.get("throttle_429"), Some(&2));
        assert_eq!((s.unique_ids, s.duplicate_ids), (1, 1));
        let (first, last) = (s.first_answer_unix_ms, s.last_answer_unix_ms);
        assert!(
            first.is_some_and(|f| last.is_some_and(|l| f <= l)),
            "{first:?} {last:?}"
        );
        assert_eq!(c.answered(), 6);
    }

    #[test]
    fn no_answer_means_no_timestamps() {
        let c = Counters::default();
        c.request();
        c.auth_failure(AuthFailure::WrongKey);
        c.fault(FaultKind::Fail);
        let s = c.snapshot();
        assert_eq!(
            (s.first_answer_unix_ms, s.last_answer_unix_ms),
            (None, None)
        );
        assert_eq!(c.answered(), 0);
    }

    #[test]
    fn reset_zeroes_everything() {
        let c = Counters::default();
        c.request();
        c.accepted(EventType::Search, Some(true));
        c.rejected([RejectReason::Shape(ShapeReason::MissingTimestamp)]);
        c.auth_failure(AuthFailure::MissingKey);
        c.fault(FaultKind::Outage);
        c.method_not_allowed();
        c.record_error();
        c.reset();
        assert_eq!(c.snapshot(), SandboxStats::default());
    }

    #[test]
    fn every_reason_has_its_own_slot() {
        let c = Counters::default();
        let all: Vec<RejectReason> = ShapeReason::ALL
            .into_iter()
            .map(RejectReason::Shape)
            .chain(Reason::ALL.into_iter().map(RejectReason::Rule))
            .collect();
        c.rejected(all.iter().copied());
        let s = c.snapshot();
        assert_eq!(s.rejected_by_reason.len(), all.len());
        assert!(s.rejected_by_reason.values().all(|n| *n == 1));
    }
}
