//! The process stage: one message from its Kafka record to its fate — decode, route to its
//! `topics:` block, map, validate — and, for a rejected message, the reason it is dead-lettered
//! with.
//!
//! `run` (the coordinator), `replay-dlq`, `map` and `test` all judge a message here, so the same
//! record gets the same answer wherever it is processed: the same validation settings (from
//! `mcm.strict_validation` and `mcm.future_tolerance`), the same routing and the same
//! `no_mapping_for_topic` reject for a topic no block maps, the same DLQ reason for a reject.
//! Pure: no I/O, no tokio or rdkafka; only [`validate_options`] reads the clock. Building the
//! [`SourceMessage`] from a Kafka record (the consumer's message, a DLQ record's headers, a
//! command line) stays with each caller, which knows where the record came from.

use crate::config::{Config, McmConfig};
use crate::kafka::dlq::DlqReason;
use crate::mapping::{MappingPlan, Processed, RejectClass, SourceMessage, TopicMapping, WireEvent};
use crate::mcm::validate::{now_ms, ValidateOptions};
use crate::schema::{self, SchemaBook};

/// The reject reason of a message whose topic no `topics:` block maps.
pub const NO_MAPPING_FOR_TOPIC: &str = "no_mapping_for_topic";

/// A topic no `topics:` block maps: the consumer was subscribed to it (a pattern matching more
/// than the blocks do cannot happen, but a DLQ record may name a topic whose block was removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMapping<'a> {
    pub topic: &'a str,
}

impl NoMapping<'_> {
    /// The reject such a message is dead-lettered with.
    pub fn reject<E>(self) -> Processed<E> {
        Processed::Reject {
            class: RejectClass::NoMatch,
            reason: NO_MAPPING_FOR_TOPIC.into(),
            detail: format!("no topics block matches topic {:?}", self.topic),
            schema_id: None,
        }
    }
}

/// The validation settings of `config`, at the current time.
pub fn validate_options(config: &Config) -> ValidateOptions {
    validate_options_at(&config.mcm, now_ms())
}

/// The validation settings of `mcm` at `now_ms` (Unix milliseconds).
pub fn validate_options_at(mcm: &McmConfig, now_ms: i64) -> ValidateOptions {
    ValidateOptions {
        strict: mcm.strict_validation,
        now_ms,
        // Beyond ~292 million years: as good as unbounded.
        future_tolerance_ms: i64::try_from(mcm.future_tolerance.as_millis()).unwrap_or(i64::MAX),
    }
}

/// Decodes, routes, maps and validates one message, a valid event straight to its request body:
/// the pipeline's path. A topic no block maps is a [`NoMapping::reject`].
/// Schema'd blocks decode with the schemas in `schemas` (one the book lacks is a
/// `schema_unavailable` reject: the pipeline fetches before it calls this).
pub fn process(
    plan: &MappingPlan,
    source: &SourceMessage<'_>,
    opts: &ValidateOptions,
    schemas: &SchemaBook,
) -> Processed<WireEvent> {
    match plan.route(source.topic) {
        Some(block) if block.format.is_schemad() => {
            let decoded = schema::decode(block, source.payload, schemas);
            let mut p = block.process_decoded_wire(decoded, source, opts);
            name_schema_id(block, source.payload, &mut p);
            p
        }
        Some(block) => block.process_wire(source, opts),
        None => NoMapping {
            topic: source.topic,
        }
        .reject(),
    }
}

/// Like [`process`], for `map` and `test`: the readable event and the name of the rule that
/// matched (when one did). A topic no block maps is an `Err`, which those commands explain in
/// their own words.
pub fn process_named<'p, 'm>(
    plan: &'p MappingPlan,
    source: &SourceMessage<'m>,
    opts: &ValidateOptions,
    schemas: &SchemaBook,
) -> Result<(Processed, Option<&'p str>), NoMapping<'m>> {
    match plan.route(source.topic) {
        Some(block) if block.format.is_schemad() => {
            let decoded = schema::decode(block, source.payload, schemas);
            let mut p = block.process_decoded_named(decoded, source, opts);
            name_schema_id(block, source.payload, &mut p.0);
            Ok(p)
        }
        Some(block) => Ok(block.process_named(source, opts)),
        None => Err(NoMapping {
            topic: source.topic,
        }),
    }
}

/// Gives a reject of a registry-framed value the schema id its dead letter names.
fn name_schema_id<E>(block: &TopicMapping, payload: Option<&[u8]>, p: &mut Processed<E>) {
    if let Processed::Reject {
        reason, schema_id, ..
    } = p
    {
        *schema_id = schema::reject_schema_id(block, payload, reason);
    }
}

/// The DLQ reason of a [`Processed::Reject`]: its class and reason code, no HTTP status (nothing
/// was sent), its detail as the snippet, and the schema id its framing named.
pub fn dlq_reason(
    class: RejectClass,
    reason: String,
    detail: String,
    schema_id: Option<u32>,
) -> DlqReason {
    DlqReason {
        class: class.as_str().to_string(),
        reason,
        http_status: None,
        response_snippet: Some(detail),
        schema_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const NOW: i64 = 1_800_000_000_000;

    const CONFIG: &str = r#"
kafka:
  bootstrap_servers: 127.0.0.1:9092
  group_id: bridge
mcm:
  platform_name: Acme_Shop
  platform_id: ACME_TEST
  api_key: k3y
  strict_validation: true
  future_tolerance: 5s
topics:
  - topic: shop.orders
    rules:
      - event_type: PURCHASE
        fields:
          id: {path: order_id}
          timestamp: {path: ts}
          channel_type: SITE
          user_id: {path: user}
          revenue: {amount: {path: total.amount}, currency: {path: total.currency}}
          items:
            each: lines
            fields:
              id: {path: sku}
              price: {amount: {path: price}, currency: USD}
              quantity: {path: qty}
"#;

    fn load() -> (Config, MappingPlan) {
        let no_env = |_: &str| None;
        crate::config::load_str_with(
            CONFIG,
            Path::new("."),
            &no_env,
            Vec::<(String, String)>::new(),
            crate::mapping::compile,
        )
        .unwrap_or_else(|e| panic!("test config: {e:?}"))
    }

    fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> SourceMessage<'a> {
        SourceMessage {
            topic,
            partition: 1,
            offset: 7,
            key: None,
            headers: &[],
            timestamp_ms: None,
            payload: Some(payload),
        }
    }

    fn order(ts: i64, total: serde_json::Value) -> Vec<u8> {
        serde_json::json!({
            "order_id": "o-1", "ts": ts, "user": "u-1",
            "total": total,
            "lines": [{"sku": "s-1", "price": 9.5, "qty": 2}],
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn options_come_from_the_mcm_section() {
        let (config, _) = load();
        let o = validate_options_at(&config.mcm, NOW);
        assert!(o.strict);
        assert_eq!(o.now_ms, NOW);
        assert_eq!(o.future_tolerance_ms, 5_000);
        let live = validate_options(&config);
        assert!(live.strict && live.future_tolerance_ms == 5_000 && live.now_ms > NOW / 2);
    }

    #[test]
    fn a_valid_message_is_delivered_as_its_wire_body() {
        let (config, plan) = load();
        let opts = validate_options_at(&config.mcm, NOW);
        let body = order(
            NOW - 1_000,
            serde_json::json!({"currency": "USD", "amount": 19}),
        );
        let src = msg("shop.orders", &body);
        let Processed::Deliver(wire) = process(&plan, &src, &opts, &SchemaBook::new(1)) else {
            panic!(
                "expected delivery: {:?}",
                process(&plan, &src, &opts, &SchemaBook::new(1))
            );
        };
        assert_eq!(wire.event_type, crate::mcm::event::EventType::Purchase);
        // The same bytes as the readable event `map` prints, serialised.
        let Ok((Processed::Deliver(event), rule)) =
            process_named(&plan, &src, &opts, &SchemaBook::new(1))
        else {
            panic!("expected a readable event");
        };
        assert_eq!(wire.body, event.to_json_bytes());
        assert_eq!(rule, Some("topics[0].rules[0]"));
        let json: serde_json::Value = serde_json::from_slice(&wire.body).expect("wire JSON");
        assert_eq!(json["id"], "o-1");
    }

    #[test]
    fn a_topic_no_block_maps_is_rejected_with_its_name() {
        let (config, plan) = load();
        let opts = validate_options_at(&config.mcm, NOW);
        let body = order(NOW, serde_json::json!({"currency": "USD", "amount": 19}));
        let src = msg("shop.returns", &body);
        assert_eq!(
            process(&plan, &src, &opts, &SchemaBook::new(1)),
            Processed::Reject {
                class: RejectClass::NoMatch,
                reason: "no_mapping_for_topic".into(),
                detail: "no topics block matches topic \"shop.returns\"".into(),
                schema_id: None,
            }
        );
        assert_eq!(
            process_named(&plan, &src, &opts, &SchemaBook::new(1)),
            Err(NoMapping {
                topic: "shop.returns"
            })
        );
    }

    #[test]
    fn the_settings_decide_and_a_reject_becomes_its_dlq_reason() {
        let (config, plan) = load();
        // Strict validation requires revenue on PURCHASE; the message has none.
        let opts = validate_options_at(&config.mcm, NOW);
        let body = order(NOW, serde_json::Value::Null);
        let src = msg("shop.orders", &body);
        let Processed::Reject {
            class,
            reason,
            detail,
            schema_id,
        } = process(&plan, &src, &opts, &SchemaBook::new(1))
        else {
            panic!("strict validation should reject a PURCHASE without revenue");
        };
        assert_eq!(schema_id, None, "a JSON topic names no schema");
        let why = dlq_reason(class, reason.clone(), detail.clone(), schema_id);
        assert_eq!(
            why,
            DlqReason {
                class: "validation".into(),
                reason,
                http_status: None,
                response_snippet: Some(detail),
                schema_id: None,
            }
        );
        // Within the 5 s tolerance a timestamp ahead of the clock passes; beyond it, it does not.
        let relaxed = ValidateOptions {
            strict: false,
            ..opts
        };
        let ahead = order(NOW + 4_000, serde_json::Value::Null);
        assert!(matches!(
            process(
                &plan,
                &msg("shop.orders", &ahead),
                &relaxed,
                &SchemaBook::new(1)
            ),
            Processed::Deliver(_)
        ));
        let too_far = order(NOW + 6_000, serde_json::Value::Null);
        assert!(matches!(
            process(
                &plan,
                &msg("shop.orders", &too_far),
                &relaxed,
                &SchemaBook::new(1)
            ),
            Processed::Reject {
                class: RejectClass::Validation,
                ..
            }
        ));
    }
}
