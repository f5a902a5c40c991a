//! The parsed message: a borrowed JSON tree built in one pass by serde_json.
//!
//! `serde_json::Value` allocates a `String` for every key and string and a `BTreeMap` per object;
//! for a 1 KiB commerce event that is most of the per-message cost. [`Node`] borrows strings from
//! the payload when they have no escapes and keeps object members in a `Vec` (commerce objects are
//! small, so a linear scan beats a tree). serde_json's recursion limit (128) still applies: the
//! limit lives in its deserializer, not in the target type, so deep nesting is a clean error.
//! Duplicate keys: the last one wins, as with `serde_json::Value`.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One JSON value, borrowing from the payload where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Non-integers, and integers beyond `i64` (as serde_json without `arbitrary_precision`).
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<Node<'a>>),
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
    /// An object decoded by projection (see [`super::need`]): one member per key its `Need`
    /// lists, in that order, whatever the message's order — so a path compiled against the same
    /// `Need` finds a member by position ([`super::path`]'s slot hints). A key the message lacks
    /// is `("", Null)`, which a lookup by name treats as absent, as before; a repeated key
    /// overwrites its slot, so the last one wins, as before.
    Proj(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Member `key` of an object (last duplicate wins); `None` for other kinds.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Obj(members) | Node::Proj(members) => {
                // Length and first byte before the full comparison: most members are not the
                // one asked for, and this rules them out without a `memcmp` call each.
                let want = key.as_bytes();
                members
                    .iter()
                    .rev()
                    .find(|(k, _)| {
                        k.len() == want.len() && k.as_bytes().first() == want.first() && k == key
                    })
                    .map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Element `i` of an array; negative indices count from the end (`-1` is the last).
    pub fn at(&self, i: i64) -> Option<&Node<'a>> {
        match self {
            Node::Arr(items) => {
                let idx = if i < 0 {
                    items
                        .len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(i).ok()?
                };
                items.get(idx)
            }
            _ => None,
        }
    }

    /// Short description of the kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr(_) => "an array",
            Node::Obj(_) | Node::Proj(_) => "an object",
        }
    }
}

/// Why a payload could not be decoded; `code()` is the stable DLQ reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the record has no value (a tombstone)")]
    Tombstone,
    #[error("the payload is not valid UTF-8 (first bad byte at offset {0})")]
    InvalidUtf8(usize),
    #[error("the payload is nested deeper than 128 levels")]
    TooDeep,
    #[error("the payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the payload is JSON {0}, not an object")]
    NotAnObject(&'static str),
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

    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Tombstone => "tombstone",
            DecodeError::InvalidUtf8(_) => "invalid_utf8",
            DecodeError::TooDeep => "nesting_too_deep",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::NotAnObject(_) => "not_an_object",
        }
    }
}

/// Decodes a Kafka record value into a JSON object tree.
pub fn decode(payload: Option<&[u8]>) -> Result<Node<'_>, DecodeError> {
    let bytes = payload.ok_or(DecodeError::Tombstone)?;
    // Checked up front so invalid UTF-8 gets its own reason instead of a generic JSON error.
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(e.valid_up_to()))?;
    let node: Node<'_> = serde_json::from_str(text).map_err(DecodeError::from_json)?;
    match node {
        Node::Obj(_) | Node::Proj(_) => Ok(node),
        other => Err(DecodeError::NotAnObject(other.kind())),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Node<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

pub(super) struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
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
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Node::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v = map.next_value()?;
            members.push((k.0, v));
        }
        Ok(Node::Obj(members))
    }
}

/// An object key, borrowed when it has no escapes.
pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
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
        let n = decode(Some(text)).expect("valid");
        assert!(matches!(n.get("b"), Some(Node::Str(Cow::Owned(s))) if s == "esc\"aped"));
        assert_eq!(n.get("a"), Some(&Node::Str(Cow::Borrowed("last"))));
        let arr = n.get("n").expect("n");
        assert_eq!(arr.at(0), Some(&Node::Int(1)));
        assert_eq!(arr.at(-1), Some(&Node::Float(18446744073709551615.0)));
        assert_eq!(arr.at(-5), None);
        assert_eq!(arr.at(4), None);
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
