//! The MCM User Event API wire model (reference §2): one event per request, snake_case JSON.
//!
//! The model is *leniently typed on purpose*: values that the server validates (currency codes,
//! money completeness, string lengths, identifier presence, per-type required fields) are kept
//! representable here so that [`crate::mcm::validate`] is the single place that enforces every
//! rule, with a stable reason code, for both the bridge (before a request) and the sandbox (when
//! one arrives). Only the three enums the API itself defines as closed sets are enums here.
//!
//! Serialisation guarantees: absent fields are omitted (never `null`), empty `items` is omitted,
//! `timestamp` is a JSON integer of Unix milliseconds. Deserialisation accepts `timestamp` as an
//! integer or a decimal string (Moloco's own senders use both, reference §2.2) and ignores unknown
//! keys (the API declares `additionalProperties: true`).

use serde::{Deserialize, Deserializer, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

/// `event_type` (reference §2.5). The proto zero value `UNKNOWN_EVENT_TYPE` is deliberately absent:
/// it must never be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Home,
    Land,
    PageView,
    ItemPageView,
    AddToCart,
    AddToWishlist,
    Search,
    Purchase,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::Home,
        EventType::Land,
        EventType::PageView,
        EventType::ItemPageView,
        EventType::AddToCart,
        EventType::AddToWishlist,
        EventType::Search,
        EventType::Purchase,
    ];

    /// The wire name, e.g. `ITEM_PAGE_VIEW`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a wire name (exact, upper-case).
    pub fn parse(s: &str) -> Option<EventType> {
        s.parse().ok()
    }

    /// Event types whose hard rule requires a non-empty `items` array (reference §2.5).
    pub fn requires_items(self) -> bool {
        matches!(
            self,
            EventType::ItemPageView
                | EventType::AddToCart
                | EventType::AddToWishlist
                | EventType::Purchase
        )
    }
}

/// `channel_type` (reference §2.2). `UNKNOWN_CHANNEL_TYPE` is never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelType {
    App,
    Site,
    DesktopSite,
    MobileSite,
}

impl ChannelType {
    pub const ALL: [ChannelType; 4] = [
        ChannelType::App,
        ChannelType::Site,
        ChannelType::DesktopSite,
        ChannelType::MobileSite,
    ];

    /// The wire name, e.g. `DESKTOP_SITE`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a wire name (exact, upper-case).
    pub fn parse(s: &str) -> Option<ChannelType> {
        s.parse().ok()
    }
}

/// `personalization_mode` (reference §2.2, added April 2026).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum PersonalizationMode {
    Standard,
    MetricOnly,
    IdLess,
}

impl PersonalizationMode {
    pub const ALL: [PersonalizationMode; 3] = [
        PersonalizationMode::Standard,
        PersonalizationMode::MetricOnly,
        PersonalizationMode::IdLess,
    ];

    /// The wire name, e.g. `METRIC_ONLY`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a wire name (exact, upper-case).
    pub fn parse(s: &str) -> Option<PersonalizationMode> {
        s.parse().ok()
    }
}

/// The currency list of the current OpenAPI `commonCurrency` enum (reference §2.4). Where sources
/// disagree (Segment lists `VEF` and lacks `VES`, `AED`, `CHF`), the OpenAPI list wins: it is the
/// only one generated from the live proto.
pub const CURRENCIES: [&str; 25] = [
    "USD", "KRW", "JPY", "EUR", "GBP", "SEK", "INR", "THB", "IDR", "CNY", "CAD", "RUB", "BRL",
    "SGD", "HKD", "AUD", "PLN", "DKK", "VND", "MYR", "PHP", "TRY", "VES", "AED", "CHF",
];

/// True when `code` is exactly (case-sensitively) one of [`CURRENCIES`].
pub fn is_known_currency(code: &str) -> bool {
    CURRENCIES.contains(&code)
}

/// `Money` (`commonMoney`): both members are required when the object is present; the validator
/// reports `money_incomplete` / `unknown_currency`, so both are optional here.
pub type Money = MoneyOf<String>;
/// `device` (`EventDevice`, reference §2.3).
pub type Device = DeviceOf<String>;
/// `items[]` (`EventItem`, reference §2.4).
pub type Item = ItemOf<String>;
/// One MCM user event, exactly as it goes on the wire.
pub type McmEvent = McmEventOf<String>;

/// [`Money`] over any text type `S`: the mapping builds events whose text borrows from the
/// message (`S = Cow<str>`), validates and serialises them without copying a string; everything
/// else uses the owned aliases.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MoneyOf<S> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
}

impl Money {
    pub fn new(currency: impl Into<String>, amount: f64) -> Money {
        MoneyOf {
            currency: Some(currency.into()),
            amount: Some(amount),
        }
    }
}

/// [`Device`] over any text type (see [`MoneyOf`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceOf<S> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_id: Option<S>,
    /// Deprecated by Moloco; kept so that existing streams can still send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertising_id: Option<S>,
    /// Deprecated by Moloco (use `persistent_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_device_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<S>,
    /// Not in the published OpenAPI but sent by Moloco's JS client and Segment (reference §2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<S>,
}

impl<S> DeviceOf<S> {
    pub fn is_empty(&self) -> bool {
        self.os.is_none()
            && self.os_version.is_none()
            && self.persistent_id.is_none()
            && self.advertising_id.is_none()
            && self.unique_device_id.is_none()
            && self.model.is_none()
            && self.ua.is_none()
            && self.language.is_none()
            && self.ip.is_none()
    }
}

/// [`Item`] over any text type (see [`MoneyOf`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ItemOf<S> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_group_id: Option<S>,
    /// Price of a single unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<MoneyOf<S>>,
    /// int32 on the wire; the validator checks the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_seller: Option<MoneyOf<S>>,
}

/// [`McmEvent`] over any text type (see [`MoneyOf`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McmEventOf<S> {
    /// Client-generated id; Moloco de-duplicates on it (DESIGN.md contract 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<S>,
    pub event_type: EventType,
    /// Unix milliseconds. Serialised as a JSON integer; read from an integer or a decimal string.
    #[serde(deserialize_with = "deserialize_timestamp")]
    pub timestamp: i64,
    pub channel_type: ChannelType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceOf<S>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<S>,
    /// Deprecated by Moloco (use `custom_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<S>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemOf<S>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<MoneyOf<S>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_query: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_page_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_charge: Option<MoneyOf<S>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_track_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personalization_mode: Option<PersonalizationMode>,
}

impl<S> McmEventOf<S> {
    /// A new event with the three always-required fields and nothing else.
    pub fn new(event_type: EventType, timestamp: i64, channel_type: ChannelType) -> McmEventOf<S> {
        McmEventOf {
            id: None,
            event_type,
            timestamp,
            channel_type,
            user_id: None,
            device: None,
            custom_id: None,
            session_id: None,
            items: Vec::new(),
            revenue: None,
            search_query: None,
            page_id: None,
            referrer_page_id: None,
            shipping_charge: None,
            decision_track_id: None,
            domain: None,
            personalization_mode: None,
        }
    }
}

impl<S: super::json::WireText> McmEventOf<S> {
    /// Serialises to the wire JSON: exactly what `serde_json` writes for [`McmEvent`] (non-finite
    /// floats as `null`, which validation rejects beforehand), by the hand-written writer in
    /// `src/mcm/json.rs` because this runs for every message.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // One allocation for a typical event (a PURCHASE with a few items and a user agent is
        // ~500–900 bytes).
        let mut out = Vec::with_capacity(1024);
        super::json::write_event(&mut out, self);
        out
    }
}

impl<S: Into<String>> McmEventOf<S> {
    /// The same event with owned text (copies only what is borrowed).
    pub fn into_owned(self) -> McmEvent {
        fn t<S: Into<String>>(s: Option<S>) -> Option<String> {
            s.map(Into::into)
        }
        fn m<S: Into<String>>(m: Option<MoneyOf<S>>) -> Option<Money> {
            m.map(|m| MoneyOf {
                currency: t(m.currency),
                amount: m.amount,
            })
        }
        McmEventOf {
            id: t(self.id),
            event_type: self.event_type,
            timestamp: self.timestamp,
            channel_type: self.channel_type,
            user_id: t(self.user_id),
            device: self.device.map(|d| DeviceOf {
                os: t(d.os),
                os_version: t(d.os_version),
                persistent_id: t(d.persistent_id),
                advertising_id: t(d.advertising_id),
                unique_device_id: t(d.unique_device_id),
                model: t(d.model),
                ua: t(d.ua),
                language: t(d.language),
                ip: t(d.ip),
            }),
            custom_id: t(self.custom_id),
            session_id: t(self.session_id),
            items: self
                .items
                .into_iter()
                .map(|i| ItemOf {
                    id: t(i.id),
                    item_group_id: t(i.item_group_id),
                    price: m(i.price),
                    quantity: i.quantity,
                    seller_id: t(i.seller_id),
                    price_seller: m(i.price_seller),
                })
                .collect(),
            revenue: m(self.revenue),
            search_query: t(self.search_query),
            page_id: t(self.page_id),
            referrer_page_id: t(self.referrer_page_id),
            shipping_charge: m(self.shipping_charge),
            decision_track_id: t(self.decision_track_id),
            domain: t(self.domain),
            personalization_mode: self.personalization_mode,
        }
    }
}

fn deserialize_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }
    match IntOrString::deserialize(d)? {
        IntOrString::Int(v) => Ok(v),
        IntOrString::Str(s) => s.trim().parse::<i64>().map_err(|_| {
            serde::de::Error::custom(format!(
                "timestamp must be Unix milliseconds as an integer or a decimal string, got {s:?}"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_snake_case_without_nulls_and_integer_timestamp() {
        let mut e = McmEvent::new(EventType::Purchase, 1_617_870_506_121, ChannelType::Site);
        e.id = Some("e1".into());
        e.user_id = Some("u".into());
        e.items.push(Item {
            id: Some("sku".into()),
            price: Some(Money::new("USD", 50.0)),
            quantity: Some(25),
            ..Item::default()
        });
        e.revenue = Some(Money::new("USD", 1250.0));
        let json = String::from_utf8(e.to_json_bytes()).expect("utf-8");
        assert_eq!(
            json,
            r#"{"id":"e1","event_type":"PURCHASE","timestamp":1617870506121,"channel_type":"SITE","user_id":"u","items":[{"id":"sku","price":{"currency":"USD","amount":50.0},"quantity":25}],"revenue":{"currency":"USD","amount":1250.0}}"#
        );
        assert!(!json.contains("null"));
    }

    #[test]
    fn reads_string_timestamps_and_ignores_unknown_keys() {
        let e: McmEvent = serde_json::from_str(
            r#"{"event_type":"HOME","timestamp":"1617870506121","channel_type":"APP","name":"x"}"#,
        )
        .expect("valid");
        assert_eq!(e.timestamp, 1_617_870_506_121);
        assert_eq!(e.channel_type, ChannelType::App);
    }

    #[test]
    fn wire_names_are_pinned() {
        assert_eq!(
            EventType::ALL.map(EventType::as_str),
            [
                "HOME",
                "LAND",
                "PAGE_VIEW",
                "ITEM_PAGE_VIEW",
                "ADD_TO_CART",
                "ADD_TO_WISHLIST",
                "SEARCH",
                "PURCHASE"
            ]
        );
        assert_eq!(
            ChannelType::ALL.map(ChannelType::as_str),
            ["APP", "SITE", "DESKTOP_SITE", "MOBILE_SITE"]
        );
        assert_eq!(
            PersonalizationMode::ALL.map(PersonalizationMode::as_str),
            ["STANDARD", "METRIC_ONLY", "ID_LESS"]
        );
        assert_eq!(EventType::AddToCart.to_string(), "ADD_TO_CART");
        assert_eq!(ChannelType::DesktopSite.to_string(), "DESKTOP_SITE");
        // Parsing is exact: the rules upper-case first, the sandbox takes the wire name only.
        assert_eq!(EventType::parse("add_to_cart"), None);
        assert_eq!(ChannelType::parse("App"), None);
        assert_eq!(PersonalizationMode::parse("IDLESS"), None);
    }

    #[test]
    fn round_trips_every_enum_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let j = serde_json::to_string(&t).expect("ser");
            assert_eq!(j, format!("\"{}\"", t.as_str()));
        }
        for c in ChannelType::ALL {
            assert_eq!(ChannelType::parse(c.as_str()), Some(c));
        }
        for p in PersonalizationMode::ALL {
            assert_eq!(PersonalizationMode::parse(p.as_str()), Some(p));
        }
    }
}
