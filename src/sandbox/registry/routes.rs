//! The registry's HTTP handlers: request bodies in, Confluent-shaped JSON out.
//!
//! Answers carry `Content-Type: application/vnd.schemaregistry.v1+json`; errors are always
//! `{"error_code": N, "message": "..."}` with the HTTP status N's first three digits name. Request
//! bodies must be typed `application/vnd.schemaregistry.v1+json`, `application/vnd.schemaregistry+json`
//! or `application/json` (anything else is 415, as Confluent's server answers), and may carry
//! members this registry ignores (`metadata`, `ruleSet`, …), as Confluent's clients send them.

use super::store::{StoredSchema, SubjectVersion};
use super::wire::{Reference, RegistryError, SchemaType, VersionSpec};
use super::Shared;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Request body types the registry accepts.
const ACCEPTED_TYPES: [&str; 3] = [
    CONTENT_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
];
/// `GET /config`: this registry checks no compatibility, and says Confluent's default.
const GLOBAL_COMPATIBILITY: &str = "BACKWARD";

/// The body of `POST /subjects/{s}/versions` and `POST /subjects/{s}`.
#[derive(Debug, Deserialize)]
struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    references: Option<Vec<Reference>>,
}

/// A schema as `GET /schemas/ids/{id}` and the subject routes answer it: `schemaType` is left
/// out for AVRO and `references` when empty, as Confluent does.
#[derive(Debug, Serialize)]
struct SchemaBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    schema: &'a str,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[Reference]>::is_empty")]
    references: &'a [Reference],
}

impl<'a> SchemaBody<'a> {
    fn of(schema: &'a StoredSchema) -> SchemaBody<'a> {
        SchemaBody {
            subject: None,
            id: None,
            version: None,
            schema: &schema.text,
            schema_type: (schema.schema_type != SchemaType::Avro)
                .then(|| schema.schema_type.as_str()),
            references: &schema.references,
        }
    }

    fn of_version(v: &SubjectVersion<'a>) -> SchemaBody<'a> {
        SchemaBody {
            subject: Some(v.subject),
            id: Some(v.id),
            version: Some(v.version),
            ..SchemaBody::of(v.schema)
        }
    }
}

/// A JSON answer with the registry's content type.
pub fn json_answer(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_answer(status, bytes),
        Err(e) => error_body(StatusCode::INTERNAL_SERVER_ERROR, 50001, &e.to_string()),
    }
}

fn raw_answer(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut answer = (status, body.into()).into_response();
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    answer
}

/// `{"error_code": code, "message": message}` with `status`.
pub fn error_body(status: StatusCode, code: u32, message: &str) -> Response {
    json_answer(status, &json!({"error_code": code, "message": message}))
}

fn registry_error(e: &RegistryError) -> Response {
    ErrorAnswer::from(e).into_response()
}

/// An error answer before it is rendered: small enough to travel in a `Result`.
#[derive(Debug)]
struct ErrorAnswer {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ErrorAnswer {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ErrorAnswer {
        ErrorAnswer {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<&RegistryError> for ErrorAnswer {
    fn from(e: &RegistryError) -> ErrorAnswer {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ErrorAnswer::new(status, e.error_code(), e.to_string())
    }
}

impl IntoResponse for ErrorAnswer {
    fn into_response(self) -> Response {
        error_body(self.status, self.code, &self.message)
    }
}

/// Unrouted paths, in the shape Confluent's server (Jersey) answers them.
pub async fn not_found() -> Response {
    error_body(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
}

pub async fn method_not_allowed() -> Response {
    error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    )
}

/// Checks the content type and parses a schema request into (type, text, references).
fn parse_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(SchemaType, String, Vec<Reference>), ErrorAnswer> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !content_type.is_some_and(|t| ACCEPTED_TYPES.contains(&t.as_str())) {
        return Err(ErrorAnswer::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            "HTTP 415 Unsupported Media Type",
        ));
    }
    let request: SchemaRequest = serde_json::from_slice(body)
        .map_err(|e| ErrorAnswer::new(StatusCode::BAD_REQUEST, 400, e.to_string()))?;
    let schema_type = match request.schema_type.as_deref() {
        None => SchemaType::Avro,
        Some(name) => SchemaType::parse(name).map_err(|e| ErrorAnswer::from(&e))?,
    };
    let text = request.schema.ok_or_else(|| {
        ErrorAnswer::from(&RegistryError::InvalidSchema {
            reason: "Empty schema".into(),
        })
    })?;
    Ok((schema_type, text, request.references.unwrap_or_default()))
}

/// `POST /subjects/{subject}/versions` → `{"id": N}`.
pub async fn register(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (schema_type, text, references) = match parse_request(&headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return answer.into_response(),
    };
    match s
        .store()
        .register(&subject, schema_type, &text, &references)
    {
        Ok(id) => json_answer(StatusCode::OK, &json!({ "id": id })),
        Err(e) => registry_error(&e),
    }
}

/// `POST /subjects/{subject}`: is this schema registered under the subject?
pub async fn lookup(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (schema_type, text, references) = match parse_request(&headers, &body) {
        Ok(parsed) => parsed,
        Err(answer) => return answer.into_response(),
    };
    let store = s.store();
    match store.lookup(&subject, schema_type, &text, &references) {
        Ok(v) => json_answer(StatusCode::OK, &SchemaBody::of_version(&v)),
        Err(e) => registry_error(&e),
    }
}

/// A path id that is not a number names no schema; Confluent (Jersey) answers such paths 404.
fn parse_id(id: &str) -> Result<u32, ErrorAnswer> {
    id.parse::<u32>()
        .map_err(|_| ErrorAnswer::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found"))
}

/// `GET /schemas/ids/{id}` (a `subject` query is accepted and ignored).
pub async fn schema_by_id(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(answer) => return answer.into_response(),
    };
    match s.store().schema(id) {
        Ok(schema) => json_answer(StatusCode::OK, &SchemaBody::of(schema)),
        Err(e) => registry_error(&e),
    }
}

/// `GET /schemas/ids/{id}/schema`: the schema text itself, unescaped.
pub async fn schema_by_id_raw(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(answer) => return answer.into_response(),
    };
    match s.store().schema(id) {
        Ok(schema) => raw_answer(StatusCode::OK, schema.text.clone()),
        Err(e) => registry_error(&e),
    }
}

/// `GET /schemas/types`, in Confluent's order.
pub async fn schema_types() -> Response {
    json_answer(StatusCode::OK, &["JSON", "PROTOBUF", "AVRO"])
}

/// `GET /subjects`.
pub async fn subjects(State(s): State<Arc<Shared>>) -> Response {
    json_answer(StatusCode::OK, &s.store().subjects())
}

/// `GET /subjects/{subject}/versions`.
pub async fn versions(State(s): State<Arc<Shared>>, Path(subject): Path<String>) -> Response {
    match s.store().versions(&subject) {
        Ok(versions) => json_answer(StatusCode::OK, &versions),
        Err(e) => registry_error(&e),
    }
}

/// `GET /subjects/{subject}/versions/{version}` (a number or `latest`).
pub async fn version(
    State(s): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let store = s.store();
    match VersionSpec::parse(&version).and_then(|spec| store.version(&subject, spec)) {
        Ok(v) => json_answer(StatusCode::OK, &SchemaBody::of_version(&v)),
        Err(e) => registry_error(&e),
    }
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema text itself, unescaped.
pub async fn version_raw(
    State(s): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let store = s.store();
    match VersionSpec::parse(&version).and_then(|spec| store.version(&subject, spec)) {
        Ok(v) => raw_answer(StatusCode::OK, v.schema.text.clone()),
        Err(e) => registry_error(&e),
    }
}

/// `GET /config`.
pub async fn global_config() -> Response {
    json_answer(
        StatusCode::OK,
        &json!({ "compatibilityLevel": GLOBAL_COMPATIBILITY }),
    )
}

/// `GET /config/{subject}`: no subject has its own level here, so this is Confluent's answer for
/// a subject without one — 404 40408, or the global level with `defaultToGlobal=true`.
pub async fn subject_config(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("defaultToGlobal").map(String::as_str) == Some("true") {
        return global_config().await;
    }
    if let Err(e) = s.store().versions(&subject) {
        return registry_error(&e);
    }
    let message =
        format!("Subject '{subject}' does not have subject-level compatibility configured");
    error_body(StatusCode::NOT_FOUND, 40408, &message)
}
