//! What the bridge knows of each schema id: a parsed schema, or the registry's permanent answer
//! that there is none or that it cannot be used. Bounded: beyond `capacity` ids the oldest
//! learned is forgotten (and fetched again if a message needs it). Pure: filled by the pipeline
//! with what [`super::registry`] fetched.

use crate::mapping::avro_doc::{avro_doc, Names};
use crate::mapping::doc::{DecodeError, Doc};
use apache_avro::schema::{ResolvedSchema, Schema};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The most apache-avro may reserve for one string, bytes value or collection: it reserves what
/// a length or block count *says* before reading the items, so without this a message of a few
/// bytes claiming 500 million map entries would make it allocate gigabytes (an OOM kill, again
/// at every restart, as the message is never committed). 1 Mi: more than any field of a commerce
/// event needs; a value over it is dead-lettered as `avro_decode`. apache-avro keeps the first
/// value it is given, process-wide; set before every decode, so it is in force from the first.
pub const MAX_AVRO_ALLOCATION: usize = 1 << 20;

fn limit_avro_allocations() {
    apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
}

/// A parsed Avro schema with the schemas it references (by name).
#[derive(Debug)]
pub struct AvroSchema {
    main: Schema,
    references: Vec<Schema>,
    /// Every named type of `main` and its references, for following `Ref`s.
    names: Names,
}

impl AvroSchema {
    /// Parses `text` with the texts of the schemas it references (in any order).
    pub fn parse(text: &str, references: &[String]) -> Result<AvroSchema, String> {
        let (main, references) = if references.is_empty() {
            (
                Schema::parse_str(text).map_err(|e| e.to_string())?,
                Vec::new(),
            )
        } else {
            Schema::parse_str_with_list(text, references).map_err(|e| e.to_string())?
        };
        // References first: names resolve in order.
        let mut all: Vec<&Schema> = references.iter().collect();
        all.push(&main);
        let names = ResolvedSchema::try_from(all)
            .map_err(|e| e.to_string())?
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        Ok(AvroSchema {
            main,
            references,
            names,
        })
    }

    /// `json` as a datum of this schema (apache-avro's schema resolution: objects to records
    /// with their defaults, strings to enum symbols, values to the union branch they fit).
    pub fn encode_json(&self, json: serde_json::Value) -> Result<Vec<u8>, String> {
        let value = apache_avro::types::Value::from(json)
            .resolve_schemata(&self.main, self.references.iter().collect())
            .map_err(|e| e.to_string())?;
        apache_avro::to_avro_datum_schemata(&self.main, self.references.iter().collect(), value)
            .map_err(|e| e.to_string())
    }

    /// Whether a value of this schema can hold `path` (member names from the root; arrays are
    /// transparent, a union holds what any branch holds, a map holds any key).
    pub fn has_path(&self, path: &[String]) -> bool {
        fn has(s: &Schema, names: &Names, path: &[String], depth: usize) -> bool {
            if depth > 64 {
                return false; // a recursive schema followed too far
            }
            let s = match s {
                Schema::Ref { name } => match names.get(name) {
                    Some(s) => s,
                    None => return false,
                },
                s => s,
            };
            match s {
                Schema::Union(u) => u.variants().iter().any(|b| has(b, names, path, depth + 1)),
                Schema::Array(a) => has(&a.items, names, path, depth + 1),
                _ if path.is_empty() => true,
                Schema::Record(r) => r
                    .fields
                    .iter()
                    .find(|f| f.name == path[0])
                    .is_some_and(|f| has(&f.schema, names, &path[1..], depth + 1)),
                Schema::Map(m) => has(&m.types, names, &path[1..], depth + 1),
                Schema::Duration => {
                    path.len() == 1 && ["months", "days", "millis"].contains(&path[0].as_str())
                }
                _ => false,
            }
        }
        has(&self.main, &self.names, path, 0)
    }

    /// Decodes one datum (the bytes after the framing) into a document.
    pub fn decode(&self, mut body: &[u8]) -> Result<Doc<'static>, DecodeError> {
        limit_avro_allocations();
        let value = apache_avro::from_avro_datum_schemata(
            &self.main,
            self.references.iter().collect(),
            &mut body,
            None,
        )
        .map_err(|e| DecodeError::Avro(e.to_string()))?;
        if !body.is_empty() {
            return Err(DecodeError::Avro(format!(
                "{} bytes left after the record (written with another schema?)",
                body.len()
            )));
        }
        avro_doc(value, &self.main, &self.names)
    }
}

/// What the registry said about one schema id.
#[derive(Debug, Clone)]
pub enum Known {
    Avro(Arc<AvroSchema>),
    Protobuf(Arc<super::proto::ProtoSchema>),
    /// A JSON Schema: values are JSON; the schema itself is not checked against them (the
    /// mapping rules and MCM's validation judge the content).
    Json,
    /// A schema of a type this version does not read, by its registry type name.
    Other(String),
    /// 404 with the registry's "schema not found" code.
    NotFound,
    /// The registry's text does not parse, or a reference cannot be resolved.
    Invalid(String),
}

impl Known {
    /// The registry's `schemaType` name.
    pub fn type_name(&self) -> &str {
        match self {
            Known::Avro(_) => "AVRO",
            Known::Protobuf(_) => "PROTOBUF",
            Known::Json => "JSON",
            Known::Other(t) => t,
            Known::NotFound | Known::Invalid(_) => "unknown",
        }
    }
}

/// How long a negative answer (no such schema, or one that cannot be used) is believed: after
/// it, the id is fetched again when a message needs it. A schema restored in the registry (a
/// soft delete undone, a reference registered late) is then read again without a restart, at
/// the cost of one fetch — three answers a second apart for a "not found" — per id every
/// `NEGATIVE_TTL` while its messages keep coming.
pub const NEGATIVE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Schema ids and what is known of them, at most `capacity`.
#[derive(Debug)]
pub struct SchemaBook {
    known: HashMap<u32, Known>,
    /// When each negative answer ([`Known::NotFound`], [`Known::Invalid`]) stops being believed.
    negative_until: HashMap<u32, std::time::Instant>,
    /// Ids in the order they were learned, for forgetting the oldest.
    order: VecDeque<u32>,
    capacity: usize,
}

impl SchemaBook {
    pub fn new(capacity: usize) -> SchemaBook {
        SchemaBook {
            known: HashMap::new(),
            negative_until: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `id` is known (a negative answer only until [`NEGATIVE_TTL`] has passed).
    pub fn knows(&self, id: u32) -> bool {
        if self.negative_until.contains_key(&id) {
            // The clock is read only for negative answers: known schemas cost a lookup.
            return self.knows_at(id, std::time::Instant::now());
        }
        self.known.contains_key(&id)
    }

    /// [`Self::knows`] at `now`.
    pub fn knows_at(&self, id: u32, now: std::time::Instant) -> bool {
        match self.negative_until.get(&id) {
            Some(until) => now < *until,
            None => self.known.contains_key(&id),
        }
    }

    pub fn get(&self, id: u32) -> Option<&Known> {
        self.known.get(&id)
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Records what the registry said of `id`, forgetting the oldest id beyond the capacity.
    pub fn learn(&mut self, id: u32, known: Known) {
        self.learn_at(id, known, std::time::Instant::now());
    }

    /// [`Self::learn`] at `now` (a negative answer is believed until `now + NEGATIVE_TTL`).
    pub fn learn_at(&mut self, id: u32, known: Known, now: std::time::Instant) {
        if matches!(known, Known::NotFound | Known::Invalid(_)) {
            self.negative_until.insert(id, now + NEGATIVE_TTL);
        } else {
            self.negative_until.remove(&id);
        }
        if self.known.insert(id, known).is_none() {
            self.order.push_back(id);
        }
        while self.known.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.known.remove(&old);
                    self.negative_until.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_id_is_forgotten_beyond_the_capacity() {
        let mut b = SchemaBook::new(2);
        b.learn(1, Known::Json);
        b.learn(2, Known::NotFound);
        b.learn(2, Known::Json);
        assert_eq!(b.len(), 2);
        b.learn(3, Known::Json);
        assert!(!b.knows(1) && b.knows(2) && b.knows(3));
    }

    #[test]
    fn a_negative_answer_is_believed_for_its_ttl_then_asked_again() {
        let mut b = SchemaBook::new(4);
        let now = std::time::Instant::now();
        let later = now + NEGATIVE_TTL + std::time::Duration::from_secs(1);
        b.learn_at(1, Known::NotFound, now);
        b.learn_at(2, Known::Invalid("bad".into()), now);
        b.learn_at(3, Known::Json, now);
        b.learn_at(4, Known::NotFound, later);
        assert!(
            b.knows_at(1, now) && b.knows_at(2, now),
            "believed at first"
        );
        assert!(
            !b.knows_at(1, later) && !b.knows_at(2, later),
            "expired: fetched again"
        );
        assert!(b.knows_at(3, later), "a schema is kept");
        assert!(b.knows_at(4, later), "a fresh not-found is believed");
        // The refetch finds it this time.
        b.learn_at(1, Known::Json, later);
        assert!(b.knows_at(1, later + NEGATIVE_TTL));
        assert!(matches!(b.get(1), Some(Known::Json)));
    }

    #[test]
    fn paths_are_checked_through_records_unions_arrays_and_maps() {
        let s = AvroSchema::parse(
            r#"{"type":"record","name":"E","fields":[
              {"name":"customer","type":["null",{"type":"record","name":"C","fields":[
                 {"name":"email","type":"string"}]}]},
              {"name":"items","type":{"type":"array","items":{"type":"record","name":"I",
                 "fields":[{"name":"sku","type":"string"}]}}},
              {"name":"attrs","type":{"type":"map","values":"string"}},
              {"name":"again","type":["null","C"]}]}"#,
            &[],
        )
        .expect("schema");
        let p = |t: &str| t.split('.').map(String::from).collect::<Vec<_>>();
        for ok in [
            "customer.email",
            "items.sku",
            "items",
            "attrs.color",
            "again.email",
        ] {
            assert!(s.has_path(&p(ok)), "{ok}");
        }
        for missing in ["customer.phone", "items.price", "nope", "customer.email.x"] {
            assert!(!s.has_path(&p(missing)), "{missing}");
        }
    }

    #[test]
    fn a_block_count_claiming_millions_of_entries_is_refused_not_allocated() {
        let s = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[
                {"name":"m","type":{"type":"map","values":"string"}},
                {"name":"a","type":{"type":"array","items":"long"}}]}"#,
            &[],
        )
        .expect("schema");
        // A map block of 500,000,000 entries (zig-zag varint), then nothing.
        let map_bomb = [0x80, 0xd0, 0xac, 0xf3, 0x03];
        assert!(matches!(s.decode(&map_bomb), Err(DecodeError::Avro(_))));
        // An empty map, then an array block of 500,000,000 longs.
        let array_bomb = [0x00, 0x80, 0xd0, 0xac, 0xf3, 0x03];
        assert!(matches!(s.decode(&array_bomb), Err(DecodeError::Avro(_))));
    }

    #[test]
    fn references_resolve_by_name_and_leftover_bytes_are_refused() {
        let address = r#"{"type":"record","name":"Address","namespace":"acme","fields":[
            {"name":"city","type":"string"}]}"#;
        let order = r#"{"type":"record","name":"Order","namespace":"acme","fields":[
            {"name":"id","type":"string"},{"name":"ship_to","type":"acme.Address"}]}"#;
        let s = AvroSchema::parse(order, &[address.to_string()]).expect("parse");
        // "o1" then "Oslo": zig-zag lengths 4 and 8.
        let datum = [4, b'o', b'1', 8, b'O', b's', b'l', b'o'];
        let doc = s.decode(&datum).expect("decode");
        let ship = doc.get(doc.root(), "ship_to").expect("ship_to");
        assert!(doc.get(ship, "city").is_some());
        let mut longer = datum.to_vec();
        longer.push(0);
        assert!(matches!(s.decode(&longer), Err(DecodeError::Avro(_))));
        assert!(matches!(s.decode(&datum[..3]), Err(DecodeError::Avro(_))));
        assert!(
            AvroSchema::parse(order, &[]).is_err(),
            "unresolved reference"
        );
    }
}
