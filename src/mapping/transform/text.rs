//! Text steps that cut a value apart: `split`, `strip_prefix`, `strip_suffix` and `truncate`
//! (and, in [`super::pattern`], `regex` and `replace`).
//!
//! Each reads the value's text, as `lower` and `trim` do: a number or a boolean is cut as its
//! text (`20261124` splits like `"20261124"`), an array or object is a `type_mismatch`. A part
//! that is not there — a split index past the end — makes the value absent, not an error, so
//! the source's `default:` applies. The result is a slice of the input, so text borrowed from
//! the message stays borrowed. Arguments are checked at start-up; nothing here can fail at run
//! time except on an array or object.

use super::Transform;
use crate::config::decode::{kind, ConfigError, MapReader};
use crate::mapping::error::MapError;
use crate::mapping::value::Val;
use serde_yaml_ng::Value as Yaml;
use std::borrow::Cow;

/// `{split: {on: "-", index: 0}}`: the `index`-th part of the text split at every `on`
/// (negative from the end), exactly as `str::split` cuts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub on: String,
    pub index: i64,
}

impl Split {
    pub(super) fn apply<'a>(&self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        slice_text(v, |s| split_part(s, &self.on, self.index))
    }
}

/// `{strip_prefix: …}` / `{strip_suffix: …}`: the text without it when it is there, the text
/// unchanged otherwise.
pub(super) fn strip<'a>(
    v: Val<'a>,
    affix: &str,
    prefix: bool,
) -> Result<Option<Val<'a>>, MapError> {
    slice_text(v, |s| {
        let stripped = if prefix {
            s.strip_prefix(affix)
        } else {
            s.strip_suffix(affix)
        };
        Some(stripped.unwrap_or(s))
    })
}

/// `{truncate: n}`: at most `n` bytes of UTF-8, cut at a character boundary (never inside a
/// character).
///
/// Bytes, not characters: the reference gives MCM's limits as "≤128" and once as "128-char",
/// but the API is a Go service, where a string's `len` is its UTF-8 bytes, and our own
/// validation (`MAX_ID_LEN`, `field_too_long`) counts bytes as the stricter reading. Counting
/// the same here means `truncate: 128` always passes that check; for ASCII text (ids, paths)
/// the two counts are the same.
pub(super) fn truncate(v: Val<'_>, max_bytes: usize) -> Result<Option<Val<'_>>, MapError> {
    slice_text(v, |s| Some(truncate_str(s, max_bytes)))
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character boundary.
pub(super) fn truncate_str(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    // A UTF-8 character is at most 4 bytes, so at most 3 steps back (and 0 is a boundary).
    // (`str::floor_char_boundary` does this, but is newer than our rust-version.)
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The `index`-th part of `s` split at `on`, counting from the end when negative; `None` past
/// either end. Negative indices count the parts of the same left-to-right split (`rsplit`
/// cuts overlapping separators differently: `"aaa"` at `"aa"`).
pub(super) fn split_part<'s>(s: &'s str, on: &str, index: i64) -> Option<&'s str> {
    let i = if index >= 0 {
        usize::try_from(index).ok()?
    } else {
        let parts = s.matches(on).count() + 1;
        parts.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
    };
    s.split(on).nth(i)
}

/// Applies `pick`, which chooses a slice of the text (or nothing). Text borrowed from the
/// message stays borrowed; other values are cut from their text form.
pub(super) fn slice_text<'a>(
    v: Val<'a>,
    pick: impl for<'s> FnOnce(&'s str) -> Option<&'s str>,
) -> Result<Option<Val<'a>>, MapError> {
    Ok(match v {
        Val::Str(Cow::Borrowed(s)) => pick(s).map(|p| Val::Str(Cow::Borrowed(p))),
        other => {
            let text = other.text()?;
            pick(&text).map(|p| Val::Str(Cow::Owned(p.to_string())))
        }
    })
}

// ---- start-up ----

pub(super) fn compile_split(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    const HELP: &str = "e.g. `{split: {on: \"-\", index: 0}}`";
    let Some(arg) = arg.filter(|a| a.is_mapping()) else {
        errors.push(ConfigError::new(
            path,
            format!("`split` needs `on` (the separator) and `index` (which part), {HELP}"),
        ));
        return None;
    };
    let mut r = MapReader::new(arg, path, errors)?;
    let on = match r.raw("on") {
        Some(Yaml::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Yaml::String(_)) => {
            r.error(
                "on",
                "must not be empty (an empty separator would split between every character)",
            );
            None
        }
        Some(other) => {
            r.error(
                "on",
                format!(
                    "the separator is text, found {}; quote it, {HELP}",
                    kind(other)
                ),
            );
            None
        }
        None => {
            r.error("on", format!("required (the separator), {HELP}"));
            None
        }
    };
    let index = match r.raw("index") {
        None => Some(0),
        Some(v) => match v.as_i64() {
            Some(i) => Some(i),
            None => {
                r.error(
                    "index",
                    format!(
                        "must be a whole number (0 = the first part, -1 = the last), found {}",
                        kind(v)
                    ),
                );
                None
            }
        },
    };
    r.finish();
    Some(Transform::Split(Split {
        on: on?,
        index: index?,
    }))
}

/// `strip_prefix` / `strip_suffix`: the text to remove, non-empty.
pub(super) fn compile_affix(
    name: &str,
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match arg {
        Some(Yaml::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => {
            let example = if name == "strip_prefix" {
                "CATEGORY_"
            } else {
                ".html"
            };
            errors.push(ConfigError::new(
                path,
                format!("`{name}` needs the text to remove, e.g. `{name}: \"{example}\"`"),
            ));
            None
        }
    }
}

/// `truncate`: a byte count of at least 1.
pub(super) fn compile_truncate(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    match arg
        .and_then(Yaml::as_u64)
        .and_then(|n| usize::try_from(n).ok())
    {
        Some(n) if n >= 1 => Some(Transform::Truncate(n)),
        _ => {
            errors.push(ConfigError::new(
                path,
                "`truncate` needs a length in bytes of at least 1, e.g. `truncate: 128` (MCM's limit for ids)",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_errors, s};
    use super::super::{run, run_opt};
    use crate::mapping::error::MapReason;
    use crate::mapping::value::Val;
    use proptest::prelude::*;
    use std::borrow::Cow;

    #[test]
    fn split_takes_one_part_counting_from_either_end() {
        let t = "split: {on: \"-\", index: 0}";
        assert_eq!(run(t, s("en-US")), Ok("en".into()));
        assert_eq!(
            run("split: {on: \"-\", index: 1}", s("en-US")),
            Ok("US".into())
        );
        assert_eq!(
            run("split: {on: \"-\", index: -1}", s("a-b-c")),
            Ok("c".into())
        );
        assert_eq!(
            run("split: {on: \"-\", index: -3}", s("a-b-c")),
            Ok("a".into())
        );
        assert_eq!(run("split: {on: \"-\"}", s("a-b")), Ok("a".into()));
        assert_eq!(
            run("split: {on: \"::\", index: 1}", s("a::b::c")),
            Ok("b".into())
        );
        // Without the separator the text is one part.
        assert_eq!(run(t, s("plain")), Ok("plain".into()));
    }

    #[test]
    fn split_past_either_end_is_absent_and_an_empty_part_is_blank() {
        assert_eq!(run_opt("split: {on: \"-\", index: 2}", s("a-b")), Ok(None));
        assert_eq!(run_opt("split: {on: \"-\", index: -3}", s("a-b")), Ok(None));
        assert_eq!(
            run_opt("split: {on: \"-\", index: 9223372036854775807}", s("a")),
            Ok(None)
        );
        assert_eq!(
            run_opt("split: {on: \"-\", index: -9223372036854775808}", s("a")),
            Ok(None)
        );
        // An empty part is present but blank: the source treats it as absent (default applies).
        assert_eq!(
            run_opt("split: {on: \"/\", index: 0}", s("/p/1")),
            Ok(Some(String::new()))
        );
    }

    #[test]
    fn text_steps_cut_numbers_and_booleans_as_their_text() {
        assert_eq!(
            run("split: {on: \"0\", index: 0}", Val::Int(20261124)),
            Ok("2".into())
        );
        assert_eq!(run("{truncate: 4}", Val::Int(20261124)), Ok("2026".into()));
        assert_eq!(
            run("{strip_suffix: \".0\"}", Val::Float(1.5)),
            Ok("1.5".into())
        );
        assert_eq!(run("{strip_prefix: t}", Val::Bool(true)), Ok("rue".into()));
        assert_eq!(
            run("{regex: \"\\\\d{4}\"}", Val::Int(1234567)),
            Ok("1234".into())
        );
        assert_eq!(
            run("{replace: {pattern: \"1\", with: x}}", Val::Int(121)),
            Ok("x2x".into())
        );
        let arr = crate::mapping::doc::Node::Arr { start: 0, len: 0 };
        for t in [
            "split: {on: \"-\"}",
            "truncate: 3",
            "strip_prefix: a",
            "regex: a",
            "replace: {pattern: a, with: b}",
        ] {
            assert_eq!(
                run_opt(t, Val::Node(&arr)),
                Err(MapReason::TypeMismatch),
                "{t}"
            );
        }
    }

    #[test]
    fn cut_text_stays_borrowed_from_the_message() {
        let steps = [
            "split: {on: \"-\", index: 1}",
            "regex: \"-(.*)\"",
            "replace: {pattern: \"zzz\", with: y}",
            "strip_prefix: \"en-\"",
            "truncate: 3",
        ];
        for t in steps {
            let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(t).expect("yaml");
            let mut errors = Vec::new();
            let compiled = super::super::compile(&y, "t", &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            let out = compiled[0].apply(s("en-US")).expect("applies");
            assert!(
                matches!(out, Some(Val::Str(Cow::Borrowed(_)))),
                "{t}: {out:?}"
            );
        }
    }

    #[test]
    fn strip_removes_the_affix_only_when_present() {
        assert_eq!(
            run("strip_prefix: CATEGORY_", s("CATEGORY_shoes")),
            Ok("shoes".into())
        );
        assert_eq!(
            run("strip_prefix: CATEGORY_", s("shoes")),
            Ok("shoes".into())
        );
        assert_eq!(
            run("strip_prefix: CATEGORY_", s("category_shoes")),
            Ok("category_shoes".into())
        );
        assert_eq!(
            run("strip_suffix: .html", s("/p/1.html")),
            Ok("/p/1".into())
        );
        assert_eq!(
            run("strip_suffix: .html", s("/p/1.html.html")),
            Ok("/p/1.html".into())
        );
        assert_eq!(run("strip_suffix: .html", s("/p/1")), Ok("/p/1".into()));
    }

    #[test]
    fn truncate_counts_bytes_and_never_splits_a_character() {
        assert_eq!(run("truncate: 3", s("abcdef")), Ok("abc".into()));
        assert_eq!(run("truncate: 10", s("abc")), Ok("abc".into()));
        // "é" is 2 bytes: 3 bytes hold "a" + "é", 2 bytes only "a".
        assert_eq!(run("truncate: 3", s("aéb")), Ok("aé".into()));
        assert_eq!(run("truncate: 2", s("aéb")), Ok("a".into()));
        // A 4-byte character that does not fit at all leaves blank text.
        assert_eq!(run("truncate: 3", s("😀")), Ok(String::new()));
        let long = "x".repeat(200);
        assert_eq!(run("truncate: 128", s(&long)).map(|t| t.len()), Ok(128));
        assert_eq!(
            run("truncate: 128", s(&"é".repeat(100))).map(|t| t.len()),
            Ok(128)
        );
    }

    #[test]
    fn bad_text_steps_fail_at_start_up_with_paths() {
        let cases: [(&str, &[&str]); 7] = [
            ("split", &["f.transform.split: `split` needs `on` (the separator) and `index` (which part), e.g. `{split: {on: \"-\", index: 0}}`"]),
            ("split: \"-\"", &["f.transform.split: `split` needs `on` (the separator) and `index` (which part), e.g. `{split: {on: \"-\", index: 0}}`"]),
            ("split: {index: 1}", &["f.transform.split.on: required (the separator), e.g. `{split: {on: \"-\", index: 0}}`"]),
            ("split: {on: \"\"}", &["f.transform.split.on: must not be empty (an empty separator would split between every character)"]),
            ("split: {on: 1}", &["f.transform.split.on: the separator is text, found a number; quote it, e.g. `{split: {on: \"-\", index: 0}}`"]),
            ("split: {on: \"-\", index: 1.5}", &["f.transform.split.index: must be a whole number (0 = the first part, -1 = the last), found a number"]),
            ("split: {on: \"-\", idx: 1}", &["f.transform.split.idx: unknown key (did you mean `index`?)"]),
        ];
        for (t, want) in cases {
            assert_eq!(compile_errors(t), want, "{t}");
        }
        for t in ["strip_prefix", "strip_prefix: \"\"", "{strip_prefix: [a]}"] {
            assert_eq!(
                compile_errors(t),
                ["f.transform.strip_prefix: `strip_prefix` needs the text to remove, e.g. `strip_prefix: \"CATEGORY_\"`"],
                "{t}"
            );
        }
        assert_eq!(
            compile_errors("strip_suffix: 5"),
            ["f.transform.strip_suffix: `strip_suffix` needs the text to remove, e.g. `strip_suffix: \".html\"`"]
        );
        for t in [
            "truncate",
            "truncate: 0",
            "truncate: -1",
            "truncate: 1.5",
            "truncate: ten",
        ] {
            assert_eq!(
                compile_errors(t),
                ["f.transform.truncate: `truncate` needs a length in bytes of at least 1, e.g. `truncate: 128` (MCM's limit for ids)"],
                "{t}"
            );
        }
        assert_eq!(
            compile_errors("[trim, {truncat: 3}]"),
            ["f.transform[1]: unknown transform `truncat` (did you mean `truncate`?)"]
        );
    }

    proptest! {
        #[test]
        fn split_agrees_with_str_split(text in "[a-c-]{0,12}", on in "[a-c-]{1,3}", index in -6i64..6) {
            let got = super::split_part(&text, &on, index);
            let parts: Vec<&str> = text.split(on.as_str()).collect();
            let want = if index >= 0 {
                parts.get(index as usize).copied()
            } else {
                parts.len().checked_sub(index.unsigned_abs() as usize).and_then(|i| parts.get(i).copied())
            };
            prop_assert_eq!(got, want);
        }

        #[test]
        fn truncate_gives_the_longest_fitting_prefix(text in any::<String>(), max in 1usize..40) {
            let out = super::truncate_str(&text, max);
            prop_assert!(out.len() <= max);
            prop_assert!(out.chars().count() <= max);
            prop_assert!(text.starts_with(out));
            // Longest: the next character (if any) would not have fitted.
            if let Some(c) = text[out.len()..].chars().next() {
                prop_assert!(out.len() + c.len_utf8() > max);
            }
        }

        #[test]
        fn text_steps_never_panic_on_any_text(text in any::<String>()) {
            for t in [
                "split: {on: \"-\", index: -2}",
                "strip_prefix: é",
                "strip_suffix: \"\\u00e9\"",
                "truncate: 5",
            ] {
                let _ = run_opt(t, Val::Str(Cow::Borrowed(&text)));
                let _ = run_opt(t, Val::Str(Cow::Owned(text.clone())));
            }
        }
    }
}
