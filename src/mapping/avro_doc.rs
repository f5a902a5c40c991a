//! An Avro record as a [`Doc`]: the same document the JSON decoders build, so paths, conditions
//! and transforms read Avro topics unchanged.
//!
//! How Avro values read (docs/formats.md has the table):
//! - records and maps are objects, arrays are arrays, a union is the branch it holds, an enum is
//!   its symbol, `null` is absent (as a JSON `null` is);
//! - `timestamp-millis`/`-micros`/`-nanos` (and the `local-` ones) are epoch **milliseconds**,
//!   what `timestamp:` fields and the `epoch_ms` transforms expect (sub-millisecond digits are
//!   dropped); `date` is its ISO day (`2026-12-06`); `time-millis`/`-micros` are milliseconds
//!   since midnight;
//! - `decimal` is a number: the unscaled integer divided by 10^scale (an `f64`, as a JSON number
//!   is read; MCM's prices are `f64` too); `big-decimal` likewise;
//! - `uuid` is its text; `bytes` and `fixed` are text when they are UTF-8, else lowercase hex;
//!   `duration` is `{months, days, millis}`.
//!
//! What this does not do: keep a projection (an Avro datum cannot be skipped through without
//! decoding it, so every field is built; see the decode cost in BENCHMARKS.md).

use super::build::Builder;
use super::doc::{DecodeError, Doc, Node};
use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Named types of a schema and its references, for following `Ref`s to a decimal's scale.
pub type Names = HashMap<Name, Schema>;

/// `value` (decoded with `schema`, whose named types are in `names`) as a document; the root must
/// be a record.
pub fn avro_doc(value: Value, schema: &Schema, names: &Names) -> Result<Doc<'static>, DecodeError> {
    let mut b = Builder::with_capacity(16);
    let root = node(&mut b, value, Some(schema), names, 0)?;
    match root {
        Node::Obj { .. } => Ok(b.finish(root)),
        other => Err(DecodeError::NotAnObject(other.kind())),
    }
}

/// serde_json's limit, kept for Avro too: a recursive schema (a tree of categories) can nest as
/// deep as the producer likes.
const MAX_DEPTH: usize = 128;

fn resolve<'s>(s: Option<&'s Schema>, names: &'s Names) -> Option<&'s Schema> {
    match s {
        Some(Schema::Ref { name }) => names.get(name),
        other => other,
    }
}

fn node(
    b: &mut Builder<'static>,
    v: Value,
    schema: Option<&Schema>,
    names: &Names,
    depth: usize,
) -> Result<Node<'static>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let schema = resolve(schema, names);
    Ok(match v {
        Value::Null => Node::Null,
        Value::Boolean(x) => Node::Bool(x),
        Value::Int(x) => Node::Int(i64::from(x)),
        Value::Long(x) => Node::Int(x),
        Value::Float(x) => Node::Float(f64::from(x)),
        Value::Double(x) => Node::Float(x),
        Value::String(s) => Node::Str(Cow::Owned(s)),
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => Node::Str(Cow::Owned(bytes_text(bytes))),
        Value::Enum(_, symbol) => Node::Str(Cow::Owned(symbol)),
        Value::Uuid(u) => Node::Str(Cow::Owned(u.to_string())),
        Value::Union(i, inner) => {
            let branch = match schema {
                Some(Schema::Union(u)) => usize::try_from(i).ok().and_then(|i| u.variants().get(i)),
                _ => None,
            };
            node(b, *inner, branch, names, depth + 1)?
        }
        Value::Array(items) => {
            let of = match schema {
                Some(Schema::Array(a)) => Some(&*a.items),
                _ => None,
            };
            let mark = b.mark();
            for item in items {
                let n = node(b, item, of, names, depth + 1)?;
                b.push(n);
            }
            b.close_arr(mark)
        }
        Value::Map(entries) => {
            let of = match schema {
                Some(Schema::Map(m)) => Some(&*m.types),
                _ => None,
            };
            let mark = b.mark();
            for (k, item) in entries {
                b.push(Node::Str(Cow::Owned(k)));
                let n = node(b, item, of, names, depth + 1)?;
                b.push(n);
            }
            b.close_obj(mark)
        }
        Value::Record(fields) => {
            let record = match schema {
                Some(Schema::Record(r)) => Some(r),
                _ => None,
            };
            let mark = b.mark();
            for (i, (name, item)) in fields.into_iter().enumerate() {
                let of = record.and_then(|r| r.fields.get(i)).map(|f| &f.schema);
                b.push(Node::Str(Cow::Owned(name)));
                let n = node(b, item, of, names, depth + 1)?;
                b.push(n);
            }
            b.close_obj(mark)
        }
        Value::Date(days) => Node::Str(Cow::Owned(iso_day(i64::from(days)))),
        Value::Decimal(d) => {
            // Without its schema the scale is unknown: a guess of 0 would read 12.34 as 1234.
            let scale = match schema {
                Some(Schema::Decimal(d)) => d.scale,
                _ => {
                    return Err(DecodeError::Avro(
                        "a decimal whose schema (its scale) could not be followed".into(),
                    ))
                }
            };
            let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| DecodeError::Avro(e.to_string()))?;
            Node::Float(unscaled(&bytes)? / 10f64.powi(i32::try_from(scale).unwrap_or(i32::MAX)))
        }
        Value::BigDecimal(d) => Node::Float(
            d.to_string()
                .parse::<f64>()
                .map_err(|e| DecodeError::Avro(format!("big-decimal {d}: {e}")))?,
        ),
        Value::TimeMillis(ms) => Node::Int(i64::from(ms)),
        Value::TimeMicros(us) => Node::Int(us / 1_000),
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) => Node::Int(ms),
        Value::TimestampMicros(us) | Value::LocalTimestampMicros(us) => {
            Node::Int(us.div_euclid(1_000))
        }
        Value::TimestampNanos(ns) | Value::LocalTimestampNanos(ns) => {
            Node::Int(ns.div_euclid(1_000_000))
        }
        Value::Duration(d) => {
            let mark = b.mark();
            for (k, x) in [
                ("months", u32::from(d.months())),
                ("days", u32::from(d.days())),
                ("millis", u32::from(d.millis())),
            ] {
                b.push(Node::Str(Cow::Borrowed(k)));
                b.push(Node::Int(i64::from(x)));
            }
            b.close_obj(mark)
        }
    })
}

/// Text when the bytes are UTF-8 (ids and codes stored as `bytes`), else lowercase hex.
fn bytes_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| hex::encode(e.into_bytes()))
}

/// A decimal's unscaled value: big-endian two's complement, as Avro stores it.
fn unscaled(bytes: &[u8]) -> Result<f64, DecodeError> {
    if bytes.len() > 16 {
        return Err(DecodeError::Avro(format!(
            "a decimal of {} bytes is beyond what a number can hold",
            bytes.len()
        )));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut x: i128 = if negative { -1 } else { 0 };
    for &byte in bytes {
        x = (x << 8) | i128::from(byte);
    }
    Ok(x as f64)
}

/// `days` since 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian; Howard Hinnant's civil-from-days).
fn iso_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{from_avro_datum, to_avro_datum};

    const SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
      {"name":"order_id","type":"string"},
      {"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
      {"name":"day","type":{"type":"int","logicalType":"date"}},
      {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
      {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
      {"name":"coupon","type":["null","string"],"default":null},
      {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
          {"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
      {"name":"attrs","type":{"type":"map","values":"string"}}
    ]}"#;

    #[test]
    fn logical_types_unions_enums_arrays_and_maps_read_as_the_json_would() {
        let schema = Schema::parse_str(SCHEMA).expect("schema");
        let value = Value::Record(vec![
            ("order_id".into(), Value::String("o-1".into())),
            ("ts".into(), Value::TimestampMicros(1_765_000_000_123_456)),
            ("day".into(), Value::Date(20_428)),
            ("status".into(), Value::Enum(1, "PAID".into())),
            (
                "total".into(),
                Value::Decimal(apache_avro::Decimal::from(vec![0xff, 0x85])),
            ),
            (
                "coupon".into(),
                Value::Union(1, Box::new(Value::String("XMAS".into()))),
            ),
            (
                "items".into(),
                Value::Array(vec![Value::Record(vec![
                    ("sku".into(), Value::String("s1".into())),
                    ("qty".into(), Value::Int(2)),
                ])]),
            ),
            (
                "attrs".into(),
                Value::Map([("k".to_string(), Value::String("v".into()))].into()),
            ),
        ]);
        let bytes = to_avro_datum(&schema, value).expect("encode");
        let decoded = from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("decode");
        let doc = avro_doc(decoded, &schema, &Names::new()).expect("doc");
        let get = |k: &str| doc.get(doc.root(), k).cloned();
        assert_eq!(get("order_id"), Some(Node::Str("o-1".into())));
        assert_eq!(get("ts"), Some(Node::Int(1_765_000_000_123)));
        assert_eq!(get("day"), Some(Node::Str("2025-12-06".into())));
        assert_eq!(get("status"), Some(Node::Str("PAID".into())));
        // 0xff85 = -123, scale 2.
        assert_eq!(get("total"), Some(Node::Float(-1.23)));
        assert_eq!(get("coupon"), Some(Node::Str("XMAS".into())));
        let items = doc.get(doc.root(), "items").expect("items");
        let first = doc.at(items, 0).expect("item");
        assert_eq!(doc.get(first, "qty"), Some(&Node::Int(2)));
        let attrs = doc.get(doc.root(), "attrs").expect("attrs");
        assert_eq!(doc.get(attrs, "k"), Some(&Node::Str("v".into())));
    }

    #[test]
    fn days_before_and_after_the_epoch() {
        assert_eq!(iso_day(0), "1970-01-01");
        assert_eq!(iso_day(-1), "1969-12-31");
        assert_eq!(iso_day(19_782), "2024-02-29");
    }

    #[test]
    fn a_root_that_is_not_a_record_is_refused() {
        let schema = Schema::parse_str(r#""string""#).expect("schema");
        let e = avro_doc(Value::String("x".into()), &schema, &Names::new());
        assert!(matches!(e, Err(DecodeError::NotAnObject(_))));
    }
}
