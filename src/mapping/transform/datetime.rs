//! The `datetime` step: a date-time written in a fixed format (chrono's strftime syntax) in a
//! known zone → Unix milliseconds, like `iso8601`.
//!
//! For timestamps that are not ISO-8601 with an offset, the usual case being a database's
//! zone-less `DATETIME` (`2026-11-24 10:00:05.123` from MySQL or BigQuery):
//! `{datetime: {format: "%Y-%m-%d %H:%M:%S%.f", zone: Europe/Berlin}}`.
//!
//! - `zone` is an IANA name (`Europe/Berlin`, from the tz database compiled in by chrono-tz)
//!   or a fixed offset (`+02:00`); UTC when left out.
//! - A format that reads an offset (`%z`, `%:z`, `%+`) takes it from the text. `zone` is then
//!   refused at start-up, since it could never apply (chrono requires the offset to be there).
//! - A format without a time gives midnight; a format with no complete date, or a time without
//!   minutes, is refused at start-up, as are `%Z` (chrono skips a zone abbreviation without
//!   reading it: `CEST` would silently be taken in `zone`) and `%s` (use `epoch_seconds`).
//! - A local time that occurs twice (the hour repeated when summer time ends) is the earlier
//!   instant; one that does not occur (the hour skipped when it starts) is `invalid_timestamp`
//!   with a message saying so.
//!
//! The format is checked by writing a sample date-time with it and reading that back: what the
//! round trip yields is exactly what the format can read, which tells "no date" from "no time"
//! without re-implementing chrono's rules about which fields make a date.

use super::Transform;
use crate::config::decode::{closest, kind, ConfigError, MapReader};
use crate::mapping::error::{MapError, MapReason};
use crate::mapping::value::{trim, Val};
use chrono::format::{Fixed, Item, Numeric, Parsed, StrftimeItems};
use chrono::offset::LocalResult;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde_yaml_ng::Value as Yaml;
use std::fmt::Write as _;

/// A compiled `datetime` step.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTimeFormat {
    /// As written, for messages.
    format: String,
    items: Vec<Item<'static>>,
    /// False for a date-only format: the time is midnight.
    has_time: bool,
    /// The format reads its own offset (then `zone` is `None`).
    has_offset: bool,
    zone: Zone,
}

/// Where a local time is.
#[derive(Debug, Clone, PartialEq)]
enum Zone {
    Fixed(FixedOffset),
    Iana(Tz),
}

impl DateTimeFormat {
    pub(super) fn apply<'a>(&self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        let text = v.text()?;
        let s = trim(&text);
        let invalid = |why: &str| {
            MapError::new(
                MapReason::InvalidTimestamp,
                format!("{s:?} does not match the format {:?} ({why})", self.format),
            )
        };
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, s, self.items.iter())
            .map_err(|e| invalid(&e.to_string()))?;
        let date = parsed
            .to_naive_date()
            .map_err(|e| invalid(&e.to_string()))?;
        let time = if self.has_time {
            parsed
                .to_naive_time()
                .map_err(|e| invalid(&e.to_string()))?
        } else {
            NaiveTime::MIN
        };
        let local = date.and_time(time);
        let instant = match parsed.offset() {
            // Only a format with an offset sets one, and then `zone` was refused at start-up.
            Some(secs) if self.has_offset => FixedOffset::east_opt(secs)
                .ok_or_else(|| invalid("the offset is out of range"))
                .and_then(|o| self.single(o.from_local_datetime(&local), s))?,
            _ => match &self.zone {
                Zone::Fixed(o) => self.single(o.from_local_datetime(&local), s)?,
                Zone::Iana(tz) => self.single(tz.from_local_datetime(&local), s)?,
            },
        };
        Ok(Some(Val::Int(instant)))
    }

    /// The instant of a local time: the earlier one when it occurs twice, an error when never.
    fn single<Z: TimeZone>(&self, r: LocalResult<DateTime<Z>>, s: &str) -> Result<i64, MapError> {
        match r {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.timestamp_millis()),
            LocalResult::None => Err(MapError::new(
                MapReason::InvalidTimestamp,
                format!(
                    "{s:?} is a local time that does not exist in {} (skipped when the clocks go forward)",
                    self.zone_name()
                ),
            )),
        }
    }

    fn zone_name(&self) -> String {
        match &self.zone {
            Zone::Fixed(o) => o.to_string(),
            Zone::Iana(tz) => tz.name().to_string(),
        }
    }
}

// ---- start-up ----

const HELP: &str = "e.g. `{datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\", zone: UTC}}`";

/// `datetime`: a format alone (UTC), or `{format, zone}`.
pub(super) fn compile(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    let (format, zone) = match arg {
        Some(Yaml::String(f)) => (compile_format(f, path, errors), None),
        Some(m @ Yaml::Mapping(_)) => {
            let mut r = MapReader::new(m, path, errors)?;
            let format = match r.raw("format") {
                Some(Yaml::String(f)) => {
                    let at = r.child_path("format");
                    compile_format(f, &at, r.errors())
                }
                Some(other) => {
                    let msg = format!("a format is text, found {}", kind(other));
                    r.error("format", msg);
                    None
                }
                None => {
                    r.error(
                        "format",
                        format!("required (chrono strftime syntax), {HELP}"),
                    );
                    None
                }
            };
            let zone = match r.raw("zone") {
                None => None,
                Some(Yaml::String(z)) => match parse_zone(z) {
                    Ok(zone) => Some(Some(zone)),
                    Err(msg) => {
                        r.error("zone", msg);
                        Some(None)
                    }
                },
                Some(other) => {
                    let msg = format!(
                        "a zone is text (`Europe/Berlin`, `+02:00`), found {}; quote an offset",
                        kind(other)
                    );
                    r.error("zone", msg);
                    Some(None)
                }
            };
            if let (Some(f), Some(_)) = (&format, &zone) {
                if f.has_offset {
                    r.error(
                        "zone",
                        "the format reads the offset from the text (%z), so a zone would never apply: leave `zone` out",
                    );
                }
            }
            r.finish();
            (format, zone)
        }
        _ => {
            errors.push(ConfigError::new(
                path,
                format!("`datetime` needs a format, {HELP}"),
            ));
            return None;
        }
    };
    let mut f = format?;
    f.zone = match zone {
        None => Zone::Fixed(Utc.fix()),
        Some(z) => z?,
    };
    Some(Transform::DateTime(f))
}

/// Compiles and checks a format (see the module doc); the zone is filled in by the caller.
fn compile_format(f: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<DateTimeFormat> {
    let mut err = |msg: String| {
        errors.push(ConfigError::new(path, format!("format {f:?}: {msg}")));
        None
    };
    let items = match StrftimeItems::new(f).parse_to_owned() {
        Ok(items) => items,
        Err(_) => {
            let bad = bad_specifier(f).unwrap_or("%");
            return err(format!(
                "`{bad}` is not a format specifier (see chrono's strftime: %Y %m %d %H %M %S %.f %z …)"
            ));
        }
    };
    if items
        .iter()
        .any(|i| matches!(i, Item::Fixed(Fixed::TimezoneName)))
    {
        return err(
            "%Z cannot be read (chrono skips a zone abbreviation without using it): set `zone`, and write a fixed abbreviation as text, e.g. \"%Y-%m-%d %H:%M:%S UTC\"".into(),
        );
    }
    if items
        .iter()
        .any(|i| matches!(i, Item::Numeric(Numeric::Timestamp, _)))
    {
        return err("%s is a Unix timestamp: use the `epoch_seconds` transform".into());
    }
    // The round trip: write a sample with every field distinct, read it back.
    let sample = NaiveDate::from_ymd_opt(2001, 2, 3)
        .and_then(|d| d.and_hms_milli_opt(4, 5, 6, 789))
        .zip(FixedOffset::east_opt(5400))
        .and_then(|(t, o)| o.from_local_datetime(&t).single())
        .expect("2001-02-03 04:05:06.789 +01:30 is a valid date-time");
    let mut written = String::new();
    if write!(written, "{}", sample.format_with_items(items.iter())).is_err() {
        return err("it cannot write a date-time (an unsupported specifier)".into());
    }
    let mut parsed = Parsed::new();
    if let Err(e) = chrono::format::parse(&mut parsed, &written, items.iter()) {
        return err(format!(
            "it cannot read back the text it writes ({written:?}: {e}); adjacent numbers need fixed widths"
        ));
    }
    if parsed.to_naive_date().is_err() {
        return err(format!(
            "no complete date (a year, month and day, e.g. %Y-%m-%d; read back as {written:?}); a time alone cannot be placed"
        ));
    }
    let any_time = parsed.hour_div_12().is_some()
        || parsed.hour_mod_12().is_some()
        || parsed.minute().is_some()
        || parsed.second().is_some()
        || parsed.nanosecond().is_some();
    if any_time && parsed.to_naive_time().is_err() {
        return err("an incomplete time (it needs at least the hour and the minutes, e.g. %H:%M; %I also needs %p)".into());
    }
    Some(DateTimeFormat {
        format: f.to_string(),
        items,
        has_time: any_time,
        has_offset: parsed.offset().is_some(),
        zone: Zone::Fixed(Utc.fix()),
    })
}

/// The first `%…` specifier chrono does not know, for the error message: `%`, its modifiers
/// (`-`, `_`, `0`, `.`, `:`, `#`, a width) and the letter that ends it.
fn bad_specifier(f: &str) -> Option<&str> {
    let mut rest = f;
    while let Some(i) = rest.find('%') {
        let after = &rest[i + 1..];
        let len = after
            .char_indices()
            .find(|(_, c)| c.is_alphabetic() || matches!(c, '%' | '+'))
            .map_or(after.len(), |(j, c)| j + c.len_utf8());
        let spec = &rest[i..i + 1 + len];
        if StrftimeItems::new(spec).parse().is_err() {
            return Some(spec);
        }
        rest = &after[len..];
    }
    None
}

/// `Europe/Berlin`, `UTC`, or a fixed offset `±HH:MM` / `±HHMM` / `±HH`.
fn parse_zone(z: &str) -> Result<Zone, String> {
    if let Some(rest) = z.strip_prefix(['+', '-']) {
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        let colon_ok =
            !rest.contains(':') || (rest.len() == 5 && rest.as_bytes().get(2) == Some(&b':'));
        let (h, m) = match (
            digits.len(),
            colon_ok,
            digits.bytes().all(|b| b.is_ascii_digit()),
        ) {
            (2, true, true) => (digits.parse::<i32>().ok(), Some(0)),
            (4, true, true) => (
                digits[..2].parse::<i32>().ok(),
                digits[2..].parse::<i32>().ok(),
            ),
            _ => (None, None),
        };
        return match (h, m) {
            (Some(h @ 0..=23), Some(m @ 0..=59)) => {
                let secs = (h * 60 + m) * 60;
                let secs = if z.starts_with('-') { -secs } else { secs };
                FixedOffset::east_opt(secs)
                    .map(Zone::Fixed)
                    .ok_or_else(|| format!("{z:?} is out of range"))
            }
            _ => Err(format!(
                "{z:?} is not an offset: write ±HH:MM, e.g. +02:00 or -05:30"
            )),
        };
    }
    z.parse::<Tz>().map(Zone::Iana).map_err(|_| {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
        let hint = closest(z, &names)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_else(|| " (an IANA name such as Europe/Berlin or America/New_York, UTC, or an offset such as +02:00)".into());
        format!("unknown time zone {z:?}{hint}")
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_errors, s};
    use super::super::{run, run_opt};
    use crate::mapping::error::MapReason;
    use crate::mapping::value::Val;
    use proptest::prelude::*;

    const MYSQL: &str = "datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\"}";

    fn ms(t: &str, v: &str) -> Result<String, MapReason> {
        run(t, s(v))
    }

    #[test]
    fn a_mysql_datetime_is_utc_by_default() {
        // 2026-11-24T10:00:05.123Z
        assert_eq!(
            ms(MYSQL, "2026-11-24 10:00:05.123"),
            Ok("1795514405123".into())
        );
        assert_eq!(
            ms(MYSQL, " 2026-11-24 10:00:05 "),
            Ok("1795514405000".into())
        );
        assert_eq!(
            ms(MYSQL, "2026-11-24 10:00:05.123456"),
            Ok("1795514405123".into())
        );
        assert_eq!(
            ms(
                "datetime: \"%Y-%m-%d %H:%M:%S%.f\"",
                "2026-11-24 10:00:05.123"
            ),
            Ok("1795514405123".into())
        );
        // The same as iso8601 reads the ISO form of the instant.
        assert_eq!(
            ms("iso8601", "2026-11-24T10:00:05.123Z"),
            Ok("1795514405123".into())
        );
    }

    #[test]
    fn a_date_alone_is_midnight() {
        assert_eq!(
            ms("datetime: \"%Y-%m-%d\"", "2026-11-24"),
            Ok("1795478400000".into())
        );
        assert_eq!(
            ms(
                "datetime: {format: \"%d/%m/%Y\", zone: \"+01:00\"}",
                "24/11/2026"
            ),
            Ok("1795474800000".into())
        );
        assert_eq!(
            ms("datetime: \"%Y%m%d\"", "20261124"),
            Ok("1795478400000".into())
        );
        // A number is read as its text.
        assert_eq!(
            run("datetime: \"%Y%m%d\"", Val::Int(20261124)),
            Ok("1795478400000".into())
        );
    }

    #[test]
    fn zones_by_name_and_by_offset() {
        // Berlin is UTC+1 in November: 10:00:05 local is 09:00:05Z.
        let berlin = "datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\", zone: Europe/Berlin}";
        assert_eq!(
            ms(berlin, "2026-11-24 10:00:05.123"),
            Ok("1795510805123".into())
        );
        // … and UTC+2 in summer.
        assert_eq!(
            ms(berlin, "2026-07-01 12:00:00"),
            Ok("1782900000000".into())
        );
        for z in ["\"+01:00\"", "\"+0100\"", "\"+01\""] {
            let t = format!("datetime: {{format: \"%Y-%m-%d %H:%M:%S\", zone: {z}}}");
            assert_eq!(
                ms(&t, "2026-11-24 10:00:05"),
                Ok("1795510805000".into()),
                "{z}"
            );
        }
        let t = "datetime: {format: \"%Y-%m-%d %H:%M\", zone: \"-05:30\"}";
        assert_eq!(ms(t, "2026-11-24 04:30"), Ok("1795514400000".into()));
        let t = "datetime: {format: \"%Y-%m-%d %H:%M\", zone: UTC}";
        assert_eq!(ms(t, "2026-11-24 10:00"), Ok("1795514400000".into()));
    }

    #[test]
    fn an_offset_in_the_text_wins() {
        let t = "datetime: \"%Y-%m-%d %H:%M:%S%z\"";
        assert_eq!(
            ms(t, "2026-11-24 11:00:05+0100"),
            Ok("1795514405000".into())
        );
        let t = "datetime: \"%d.%m.%Y %H:%M:%S %:z\"";
        assert_eq!(
            ms(t, "24.11.2026 05:00:05 -05:00"),
            Ok("1795514405000".into())
        );
    }

    #[test]
    fn the_repeated_hour_takes_the_earlier_instant() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice,
        // first at 00:30Z (CEST, +2), then at 01:30Z (CET, +1).
        let t = "datetime: {format: \"%Y-%m-%d %H:%M\", zone: Europe/Berlin}";
        assert_eq!(ms(t, "2026-10-25 02:30"), Ok("1792888200000".into()));
        assert_eq!(ms(t, "2026-10-25 03:30"), Ok("1792895400000".into()));
    }

    #[test]
    fn the_skipped_hour_is_an_invalid_timestamp() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        let t = "datetime: {format: \"%Y-%m-%d %H:%M\", zone: Europe/Berlin}";
        assert_eq!(ms(t, "2026-03-29 02:30"), Err(MapReason::InvalidTimestamp));
        assert_eq!(ms(t, "2026-03-29 03:00"), Ok("1774746000000".into()));
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(t).expect("yaml");
        let mut errors = Vec::new();
        let steps = super::super::compile(&y, "t", &mut errors);
        let err = steps[0].apply(s("2026-03-29 02:30")).expect_err("a gap");
        assert_eq!(
            err.message,
            "\"2026-03-29 02:30\" is a local time that does not exist in Europe/Berlin (skipped when the clocks go forward)"
        );
    }

    #[test]
    fn text_that_does_not_fit_the_format_is_an_invalid_timestamp() {
        for bad in [
            "2026-11-24T10:00:05",
            "2026-11-24",
            "2026-13-01 00:00:00",
            "2026-02-30 00:00:00",
            "2026-11-24 10:00:05 extra",
            "yesterday",
            "",
        ] {
            assert_eq!(ms(MYSQL, bad), Err(MapReason::InvalidTimestamp), "{bad}");
        }
        assert_eq!(
            run_opt(MYSQL, Val::Bool(true)),
            Err(MapReason::InvalidTimestamp)
        );
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(MYSQL).expect("yaml");
        let mut errors = Vec::new();
        let steps = super::super::compile(&y, "t", &mut errors);
        let err = steps[0].apply(s("24/11/2026")).expect_err("no match");
        assert_eq!(
            err.message,
            "\"24/11/2026\" does not match the format \"%Y-%m-%d %H:%M:%S%.f\" (input contains invalid characters)"
        );
    }

    #[test]
    fn bad_datetime_steps_fail_at_start_up_with_paths() {
        let cases: [(&str, &str); 15] = [
            ("datetime", "f.transform.datetime: `datetime` needs a format, e.g. `{datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\", zone: UTC}}`"),
            ("datetime: {zone: UTC}", "f.transform.datetime.format: required (chrono strftime syntax), e.g. `{datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\", zone: UTC}}`"),
            ("datetime: \"%Y-%m-%d %Q\"", "f.transform.datetime: format \"%Y-%m-%d %Q\": `%Q` is not a format specifier (see chrono's strftime: %Y %m %d %H %M %S %.f %z …)"),
            ("datetime: {format: \"%Y-%m-%d %\"}", "f.transform.datetime.format: format \"%Y-%m-%d %\": `%` is not a format specifier (see chrono's strftime: %Y %m %d %H %M %S %.f %z …)"),
            ("datetime: \"%H:%M:%S\"", "f.transform.datetime: format \"%H:%M:%S\": no complete date (a year, month and day, e.g. %Y-%m-%d; read back as \"04:05:06\"); a time alone cannot be placed"),
            ("datetime: \"%Y-%m\"", "f.transform.datetime: format \"%Y-%m\": no complete date (a year, month and day, e.g. %Y-%m-%d; read back as \"2001-02\"); a time alone cannot be placed"),
            ("datetime: \"%Y-%m-%d %H\"", "f.transform.datetime: format \"%Y-%m-%d %H\": an incomplete time (it needs at least the hour and the minutes, e.g. %H:%M; %I also needs %p)"),
            ("datetime: \"%Y-%m-%d %H:%M %Z\"", "f.transform.datetime: format \"%Y-%m-%d %H:%M %Z\": %Z cannot be read (chrono skips a zone abbreviation without using it): set `zone`, and write a fixed abbreviation as text, e.g. \"%Y-%m-%d %H:%M:%S UTC\""),
            ("datetime: \"%s\"", "f.transform.datetime: format \"%s\": %s is a Unix timestamp: use the `epoch_seconds` transform"),
            ("datetime: {format: \"%Y-%m-%d\", zone: Europe/Berlinn}", "f.transform.datetime.zone: unknown time zone \"Europe/Berlinn\" (did you mean `Europe/Berlin`?)"),
            ("datetime: {format: \"%Y-%m-%d\", zone: Mars/Olympus}", "f.transform.datetime.zone: unknown time zone \"Mars/Olympus\" (an IANA name such as Europe/Berlin or America/New_York, UTC, or an offset such as +02:00)"),
            ("datetime: {format: \"%Y-%m-%d\", zone: \"+25:00\"}", "f.transform.datetime.zone: \"+25:00\" is not an offset: write ±HH:MM, e.g. +02:00 or -05:30"),
            ("datetime: {format: \"%Y-%m-%d\", zone: \"+2:00\"}", "f.transform.datetime.zone: \"+2:00\" is not an offset: write ±HH:MM, e.g. +02:00 or -05:30"),
            ("datetime: {format: \"%Y-%m-%d %H:%M%z\", zone: UTC}", "f.transform.datetime.zone: the format reads the offset from the text (%z), so a zone would never apply: leave `zone` out"),
            ("datetime: {format: \"%Y-%m-%d\", zone: 2}", "f.transform.datetime.zone: a zone is text (`Europe/Berlin`, `+02:00`), found a number; quote an offset"),
        ];
        for (t, want) in cases {
            assert_eq!(compile_errors(t), [want], "{t}");
        }
        assert_eq!(
            compile_errors("datetime: {format: \"%F\", tz: UTC}"),
            ["f.transform.datetime.tz: unknown key (expected one of: format, zone)"]
        );
    }

    #[test]
    fn common_formats_are_accepted() {
        for f in [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.3f",
            "%F %T",
            "%Y%m%d%H%M%S",
            "%d/%m/%Y %I:%M %p",
            "%a, %d %b %Y %H:%M:%S %z",
            "%Y-%j",
            "%+",
            "%c",
        ] {
            assert_eq!(
                compile_errors(&format!("datetime: {f:?}")),
                Vec::<String>::new(),
                "{f}"
            );
        }
        assert_eq!(
            ms(
                "datetime: \"%a, %d %b %Y %H:%M:%S %z\"",
                "Tue, 24 Nov 2026 10:00:05 +0000"
            ),
            Ok("1795514405000".into())
        );
        assert_eq!(
            ms("datetime: \"%d/%m/%Y %I:%M %p\"", "24/11/2026 10:00 AM"),
            Ok("1795514400000".into())
        );
        assert_eq!(
            ms("datetime: \"%Y%m%d%H%M%S\"", "20261124100005"),
            Ok("1795514405000".into())
        );
    }

    proptest! {
        #[test]
        fn datetime_never_panics_on_any_text(text in any::<String>(), near in "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?") {
            for t in [
                MYSQL,
                "datetime: {format: \"%Y-%m-%d %H:%M:%S%.f\", zone: America/Sao_Paulo}",
                "datetime: \"%Y-%m-%d %H:%M:%S%.f%z\"",
                "datetime: \"%Y-%m-%d\"",
            ] {
                let _ = run_opt(t, s(&text));
                let _ = run_opt(t, s(&near));
            }
        }

        #[test]
        fn format_and_zone_checks_never_panic(
            any_format in any::<String>(),
            format in "(%[-_0.:#3-9]{0,2}[a-zA-Z%+]?|[ :T/-]|é)*",
            any_zone in any::<String>(),
            zone in "[+-]?[0-9:]{0,6}",
        ) {
            for f in [&any_format, &format] {
                let mut errors = Vec::new();
                let _ = super::compile_format(f, "p", &mut errors);
            }
            for z in [&any_zone, &zone] {
                let _ = super::parse_zone(z);
            }
        }

        #[test]
        fn datetime_agrees_with_iso8601_in_utc(secs in -62_135_596_800i64..253_402_300_799, ms_part in 0u32..1000) {
            let t = chrono::DateTime::from_timestamp(secs, ms_part * 1_000_000).expect("in range");
            let text = t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            let want = t.timestamp_millis().to_string();
            prop_assert_eq!(ms(MYSQL, &text), Ok(want));
        }
    }
}
