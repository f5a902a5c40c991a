//! Pre-flight validation of an [`McmEvent`] against the User Event API's rules (reference
//! §2.5–2.7), each violation with a stable reason code.
//!
//! The bridge runs this before every request (a failing event goes to the DLQ with the reason and
//! is never sent), and the sandbox runs the very same function on every request it receives, so
//! both sides agree by construction. Hard rules are the ones the server enforces; `strict` adds the
//! soft rules that only some of Moloco's integrations require (revenue for PURCHASE,
//! referrer_page_id for LAND). Where sources disagree we take the stricter reading and say so
//! below. Pure: the current time is a parameter.

use super::event::{is_known_currency, ChannelType, EventType, McmEventOf, MoneyOf};
use std::fmt;

/// Maximum length of identifier-like fields (reference §2.2: "string ≤128"). Counted in UTF-8
/// bytes, not characters: the API is a Go gRPC-gateway service where `len(s)` is bytes, and bytes
/// is the stricter of the two readings.
pub const MAX_ID_LEN: usize = 128;

/// Timestamps below this are not milliseconds (1e11 ms is March 1973; "now" in seconds is ~1.7e9).
const MIN_PLAUSIBLE_MS: i64 = 100_000_000_000;
/// Timestamps above this are microseconds or nanoseconds (1e14 ms is the year 5138).
const MAX_PLAUSIBLE_MS: i64 = 100_000_000_000_000;

/// Why an event is invalid. The `code()` strings are stable: they appear in DLQ headers, metrics
/// labels, sandbox responses and `mcm-bridge test` expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    TimestampNotMillis,
    TimestampInFuture,
    NoIdentifier,
    MissingItems,
    ItemWithoutId,
    MissingSearchQuery,
    MissingPageId,
    AppOsInvalid,
    MoneyIncomplete,
    UnknownCurrency,
    AmountNotFinite,
    QuantityOutOfRange,
    FieldTooLong,
    AdvertisingIdInvalid,
    /// Strict mode only: PURCHASE without `revenue` (required by Segment and Amplitude).
    MissingRevenue,
    /// Strict mode only: LAND without `referrer_page_id` (required by Segment and Amplitude).
    MissingReferrerPageId,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::TimestampNotMillis,
        Reason::TimestampInFuture,
        Reason::NoIdentifier,
        Reason::MissingItems,
        Reason::ItemWithoutId,
        Reason::MissingSearchQuery,
        Reason::MissingPageId,
        Reason::AppOsInvalid,
        Reason::MoneyIncomplete,
        Reason::UnknownCurrency,
        Reason::AmountNotFinite,
        Reason::QuantityOutOfRange,
        Reason::FieldTooLong,
        Reason::AdvertisingIdInvalid,
        Reason::MissingRevenue,
        Reason::MissingReferrerPageId,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::TimestampNotMillis => "timestamp_not_millis",
            Reason::TimestampInFuture => "timestamp_in_future",
            Reason::NoIdentifier => "no_identifier",
            Reason::MissingItems => "missing_items",
            Reason::ItemWithoutId => "item_without_id",
            Reason::MissingSearchQuery => "missing_search_query",
            Reason::MissingPageId => "missing_page_id",
            Reason::AppOsInvalid => "app_os_invalid",
            Reason::MoneyIncomplete => "money_incomplete",
            Reason::UnknownCurrency => "unknown_currency",
            Reason::AmountNotFinite => "amount_not_finite",
            Reason::QuantityOutOfRange => "quantity_out_of_range",
            Reason::FieldTooLong => "field_too_long",
            Reason::AdvertisingIdInvalid => "advertising_id_invalid",
            Reason::MissingRevenue => "missing_revenue",
            Reason::MissingReferrerPageId => "missing_referrer_page_id",
        }
    }

    /// Parses a stable code back (used by test-case files).
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One broken rule: which, where in the event, and a sentence for humans.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub reason: Reason,
    /// Wire path of the offending field, e.g. `items[1].price.currency`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.field, self.message)
    }
}

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

fn push(
    v: &mut Vec<Violation>,
    reason: Reason,
    field: impl Into<String>,
    message: impl Into<String>,
) {
    v.push(Violation {
        reason,
        field: field.into(),
        message: message.into(),
    });
}

/// "Non-empty" means at least one non-whitespace character: a blank string carries no information
/// and the server's `page_id is empty`-style checks would treat it the same (stricter reading).
fn present<S: AsRef<str>>(s: &Option<S>) -> bool {
    s.as_ref().is_some_and(|s| {
        let s = s.as_ref();
        // A visible ASCII first character settles it without `trim`'s Unicode decoding (ASCII
        // whitespace for `char::is_whitespace` is 0x09..=0x0D and the space).
        match s.as_bytes().first() {
            Some(&b) if b.is_ascii() && !matches!(b, 0x09..=0x0D | b' ') => true,
            _ => !s.trim().is_empty(),
        }
    })
}

fn check_timestamp(ts: i64, opts: &ValidateOptions, v: &mut Vec<Violation>) {
    if !(MIN_PLAUSIBLE_MS..=MAX_PLAUSIBLE_MS).contains(&ts) {
        let hint = if (1..MIN_PLAUSIBLE_MS).contains(&ts) {
            " (looks like seconds: multiply by 1000)"
        } else if ts > MAX_PLAUSIBLE_MS {
            " (looks like micro- or nanoseconds)"
        } else {
            ""
        };
        push(
            v,
            Reason::TimestampNotMillis,
            "timestamp",
            format!("timestamp {ts} is not Unix milliseconds{hint}"),
        );
    } else if ts > opts.now_ms.saturating_add(opts.future_tolerance_ms) {
        push(
            v,
            Reason::TimestampInFuture,
            "timestamp",
            format!(
                "timestamp {ts} is {} ms in the future",
                ts.saturating_sub(opts.now_ms)
            ),
        );
    }
}

fn check_identifiers<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
    // Only user_id, device.persistent_id and custom_id count (reference §2.6, server message "no
    // available valid identifier"). The deprecated session_id / unique_device_id / advertising_id
    // were identifiers in legacy docs only; not counting them is the stricter reading.
    let persistent = e.device.as_ref().map(|d| &d.persistent_id);
    if !present(&e.user_id) && !persistent.is_some_and(present) && !present(&e.custom_id) {
        push(
            v,
            Reason::NoIdentifier,
            "user_id",
            "at least one of user_id, device.persistent_id, custom_id must be set",
        );
    }
}

fn check_type_rules<S: AsRef<str>>(
    e: &McmEventOf<S>,
    opts: &ValidateOptions,
    v: &mut Vec<Violation>,
) {
    if e.event_type.requires_items() && e.items.is_empty() {
        push(
            v,
            Reason::MissingItems,
            "items",
            format!("{} requires a non-empty items list", e.event_type),
        );
    }
    match e.event_type {
        EventType::Search if !present(&e.search_query) => push(
            v,
            Reason::MissingSearchQuery,
            "search_query",
            "SEARCH requires a non-empty search_query",
        ),
        EventType::PageView if !present(&e.page_id) => push(
            v,
            Reason::MissingPageId,
            "page_id",
            "PAGE_VIEW requires a non-empty page_id",
        ),
        EventType::Purchase if opts.strict && e.revenue.is_none() => push(
            v,
            Reason::MissingRevenue,
            "revenue",
            "PURCHASE requires revenue (strict mode)",
        ),
        EventType::Land if opts.strict && !present(&e.referrer_page_id) => push(
            v,
            Reason::MissingReferrerPageId,
            "referrer_page_id",
            "LAND requires referrer_page_id (strict mode)",
        ),
        _ => {}
    }
}

fn check_device<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
    let os = e
        .device
        .as_ref()
        .and_then(|d| d.os.as_ref().map(AsRef::as_ref));
    if e.channel_type == ChannelType::App {
        // The server requires the OS to *contain* ios or android; Moloco's own senders use both
        // `ios` and `IOS`, so the match is case-insensitive.
        let ok = os.is_some_and(|os| {
            let os = os.to_ascii_lowercase();
            os.contains("ios") || os.contains("android")
        });
        if !ok {
            push(
                v,
                Reason::AppOsInvalid,
                "device.os",
                format!(
                    "channel_type APP requires device.os containing ios or android, got {}",
                    os.map_or_else(|| "nothing".to_string(), |s| format!("{s:?}"))
                ),
            );
        }
    }
    if let Some(ad) = e
        .device
        .as_ref()
        .and_then(|d| d.advertising_id.as_ref().map(AsRef::as_ref))
    {
        if !ad.is_empty() && ad.chars().all(|c| c == '0' || c == '-') {
            push(
                v,
                Reason::AdvertisingIdInvalid,
                "device.advertising_id",
                "the all-zero advertising id is not allowed",
            );
        }
    }
}

fn check_items<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
    for (i, item) in e.items.iter().enumerate() {
        if !present(&item.id) && !present(&item.item_group_id) {
            push(
                v,
                Reason::ItemWithoutId,
                format!("items[{i}]"),
                "either id or item_group_id must be set",
            );
        }
        if let Some(q) = item.quantity {
            if i32::try_from(q).is_err() {
                push(
                    v,
                    Reason::QuantityOutOfRange,
                    format!("items[{i}].quantity"),
                    format!("quantity {q} does not fit the API's int32"),
                );
            }
        }
        // Field paths are only formatted when something is wrong: this runs per item per event.
        if !money_ok(item.price.as_ref()) {
            check_money_opt(item.price.as_ref(), &format!("items[{i}].price"), v);
        }
        if !money_ok(item.price_seller.as_ref()) {
            check_money_opt(
                item.price_seller.as_ref(),
                &format!("items[{i}].price_seller"),
                v,
            );
        }
        for (value, name) in [
            (&item.id, "id"),
            (&item.item_group_id, "item_group_id"),
            (&item.seller_id, "seller_id"),
        ] {
            if value
                .as_ref()
                .is_some_and(|s| s.as_ref().len() > MAX_ID_LEN)
            {
                check_len(value, &format!("items[{i}].{name}"), v);
            }
        }
    }
}

/// True when `m` is absent or passes every money rule (the cheap pre-check of the hot path).
fn money_ok<S: AsRef<str>>(m: Option<&MoneyOf<S>>) -> bool {
    m.is_none_or(|m| match (&m.currency, m.amount) {
        (Some(c), Some(a)) => is_known_currency(c.as_ref()) && a.is_finite(),
        _ => false,
    })
}

fn check_money_opt<S: AsRef<str>>(m: Option<&MoneyOf<S>>, field: &str, v: &mut Vec<Violation>) {
    let Some(m) = m else { return };
    match (&m.currency, m.amount) {
        (Some(c), Some(a)) => {
            let c = c.as_ref();
            if !is_known_currency(c) {
                push(
                    v,
                    Reason::UnknownCurrency,
                    format!("{field}.currency"),
                    format!("currency {c:?} is not in the MCM currency list"),
                );
            }
            if !a.is_finite() {
                push(
                    v,
                    Reason::AmountNotFinite,
                    format!("{field}.amount"),
                    "amount must be a finite number",
                );
            }
        }
        (None, _) => push(
            v,
            Reason::MoneyIncomplete,
            format!("{field}.currency"),
            "money needs both currency and amount; currency is missing",
        ),
        (_, None) => push(
            v,
            Reason::MoneyIncomplete,
            format!("{field}.amount"),
            "money needs both currency and amount; amount is missing",
        ),
    }
}

fn check_len<S: AsRef<str>>(s: &Option<S>, field: &str, v: &mut Vec<Violation>) {
    if let Some(s) = s {
        let s = s.as_ref();
        if s.len() > MAX_ID_LEN {
            push(
                v,
                Reason::FieldTooLong,
                field,
                format!("{} bytes, the limit is {MAX_ID_LEN}", s.len()),
            );
        }
    }
}

fn check_lengths<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
    check_len(&e.id, "id", v);
    check_len(&e.user_id, "user_id", v);
    check_len(&e.custom_id, "custom_id", v);
    check_len(&e.session_id, "session_id", v);
    check_len(&e.page_id, "page_id", v);
    check_len(&e.referrer_page_id, "referrer_page_id", v);
    if let Some(d) = &e.device {
        check_len(&d.persistent_id, "device.persistent_id", v);
        check_len(&d.unique_device_id, "device.unique_device_id", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcm::event::{Device, Item, McmEvent, Money};

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

    #[test]
    fn codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
    }
}
