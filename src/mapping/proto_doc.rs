//! A Protobuf message as a [`Doc`], so the mapping rules read Protobuf topics as they read JSON.
//!
//! How values read (docs/formats.md has the table): messages and maps are objects keyed by the
//! `.proto` field names (not the JSON mapping's lowerCamelCase), repeated fields are arrays, an
//! enum is its value's name, a oneof is the member that is set, 64-bit integers are numbers,
//! `bytes` are text when UTF-8, else hex. A proto3 field at its default value (0, "", false, the
//! first enum value) is absent, as in the JSON mapping without defaults. Well-known types:
//! `google.protobuf.Timestamp` is epoch milliseconds, the wrappers (`StringValue`, `Int64Value`…)
//! are their value.

use super::build::Builder;
use super::doc::{DecodeError, Doc, Node};
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use std::borrow::Cow;

/// `msg` as a document (the root is an object).
pub fn proto_doc(msg: &DynamicMessage) -> Result<Doc<'static>, DecodeError> {
    let mut b = Builder::with_capacity(16);
    let root = message(&mut b, msg, 0)?;
    Ok(b.finish(root))
}

const MAX_DEPTH: usize = 128;

fn message(
    b: &mut Builder<'static>,
    msg: &DynamicMessage,
    depth: usize,
) -> Result<Node<'static>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let desc = msg.descriptor();
    match desc.full_name() {
        "google.protobuf.Timestamp" => {
            let get = |name: &str| match msg.get_field_by_name(name).as_deref() {
                Some(Value::I64(x)) => *x,
                Some(Value::I32(x)) => i64::from(*x),
                _ => 0,
            };
            let ms = get("seconds").saturating_mul(1000) + get("nanos").div_euclid(1_000_000);
            return Ok(Node::Int(ms));
        }
        name if name.starts_with("google.protobuf.")
            && name.ends_with("Value")
            && desc.fields().len() == 1 =>
        {
            if let (Some(field), Some(v)) = (
                desc.get_field_by_name("value"),
                msg.get_field_by_name("value"),
            ) {
                return value(b, &v, &field.kind(), depth + 1);
            }
        }
        _ => {}
    }
    let mark = b.mark();
    for (field, v) in msg.fields() {
        b.push(Node::Str(Cow::Owned(field.name().to_string())));
        let n = if field.is_map() {
            let value_kind = field
                .kind()
                .as_message()
                .map(|entry| entry.map_entry_value_field().kind());
            map(b, v, value_kind.as_ref(), depth + 1)?
        } else {
            value(b, v, &field.kind(), depth + 1)?
        };
        b.push(n);
    }
    Ok(b.close_obj(mark))
}

fn map(
    b: &mut Builder<'static>,
    v: &Value,
    kind: Option<&Kind>,
    depth: usize,
) -> Result<Node<'static>, DecodeError> {
    let (Value::Map(entries), Some(kind)) = (v, kind) else {
        return Ok(Node::Null);
    };
    // Sorted by key: a map's order on the wire means nothing, and documents should not differ
    // between two encodings of the same message.
    let mut entries: Vec<(&MapKey, &Value)> = entries.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mark = b.mark();
    for (k, x) in entries {
        let key = match k {
            MapKey::Bool(x) => x.to_string(),
            MapKey::I32(x) => x.to_string(),
            MapKey::I64(x) => x.to_string(),
            MapKey::U32(x) => x.to_string(),
            MapKey::U64(x) => x.to_string(),
            MapKey::String(s) => s.clone(),
        };
        b.push(Node::Str(Cow::Owned(key)));
        let n = value(b, x, kind, depth + 1)?;
        b.push(n);
    }
    Ok(b.close_obj(mark))
}

fn value(
    b: &mut Builder<'static>,
    v: &Value,
    kind: &Kind,
    depth: usize,
) -> Result<Node<'static>, DecodeError> {
    Ok(match v {
        Value::Bool(x) => Node::Bool(*x),
        Value::I32(x) => Node::Int(i64::from(*x)),
        Value::I64(x) => Node::Int(*x),
        Value::U32(x) => Node::Int(i64::from(*x)),
        Value::U64(x) => i64::try_from(*x).map_or(Node::Float(*x as f64), Node::Int),
        Value::F32(x) => Node::Float(f64::from(*x)),
        Value::F64(x) => Node::Float(*x),
        Value::String(s) => Node::Str(Cow::Owned(s.clone())),
        Value::Bytes(bytes) => Node::Str(Cow::Owned(match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => hex::encode(bytes),
        })),
        Value::EnumNumber(n) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(named) => Node::Str(Cow::Owned(named.name().to_string())),
            None => Node::Int(i64::from(*n)),
        },
        Value::Message(m) => message(b, m, depth)?,
        Value::List(items) => {
            let mark = b.mark();
            for item in items {
                let n = value(b, item, kind, depth + 1)?;
                b.push(n);
            }
            b.close_arr(mark)
        }
        Value::Map(_) => Node::Null,
    })
}
