//! The inputs the model test drives the core with, and how they are generated.

use proptest::prelude::*;

pub(super) const PARTITIONS: i32 = 3;

/// What a message maps to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Maps {
    /// Deliverable, with one of a few keys (ordering lanes) or none.
    Deliver(Option<u8>),
    Filtered,
    Rejected,
}

/// How a task is answered.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    Delivered,
    Undeliverable,
    Fatal,
    RetryAfter(u16),
    Cancelled,
    Inconclusive,
    Written,
    DlqTransient,
    DlqDenied,
    DlqUnwritable,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Assign(i32),
    Revoke(i32, bool),
    Message(i32, Maps),
    /// A message below the partition's last offset: the log was replaced (a rewind).
    Rewind(i32, Maps),
    /// Answer the `n`-th running task (modulo how many run).
    Answer(usize, Answer),
    /// Answer a task that was answered already.
    Duplicate(usize),
    Commit(usize, bool),
    Tick(u16, bool),
    Positions,
    RefusePauses,
    RequestLimit(usize),
    Denied,
    Shutdown,
}

pub(super) fn maps() -> impl Strategy<Value = Maps> {
    prop_oneof![
        6 => proptest::option::of(0u8..3).prop_map(Maps::Deliver),
        1 => Just(Maps::Filtered),
        1 => Just(Maps::Rejected),
    ]
}

pub(super) fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        8 => Just(Answer::Delivered),
        2 => Just(Answer::Undeliverable),
        1 => Just(Answer::Fatal),
        2 => (1u16..3000).prop_map(Answer::RetryAfter),
        1 => Just(Answer::Cancelled),
        1 => Just(Answer::Inconclusive),
        4 => Just(Answer::Written),
        1 => Just(Answer::DlqTransient),
        1 => Just(Answer::DlqDenied),
        1 => Just(Answer::DlqUnwritable),
    ]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let p = 0..PARTITIONS;
    prop_oneof![
        3 => p.clone().prop_map(Op::Assign),
        1 => (p.clone(), any::<bool>()).prop_map(|(p, lost)| Op::Revoke(p, lost)),
        12 => (p.clone(), maps()).prop_map(|(p, m)| Op::Message(p, m)),
        1 => (p, maps()).prop_map(|(p, m)| Op::Rewind(p, m)),
        12 => (any::<usize>(), answer()).prop_map(|(n, a)| Op::Answer(n, a)),
        1 => any::<usize>().prop_map(Op::Duplicate),
        3 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(n, ok)| Op::Commit(n, ok)),
        3 => (0u16..6000, prop::bool::weighted(0.1)).prop_map(|(ms, open)| Op::Tick(ms, open)),
        1 => Just(Op::Positions),
        1 => Just(Op::RefusePauses),
        1 => (1usize..6).prop_map(Op::RequestLimit),
        1 => Just(Op::Denied),
    ]
}
