//! Precise answer delays for the sandbox's `latency` fault.
//!
//! tokio's timer counts whole milliseconds and rounds every deadline up to the next tick, and its
//! driver then parks in `epoll_wait`, whose timeout is again whole milliseconds rounded up: a
//! `tokio::time::sleep(50ms)` answer took 52.2 ms on average through curl on an idle machine
//! (20 requests). The benchmark's slow-sink row compares the bridge with Little's law at exactly
//! `latency` (512 / 50 ms), so that slop would be charged to the bridge as lost throughput.
//!
//! Here one thread holds every pending answer in a deadline heap and sleeps on a condition
//! variable (a futex wait with a nanosecond deadline; Linux adds at most its 50 µs timer slack),
//! then releases every answer that is due at once. Guarantee: an answer is never released early
//! (`Instant::now() >= deadline` when released). Not guaranteed: an upper bound, which depends on
//! how soon the machine runs the thread and then the waiting task.
//!
//! The thread starts with the first delayed answer (most sandboxes, in tests, never delay) and
//! ends when the [`DelayTimer`] is dropped. If it cannot be started, or has gone, a delay falls
//! back to tokio's timer, which is coarser but never early either.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Delays answers with sub-millisecond precision (see the module docs).
#[derive(Default)]
pub struct DelayTimer {
    inner: Arc<Inner>,
    /// Whether the timer thread started (set once, by the first delay).
    started: OnceLock<bool>,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    /// Tie-breaker so equal deadlines are released in arrival order.
    next_seq: u64,
    closed: bool,
}

struct Pending {
    deadline: Instant,
    seq: u64,
    release: oneshot::Sender<()>,
}

impl Pending {
    fn key(&self) -> (Instant, u64) {
        (self.deadline, self.seq)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl Inner {
    /// The queue stays consistent whatever a panicking holder was doing (every change is one
    /// push or pop), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the queue and wakes the thread so it ends. Pending answers are released by dropping
    /// their senders, and each of them finishes its wait on tokio's timer.
    fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.heap.clear();
        drop(queue);
        self.changed.notify_one();
    }

    /// The timer thread: release what is due, then sleep until the next deadline or a change.
    fn run(&self) {
        let mut due = Vec::new();
        let mut queue = self.lock();
        loop {
            if queue.closed {
                return;
            }
            let now = Instant::now();
            while queue
                .heap
                .peek()
                .is_some_and(|Reverse(p)| p.deadline <= now)
            {
                if let Some(Reverse(p)) = queue.heap.pop() {
                    due.push(p.release);
                }
            }
            if !due.is_empty() {
                // Released outside the lock: waking a task must not hold up new arrivals.
                drop(queue);
                for release in due.drain(..) {
                    // The answer's request may have been dropped (client gone): nothing to do.
                    let _ = release.send(());
                }
                queue = self.lock();
                continue;
            }
            queue = match queue.heap.peek() {
                Some(Reverse(next)) => {
                    let wait = next.deadline.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            };
        }
    }
}

impl DelayTimer {
    /// Waits `delay` (never less). Zero returns at once.
    pub async fn sleep(&self, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        let deadline = Instant::now() + delay;
        if !self.ensure_thread() {
            return tokio::time::sleep_until(deadline.into()).await;
        }
        let (release, released) = oneshot::channel();
        if !self.enqueue(deadline, release) {
            return tokio::time::sleep_until(deadline.into()).await;
        }
        if released.await.is_err() {
            // The thread ended (the timer is being dropped): finish the wait on tokio's timer.
            tokio::time::sleep_until(deadline.into()).await;
        }
    }

    /// Queues an answer for the timer thread; false when the timer is closed. (Kept out of the
    /// async fn so no lock guard lives across an await.)
    fn enqueue(&self, deadline: Instant, release: oneshot::Sender<()>) -> bool {
        let mut queue = self.inner.lock();
        if queue.closed {
            return false;
        }
        let seq = queue.next_seq;
        queue.next_seq = queue.next_seq.wrapping_add(1);
        let earliest = queue
            .heap
            .peek()
            .is_none_or(|Reverse(p)| deadline < p.deadline);
        queue.heap.push(Reverse(Pending {
            deadline,
            seq,
            release,
        }));
        // With a constant latency every new deadline is the latest one, so the thread is woken
        // only when the queue was empty, not once per request.
        if earliest {
            self.inner.changed.notify_one();
        }
        true
    }

    fn ensure_thread(&self) -> bool {
        *self.started.get_or_init(|| {
            let inner = Arc::clone(&self.inner);
            std::thread::Builder::new()
                .name("sandbox-delay".into())
                .spawn(move || inner.run())
                .is_ok()
        })
    }
}

impl std::fmt::Debug for DelayTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayTimer")
            .field("pending", &self.inner.lock().heap.len())
            .finish()
    }
}

impl Drop for DelayTimer {
    fn drop(&mut self) {
        self.inner.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_are_never_released_before_their_delay() {
        let timer = Arc::new(DelayTimer::default());
        let mut tasks = Vec::new();
        // Deadlines arrive out of order, so the heap (not arrival order) decides.
        for i in 0..200u64 {
            let timer = Arc::clone(&timer);
            let delay = Duration::from_micros(2_000 + (i * 7_919) % 20_000);
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                timer.sleep(delay).await;
                (started.elapsed(), delay)
            }));
        }
        for task in tasks {
            let (took, delay) = task.await.expect("task");
            assert!(took >= delay, "released after {took:?}, asked {delay:?}");
        }
    }

    #[tokio::test]
    async fn zero_delay_returns_without_starting_the_thread() {
        let timer = DelayTimer::default();
        timer.sleep(Duration::ZERO).await;
        assert!(timer.started.get().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_outlives_the_timer_being_dropped() {
        let timer = Arc::new(DelayTimer::default());
        let waiting = {
            let timer = Arc::clone(&timer);
            tokio::spawn(async move {
                let started = Instant::now();
                timer.sleep(Duration::from_millis(30)).await;
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        // The spawned task holds the other reference, so close the queue as the drop does.
        timer.inner.close();
        let took = waiting.await.expect("task");
        assert!(
            took >= Duration::from_millis(30),
            "released early: {took:?}"
        );
    }
}
