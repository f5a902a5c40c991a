//! What the model checks: committed offsets, the budgets' accounting, and the two ways a
//! sequence ends (everything answered, or SIGTERM at the drain deadline).

use super::{Answer, Model};
use crate::kafka::consumer::Tp;
use crate::pipeline::core::Work;
use std::time::Duration;

impl Model {
    /// No offset passes a message taken in that generation and not finished.
    pub(super) fn check_offsets(&self, offsets: &[(Tp, i64)], what: &str) {
        for (tp, offset) in offsets {
            let p = tp.partition;
            let Some(g) = self.current(p).or_else(|| self.generation.get(&p).copied()) else {
                panic!("{what} of {tp} that was never assigned");
            };
            let taken = self.taken.get(&(p, g)).cloned().unwrap_or_default();
            let finished = self.finished.get(&(p, g)).cloned().unwrap_or_default();
            if let Some(hole) = taken.range(..offset).find(|o| !finished.contains(o)) {
                panic!("{what} of {tp} at {offset} passes offset {hole}, taken in generation {g} and not finished");
            }
            let next = self.next_offset.get(&p).copied().unwrap_or(0);
            assert!(
                *offset <= next,
                "{what} of {tp} at {offset} is past the log end {next}"
            );
        }
    }

    /// The budgets hold exactly what the core holds; request slots match running deliveries.
    pub(super) fn check_accounting(&self) {
        let c = &self.core;
        let mut in_flight = (0usize, 0u64);
        for (t, p) in &c.partitions {
            let mine = |w: &&Work<()>| &w.tp == t && w.generation == p.generation;
            let held: Vec<&Work<()>> = c
                .ready
                .iter()
                .chain(c.tasks.values())
                .chain(c.halted_work.iter())
                .chain(c.fatal.iter().flat_map(|f| f.parked()))
                .chain(c.dlq_hold.iter().flat_map(|h| h.iter()))
                .filter(mine)
                .collect();
            let messages = held.len() + p.lanes.waiting();
            let count = |it: &mut dyn Iterator<Item = &Work<()>>| it.filter(mine).count();
            assert_eq!(
                p.budget.messages(),
                messages,
                "{t}: budget counts {} messages, the core holds {messages}: ready {}, tasks {}, \
                 halted {}, fatal {}, held {}, lanes {}, parked {}",
                p.budget.messages(),
                count(&mut c.ready.iter()),
                count(&mut c.tasks.values()),
                count(&mut c.halted_work.iter()),
                count(&mut c.fatal.iter().flat_map(|f| f.parked())),
                count(&mut c.dlq_hold.iter().flat_map(|h| h.iter())),
                p.lanes.waiting(),
                count(&mut c.parked.iter()),
            );
            in_flight.0 += p.budget.messages();
            in_flight.1 += p.budget.bytes();
            let running = c.tasks.values().filter(mine).count();
            assert_eq!(p.in_flight, running, "{t}: in_flight vs running tasks");
            let requests = c.tasks.values().filter(mine).filter(|w| w.request).count();
            assert_eq!(p.requests, requests, "{t}: request slots vs deliveries");
        }
        assert_eq!(
            c.ledger.in_flight(),
            in_flight,
            "global budget vs partitions"
        );
        let parked_bytes = c.parked.iter().map(|w| w.bytes).sum();
        assert_eq!(
            c.ledger.parked(),
            (c.parked.len(), parked_bytes),
            "parked budget"
        );
        let requests = c.tasks.values().filter(|w| w.request).count();
        assert_eq!(c.requests, requests, "request slots vs delivery tasks");
    }

    /// Answers everything until nothing runs, then shuts down: what the shutdown commits passes
    /// nothing unfinished, and the budgets are back to zero once the partitions are gone.
    pub(super) fn finish(&mut self) {
        self.core.set_request_limit(3);
        self.core.on_tick(self.now, false);
        self.effects();
        let mut turns = 0;
        loop {
            turns += 1;
            if turns >= 10_000 {
                let c = &self.core;
                let ready: Vec<String> = c
                    .ready
                    .iter()
                    .map(|w| format!("{}@{}g{}", w.tp, w.offset, w.generation))
                    .collect();
                let parts: Vec<String> = c
                    .partitions
                    .iter()
                    .map(|(t, p)| {
                        format!(
                            "{t} g{} {:?} requests {} uncommitted {} oldest {:?} committed {:?}",
                            p.generation,
                            p.phase,
                            p.requests,
                            p.tracker.uncommitted(),
                            p.tracker.oldest_pending(),
                            p.tracker.committed()
                        )
                    })
                    .collect();
                let mut holders = Vec::new();
                for (t, p) in &c.partitions {
                    if let Some((o, _)) = p.tracker.oldest_pending() {
                        let is = |w: &&Work<()>| &w.tp == t && w.offset == o;
                        holders.push(format!(
                            "{t}@{o}: ready {} tasks {} parked {} halted {} fatal {} held {} lanes-waiting {}",
                            c.ready.iter().filter(is).count(),
                            c.tasks.values().filter(is).count(),
                            c.parked.iter().filter(is).count(),
                            c.halted_work.iter().filter(is).count(),
                            c.fatal.iter().flat_map(|f| f.parked()).filter(is).count(),
                            c.dlq_hold.iter().flat_map(|h| h.iter()).filter(is).count(),
                            p.lanes.waiting(),
                        ));
                    }
                }
                panic!(
                    "the core never became idle: holders {holders:?} ready {ready:?}, requests {}/{}, stalled {}, commits idle {}, partitions {parts:?}",
                    c.requests, c.request_limit, c.commits_stalled, c.commits.idle()
                );
            }
            if let Some(task) = self.tasks.pop() {
                self.answer(task, Answer::Delivered);
            } else if let Some((seq, _)) = self.commits.pop() {
                self.core
                    .on_commit_done(seq, Ok(()), Duration::ZERO, self.now);
            } else if !self.core.parked.is_empty()
                || self.core.fatal.is_some()
                // (While shutting down nothing is committed and ready work is left for the next
                // owner: the drain deadline ends it. A halt holds its partition's watermark until
                // an operator restarts the bridge, so its replay bound may keep ready work.)
                || (!self.core.ready.is_empty()
                    && !self.core.is_shutting_down()
                    && self.core.halted.is_none())
            {
                // Time passes: retries fall due, probes go out, a commit stall ends. Work left
                // ready for ever (a start condition that can never hold) fails the turn limit.
                self.now += Duration::from_secs(60);
                self.core.on_tick(self.now, false);
            } else {
                break;
            }
            self.effects();
            self.check_accounting();
        }
        self.core.begin_shutdown(self.now);
        self.effects();
        assert!(self.core.shutdown_complete(self.now) || !self.tasks.is_empty());
        let ends = self.core.final_ends();
        let offsets: Vec<(Tp, i64)> = ends
            .iter()
            .filter_map(|e| e.commit.map(|c| (e.tp.clone(), c)))
            .collect();
        self.check_offsets(&offsets, "shutdown commit");
        let tps: Vec<Tp> = self.core.partitions.keys().cloned().collect();
        self.revoke(tps, true);
        self.effects();
        assert!(self.core.partitions.is_empty());
        assert!(
            self.core.drains.is_empty(),
            "a drain outlived its partitions"
        );
        for (id, answers) in self.revokes.iter().enumerate() {
            assert_eq!(answers.1, 1, "revoke {id} got {} final answers", answers.1);
        }
        assert_eq!(
            self.core.ledger.in_flight(),
            (0, 0),
            "budget left after all partitions went"
        );
        assert_eq!(self.core.ledger.parked(), (0, 0), "parked budget left");
    }
}

impl Model {
    /// SIGTERM with deliveries still running: the drain deadline passes, what the shutdown
    /// commits passes nothing unfinished; the tasks then end cancelled (the shell cancels
    /// them), and every budget returns to zero once the partitions are gone.
    pub(super) fn finish_abruptly(&mut self) {
        self.core.begin_shutdown(self.now);
        self.effects();
        self.check_accounting();
        self.now += self.core.config.delivery.drain_timeout + Duration::from_millis(1);
        self.core.on_tick(self.now, false);
        self.effects();
        assert!(
            self.core.shutdown_complete(self.now),
            "the drain deadline passed"
        );
        let offsets: Vec<(Tp, i64)> = self
            .core
            .final_ends()
            .iter()
            .filter_map(|e| e.commit.map(|c| (e.tp.clone(), c)))
            .collect();
        self.check_offsets(&offsets, "shutdown commit at the drain deadline");
        while let Some(task) = self.tasks.pop() {
            self.answer(task, Answer::Cancelled);
            self.effects();
            self.check_accounting();
        }
        let tps: Vec<Tp> = self.core.partitions.keys().cloned().collect();
        self.revoke(tps, true);
        self.effects();
        assert_eq!(
            self.core.ledger.in_flight(),
            (0, 0),
            "budget left after all partitions went"
        );
        assert_eq!(self.core.ledger.parked(), (0, 0), "parked budget left");
    }
}
