//! Schema'd topics (docs/formats.md): values framed by a schema registry's serializers — magic
//! byte 0, a 4-byte big-endian schema id, then the Avro datum or the JSON text — decoded into
//! the same document the mapping rules read JSON topics as.
//!
//! Split by stage: [`framing`] reads the header, [`book`] keeps what is known of each schema id
//! (bounded) and decodes a value with it, [`registry`] fetches schemas over HTTP and says which
//! failures are worth retrying. The pipeline never decodes a value whose schema it has not got:
//! it holds the message and fetches first (`pipeline::schema_wait`), so a registry outage pauses
//! consumption instead of dead-lettering healthy messages.

pub mod book;
pub mod canonical;
pub mod file;
pub mod framing;
pub mod json_schema;
pub mod local;
pub mod proto;
pub mod registry;

pub use book::{Known, SchemaBook};
pub use registry::{FetchError, RegistryClient};

use crate::mapping::doc::{DecodeError, Doc};
use crate::mapping::{Format, TopicMapping};

/// The schema id `payload` needs fetched before it can be decoded for `block`, if any: `None`
/// for JSON and local-schema blocks, for values whose framing is broken (they are rejected by
/// [`decode`]) and for ids `book` already knows.
pub fn missing_schema(
    block: &TopicMapping,
    payload: Option<&[u8]>,
    book: &SchemaBook,
) -> Option<u32> {
    if !block.uses_registry() {
        return None;
    }
    let (id, _) = framing::split(payload).ok()?;
    (!book.knows(id)).then_some(id)
}

/// Reasons of values rejected for the schema their registry framing names: their dead letters
/// carry that id (`mcm.schema.id`).
const SCHEMA_REASONS: [&str; 6] = [
    "schema_not_found",
    "schema_unavailable",
    "schema_invalid",
    "schema_type_mismatch",
    "avro_decode",
    "protobuf_decode",
];

/// The schema id a reject of `block`'s `payload` names in its dead letter: only registry-framed
/// values, and only for reasons that concern their schema (a mapping error is about the rules).
pub fn reject_schema_id(block: &TopicMapping, payload: Option<&[u8]>, reason: &str) -> Option<u32> {
    if !block.uses_registry() || !SCHEMA_REASONS.contains(&reason) {
        return None;
    }
    framing::split(payload).ok().map(|(id, _)| id)
}

/// Decodes a schema'd value of `block`: with its own schema file, or with the schema `book`
/// holds for the id its framing names.
pub fn decode<'a>(
    block: &'a TopicMapping,
    payload: Option<&'a [u8]>,
    book: &SchemaBook,
) -> Result<Doc<'a>, DecodeError> {
    if let Some(local) = block.local_schema() {
        return local.decode(payload);
    }
    let (id, body) = framing::split(payload)?;
    let known = book.get(id).ok_or(DecodeError::SchemaUnavailable(id))?;
    match (block.format, known) {
        (_, Known::NotFound) => Err(DecodeError::SchemaNotFound(id)),
        (_, Known::Invalid(why)) => Err(DecodeError::SchemaInvalid {
            id,
            why: why.clone(),
        }),
        (Format::Avro, Known::Avro(schema)) => schema.decode(body),
        (Format::JsonSchema, Known::Json) => block.decode_json(body),
        (Format::Protobuf, Known::Protobuf(schema)) => schema.decode(body),
        (expected, found) => Err(DecodeError::SchemaTypeMismatch {
            id,
            found: found.type_name().to_string(),
            expected: expected.as_str(),
        }),
    }
}

/// The schemas of a one-shot command (`replay-dlq`): fetched when a message needs one, retried
/// briefly, and an error when the registry stays unavailable (the command stops rather than
/// dead-letter a healthy message again).
#[derive(Debug)]
pub struct FetchOnDemand {
    pub book: SchemaBook,
    client: Option<RegistryClient>,
}

impl FetchOnDemand {
    pub fn new(
        cfg: Option<&crate::config::schema_registry::SchemaRegistryConfig>,
    ) -> Result<FetchOnDemand, registry::RegistryClientError> {
        Ok(FetchOnDemand {
            book: SchemaBook::new(cfg.map_or(1, |c| c.cache_size)),
            client: cfg.map(RegistryClient::new).transpose()?,
        })
    }

    /// Makes sure the book knows the schema `payload` needs under `block`, if any.
    pub async fn ensure(
        &mut self,
        block: &TopicMapping,
        payload: Option<&[u8]>,
    ) -> Result<(), FetchError> {
        let Some(id) = missing_schema(block, payload, &self.book) else {
            return Ok(());
        };
        let Some(client) = &self.client else {
            return Ok(()); // decoded as schema_unavailable
        };
        let mut pause = std::time::Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match client.fetch(id).await {
                Ok(known) => {
                    self.book.learn(id, known);
                    return Ok(());
                }
                Err(e @ FetchError::Unavailable { .. }) if attempt < 5 => {
                    tracing::warn!(schema_id = id, attempt, error = %e, "schema fetch failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
