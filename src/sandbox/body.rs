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
pub fn check(body: &[u8], opts: &ValidateOptions) -> Result<McmEvent, Rejection> {
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

    #[test]
    fn purchase_without_items_is_missing_items() {
        let body = r#"{"event_type":"PURCHASE","channel_type":"SITE","timestamp":1749999999000,"user_id":"u"}"#;
        assert_eq!(codes(body), ["missing_items"]);
    }
}
