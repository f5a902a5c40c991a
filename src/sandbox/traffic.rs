//! How clients reach the sandbox: connections, TLS handshake failures, requests per HTTP version,
//! and the most event requests it ever held at once.
//!
//! Tests use these to prove transport behaviour without timing anything: that a client really
//! spoke HTTP/2, or kept more requests in flight than one HTTP/2 connection's stream limit allows.
//! Like [`super::stats`], every counter is a relaxed atomic (no lock on the request path); the
//! peak is a `fetch_max` after each increment, so it is exact, not sampled.

use axum::http::Version;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The live counters.
#[derive(Debug, Default)]
pub struct Traffic {
    connections: AtomicU64,
    tls_handshake_failures: AtomicU64,
    http1_requests: AtomicU64,
    http2_requests: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// One event request being handled; counts out when dropped (also when the client went away).
#[derive(Debug)]
pub struct InFlight<'a>(&'a Traffic);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Traffic {
    /// An accepted TCP connection.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// A TLS handshake that failed or timed out (e.g. the client does not trust the certificate).
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// An event request arrived over `version`; it counts as in flight until the guard drops.
    pub fn request(&self, version: Version) -> InFlight<'_> {
        let slot = if version == Version::HTTP_2 {
            &self.http2_requests
        } else {
            &self.http1_requests
        };
        slot.fetch_add(1, Relaxed);
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        // Read first: most requests do not set a new peak, and a plain load leaves the shared
        // cache line alone.
        if self.peak_in_flight.load(Relaxed) < now {
            self.peak_in_flight.fetch_max(now, Relaxed);
        }
        InFlight(self)
    }

    /// Zeroes the counters; the peak restarts from the requests in flight now.
    pub fn reset(&self) {
        for c in [
            &self.connections,
            &self.tls_handshake_failures,
            &self.http1_requests,
            &self.http2_requests,
        ] {
            c.store(0, Relaxed);
        }
        self.peak_in_flight
            .store(self.in_flight.load(Relaxed), Relaxed);
    }

    pub fn snapshot(&self) -> TrafficStats {
        TrafficStats {
            connections_total: self.connections.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            http1_requests: self.http1_requests.load(Relaxed),
            http2_requests: self.http2_requests.load(Relaxed),
            peak_concurrent_requests: self.peak_in_flight.load(Relaxed),
        }
    }
}

/// A snapshot of [`Traffic`] (the `traffic` object of `GET /_sandbox/stats`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficStats {
    /// TCP connections accepted (on a TLS listener, also those whose handshake failed).
    pub connections_total: u64,
    pub tls_handshake_failures: u64,
    /// Requests on the event route over HTTP/1.x.
    pub http1_requests: u64,
    /// Requests on the event route over HTTP/2.
    pub http2_requests: u64,
    /// The most event requests in the handler at one moment (latency included).
    pub peak_concurrent_requests: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_requests_held_together_and_survives_their_end() {
        let t = Traffic::default();
        let a = t.request(Version::HTTP_2);
        let b = t.request(Version::HTTP_2);
        drop(a);
        let c = t.request(Version::HTTP_11);
        drop((b, c));
        t.connection();
        let s = t.snapshot();
        assert_eq!(s.peak_concurrent_requests, 2);
        assert_eq!((s.http1_requests, s.http2_requests), (1, 2));
        assert_eq!(s.connections_total, 1);
    }

    #[test]
    fn reset_restarts_the_peak_from_what_is_in_flight() {
        let t = Traffic::default();
        let held = t.request(Version::HTTP_11);
        let other = t.request(Version::HTTP_11);
        drop(other);
        t.tls_handshake_failed();
        t.reset();
        assert_eq!(
            t.snapshot(),
            TrafficStats {
                peak_concurrent_requests: 1,
                ..TrafficStats::default()
            }
        );
        drop(held);
    }
}
