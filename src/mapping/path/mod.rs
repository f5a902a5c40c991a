//! Source paths, parsed once at start-up into segment vectors.
//!
//! Two spellings, both relative to the current scope (the message, or the array element inside an
//! `each:`); a leading `$` anchors either one at the message root:
//! - dotted: `order.lines[0].sku`, `items[-1].id` (negative = from the end),
//!   `context["page.path"]` (quoted keys may hold dots), and two segments that choose, for data
//!   whose layout is not fixed (GA4's BigQuery `event_params`, typed identity lists):
//!   `event_params[key=page_location]` — the first array element whose member passes a test (see
//!   [`predicate`]) — and `value.(string_value|int_value)` — the first of these members that is
//!   present and not null;
//! - JSON pointer (RFC 6901): `/order/lines/0/sku`, with `~0` for `~` and `~1` for `/`. It has
//!   no choosing segments: a pointer token is always a plain key or index.
//!
//! Resolution walks the pre-split segments only: no string parsing per message. A path that
//! meets a missing key, an index out of range, a scalar, an array no element of which passes the
//! test, or a union none of whose members is there resolves to `None`, never an error.

mod parse;
mod predicate;
#[cfg(test)]
mod tests;

use super::doc::{Doc, Node};
use super::need::Need;
use predicate::Predicate;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// An object key, and its slot in the projected object it reads (see [`Path::hint`]).
    Key(String, Option<Slot>),
    Index(i64),
    /// A JSON-pointer token: an object key, or an array index when it is a number.
    Token(String, Option<usize>),
    /// `[sub.path=text]` (or `^=`, `~=`): the first element of an array the test holds for.
    /// Boxed: it is rare, and `Seg` stays as small as the ordinary segments need.
    Select(Box<Predicate>),
    /// `(a|b|…)`: the first of these members of an object that is present and not null.
    Union(Vec<String>),
}

/// Where a key's member sits in a projected object: the number of the need the object is
/// decoded with, and the slot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    need: u32,
    index: u32,
}

/// A compiled path; `Display` shows it as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    root: bool,
    segs: Vec<Seg>,
    text: String,
    /// Every segment's slot, when every segment is a key with a slot hint (the usual path):
    /// [`Path::resolve`] then walks these without looking at the segments.
    route: Option<Vec<Slot>>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What reading a path touches in a message, as member key paths from the root (for
/// projection; see [`Path::reach`]). Array indices and predicates are transparent: all elements
/// of an array share one need.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach<'s> {
    /// Members read whole on the way: each predicate's sub-path, under the array it tests.
    pub tested: Vec<Vec<&'s str>>,
    /// Where the value can be: one key path per combination of union alternatives.
    pub ends: Vec<Vec<&'s str>>,
    /// The walk stopped before the last segment (at a pointer token that may be an index, or at
    /// a union that would make more than [`MAX_ENDS`] ends): every end must be kept whole.
    pub stopped: bool,
}

/// At most this many ends per path: every end is a branch of the need tree, and a path of many
/// unions would multiply them. Past it, the prefix is kept whole: a superset is always safe.
const MAX_ENDS: usize = 64;

impl Path {
    /// The member keys reading this path needs, for projection: `scope` is the key path of the
    /// current `each:` element (ignored when anchored with `$`). A pointer token that may be an
    /// array index stops the walk, and the prefix is kept whole: a superset is always safe.
    pub fn reach<'s>(&'s self, scope: &[&'s str]) -> Reach<'s> {
        let start = if self.root {
            Vec::new()
        } else {
            scope.to_vec()
        };
        let mut r = Reach {
            tested: Vec::new(),
            ends: vec![start],
            stopped: false,
        };
        for seg in &self.segs {
            match seg {
                Seg::Key(k, _) | Seg::Token(k, None) => r.ends.iter_mut().for_each(|e| e.push(k)),
                Seg::Index(_) => {}
                Seg::Token(_, Some(_)) => r.stopped = true,
                // The test reads its member of every element; the rest of the path reads the
                // chosen one. Both under the array's (shared) element need.
                Seg::Select(p) => {
                    for e in &r.ends {
                        r.tested
                            .push(e.iter().copied().chain(p.sub_keys()).collect());
                    }
                }
                Seg::Union(alts) if r.ends.len().saturating_mul(alts.len()) > MAX_ENDS => {
                    r.stopped = true;
                }
                Seg::Union(alts) => {
                    r.ends = r
                        .ends
                        .iter()
                        .flat_map(|e| alts.iter().map(move |a| extended(e, a)))
                        .collect();
                }
            }
            if r.stopped {
                break;
            }
        }
        r
    }

    /// Records that this path's value is read whole (and what its predicates test).
    pub fn need_value(&self, need: &mut Need, scope: &[&str]) {
        let r = self.reach(scope);
        for keys in r.tested.iter().chain(&r.ends) {
            need.keep(keys);
        }
    }

    /// Records, for each key segment, the member's slot in the projected object it will read
    /// when messages are decoded with `need` (the block's, complete) and the path is read from
    /// an element at `scope` (the key path of the enclosing `each:`, as [`Path::reach`] gives
    /// it). Segments that read a kept-whole subtree, or follow a pointer token or a union (each
    /// alternative has a need of its own), get none; so do all when `need` is not numbered
    /// ([`Need::number`]). A predicate is transparent, as an index is.
    pub fn hint(&mut self, need: &Need, scope: &[String]) {
        let mut cur = if self.root {
            Some(need)
        } else {
            scope
                .iter()
                .try_fold(need, |n, k| (!n.keeps_all()).then(|| n.child(k)).flatten())
        };
        for seg in &mut self.segs {
            match seg {
                Seg::Key(k, hint) => {
                    *hint = None;
                    let parent = cur.filter(|n| !n.keeps_all());
                    cur = match parent.and_then(|n| Some((n.id(), n.child_at(k)?))) {
                        Some((id, (i, c))) => {
                            *hint = u32::try_from(i)
                                .ok()
                                .filter(|_| id != 0)
                                .map(|index| Slot { need: id, index });
                            Some(c)
                        }
                        None => None,
                    };
                }
                // All elements of an array share one need.
                Seg::Index(_) | Seg::Select(_) => {}
                Seg::Token(..) | Seg::Union(_) => cur = None,
            }
        }
        self.route = self
            .segs
            .iter()
            .map(|s| match s {
                Seg::Key(_, hint) => *hint,
                _ => None,
            })
            .collect::<Option<Vec<Slot>>>()
            .filter(|r| !r.is_empty());
    }

    /// Follows the path from `scope` (or the root when anchored with `$`) in `doc`. JSON `null`
    /// counts as absent, so `default:` and `first:` treat both the same.
    #[inline]
    pub fn resolve<'n, 'a>(&self, doc: &'n Doc<'a>, scope: &'n Node<'a>) -> Option<&'n Node<'a>> {
        let Some(route) = &self.route else {
            return self.walk(doc, scope);
        };
        // Slot by slot while the objects are the projected ones the hints name; anything else
        // (another layout, an array, a scalar) takes the general walk, which then answers.
        let mut cur = if self.root { doc.root() } else { scope };
        for h in route {
            cur = match doc.slot(cur, h.need, h.index) {
                Some(v) => v,
                None => return self.walk(doc, scope),
            };
        }
        (!matches!(cur, Node::Null)).then_some(cur)
    }

    /// [`Path::resolve`] segment by segment (the choosing segments only ever take this way).
    #[inline(never)]
    fn walk<'n, 'a>(&self, doc: &'n Doc<'a>, scope: &'n Node<'a>) -> Option<&'n Node<'a>> {
        let mut cur = if self.root { doc.root() } else { scope };
        for seg in &self.segs {
            cur = match seg {
                // A projected object holds the member at its slot (an absent one as `null`). The
                // hint names the need it was computed against, the block's; the slot is only
                // read from an object decoded with that same need node, and any other object is
                // searched by name.
                Seg::Key(k, Some(h)) => match doc.slot(cur, h.need, h.index) {
                    Some(v) => v,
                    None => doc.get(cur, k)?,
                },
                Seg::Key(k, None) => doc.get(cur, k)?,
                Seg::Index(i) => doc.at(cur, *i)?,
                Seg::Token(k, idx) => match (cur, idx) {
                    (Node::Arr { .. }, Some(i)) => doc.at(cur, i64::try_from(*i).ok()?)?,
                    _ => doc.get(cur, k)?,
                },
                Seg::Select(p) => p.first(doc, cur)?,
                // A projected object holds an absent member as `null`: both are passed over.
                Seg::Union(alts) => alts
                    .iter()
                    .find_map(|k| doc.get(cur, k).filter(|v| !matches!(v, Node::Null)))?,
            };
        }
        (!matches!(cur, Node::Null)).then_some(cur)
    }
}

/// `keys` and then `key`.
fn extended<'s>(keys: &[&'s str], key: &'s str) -> Vec<&'s str> {
    let mut out = Vec::with_capacity(keys.len() + 1);
    out.extend_from_slice(keys);
    out.push(key);
    out
}
