//! Avro's Parsing Canonical Form of a schema, and its CRC-64-AVRO fingerprint — what a
//! single-object value's header names its schema by.
//!
//! Why not apache-avro's `Schema::canonical_form`: in 0.21 it strips `logicalType` but leaves
//! the rest of such a type's object, so `{"type":"long","logicalType":"timestamp-millis"}`
//! becomes `{"type":"long"}` where Java (`SchemaNormalization`, the writer of most single-object
//! values) and fastavro write `"long"` (the [PRIMITIVES] rule: a primitive type is its name).
//! Every schema with a logical type on a primitive would then get a fingerprint no other
//! implementation gives (apache/avro-rs#61 discusses the rule). Checked here against
//! fastavro's fingerprints. The CRC itself is apache-avro's `Rabin` digest.

use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt::Write as _;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The 8-byte CRC-64-AVRO fingerprint of `schema`'s canonical form, little endian (the order
/// Java's `SchemaNormalization.parsingFingerprint` and the single-object encoding use).
pub fn fingerprint(schema: &Value) -> Result<[u8; 8], String> {
    use sha2::Digest as _;
    let form = parsing_canonical_form(schema)?;
    let mut rabin = apache_avro::rabin::Rabin::new();
    rabin.update(form.as_bytes());
    let mut out = [0; 8];
    for (o, b) in out.iter_mut().zip(rabin.finalize()) {
        *o = b;
    }
    Ok(out)
}

/// The Parsing Canonical Form of `schema` (the specification's [PRIMITIVES], [FULLNAMES],
/// [STRIP], [ORDER], [STRINGS]; a named type already written is written again as its name).
pub fn parsing_canonical_form(schema: &Value) -> Result<String, String> {
    let mut out = String::new();
    write(schema, "", &mut HashSet::new(), &mut out, 0)?;
    Ok(out)
}

fn write(
    s: &Value,
    namespace: &str,
    defined: &mut HashSet<String>,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if depth > 256 {
        return Err("the schema is nested too deeply".into());
    }
    match s {
        Value::String(name) if PRIMITIVES.contains(&name.as_str()) => quoted(name, out),
        Value::String(name) => quoted(&full_name(name, None, namespace), out),
        Value::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(b, namespace, defined, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(o) => write_object(o, namespace, defined, out, depth)?,
        other => return Err(format!("{other} is not a schema")),
    }
    Ok(())
}

fn write_object(
    o: &Map<String, Value>,
    namespace: &str,
    defined: &mut HashSet<String>,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    let ty = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `{"type": {...}}`: the type is the inner schema.
        Some(inner) => return write(inner, namespace, defined, out, depth + 1),
        None => return Err("a schema object without a type".into()),
    };
    if PRIMITIVES.contains(&ty) {
        quoted(ty, out); // attributes such as `logicalType` do not change how it parses
        return Ok(());
    }
    match ty {
        "record" | "error" | "enum" | "fixed" => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a {ty} without a name"))?;
            let full = full_name(name, o.get("namespace").and_then(Value::as_str), namespace);
            if !defined.insert(full.clone()) {
                quoted(&full, out);
                return Ok(());
            }
            // Nested names take the namespace of the type they are defined in.
            let inner_ns = full.rsplit_once('.').map_or("", |(ns, _)| ns).to_string();
            out.push_str("{\"name\":");
            quoted(&full, out);
            out.push_str(",\"type\":");
            quoted(ty, out);
            match ty {
                "enum" => {
                    out.push_str(",\"symbols\":");
                    let symbols = o.get("symbols").cloned().unwrap_or(Value::Null);
                    out.push_str(&serde_json::to_string(&symbols).map_err(|e| e.to_string())?);
                }
                "fixed" => {
                    let size = o
                        .get("size")
                        .and_then(Value::as_u64)
                        .ok_or("a fixed without a size")?;
                    let _ = write!(out, ",\"size\":{size}");
                }
                _ => {
                    out.push_str(",\"fields\":[");
                    let fields = o
                        .get("fields")
                        .and_then(Value::as_array)
                        .ok_or("a record without fields")?;
                    for (i, f) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let fname = f
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or("a field without a name")?;
                        out.push_str("{\"name\":");
                        quoted(fname, out);
                        out.push_str(",\"type\":");
                        let ftype = f.get("type").ok_or("a field without a type")?;
                        write(ftype, &inner_ns, defined, out, depth + 1)?;
                        out.push('}');
                    }
                    out.push(']');
                }
            }
            out.push('}');
        }
        "array" | "map" => {
            let key = if ty == "array" { "items" } else { "values" };
            out.push_str("{\"type\":");
            quoted(ty, out);
            let _ = write!(out, ",\"{key}\":");
            let inner = o.get(key).ok_or_else(|| format!("an {ty} without {key}"))?;
            write(inner, namespace, defined, out, depth + 1)?;
            out.push('}');
        }
        named => quoted(&full_name(named, None, namespace), out), // `{"type": "acme.Status"}`
    }
    Ok(())
}

/// `name` qualified: a dotted name is already full; else the explicit namespace, else the
/// enclosing one.
fn full_name(name: &str, explicit: Option<&str>, enclosing: &str) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    match explicit.unwrap_or(enclosing) {
        "" => name.to_string(),
        ns => format!("{ns}.{name}"),
    }
}

fn quoted(s: &str, out: &mut String) {
    // Names and symbols are [A-Za-z0-9_.]: nothing to escape, but a stray one is kept valid.
    out.push_str(&Value::String(s.to_string()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonical forms and fingerprints printed by fastavro 1.13.1 (`to_parsing_canonical_form`,
    /// `fingerprint(_, "CRC-64-AVRO")`, whose hex is the little-endian bytes).
    #[test]
    fn forms_and_fingerprints_match_fastavros() {
        let cases = [
            (
                r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"}]}"#,
                r#"{"name":"Order","type":"record","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"}]}"#,
                "b2e16df398ee0cf1",
            ),
            (
                r#"{"type":"record","name":"Order","namespace":"legacy","doc":"x","fields":[
                  {"name":"order_id","type":"string","doc":"y"},
                  {"name":"user","type":"string"},
                  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
                  {"name":"total","type":"double","default":0},
                  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PAID","PENDING"]}}]}"#,
                r#"{"name":"legacy.Order","type":"record","fields":[{"name":"order_id","type":"string"},{"name":"user","type":"string"},{"name":"ts","type":"long"},{"name":"total","type":"double"},{"name":"status","type":{"name":"legacy.Status","type":"enum","symbols":["PAID","PENDING"]}}]}"#,
                "eb492035394680a5",
            ),
        ];
        for (schema, form, fp) in cases {
            let v: Value = serde_json::from_str(schema).expect("json");
            assert_eq!(parsing_canonical_form(&v).expect("form"), form);
            assert_eq!(hex::encode(fingerprint(&v).expect("fp")), fp);
        }
    }

    #[test]
    fn references_unions_arrays_maps_and_fixed() {
        let v: Value = serde_json::from_str(
            r#"{"type":"record","name":"a.R","fields":[
              {"name":"s","type":{"type":"enum","name":"S","symbols":["X"]}},
              {"name":"t","type":"S"},
              {"name":"u","type":["null",{"type":"array","items":{"type":"map","values":"a.S"}}]},
              {"name":"f","type":{"type":"fixed","name":"F","namespace":"b","size":16,"logicalType":"decimal","precision":4}}]}"#,
        )
        .expect("json");
        assert_eq!(
            parsing_canonical_form(&v).expect("form"),
            r#"{"name":"a.R","type":"record","fields":[{"name":"s","type":{"name":"a.S","type":"enum","symbols":["X"]}},{"name":"t","type":"a.S"},{"name":"u","type":["null",{"type":"array","items":{"type":"map","values":"a.S"}}]},{"name":"f","type":{"name":"b.F","type":"fixed","size":16}}]}"#
        );
        assert_eq!(
            hex::encode(fingerprint(&v).expect("fp")),
            "cef7a9be047099ce"
        );
    }
}
