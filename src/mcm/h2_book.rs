//! The bookkeeping of the HTTP/2 connection pool: which connection a request may use, when to open
//! another one, and when to wait for one that is being opened. Plain data, no I/O, so every
//! decision is unit-tested here; [`super::h2_pool`] performs the connects and the requests.
//!
//! Why it exists: one HTTP/2 connection carries at most the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` requests at once (often 100–256 at cloud front ends, 16 in a
//! measured nginx set-up), and hyper's pooled client opens one HTTP/2 connection per host, which
//! capped the bridge at `limit / latency` requests per second. The book hands out a stream slot
//! only where the server allows one, and opens connections until `max_in_flight` is covered.
//!
//! Guarantees, while fewer than `max_conns` connections exist: no connection is given more
//! requests than its advertised limit; a connection whose limit is not known yet (its server's
//! SETTINGS frame has not arrived) carries only the request that opened it; requests queue behind
//! a connect in progress only up to what that connection is expected to carry (the last limit a
//! server advertised, else [`ASSUMED_STREAMS`]), so a burst does not open a connection per request.
//! At `max_conns` connections a request goes to the least loaded connection anyway, where HTTP/2
//! itself queues it until a stream is free (the server's limit is still honoured on the wire).
//! Not here: timeouts (the caller bounds every request) and connection health (the connection's
//! task reports a closed connection with [`Book::remove`]).

/// What a connection whose limit is not known yet is expected to carry, for deciding how many
/// requests may wait for it: RFC 9113 §6.5.2 recommends servers allow at least 100.
pub const ASSUMED_STREAMS: usize = 100;

/// One open connection.
#[derive(Debug)]
struct Entry<H> {
    id: u64,
    handle: H,
    in_flight: usize,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`; `None` until its SETTINGS frame arrived.
    limit: Option<usize>,
}

impl<H> Entry<H> {
    /// Requests this connection may carry now.
    fn capacity(&self) -> usize {
        self.limit.unwrap_or(1)
    }
}

/// What a request should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice<H> {
    /// Send on this connection; one of its slots is now the caller's (give it back with
    /// [`Book::release`]).
    Use { id: u64, handle: H },
    /// Open a connection; report the result with [`Book::connected`] or [`Book::connect_failed`].
    Connect,
    /// Wait until the book changes, then choose again; call [`Book::stop_waiting`] after waking.
    /// `failures` is the count of failed connects so far: if it has grown when the caller wakes,
    /// the connect it waited for failed.
    Wait { failures: u64 },
}

/// See the module docs. `H` is what a request needs to use a connection (a cloneable sender).
#[derive(Debug)]
pub struct Book<H> {
    conns: Vec<Entry<H>>,
    connecting: usize,
    waiting: usize,
    /// The most recent limit a server advertised on any connection of this pool.
    last_limit: Option<usize>,
    max_conns: usize,
    next_id: u64,
    failures: u64,
}

impl<H: Clone> Book<H> {
    /// A pool that opens at most `max_conns` connections (at least one).
    pub fn new(max_conns: usize) -> Book<H> {
        Book {
            conns: Vec::new(),
            connecting: 0,
            waiting: 0,
            last_limit: None,
            max_conns: max_conns.max(1),
            next_id: 0,
            failures: 0,
        }
    }

    /// Decides for one request, and books what it decided (a slot, a connect or a waiter).
    pub fn choose(&mut self) -> Choice<H> {
        // The oldest connection with a free slot: packing requests onto few connections lets
        // the others go idle (and be closed by the server) after a burst.
        if let Some(e) = self.conns.iter_mut().find(|e| e.in_flight < e.capacity()) {
            e.in_flight += 1;
            return Choice::Use {
                id: e.id,
                handle: e.handle.clone(),
            };
        }
        let per_conn = self.last_limit.unwrap_or(ASSUMED_STREAMS);
        // Connections that will soon have more room: connects in progress, and open ones
        // whose limit is not known yet. The request that opened each has its first slot.
        let pending = self.connecting + self.conns.iter().filter(|e| e.limit.is_none()).count();
        if self.waiting < pending.saturating_mul(per_conn.saturating_sub(1)) {
            self.waiting += 1;
            return Choice::Wait {
                failures: self.failures,
            };
        }
        if self.conns.len() + self.connecting < self.max_conns {
            self.connecting += 1;
            return Choice::Connect;
        }
        match self.conns.iter_mut().min_by_key(|e| e.in_flight) {
            Some(e) => {
                e.in_flight += 1;
                Choice::Use {
                    id: e.id,
                    handle: e.handle.clone(),
                }
            }
            // Only connects in progress: wait for them.
            None => {
                self.waiting += 1;
                Choice::Wait {
                    failures: self.failures,
                }
            }
        }
    }

    /// A connect finished: the connection joins the pool carrying the request that opened it.
    /// Returns the connection's id.
    pub fn connected(&mut self, handle: H) -> u64 {
        self.connecting = self.connecting.saturating_sub(1);
        let id = self.next_id;
        self.next_id += 1;
        self.conns.push(Entry {
            id,
            handle,
            in_flight: 1,
            limit: None,
        });
        id
    }

    /// A connect failed; waiters see `failures` grow.
    pub fn connect_failed(&mut self) {
        self.connecting = self.connecting.saturating_sub(1);
        self.failures += 1;
    }

    /// The count of failed connects so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// A waiter woke up (or gave up).
    pub fn stop_waiting(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// The server of connection `id` advertised `limit` concurrent streams.
    pub fn set_limit(&mut self, id: u64, limit: usize) {
        if let Some(e) = self.conns.iter_mut().find(|e| e.id == id) {
            e.limit = Some(limit);
            self.last_limit = Some(limit);
        }
    }

    /// A request on connection `id` finished. Returns whether anyone is waiting (then wake them:
    /// the slot may serve one of them sooner than a connect in progress).
    pub fn release(&mut self, id: u64) -> bool {
        if let Some(e) = self.conns.iter_mut().find(|e| e.id == id) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
        self.waiting > 0
    }

    /// Connection `id` is closed (or closing): no request is given to it any more. Requests still
    /// on it release into nothing.
    pub fn remove(&mut self, id: u64) {
        self.conns.retain(|e| e.id != id);
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handle in tests: nothing, the id is what matters.
    type TestBook = Book<()>;

    fn used(c: Choice<()>) -> u64 {
        match c {
            Choice::Use { id, .. } => id,
            other => panic!("expected a slot, got {other:?}"),
        }
    }

    #[test]
    fn first_request_connects_and_a_burst_waits_for_that_connection() {
        let mut b = TestBook::new(64);
        assert_eq!(b.choose(), Choice::Connect);
        // With no limit known, a new connection is expected to carry ASSUMED_STREAMS.
        for _ in 0..ASSUMED_STREAMS - 1 {
            assert_eq!(b.choose(), Choice::Wait { failures: 0 });
        }
        assert_eq!(
            b.choose(),
            Choice::Connect,
            "the burst outgrew one connection"
        );
    }

    #[test]
    fn connection_of_unknown_limit_carries_only_its_opener_until_settings_arrive() {
        let mut b = TestBook::new(64);
        assert_eq!(b.choose(), Choice::Connect);
        let id = b.connected(());
        assert!(matches!(b.choose(), Choice::Wait { .. }));
        b.stop_waiting();
        b.set_limit(id, 4);
        for _ in 0..3 {
            assert_eq!(used(b.choose()), id);
        }
        assert_eq!(b.choose(), Choice::Connect, "4 streams used: a second one");
    }

    #[test]
    fn never_more_requests_on_a_connection_than_its_server_allows() {
        // 32 requests against a server allowing 4 streams: 8 connections, 4 each.
        let mut b = TestBook::new(32);
        let mut slots = std::collections::BTreeMap::<u64, usize>::new();
        let mut granted = 0;
        while granted < 32 {
            match b.choose() {
                Choice::Use { id, .. } => {
                    *slots.entry(id).or_default() += 1;
                    granted += 1;
                }
                Choice::Connect => {
                    let id = b.connected(());
                    b.set_limit(id, 4);
                    *slots.entry(id).or_default() += 1;
                    granted += 1;
                }
                Choice::Wait { .. } => {
                    // Nothing is pending here (every connect completes at once), so a wait
                    // would never end.
                    panic!("waited with nothing pending: {b:?}")
                }
            }
        }
        assert_eq!(b.connections(), 8);
        assert!(slots.values().all(|n| *n == 4), "{slots:?}");
    }

    #[test]
    fn waiters_per_pending_connect_follow_the_last_advertised_limit() {
        let mut b = TestBook::new(64);
        assert_eq!(b.choose(), Choice::Connect);
        let first = b.connected(());
        b.set_limit(first, 4);
        for _ in 0..3 {
            used(b.choose());
        }
        // Full; the next connect is expected to carry 4 too: its opener and 3 waiters.
        assert_eq!(b.choose(), Choice::Connect);
        for _ in 0..3 {
            assert!(matches!(b.choose(), Choice::Wait { .. }));
        }
        assert_eq!(b.choose(), Choice::Connect);
    }

    #[test]
    fn a_limit_of_one_never_makes_requests_wait_for_a_connect() {
        let mut b = TestBook::new(8);
        assert_eq!(b.choose(), Choice::Connect);
        let id = b.connected(());
        b.set_limit(id, 1);
        assert_eq!(b.choose(), Choice::Connect);
        assert_eq!(b.choose(), Choice::Connect);
    }

    #[test]
    fn at_the_connection_cap_requests_go_to_the_least_loaded_connection() {
        let mut b = TestBook::new(2);
        assert_eq!(b.choose(), Choice::Connect);
        let a = b.connected(());
        b.set_limit(a, 2);
        used(b.choose());
        assert_eq!(b.choose(), Choice::Connect);
        let c = b.connected(());
        b.set_limit(c, 2);
        assert_eq!(used(b.choose()), c);
        // Both full (2 + 2) and no room for a third connection: over-commit, least loaded first.
        b.release(a);
        assert_eq!(used(b.choose()), a, "a has a free slot again");
        assert_eq!(used(b.choose()), a, "tie: the first least loaded");
        assert_eq!(used(b.choose()), c);
    }

    #[test]
    fn removed_connection_gets_no_requests_and_its_releases_are_ignored() {
        let mut b = TestBook::new(4);
        assert_eq!(b.choose(), Choice::Connect);
        let a = b.connected(());
        b.set_limit(a, 10);
        used(b.choose());
        b.remove(a);
        assert!(!b.release(a));
        assert_eq!(b.connections(), 0);
        assert_eq!(b.choose(), Choice::Connect);
    }

    #[test]
    fn failed_connect_is_visible_to_its_waiters() {
        let mut b = TestBook::new(4);
        assert_eq!(b.choose(), Choice::Connect);
        let Choice::Wait { failures } = b.choose() else {
            panic!("expected to wait for the connect")
        };
        b.connect_failed();
        b.stop_waiting();
        assert!(b.failures() > failures);
        // Nothing pending now: the next request connects itself.
        assert_eq!(b.choose(), Choice::Connect);
    }

    #[test]
    fn release_reports_waiters() {
        let mut b = TestBook::new(4);
        assert_eq!(b.choose(), Choice::Connect);
        let a = b.connected(());
        assert!(!b.release(a), "nobody waits");
        assert_eq!(used(b.choose()), a);
        assert!(
            matches!(b.choose(), Choice::Wait { .. }),
            "a's limit is not known yet"
        );
        assert!(b.release(a));
    }
}
