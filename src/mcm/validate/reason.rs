//! Why an event is invalid: one stable code per rule, and a violation that names the rule, the
//! field and what is wrong in words.

use std::fmt;
use strum::{EnumString, IntoStaticStr};

/// Why an event is invalid. The `code()` strings are stable: they appear in DLQ headers, metrics
/// labels, sandbox responses and `mcm-bridge test` expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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

    /// The stable code: the variant's name in snake case (`timestamp_not_millis`).
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// Parses a stable code back (used by test-case files).
    pub fn from_code(code: &str) -> Option<Reason> {
        code.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes = Reason::ALL.map(Reason::code);
        assert_eq!(
            codes,
            [
                "timestamp_not_millis",
                "timestamp_in_future",
                "no_identifier",
                "missing_items",
                "item_without_id",
                "missing_search_query",
                "missing_page_id",
                "app_os_invalid",
                "money_incomplete",
                "unknown_currency",
                "amount_not_finite",
                "quantity_out_of_range",
                "field_too_long",
                "advertising_id_invalid",
                "missing_revenue",
                "missing_referrer_page_id",
            ]
        );
        assert_eq!(
            Reason::from_code("Timestamp_Not_Millis"),
            None,
            "codes are case-sensitive"
        );
    }

    #[test]
    fn codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
    }
}
