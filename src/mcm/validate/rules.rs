//! The User Event API's rules (reference §2.5–2.7), one function per group: timestamp,
//! identifiers, what each event type requires, device, items, money and lengths. Each pushes
//! every violation it finds; none stops at the first.

use super::{Reason, ValidateOptions, Violation, MAX_ID_LEN};
use crate::mcm::event::{is_known_currency, ChannelType, EventType, McmEventOf, MoneyOf};

/// Timestamps below this are not milliseconds (1e11 ms is March 1973; "now" in seconds is ~1.7e9).
const MIN_PLAUSIBLE_MS: i64 = 100_000_000_000;
/// Timestamps above this are microseconds or nanoseconds (1e14 ms is the year 5138).
const MAX_PLAUSIBLE_MS: i64 = 100_000_000_000_000;

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

pub(super) fn check_timestamp(ts: i64, opts: &ValidateOptions, v: &mut Vec<Violation>) {
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

pub(super) fn check_identifiers<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
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

pub(super) fn check_type_rules<S: AsRef<str>>(
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

pub(super) fn check_device<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
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

pub(super) fn check_items<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
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

pub(super) fn check_money_opt<S: AsRef<str>>(
    m: Option<&MoneyOf<S>>,
    field: &str,
    v: &mut Vec<Violation>,
) {
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

pub(super) fn check_lengths<S: AsRef<str>>(e: &McmEventOf<S>, v: &mut Vec<Violation>) {
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
