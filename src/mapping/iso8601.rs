//! ISO-8601 date-times → Unix milliseconds, for the `iso8601` transform.
//!
//! The usual form (`2024-05-01T12:00:00.250Z`) is read by hand, since chrono's RFC 3339 parser is
//! most of a mapped event's timestamp cost; everything else goes to chrono. The fast path gives
//! exactly chrono's answer or none (`fast_iso8601_agrees_with_chrono` checks it against chrono).

use super::error::{MapError, MapReason};
use super::value::trim;

/// RFC 3339 / ISO-8601 with an offset (`2024-05-01T12:00:00.250Z`, `…+02:00`); without an
/// offset the time is taken as UTC (document producers that do this!).
pub(super) fn parse_iso8601(s: &str) -> Result<i64, MapError> {
    let s = trim(s);
    if let Some(ms) = utc_millis_fast(s.as_bytes()) {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
            return Ok(t.timestamp_millis());
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(MapError::new(
        MapReason::InvalidTimestamp,
        format!("{s:?} is not an ISO-8601 date-time (e.g. 2024-05-01T12:00:00Z)"),
    ))
}

/// The usual form, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, read directly (chrono's RFC 3339 parser is
/// most of a mapped event's timestamp cost). Gives exactly chrono's answer or `None`, for
/// anything else — other offsets, leap seconds, invalid dates — which chrono then decides
/// (checked against chrono by `fast_iso8601_agrees_with_chrono`).
fn utc_millis_fast(b: &[u8]) -> Option<i64> {
    let (head, rest) = b.split_first_chunk::<19>()?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0;
        for &c in head.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| head[i] != c) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > month_days || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let frac_ms = match rest {
        [b'Z'] => 0,
        [b'.', digits @ .., b'Z'] if (1..=9).contains(&digits.len()) => {
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Milliseconds are the first three digits (chrono truncates, it does not round).
            digits
                .iter()
                .chain([b'0'; 3].iter())
                .take(3)
                .fold(0, |v, &c| v * 10 + i64::from(c - b'0'))
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_millis(s: &str) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    #[test]
    fn fast_iso8601_handles_the_usual_form_and_edge_dates() {
        for s in [
            "2024-05-29T16:26:43.000Z",
            "2024-02-29T23:59:59.999999999Z",
            "2023-11-14T22:13:20.5Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.1234Z",
            "2000-02-29T12:00:00.01Z",
        ] {
            assert_eq!(utc_millis_fast(s.as_bytes()), chrono_millis(s), "{s}");
            assert!(utc_millis_fast(s.as_bytes()).is_some(), "{s}");
        }
        for s in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-06-30T23:59:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-01-01T00:00:00+02:00",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "+2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(utc_millis_fast(s.as_bytes()), None, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_iso8601_agrees_with_chrono(
            y in 0i64..10000, mo in 0i64..14, d in 0i64..33, h in 0i64..26, mi in 0i64..62,
            sec in 0i64..62, frac in proptest::option::of("[0-9]{0,10}"),
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}Z");
            if let Some(fast) = utc_millis_fast(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), chrono_millis(&s), "{}", s);
            }
            proptest::prop_assert_eq!(
                parse_iso8601(&s).ok(),
                chrono_millis(&s).or_else(|| parse_iso8601(&s).ok()),
                "{}", s
            );
        }
    }
}
