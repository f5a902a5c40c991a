//! Body checks for one request on the event route: shape pre-checks with their own stable reason
//! codes, then the bridge's own [`crate::mcm::validate`] rules.
//!
//! The pre-checks exist because `McmEvent` deserialisation would fold "not JSON", "no
//! event_type" and "unknown event_type" into one serde message; a client (and a test) needs to
//! tell them apart. After them, the event goes through exactly the validation the bridge runs
//! before sending, so the two sides agree by construction. Pure: the clock is in the options.

use crate::mcm::event::{ChannelType, EventType, McmEvent};
use crate::mcm::validate::{validate, Reason, ValidateOptions};
use serde_json::{Map, Value};

/// Reasons only the sandbox's pre-checks produce (the body is not yet an `McmEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeReason {
    InvalidJson,
    MissingEventType,
    UnknownEventType,
    MissingChannelType,
    UnknownChannelType,
    MissingTimestamp,
    /// Any other deserialisation error (wrong type of a field, …), with serde's message.
    InvalidArgument,
}

impl ShapeReason {
    pub const ALL: [ShapeReason; 7] = [
        ShapeReason::InvalidJson,
        ShapeReason::MissingEventType,
        ShapeReason::UnknownEventType,
        ShapeReason::MissingChannelType,
        ShapeReason::UnknownChannelType,
        ShapeReason::MissingTimestamp,
        ShapeReason::InvalidArgument,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ShapeReason::InvalidJson => "invalid_json",
            ShapeReason::MissingEventType => "missing_event_type",
            ShapeReason::UnknownEventType => "unknown_event_type",
            ShapeReason::MissingChannelType => "missing_channel_type",
            ShapeReason::UnknownChannelType => "unknown_channel_type",
            ShapeReason::MissingTimestamp => "missing_timestamp",
            ShapeReason::InvalidArgument => "invalid_argument",
        }
    }
}

/// Why a body was rejected: a shape pre-check or one of the shared validation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Shape(ShapeReason),
    Rule(Reason),
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Shape(s) => s.code(),
            RejectReason::Rule(r) => r.code(),
        }
    }
}

/// One entry of a 400 answer's `details`.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectDetail {
    pub reason: RejectReason,
    /// Wire path of the offending field (empty for the body as a whole).
    pub field: String,
}

/// A 400 answer: the first problem's message and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub message: String,
    pub details: Vec<RejectDetail>,
}

impl Rejection {
    fn one(reason: RejectReason, field: &str, message: impl Into<String>) -> Rejection {
        Rejection {
            message: message.into(),
            details: vec![RejectDetail {
                reason,
                field: field.to_string(),
            }],
        }
    }

    fn shape(reason: ShapeReason, field: &str, message: impl Into<String>) -> Rejection {
        Rejection::one(RejectReason::Shape(reason), field, message)
    }
}

/// Checks a request body; `Ok` carries the event that would be accepted.
///
/// Nearly every body is a well-formed event, so it is first decoded straight into [`McmEvent`],
/// without the `Value` tree (about a tenth of the sandbox's CPU per request under a benchmark,
/// where the sandbox shares the machine with the bridge it measures). A body that decodes this
/// way also passes every shape pre-check, because they test only what the typed decode requires
/// (`event_type`, `channel_type` and `timestamp` present, known and well-formed), and it yields
/// the same event. Any decode error — including a duplicate key, which the `Value` path resolves
/// as "last one wins" — goes through [`check_stepwise`], which names the problem. A unit test
/// holds the two paths to the same answers.
pub fn check(body: &[u8], opts: &ValidateOptions) -> Result<McmEvent, Rejection> {
    match serde_json::from_slice::<McmEvent>(body) {
        Ok(event) => validated(event, opts),
        Err(_) => check_stepwise(body, opts),
    }
}

/// [`check`] one step at a time: JSON, object, the enum fields, the timestamp, the typed event,
/// then the validation rules; the first failing step gives the rejection.
fn check_stepwise(body: &[u8], opts: &ValidateOptions) -> Result<McmEvent, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Rejection::shape(
            ShapeReason::InvalidJson,
            "",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(Rejection::shape(
            ShapeReason::InvalidJson,
            "",
            "body must be a JSON object (one event per request)",
        ));
    };
    check_enum(
        &map,
        "event_type",
        |s| EventType::parse(s).is_some(),
        ShapeReason::MissingEventType,
        ShapeReason::UnknownEventType,
    )?;
    check_enum(
        &map,
        "channel_type",
        |s| ChannelType::parse(s).is_some(),
        ShapeReason::MissingChannelType,
        ShapeReason::UnknownChannelType,
    )?;
    check_timestamp(&map)?;
    let event: McmEvent = serde_json::from_value(Value::Object(map)).map_err(|e| {
        Rejection::shape(
            ShapeReason::InvalidArgument,
            "",
            format!("invalid event: {e}"),
        )
    })?;
    validated(event, opts)
}

/// The shared validation rules, as a 400 listing every violation.
fn validated(event: McmEvent, opts: &ValidateOptions) -> Result<McmEvent, Rejection> {
    validate(&event, opts).map_err(|violations| Rejection {
        message: violations
            .first()
            .map(|v| v.message.clone())
            .unwrap_or_default(),
        details: violations
            .into_iter()
            .map(|v| RejectDetail {
                reason: RejectReason::Rule(v.reason),
                field: v.field,
            })
            .collect(),
    })?;
    Ok(event)
}

/// `null` counts as missing: serde would treat it so for optional fields, and a sender that
/// writes `"event_type": null` has not sent one.
fn check_enum(
    map: &Map<String, Value>,
    field: &str,
    known: impl Fn(&str) -> bool,
    missing: ShapeReason,
    unknown: ShapeReason,
) -> Result<(), Rejection> {
    match map.get(field) {
        None | Some(Value::Null) => Err(Rejection::shape(
            missing,
            field,
            format!("{field} is missing"),
        )),
        Some(Value::String(s)) if known(s) => Ok(()),
        Some(other) => Err(Rejection::shape(
            unknown,
            field,
            format!("{field} {other} is not a known value"),
        )),
    }
}

/// Accepts what `McmEvent` accepts: a JSON integer or a string holding a decimal integer.
fn check_timestamp(map: &Map<String, Value>) -> Result<(), Rejection> {
    let ok = match map.get("timestamp") {
        None | Some(Value::Null) => {
            return Err(Rejection::shape(
                ShapeReason::MissingTimestamp,
                "timestamp",
                "timestamp is missing",
            ))
        }
        Some(Value::Number(n)) => n.is_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().is_ok(),
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::one(
            RejectReason::Rule(Reason::TimestampNotMillis),
            "timestamp",
            "timestamp must be Unix milliseconds as an integer or a decimal-integer string",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000_000;

    fn opts() -> ValidateOptions {
        ValidateOptions::at(NOW)
    }

    fn codes(body: &str) -> Vec<&'static str> {
        match check(body.as_bytes(), &opts()) {
            Ok(_) => vec![],
            Err(r) => r.details.iter().map(|d| d.reason.code()).collect(),
        }
    }

    const PURCHASE: &str = r#"{"id":"e1","event_type":"PURCHASE","timestamp":"1749999999000","channel_type":"SITE","user_id":"u1","items":[{"id":"sku","price":{"currency":"USD","amount":5},"quantity":1}],"revenue":{"currency":"USD","amount":5}}"#;

    #[test]
    fn valid_purchase_passes() {
        let e = check(PURCHASE.as_bytes(), &opts()).expect("valid");
        assert_eq!(e.event_type, EventType::Purchase);
        assert_eq!(e.timestamp, 1_749_999_999_000);
    }

    #[test]
    fn non_json_and_non_objects_are_invalid_json() {
        assert_eq!(codes("{nope"), ["invalid_json"]);
        assert_eq!(codes(""), ["invalid_json"]);
        assert_eq!(codes("[1,2]"), ["invalid_json"]);
        assert_eq!(codes("\"PURCHASE\""), ["invalid_json"]);
    }

    #[test]
    fn enum_fields_are_checked_in_order_missing_then_unknown() {
        assert_eq!(codes(r#"{"channel_type":"SITE"}"#), ["missing_event_type"]);
        assert_eq!(codes(r#"{"event_type":null}"#), ["missing_event_type"]);
        assert_eq!(
            codes(r#"{"event_type":"purchase"}"#),
            ["unknown_event_type"]
        );
        assert_eq!(codes(r#"{"event_type":7}"#), ["unknown_event_type"]);
        assert_eq!(codes(r#"{"event_type":"HOME"}"#), ["missing_channel_type"]);
        assert_eq!(
            codes(r#"{"event_type":"HOME","channel_type":"WEB"}"#),
            ["unknown_channel_type"]
        );
    }

    #[test]
    fn timestamp_must_be_present_and_integral() {
        let base = r#"{"event_type":"HOME","channel_type":"SITE""#;
        assert_eq!(codes(&format!("{base}}}")), ["missing_timestamp"]);
        for bad in [r#""soon""#, "1.7e12", "1749999999000.5", "true", "[1]"] {
            assert_eq!(
                codes(&format!(r#"{base},"timestamp":{bad}}}"#)),
                ["timestamp_not_millis"],
                "{bad}"
            );
        }
    }

    #[test]
    fn other_shape_errors_are_invalid_argument_with_serde_message() {
        let body =
            r#"{"event_type":"HOME","channel_type":"SITE","timestamp":1749999999000,"user_id":5}"#;
        let r = check(body.as_bytes(), &opts()).expect_err("user_id must be a string");
        assert_eq!(r.details[0].reason.code(), "invalid_argument");
        assert!(r.message.contains("invalid type"), "{}", r.message);
    }

    #[test]
    fn validation_rules_report_every_violation_with_first_message() {
        let body = r#"{"event_type":"PAGE_VIEW","channel_type":"SITE","timestamp":1749999999000}"#;
        let r = check(body.as_bytes(), &opts()).expect_err("no identifier, no page_id");
        let got: Vec<_> = r.details.iter().map(|d| d.reason.code()).collect();
        assert_eq!(got, ["no_identifier", "missing_page_id"]);
        assert_eq!(r.details[1].field, "page_id");
        assert!(r.message.contains("user_id"), "{}", r.message);
    }

    /// The typed fast path answers exactly as the step-by-step path, for good bodies and for
    /// every kind of bad one (including duplicate keys, nulls, wrong types and trailing data).
    #[test]
    fn fast_path_answers_as_the_stepwise_path() {
        let mut bodies: Vec<String> = vec![
            PURCHASE.into(),
            PURCHASE.replace(r#""1749999999000""#, "1749999999000"),
            PURCHASE.replace(r#""1749999999000""#, r#"" 1749999999000 ""#),
            PURCHASE.replace(r#""1749999999000""#, "1.749999999e12"),
            PURCHASE.replace(r#""1749999999000""#, "17499999990000000000"),
            PURCHASE.replace(r#""1749999999000""#, "null"),
            PURCHASE.replace(r#""SITE""#, r#""site""#),
            PURCHASE.replace(r#""SITE""#, "null"),
            PURCHASE.replace(r#""PURCHASE""#, r#""Purchase""#),
            PURCHASE.replace(r#""id":"e1","#, r#""id":"e1","id":"e2","#),
            PURCHASE.replace(r#""event_type":"PURCHASE","#, r#""event_type":"HOME","event_type":"PURCHASE","#),
            PURCHASE.replace(r#""user_id":"u1""#, r#""user_id":5"#),
            PURCHASE.replace(r#""user_id":"u1""#, r#""user_id":null"#),
            PURCHASE.replace(r#""user_id":"u1""#, r#""unknown_field":{"x":[1,2]}"#),
            PURCHASE.replace(r#""amount":5}"#, r#""amount":-5}"#),
            format!("{PURCHASE} "),
            format!("{PURCHASE} x"),
            format!("{PURCHASE}{PURCHASE}"),
            String::new(),
            "[]".into(),
            "{}".into(),
            r#"{"event_type":"HOME","channel_type":"SITE","timestamp":1749999999000,"user_id":"u"}"#
                .into(),
            r#"{"event_type":"PAGE_VIEW","channel_type":"SITE","timestamp":1749999999000}"#.into(),
            r#"{"event_type":"HOME","channel_type":"SITE","timestamp":1749999999000,"user_id":"u","user_id":7}"#
                .into(),
        ];
        for t in EventType::ALL {
            let name = t.as_str();
            bodies.push(format!(
                r#"{{"event_type":"{name}","channel_type":"APP","timestamp":1749999999000,"user_id":"u","page_id":"p","search_query":"q","items":[{{"id":"s","price":{{"currency":"USD","amount":1}},"quantity":1}}],"revenue":{{"currency":"USD","amount":1}}}}"#
            ));
            bodies.push(format!(
                r#"{{"event_type":"{}","channel_type":"SITE","timestamp":1749999999000}}"#,
                name.to_lowercase()
            ));
        }
        for c in ChannelType::ALL {
            bodies.push(format!(
                r#"{{"event_type":"HOME","channel_type":"{}","timestamp":1749999999000,"user_id":"u"}}"#,
                c.as_str()
            ));
        }
        let mut fast = 0;
        for body in &bodies {
            let b = body.as_bytes();
            assert_eq!(check(b, &opts()), check_stepwise(b, &opts()), "{body}");
            fast += usize::from(serde_json::from_slice::<McmEvent>(b).is_ok());
        }
        assert!(fast >= 10, "only {fast} bodies took the fast path");
    }

    #[test]
    fn purchase_without_items_is_missing_items() {
        let body = r#"{"event_type":"PURCHASE","channel_type":"SITE","timestamp":1749999999000,"user_id":"u"}"#;
        assert_eq!(codes(body), ["missing_items"]);
    }
}
