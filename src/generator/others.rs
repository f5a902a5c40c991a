//! Segment-spec and GA4-style traffic (the shapes of `deploy/examples/segment.yaml` and
//! `ga4.yaml`): the same shopping sessions as [`super::shop`], written the way those producers
//! write them. Every message says what the shipped mapping does with it.

use super::shop::{Expect, ShopMessage, ShopTopic};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use strum::EnumString;

/// Which event shape to generate: `shop`, `segment` or `ga4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Shape {
    Shop,
    Segment,
    Ga4,
}

impl Shape {
    pub fn parse(s: &str) -> Option<Shape> {
        s.parse().ok()
    }
}

const SKUS: [&str; 6] = ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5", "SKU-6"];

/// Sessions in Segment's spec (track/page calls) or GA4's measurement shape.
pub struct SpecGenerator {
    rng: StdRng,
    shape: Shape,
    seq: u64,
    bad_share: f64,
}

impl SpecGenerator {
    pub fn new(shape: Shape, seed: u64, bad_share: f64) -> SpecGenerator {
        SpecGenerator {
            rng: StdRng::seed_from_u64(seed),
            shape,
            seq: 0,
            bad_share: bad_share.clamp(0.0, 1.0),
        }
    }

    /// One session around `now_secs`.
    pub fn session(&mut self, now_secs: i64) -> Vec<ShopMessage> {
        let user = self.rng.random_range(0..500u32);
        let mut out = Vec::new();
        let mut t = now_secs - 60;
        let steps = [
            "home", "page", "view", "search", "add", "wish", "order", "skip",
        ];
        for step in steps {
            if matches!(step, "wish" | "order" | "skip") && self.rng.random_bool(0.5) {
                continue;
            }
            t += self.rng.random_range(1..5);
            let at = t.min(now_secs);
            let bad = self.rng.random_bool(self.bad_share);
            let (payload, expect) = match self.shape {
                Shape::Segment => self.segment(step, user, at, bad),
                _ => self.ga4(step, user, at, bad),
            };
            out.push(ShopMessage {
                topic: ShopTopic::Events,
                key: format!("user-{user}"),
                payload: Some(payload.to_string().into_bytes()),
                expect,
            });
        }
        out
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!("gen-{:x}-{}", self.rng.random::<u32>(), self.seq)
    }

    fn segment(&mut self, step: &str, user: u32, at: i64, bad: bool) -> (Value, Expect) {
        let id = self.next_id();
        let ts = chrono::DateTime::from_timestamp(at, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let price = f64::from(self.rng.random_range(100..20_000u32)) / 100.0;
        let base = json!({"messageId": id, "timestamp": ts, "userId": format!("user-{user}"), "anonymousId": format!("anon-{user}")});
        let mut v = base;
        let (extra, expect) = match step {
            "home" => (
                json!({"type": "page", "name": "Home", "context": {"page": {"path": "/"}}}),
                Expect::Deliver,
            ),
            "page" => (
                json!({"type": "page", "name": "Category", "properties": {"path": "/c/shoes"}}),
                Expect::Deliver,
            ),
            "view" => (
                json!({"type": "track", "event": "Product Viewed", "properties": {"product_id": sku, "price": price, "currency": "usd"}}),
                Expect::Deliver,
            ),
            "search" => (
                json!({"type": "track", "event": "Products Searched", "properties": {"query": "running shoes"}}),
                Expect::Deliver,
            ),
            "add" => (
                json!({"type": "track", "event": "Product Added", "properties": {"product_id": sku, "price": price, "quantity": 1}}),
                Expect::Deliver,
            ),
            "wish" => (
                json!({"type": "track", "event": "Product Added to Wishlist", "properties": {"product_id": sku}}),
                Expect::Deliver,
            ),
            "order" => (
                json!({"type": "track", "event": "Order Completed", "properties": {"order_id": id, "revenue": price, "currency": "usd", "products": [{"product_id": sku, "price": price, "quantity": 1}]}}),
                Expect::Deliver,
            ),
            _ => (
                json!({"type": "track", "event": "Checkout Started"}),
                Expect::Filter,
            ),
        };
        merge(&mut v, extra);
        if bad {
            // An order without products: MCM requires items for PURCHASE.
            v = json!({"type": "track", "event": "Order Completed", "messageId": v["messageId"], "timestamp": v["timestamp"], "userId": v["userId"], "properties": {"revenue": 1, "currency": "USD"}});
            return (v, Expect::DeadLetter);
        }
        (v, expect)
    }

    fn ga4(&mut self, step: &str, user: u32, at: i64, bad: bool) -> (Value, Expect) {
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let price = f64::from(self.rng.random_range(100..20_000u32)) / 100.0;
        let id = self.next_id();
        let (event, expect) = match step {
            "home" => (
                json!({"name": "page_view", "params": {"page_location": "https://shop.example/"}}),
                Expect::Deliver,
            ),
            "page" => (
                json!({"name": "page_view", "params": {"page_location": "https://shop.example/c/tees", "page_path": "/c/tees"}}),
                Expect::Deliver,
            ),
            "view" => (
                json!({"name": "view_item", "params": {"currency": "usd", "value": price, "items": [{"item_id": sku, "price": price}]}}),
                Expect::Deliver,
            ),
            "search" => (
                json!({"name": "search", "params": {"search_term": "t-shirts"}}),
                Expect::Deliver,
            ),
            "add" => (
                json!({"name": "add_to_cart", "params": {"currency": "USD", "items": [{"item_id": sku, "price": price, "quantity": 1}]}}),
                Expect::Deliver,
            ),
            "wish" => (
                json!({"name": "add_to_wishlist", "params": {"currency": "USD", "items": [{"item_id": sku, "price": price}]}}),
                Expect::Deliver,
            ),
            "order" => (
                json!({"name": "purchase", "params": {"transaction_id": id, "currency": "USD", "value": price, "items": [{"item_id": sku, "price": price, "quantity": 1}]}}),
                Expect::Deliver,
            ),
            _ => (
                json!({"name": "begin_checkout", "params": {}}),
                Expect::Filter,
            ),
        };
        let (event, expect) = if bad {
            // A currency outside the MCM list.
            (
                json!({"name": "add_to_cart", "params": {"currency": "XAU", "items": [{"item_id": sku, "price": 1}]}}),
                Expect::DeadLetter,
            )
        } else {
            (event, expect)
        };
        let v = json!({
            "client_id": format!("{user}.1717000000"), "user_id": format!("member-{user}"),
            "timestamp_micros": at * 1_000_000 + i64::from(self.rng.random_range(0..1_000_000u32)),
            "events": [event],
        });
        (v, expect)
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(obj), Value::Object(more)) = (into.as_object_mut(), extra) {
        obj.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::testkit::assert_generated_matches_mapping;

    #[test]
    fn shapes_are_parsed_by_their_lower_case_names() {
        assert_eq!(Shape::parse("shop"), Some(Shape::Shop));
        assert_eq!(Shape::parse("segment"), Some(Shape::Segment));
        assert_eq!(Shape::parse("ga4"), Some(Shape::Ga4));
        assert_eq!(Shape::parse("GA4"), None, "case-sensitive");
    }

    #[test]
    fn segment_traffic_matches_the_segment_example() {
        let mut g = SpecGenerator::new(Shape::Segment, 3, 0.05);
        assert_generated_matches_mapping(
            include_str!("../../deploy/examples/segment.yaml"),
            |_| "segment.events",
            |now| g.session(now),
        );
    }

    #[test]
    fn ga4_traffic_matches_the_ga4_example() {
        let mut g = SpecGenerator::new(Shape::Ga4, 3, 0.05);
        assert_generated_matches_mapping(
            include_str!("../../deploy/examples/ga4.yaml"),
            |_| "ga4.events",
            |now| g.session(now),
        );
    }
}
