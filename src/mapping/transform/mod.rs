//! Transforms: the `transform:` steps applied, in order, to a source value.
//!
//! Written as one name or a list of steps; a step with arguments is a one-key mapping:
//! `transform: [trim, lower, {sha256: {normalize: true}}]`. Every name is checked at start-up
//! (with a did-you-mean), every argument too (`divide: 0` is an error there, not a NaN later;
//! regexes are compiled there). An absent value skips the transforms (the field's `default:`
//! applies after them); a step that finds nothing (`split` past the end, a `regex` without a
//! match) makes the value absent for the steps after it in the same way.
//!
//! The newer steps live in a file each: [`text`] (split, strip, truncate), [`pattern`] (regex,
//! replace), [`url`] (parts of a URL), [`language`] (a locale to its ISO-639-1 code) and
//! [`datetime`] (a formatted local date-time to Unix ms).

mod datetime;
mod language;
mod pattern;
mod text;
mod url;

use super::error::{MapError, MapReason};
use super::iso8601::parse_iso8601;
use super::value::{float_to_i64, trim, Scalar, Val};
use crate::config::decode::{closest, index, join, kind, show, ConfigError};
use crate::mcm::event::CURRENCIES;
use serde_yaml_ng::Value as Yaml;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;

/// Every transform name, for did-you-mean hints and the docs.
pub const NAMES: [&str; 26] = [
    "string",
    "number",
    "integer",
    "lower",
    "upper",
    "trim",
    "split",
    "regex",
    "replace",
    "strip_prefix",
    "strip_suffix",
    "truncate",
    "url",
    "language",
    "lookup",
    "epoch_seconds",
    "epoch_millis",
    "epoch_micros",
    "iso8601",
    "datetime",
    "currency",
    "sha256",
    "multiply",
    "divide",
    "add",
    "round",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    ToString,
    ToNumber,
    ToInteger,
    Lower,
    Upper,
    Trim,
    Split(text::Split),
    Regex(pattern::Extract),
    Replace(pattern::Replace),
    StripPrefix(String),
    StripSuffix(String),
    /// At most this many bytes (see [`text::truncate`] for why bytes).
    Truncate(usize),
    Url(self::url::UrlPart),
    Language,
    Lookup(Lookup),
    /// Epoch time with this many units per second (1, 1000, 1_000_000) → Unix ms.
    Epoch(f64),
    Iso8601,
    DateTime(datetime::DateTimeFormat),
    Currency,
    Sha256 {
        normalize: bool,
    },
    Multiply(f64),
    /// Kept apart from `Multiply(1/d)`: `1999 / 100` is exactly `19.99`, `1999 * 0.01` is not.
    Divide(f64),
    Add(f64),
    /// Round to this many decimal places (after arithmetic on money, `19.989999` → `19.99`).
    Round(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub table: HashMap<String, Scalar>,
    pub default: LookupDefault,
    pub ignore_case: bool,
}

/// What a lookup gives for a value not in its table.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupDefault {
    /// Nothing: the message is rejected (`lookup_no_match`).
    Reject,
    /// This value.
    Value(Scalar),
    /// `default: keep`: the source value, unchanged (a pass-through lookup).
    Keep,
}

impl LookupDefault {
    /// The fixed default value, when there is one.
    pub fn value(&self) -> Option<&Scalar> {
        match self {
            LookupDefault::Value(s) => Some(s),
            LookupDefault::Reject | LookupDefault::Keep => None,
        }
    }
}

/// Compiles a `transform:` value at `path`; problems go to `errors`.
pub fn compile(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Vec<Transform> {
    match v {
        Yaml::Sequence(steps) => steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| compile_step(s, &index(path, i), errors))
            .collect(),
        single => compile_step(single, path, errors).into_iter().collect(),
    }
}

fn compile_step(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Transform> {
    let (name, arg) = match v {
        Yaml::String(s) => (s.as_str(), None),
        Yaml::Mapping(m) if m.len() == 1 => match m.iter().next() {
            Some((Yaml::String(k), a)) => (k.as_str(), Some(a)),
            _ => {
                errors.push(ConfigError::new(
                    path,
                    "a transform step is a name, or `name: argument`",
                ));
                return None;
            }
        },
        other => {
            errors.push(ConfigError::new(
                path,
                format!(
                    "a transform step is a name, or a mapping `name: argument`; found {}",
                    kind(other)
                ),
            ));
            return None;
        }
    };
    let arg_path = join(path, name);
    let mut err = |msg: String| errors.push(ConfigError::new(arg_path.clone(), msg));
    let no_arg = |t: Transform, err: &mut dyn FnMut(String)| {
        if arg.is_some_and(|a| !a.is_null()) {
            err(format!("`{name}` takes no argument"));
        }
        Some(t)
    };
    let number_arg = |err: &mut dyn FnMut(String)| -> Option<f64> {
        match arg.and_then(Yaml::as_f64) {
            Some(f) if f.is_finite() => Some(f),
            _ => {
                err(format!("`{name}` needs a number, e.g. `{name}: 100`"));
                None
            }
        }
    };
    match name {
        "string" => no_arg(Transform::ToString, &mut err),
        "number" => no_arg(Transform::ToNumber, &mut err),
        "integer" => no_arg(Transform::ToInteger, &mut err),
        "lower" => no_arg(Transform::Lower, &mut err),
        "upper" => no_arg(Transform::Upper, &mut err),
        "trim" => no_arg(Transform::Trim, &mut err),
        "epoch_seconds" => no_arg(Transform::Epoch(1.0), &mut err),
        "epoch_millis" => no_arg(Transform::Epoch(1e3), &mut err),
        "epoch_micros" => no_arg(Transform::Epoch(1e6), &mut err),
        "iso8601" => no_arg(Transform::Iso8601, &mut err),
        "currency" => no_arg(Transform::Currency, &mut err),
        "multiply" => number_arg(&mut err).map(Transform::Multiply),
        "add" => number_arg(&mut err).map(Transform::Add),
        "divide" => match number_arg(&mut err) {
            Some(0.0) => {
                err("`divide: 0` would divide by zero".into());
                None
            }
            d => d.map(Transform::Divide),
        },
        "round" => match arg.and_then(Yaml::as_u64) {
            Some(n) if n <= 10 => Some(Transform::Round(n as i32)),
            _ => {
                err(
                    "`round` needs a number of decimal places from 0 to 10, e.g. `round: 2`".into(),
                );
                None
            }
        },
        "split" => text::compile_split(arg, &arg_path, errors),
        "regex" => pattern::compile_extract(arg, &arg_path, errors),
        "replace" => pattern::compile_replace(arg, &arg_path, errors),
        "strip_prefix" => {
            text::compile_affix(name, arg, &arg_path, errors).map(Transform::StripPrefix)
        }
        "strip_suffix" => {
            text::compile_affix(name, arg, &arg_path, errors).map(Transform::StripSuffix)
        }
        "truncate" => text::compile_truncate(arg, &arg_path, errors),
        "url" => self::url::compile(arg, &arg_path, errors),
        "language" => no_arg(Transform::Language, &mut err),
        "datetime" => datetime::compile(arg, &arg_path, errors),
        "sha256" => compile_sha256(arg, &arg_path, errors),
        "lookup" => compile_lookup(arg, &arg_path, errors),
        other => {
            let hint = closest(other, &NAMES)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_else(|| format!(" (known: {})", NAMES.join(", ")));
            errors.push(ConfigError::new(
                path,
                format!("unknown transform `{other}`{hint}"),
            ));
            None
        }
    }
}

fn compile_sha256(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    let Some(arg) = arg.filter(|a| !a.is_null()) else {
        return Some(Transform::Sha256 { normalize: false });
    };
    let mut r = crate::config::decode::MapReader::new(arg, path, errors)?;
    let normalize = r.opt::<bool>("normalize").unwrap_or(false);
    r.finish();
    Some(Transform::Sha256 { normalize })
}

fn compile_lookup(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    let arg = arg.unwrap_or(&Yaml::Null);
    let mut r = crate::config::decode::MapReader::new(arg, path, errors)?;
    let ignore_case = r.opt::<bool>("ignore_case").unwrap_or(false);
    if r.is_null("default") {
        // Read as "no default" it would reject every value not in the table at run time, which
        // is never what `default: null` meant to say.
        r.error(
            "default",
            "null is not a default: leave `default` out to dead-letter values not in the table (lookup_no_match), give a value, or write `default: keep` to pass them through unchanged",
        );
    }
    let default = match r.raw("default") {
        None => LookupDefault::Reject,
        Some(Yaml::String(k)) if k == "keep" => LookupDefault::Keep,
        Some(d) => match Scalar::from_yaml(d) {
            Some(s) => LookupDefault::Value(s),
            None => {
                r.error(
                    "default",
                    format!("must be a single value or `keep`, found {}", kind(d)),
                );
                LookupDefault::Reject
            }
        },
    };
    let mut table = HashMap::new();
    match r.raw("table") {
        Some(Yaml::Mapping(m)) if !m.is_empty() => {
            let tpath = r.child_path("table");
            for (k, v) in m {
                let key = match Scalar::from_yaml(k) {
                    Some(Scalar::Str(s)) => s,
                    Some(other) => other.val().into_string().unwrap_or_default(),
                    None => {
                        r.error_at(tpath.clone(), format!("key {} is not a single value", show(k)));
                        continue;
                    }
                };
                let key = if ignore_case { key.to_lowercase() } else { key };
                match Scalar::from_yaml(v) {
                    Some(s) => {
                        table.insert(key, s);
                    }
                    None => r.error_at(join(&tpath, &key), format!("must be a single value, found {}", kind(v))),
                }
            }
        }
        _ => r.error("table", "required: a mapping from source values to MCM values, e.g. `{ios: IOS, android: ANDROID}`"),
    }
    r.finish();
    Some(Transform::Lookup(Lookup {
        table,
        default,
        ignore_case,
    }))
}

impl Transform {
    /// Applies the step. Values borrowed from the message or the plan stay borrowed. `None`:
    /// the step found nothing in the value (a part that is not there), so the value is absent
    /// from here on, exactly as if the source had been missing.
    pub fn apply<'a>(&'a self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        Ok(Some(match self {
            Transform::Split(t) => return t.apply(v),
            Transform::Regex(t) => return t.apply(v),
            Transform::Replace(t) => return t.apply(v),
            Transform::StripPrefix(p) => return text::strip(v, p, true),
            Transform::StripSuffix(p) => return text::strip(v, p, false),
            Transform::Truncate(n) => return text::truncate(v, *n),
            Transform::Url(part) => return part.apply(v),
            Transform::Language => return language::apply(v),
            Transform::DateTime(f) => return f.apply(v),
            Transform::ToString => Val::Str(v.into_text()?),
            Transform::ToNumber => Val::Float(v.number()?),
            Transform::ToInteger => Val::Int(v.integer()?),
            Transform::Lower => map_text(v, |s| s.to_lowercase())?,
            Transform::Upper => map_text(v, |s| s.to_uppercase())?,
            Transform::Trim => match v {
                Val::Str(Cow::Borrowed(s)) => Val::Str(Cow::Borrowed(s.trim())),
                other => map_text(other, |s| s.trim().to_string())?,
            },
            Transform::Lookup(l) => l.apply(&v)?,
            Transform::Epoch(per_second) => {
                let ms = (v.number()? * 1000.0 / per_second).round();
                Val::Int(float_to_i64(ms).map_err(|mut e| {
                    e.reason = MapReason::NumberOutOfRange;
                    e
                })?)
            }
            Transform::Iso8601 => Val::Int(parse_iso8601(&v.text()?)?),
            Transform::Currency => {
                let text = v.text()?;
                let code = trim(&text);
                match known_currency(code) {
                    Some(c) => Val::Str(Cow::Borrowed(c)),
                    None => {
                        let code = code.to_ascii_uppercase();
                        return Err(MapError::new(
                            MapReason::UnknownCurrency,
                            format!("currency {code:?} is not in the MCM currency list"),
                        ));
                    }
                }
            }
            Transform::Sha256 { normalize } => {
                let text = v.text()?;
                let input = if *normalize {
                    Cow::Owned(text.trim().to_lowercase())
                } else {
                    text
                };
                Val::Str(Cow::Owned(hex::encode(Sha256::digest(input.as_bytes()))))
            }
            Transform::Multiply(k) => finite(v.number()? * k)?,
            Transform::Divide(d) => finite(v.number()? / d)?,
            Transform::Add(k) => finite(v.number()? + k)?,
            Transform::Round(places) => {
                let p = 10f64.powi(*places);
                finite((v.number()? * p).round() / p)?
            }
        }))
    }
}

impl Lookup {
    fn apply<'a>(&'a self, v: &Val<'a>) -> Result<Val<'a>, MapError> {
        let text = v.text()?;
        let key: Cow<'_, str> = if self.ignore_case {
            Cow::Owned(text.to_lowercase())
        } else {
            text
        };
        if let Some(s) = self.table.get(key.as_ref()) {
            return Ok(s.val());
        }
        match &self.default {
            LookupDefault::Value(s) => Ok(s.val()),
            LookupDefault::Keep => Ok(v.clone()),
            LookupDefault::Reject => Err(MapError::new(
                MapReason::LookupNoMatch,
                format!("{key:?} is not in the lookup table and the lookup has no default"),
            )),
        }
    }
}

/// The MCM list's own code for `code`, compared case-insensitively. The list is three-letter
/// upper-case ASCII, so that is the upper-cased code's exact match; and the list's own
/// `&'static str` needs no allocation.
pub(super) fn known_currency(code: &str) -> Option<&'static str> {
    let three: [u8; 3] = code.as_bytes().try_into().ok()?;
    let upper = three.map(|b| b.to_ascii_uppercase());
    CURRENCIES.iter().copied().find(|c| c.as_bytes() == upper)
}

fn map_text<'a>(v: Val<'a>, f: impl FnOnce(&str) -> String) -> Result<Val<'a>, MapError> {
    let out = f(&v.text()?);
    Ok(Val::Str(Cow::Owned(out)))
}

fn finite<'a>(f: f64) -> Result<Val<'a>, MapError> {
    if f.is_finite() {
        Ok(Val::Float(f))
    } else {
        Err(MapError::new(
            MapReason::NumberOutOfRange,
            "arithmetic result is not finite",
        ))
    }
}

/// Helper for tests: a value's text after the transforms `t` (YAML), `None` when a step made it
/// absent.
#[cfg(test)]
fn run_opt(t: &str, v: Val<'_>) -> Result<Option<String>, MapReason> {
    let y: Yaml = serde_yaml_ng::from_str(t).map_err(|_| MapReason::TypeMismatch)?;
    let mut errors = Vec::new();
    let ts = compile(&y, "t", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut cur = Some(v);
    for step in &ts {
        cur = match cur {
            Some(c) => step.apply(c).map_err(|e| e.reason)?,
            None => None,
        };
    }
    cur.map(Val::into_string).transpose().map_err(|e| e.reason)
}

/// [`run_opt`] for a value that must stay present (a test failure otherwise).
#[cfg(test)]
fn run(t: &str, v: Val<'_>) -> Result<String, MapReason> {
    run_opt(t, v).map(|o| o.unwrap_or_else(|| panic!("{t}: the value became absent")))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn s(x: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(x))
    }

    /// The start-up errors of the transforms `t` (YAML) at `f.transform`, as printed.
    pub(super) fn compile_errors(t: &str) -> Vec<String> {
        let y: Yaml = serde_yaml_ng::from_str(t).expect("yaml");
        let mut errors = Vec::new();
        compile(&y, "f.transform", &mut errors);
        errors.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn text_transforms() {
        assert_eq!(run("lower", s(" AbC ")), Ok(" abc ".into()));
        assert_eq!(run("upper", s("abc")), Ok("ABC".into()));
        assert_eq!(run("trim", s("  x ")), Ok("x".into()));
        assert_eq!(run("[trim, upper]", s(" ios ")), Ok("IOS".into()));
        assert_eq!(run("string", Val::Int(12)), Ok("12".into()));
        assert_eq!(run("number", s("1.5")), Ok("1.5".into()));
        assert_eq!(run("integer", s("7")), Ok("7".into()));
        assert_eq!(run("integer", s("7.5")), Err(MapReason::InvalidNumber));
    }

    #[test]
    fn lookup_with_and_without_default() {
        let t = "lookup: {table: {iPadOS: IOS, Android: ANDROID}, ignore_case: true}";
        assert_eq!(run(t, s("ipados")), Ok("IOS".into()));
        assert_eq!(run(t, s("Tizen")), Err(MapReason::LookupNoMatch));
        let t = "lookup: {table: {web: SITE, 1: APP}, default: SITE}";
        assert_eq!(run(t, Val::Int(1)), Ok("APP".into()));
        assert_eq!(run(t, s("kiosk")), Ok("SITE".into()));
    }

    #[test]
    fn a_lookup_with_default_keep_passes_unknown_values_through() {
        let t = "lookup: {table: {iPadOS: IOS}, default: keep}";
        assert_eq!(run(t, s("iPadOS")), Ok("IOS".into()));
        assert_eq!(run(t, s("ANDROID")), Ok("ANDROID".into()));
    }

    #[test]
    fn a_null_lookup_default_is_refused_at_its_path() {
        let mut errors = Vec::new();
        let v: Yaml = serde_yaml_ng::from_str("lookup: {table: {a: B}, default: null}")
            .unwrap_or_else(|e| panic!("yaml: {e}"));
        compile(&v, "f.transform", &mut errors);
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{texts:?}");
        assert_eq!(errors[0].path, "f.transform.lookup.default");
        assert!(texts[0].contains("default: keep"), "{texts:?}");
    }

    #[test]
    fn timestamps_become_unix_millis() {
        assert_eq!(
            run("epoch_seconds", Val::Int(1_700_000_000)),
            Ok("1700000000000".into())
        );
        assert_eq!(
            run("epoch_seconds", s("1700000000.25")),
            Ok("1700000000250".into())
        );
        assert_eq!(
            run("epoch_millis", Val::Int(1_700_000_000_123)),
            Ok("1700000000123".into())
        );
        assert_eq!(
            run("epoch_micros", Val::Int(1_700_000_000_123_456)),
            Ok("1700000000123".into())
        );
        assert_eq!(
            run("iso8601", s("2023-11-14T22:13:20.5Z")),
            Ok("1700000000500".into())
        );
        assert_eq!(
            run("iso8601", s("2023-11-15T00:13:20+02:00")),
            Ok("1700000000000".into())
        );
        assert_eq!(
            run("iso8601", s("2023-11-14 22:13:20")),
            Ok("1700000000000".into())
        );
        assert_eq!(
            run("iso8601", s("yesterday")),
            Err(MapReason::InvalidTimestamp)
        );
        assert_eq!(
            run("epoch_seconds", Val::Float(1e300)),
            Err(MapReason::NumberOutOfRange)
        );
        assert_eq!(
            run("epoch_seconds", Val::Bool(true)),
            Err(MapReason::TypeMismatch)
        );
    }

    #[test]
    fn currency_lookup_is_a_case_insensitive_match_on_the_list() {
        let mut codes: Vec<String> = CURRENCIES.iter().map(|c| c.to_string()).collect();
        codes.extend(CURRENCIES.iter().map(|c| c.to_lowercase()));
        codes.extend(["UsD", "US", "USDD", "", "ÜSD", "U\u{0}D", "XXX", "usd "].map(String::from));
        for code in &codes {
            let want = CURRENCIES
                .iter()
                .copied()
                .find(|c| c.eq_ignore_ascii_case(code));
            assert_eq!(known_currency(code), want, "{code:?}");
        }
    }

    #[test]
    fn currency_is_normalised_and_checked() {
        assert_eq!(run("currency", s(" usd ")), Ok("USD".into()));
        assert_eq!(
            run("currency", s("usdollar")),
            Err(MapReason::UnknownCurrency)
        );
    }

    #[test]
    fn sha256_optionally_normalises() {
        let plain = run("sha256", s("a@b.com")).expect("hash");
        assert_eq!(
            plain,
            "fb98d44ad7501a959f3f4f4a3f004fe2d9e581ea6207e218c4b02c08a4d75adf"
        );
        assert_eq!(run("sha256: {normalize: true}", s("  A@B.com ")), Ok(plain));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(run("divide: 100", Val::Int(1999)), Ok("19.99".into()));
        assert_eq!(run("[{multiply: 3}, {add: 0.5}]", s("2")), Ok("6.5".into()));
        assert_eq!(
            run("[{multiply: 0.1}, {round: 2}]", Val::Int(3)),
            Ok("0.3".into())
        );
        assert_eq!(
            run("multiply: 10", Val::Float(f64::MAX)),
            Err(MapReason::NumberOutOfRange)
        );
    }

    #[test]
    fn bad_transforms_fail_at_start_up_with_paths() {
        assert_eq!(
            compile_errors("lowr"),
            ["f.transform: unknown transform `lowr` (did you mean `lower`?)"]
        );
        assert_eq!(
            compile_errors("[trim, {divide: 0}]"),
            ["f.transform[1].divide: `divide: 0` would divide by zero"]
        );
        assert_eq!(
            compile_errors("multiply: x"),
            ["f.transform.multiply: `multiply` needs a number, e.g. `multiply: 100`"]
        );
        assert_eq!(compile_errors("lookup: {tabel: {}}").len(), 2);
        assert_eq!(
            compile_errors("sha256: {normalise: true}"),
            ["f.transform.sha256.normalise: unknown key (did you mean `normalize`?)"]
        );
        assert_eq!(
            compile_errors("{upper: 1}"),
            ["f.transform.upper: `upper` takes no argument"]
        );
    }
}
