//! `format: avro` with the block's own schema file (`schema_file:`, docs/formats.md), for topics
//! written without a schema registry: every value is a datum of that one schema, either bare
//! (`framing: raw`, what a plain `DatumWriter`/`fastavro.schemaless_writer` writes) or in Avro's
//! single-object encoding (`framing: single_object`: marker `C3 01`, the schema's 8-byte
//! CRC-64-AVRO fingerprint, then the datum — what Java's `BinaryMessageEncoder` writes).
//!
//! A single-object value written with another schema is refused by its fingerprint
//! (`schema_fingerprint_mismatch`) rather than misread: Avro datums do not describe themselves,
//! so a datum of another schema can decode "successfully" into nonsense. A raw datum has no such
//! check; bytes left over after the record are still refused (`avro_decode`).

use super::book::AvroSchema;
use crate::mapping::doc::{DecodeError, Doc};
use std::path::Path;
use std::sync::Arc;

/// How a local-schema block's values are framed (`framing:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum AvroFraming {
    /// The datum alone.
    Raw,
    /// Avro's single-object encoding: `C3 01`, the schema fingerprint, the datum.
    SingleObject,
}

/// Avro's single-object marker.
const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// The marker and the 8-byte fingerprint.
const SINGLE_OBJECT_HEADER_LEN: usize = 10;

/// A block's schema file, parsed.
#[derive(Debug)]
pub struct LocalAvro {
    /// The path as configured (for messages).
    pub file: String,
    pub schema: Arc<AvroSchema>,
    pub framing: AvroFraming,
    /// The single-object header this schema's values carry.
    header: [u8; SINGLE_OBJECT_HEADER_LEN],
}

impl LocalAvro {
    /// Reads and parses the `.avsc` at `path`.
    pub fn load(path: &Path, framing: AvroFraming) -> Result<LocalAvro, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        LocalAvro::parse(&path.display().to_string(), &text, framing)
    }

    /// Parses schema `text` (from `file`).
    pub fn parse(file: &str, text: &str, framing: AvroFraming) -> Result<LocalAvro, String> {
        let schema = AvroSchema::parse(text, &[])
            .map_err(|e| format!("{file} is not an Avro schema: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let fingerprint = super::canonical::fingerprint(&json)
            .map_err(|e| format!("{file}: no fingerprint: {e}"))?;
        let mut header = [0; SINGLE_OBJECT_HEADER_LEN];
        header[..2].copy_from_slice(&SINGLE_OBJECT_MARKER);
        header[2..].copy_from_slice(&fingerprint);
        Ok(LocalAvro {
            file: file.to_string(),
            schema: Arc::new(schema),
            framing,
            header,
        })
    }

    /// Decodes one value of the block.
    pub fn decode<'a>(&self, payload: Option<&'a [u8]>) -> Result<Doc<'a>, DecodeError> {
        let bytes = payload.ok_or(DecodeError::Tombstone)?;
        match self.framing {
            AvroFraming::Raw => self.schema.decode(bytes),
            AvroFraming::SingleObject => self.schema.decode(self.strip_header(bytes)?),
        }
    }

    /// The datum after a single-object header that names this schema.
    fn strip_header<'b>(&self, bytes: &'b [u8]) -> Result<&'b [u8], DecodeError> {
        if bytes.len() < SINGLE_OBJECT_HEADER_LEN {
            return match bytes {
                [a, b, ..] if [*a, *b] != SINGLE_OBJECT_MARKER => {
                    Err(DecodeError::NotSingleObject([*a, *b]))
                }
                _ => Err(DecodeError::TruncatedSingleObject(bytes.len())),
            };
        }
        let (header, datum) = bytes.split_at(SINGLE_OBJECT_HEADER_LEN);
        if header[..2] != SINGLE_OBJECT_MARKER {
            return Err(DecodeError::NotSingleObject([header[0], header[1]]));
        }
        if header[2..] != self.header[2..] {
            return Err(DecodeError::FingerprintMismatch {
                found: hex::encode(&header[2..]),
                expected: hex::encode(&self.header[2..]),
            });
        }
        Ok(datum)
    }

    /// `json` as a value of this block, framed as its topic carries them (for `map` and `test`).
    pub fn encode_json(&self, json: serde_json::Value) -> Result<Vec<u8>, String> {
        let datum = self.schema.encode_json(json)?;
        Ok(match self.framing {
            AvroFraming::Raw => datum,
            AvroFraming::SingleObject => [&self.header[..], &datum].concat(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"string"},
        {"name":"total","type":"long"}]}"#;

    fn id_of(doc: &Doc<'_>) -> String {
        format!("{:?}", doc.get(doc.root(), "id").expect("id"))
    }

    #[test]
    fn a_raw_datum_decodes_and_leftover_bytes_are_refused() {
        let local = LocalAvro::parse("o.avsc", SCHEMA, AvroFraming::Raw).expect("parse");
        let datum = local
            .encode_json(serde_json::json!({"id": "o-1", "total": 5}))
            .expect("encode");
        // "o-1" is 3 bytes: zigzag length 6, then the text, then 5 as zigzag 10.
        assert_eq!(datum, [6, b'o', b'-', b'1', 10]);
        let doc = local.decode(Some(&datum)).expect("decode");
        assert_eq!(id_of(&doc), r#"Str("o-1")"#);
        let longer = [&datum[..], &[0]].concat();
        let e = local.decode(Some(&longer)).expect_err("leftover");
        assert_eq!(e.code(), "avro_decode");
        assert_eq!(local.decode(None).err(), Some(DecodeError::Tombstone));
    }

    #[test]
    fn a_single_object_names_its_schema_and_another_schemas_is_refused() {
        let local = LocalAvro::parse("o.avsc", SCHEMA, AvroFraming::SingleObject).expect("parse");
        let framed = local
            .encode_json(serde_json::json!({"id": "o-1", "total": 5}))
            .expect("encode");
        assert_eq!(&framed[..2], &[0xC3, 0x01]);
        // The header is the one apache-avro's own single-object writer puts (for a schema
        // without logical types: with them, its canonical form differs, see `canonical`).
        let mut written = Vec::new();
        let value = apache_avro::types::Value::Record(vec![
            ("id".into(), apache_avro::types::Value::String("o-1".into())),
            ("total".into(), apache_avro::types::Value::Long(5)),
        ]);
        let schema = apache_avro::Schema::parse_str(SCHEMA).expect("schema");
        apache_avro::GenericSingleObjectWriter::new_with_capacity(&schema, 64)
            .expect("writer")
            .write_value(value, &mut written)
            .expect("write");
        assert_eq!(framed, written);
        // And the one fastavro computes for it (scripts/schema_produce.py, avro_single_object):
        // another implementation of the fingerprint and its byte order.
        assert_eq!(hex::encode(&framed[..10]), "c301b2e16df398ee0cf1");
        assert_eq!(
            id_of(&local.decode(Some(&framed)).expect("decode")),
            r#"Str("o-1")"#
        );

        let other = LocalAvro::parse(
            "p.avsc",
            &SCHEMA.replace("\"total\",\"type\":\"long\"", "\"total\",\"type\":\"int\""),
            AvroFraming::SingleObject,
        )
        .expect("other");
        let e = other.decode(Some(&framed)).expect_err("mismatch");
        assert_eq!(e.code(), "schema_fingerprint_mismatch");
        let raw = &framed[10..];
        let e = local.decode(Some(raw)).expect_err("no marker");
        assert_eq!(e.code(), "bad_magic_byte");
        let e = local.decode(Some(&framed[..6])).expect_err("short");
        assert_eq!(e.code(), "truncated_frame");
    }

    #[test]
    fn a_file_that_is_not_a_schema_says_which() {
        let e = LocalAvro::parse("x.avsc", "{\"type\":\"recordx\"}", AvroFraming::Raw)
            .expect_err("refused");
        assert!(e.starts_with("x.avsc is not an Avro schema"), "{e}");
        let e = LocalAvro::load(Path::new("/nonexistent/x.avsc"), AvroFraming::Raw)
            .expect_err("missing");
        assert!(e.starts_with("cannot read /nonexistent/x.avsc"), "{e}");
    }
}
