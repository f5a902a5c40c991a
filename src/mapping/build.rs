//! Building a [`Doc`]: values are appended to one node vector as they are read, by the
//! projected reader (`scan.rs`) and by the serde_json decoders (`doc.rs`, `need.rs`).
//!
//! A container's direct contents must be contiguous, so array elements and whole-object members
//! are collected on a stack while their own contents are appended, and moved into place when the
//! container closes; a projected object knows its slot count when it opens, so its slots are
//! reserved there. The vectors outlive the document: when it is dropped they are emptied and
//! kept, per thread, for the next message.

use super::doc::{Doc, Node};
use super::need::Need;
use std::cell::Cell;
use std::thread::LocalKey;

/// Where a value being read goes: a projected object's slot among the nodes, or an array
/// element or whole-object member on the builder's stack.
#[derive(Debug, Clone, Copy)]
pub(super) enum Place {
    Node(usize),
    Stack(usize),
}

/// Builds a [`Doc`]: values are appended to one node vector; a container's direct contents must
/// be contiguous, so array elements and whole-object members are collected on a stack while
/// their own contents are appended, and moved into place when the container closes. A
/// projected object knows its slot count when it opens, so its slots are reserved there.
pub(super) struct Builder<'a> {
    nodes: Vec<Node<'a>>,
    stack: Vec<Node<'a>>,
}

impl<'a> Builder<'a> {
    /// A builder with room for `nodes` nodes, in the vectors the last document built on this
    /// thread left behind when there are.
    pub(super) fn with_capacity(nodes: usize) -> Builder<'a> {
        // `Node<'static>` is a `Node<'a>`: a spare vector is used as it is.
        let mut b = Builder {
            nodes: SPARE_NODES.with(Cell::take),
            stack: SPARE_STACK.with(Cell::take),
        };
        b.nodes.reserve(nodes);
        b
    }

    /// Reserves the slots of a projected object (all absent) and returns where they start.
    #[inline]
    pub(super) fn open_proj(&mut self, need: &Need) -> usize {
        let start = self.nodes.len();
        // `resize_with`, not `resize`: cloning a `Node` per slot costs more than building it.
        self.nodes.resize_with(start + need.len(), || Node::Null);
        start
    }

    /// Fills slot `at` (reserved by [`Builder::open_proj`]).
    #[inline]
    pub(super) fn set(&mut self, at: usize, v: Node<'a>) {
        if let Some(slot) = self.nodes.get_mut(at) {
            *slot = v;
        }
    }

    /// Adds an array element or a whole object's member value, `Null` until it is read, and
    /// says where it is.
    #[inline]
    pub(super) fn push_place(&mut self) -> Place {
        self.stack.push(Node::Null);
        Place::Stack(self.stack.len() - 1)
    }

    /// The node at `at`, to write a value into.
    #[inline]
    pub(super) fn place(&mut self, at: Place) -> Option<&mut Node<'a>> {
        match at {
            Place::Node(i) => self.nodes.get_mut(i),
            Place::Stack(i) => self.stack.get_mut(i),
        }
    }

    /// Where the next container's contents start on the stack.
    #[inline]
    pub(super) fn mark(&self) -> usize {
        self.stack.len()
    }

    /// Adds an array element, or a whole object's member name or value.
    #[inline]
    pub(super) fn push(&mut self, v: Node<'a>) {
        self.stack.push(v);
    }

    /// Closes the array whose elements were pushed since `mark`.
    #[inline]
    pub(super) fn close_arr(&mut self, mark: usize) -> Node<'a> {
        let (start, len) = self.unstack(mark);
        Node::Arr { start, len }
    }

    /// Closes the whole object whose names and values were pushed (alternately) since `mark`.
    pub(super) fn close_obj(&mut self, mark: usize) -> Node<'a> {
        let (start, len) = self.unstack(mark);
        Node::Obj {
            start,
            len: len / 2,
        }
    }

    fn unstack(&mut self, mark: usize) -> (usize, usize) {
        let start = self.nodes.len();
        let from = mark.min(self.stack.len());
        self.nodes.extend(self.stack.drain(from..));
        (start, self.nodes.len() - start)
    }

    pub(super) fn finish(mut self, root: Node<'a>) -> Doc<'a> {
        Doc::new(root, std::mem::take(&mut self.nodes))
    }
}

/// What a builder still holds (its stack; its nodes when it did not finish) is kept for the next.
impl Drop for Builder<'_> {
    fn drop(&mut self) {
        recycle(&SPARE_STACK, std::mem::take(&mut self.stack));
        recycle_nodes(std::mem::take(&mut self.nodes));
    }
}

/// Vectors larger than this many nodes (32 KiB) are freed, not kept: one unusually large message
/// must not pin its memory on a thread for good.
const MAX_SPARE: usize = 1024;

thread_local! {
    /// The node vector and stack of the last document built on this thread, emptied, for the
    /// next one: decoding a message then allocates nothing for its nodes (two allocations and two
    /// frees fewer per message, a few percent of the mapping's time).
    static SPARE_NODES: Cell<Vec<Node<'static>>> = const { Cell::new(Vec::new()) };
    static SPARE_STACK: Cell<Vec<Node<'static>>> = const { Cell::new(Vec::new()) };
}

/// Keeps a document's node vector for the next one (see [`SPARE_NODES`]).
pub(super) fn recycle_nodes(v: Vec<Node<'_>>) {
    recycle(&SPARE_NODES, v);
}

fn recycle(spare: &'static LocalKey<Cell<Vec<Node<'static>>>>, mut v: Vec<Node<'_>>) {
    if v.capacity() == 0 || v.capacity() > MAX_SPARE {
        return;
    }
    v.clear();
    // Emptied, the vector borrows nothing; collecting its (no) elements as `Node<'static>`
    // gives it that type in safe code, and std collects a vector's own iterator in place, so
    // the allocation is kept (`recycled_vectors_keep_their_allocation` checks it).
    let v: Vec<Node<'static>> = v.into_iter().map(|_| Node::Null).collect();
    spare.with(|c| c.set(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn recycled_vectors_keep_their_allocation() {
        let text = String::from("borrowed");
        let mut b = Builder::with_capacity(40);
        let mark = b.mark();
        b.push(Node::Str(Cow::Borrowed(&text)));
        b.push(Node::Str(Cow::Owned("owned".into())));
        let arr = b.close_arr(mark);
        let doc = b.finish(arr);
        let (ptr, cap) = (doc.nodes().as_ptr() as usize, doc.nodes().capacity());
        assert!(cap >= 40);
        drop(doc);
        drop(text);
        let b = Builder::with_capacity(8);
        assert_eq!((b.nodes.as_ptr() as usize, b.nodes.capacity()), (ptr, cap));
        assert!(b.nodes.is_empty() && b.stack.is_empty());
    }
}
