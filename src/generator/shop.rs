//! Realistic "shop service" traffic (the shape of `deploy/examples/mcm-bridge.yaml`).
//!
//! Shoppers have stable e-mail and device ids and browse in sessions: HOME → category PAGE_VIEW →
//! product views → search → cart adds → sometimes a wishlist add → sometimes an order (mostly paid,
//! some pending, which the mapping skips). Prices are integer cents with plausible values and a
//! per-shopper currency. A configurable share of messages is deliberately broken (invalid JSON,
//! a product without a SKU, an empty search, an unknown currency, a tombstone) so the DLQ path is
//! exercised. Every message says what the example mapping will do with it, so callers can account
//! for every event. Pure: a seeded RNG and a clock value in, messages out.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Which topic a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopTopic {
    Events,
    Orders,
}

/// What the example mapping does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Deliver,
    Filter,
    DeadLetter,
}

#[derive(Debug, Clone)]
pub struct ShopMessage {
    pub topic: ShopTopic,
    /// The device id: keeps a shopper's events in one partition, in order.
    pub key: String,
    /// `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    pub expect: Expect,
}

struct Shopper {
    email: String,
    device_id: String,
    channel: &'static str,
    user_agent: &'static str,
    currency: &'static str,
}

const USER_AGENTS: [(&str, &str); 4] = [
    ("web", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("web", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"),
    ("ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
    ("android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"),
];
const CURRENCIES: [&str; 4] = ["usd", "eur", "gbp", "krw"];
const CATEGORIES: [&str; 6] = ["shoes", "jackets", "bags", "watches", "hats", "socks"];
const QUERIES: [&str; 6] = [
    "running shoes",
    "rain jacket",
    "leather bag",
    "smart watch",
    "wool hat",
    "gift",
];

/// Generates shop sessions. Deterministic for a given seed.
pub struct ShopGenerator {
    rng: StdRng,
    seq: u64,
    orders: u64,
    bad_share: f64,
    shoppers: Vec<Shopper>,
}

impl ShopGenerator {
    /// `bad_share`: the fraction of messages that are deliberately broken (0.0–1.0).
    pub fn new(seed: u64, bad_share: f64) -> ShopGenerator {
        let mut rng = StdRng::seed_from_u64(seed);
        let shoppers = (0..500)
            .map(|i| {
                let (channel, user_agent) = USER_AGENTS[rng.random_range(0..USER_AGENTS.len())];
                Shopper {
                    email: format!("Shopper{i}@Example.com"),
                    device_id: format!("dev-{seed:x}-{i:04}"),
                    channel,
                    user_agent,
                    currency: CURRENCIES[rng.random_range(0..CURRENCIES.len())],
                }
            })
            .collect();
        ShopGenerator {
            rng,
            seq: 0,
            orders: 0,
            bad_share: bad_share.clamp(0.0, 1.0),
            shoppers,
        }
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!("ev-{:x}-{}", self.rng.random::<u32>(), self.seq)
    }

    /// One shopping session (3–12 messages), timestamped around `now_secs`.
    pub fn session(&mut self, now_secs: i64) -> Vec<ShopMessage> {
        let s = self.rng.random_range(0..self.shoppers.len());
        let mut out = Vec::new();
        let mut t = now_secs - 60;
        let mut tick = |rng: &mut StdRng| {
            t += rng.random_range(1..8);
            t.min(now_secs)
        };
        let at = tick(&mut self.rng);
        out.push(self.page_view(s, at, json!({"type": "home", "path": "/"})));
        let cat = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
        let at = tick(&mut self.rng);
        out.push(self.page_view(
            s,
            at,
            json!({"type": "category", "category_id": cat, "path": format!("/c/{cat}")}),
        ));
        let mut cart = Vec::new();
        for _ in 0..self.rng.random_range(1..4) {
            let sku = format!("SKU-{}", self.rng.random_range(1000..1200));
            let price = self.rng.random_range(199..25_000);
            let at = tick(&mut self.rng);
            out.push(self.product(s, at, "product_view", &sku, price, None));
            if self.rng.random_bool(0.5) {
                let qty = self.rng.random_range(1..4);
                let at = tick(&mut self.rng);
                out.push(self.product(s, at, "cart_add", &sku, price, Some(qty)));
                cart.push((sku, price, qty));
            } else if self.rng.random_bool(0.2) {
                let at = tick(&mut self.rng);
                out.push(self.product(s, at, "wishlist_add", &sku, price, None));
            }
        }
        if self.rng.random_bool(0.4) {
            let q = QUERIES[self.rng.random_range(0..QUERIES.len())];
            let at = tick(&mut self.rng);
            out.push(self.event(s, at, "search", json!({"query": q})));
        }
        if self.rng.random_bool(0.1) {
            // A kind the mapping has no rule for: skipped and counted.
            let at = tick(&mut self.rng);
            out.push(self.event(s, at, "cart_remove", json!({})));
        }
        if !cart.is_empty() && self.rng.random_bool(0.6) {
            let at = tick(&mut self.rng);
            out.push(self.order(s, at, &cart));
        }
        for m in &mut out {
            if self.rng.random_bool(self.bad_share) {
                *m = self.corrupt(m.topic, &m.key);
            }
        }
        out
    }

    fn base(&mut self, s: usize, at: i64, kind: &str) -> Value {
        let id = self.next_id();
        let sh = &self.shoppers[s];
        let mut v = json!({
            "kind": kind, "event_id": id, "occurred_at": at, "channel": sh.channel,
            "device_id": sh.device_id, "user_agent": sh.user_agent,
        });
        // Logged-in about 70% of the time.
        if self.rng.random_bool(0.7) {
            v["customer"] = json!({"email": sh.email});
        }
        v
    }

    fn event(&mut self, s: usize, at: i64, kind: &str, extra: Value) -> ShopMessage {
        let mut v = self.base(s, at, kind);
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        let expect = if kind == "cart_remove" {
            Expect::Filter
        } else {
            Expect::Deliver
        };
        self.msg(ShopTopic::Events, s, &v, expect)
    }

    fn page_view(&mut self, s: usize, at: i64, page: Value) -> ShopMessage {
        self.event(s, at, "page_view", json!({ "page": page }))
    }

    fn product(
        &mut self,
        s: usize,
        at: i64,
        kind: &str,
        sku: &str,
        cents: i64,
        qty: Option<i64>,
    ) -> ShopMessage {
        let currency = self.shoppers[s].currency;
        let mut extra = json!({"product": {"sku": sku, "price_cents": cents, "currency": currency, "seller": "S-1"}});
        if let Some(q) = qty {
            extra["quantity"] = json!(q);
        }
        self.event(s, at, kind, extra)
    }

    fn order(&mut self, s: usize, at: i64, cart: &[(String, i64, i64)]) -> ShopMessage {
        self.orders += 1;
        let paid = self.rng.random_bool(0.9);
        let sh = &self.shoppers[s];
        let lines: Vec<Value> = cart
            .iter()
            .map(|(sku, cents, qty)| json!({"sku": sku, "qty": qty, "unit_price_cents": cents, "seller": "S-1"}))
            .collect();
        let v = json!({
            "order_id": format!("ORD-{}-{}", self.seq, self.orders),
            "status": if paid { "paid" } else { "pending" },
            "placed_at": at, "currency": sh.currency,
            "customer": {"email": sh.email}, "device_id": sh.device_id, "user_agent": sh.user_agent,
            "shipping_cents": 499, "lines": lines,
        });
        let expect = if paid {
            Expect::Deliver
        } else {
            Expect::Filter
        };
        self.msg(ShopTopic::Orders, s, &v, expect)
    }

    fn msg(&self, topic: ShopTopic, s: usize, v: &Value, expect: Expect) -> ShopMessage {
        ShopMessage {
            topic,
            key: self.shoppers[s].device_id.clone(),
            payload: Some(v.to_string().into_bytes()),
            expect,
        }
    }

    /// A deliberately broken message in place of a good one.
    fn corrupt(&mut self, topic: ShopTopic, key: &str) -> ShopMessage {
        let id = self.next_id();
        let payload = match (topic, self.rng.random_range(0..5)) {
            (_, 0) => Some(format!("{{\"kind\":\"page_view\",\"event_id\":\"{id}\"").into_bytes()), // truncated JSON
            (_, 1) => None, // tombstone
            (ShopTopic::Orders, _) => Some(
                json!({"order_id": id, "status": "paid", "placed_at": 0, "currency": "usd", "lines": []})
                    .to_string()
                    .into_bytes(),
            ),
            (ShopTopic::Events, 2) => Some(
                json!({"kind": "product_view", "event_id": id, "occurred_at": 1_717_000_000, "device_id": key, "product": {"price_cents": 100, "currency": "usd"}})
                    .to_string()
                    .into_bytes(),
            ),
            (ShopTopic::Events, 3) => Some(
                json!({"kind": "search", "event_id": id, "occurred_at": 1_717_000_000, "device_id": key, "query": "   "})
                    .to_string()
                    .into_bytes(),
            ),
            (ShopTopic::Events, _) => Some(
                json!({"kind": "cart_add", "event_id": id, "occurred_at": 1_717_000_000, "device_id": key, "product": {"sku": "SKU-1", "price_cents": 100, "currency": "doubloons"}})
                    .to_string()
                    .into_bytes(),
            ),
        };
        ShopMessage {
            topic,
            key: key.to_string(),
            payload,
            expect: Expect::DeadLetter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::testkit::assert_generated_matches_mapping;

    /// Every generated message does exactly what it says with the shipped example mapping.
    #[test]
    fn generated_messages_match_the_example_mapping() {
        let mut g = ShopGenerator::new(7, 0.05);
        assert_generated_matches_mapping(
            include_str!("../../deploy/examples/mcm-bridge.yaml"),
            |t| match t {
                ShopTopic::Events => "shop.events",
                ShopTopic::Orders => "shop.orders",
            },
            |now| g.session(now),
        );
    }
}
