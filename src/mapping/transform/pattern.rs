//! Steps driven by a regular expression: `regex` (the text of one group of the first match)
//! and `replace` (every match replaced).
//!
//! Patterns use the `regex` crate's syntax (`(?i)` for case-insensitive, `(?P<name>…)` for a
//! named group) and are compiled at start-up, where a bad pattern, a `group:` the pattern does
//! not have, or a `$1` / `${name}` in `with` that names no group is an error at its YAML path.
//! They read the value's text as the other text steps do (a number as its text, an array or
//! object a `type_mismatch`). A `regex` that does not match makes the value absent, so the
//! source's `default:` applies; its result, like `replace`'s when nothing matched, is a slice
//! of the input, so text borrowed from the message stays borrowed.

use super::text::slice_text;
use super::Transform;
use crate::config::decode::{closest, kind, ConfigError, MapReader};
use crate::mapping::error::MapError;
use crate::mapping::value::Val;
use regex::Regex;
use serde_yaml_ng::Value as Yaml;
use std::borrow::Cow;

/// A compiled regex. Compared by its source text, which is what a plan's equality means (the
/// compiled automaton has no `PartialEq`).
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// `{regex: {pattern: …, group: …}}`: the text of one group of the first match. Named groups
/// are resolved to their number at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Extract {
    pub pattern: Pattern,
    pub group: usize,
}

/// `{replace: {pattern: …, with: …}}`: every match replaced, `$1` / `${name}` expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Replace {
    pub pattern: Pattern,
    pub with: String,
}

impl Extract {
    pub(super) fn apply<'a>(&self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        let re = &self.pattern.0;
        slice_text(v, |s| {
            if self.group == 0 {
                // The whole match needs no capture positions (the faster search).
                re.find(s).map(|m| m.as_str())
            } else {
                // A group that took no part in the match (`(a)?b` on "b") is absent too.
                re.captures(s)?.get(self.group).map(|m| m.as_str())
            }
        })
    }
}

impl Replace {
    pub(super) fn apply<'a>(&self, v: Val<'a>) -> Result<Option<Val<'a>>, MapError> {
        let re = &self.pattern.0;
        let with = self.with.as_str();
        Ok(Some(Val::Str(match v {
            // `replace_all` borrows its input back when nothing matched.
            Val::Str(Cow::Borrowed(s)) => re.replace_all(s, with),
            other => Cow::Owned(re.replace_all(&other.text()?, with).into_owned()),
        })))
    }
}

// ---- start-up ----

/// `regex`: a pattern alone, or `{pattern, group}`.
pub(super) fn compile_extract(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    const HELP: &str = "e.g. `{regex: {pattern: \"PRODUCT_DETAIL_PAGE:(\\\\d+)\", group: 1}}`";
    let (pattern, group) = match arg {
        Some(Yaml::String(p)) => (compile_pattern(p, path, errors), None),
        Some(m @ Yaml::Mapping(_)) => {
            let mut r = MapReader::new(m, path, errors)?;
            let pattern = match r.raw("pattern") {
                Some(Yaml::String(p)) => {
                    let at = r.child_path("pattern");
                    compile_pattern(p, &at, r.errors())
                }
                Some(other) => {
                    let msg = format!("a regular expression is text, found {}", kind(other));
                    r.error("pattern", msg);
                    None
                }
                None => {
                    r.error("pattern", format!("required, {HELP}"));
                    None
                }
            };
            let group = r.raw("group").map(|g| (g, r.child_path("group")));
            r.finish();
            (pattern, group)
        }
        _ => {
            errors.push(ConfigError::new(
                path,
                format!("`regex` needs a pattern, {HELP}"),
            ));
            return None;
        }
    };
    let pattern = pattern?;
    let group = match group {
        // The first group when there is one (what a pattern with a group is written for),
        // else the whole match.
        None => usize::from(pattern.captures_len() > 1),
        Some((g, at)) => resolve_group(&pattern, g, &at, errors)?,
    };
    Some(Transform::Regex(Extract {
        pattern: Pattern(pattern),
        group,
    }))
}

/// A `group:` as a group number: a number below the pattern's group count, or one of its names.
fn resolve_group(re: &Regex, g: &Yaml, at: &str, errors: &mut Vec<ConfigError>) -> Option<usize> {
    let groups = re.captures_len() - 1;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let found = match g {
        Yaml::Number(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(i) if i <= groups => return Some(i),
            _ => format!("group {n}"),
        },
        Yaml::String(name) => match re.capture_names().position(|n| n == Some(name.as_str())) {
            Some(i) => return Some(i),
            None => {
                let hint = closest(name, &names)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                format!("no group named `{name}`{hint}")
            }
        },
        other => format!("{} is not a group", kind(other)),
    };
    errors.push(ConfigError::new(
        at,
        format!("{found}: {}", describe_groups(re)),
    ));
    None
}

/// `replace`: `{pattern, with}`, both required (`with: ""` deletes the matches).
pub(super) fn compile_replace(
    arg: Option<&Yaml>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Transform> {
    const HELP: &str = "e.g. `{replace: {pattern: \"\\\\?.*$\", with: \"\"}}`";
    let Some(arg) = arg.filter(|a| a.is_mapping()) else {
        errors.push(ConfigError::new(
            path,
            format!("`replace` needs `pattern` and `with`, {HELP}"),
        ));
        return None;
    };
    let mut r = MapReader::new(arg, path, errors)?;
    let pattern = match r.raw("pattern") {
        Some(Yaml::String(p)) => {
            let at = r.child_path("pattern");
            compile_pattern(p, &at, r.errors())
        }
        Some(other) => {
            r.error(
                "pattern",
                format!("a regular expression is text, found {}", kind(other)),
            );
            None
        }
        None => {
            r.error("pattern", format!("required, {HELP}"));
            None
        }
    };
    // `with: ""` (delete) is the common case, and `raw` reads an empty value as absent: look at
    // the key itself.
    let with = match r.raw("with") {
        Some(Yaml::String(w)) => Some(w.clone()),
        Some(other) => {
            r.error(
                "with",
                format!("the replacement is text, found {}; quote it", kind(other)),
            );
            None
        }
        None if r.is_null("with") => {
            r.error(
                "with",
                "the replacement is text; write `with: \"\"` to delete the matches",
            );
            None
        }
        None => {
            r.error(
                "with",
                format!("required (the replacement; `\"\"` deletes), {HELP}"),
            );
            None
        }
    };
    if let (Some(re), Some(w)) = (&pattern, &with) {
        if let Err(msg) = check_replacement(re, w) {
            r.error("with", msg);
        }
    }
    r.finish();
    Some(Transform::Replace(Replace {
        pattern: Pattern(pattern?),
        with: with?,
    }))
}

/// Checks every `$…` reference in a replacement against the pattern's groups. The regex crate
/// expands a reference to a group that does not exist to nothing, silently; the classic slip is
/// `$1a`, which names a group `1a` (write `${1}a`). Mirrors its reading of references: `$$` is
/// a `$`, `${…}` takes anything up to `}`, `$` + letters, digits and `_` takes the longest run;
/// all digits is a number, anything else a name; a `$` that starts no reference stays a `$`.
fn check_replacement(re: &Regex, with: &str) -> Result<(), String> {
    let groups = re.captures_len() - 1;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let mut rest = with;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        }
        let (name, written, after) = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &rest[..end + 2], &braced[end + 1..]),
                None => continue,
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[..end], &rest[end..])
        };
        rest = after;
        if name.is_empty() && !written.starts_with('{') {
            continue; // a lone `$`: kept as is
        }
        let ok = match name.parse::<usize>() {
            Ok(n) => n <= groups,
            Err(_) => names.contains(&name),
        };
        if !ok {
            let digits = name.bytes().take_while(u8::is_ascii_digit).count();
            let hint = if digits > 0 && digits < name.len() && !written.starts_with('{') {
                format!(
                    // `$${`, not `${`: the config file's `${VAR}` interpolation runs first.
                    " (for group {} followed by `{}`, write `$${{{}}}{}`: in a config file `${{…}}` alone is an environment variable)",
                    &name[..digits],
                    &name[digits..],
                    &name[..digits],
                    &name[digits..]
                )
            } else {
                String::new()
            };
            return Err(format!(
                "`${written}` refers to a group the pattern does not have: {}{hint}; `$$` is a literal `$`",
                describe_groups(re)
            ));
        }
    }
    Ok(())
}

/// The groups a pattern has, for error messages: "the pattern has groups 1 to 2 (named: id);
/// 0 is the whole match".
fn describe_groups(re: &Regex) -> String {
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let count = match re.captures_len() - 1 {
        0 => "no groups".to_string(),
        1 => "group 1".to_string(),
        n => format!("groups 1 to {n}"),
    };
    let named = if names.is_empty() {
        String::new()
    } else {
        format!(" (named: {})", names.join(", "))
    };
    format!("the pattern has {count}{named}; 0 is the whole match")
}

/// Compiles a pattern, or records why it cannot be at `path`.
fn compile_pattern(p: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<Regex> {
    match Regex::new(p) {
        Ok(re) => Some(re),
        Err(e) => {
            // The regex crate's message spans lines (the pattern, a caret, the error); a config
            // error is one line, so keep its last line: what is wrong.
            let text = e.to_string();
            let what = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().trim_start_matches("error: ").to_string())
                .unwrap_or(text);
            errors.push(ConfigError::new(
                path,
                format!("invalid regular expression {p:?}: {what}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_errors, s};
    use super::super::{run, run_opt};
    use crate::mapping::value::Val;
    use proptest::prelude::*;
    use std::borrow::Cow;

    #[test]
    fn regex_takes_group_one_by_default_else_the_whole_match() {
        let t = "regex: {pattern: \"PRODUCT_DETAIL_PAGE:(\\\\d+)\"}";
        assert_eq!(run(t, s("x PRODUCT_DETAIL_PAGE:123 y")), Ok("123".into()));
        assert_eq!(run("regex: \"\\\\d+\"", s("p/123/x")), Ok("123".into()));
        assert_eq!(
            run(
                "regex: {pattern: \"(\\\\w+):(\\\\d+)\", group: 2}",
                s("sku:42")
            ),
            Ok("42".into())
        );
        assert_eq!(
            run(
                "regex: {pattern: \"(\\\\w+):(\\\\d+)\", group: 0}",
                s("-sku:42-")
            ),
            Ok("sku:42".into())
        );
        assert_eq!(
            run(
                "regex: {pattern: \"/p/(?P<id>[^/?]+)\", group: id}",
                s("/p/abc?x=1")
            ),
            Ok("abc".into())
        );
        assert_eq!(run("regex: \"(?i)^sku-(.+)\"", s("SKU-9")), Ok("9".into()));
    }

    #[test]
    fn regex_without_a_match_or_group_is_absent() {
        assert_eq!(run_opt("regex: \"(\\\\d+)\"", s("none")), Ok(None));
        // The group exists in the pattern but took no part in this match.
        assert_eq!(run_opt("regex: \"(a)?b\"", s("b")), Ok(None));
    }

    #[test]
    fn replace_replaces_every_match_and_expands_groups() {
        let t = "replace: {pattern: \"\\\\?.*$\", with: \"\"}";
        assert_eq!(run(t, s("/p/1?utm=x&y=2")), Ok("/p/1".into()));
        assert_eq!(run(t, s("/p/1")), Ok("/p/1".into()));
        assert_eq!(
            run("replace: {pattern: \"-\", with: _}", s("a-b-c")),
            Ok("a_b_c".into())
        );
        assert_eq!(
            run(
                "replace: {pattern: \"(\\\\w+)@(\\\\w+)\", with: \"$2 at ${1}x $$\"}",
                s("me@host")
            ),
            Ok("host at mex $".into())
        );
        assert_eq!(
            run(
                "replace: {pattern: \"(?P<n>\\\\d+)\", with: \"#${n}\"}",
                s("a1b22")
            ),
            Ok("a#1b#22".into())
        );
        // A `$` that starts no reference is kept.
        assert_eq!(
            run("replace: {pattern: x, with: \"$-\"}", s("axb")),
            Ok("a$-b".into())
        );
        // Replacing everything leaves blank text, which the source reads as absent.
        assert_eq!(
            run("replace: {pattern: \".*\", with: \"\"}", s("abc")),
            Ok(String::new())
        );
    }

    #[test]
    fn bad_patterns_fail_at_start_up_with_paths() {
        let cases: [(&str, &[&str]); 12] = [
            ("regex", &["f.transform.regex: `regex` needs a pattern, e.g. `{regex: {pattern: \"PRODUCT_DETAIL_PAGE:(\\\\d+)\", group: 1}}`"]),
            ("regex: \"(\"", &["f.transform.regex: invalid regular expression \"(\": unclosed group"]),
            ("regex: {pattern: \"a(\"}", &["f.transform.regex.pattern: invalid regular expression \"a(\": unclosed group"]),
            ("regex: {pattern: \"(a)\", group: 2}", &["f.transform.regex.group: group 2: the pattern has group 1; 0 is the whole match"]),
            ("regex: {pattern: \"a\", group: 1}", &["f.transform.regex.group: group 1: the pattern has no groups; 0 is the whole match"]),
            ("regex: {pattern: \"(?P<sku>a)\", group: skus}", &["f.transform.regex.group: no group named `skus` (did you mean `sku`?): the pattern has group 1 (named: sku); 0 is the whole match"]),
            ("regex: {group: 1}", &["f.transform.regex.pattern: required, e.g. `{regex: {pattern: \"PRODUCT_DETAIL_PAGE:(\\\\d+)\", group: 1}}`"]),
            ("replace: {pattern: \"(a)\"}", &["f.transform.replace.with: required (the replacement; `\"\"` deletes), e.g. `{replace: {pattern: \"\\\\?.*$\", with: \"\"}}`"]),
            ("replace: {pattern: \"(a)\", with: }", &["f.transform.replace.with: the replacement is text; write `with: \"\"` to delete the matches"]),
            ("replace: {pattern: \"(a)\", with: \"$1a\"}", &["f.transform.replace.with: `$1a` refers to a group the pattern does not have: the pattern has group 1; 0 is the whole match (for group 1 followed by `a`, write `$${1}a`: in a config file `${…}` alone is an environment variable); `$$` is a literal `$`"]),
            ("replace: {pattern: \"(?P<id>a)\", with: \"${ID}\"}", &["f.transform.replace.with: `${ID}` refers to a group the pattern does not have: the pattern has group 1 (named: id); 0 is the whole match; `$$` is a literal `$`"]),
            ("replace: {pattern: \"[\", with: x}", &["f.transform.replace.pattern: invalid regular expression \"[\": unclosed character class"]),
        ];
        for (t, want) in cases {
            assert_eq!(compile_errors(t), want, "{t}");
        }
    }

    #[test]
    fn a_replacement_may_use_every_group_the_pattern_has() {
        for (p, w) in [
            ("(a)(b)", "$0$1$2${2}x$$"),
            ("(?P<first>a)", "$first${first}-${1}"),
            ("a", "$$1 and $ alone and ${unclosed"),
        ] {
            let t = format!("replace: {{pattern: {p:?}, with: {w:?}}}");
            assert_eq!(compile_errors(&t), Vec::<String>::new(), "{t}");
        }
    }

    proptest! {
        #[test]
        fn replacement_checks_never_panic(any_with in any::<String>(), with in "(\\$\\{?[0-9a-zé_]{0,3}\\}?|[a-z$}{])*") {
            let re = regex::Regex::new("(?P<id>a)(b)").expect("a valid pattern");
            for w in [&any_with, &with] {
                let _ = super::check_replacement(&re, w);
            }
        }

        #[test]
        fn pattern_steps_never_panic_on_any_text(text in any::<String>()) {
            for t in [
                "regex: {pattern: \"(?P<id>\\\\d+)?x\", group: id}",
                "regex: \"(?i)é+\"",
                "replace: {pattern: \"(.)\", with: \"$1$1\"}",
                "replace: {pattern: \"\\\\?.*$\", with: \"\"}",
            ] {
                let _ = run_opt(t, Val::Str(Cow::Borrowed(&text)));
                let _ = run_opt(t, Val::Str(Cow::Owned(text.clone())));
            }
        }
    }
}
