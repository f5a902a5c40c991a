//! Intermediate values during evaluation and their conversions to MCM field types.
//!
//! A [`Val`] borrows from the message or the plan wherever it can; only transforms that create
//! new text (lower-casing, hashing, templates) allocate. Conversions are lenient where senders
//! commonly differ (numbers as strings, `"3"` for a quantity) and strict where guessing would
//! corrupt data (a fractional quantity, an object where text belongs): those are typed errors.

use super::doc::Node;
use super::error::{MapError, MapReason};
use serde_yaml_ng::Value as Yaml;
use std::borrow::Cow;

/// A scalar constant from the configuration (`const:`, `default:`, lookup values, `equals:`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    /// Reads a YAML scalar; lists, mappings and null are not constants.
    pub fn from_yaml(v: &Yaml) -> Option<Scalar> {
        match v {
            Yaml::String(s) => Some(Scalar::Str(s.clone())),
            Yaml::Bool(b) => Some(Scalar::Bool(*b)),
            Yaml::Number(n) => n
                .as_i64()
                .map(Scalar::Int)
                .or_else(|| n.as_f64().map(Scalar::Float)),
            _ => None,
        }
    }

    pub fn val(&self) -> Val<'_> {
        match self {
            Scalar::Str(s) => Val::Str(Cow::Borrowed(s)),
            Scalar::Int(i) => Val::Int(*i),
            Scalar::Float(f) => Val::Float(*f),
            Scalar::Bool(b) => Val::Bool(*b),
        }
    }
}

/// A value on its way from a source to an MCM field.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An array or object from the message (only `each:`/`sum:` can use these as such).
    Node(&'a Node<'a>),
}

impl<'a> Val<'a> {
    /// A message node as a value; `null` is absent.
    pub fn from_node(n: &'a Node<'a>) -> Option<Val<'a>> {
        Some(match n {
            Node::Null => return None,
            Node::Bool(b) => Val::Bool(*b),
            Node::Int(i) => Val::Int(*i),
            Node::Float(f) => Val::Float(*f),
            Node::Str(s) => Val::Str(Cow::Borrowed(s.as_ref())),
            Node::Arr { .. } | Node::Obj { .. } | Node::Proj { .. } => Val::Node(n),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) | Val::Float(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::Node(n) => n.kind(),
        }
    }

    /// Empty means "nothing to send": an empty or all-blank string.
    pub fn is_empty(&self) -> bool {
        matches!(self, Val::Str(s) if is_blank(s))
    }

    /// Text form of a scalar; arrays and objects are a type mismatch.
    pub fn text(&self) -> Result<Cow<'_, str>, MapError> {
        Ok(match self {
            Val::Str(s) => Cow::Borrowed(s.as_ref()),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Float(f) => Cow::Owned(float_text(*f)),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Node(n) => return Err(mismatch("text", n.kind())),
        })
    }

    /// Owned text.
    pub fn into_string(self) -> Result<String, MapError> {
        self.into_text().map(Cow::into_owned)
    }

    /// Text for an MCM string field: still borrowed from the message or the plan where it was.
    pub fn into_text(self) -> Result<Cow<'a, str>, MapError> {
        match self {
            Val::Str(s) => Ok(s),
            Val::Bool(b) => Ok(Cow::Borrowed(if b { "true" } else { "false" })),
            other => other.text().map(|t| Cow::Owned(t.into_owned())),
        }
    }

    /// A finite number; numeric strings are accepted (many producers quote amounts).
    pub fn number(&self) -> Result<f64, MapError> {
        let f = match self {
            Val::Int(i) => *i as f64,
            Val::Float(f) => *f,
            Val::Str(s) => s.trim().parse::<f64>().map_err(|_| {
                MapError::new(MapReason::InvalidNumber, format!("{s:?} is not a number"))
            })?,
            other => return Err(mismatch("a number", other.kind())),
        };
        if f.is_finite() {
            Ok(f)
        } else {
            Err(MapError::new(
                MapReason::NumberOutOfRange,
                "the number is not finite",
            ))
        }
    }

    /// A whole number: integers, integral floats, and strings holding either.
    pub fn integer(&self) -> Result<i64, MapError> {
        match self {
            Val::Int(i) => Ok(*i),
            Val::Str(s) if s.trim().parse::<i64>().is_ok() => s
                .trim()
                .parse::<i64>()
                .map_err(|_| mismatch("an integer", "a string")),
            other => float_to_i64(other.number()?),
        }
    }
}

/// True for an empty or all-whitespace string (`str::trim` semantics: Unicode whitespace). Most
/// values start with a visible ASCII character, which settles it without decoding any `char`.
#[inline]
pub fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        // ASCII whitespace for `char::is_whitespace` is exactly 0x09..=0x0D and the space.
        Some(&b) if b.is_ascii() && !matches!(b, 0x09..=0x0D | b' ') => false,
        Some(_) => s.trim().is_empty(),
    }
}

/// `str::trim`, answered without decoding a `char` when the text starts and ends with a visible
/// ASCII character (nearly all values: codes, timestamps, enum names).
#[inline]
pub fn trim(s: &str) -> &str {
    let visible =
        |b: Option<&u8>| matches!(b, Some(&b) if b.is_ascii() && !matches!(b, 0x09..=0x0D | b' '));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// Converts a float to `i64` only when it is whole and in range (no silent truncation).
pub fn float_to_i64(f: f64) -> Result<i64, MapError> {
    if f.fract() != 0.0 {
        return Err(MapError::new(
            MapReason::InvalidNumber,
            format!("{f} is not a whole number"),
        ));
    }
    // 2^63 is exactly representable; anything at or above it does not fit.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_POW_63..TWO_POW_63).contains(&f) {
        return Err(MapError::new(
            MapReason::NumberOutOfRange,
            format!("{f} does not fit a 64-bit integer"),
        ));
    }
    Ok(f as i64)
}

/// `1999.0` → `"1999"`, `19.99` → `"19.99"`: ids that arrive as floats should not grow a `.0`.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

pub fn mismatch(expected: &str, found: &str) -> MapError {
    MapError::new(
        MapReason::TypeMismatch,
        format!("expected {expected}, found {found}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_lenient_only_where_safe() {
        assert_eq!(Val::Str("42".into()).integer(), Ok(42));
        assert_eq!(Val::Str(" 4.0 ".into()).integer(), Ok(4));
        assert_eq!(
            Val::Float(2.5).integer().map_err(|e| e.reason),
            Err(MapReason::InvalidNumber)
        );
        assert_eq!(
            Val::Float(1e300).integer().map_err(|e| e.reason),
            Err(MapReason::NumberOutOfRange)
        );
        assert_eq!(
            Val::Str("abc".into()).number().map_err(|e| e.reason),
            Err(MapReason::InvalidNumber)
        );
        assert_eq!(
            Val::Str("inf".into()).number().map_err(|e| e.reason),
            Err(MapReason::NumberOutOfRange)
        );
        assert_eq!(
            Val::Bool(true).number().map_err(|e| e.reason),
            Err(MapReason::TypeMismatch)
        );
        assert_eq!(Val::Float(1999.0).into_string().as_deref(), Ok("1999"));
        assert_eq!(Val::Float(19.99).into_string().as_deref(), Ok("19.99"));
        let obj = Node::Obj { start: 0, len: 0 };
        assert_eq!(
            Val::Node(&obj).into_string().map_err(|e| e.reason),
            Err(MapReason::TypeMismatch)
        );
        assert!(Val::Str(" ".into()).is_empty());
        for s in ["", " ", "\u{b}", "\u{a0}\u{3000}", "\t\r\n", "\u{85}"] {
            assert!(is_blank(s), "{s:?}");
        }
        for s in ["a", " a", "\u{a0}x", "é", "\u{0}"] {
            assert!(!is_blank(s), "{s:?}");
        }
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['\u{85}', '\u{a0}', '\u{2028}'])
        {
            for s in [
                c.to_string(),
                format!("{c}x"),
                format!("{c} "),
                format!("x{c}"),
                format!("x{c}x"),
                format!("{c}é{c}"),
            ] {
                assert_eq!(is_blank(&s), s.trim().is_empty(), "{s:?}");
                assert_eq!(trim(&s), s.trim(), "{s:?}");
            }
        }
    }
}
