//! Schema'd input for `map` and `test`: a message written as JSON, plus (for Avro) the schema it
//! is registered with, encoded here exactly as a registry serializer frames it — magic byte 0,
//! a schema id, the Avro datum or the JSON text — so that it goes through the pipeline's own
//! decode ([`super::decode`]) and not a shortcut.
//!
//! The id is [`LOCAL_SCHEMA_ID`] in a book of its own: nothing is fetched. JSON becomes Avro by
//! apache-avro's schema resolution (objects to records with their defaults, strings to enum
//! symbols, values to the union branch they fit, numbers to `long`, `timestamp-millis`, …).
//! What JSON cannot express that way (`decimal`, `fixed`, `bytes`) is refused with apache-avro's
//! reason.

use super::book::{AvroSchema, Known, SchemaBook};
use crate::mapping::Format;
use std::sync::Arc;

/// The schema id local input is framed with.
pub const LOCAL_SCHEMA_ID: u32 = 1;

/// Why local input could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalInputError {
    #[error(
        "this topic's block reads Avro: give the Avro schema (.avsc) the message is written with"
    )]
    SchemaNeeded,
    #[error("map and test do not take Protobuf input yet: try the rules on a record produced to the topic (mcm-bridge tap shows how it reads)")]
    ProtobufNotYet,
    #[error("the schema does not parse: {0}")]
    BadSchema(String),
    #[error("the message is not JSON: {0}")]
    NotJson(String),
    #[error("the message does not fit the schema: {0}")]
    DoesNotFit(String),
}

/// `json` (a message's JSON text) as a value of `block`, and the book that knows its schema:
/// with the block's own schema file and framing when it has one, else framed as a registry
/// serializer does for [`encode`].
pub fn encode_for(
    block: &crate::mapping::TopicMapping,
    json: &[u8],
    avro_schema: Option<&str>,
) -> Result<(Vec<u8>, SchemaBook), LocalInputError> {
    match block.local_avro() {
        Some(local) => {
            let value: serde_json::Value = serde_json::from_slice(json)
                .map_err(|e| LocalInputError::NotJson(e.to_string()))?;
            let bytes = local
                .encode_json(value)
                .map_err(LocalInputError::DoesNotFit)?;
            Ok((bytes, SchemaBook::new(1)))
        }
        None => encode(block.format, json, avro_schema),
    }
}

/// `json` (a message's JSON text) framed for a block of `format`, and the book that knows its
/// schema. `avro_schema` is the `.avsc` text (needed for Avro, ignored for JSON Schema).
pub fn encode(
    format: Format,
    json: &[u8],
    avro_schema: Option<&str>,
) -> Result<(Vec<u8>, SchemaBook), LocalInputError> {
    let mut book = SchemaBook::new(1);
    let mut framed = vec![0];
    framed.extend_from_slice(&LOCAL_SCHEMA_ID.to_be_bytes());
    match format {
        Format::Json => return Ok((json.to_vec(), book)),
        Format::Protobuf => return Err(LocalInputError::ProtobufNotYet),
        Format::JsonSchema => {
            framed.extend_from_slice(json);
            book.learn(LOCAL_SCHEMA_ID, Known::Json);
        }
        Format::Avro => {
            let text = avro_schema.ok_or(LocalInputError::SchemaNeeded)?;
            let schema = AvroSchema::parse(text, &[]).map_err(LocalInputError::BadSchema)?;
            let value: serde_json::Value = serde_json::from_slice(json)
                .map_err(|e| LocalInputError::NotJson(e.to_string()))?;
            let datum = schema
                .encode_json(value)
                .map_err(LocalInputError::DoesNotFit)?;
            framed.extend_from_slice(&datum);
            book.learn(LOCAL_SCHEMA_ID, Known::Avro(Arc::new(schema)));
        }
    }
    Ok((framed, book))
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
            Some(SCHEMA),
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
            Some(SCHEMA),
        )
        .expect("default");
        assert!(bytes.len() > 5);
    }

    #[test]
    fn what_does_not_fit_says_why() {
        assert_eq!(
            encode(Format::Avro, b"{}", None).err(),
            Some(LocalInputError::SchemaNeeded)
        );
        let e = encode(
            Format::Avro,
            br#"{"id":"a","kind":"other","ts":1}"#,
            Some(SCHEMA),
        );
        assert!(matches!(e, Err(LocalInputError::DoesNotFit(_))), "{e:?}");
        let (bytes, book) = encode(Format::JsonSchema, br#"{"a":1}"#, None).expect("json");
        assert_eq!(&bytes[5..], br#"{"a":1}"#);
        assert!(matches!(book.get(LOCAL_SCHEMA_ID), Some(Known::Json)));
    }
}
