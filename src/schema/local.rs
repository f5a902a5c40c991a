//! Schema'd input for `map` and `test`: a message written as JSON, plus the schema it is
//! encoded with, framed exactly as its topic carries values — a registry serializer's framing
//! (magic byte 0, the schema id, the Avro datum, Protobuf's message indexes and message, or the
//! JSON text), or a `schema_file:` block's own framing — so that it goes through the pipeline's
//! own decode ([`super::decode`]) and not a shortcut.
//!
//! The schema comes from a file (framed with [`LOCAL_SCHEMA_ID`]) or from the registry by
//! subject and version (framed with the id the registry gives it), in a book of its own.
//! JSON becomes Avro by apache-avro's schema resolution (objects to records with their
//! defaults, strings to enum symbols, values to the union branch they fit, numbers to `long`,
//! `timestamp-millis`, …); what JSON cannot express that way (`decimal`, `fixed`, `bytes`) is
//! refused with apache-avro's reason. JSON becomes Protobuf by protobuf's JSON mapping
//! (prost-reflect's, the same as `google.protobuf.json_format`).

use super::book::{AvroSchema, Known, SchemaBook};
use super::proto::ProtoSchema;
use crate::mapping::{Format, TopicMapping};
use std::sync::Arc;

/// The schema id input given with a schema file is framed with.
pub const LOCAL_SCHEMA_ID: u32 = 1;

/// The schema a JSON message is encoded with.
#[derive(Debug, Clone)]
pub enum InputSchema {
    /// A schema file's text (`--schema-file`, a case's `schema_file:`): `.avsc` for Avro,
    /// `.proto` for Protobuf (imports: Google's well-known types only).
    Text(String),
    /// What the registry holds for a subject's version, and its id.
    Registered { id: u32, known: Known },
}

/// Why local input could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalInputError {
    #[error("this topic's block reads {0}: give the schema the message is written with (a schema file, or a registry subject)")]
    SchemaNeeded(&'static str),
    #[error("the schema does not parse: {0}")]
    BadSchema(String),
    #[error("the schema is a {found} schema, but the block says `format: {expected}`")]
    TypeMismatch {
        found: String,
        expected: &'static str,
    },
    #[error("the message is not JSON: {0}")]
    NotJson(String),
    #[error("the message does not fit the schema: {0}")]
    DoesNotFit(String),
}

/// `json` (a message's JSON text) as a value of `block`, and the book that knows its schema:
/// with the block's own schema file and framing when it has one, else framed as a registry
/// serializer does ([`encode`]). `proto_message`: the Protobuf message type (full name; the
/// first of the schema when `None`).
pub fn encode_for(
    block: &TopicMapping,
    json: &[u8],
    schema: Option<&InputSchema>,
    proto_message: Option<&str>,
) -> Result<(Vec<u8>, SchemaBook), LocalInputError> {
    match block.local_schema() {
        Some(local) => {
            let bytes = local
                .encode_json(json)
                .map_err(LocalInputError::DoesNotFit)?;
            Ok((bytes, SchemaBook::new(1)))
        }
        None => encode(block.format, json, schema, proto_message),
    }
}

/// `json` framed for a block of `format` in the registry framing, and the book that knows its
/// schema (JSON Schema needs none: its values are the JSON text).
pub fn encode(
    format: Format,
    json: &[u8],
    schema: Option<&InputSchema>,
    proto_message: Option<&str>,
) -> Result<(Vec<u8>, SchemaBook), LocalInputError> {
    if format == Format::Json {
        return Ok((json.to_vec(), SchemaBook::new(1)));
    }
    let (id, known) = match schema {
        Some(InputSchema::Registered { id, known }) => (*id, known.clone()),
        Some(InputSchema::Text(text)) => (LOCAL_SCHEMA_ID, parse(format, text)?),
        None if format == Format::JsonSchema => (LOCAL_SCHEMA_ID, Known::Json),
        None => return Err(LocalInputError::SchemaNeeded(format.as_str())),
    };
    let body = match (format, &known) {
        // As written: the pipeline's decode judges it, as it would a JSON topic's value.
        (Format::JsonSchema, Known::Json) => json.to_vec(),
        (Format::Avro, Known::Avro(s)) => {
            let value: serde_json::Value = serde_json::from_slice(json)
                .map_err(|e| LocalInputError::NotJson(e.to_string()))?;
            s.encode_json(value).map_err(LocalInputError::DoesNotFit)?
        }
        (Format::Protobuf, Known::Protobuf(s)) => s
            .encode_json(json, proto_message)
            .map_err(LocalInputError::DoesNotFit)?,
        (Format::Avro | Format::Protobuf, Known::Invalid(why)) => {
            return Err(LocalInputError::BadSchema(why.clone()))
        }
        (expected, found) => {
            return Err(LocalInputError::TypeMismatch {
                found: found.type_name().to_string(),
                expected: expected.as_str(),
            })
        }
    };
    let mut framed = vec![0];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(&body);
    let mut book = SchemaBook::new(1);
    book.learn(id, known);
    Ok((framed, book))
}

/// A schema file's text as `format` reads it.
fn parse(format: Format, text: &str) -> Result<Known, LocalInputError> {
    Ok(match format {
        Format::Avro => Known::Avro(Arc::new(
            AvroSchema::parse(text, &[]).map_err(LocalInputError::BadSchema)?,
        )),
        Format::Protobuf => Known::Protobuf(Arc::new(
            ProtoSchema::parse(text, &[]).map_err(LocalInputError::BadSchema)?,
        )),
        Format::JsonSchema | Format::Json => Known::Json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"V","fields":[
        {"name":"id","type":"string"},
        {"name":"kind","type":{"type":"enum","name":"K","symbols":["home","page"]}},
        {"name":"page","type":["null","string"],"default":null},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

    #[test]
    fn json_is_framed_and_encoded_so_the_pipelines_decode_reads_it_back() {
        let (bytes, book) = encode(
            Format::Avro,
            br#"{"id":"a","kind":"page","page":"p1","ts":1765000000000}"#,
            Some(&InputSchema::Text(SCHEMA.into())),
            None,
        )
        .expect("encode");
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
        let Some(Known::Avro(s)) = book.get(LOCAL_SCHEMA_ID) else {
            panic!("schema learned")
        };
        let doc = s.decode(&bytes[5..]).expect("decode");
        let page = doc.get(doc.root(), "page").expect("page");
        assert_eq!(format!("{page:?}"), r#"Str("p1")"#);
        // The default fills a missing optional field.
        let (bytes, _) = encode(
            Format::Avro,
            br#"{"id":"a","kind":"home","ts":1}"#,
            Some(&InputSchema::Text(SCHEMA.into())),
            None,
        )
        .expect("default");
        assert!(bytes.len() > 5);
    }

    #[test]
    fn what_does_not_fit_says_why() {
        assert_eq!(
            encode(Format::Avro, b"{}", None, None).err(),
            Some(LocalInputError::SchemaNeeded("avro"))
        );
        let text = InputSchema::Text(SCHEMA.into());
        let e = encode(
            Format::Avro,
            br#"{"id":"a","kind":"other","ts":1}"#,
            Some(&text),
            None,
        );
        assert!(matches!(e, Err(LocalInputError::DoesNotFit(_))), "{e:?}");
        let (bytes, book) = encode(Format::JsonSchema, br#"{"a":1}"#, None, None).expect("json");
        assert_eq!(&bytes[5..], br#"{"a":1}"#);
        assert!(matches!(book.get(LOCAL_SCHEMA_ID), Some(Known::Json)));
        // A registered schema of another type than the block's.
        let json = InputSchema::Registered {
            id: 9,
            known: Known::Json,
        };
        assert_eq!(
            encode(Format::Avro, b"{}", Some(&json), None).err(),
            Some(LocalInputError::TypeMismatch {
                found: "JSON".into(),
                expected: "avro"
            })
        );
    }

    #[test]
    fn protobuf_and_registered_schemas_frame_with_their_id() {
        let proto = "syntax = \"proto3\"; package p; message V { string id = 1; int64 n = 2; }";
        let known = Known::Protobuf(Arc::new(ProtoSchema::parse(proto, &[]).expect("proto")));
        let schema = InputSchema::Registered { id: 77, known };
        let (bytes, book) = encode(
            Format::Protobuf,
            br#"{"id":"a","n":"5"}"#,
            Some(&schema),
            None,
        )
        .expect("pb");
        assert_eq!(&bytes[..6], &[0, 0, 0, 0, 77, 0]);
        let Some(Known::Protobuf(s)) = book.get(77) else {
            panic!("learned under its id")
        };
        let doc = s.decode(&bytes[5..]).expect("decode");
        assert_eq!(
            format!("{:?}", doc.get(doc.root(), "n").expect("n")),
            "Int(5)"
        );
        let text = InputSchema::Text(proto.into());
        let (bytes, _) =
            encode(Format::Protobuf, br#"{"id":"b"}"#, Some(&text), None).expect("file");
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
    }
}
