//! Generated shop traffic as Avro in the schema registry framing (`generate --format avro`, the
//! demo's `--format avro`, the benchmark loader): the JSON the generators build, written field by
//! field with a schema whose fields mirror it, framed with the id the registry gave that schema.
//!
//! A message that is not JSON (the generators' deliberately truncated ones) is written as it is:
//! not framed, so the bridge dead-letters it as `bad_magic_byte`, as it dead-letters the JSON one
//! as `invalid_json`. Every other message keeps its fate: the shop schemas make every field
//! optional, so a message missing what the mapping needs still encodes and is rejected by the
//! mapping exactly as its JSON would be (`generated_avro_matches_the_example_mapping`).

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::Value as Json;

/// The shop.events schema (all fields optional).
pub const SHOP_EVENTS_AVSC: &str = include_str!("shop_events.avsc");
/// The shop.orders schema (all fields optional).
pub const SHOP_ORDERS_AVSC: &str = include_str!("shop_orders.avsc");

/// `json` as an Avro value of `schema`, field by field: a record's fields from the object's
/// members (absent → `null`, which the field's union must allow), a union's first branch that
/// takes the value, arrays and maps element by element, numbers as the schema's number type.
pub fn avro_of(json: &Json, schema: &Schema) -> Result<Avro, String> {
    Ok(match (schema, json) {
        (Schema::Union(u), v) => {
            let mut last = String::from("an empty union");
            for (i, branch) in u.variants().iter().enumerate() {
                match avro_of(v, branch) {
                    Ok(x) => return Ok(Avro::Union(i as u32, Box::new(x))),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        (Schema::Null, Json::Null) => Avro::Null,
        (Schema::Record(r), Json::Object(m)) => Avro::Record(
            r.fields
                .iter()
                .map(|f| {
                    let v = m.get(&f.name).unwrap_or(&Json::Null);
                    avro_of(v, &f.schema)
                        .map(|x| (f.name.clone(), x))
                        .map_err(|e| format!("{}: {e}", f.name))
                })
                .collect::<Result<_, String>>()?,
        ),
        (Schema::Array(a), Json::Array(items)) => Avro::Array(
            items
                .iter()
                .map(|x| avro_of(x, &a.items))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Map(m), Json::Object(o)) => Avro::Map(
            o.iter()
                .map(|(k, x)| avro_of(x, &m.types).map(|x| (k.clone(), x)))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::String, Json::String(s)) => Avro::String(s.clone()),
        (Schema::Boolean, Json::Bool(b)) => Avro::Boolean(*b),
        (Schema::Long, Json::Number(n)) => Avro::Long(n.as_i64().ok_or("not an integer")?),
        (Schema::Int, Json::Number(n)) => Avro::Int(
            n.as_i64()
                .and_then(|x| i32::try_from(x).ok())
                .ok_or("not a 32-bit integer")?,
        ),
        (Schema::Double, Json::Number(n)) => Avro::Double(n.as_f64().ok_or("not a number")?),
        (s, v) => return Err(format!("{v} does not fit {s:?}")),
    })
}

/// Frames `datum` as the registry serializers do: magic byte 0, the schema id, the datum.
pub fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(datum.len() + 5);
    v.push(0);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(datum);
    v
}

/// Encodes generated messages of one topic with one schema and its registry id.
#[derive(Debug, Clone)]
pub struct AvroWriter {
    schema: Schema,
    id: u32,
}

impl AvroWriter {
    pub fn new(schema_text: &str, id: u32) -> Result<AvroWriter, String> {
        Ok(AvroWriter {
            schema: Schema::parse_str(schema_text).map_err(|e| e.to_string())?,
            id,
        })
    }

    /// A generated JSON payload as framed Avro; not JSON → the bytes as they are (see the
    /// module docs).
    pub fn encode(&self, json_payload: &[u8]) -> Result<Vec<u8>, String> {
        let Ok(json) = serde_json::from_slice::<Json>(json_payload) else {
            return Ok(json_payload.to_vec());
        };
        let value = avro_of(&json, &self.schema)?;
        let datum = apache_avro::to_avro_datum(&self.schema, value).map_err(|e| e.to_string())?;
        Ok(framed(self.id, &datum))
    }
}

/// `config` (the example configuration) with `format: avro` on its `shop.events` and
/// `shop.orders` blocks and a `schema_registry` at `registry_url`: the demo's `--format avro`.
pub fn avro_example(config: &str, registry_url: &str) -> String {
    let mut out = String::with_capacity(config.len() + 128);
    for line in config.lines() {
        out.push_str(line);
        out.push('\n');
        if line == "  - topic: shop.events" || line == "  - topic: shop.orders" {
            out.push_str("    format: avro\n");
        }
    }
    out.push_str(&format!("schema_registry:\n  url: {registry_url}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::shop::{ShopGenerator, ShopTopic};
    use crate::mapping::{Format, Processed, SourceMessage};
    use crate::mcm::validate::ValidateOptions;
    use crate::schema::book::AvroSchema;
    use crate::schema::{Known, SchemaBook};
    use std::sync::Arc;

    /// The demo's `--format avro`: every generated message, written as Avro, has exactly the fate
    /// its JSON has under the example mapping with `format: avro` (through the pipeline's own
    /// decode), the truncated JSON ones included.
    #[test]
    fn generated_avro_matches_the_example_mapping() {
        let config = avro_example(
            include_str!("../../deploy/examples/mcm-bridge.yaml"),
            "http://127.0.0.1:9",
        );
        let env = |_: &str| -> Option<String> { None };
        let (_, plan) = crate::config::load_str_with(
            &config,
            std::path::Path::new("."),
            &env,
            Vec::<(String, String)>::new(),
            crate::mapping::compile,
        )
        .expect("avro example config is valid");
        assert!(plan.blocks().iter().all(|b| b.format == Format::Avro));
        let mut book = SchemaBook::new(4);
        for (id, text) in [(11, SHOP_EVENTS_AVSC), (12, SHOP_ORDERS_AVSC)] {
            let s = AvroSchema::parse(text, &[]).expect("schema");
            book.learn(id, Known::Avro(Arc::new(s)));
        }
        let events = AvroWriter::new(SHOP_EVENTS_AVSC, 11).expect("events");
        let orders = AvroWriter::new(SHOP_ORDERS_AVSC, 12).expect("orders");
        let now = 1_750_000_000;
        let opts = ValidateOptions::at(now * 1000 + 1000);
        let mut g = ShopGenerator::new(7, 0.05);
        let mut seen = 0;
        for _ in 0..300 {
            for m in g.session(now) {
                let (topic, w) = match m.topic {
                    ShopTopic::Events => ("shop.events", &events),
                    ShopTopic::Orders => ("shop.orders", &orders),
                };
                let payload = m.payload.as_deref().map(|p| w.encode(p).expect("encodes"));
                let src = SourceMessage {
                    topic,
                    partition: 0,
                    offset: 0,
                    key: Some(m.key.as_bytes()),
                    headers: &[("x-platform", Some(b"web"))],
                    timestamp_ms: None,
                    payload: payload.as_deref(),
                };
                let got = crate::pipeline::process::process(&plan, &src, &opts, &book);
                let kind = match got {
                    Processed::Deliver(_) => crate::generator::shop::Expect::Deliver,
                    Processed::Filtered { .. } => crate::generator::shop::Expect::Filter,
                    Processed::Reject { .. } => crate::generator::shop::Expect::DeadLetter,
                };
                assert_eq!(kind, m.expect, "{got:?}");
                seen += 1;
            }
        }
        assert!(seen > 1000);
    }
}
