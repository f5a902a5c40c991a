//! Projection: decode only the parts of a message the rules can read.
//!
//! At compile time every path a block's rules use (conditions, sources, templates, `each:` and
//! `sum:` arrays with their per-element paths) is merged into a [`Need`] tree. Decoding then
//! builds [`Node`]s only for needed members and lets serde_json skip the rest (`IgnoredAny`:
//! still fully syntax-checked, no allocation). A path's final member is kept whole, so every
//! value a rule reads — and every type error it could report — is exactly what a full decode
//! gives. Array indices and element tests (`[key=…]`) are not tracked: all elements of an array
//! share one need, which holds what a test reads as well as the rest of the path. Ordinary
//! messages are read by the hand-written projected reader in `scan.rs` (same result, a
//! fraction of the cost); whatever it declines, errors included, goes through serde_json here.
//!
//! Differences from a full decode, both in what no rule reads: skipped subtrees are scanned
//! iteratively, so the 128-level nesting limit applies only to read subtrees; and a number too
//! large for `f64` in a skipped member is not an error.

use super::build::Builder;
use super::doc::{DecodeError, Doc, Key, Node, Whole};
use super::keys::{KeyHead, KeyTable};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Which members of an object (recursively) the rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need {
    /// Keep this whole subtree.
    all: bool,
    /// The needed members' keys, by slot.
    keys: KeyTable,
    /// What each needed member needs in turn, by slot.
    children: Vec<Need>,
    /// This node's number in its tree, from [`Need::number`]; 0 until then. A path's slot hint
    /// names the need it was computed against, so it is only used on objects decoded with that
    /// very node (see [`super::doc::Doc::slot`]).
    id: u32,
}

impl Need {
    /// A need that keeps everything (a full decode).
    pub fn everything() -> Need {
        Need {
            all: true,
            keys: KeyTable::default(),
            children: Vec::new(),
            id: 0,
        }
    }

    /// Numbers every node of the tree (once it is complete): slot hints need the numbers.
    /// Numbers come from one process-wide counter, so no two nodes of any two trees share one
    /// and a hint can never be taken for another need's.
    pub fn number(&mut self) {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        fn walk(n: &mut Need) {
            // 0 means "not numbered": after 2^32 nodes (never, in practice) hints just stop.
            n.id = NEXT.fetch_add(1, Ordering::Relaxed);
            for c in &mut n.children {
                walk(c);
            }
        }
        walk(self);
    }

    /// This node's number (0: not numbered, so no slot hints).
    #[inline]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// How many slots a projected object decoded with this need has.
    #[inline]
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when no member is needed (every member of an object is skipped).
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The needed keys, in slot order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.names()
    }

    /// The node for the member path `keys` (created on demand).
    pub fn at(&mut self, keys: &[&str]) -> &mut Need {
        let mut cur = self;
        for k in keys {
            let pos = match cur.keys.position(k) {
                Some(p) => p,
                None => {
                    cur.keys.push(k);
                    cur.children.push(Need::default());
                    cur.children.len() - 1
                }
            };
            cur = &mut cur.children[pos];
        }
        cur
    }

    /// Every path the rules read, as member names from the root, leaves only (array elements
    /// are transparent: `items[0].sku` is `items.sku`). For `validate --online`'s check against a
    /// registered schema.
    pub fn paths(&self) -> Vec<Vec<String>> {
        fn walk(n: &Need, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            for (i, k) in n.keys().enumerate() {
                prefix.push(k.to_string());
                match n.children.get(i) {
                    Some(c) if !c.children.is_empty() => walk(c, prefix, out),
                    _ => out.push(prefix.clone()),
                }
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Keeps the whole value at `keys`.
    pub fn keep(&mut self, keys: &[&str]) {
        self.at(keys).all = true;
    }

    #[inline]
    pub(super) fn child(&self, key: &str) -> Option<&Need> {
        self.child_at(key).map(|(_, c)| c)
    }

    /// The needed member `key`: its slot (position in a projected object) and its own need.
    #[inline]
    pub(super) fn child_at(&self, key: &str) -> Option<(usize, &Need)> {
        let i = self.keys.position(key)?;
        Some((i, self.children.get(i)?))
    }

    /// The needed member whose key the reader found: `head` is that key's [`KeyHead`], `key`
    /// gives its bytes when asked (the same answer as [`Need::child_at`]).
    #[inline]
    pub(super) fn child_by_head<'k>(
        &self,
        head: &KeyHead,
        key: impl Fn() -> Option<&'k [u8]>,
    ) -> Option<(usize, &Need)> {
        let i = self.keys.find_by(head, key)?;
        Some((i, self.children.get(i)?))
    }

    /// True when the whole subtree is kept.
    pub(super) fn keeps_all(&self) -> bool {
        self.all
    }
}

/// Decodes `payload` keeping only what `need` asks for (same errors as [`super::doc::decode`]).
pub fn decode<'a>(payload: Option<&'a [u8]>, need: &'a Need) -> Result<Doc<'a>, DecodeError> {
    let bytes = payload.ok_or(DecodeError::Tombstone)?;
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
    // The hand-written reader takes ordinary messages (several times faster); anything it is not
    // sure of, errors included, is decoded by serde_json as before.
    match super::scan::decode(text, need) {
        Some(doc) => Ok(doc),
        None => decode_with_serde(text, need),
    }
}

/// The serde_json projected decode: the reference behaviour, and the path for everything the
/// fast reader declines.
pub(super) fn decode_with_serde<'a>(text: &'a str, need: &'a Need) -> Result<Doc<'a>, DecodeError> {
    let mut b = Builder::with_capacity(need.len());
    let mut de = serde_json::Deserializer::from_str(text);
    let root = Seed(need, &mut b)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|()| n))
        .map_err(DecodeError::from_json)?;
    match root {
        Node::Obj { .. } | Node::Proj { .. } => Ok(b.finish(root)),
        other => Err(DecodeError::NotAnObject(other.kind())),
    }
}

struct Seed<'n, 'b>(&'n Need, &'b mut Builder<'n>);

impl<'de, 'b> DeserializeSeed<'de> for Seed<'de, 'b> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        if self.0.all {
            Whole(self.1).deserialize(d)
        } else {
            d.deserialize_any(Projected(self.0, self.1))
        }
    }
}

/// Like [`Whole`] for scalars; objects keep only needed members.
struct Projected<'n, 'b>(&'n Need, &'b mut Builder<'n>);

impl<'de, 'b> Visitor<'de> for Projected<'de, 'b> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Whole(self.1).visit_bool(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Whole(self.1).visit_i64(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Whole(self.1).visit_u64(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Whole(self.1).visit_f64(v)
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Whole(self.1).visit_borrowed_str(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Whole(self.1).visit_str(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let Projected(need, b) = self;
        let mark = b.mark();
        while let Some(v) = seq.next_element_seed(Seed(need, &mut *b))? {
            b.push(v);
        }
        Ok(b.close_arr(mark))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        // One slot per needed key, in the need's order (see `Node::Proj`).
        let Projected(need, b) = self;
        let start = b.open_proj(need);
        while let Some(k) = map.next_key::<Key<'de>>()? {
            match need.child_at(&k.0) {
                Some((i, child)) => {
                    let v = map.next_value_seed(Seed(child, &mut *b))?;
                    b.set(start + i, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Node::Proj { need, start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::doc::{self, Tree};

    #[test]
    fn keeps_needed_members_whole_and_skips_the_rest() {
        let mut need = Need::default();
        need.keep(&["a", "b"]);
        need.keep(&["list", "id"]);
        let text = br#"{"a":{"b":{"deep":[1,{"x":2}]},"c":3},"list":[{"id":1,"n":"x"},{"n":"y"},5],"z":{"big":1e999999}}"#;
        let got = decode(Some(text), &need).expect("valid");
        let whole = doc::decode(Some(br#"{"b":{"deep":[1,{"x":2}]}}"#)).expect("valid");
        let b = whole.tree(whole.get(whole.root(), "b").expect("b"));
        let want = Tree::Proj(vec![
            ("a".into(), Tree::Proj(vec![("b".into(), b)])),
            (
                "list".into(),
                Tree::Arr(vec![
                    Tree::Proj(vec![("id".into(), Tree::Int(1))]),
                    Tree::Proj(vec![("id".into(), Tree::Null)]),
                    Tree::Int(5),
                ]),
            ),
        ]);
        assert_eq!(got.tree(got.root()), want);
        // Slots follow the need, not the message; a repeated key's last value wins.
        let text = br#"{"list":[{"id":2,"id":3}],"a":{"b":1},"a":{"c":2}}"#;
        let got = decode(Some(text), &need).expect("valid");
        let want = Tree::Proj(vec![
            ("a".into(), Tree::Proj(vec![("b".into(), Tree::Null)])),
            (
                "list".into(),
                Tree::Arr(vec![Tree::Proj(vec![("id".into(), Tree::Int(3))])]),
            ),
        ]);
        assert_eq!(got.tree(got.root()), want);
        let serde = decode_with_serde(std::str::from_utf8(text).expect("utf-8"), &need);
        assert_eq!(serde.map(|d| d.tree(d.root())), Ok(want));
    }

    #[test]
    fn syntax_errors_and_read_depth_are_still_reported() {
        let mut need = Need::default();
        need.keep(&["a"]);
        let code = |t: &[u8]| decode(Some(t), &need).err().map(|e| e.code());
        assert_eq!(code(br#"{"skip":[1,2,}"#), Some("invalid_json"));
        assert_eq!(code(br#"{"a":1} x"#), Some("invalid_json"));
        let deep_read = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(code(deep_read.as_bytes()), Some("nesting_too_deep"));
        let deep_skipped = format!("{{\"s\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            code(deep_skipped.as_bytes()),
            None,
            "skipped subtrees are scanned iteratively"
        );
        assert_eq!(code(b"[1]"), Some("not_an_object"));
        assert_eq!(
            Need::everything(),
            Need {
                all: true,
                keys: KeyTable::default(),
                children: vec![],
                id: 0
            }
        );
    }
}
