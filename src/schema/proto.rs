//! Protobuf schemas from the registry: the main schema and its references (imports, by the
//! reference's name) compiled with protox, Google's well-known types built in. A schema arrives
//! as `.proto` text (Confluent's answer) or as a base64 `FileDescriptorProto` (what Confluent's
//! Python and Go serializers register); both are read.
//!
//! A value names its message by indexes after the schema id (Confluent's framing: a zigzag
//! varint count, then that many indexes; a single 0 is `[0]`, the first message): the first is a
//! top-level message of the main file, each next one a message nested in the previous.

use crate::mapping::doc::{DecodeError, Doc};
use crate::mapping::proto_doc::proto_doc;
use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use std::collections::HashMap;

/// The name the main schema is compiled under when it is text (it has no name of its own).
const MAIN: &str = "__registry_schema__.proto";

#[derive(Debug)]
pub struct ProtoSchema {
    file: FileDescriptor,
}

/// The registry's schemas by import name.
struct Sources(HashMap<String, File>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// A schema string as a file named `name`: a base64 `FileDescriptorProto`, else `.proto` text.
fn file_of(name: &str, schema: &str) -> Result<(String, File), String> {
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(schema.trim()) {
        if let Ok(f) = File::decode_file_descriptor_proto(bytes.as_slice()) {
            let own = f.name().to_string();
            return Ok((
                if own.is_empty() {
                    name.to_string()
                } else {
                    own
                },
                f,
            ));
        }
    }
    File::from_source(name, schema)
        .map(|f| (name.to_string(), f))
        .map_err(|e| format!("{name}: {e}"))
}

impl ProtoSchema {
    /// Compiles `main` with `references` (import name, schema).
    pub fn parse(main: &str, references: &[(String, String)]) -> Result<ProtoSchema, String> {
        let mut files = HashMap::new();
        for (name, text) in references {
            let (name, f) = file_of(name, text)?;
            files.insert(name, f);
        }
        let (main_name, main_file) = file_of(MAIN, main)?;
        files.insert(main_name.clone(), main_file);
        let mut chain = ChainFileResolver::new();
        chain.add(Sources(files));
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.open_file(&main_name).map_err(|e| e.to_string())?;
        let pool: DescriptorPool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(&main_name)
            .ok_or_else(|| format!("{main_name} missing after compiling"))?;
        Ok(ProtoSchema { file })
    }

    /// Compiles the `.proto` file at `path`, its imports read from its own directory (and
    /// Google's well-known types): a `schema_file:` block's schema.
    pub fn compile_file(path: &std::path::Path) -> Result<ProtoSchema, String> {
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a file name", path.display()))?;
        let mut compiler = protox::Compiler::new([dir]).map_err(|e| e.to_string())?;
        compiler.open_file(name).map_err(|e| e.to_string())?;
        let file = compiler
            .descriptor_pool()
            .get_file_by_name(name)
            .ok_or_else(|| format!("{name} missing after compiling"))?;
        Ok(ProtoSchema { file })
    }

    /// The message of full name `name`, or the file's first when `None`.
    pub fn message_named(&self, name: Option<&str>) -> Option<MessageDescriptor> {
        match name {
            None => self.file.messages().next(),
            Some(n) => self.file.parent_pool().get_message_by_name(n),
        }
    }

    /// The message `indexes` name (see the module docs).
    pub fn message(&self, indexes: &[i64]) -> Option<MessageDescriptor> {
        let (first, rest) = indexes.split_first()?;
        let mut m = self.file.messages().nth(usize::try_from(*first).ok()?)?;
        for i in rest {
            let next = m.child_messages().nth(usize::try_from(*i).ok()?)?;
            m = next;
        }
        Some(m)
    }

    /// Decodes the value after the schema id (message indexes, then the message).
    pub fn decode(&self, after_id: &[u8]) -> Result<Doc<'static>, DecodeError> {
        let (indexes, body) = message_indexes(after_id)?;
        let desc = self.message(&indexes).ok_or_else(|| {
            DecodeError::Protobuf(format!(
                "message indexes {indexes:?} name no message of the schema"
            ))
        })?;
        let msg =
            DynamicMessage::decode(desc, body).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        proto_doc(&msg)
    }

    /// `json` (protobuf's JSON mapping: field names or their JSON names, enum names, RFC 3339
    /// timestamps, plain values for wrappers) as a message of type `message` (full name; the
    /// first top-level message when `None`), preceded by the message indexes that name it: the
    /// bytes after the schema id, as Confluent's serializer writes them. For `map` and `test`.
    pub fn encode_json(&self, json: &[u8], message: Option<&str>) -> Result<Vec<u8>, String> {
        let indexes = match message {
            None => vec![0],
            Some(name) => self
                .indexes_of(name)
                .ok_or_else(|| format!("the schema has no message {name:?}"))?,
        };
        let desc = self
            .message(&indexes)
            .ok_or("the schema defines no message")?;
        let mut de = serde_json::Deserializer::from_slice(json);
        let msg = DynamicMessage::deserialize(desc, &mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        if indexes == [0] {
            out.push(0); // Confluent's short form for the first message
        } else {
            put_zigzag(&mut out, indexes.len() as i64);
            for i in &indexes {
                put_zigzag(&mut out, *i);
            }
        }
        prost::Message::encode(&msg, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The message indexes of the message named `full_name` (top-level index, then nested).
    fn indexes_of(&self, full_name: &str) -> Option<Vec<i64>> {
        fn find(ms: Vec<MessageDescriptor>, name: &str, path: &mut Vec<i64>) -> bool {
            for (i, m) in ms.into_iter().enumerate() {
                path.push(i as i64);
                if m.full_name() == name || find(m.child_messages().collect(), name, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        find(self.file.messages().collect(), full_name, &mut path).then_some(path)
    }

    /// Whether a message of the first top-level type can hold `path` (see
    /// [`super::book::AvroSchema::has_path`]; for `validate --online`).
    pub fn has_path(&self, path: &[String]) -> bool {
        self.file
            .messages()
            .next()
            .is_some_and(|m| message_has_path(&m, path))
    }
}

/// Whether message `m` can hold `path` (field names from the root; a map holds any key,
/// repeated fields are transparent).
pub fn message_has_path(m: &MessageDescriptor, path: &[String]) -> bool {
    fn has(m: &MessageDescriptor, path: &[String], depth: usize) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return true;
        };
        if depth > 64 {
            return false;
        }
        let Some(field) = m.get_field_by_name(first) else {
            return false;
        };
        if rest.is_empty() {
            return true;
        }
        if field.is_map() {
            return true; // any key
        }
        match field.kind().as_message() {
            Some(inner) if inner.full_name() == "google.protobuf.Timestamp" => false,
            Some(inner) => has(inner, rest, depth + 1),
            None => false,
        }
    }
    has(m, path, 0)
}

/// Reads a zigzag varint.
fn varint(buf: &mut &[u8]) -> Option<i64> {
    let mut x: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        x |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((x >> 1) as i64) ^ -((x & 1) as i64));
        }
    }
    None
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut x = ((v << 1) ^ (v >> 63)) as u64;
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The message indexes at the start of `after_id` and the message bytes after them.
pub fn message_indexes(mut after_id: &[u8]) -> Result<(Vec<i64>, &[u8]), DecodeError> {
    let bad = || {
        DecodeError::Protobuf("the message indexes after the schema id are cut or invalid".into())
    };
    let count = varint(&mut after_id).ok_or_else(bad)?;
    if count == 0 {
        return Ok((vec![0], after_id));
    }
    if !(1..=100).contains(&count) {
        return Err(bad());
    }
    let mut indexes = Vec::new();
    for _ in 0..count {
        indexes.push(varint(&mut after_id).ok_or_else(bad)?);
    }
    Ok((indexes, after_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    const PROTO: &str = r#"
syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common.proto";
message PageView {
  string id = 1;
  Kind kind = 2;
  google.protobuf.Timestamp at = 3;
  google.protobuf.StringValue coupon = 4;
  repeated Item items = 5;
  map<string, string> attrs = 6;
  oneof who { string email = 7; int64 customer_id = 8; }
  acme.common.Device device = 9;
  message Item { string sku = 1; int64 qty = 2; }
}
enum Kind { KIND_UNSPECIFIED = 0; HOME = 1; PAGE = 2; }
"#;
    const COMMON: &str = r#"
syntax = "proto3";
package acme.common;
message Device { string os = 1; }
"#;

    fn schema() -> ProtoSchema {
        ProtoSchema::parse(PROTO, &[("common.proto".into(), COMMON.into())]).expect("compiles")
    }

    #[test]
    fn a_message_reads_as_its_json_would_with_well_known_types_and_references() {
        let s = schema();
        let desc = s.message(&[0]).expect("PageView");
        let msg = DynamicMessage::parse_text_format(
            desc,
            r#"id: "v1" kind: PAGE at { seconds: 1765000000 nanos: 123456789 }
               coupon { value: "XMAS" } items { sku: "s1" qty: 2 } items { sku: "s2" }
               attrs { key: "b" value: "2" } attrs { key: "a" value: "1" }
               customer_id: 42 device { os: "iOS" }"#,
        );
        let Ok(msg) = msg else {
            panic!("text format: {msg:?}");
        };
        let mut framed = vec![0u8]; // indexes [0], the optimised form
        msg.encode(&mut framed).expect("encode");
        let doc = s.decode(&framed).expect("decode");
        let get = |k: &str| doc.get(doc.root(), k).cloned();
        use crate::mapping::doc::Node;
        assert_eq!(get("id"), Some(Node::Str("v1".into())));
        assert_eq!(get("kind"), Some(Node::Str("PAGE".into())));
        assert_eq!(get("at"), Some(Node::Int(1_765_000_000_123)));
        assert_eq!(get("coupon"), Some(Node::Str("XMAS".into())));
        assert_eq!(get("customer_id"), Some(Node::Int(42)));
        assert_eq!(get("email"), None, "the oneof member not set");
        let items = doc.get(doc.root(), "items").expect("items");
        assert_eq!(doc.items(items).map(<[_]>::len), Some(2));
        let second = doc.at(items, 1).expect("second");
        assert_eq!(doc.get(second, "qty"), None, "proto3 default: absent");
        let attrs = doc.get(doc.root(), "attrs").expect("attrs");
        assert_eq!(doc.get(attrs, "a"), Some(&Node::Str("1".into())));
        let device = doc.get(doc.root(), "device").expect("device");
        assert_eq!(doc.get(device, "os"), Some(&Node::Str("iOS".into())));
        for p in ["id", "items.sku", "attrs.anything", "device.os", "at"] {
            let path: Vec<String> = p.split('.').map(String::from).collect();
            assert!(s.has_path(&path), "{p}");
        }
        assert!(!s.has_path(&["nope".to_string()]));
    }

    #[test]
    fn json_input_encodes_as_confluents_serializer_frames_it_and_decodes_back() {
        use crate::mapping::doc::Node;
        let s = schema();
        let body = s
            .encode_json(
                br#"{"id":"v1","kind":"PAGE","at":"2025-12-06T05:46:40.123Z","coupon":"XMAS","customerId":"42","items":[{"sku":"s1","qty":"2"}]}"#,
                None,
            )
            .expect("encode");
        assert_eq!(body[0], 0, "the first message: the short form");
        let doc = s.decode(&body).expect("decode");
        let get = |k: &str| doc.get(doc.root(), k).cloned();
        assert_eq!(get("kind"), Some(Node::Str("PAGE".into())));
        assert_eq!(get("at"), Some(Node::Int(1_765_000_000_123)));
        assert_eq!(get("coupon"), Some(Node::Str("XMAS".into())));
        assert_eq!(get("customer_id"), Some(Node::Int(42)));
        // A nested message is named by its indexes: count 2, then 0 and 1 (zigzag; index 0 of
        // PageView's nested types is the map entry `AttrsEntry`, laid out before `Item`).
        let item = s
            .encode_json(br#"{"sku":"s9"}"#, Some("acme.PageView.Item"))
            .expect("nested");
        assert_eq!(&item[..3], &[4, 0, 2]);
        let doc = s.decode(&item).expect("decode nested");
        assert_eq!(
            doc.get(doc.root(), "sku").cloned(),
            Some(Node::Str("s9".into()))
        );
        for (json, message, why) in [
            (&br#"{"nope":1}"#[..], None, "nope"),
            (br#"{"id":"a"} x"#, None, "trailing"),
            (
                br#"{}"#,
                Some("acme.Missing"),
                "no message \"acme.Missing\"",
            ),
        ] {
            let e = s.encode_json(json, message).expect_err(why);
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn message_indexes_pick_nested_messages_and_bad_ones_are_refused() {
        let s = schema();
        // Nested types in descriptor order, map entries included (as protoc lays them out and
        // as Confluent's serializers count them): `attrs`' entry is [0, 0], Item [0, 1].
        assert_eq!(
            s.message(&[0, 0]).expect("entry").full_name(),
            "acme.PageView.AttrsEntry"
        );
        let desc = s.message(&[0, 1]).expect("Item");
        assert_eq!(desc.full_name(), "acme.PageView.Item");
        // count 2 (zigzag 4), indexes 0 and 1 (zigzag 0 and 2).
        let mut framed = vec![4u8, 0, 2];
        let item = DynamicMessage::parse_text_format(desc, r#"sku: "s9""#).expect("item");
        item.encode(&mut framed).expect("encode");
        let doc = s.decode(&framed).expect("decode");
        assert!(doc.get(doc.root(), "sku").is_some());
        assert!(
            matches!(s.decode(&[2, 18]), Err(DecodeError::Protobuf(_))),
            "index 9 names nothing"
        );
        assert!(
            matches!(s.decode(&[0x80]), Err(DecodeError::Protobuf(_))),
            "cut varint"
        );
        assert!(
            matches!(s.decode(&[0, 0xff, 0xff]), Err(DecodeError::Protobuf(_))),
            "bad message"
        );
        assert!(ProtoSchema::parse("syntax = \"proto3\"; message X { Y y = 1; }", &[]).is_err());
    }

    #[test]
    fn a_base64_file_descriptor_is_read_like_text() {
        let fds = protox::Compiler::with_file_resolver(Sources(
            [(
                "c.proto".to_string(),
                File::from_source("c.proto", COMMON).expect("src"),
            )]
            .into(),
        ))
        .open_file("c.proto")
        .expect("compile")
        .file_descriptor_set();
        let bytes = fds.file[0].encode_to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let s = ProtoSchema::parse(&b64, &[]).expect("descriptor");
        assert_eq!(
            s.message(&[0]).expect("Device").full_name(),
            "acme.common.Device"
        );
    }
}
