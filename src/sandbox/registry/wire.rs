//! The registry's vocabulary: schema types, references, version selectors, and the errors with
//! the Confluent `error_code` and HTTP status each one is answered with.

use serde::{Deserialize, Serialize};

/// The `schemaType` of a schema; absent on the wire means AVRO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    /// The wire name (`AVRO`, `JSON`, `PROTOBUF`).
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// Parses a wire name, as the registry does (exact, upper case).
    pub fn parse(s: &str) -> Result<SchemaType, RegistryError> {
        match s {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            other => Err(RegistryError::UnknownSchemaType {
                schema_type: other.to_string(),
            }),
        }
    }
}

/// A schema reference: `name` is how the referring schema names it (e.g. `com.acme.Address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: u32,
}

/// Why the registry refused a request; each maps to one Confluent `error_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound { subject: String },
    #[error("Version {version} not found.")]
    VersionNotFound { subject: String, version: u32 },
    #[error("Schema {id} not found")]
    SchemaIdNotFound { id: u32 },
    #[error("Schema not found")]
    SchemaNotFound { subject: String },
    #[error("Invalid schema: {reason}")]
    InvalidSchema { reason: String },
    #[error("Invalid schema type {schema_type} (expected AVRO, JSON or PROTOBUF)")]
    UnknownSchemaType { schema_type: String },
    #[error("Invalid schema: reference {name} points to subject '{subject}' version {version}, which does not exist")]
    MissingReference {
        name: String,
        subject: String,
        version: u32,
    },
    #[error("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion { version: String },
}

impl RegistryError {
    /// Confluent's `error_code` for this error; its first three digits are the HTTP status.
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound { .. } => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaIdNotFound { .. } | RegistryError::SchemaNotFound { .. } => 40403,
            RegistryError::InvalidSchema { .. }
            | RegistryError::UnknownSchemaType { .. }
            | RegistryError::MissingReference { .. } => 42201,
            RegistryError::InvalidVersion { .. } => 42202,
        }
    }

    /// The HTTP status that goes with [`RegistryError::error_code`].
    pub fn http_status(&self) -> u16 {
        // Confluent's codes are the status followed by two digits.
        u16::try_from(self.error_code() / 100).expect("every error code is a 5-digit number")
    }
}

/// A version selector: a number or `latest` (Confluent also accepts `-1` for latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    pub fn parse(s: &str) -> Result<VersionSpec, RegistryError> {
        if s == "latest" || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::InvalidVersion {
                version: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_confluent() {
        assert_eq!(VersionSpec::parse("latest"), Ok(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("-1"), Ok(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("3"), Ok(VersionSpec::Number(3)));
        for bad in ["0", "x", "2147483648", ""] {
            assert_eq!(
                VersionSpec::parse(bad).unwrap_err().error_code(),
                42202,
                "{bad}"
            );
        }
    }

    #[test]
    fn schema_types_round_trip_their_wire_names() {
        for t in [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf] {
            assert_eq!(SchemaType::parse(t.as_str()), Ok(t));
        }
        assert_eq!(SchemaType::parse("avro").unwrap_err().error_code(), 42201);
    }
}
