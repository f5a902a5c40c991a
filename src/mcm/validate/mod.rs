//! Pre-flight validation of an [`McmEvent`](super::event::McmEvent) against the User Event API's
//! rules (reference §2.5–2.7), each violation with a stable reason code.
//!
//! The bridge runs this before every request (a failing event goes to the DLQ with the reason and
//! is never sent), and the sandbox runs the very same function on every request it receives, so
//! both sides agree by construction. Hard rules are the ones the server enforces; `strict` adds the
//! soft rules that only some of Moloco's integrations require (revenue for PURCHASE,
//! referrer_page_id for LAND). Where sources disagree we take the stricter reading and say so
//! below. Pure: the current time is a parameter.
//!
//! The reason codes are in `reason`, the rules themselves in `rules`; this module runs them.

mod reason;
mod rules;

pub use reason::{Reason, Violation};

use super::event::McmEventOf;
use rules::{
    check_device, check_identifiers, check_items, check_lengths, check_money_opt, check_timestamp,
    check_type_rules,
};

/// Maximum length of identifier-like fields (reference §2.2: "string ≤128"). Counted in UTF-8
/// bytes, not characters: the API is a Go gRPC-gateway service where `len(s)` is bytes, and bytes
/// is the stricter of the two readings.
pub const MAX_ID_LEN: usize = 128;

/// Validation settings.
#[derive(Debug, Clone, Copy)]
pub struct ValidateOptions {
    /// Also enforce the soft rules (revenue for PURCHASE, referrer_page_id for LAND).
    pub strict: bool,
    /// The current time in Unix milliseconds (a parameter so the rules stay pure and testable).
    pub now_ms: i64,
    /// How far ahead of `now_ms` a timestamp may be. Moloco rejects future timestamps outright, so
    /// the default is 0 (stricter reading); raise it only if producers' clocks run ahead.
    pub future_tolerance_ms: i64,
}

impl ValidateOptions {
    pub fn at(now_ms: i64) -> ValidateOptions {
        ValidateOptions {
            strict: false,
            now_ms,
            future_tolerance_ms: 0,
        }
    }

    pub fn now() -> ValidateOptions {
        ValidateOptions::at(now_ms())
    }
}

/// Current wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Checks every rule and returns all violations (not only the first), in a stable order.
pub fn validate<S: AsRef<str>>(
    event: &McmEventOf<S>,
    opts: &ValidateOptions,
) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_timestamp(event.timestamp, opts, &mut v);
    check_identifiers(event, &mut v);
    check_type_rules(event, opts, &mut v);
    check_device(event, &mut v);
    check_items(event, &mut v);
    check_money_opt(event.revenue.as_ref(), "revenue", &mut v);
    check_money_opt(event.shipping_charge.as_ref(), "shipping_charge", &mut v);
    check_lengths(event, &mut v);
    if v.is_empty() {
        Ok(())
    } else {
        Err(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcm::event::{ChannelType, Device, EventType, Item, McmEvent, Money};

    const NOW: i64 = 1_750_000_000_000;

    fn base(t: EventType) -> McmEvent {
        let mut e = McmEvent::new(t, NOW - 1000, ChannelType::Site);
        e.user_id = Some("u1".into());
        match t {
            EventType::Search => e.search_query = Some("shoes".into()),
            EventType::PageView => e.page_id = Some("CATEGORY:1".into()),
            _ if t.requires_items() => e.items.push(Item {
                id: Some("sku-1".into()),
                ..Item::default()
            }),
            _ => {}
        }
        e
    }

    fn reasons(e: &McmEvent, strict: bool) -> Vec<Reason> {
        let mut o = ValidateOptions::at(NOW);
        o.strict = strict;
        match validate(e, &o) {
            Ok(()) => vec![],
            Err(v) => v.into_iter().map(|x| x.reason).collect(),
        }
    }

    #[test]
    fn every_event_type_has_a_valid_minimal_form() {
        for t in EventType::ALL {
            assert_eq!(reasons(&base(t), false), vec![], "{t}");
        }
    }

    #[test]
    fn timestamp_rules() {
        let mut e = base(EventType::Home);
        e.timestamp = NOW / 1000;
        assert_eq!(reasons(&e, false), [Reason::TimestampNotMillis]);
        e.timestamp = NOW * 1000;
        assert_eq!(reasons(&e, false), [Reason::TimestampNotMillis]);
        e.timestamp = 0;
        assert_eq!(reasons(&e, false), [Reason::TimestampNotMillis]);
        e.timestamp = NOW + 1;
        assert_eq!(reasons(&e, false), [Reason::TimestampInFuture]);
        e.timestamp = NOW;
        assert_eq!(reasons(&e, false), []);
        let mut o = ValidateOptions::at(NOW);
        o.future_tolerance_ms = 5000;
        e.timestamp = NOW + 4000;
        assert!(validate(&e, &o).is_ok());
    }

    #[test]
    fn identifier_rule_accepts_any_of_three_and_ignores_deprecated() {
        let mut e = base(EventType::Home);
        e.user_id = None;
        e.session_id = Some("s".into());
        assert_eq!(reasons(&e, false), [Reason::NoIdentifier]);
        e.user_id = Some("   ".into());
        assert_eq!(reasons(&e, false), [Reason::NoIdentifier]);
        e.custom_id = Some("c".into());
        assert_eq!(reasons(&e, false), []);
        e.custom_id = None;
        e.device = Some(Device {
            persistent_id: Some("p".into()),
            ..Device::default()
        });
        assert_eq!(reasons(&e, false), []);
    }

    #[test]
    fn item_events_need_items_with_ids() {
        for t in [
            EventType::ItemPageView,
            EventType::AddToCart,
            EventType::AddToWishlist,
            EventType::Purchase,
        ] {
            let mut e = base(t);
            e.items.clear();
            assert_eq!(reasons(&e, false), [Reason::MissingItems], "{t}");
            e.items.push(Item::default());
            assert_eq!(reasons(&e, false), [Reason::ItemWithoutId], "{t}");
            e.items[0].item_group_id = Some("g".into());
            assert_eq!(reasons(&e, false), [], "{t}");
        }
    }

    #[test]
    fn search_and_page_view_need_their_fields() {
        let mut e = base(EventType::Search);
        e.search_query = Some(String::new());
        assert_eq!(reasons(&e, false), [Reason::MissingSearchQuery]);
        let mut e = base(EventType::PageView);
        e.page_id = None;
        assert_eq!(reasons(&e, false), [Reason::MissingPageId]);
    }

    #[test]
    fn app_channel_needs_ios_or_android() {
        let mut e = base(EventType::Home);
        e.channel_type = ChannelType::App;
        assert_eq!(reasons(&e, false), [Reason::AppOsInvalid]);
        e.device = Some(Device {
            os: Some("Windows".into()),
            ..Device::default()
        });
        assert_eq!(reasons(&e, false), [Reason::AppOsInvalid]);
        for os in ["iOS", "ANDROID", "iPhone iOS"] {
            e.device = Some(Device {
                os: Some(os.into()),
                ..Device::default()
            });
            assert_eq!(reasons(&e, false), [], "{os}");
        }
    }

    #[test]
    fn money_rules() {
        let mut e = base(EventType::Purchase);
        e.revenue = Some(Money {
            currency: Some("USD".into()),
            amount: None,
        });
        assert_eq!(reasons(&e, false), [Reason::MoneyIncomplete]);
        e.revenue = Some(Money::new("usd", 1.0));
        assert_eq!(reasons(&e, false), [Reason::UnknownCurrency]);
        e.revenue = Some(Money::new("VEF", 1.0));
        assert_eq!(reasons(&e, false), [Reason::UnknownCurrency]);
        e.revenue = Some(Money::new("USD", f64::INFINITY));
        assert_eq!(reasons(&e, false), [Reason::AmountNotFinite]);
        e.revenue = Some(Money::new("CHF", 10.0));
        e.items[0].price = Some(Money {
            currency: None,
            amount: Some(1.0),
        });
        e.shipping_charge = Some(Money::new("XXX", 0.0));
        assert_eq!(
            reasons(&e, false),
            [Reason::MoneyIncomplete, Reason::UnknownCurrency]
        );
    }

    #[test]
    fn quantity_must_fit_int32() {
        let mut e = base(EventType::AddToCart);
        e.items[0].quantity = Some(i64::from(i32::MAX) + 1);
        assert_eq!(reasons(&e, false), [Reason::QuantityOutOfRange]);
        e.items[0].quantity = Some(3);
        assert_eq!(reasons(&e, false), []);
    }

    #[test]
    fn long_identifiers_are_rejected_by_bytes() {
        let mut e = base(EventType::Home);
        e.user_id = Some("x".repeat(128));
        assert_eq!(reasons(&e, false), []);
        // 64 two-byte characters = 128 bytes: fine; 65 = 130 bytes: too long.
        e.user_id = Some("é".repeat(65));
        assert_eq!(reasons(&e, false), [Reason::FieldTooLong]);
    }

    #[test]
    fn zero_advertising_id_is_rejected() {
        let mut e = base(EventType::Home);
        e.device = Some(Device {
            advertising_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..Device::default()
        });
        assert_eq!(reasons(&e, false), [Reason::AdvertisingIdInvalid]);
    }

    #[test]
    fn strict_mode_adds_soft_rules() {
        let e = base(EventType::Purchase);
        assert_eq!(reasons(&e, false), []);
        assert_eq!(reasons(&e, true), [Reason::MissingRevenue]);
        let e = base(EventType::Land);
        assert_eq!(reasons(&e, true), [Reason::MissingReferrerPageId]);
    }

    #[test]
    fn reports_all_violations_at_once() {
        let mut e = base(EventType::Purchase);
        e.user_id = None;
        e.items.clear();
        e.timestamp = 5;
        assert_eq!(
            reasons(&e, false),
            [
                Reason::TimestampNotMillis,
                Reason::NoIdentifier,
                Reason::MissingItems
            ]
        );
    }
}
