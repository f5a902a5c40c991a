//! Test cases for mappings (`mcm-bridge test`): input message + Kafka metadata → the expected MCM
//! event, error reason, or filtering, compared as JSON with a field-by-field diff.
//!
//! Pure: the caller reads the files and prints. A case file is a YAML list:
//! ```yaml
//! - name: product view
//!   topic: shop.events            # routed like a live message
//!   key: user-1                   # optional; also headers: {k: v}, timestamp_ms, partition, offset
//!   message: {type: product_viewed, …}   # or raw: "not json", or tombstone: true
//!   schema_file: product_viewed.avsc   # `format: avro`/`protobuf` blocks: the message is encoded with it
//!   # or schema_subject: shop.events-value (+ schema_version: 3; default latest): from the registry
//!   # proto_message: acme.PageView    # Protobuf: the message type (default: the schema's first)
//!   expect: {event: {event_type: ITEM_PAGE_VIEW, …}}   # or {error: reason_code} or {filtered: true}
//! ```
//! On a schema'd block (`format: avro` / `protobuf` / `json_schema`) a `message:` is framed and
//! encoded as its topic carries values ([`crate::schema::local`]) and decoded by the pipeline's
//! own path; `raw:` is sent as written (to test what bad framing does).
//! Expected events are compared exactly (every field, both ways); numbers compare by value, so
//! `amount: 20` matches `20.0`.

use super::{MappingPlan, Processed, SourceMessage};
use crate::config::decode::{index, kind, ConfigError, MapReader};
use crate::mcm::validate::ValidateOptions;
use crate::pipeline::process;
use crate::schema::{local, SchemaBook};
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Event(Json),
    Error(String),
    Filtered,
}

/// One parsed case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub topic: String,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timestamp_ms: Option<i64>,
    pub partition: i32,
    pub offset: i64,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The payload was given as `message:` (JSON), so a schema'd block gets it encoded.
    pub from_message: bool,
    /// `schema_file:` as written (relative to the case file), or `schema_subject:` and
    /// `schema_version:` (default `latest`): the caller reads or fetches it into `schema`.
    pub schema_file: Option<String>,
    pub schema_subject: Option<(String, String)>,
    pub schema: Option<local::InputSchema>,
    /// `proto_message:`, the Protobuf message type of `message:`.
    pub proto_message: Option<String>,
    pub expect: Expect,
}

/// The outcome of one case: empty `diff` means it passed.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub diff: Vec<String>,
    /// Which rule matched (when one did), to help fix a failing case.
    pub rule: Option<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.diff.is_empty()
    }
}

/// Parses a case file; errors carry YAML paths such as `[3].expect`.
pub fn parse(text: &str) -> Result<Vec<Case>, Vec<ConfigError>> {
    let doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| vec![ConfigError::new("", format!("invalid YAML: {e}"))])?;
    let Yaml::Sequence(list) = &doc else {
        return Err(vec![ConfigError::new(
            "",
            format!("a case file is a list of cases, found {}", kind(&doc)),
        )]);
    };
    let mut errors = Vec::new();
    let cases: Vec<Case> = list
        .iter()
        .enumerate()
        .filter_map(|(i, c)| parse_case(c, &index("", i), &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

fn to_json(v: &Yaml, at: &str, errors: &mut Vec<ConfigError>) -> Option<Json> {
    serde_json::to_value(v)
        .map_err(|e| {
            errors.push(ConfigError::new(
                at,
                format!("not representable as JSON: {e}"),
            ))
        })
        .ok()
}

fn parse_case(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Case> {
    let mut r = MapReader::new(v, path, errors)?;
    let name = r.opt_string("name").unwrap_or_else(|| path.to_string());
    let topic = r.req::<String>("topic", "the topic the message arrives on");
    let key = r.opt_string("key");
    let headers: BTreeMap<String, String> = r.opt("headers").unwrap_or_default();
    let timestamp_ms = r.opt::<i64>("timestamp_ms");
    let partition = r.opt::<i32>("partition").unwrap_or(0);
    let offset = r.opt::<i64>("offset").unwrap_or(0);
    let tombstone = r.opt::<bool>("tombstone").unwrap_or(false);
    let raw = r.opt::<String>("raw");
    let message = r.raw("message");
    let from_message = message.is_some();
    let schema_file = r.opt_string("schema_file");
    let subject = r.opt_string("schema_subject");
    let version = r.opt::<Yaml>("schema_version").map(|v| match v {
        Yaml::String(s) => s,
        other => serde_yaml_ng::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    });
    let schema_subject = match (subject, version) {
        (Some(s), v) => {
            if schema_file.is_some() {
                r.error(
                    "schema_subject",
                    "give `schema_file:` or `schema_subject:`, not both",
                );
            }
            Some((s, v.unwrap_or_else(|| "latest".into())))
        }
        (None, Some(_)) => {
            r.error("schema_version", "goes with `schema_subject:`");
            None
        }
        (None, None) => None,
    };
    let proto_message = r.opt_string("proto_message");
    let payload = match (message, raw, tombstone) {
        (Some(m), None, false) => {
            let at = r.child_path("message");
            to_json(m, &at, r.errors()).map(|j| Some(j.to_string().into_bytes()))
        }
        (None, Some(raw), false) => Some(Some(raw.into_bytes())),
        (None, None, true) => Some(None),
        _ => {
            r.error(
                "message",
                "give exactly one of `message:` (JSON as YAML), `raw:` (text) or `tombstone: true`",
            );
            None
        }
    };
    let expect = match r.raw("expect") {
        Some(e) => {
            let at = r.child_path("expect");
            parse_expect(e, &at, r.errors())
        }
        None => {
            r.error(
                "expect",
                "required: `{event: {…}}`, `{error: reason_code}` or `{filtered: true}`",
            );
            None
        }
    };
    r.finish();
    Some(Case {
        name,
        topic: topic?,
        key,
        headers: headers.into_iter().collect(),
        timestamp_ms,
        partition,
        offset,
        payload: payload?,
        from_message,
        schema_file,
        schema_subject,
        schema: None,
        proto_message,
        expect: expect?,
    })
}

fn parse_expect(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Expect> {
    let mut r = MapReader::new(v, path, errors)?;
    let event = r.raw("event");
    let error = r.opt_string("error");
    let filtered = r.opt::<bool>("filtered").unwrap_or(false);
    let out = match (event, error, filtered) {
        (Some(e), None, false) => {
            let at = r.child_path("event");
            to_json(e, &at, r.errors()).map(Expect::Event)
        }
        (None, Some(code), false) => Some(Expect::Error(code)),
        (None, None, true) => Some(Expect::Filtered),
        _ => {
            let p = r.path().to_string();
            r.error_at(
                p,
                "give exactly one of `event:`, `error:` or `filtered: true`",
            );
            None
        }
    };
    r.finish();
    out
}

/// Runs one case against the plan, through the pipeline's own process stage.
pub fn run(plan: &MappingPlan, case: &Case, opts: &ValidateOptions) -> CaseResult {
    let headers: Vec<(&str, Option<&[u8]>)> = case
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
        .collect();
    let mut res = CaseResult {
        name: case.name.clone(),
        diff: Vec::new(),
        rule: None,
    };
    let schemad = plan.route(&case.topic).filter(|b| b.format.is_schemad());
    let (payload, book) = match (schemad, &case.payload) {
        (Some(block), Some(json)) if case.from_message => {
            let format = block.format;
            match local::encode_for(
                block,
                json,
                case.schema.as_ref(),
                case.proto_message.as_deref(),
            ) {
                Ok(x) => (Some(x.0), x.1),
                Err(e) => {
                    res.diff.push(format!(
                        "cannot encode the message for `format: {}`: {e}",
                        format.as_str()
                    ));
                    return res;
                }
            }
        }
        _ => (case.payload.clone(), SchemaBook::new(1)),
    };
    let msg = SourceMessage {
        topic: &case.topic,
        partition: case.partition,
        offset: case.offset,
        key: case.key.as_deref().map(str::as_bytes),
        headers: &headers,
        timestamp_ms: case.timestamp_ms,
        payload: payload.as_deref(),
    };
    let Ok((got, rule)) = process::process_named(plan, &msg, opts, &book) else {
        res.diff
            .push(format!("no topic block matches topic {:?}", case.topic));
        return res;
    };
    res.rule = rule.map(str::to_string);
    match (&case.expect, got) {
        (Expect::Event(want), Processed::Deliver(e)) => match serde_json::to_value(&e) {
            Ok(got) => diff_json("", want, &got, &mut res.diff),
            Err(err) => res.diff.push(format!("event did not serialise: {err}")),
        },
        (Expect::Error(want), Processed::Reject { reason, detail, .. }) if *want != reason => {
            res.diff.push(format!(
                "expected error {want}, got error {reason}: {detail}"
            ));
        }
        (Expect::Error(_), Processed::Reject { .. })
        | (Expect::Filtered, Processed::Filtered { .. }) => {}
        (want, got) => res.diff.push(format!(
            "expected {}, got {}",
            describe_expect(want),
            describe(&got)
        )),
    }
    res
}

fn describe_expect(e: &Expect) -> String {
    match e {
        Expect::Event(_) => "an event".into(),
        Expect::Error(r) => format!("error {r}"),
        Expect::Filtered => "the message to be filtered".into(),
    }
}

fn describe(p: &Processed) -> String {
    match p {
        Processed::Deliver(e) => {
            format!("an event: {}", String::from_utf8_lossy(&e.to_json_bytes()))
        }
        Processed::Filtered { reason } => format!("filtered ({reason})"),
        Processed::Reject {
            class,
            reason,
            detail,
            ..
        } => format!("{} error {reason}: {detail}", class.as_str()),
    }
}

/// Appends one line per difference: `items[0].price.amount: expected 19.99, got 1999`.
pub fn diff_json(path: &str, want: &Json, got: &Json, out: &mut Vec<String>) {
    let at = |p: &str| {
        if p.is_empty() {
            "(event)".to_string()
        } else {
            p.to_string()
        }
    };
    match (want, got) {
        (Json::Object(w), Json::Object(g)) => {
            for (k, wv) in w {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match g.get(k) {
                    Some(gv) => diff_json(&p, wv, gv, out),
                    None => out.push(format!("{p}: expected {wv}, got (absent)")),
                }
            }
            for (k, gv) in g.iter().filter(|(k, _)| !w.contains_key(*k)) {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push(format!("{p}: expected (absent), got {gv}"));
            }
        }
        (Json::Array(w), Json::Array(g)) => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff_json(&format!("{path}[{i}]"), wv, gv, out);
            }
            if w.len() != g.len() {
                out.push(format!(
                    "{}: expected {} elements, got {}",
                    at(path),
                    w.len(),
                    g.len()
                ));
            }
        }
        (Json::Number(w), Json::Number(g)) if w.as_f64() == g.as_f64() => {}
        (w, g) if w == g => {}
        (w, g) => out.push(format!("{}: expected {w}, got {g}", at(path))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_differing_field() {
        let mut out = Vec::new();
        diff_json(
            "",
            &json!({"a": 1, "items": [{"id": "x", "price": {"amount": 20}}], "gone": true}),
            &json!({"a": 1.0, "items": [{"id": "y", "price": {"amount": 20.0}}], "extra": "e"}),
            &mut out,
        );
        // serde_json maps are sorted by key, so the diff is in key order.
        assert_eq!(
            out,
            [
                "gone: expected true, got (absent)",
                "items[0].id: expected \"x\", got \"y\"",
                "extra: expected (absent), got \"e\""
            ]
        );
    }

    #[test]
    fn a_case_on_an_avro_block_is_encoded_with_its_schema_and_decoded_by_the_pipelines_path() {
        let topics: Yaml = serde_yaml_ng::from_str(
            r#"
- topic: views
  format: avro
  fields:
    id: {path: id}
    timestamp: {path: ts}
    channel_type: SITE
    user_id: {path: user}
  rules:
    - event_type: HOME
"#,
        )
        .expect("yaml");
        let mut errors = Vec::new();
        let plan = super::super::compile(&topics, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let schema = r#"{"type":"record","name":"V","fields":[{"name":"id","type":"string"},
            {"name":"user","type":"string"},
            {"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#;
        let mut list = parse(
            "- {name: home, topic: views, schema_file: v.avsc, message: {id: a, user: u, ts: 1765000000000123}, expect: {event: {id: a, event_type: HOME, timestamp: 1765000000000, channel_type: SITE, user_id: u}}}\n\
             - {name: plain json, topic: views, raw: '{\"id\": \"a\"}', expect: {error: bad_magic_byte}}\n\
             - {name: no schema, topic: views, message: {id: a}, expect: {error: whatever}}\n",
        )
        .expect("cases");
        assert_eq!(list[0].schema_file.as_deref(), Some("v.avsc"));
        list[0].schema = Some(local::InputSchema::Text(schema.to_string()));
        let opts = ValidateOptions {
            strict: false,
            now_ms: 1_765_000_100_000,
            future_tolerance_ms: 3_600_000,
        };
        let results: Vec<CaseResult> = list.iter().map(|c| run(&plan, c, &opts)).collect();
        assert!(results[0].passed(), "{:?}", results[0].diff);
        assert!(results[1].passed(), "{:?}", results[1].diff);
        assert!(
            results[2].diff[0].contains("reads avro: give the schema"),
            "{:?}",
            results[2].diff
        );
    }

    #[test]
    fn case_file_errors_have_paths() {
        let errs = parse("- {name: a, topic: t, message: {}, raw: x, expect: {error: e}}\n- {topic: t, message: {}, expect: {event: {}, filtered: true}, extra: 1}\n").expect_err("bad");
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["[0].message: give exactly one of `message:` (JSON as YAML), `raw:` (text) or `tombstone: true`", "[1].expect: give exactly one of `event:`, `error:` or `filtered: true`", "[1].extra: unknown key (expected one of: expect, headers, key, message, name, offset, partition, proto_message, raw, schema_file, schema_subject, schema_version, timestamp_ms, tombstone, topic)"]);
    }
}
