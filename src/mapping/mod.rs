//! The mapping engine: per-topic YAML rules → a compiled plan → one MCM event per message.
//!
//! [`compile`] reads the `topics:` list once at start-up and records every problem with its YAML
//! path (bad path syntax, unknown transform or MCM field, a constant of the wrong type, an event
//! type whose required fields no source provides, …) so a broken rule never reaches 3 a.m.
//! [`TopicMapping::process`] then decodes, matches the first rule whose `when:` holds, builds the
//! event and validates it — pure, allocation-light and panic-free on any input: every failure is a
//! [`Processed::Reject`] with a stable reason code and the source path. The rule language is
//! documented for users in `docs/mapping.md`.

pub mod avro_doc;
mod build;
pub mod cases;
mod condition;
mod cursor;
pub mod doc;
pub mod error;
mod eval;
mod fields;
mod iso8601;
mod keys;
pub mod need;
pub mod path;
pub mod proto_doc;
mod scan;
mod source;
mod subject;
mod template;
mod text;
mod transform;
pub mod useragent;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conditional;
#[cfg(test)]
mod tests_paths;
#[cfg(test)]
mod tests_projection;
#[cfg(test)]
mod tests_rows;

use crate::config::decode::{index, kind, ConfigError, MapReader};
use crate::config::FailurePolicy;
use crate::mcm::event::{ChannelType, EventType, McmEvent};
use crate::mcm::validate::{validate, ValidateOptions, MAX_ID_LEN};
use condition::Cond;
use fields::FieldsPlan;
use regex::Regex;
use serde_yaml_ng::Value as Yaml;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use subject::Ctx;

pub use error::{MapError, MapReason};

/// One Kafka record as the engine sees it (borrowed from the consumer's message).
#[derive(Debug, Clone, Copy)]
pub struct SourceMessage<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    pub timestamp_ms: Option<i64>,
    pub payload: Option<&'a [u8]>,
}

#[cfg(test)]
impl SourceMessage<'static> {
    /// A record with no key, headers, timestamp or value: for tests of the message's JSON alone.
    pub(crate) const BARE: SourceMessage<'static> = SourceMessage {
        topic: "t",
        partition: 0,
        offset: 0,
        key: None,
        headers: &[],
        timestamp_ms: None,
        payload: None,
    };
}

/// Which stage rejected a message (a DLQ header and a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RejectClass {
    Decode,
    Mapping,
    Validation,
    NoMatch,
}

impl RejectClass {
    /// `decode`, `mapping`, `validation` or `no_match`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The outcome for one message: `E` is what a delivered message becomes — the [`McmEvent`]
/// itself ([`TopicMapping::process`]) or its request body ([`TopicMapping::process_wire`]).
// `Deliver` is the common case and is moved straight into the HTTP request; boxing it would add
// an allocation per message to save stack space in the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Processed<E = McmEvent> {
    /// A valid event, ready to serialise and POST.
    Deliver(E),
    /// Deliberately not sent (`on_no_match: skip`); the caller counts it and may commit past it.
    Filtered { reason: &'static str },
    /// Permanently undeliverable: to the DLQ with `reason` (a stable snake_case code) and
    /// `detail` (a sentence naming the field and source path). `schema_id` is the registry
    /// schema id a schema'd value's framing names (for the DLQ's `mcm.schema.id` header); `None`
    /// for JSON and for local-schema blocks, whose values carry no id.
    Reject {
        class: RejectClass,
        reason: String,
        detail: String,
        schema_id: Option<u32>,
    },
}

/// A valid event as the pipeline sends it: its wire JSON (exactly
/// [`McmEvent::to_json_bytes`] of the event [`TopicMapping::process`] gives) and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    pub event_type: EventType,
    pub body: Vec<u8>,
}

/// What to do with a message no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatch {
    Skip,
    Dlq,
}

#[derive(Debug)]
struct Rule {
    name: String,
    when: Option<Cond>,
    event_type: EventType,
    fields: FieldsPlan,
}

/// How a block's record values are encoded (`format:`, docs/formats.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::VariantNames, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum Format {
    /// Plain JSON (the default).
    Json,
    /// Avro in the schema registry framing (magic byte 0, 4-byte schema id, the datum).
    Avro,
    /// JSON in the schema registry framing (what Confluent's JSON Schema serializer writes).
    JsonSchema,
    /// Protobuf in the schema registry framing (the schema id, then message indexes).
    Protobuf,
}

impl Format {
    /// Whether values are decoded by a schema (from the registry, or a block's own file)
    /// rather than read as JSON text.
    pub fn is_schemad(self) -> bool {
        self != Format::Json
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The compiled rules of one `topics[]` block.
#[derive(Debug)]
pub struct TopicMapping {
    /// The `topic:` name or `pattern:` as written (for logs and `validate`).
    pub name: String,
    /// How its values are encoded.
    pub format: Format,
    /// `schema_file:`: the schema every value is written with (no registry).
    local: Option<crate::schema::file::LocalSchema>,
    on_no_match: NoMatch,
    on_failure: Option<FailurePolicy>,
    rules: Vec<Rule>,
    /// What the rules read: decoding skips the rest of each message.
    need: need::Need,
}

/// Every block, ready to route messages.
#[derive(Debug, Default)]
pub struct MappingPlan {
    blocks: Vec<TopicMapping>,
    exact: HashMap<String, usize>,
    patterns: Vec<(Regex, usize)>,
}

impl MappingPlan {
    /// The block for `topic`: exact names first, then patterns in configuration order.
    pub fn route(&self, topic: &str) -> Option<&TopicMapping> {
        let i = self.exact.get(topic).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(re, _)| re.is_match(topic))
                .map(|(_, i)| *i)
        })?;
        self.blocks.get(i)
    }

    /// What to subscribe to: exact names and librdkafka regex subscriptions (`^…`).
    pub fn subscriptions(&self) -> Vec<String> {
        let mut subs: Vec<String> = self.exact.keys().cloned().collect();
        subs.sort();
        subs.extend(self.patterns.iter().map(|(re, _)| re.as_str().to_string()));
        subs
    }

    pub fn blocks(&self) -> &[TopicMapping] {
        &self.blocks
    }
}

impl TopicMapping {
    /// Per-block override of `delivery.on_permanent_failure`.
    pub fn on_failure(&self) -> Option<FailurePolicy> {
        self.on_failure
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// What the rules read: the projection [`process`](Self::process) decodes with (exposed for
    /// the decode benchmark).
    pub fn need(&self) -> &need::Need {
        &self.need
    }

    /// Whether values carry a schema id to fetch from the registry (schema'd formats, unless
    /// the block names its own schema file).
    pub fn uses_registry(&self) -> bool {
        self.format.is_schemad() && self.local.is_none()
    }

    /// The block's own schema (`schema_file:`), if it has one.
    pub fn local_schema(&self) -> Option<&crate::schema::file::LocalSchema> {
        self.local.as_ref()
    }

    /// Decodes, maps and validates one message.
    pub fn process(&self, msg: &SourceMessage<'_>, opts: &ValidateOptions) -> Processed {
        self.process_named(msg, opts).0
    }

    /// Like [`process`](Self::process), also naming the rule that matched (for `map`/`test`).
    pub fn process_named(
        &self,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
    ) -> (Processed, Option<&str>) {
        self.run(msg, opts, |e| e.into_owned())
    }

    /// Like [`process`](Self::process), with a valid event serialised straight from the mapping's
    /// borrowed form: the message path, where the event itself is not needed, only its bytes.
    pub fn process_wire(
        &self,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
    ) -> Processed<WireEvent> {
        self.run(msg, opts, |e| WireEvent {
            event_type: e.event_type,
            body: e.to_json_bytes(),
        })
        .0
    }

    /// Like [`process_wire`](Self::process_wire) for a value decoded elsewhere (a schema'd
    /// topic's: [`crate::schema`]), or the reason it could not be.
    pub fn process_decoded_wire(
        &self,
        decoded: Result<doc::Doc<'_>, doc::DecodeError>,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
    ) -> Processed<WireEvent> {
        self.finish(decoded, msg, opts, |e| WireEvent {
            event_type: e.event_type,
            body: e.to_json_bytes(),
        })
        .0
    }

    /// Like [`process_named`](Self::process_named) for a value decoded elsewhere.
    pub fn process_decoded_named(
        &self,
        decoded: Result<doc::Doc<'_>, doc::DecodeError>,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
    ) -> (Processed, Option<&str>) {
        self.finish(decoded, msg, opts, |e| e.into_owned())
    }

    /// Decodes a JSON value (after the registry framing when there is one) with this block's
    /// projection: the JSON Schema topics' decode.
    pub fn decode_json<'a>(&'a self, payload: &'a [u8]) -> Result<doc::Doc<'a>, doc::DecodeError> {
        need::decode(Some(payload), &self.need)
    }

    /// Decodes, maps and validates; `deliver` turns a valid event into the result.
    fn run<'s, 'm, E>(
        &'s self,
        msg: &SourceMessage<'m>,
        opts: &ValidateOptions,
        deliver: impl FnOnce(eval::Event<'_>) -> E,
    ) -> (Processed<E>, Option<&'s str>) {
        self.finish(need::decode(msg.payload, &self.need), msg, opts, deliver)
    }

    /// Maps and validates a decoded value, or rejects one that did not decode.
    fn finish<'s, E>(
        &'s self,
        decoded: Result<doc::Doc<'_>, doc::DecodeError>,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
        deliver: impl FnOnce(eval::Event<'_>) -> E,
    ) -> (Processed<E>, Option<&'s str>) {
        match decoded {
            Ok(doc) => self.process_doc(&doc, msg, opts, deliver),
            Err(e) => {
                let p = Processed::Reject {
                    class: RejectClass::Decode,
                    reason: e.code().into(),
                    detail: e.to_string(),
                    schema_id: None,
                };
                (p, None)
            }
        }
    }

    /// Maps and validates an already decoded message.
    fn process_doc<'s, E>(
        &'s self,
        doc: &doc::Doc<'_>,
        msg: &SourceMessage<'_>,
        opts: &ValidateOptions,
        deliver: impl FnOnce(eval::Event<'_>) -> E,
    ) -> (Processed<E>, Option<&'s str>) {
        let ua = std::cell::OnceCell::new();
        let ctx = Ctx::at_root(doc, msg, &ua);
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.when.as_ref().is_none_or(|c| c.eval(&ctx)))
        else {
            let p = match self.on_no_match {
                NoMatch::Skip => Processed::Filtered {
                    reason: "no_matching_rule",
                },
                NoMatch::Dlq => Processed::Reject {
                    class: RejectClass::NoMatch,
                    reason: "no_matching_rule".into(),
                    detail: format!(
                        "no rule of the block for {:?} matched the message",
                        self.name
                    ),
                    schema_id: None,
                },
            };
            return (p, None);
        };
        // Timestamp and channel are placeholders until `build` sets them.
        let mut event = eval::Event::new(rule.event_type, 0, ChannelType::Site);
        if let Err(e) = eval::build(&rule.fields, &ctx, &mut event) {
            let p = Processed::Reject {
                class: RejectClass::Mapping,
                reason: e.reason.code().into(),
                detail: e.to_string(),
                schema_id: None,
            };
            return (p, Some(&rule.name));
        }
        if event.id.is_none() {
            let id = derived_id(msg.topic, msg.partition, msg.offset);
            event.id = Some(text::Text::new(Cow::Owned(id)));
        }
        let p = match validate(&event, opts) {
            Ok(()) => Processed::Deliver(deliver(event)),
            Err(v) => Processed::Reject {
                class: RejectClass::Validation,
                reason: v.first().map_or("invalid", |x| x.reason.code()).to_string(),
                detail: v
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                schema_id: None,
            },
        };
        (p, Some(&rule.name))
    }
}

/// The event id when the rules map none (DESIGN.md contract 4): Moloco de-duplicates on `id`, so
/// a message redelivered after a crash or rebalance must yield the same id, and its coordinates
/// are exactly what stays the same. Beyond the API's 128-byte limit (very long topic names) the
/// SHA-256 hex of the same text keeps it stable and unique at 64 bytes.
pub fn derived_id(topic: &str, partition: i32, offset: i64) -> String {
    let id = format!("{topic}:{partition}:{offset}");
    if id.len() <= MAX_ID_LEN {
        id
    } else {
        hex::encode(Sha256::digest(id.as_bytes()))
    }
}

/// Compiles the `topics:` list; every problem is pushed to `errors` with its YAML path.
pub fn compile(topics: &Yaml, errors: &mut Vec<ConfigError>) -> MappingPlan {
    let mut plan = MappingPlan::default();
    let list = match topics {
        Yaml::Sequence(l) => l.as_slice(),
        Yaml::Null => &[],
        other => {
            errors.push(ConfigError::new(
                "topics",
                format!("expected a list of topic blocks, found {}", kind(other)),
            ));
            return plan;
        }
    };
    for (i, block) in list.iter().enumerate() {
        let path = index("topics", i);
        if let Some((b, route)) = compile_block(block, &path, errors) {
            let n = plan.blocks.len();
            match route {
                Route::Exact(names) => {
                    for t in names {
                        if plan.exact.insert(t.clone(), n).is_some() {
                            errors.push(ConfigError::new(
                                format!("{path}.topic"),
                                format!("topic {t:?} is mapped by an earlier block too"),
                            ));
                        }
                    }
                }
                Route::Pattern(re) => plan.patterns.push((re, n)),
            }
            plan.blocks.push(b);
        }
    }
    plan
}

enum Route {
    Exact(Vec<String>),
    Pattern(Regex),
}

fn compile_block(
    v: &Yaml,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(TopicMapping, Route)> {
    let mut r = MapReader::new(v, path, errors)?;
    let topic = r.opt_string("topic");
    let pattern = r.opt_string("pattern");
    let route = match (topic, pattern) {
        (Some(t), None) => Some((t.clone(), Route::Exact(vec![t]))),
        (None, Some(p)) => {
            // librdkafka treats a subscription starting with `^` as a regex. The classic
            // protocol matches it client-side as a search (so `^shop\.` takes `shop.orders`);
            // the consumer protocol (KIP-848) hands it to the broker, which requires the *whole*
            // topic name to match (RE2/J). `^(p).*` means the same under both, and is what
            // `route` matches with here too, so routing and subscription always agree. (A
            // capturing group: librdkafka's own regex engine refuses `(?:`.)
            let anchored = format!("^({}).*", p.strip_prefix('^').unwrap_or(&p));
            match Regex::new(&anchored) {
                Ok(re) => Some((p, Route::Pattern(re))),
                Err(e) => {
                    r.error("pattern", format!("invalid regex: {e}"));
                    None
                }
            }
        }
        (Some(_), Some(_)) => {
            r.error(
                "pattern",
                "give either `topic:` (an exact name) or `pattern:` (a regex), not both",
            );
            None
        }
        (None, None) => {
            let p = r.path().to_string();
            r.error_at(
                p,
                "a block needs `topic:` (an exact name) or `pattern:` (a regex over topic names)",
            );
            None
        }
    };
    let format = match r.opt_string("format").as_deref() {
        None => Format::Json,
        Some(f) => f.parse().unwrap_or_else(|_| {
            r.error(
                "format",
                format!("{f:?} is not one of: json, avro, json_schema, protobuf"),
            );
            Format::Json
        }),
    };
    let local = crate::schema::file::read_block_schema(&mut r, format);
    let on_no_match = match r.opt_string("on_no_match").as_deref() {
        None | Some("skip") => NoMatch::Skip,
        Some("dlq") => NoMatch::Dlq,
        Some(other) => {
            r.error("on_no_match", format!("{other:?} is not one of: skip, dlq"));
            NoMatch::Skip
        }
    };
    let on_failure = r.opt_string("on_failure").and_then(|s| {
        let p = FailurePolicy::parse(&s);
        if p.is_none() {
            r.error(
                "on_failure",
                format!("{s:?} is not one of: dlq, drop, halt"),
            );
        }
        p
    });
    let before = r.errors().len();
    let shared = match r.raw("fields") {
        Some(f) => {
            let at = r.child_path("fields");
            fields::compile(f, &at, r.errors())
        }
        None => FieldsPlan::default(),
    };
    let shared = SharedFields {
        plan: shared,
        clean: r.errors().len() == before,
    };
    let mut rules = Vec::new();
    match r.raw("rules") {
        Some(Yaml::Sequence(list)) if !list.is_empty() => {
            let at = r.child_path("rules");
            for (j, rule) in list.iter().enumerate() {
                if let Some(rule) = compile_rule(rule, &index(&at, j), &shared, r.errors()) {
                    rules.push(rule);
                }
            }
        }
        _ => r.error(
            "rules",
            "required: a non-empty list of rules (`- event_type: …` with `fields:`)",
        ),
    }
    r.finish();
    let (name, route) = route?;
    let mut need = need::Need::default();
    for rule in &rules {
        if let Some(c) = &rule.when {
            c.need(&mut need);
        }
        rule.fields.need(&mut need);
    }
    // Now that the need is complete, every path learns the slots it reads (see `Node::Proj`).
    need.number();
    let mut hint = |p: &mut path::Path, scope: &[String]| p.hint(&need, scope);
    for rule in &mut rules {
        if let Some(c) = &mut rule.when {
            c.for_each_path(&mut hint);
        }
        rule.fields.for_each_path(&mut hint);
    }
    Some((
        TopicMapping {
            name,
            format,
            local,
            on_no_match,
            on_failure,
            rules,
            need,
        },
        route,
    ))
}

/// A block's `fields:` and whether they compiled without an error.
struct SharedFields {
    plan: FieldsPlan,
    clean: bool,
}

fn compile_rule(
    v: &Yaml,
    path: &str,
    shared: &SharedFields,
    errors: &mut Vec<ConfigError>,
) -> Option<Rule> {
    let mut r = MapReader::new(v, path, errors)?;
    let name = r.opt_string("name").unwrap_or_else(|| path.to_string());
    let when = r.raw("when").and_then(|w| {
        let at = r.child_path("when");
        Cond::compile(w, &at, r.errors())
    });
    let when_ok = !r.has("when") || when.is_some();
    let event_type = match r.opt_string("event_type") {
        Some(s) => {
            let t = EventType::parse(&s.to_ascii_uppercase());
            if t.is_none() {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                r.error(
                    "event_type",
                    format!("{s:?} is not an MCM event type ({})", names.join(", ")),
                );
            }
            t
        }
        None => {
            r.error(
                "event_type",
                "required: the MCM event type this rule produces, e.g. PURCHASE",
            );
            None
        }
    };
    let before = r.errors().len();
    let own = match r.raw("fields") {
        Some(f) => {
            let at = r.child_path("fields");
            fields::compile(f, &at, r.errors())
        }
        None => FieldsPlan::default(),
    };
    let fields_clean = shared.clean && r.errors().len() == before;
    let fields = own.merged_over(&shared.plan);
    // A field that failed to compile (a bad path, an unknown transform) is missing from the
    // plan but not from the YAML: its own error says what is wrong, and "neither … provide it"
    // would be false. Required fields are checked once the fields compile.
    if let (Some(t), true) = (event_type, fields_clean) {
        for m in fields::missing_required(&fields, t) {
            let p = r.path().to_string();
            r.error_at(p, format!("event type {t} needs {m}, and neither this rule's nor the block's `fields:` provide it"));
        }
    }
    r.finish();
    if !when_ok {
        return None;
    }
    Some(Rule {
        name,
        when,
        event_type: event_type?,
        fields,
    })
}
