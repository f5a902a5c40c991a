//! The parsed message: a borrowed JSON document, built in one pass and stored flat.
//!
//! `serde_json::Value` allocates a `String` for every key and string and a `BTreeMap` per object;
//! for a 1 KiB commerce event that is most of the per-message cost. A [`Doc`] borrows strings from
//! the payload when they have no escapes and keeps every value of the message in one vector:
//! arrays and objects are ranges of it ([`Node`]), so a message costs a couple of allocations
//! however many objects it has, and freeing it is one pass over that vector. serde_json's
//! recursion limit (128) still applies: the limit lives in its deserializer, not in the target
//! type, so deep nesting is a clean error. Duplicate keys: the last one wins, as with
//! `serde_json::Value`.
//!
//! Nodes only mean something together with the [`Doc`] they come from: navigation
//! ([`Doc::get`], [`Doc::at`], [`Doc::items`]) goes through it, and a node from another document
//! reads as absent or as that document's values, never out of bounds.

use super::build::Builder;
use super::need::Need;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One JSON value, borrowing from the payload where it can. Containers refer to their contents
/// in the [`Doc`] they belong to.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Non-integers, and integers beyond `i64` (as serde_json without `arbitrary_precision`).
    Float(f64),
    Str(Cow<'a, str>),
    /// An array: its elements are the document's nodes `start..start + len`.
    Arr {
        start: usize,
        len: usize,
    },
    /// An object decoded whole: `len` members stored as name, value pairs from `start` (each
    /// name a [`Node::Str`]), in message order.
    Obj {
        start: usize,
        len: usize,
    },
    /// An object decoded by projection (see [`super::need`]): one slot per key its `need` lists,
    /// in that order, whatever the message's order, from `start` — so a path compiled against
    /// the same `Need` finds a member by position ([`super::path`]'s slot hints). A key the
    /// message lacks is `Null`, which every reader treats as absent; a repeated key overwrites
    /// its slot, so the last one wins.
    Proj {
        need: &'a Need,
        start: usize,
    },
}

impl Node<'_> {
    /// Short description of the kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr { .. } => "an array",
            Node::Obj { .. } | Node::Proj { .. } => "an object",
        }
    }
}

/// A decoded message: its root (an object) and every value below it.
pub struct Doc<'a> {
    root: Node<'a>,
    nodes: Vec<Node<'a>>,
}

impl<'a> Doc<'a> {
    /// A document of `nodes` (made by [`Builder`]).
    pub(super) fn new(root: Node<'a>, nodes: Vec<Node<'a>>) -> Doc<'a> {
        Doc { root, nodes }
    }

    #[cfg(test)]
    pub(super) fn nodes(&self) -> &Vec<Node<'a>> {
        &self.nodes
    }
}

/// The node vector is kept for the next document this thread decodes.
impl Drop for Doc<'_> {
    fn drop(&mut self) {
        super::build::recycle_nodes(std::mem::take(&mut self.nodes));
    }
}

impl<'a> Doc<'a> {
    pub fn root(&self) -> &Node<'a> {
        &self.root
    }

    /// Member `key` of an object (last duplicate wins); `None` for other kinds. A projected
    /// object's slot for a key the message lacks is `Null`, like an explicit `null`.
    pub fn get(&self, n: &Node<'a>, key: &str) -> Option<&Node<'a>> {
        match *n {
            Node::Obj { start, len } => {
                // Length and first byte before the full comparison: most members are not the
                // one asked for, and this rules them out without a `memcmp` call each.
                let want = key.as_bytes();
                self.nodes
                    .get(start..start.checked_add(len.checked_mul(2)?)?)?
                    .chunks_exact(2)
                    .rev()
                    .find(|m| {
                        matches!(&m[0], Node::Str(k) if k.len() == want.len()
                            && k.as_bytes().first() == want.first() && k == key)
                    })
                    .map(|m| &m[1])
            }
            Node::Proj { need, start } => {
                let (i, _) = need.child_at(key)?;
                self.nodes.get(start.checked_add(i)?)
            }
            _ => None,
        }
    }

    /// Slot `i` of a projected object decoded with the need numbered `need_id` (see
    /// [`Need::id`]); `None` when `n` is anything else, so the caller falls back to [`Doc::get`].
    #[inline]
    pub fn slot(&self, n: &Node<'a>, need_id: u32, i: u32) -> Option<&Node<'a>> {
        match *n {
            Node::Proj { need, start } if need.id() == need_id => {
                self.nodes.get(start.checked_add(usize::try_from(i).ok()?)?)
            }
            _ => None,
        }
    }

    /// Element `i` of an array; negative indices count from the end (`-1` is the last).
    pub fn at(&self, n: &Node<'a>, i: i64) -> Option<&Node<'a>> {
        let items = self.items(n)?;
        let idx = if i < 0 {
            items
                .len()
                .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
        } else {
            usize::try_from(i).ok()?
        };
        items.get(idx)
    }

    /// The elements of an array; `None` for other kinds.
    pub fn items(&self, n: &Node<'a>) -> Option<&[Node<'a>]> {
        match *n {
            Node::Arr { start, len } => self.nodes.get(start..start.checked_add(len)?),
            _ => None,
        }
    }

    /// An owned copy of the value `n`, for tests and debugging output.
    pub fn tree(&self, n: &Node<'a>) -> Tree {
        match n {
            Node::Null => Tree::Null,
            Node::Bool(b) => Tree::Bool(*b),
            Node::Int(i) => Tree::Int(*i),
            Node::Float(f) => Tree::Float(*f),
            Node::Str(s) => Tree::Str(s.to_string()),
            Node::Arr { .. } => Tree::Arr(
                self.items(n)
                    .unwrap_or_default()
                    .iter()
                    .map(|e| self.tree(e))
                    .collect(),
            ),
            Node::Obj { start, len } => Tree::Obj(
                self.nodes
                    .get(*start..start.saturating_add(len.saturating_mul(2)))
                    .unwrap_or_default()
                    .chunks_exact(2)
                    .map(|m| {
                        let name = match &m[0] {
                            Node::Str(k) => k.to_string(),
                            other => format!("{other:?}"),
                        };
                        (name, self.tree(&m[1]))
                    })
                    .collect(),
            ),
            Node::Proj { need, start } => Tree::Proj(
                need.keys()
                    .enumerate()
                    .map(|(i, k)| {
                        let v = self.nodes.get(start.saturating_add(i));
                        (k.to_string(), v.map_or(Tree::Null, |v| self.tree(v)))
                    })
                    .collect(),
            ),
        }
    }
}

/// Two documents are equal when their values are, wherever those sit in the node vectors.
impl PartialEq for Doc<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.tree(&self.root) == other.tree(&other.root)
    }
}

impl fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tree(&self.root).fmt(f)
    }
}

/// An owned JSON value with the decoder's distinctions (whole vs projected objects), for tests
/// and debugging output. A projected object lists every slot with its key, absent ones as `Null`.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Tree>),
    Obj(Vec<(String, Tree)>),
    Proj(Vec<(String, Tree)>),
}

/// Why a payload could not be decoded; `code()` is the stable DLQ reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DecodeError {
    #[error("the record has no value (a tombstone)")]
    Tombstone,
    #[error("the payload is not valid UTF-8 (first bad byte at offset {0})")]
    InvalidUtf8(usize),
    #[error("the payload is nested deeper than 128 levels")]
    #[strum(serialize = "nesting_too_deep")]
    TooDeep,
    #[error("the payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the payload is JSON {0}, not an object")]
    NotAnObject(&'static str),
    /// Schema'd topics (docs/formats.md): a value must start with the Confluent framing, magic
    /// byte 0 then the schema id.
    #[error(
        "the payload starts with byte {0:#04x}, not the schema registry framing's magic byte 0"
    )]
    BadMagicByte(u8),
    #[error("the payload has {0} bytes, fewer than the schema registry framing's 5")]
    #[strum(serialize = "truncated_frame")]
    Truncated(usize),
    #[error("the schema registry has no schema with id {0}")]
    SchemaNotFound(u32),
    #[error("schema {id} from the registry cannot be used: {why}")]
    SchemaInvalid { id: u32, why: String },
    #[error("schema {id} is a {found} schema, but this topic's block says `format: {expected}`")]
    SchemaTypeMismatch {
        id: u32,
        found: String,
        expected: &'static str,
    },
    #[error("the payload does not decode with its Avro schema: {0}")]
    #[strum(serialize = "avro_decode")]
    Avro(String),
    #[error("the payload does not decode with its Protobuf schema: {0}")]
    #[strum(serialize = "protobuf_decode")]
    Protobuf(String),
    #[error("schema {0} is not known here (no registry was reachable to fetch it)")]
    SchemaUnavailable(u32),
    /// `framing: single_object` blocks: a value must start with Avro's marker `C3 01`.
    #[error("the payload starts with bytes {:02x} {:02x}, not Avro's single-object marker c3 01", .0[0], .0[1])]
    #[strum(serialize = "bad_magic_byte")]
    NotSingleObject([u8; 2]),
    #[error("the payload has {0} bytes, fewer than Avro's single-object header's 10")]
    #[strum(serialize = "truncated_frame")]
    TruncatedSingleObject(usize),
    #[error("the payload was written with the Avro schema of fingerprint {found}, not the block's schema file (fingerprint {expected})")]
    #[strum(serialize = "schema_fingerprint_mismatch")]
    FingerprintMismatch { found: String, expected: String },
}

impl DecodeError {
    /// Classifies a serde_json error (its recursion limit gets its own reason).
    pub fn from_json(e: serde_json::Error) -> DecodeError {
        let text = e.to_string();
        if text.starts_with("recursion limit exceeded") {
            DecodeError::TooDeep
        } else {
            DecodeError::InvalidJson(text)
        }
    }

    /// The variant's name in snake_case (`TooDeep` is `nesting_too_deep`).
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

/// Decodes a Kafka record value into a JSON object.
pub fn decode(payload: Option<&[u8]>) -> Result<Doc<'_>, DecodeError> {
    let bytes = payload.ok_or(DecodeError::Tombstone)?;
    // Checked up front so invalid UTF-8 gets its own reason instead of a generic JSON error.
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
    let mut b = Builder::with_capacity(text.len() / 8);
    let mut de = serde_json::Deserializer::from_str(text);
    let root = Whole(&mut b)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|()| n))
        .map_err(DecodeError::from_json)?;
    match root {
        Node::Obj { .. } | Node::Proj { .. } => Ok(b.finish(root)),
        other => Err(DecodeError::NotAnObject(other.kind())),
    }
}

/// Decodes one value whole into the builder (serde's side of [`decode`], also used for the
/// subtrees a projection keeps whole).
pub(super) struct Whole<'b, 'a>(pub(super) &'b mut Builder<'a>);

impl<'de, 'b> DeserializeSeed<'de> for Whole<'b, 'de> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'b> Visitor<'de> for Whole<'b, 'de> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let b = self.0;
        let mark = b.mark();
        while let Some(v) = seq.next_element_seed(Whole(b))? {
            b.push(v);
        }
        Ok(b.close_arr(mark))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let b = self.0;
        let mark = b.mark();
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v = map.next_value_seed(Whole(b))?;
            b.push(Node::Str(k.0));
            b.push(v);
        }
        Ok(b.close_obj(mark))
    }
}

/// An object key, borrowed when it has no escapes.
pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_borrows_plain_strings() {
        let text =
            br#"{"a":"plain","b":"esc\"aped","n":[1,-2,3.5,18446744073709551615],"a":"last"}"#;
        let d = decode(Some(text)).expect("valid");
        let n = d.root();
        assert!(matches!(d.get(n, "b"), Some(Node::Str(Cow::Owned(s))) if s == "esc\"aped"));
        assert_eq!(d.get(n, "a"), Some(&Node::Str(Cow::Borrowed("last"))));
        assert_eq!(d.get(n, "z"), None);
        let arr = d.get(n, "n").expect("n");
        assert_eq!(d.at(arr, 0), Some(&Node::Int(1)));
        assert_eq!(d.at(arr, -1), Some(&Node::Float(18446744073709551615.0)));
        assert_eq!(d.at(arr, -5), None);
        assert_eq!(d.at(arr, 4), None);
        assert_eq!(d.get(arr, "a"), None);
        assert_eq!(d.at(n, 0), None);
        assert_eq!(
            d.tree(n),
            Tree::Obj(vec![
                ("a".into(), Tree::Str("plain".into())),
                ("b".into(), Tree::Str("esc\"aped".into())),
                (
                    "n".into(),
                    Tree::Arr(vec![
                        Tree::Int(1),
                        Tree::Int(-2),
                        Tree::Float(3.5),
                        Tree::Float(18446744073709551615.0)
                    ])
                ),
                ("a".into(), Tree::Str("last".into())),
            ])
        );
    }

    #[test]
    fn nested_containers_keep_their_contents_apart() {
        let text = br#"{"x":[[1,{"a":[2,3]}],{"b":{"c":[]}},4],"y":{"z":[{"q":5}]}}"#;
        let d = decode(Some(text)).expect("valid");
        let want: serde_json::Value = serde_json::from_slice(text).expect("json");
        fn plain(t: Tree) -> serde_json::Value {
            match t {
                Tree::Null => serde_json::Value::Null,
                Tree::Bool(b) => b.into(),
                Tree::Int(i) => i.into(),
                Tree::Float(f) => f.into(),
                Tree::Str(s) => s.into(),
                Tree::Arr(items) => items.into_iter().map(plain).collect(),
                Tree::Obj(m) | Tree::Proj(m) => {
                    serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, plain(v))).collect())
                }
            }
        }
        assert_eq!(plain(d.tree(d.root())), want);
    }

    #[test]
    fn every_decode_failure_has_its_reason() {
        let code = |p: Option<&[u8]>| decode(p).err().map(|e| e.code());
        assert_eq!(code(None), Some("tombstone"));
        assert_eq!(code(Some(b"{\"a\":\"\xff\"}")), Some("invalid_utf8"));
        assert_eq!(code(Some(b"{\"a\":")), Some("invalid_json"));
        assert_eq!(code(Some(b"[1]")), Some("not_an_object"));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(code(Some(deep.as_bytes())), Some("nesting_too_deep"));
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(code(Some(ok.as_bytes())), None);
    }
}
