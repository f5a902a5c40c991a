//! A block's own schema file (`schema_file:`, docs/formats.md), for topics written without a
//! schema registry.
//!
//! `format: avro`: every value is a datum of that one schema, either bare (`framing: raw`, what
//! a plain `DatumWriter`/`fastavro.schemaless_writer` writes) or in Avro's single-object
//! encoding (`framing: single_object`: marker `C3 01`, the schema's 8-byte CRC-64-AVRO
//! fingerprint, then the datum — what Java's `BinaryMessageEncoder` writes).
//!
//! `format: protobuf`: every value is one message (`proto_message:`, else the file's first) as
//! `SerializeToString()` writes it — no framing; the `.proto` file's imports are read from its
//! own directory (Google's well-known types are built in).
//!
//! A single-object value written with another schema is refused by its fingerprint
//! (`schema_fingerprint_mismatch`) rather than misread: Avro datums do not describe themselves,
//! so a datum of another schema can decode "successfully" into nonsense. A raw datum has no such
//! check; bytes left over after the record are still refused (`avro_decode`).

use super::book::AvroSchema;
use super::proto::ProtoSchema;
use crate::config::decode::MapReader;
use crate::mapping::doc::{DecodeError, Doc};
use crate::mapping::proto_doc::proto_doc;
use crate::mapping::Format;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use std::path::Path;
use std::sync::Arc;

/// A block's own schema.
#[derive(Debug)]
pub enum LocalSchema {
    Avro(LocalAvro),
    Protobuf(LocalProto),
}

impl LocalSchema {
    /// The file as configured.
    pub fn file(&self) -> &str {
        match self {
            LocalSchema::Avro(a) => &a.file,
            LocalSchema::Protobuf(p) => &p.file,
        }
    }

    /// How values are framed, for `validate`'s summary.
    pub fn describe(&self) -> String {
        match self {
            LocalSchema::Avro(a) => format!("avro from {} ({})", a.file, <&str>::from(a.framing)),
            LocalSchema::Protobuf(p) => {
                format!("protobuf {} from {}", p.message.full_name(), p.file)
            }
        }
    }

    pub fn decode<'a>(&self, payload: Option<&'a [u8]>) -> Result<Doc<'a>, DecodeError> {
        match self {
            LocalSchema::Avro(a) => a.decode(payload),
            LocalSchema::Protobuf(p) => p.decode(payload),
        }
    }

    /// `json` as a value of the block, framed as its topic carries them (`map`, `test`).
    pub fn encode_json(&self, json: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            LocalSchema::Avro(a) => {
                let value: serde_json::Value =
                    serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
                a.encode_json(value)
            }
            LocalSchema::Protobuf(p) => p.encode_json(json),
        }
    }

    /// Whether a value can hold `path` (`validate`'s check of the rules' paths).
    pub fn has_path(&self, path: &[String]) -> bool {
        match self {
            LocalSchema::Avro(a) => a.schema.has_path(path),
            LocalSchema::Protobuf(p) => super::proto::message_has_path(&p.message, path),
        }
    }
}

/// A `format: protobuf` block's `.proto` file and the message type its values are.
#[derive(Debug)]
pub struct LocalProto {
    pub file: String,
    message: MessageDescriptor,
}

impl LocalProto {
    /// Compiles the `.proto` at `path` and finds `message` (full name; the first when `None`).
    pub fn load(path: &Path, message: Option<&str>) -> Result<LocalProto, String> {
        let schema = ProtoSchema::compile_file(path)?;
        let found = schema.message_named(message).ok_or_else(|| match message {
            Some(m) => format!("{} defines no message {m:?}", path.display()),
            None => format!("{} defines no message", path.display()),
        })?;
        Ok(LocalProto {
            file: path.display().to_string(),
            message: found,
        })
    }

    fn decode<'a>(&self, payload: Option<&'a [u8]>) -> Result<Doc<'a>, DecodeError> {
        let bytes = payload.ok_or(DecodeError::Tombstone)?;
        let msg = DynamicMessage::decode(self.message.clone(), bytes)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        proto_doc(&msg)
    }

    fn encode_json(&self, json: &[u8]) -> Result<Vec<u8>, String> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let msg = DynamicMessage::deserialize(self.message.clone(), &mut de)
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(prost::Message::encode_to_vec(&msg))
    }
}

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

/// A block's `schema_file:` (already resolved against the config's directory by
/// `config::load`), with `framing:` (Avro) or `proto_message:` (Protobuf), read and parsed now so
/// that a missing or broken file is a config error, not a dead-lettered topic.
pub fn read_block_schema(
    r: &mut MapReader<'_, '_>,
    format: Format,
) -> Option<crate::schema::file::LocalSchema> {
    let file = r.opt_string("schema_file");
    let framing = r.opt_string("framing");
    let message = r.opt_string("proto_message");
    let Some(file) = file else {
        if framing.is_some() {
            r.error(
                "framing",
                "`framing:` goes with `schema_file:` (registry-framed values carry their own)",
            );
        }
        if message.is_some() {
            r.error(
                "proto_message",
                "`proto_message:` goes with `schema_file:` (registry-framed values name their message)",
            );
        }
        return None;
    };
    let path = std::path::Path::new(&file);
    let loaded = match format {
        Format::Avro => {
            if message.is_some() {
                r.error("proto_message", "only for `format: protobuf` blocks");
            }
            let framing = match framing.as_deref() {
                None => AvroFraming::Raw,
                Some(f) => match f.parse() {
                    Ok(f) => f,
                    Err(_) => {
                        r.error(
                            "framing",
                            format!("{f:?} is not one of: raw, single_object"),
                        );
                        return None;
                    }
                },
            };
            LocalAvro::load(path, framing).map(LocalSchema::Avro)
        }
        Format::Protobuf => {
            if framing.as_deref().is_some_and(|f| f != "raw") {
                r.error(
                    "framing",
                    "a `format: protobuf` block's values are the bare message: `framing: raw` or none",
                );
            }
            LocalProto::load(path, message.as_deref()).map(LocalSchema::Protobuf)
        }
        Format::Json | Format::JsonSchema => {
            r.error(
                "schema_file",
                format!(
                    "a schema file is read for `format: avro` and `protobuf` blocks only (this block is `format: {}`)",
                    format.as_str()
                ),
            );
            return None;
        }
    };
    match loaded {
        Ok(local) => Some(local),
        Err(e) => {
            r.error("schema_file", e);
            None
        }
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
    fn a_proto_file_with_an_import_beside_it_reads_bare_messages() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("v.proto"),
            "syntax = \"proto3\"; package p; import \"d.proto\"; \
             message V { string id = 1; p.d.Device device = 2; } message W { int64 n = 1; }",
        )
        .expect("proto");
        std::fs::write(
            dir.path().join("d.proto"),
            "syntax = \"proto3\"; package p.d; message Device { string os = 1; }",
        )
        .expect("proto");
        let path = dir.path().join("v.proto");
        let local = LocalSchema::Protobuf(LocalProto::load(&path, None).expect("first message"));
        let bytes = local
            .encode_json(br#"{"id":"a","device":{"os":"iOS"}}"#)
            .expect("encode");
        assert_eq!(bytes[0], 0x0a, "the bare message: field 1, no framing");
        let doc = local.decode(Some(&bytes)).expect("decode");
        let device = doc.get(doc.root(), "device").expect("device");
        assert_eq!(
            format!("{:?}", doc.get(device, "os")),
            r#"Some(Str("iOS"))"#
        );
        assert!(local.has_path(&["device".into(), "os".into()]));
        assert!(!local.has_path(&["n".into()]));
        let w = LocalSchema::Protobuf(LocalProto::load(&path, Some("p.W")).expect("W"));
        assert!(w.has_path(&["n".into()]));
        assert_eq!(
            w.decode(Some(&[0x08, 0xff])).expect_err("cut").code(),
            "protobuf_decode"
        );
        assert!(LocalProto::load(&path, Some("p.X")).is_err());
        assert!(LocalProto::load(&dir.path().join("none.proto"), None).is_err());
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
