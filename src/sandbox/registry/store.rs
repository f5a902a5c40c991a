//! The registry's pure state: subjects, their versions, global schema ids, and the de-duplication
//! that makes the same schema get the same id under every subject.
//!
//! What it guarantees (as Confluent's registry does): ids start at 1 and are global; registering a
//! schema equal to one already stored (same type, same references, same text — compared as parsed
//! JSON for AVRO and JSON, as exact text for PROTOBUF) reuses that schema's id; registering it again
//! under a subject that already has it returns the existing id and adds no version; a reference
//! must name an existing subject version. What it does not do: compatibility checks, deletion,
//! contexts, Avro canonical forms (a stored schema is answered as first registered, not in
//! Confluent's canonical text), or validating a schema beyond "AVRO and JSON parse as JSON".

use super::wire::{Reference, RegistryError, SchemaType, VersionSpec};
use std::collections::BTreeMap;

/// What two schemas are compared by.
#[derive(Debug, Clone, PartialEq)]
enum Canonical {
    /// AVRO and JSON: key order and whitespace do not make a new schema.
    Json(serde_json::Value),
    Text(String),
}

/// A stored schema, as `GET /schemas/ids/{id}` answers it.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub schema_type: SchemaType,
    /// The text as first registered.
    pub text: String,
    pub references: Vec<Reference>,
    canonical: Canonical,
}

impl StoredSchema {
    fn same_as(&self, other: &StoredSchema) -> bool {
        self.schema_type == other.schema_type
            && self.references == other.references
            && self.canonical == other.canonical
    }
}

/// One subject version: `GET /subjects/{s}/versions/{v}`.
#[derive(Debug, Clone)]
pub struct SubjectVersion<'a> {
    pub subject: &'a str,
    pub version: u32,
    pub id: u32,
    pub schema: &'a StoredSchema,
}

/// Every subject and schema.
#[derive(Debug, Default)]
pub struct Store {
    /// Schema id `i + 1` is `schemas[i]`.
    schemas: Vec<StoredSchema>,
    /// Version `v` of a subject is `ids[v - 1]`.
    subjects: BTreeMap<String, Vec<u32>>,
}

impl Store {
    /// Registers `text` under `subject` (`POST /subjects/{subject}/versions`) and returns its id.
    pub fn register(
        &mut self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> Result<u32, RegistryError> {
        let candidate = self.prepare(schema_type, text, references)?;
        if let Ok((_, id)) = self.find_in_subject(subject, &candidate) {
            return Ok(id);
        }
        let id = match self.schemas.iter().position(|s| s.same_as(&candidate)) {
            Some(index) => id_of(index),
            None => {
                self.schemas.push(candidate);
                id_of(self.schemas.len() - 1)
            }
        };
        self.subjects
            .entry(subject.to_string())
            .or_default()
            .push(id);
        Ok(id)
    }

    /// Finds `text` under `subject` (`POST /subjects/{subject}`): its version and id.
    pub fn lookup(
        &self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> Result<SubjectVersion<'_>, RegistryError> {
        let candidate = self.prepare(schema_type, text, references)?;
        let (version, _) = self.find_in_subject(subject, &candidate)?;
        self.version(subject, VersionSpec::Number(version))
    }

    /// The schema with global id `id`.
    pub fn schema(&self, id: u32) -> Result<&StoredSchema, RegistryError> {
        id.checked_sub(1)
            .and_then(|i| self.schemas.get(i as usize))
            .ok_or(RegistryError::SchemaIdNotFound { id })
    }

    /// Every subject name, sorted.
    pub fn subjects(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }

    /// The versions of `subject`: `[1, 2, …]`.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let ids = self.ids(subject)?;
        Ok((1..=version_of(ids.len())).collect())
    }

    /// One version of `subject`.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<SubjectVersion<'_>, RegistryError> {
        let (name, ids) = self
            .subjects
            .get_key_value(subject)
            .ok_or_else(|| subject_not_found(subject))?;
        let version = match spec {
            VersionSpec::Latest => version_of(ids.len()),
            VersionSpec::Number(n) => n,
        };
        let id = version
            .checked_sub(1)
            .and_then(|i| ids.get(i as usize))
            .copied()
            .ok_or_else(|| RegistryError::VersionNotFound {
                subject: subject.to_string(),
                version,
            })?;
        Ok(SubjectVersion {
            subject: name,
            version,
            id,
            schema: self.schema(id)?,
        })
    }

    fn ids(&self, subject: &str) -> Result<&Vec<u32>, RegistryError> {
        self.subjects
            .get(subject)
            .ok_or_else(|| subject_not_found(subject))
    }

    /// Validates a schema and its references and computes what it is compared by.
    fn prepare(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> Result<StoredSchema, RegistryError> {
        let canonical = match schema_type {
            SchemaType::Avro | SchemaType::Json => {
                let value =
                    serde_json::from_str(text).map_err(|e| RegistryError::InvalidSchema {
                        reason: format!("{} schema is not valid JSON: {e}", schema_type.as_str()),
                    })?;
                Canonical::Json(value)
            }
            SchemaType::Protobuf if text.trim().is_empty() => {
                return Err(RegistryError::InvalidSchema {
                    reason: "empty PROTOBUF schema".into(),
                })
            }
            SchemaType::Protobuf => Canonical::Text(text.to_string()),
        };
        for r in references {
            if self
                .version(&r.subject, VersionSpec::Number(r.version))
                .is_err()
            {
                return Err(RegistryError::MissingReference {
                    name: r.name.clone(),
                    subject: r.subject.clone(),
                    version: r.version,
                });
            }
        }
        Ok(StoredSchema {
            schema_type,
            text: text.to_string(),
            references: references.to_vec(),
            canonical,
        })
    }

    /// The first version of `subject` holding a schema equal to `candidate`: (version, id).
    fn find_in_subject(
        &self,
        subject: &str,
        candidate: &StoredSchema,
    ) -> Result<(u32, u32), RegistryError> {
        let ids = self.ids(subject)?;
        ids.iter()
            .enumerate()
            .find(|(_, id)| self.schema(**id).is_ok_and(|s| s.same_as(candidate)))
            .map(|(i, id)| (version_of(i + 1), *id))
            .ok_or_else(|| RegistryError::SchemaNotFound {
                subject: subject.to_string(),
            })
    }
}

fn subject_not_found(subject: &str) -> RegistryError {
    RegistryError::SubjectNotFound {
        subject: subject.to_string(),
    }
}

/// Schema ids and versions are 1-based counts of what is stored; the store never holds 2^32.
fn id_of(index: usize) -> u32 {
    u32::try_from(index + 1).expect("fewer than 2^32 schemas in a test registry")
}

fn version_of(count: usize) -> u32 {
    u32::try_from(count).expect("fewer than 2^32 versions in a test registry")
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str =
        r#"{"type":"record","name":"User","fields":[{"name":"id","type":"string"}]}"#;
    const USER_REORDERED: &str =
        r#"{ "name": "User", "fields": [ {"type": "string", "name": "id"} ], "type": "record" }"#;
    const USER_V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"string"},{"name":"age","type":"int","default":0}]}"#;

    fn avro(store: &mut Store, subject: &str, text: &str) -> Result<u32, RegistryError> {
        store.register(subject, SchemaType::Avro, text, &[])
    }

    #[test]
    fn ids_start_at_one_and_same_schema_reuses_its_id_without_a_new_version() {
        let mut s = Store::default();
        assert_eq!(avro(&mut s, "a", USER), Ok(1));
        assert_eq!(avro(&mut s, "a", USER), Ok(1));
        assert_eq!(avro(&mut s, "a", USER_REORDERED), Ok(1), "compared as JSON");
        assert_eq!(s.versions("a"), Ok(vec![1]));
    }

    #[test]
    fn same_schema_under_another_subject_gets_the_same_id_and_its_own_version() {
        let mut s = Store::default();
        assert_eq!(avro(&mut s, "a", USER), Ok(1));
        assert_eq!(avro(&mut s, "b", USER_V2), Ok(2));
        assert_eq!(avro(&mut s, "b", USER), Ok(1));
        assert_eq!(s.versions("b"), Ok(vec![1, 2]));
        assert_eq!(s.version("b", VersionSpec::Latest).map(|v| v.id), Ok(1));
        assert_eq!(s.subjects(), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn type_and_references_are_part_of_a_schemas_identity() {
        let mut s = Store::default();
        assert_eq!(avro(&mut s, "a", USER), Ok(1));
        assert_eq!(s.register("j", SchemaType::Json, USER, &[]), Ok(2));
        let r = Reference {
            name: "User".into(),
            subject: "a".into(),
            version: 1,
        };
        assert_eq!(
            s.register("j", SchemaType::Json, USER, std::slice::from_ref(&r)),
            Ok(3)
        );
        assert_eq!(s.schema(3).map(|x| x.references.clone()), Ok(vec![r]));
    }

    #[test]
    fn protobuf_is_compared_as_text() {
        let mut s = Store::default();
        let a = "syntax = \"proto3\"; message A {}";
        assert_eq!(s.register("p", SchemaType::Protobuf, a, &[]), Ok(1));
        let spaced = "syntax = \"proto3\";  message A {}";
        assert_eq!(s.register("p", SchemaType::Protobuf, spaced, &[]), Ok(2));
    }

    #[test]
    fn invalid_schemas_and_dangling_references_are_refused_with_42201() {
        let mut s = Store::default();
        let bad = avro(&mut s, "a", "{not json").unwrap_err();
        assert_eq!((bad.error_code(), bad.http_status()), (42201, 422));
        let r = Reference {
            name: "X".into(),
            subject: "nope".into(),
            version: 1,
        };
        let dangling = s.register("a", SchemaType::Avro, USER, &[r]).unwrap_err();
        assert_eq!(dangling.error_code(), 42201);
        assert_eq!(s.subjects(), Vec::<String>::new(), "nothing was stored");
    }

    #[test]
    fn lookups_say_which_thing_is_missing() {
        let mut s = Store::default();
        avro(&mut s, "a", USER).unwrap();
        let code = |r: Result<SubjectVersion<'_>, RegistryError>| r.map(|v| v.id).unwrap_err();
        assert_eq!(
            code(s.lookup("b", SchemaType::Avro, USER, &[])).error_code(),
            40401
        );
        assert_eq!(
            code(s.lookup("a", SchemaType::Avro, USER_V2, &[])).error_code(),
            40403
        );
        assert_eq!(
            code(s.version("a", VersionSpec::Number(2))).error_code(),
            40402
        );
        assert_eq!(s.schema(7).unwrap_err().to_string(), "Schema 7 not found");
        assert_eq!(s.schema(0).unwrap_err().error_code(), 40403);
        let found = s
            .lookup("a", SchemaType::Avro, USER_REORDERED, &[])
            .unwrap();
        assert_eq!((found.subject, found.version, found.id), ("a", 1, 1));
        assert_eq!(found.schema.text, USER, "answered as first registered");
    }
}
