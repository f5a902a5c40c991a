//! `when:` conditions that choose a rule for a message.
//!
//! A leaf names a subject (`field: <path>`, `header: <name>` or `kafka: key|topic|…`) and one
//! test: `equals`, `in`, `exists`, `matches` (a regex, compiled at start-up). `all`, `any` and
//! `not` combine leaves. Conditions never fail: a missing field or a value of another type simply
//! does not match (`exists: false` is how to test for absence).
//!
//! The same conditions decide a field (`when:` on a source, `if:` in a source) and filter an
//! `each:` array (`where:`): there a `field:` path is read from the current scope, the array
//! element inside an `each:`, like every other path ([`Cond::eval_in`]).

use super::doc::Node;
use super::need::Need;
use super::path::Path;
use super::subject::{Ctx, Subject};
use super::value::{Scalar, Val};
use crate::config::decode::{index, kind, ConfigError, MapReader};
use regex::Regex;
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, Clone)]
pub enum Test {
    Equals(Scalar),
    In(Vec<Scalar>),
    Exists(bool),
    Matches(Regex),
}

/// Regexes compare by their pattern (sources that hold conditions compare plans in tests).
impl PartialEq for Test {
    fn eq(&self, other: &Test) -> bool {
        match (self, other) {
            (Test::Equals(a), Test::Equals(b)) => a == b,
            (Test::In(a), Test::In(b)) => a == b,
            (Test::Exists(a), Test::Exists(b)) => a == b,
            (Test::Matches(a), Test::Matches(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Leaf(Subject, Test),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

const SUBJECTS: [&str; 3] = ["field", "header", "kafka"];
const TESTS: [&str; 4] = ["equals", "in", "exists", "matches"];

impl Cond {
    pub fn compile(v: &Yaml, path: &str, errors: &mut Vec<ConfigError>) -> Option<Cond> {
        let mut r = MapReader::new(v, path, errors)?;
        for (key, make) in [
            ("all", Cond::All as fn(Vec<Cond>) -> Cond),
            ("any", Cond::Any),
        ] {
            if r.has(key) {
                let list = r.raw(key);
                let at = r.child_path(key);
                r.finish();
                return match list {
                    Some(Yaml::Sequence(items)) if !items.is_empty() => {
                        let out: Vec<Cond> = items
                            .iter()
                            .enumerate()
                            .filter_map(|(i, c)| Cond::compile(c, &index(&at, i), errors))
                            .collect();
                        (out.len() == items.len()).then(|| make(out))
                    }
                    _ => {
                        errors.push(ConfigError::new(
                            at,
                            format!("`{key}` takes a non-empty list of conditions"),
                        ));
                        None
                    }
                };
            }
        }
        if let Some(inner) = r.raw("not") {
            let at = r.child_path("not");
            r.finish();
            return Cond::compile(inner, &at, errors).map(|c| Cond::Not(Box::new(c)));
        }
        let subject = read_subject(&mut r);
        let tests: Vec<&str> = TESTS.into_iter().filter(|t| r.has(t)).collect();
        let test = match tests.as_slice() {
            [one] => read_test(&mut r, one),
            _ => {
                r.error_at(
                    path.to_string(),
                    format!(
                        "a condition needs exactly one of {} (or all / any / not)",
                        TESTS.join(", ")
                    ),
                );
                None
            }
        };
        for t in TESTS {
            let _ = r.raw(t);
        }
        r.finish();
        Some(Cond::Leaf(subject?, test?))
    }

    /// Records the message paths this condition reads (all from the root).
    pub fn need(&self, need: &mut Need) {
        self.need_in(need, &[]);
    }

    /// Records the message paths this condition reads from an element at `scope` (the key path
    /// of the enclosing `each:`, as [`Path::reach`] takes it).
    pub fn need_in(&self, need: &mut Need, scope: &[&str]) {
        match self {
            Cond::All(list) | Cond::Any(list) => list.iter().for_each(|c| c.need_in(need, scope)),
            Cond::Not(c) => c.need_in(need, scope),
            Cond::Leaf(Subject::Path(p), _) => p.need_value(need, scope),
            Cond::Leaf(..) => {}
        }
    }

    /// Calls `f` with every message path this condition reads (all from the root).
    pub fn for_each_path(&mut self, f: &mut dyn FnMut(&mut Path, &[String])) {
        self.for_each_path_in(&[], f);
    }

    /// Calls `f` with every message path this condition reads and `scope`, as
    /// [`Cond::need_in`] records them.
    pub fn for_each_path_in(&mut self, scope: &[String], f: &mut dyn FnMut(&mut Path, &[String])) {
        match self {
            Cond::All(list) | Cond::Any(list) => {
                list.iter_mut().for_each(|c| c.for_each_path_in(scope, f))
            }
            Cond::Not(c) => c.for_each_path_in(scope, f),
            Cond::Leaf(Subject::Path(p), _) => f(p, scope),
            Cond::Leaf(..) => {}
        }
    }

    /// Whether the message matches (a rule's `when:`: paths from the root).
    #[inline]
    pub fn eval<'a>(&'a self, ctx: &Ctx<'a>) -> bool {
        self.eval_in(ctx, ctx.root)
    }

    /// Whether the condition holds with relative paths read from `scope` (an `each:` element,
    /// or the root).
    #[inline]
    pub fn eval_in<'a>(&'a self, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> bool {
        match self {
            // The usual leaf, `field: … equals: <text>`: only a string equal to the text matches
            // (`same`), so the value is compared where it lies, without converting it. Inlined
            // into the `all`/`any` loops, which rules are mostly made of.
            Cond::Leaf(Subject::Path(p), Test::Equals(Scalar::Str(want))) => {
                matches!(p.resolve(ctx.doc, scope), Some(Node::Str(s)) if s == want)
            }
            other => other.eval_general(ctx, scope),
        }
    }

    #[inline(never)]
    fn eval_general<'a>(&'a self, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> bool {
        match self {
            Cond::All(list) => list.iter().all(|c| c.eval_in(ctx, scope)),
            Cond::Any(list) => list.iter().any(|c| c.eval_in(ctx, scope)),
            Cond::Not(c) => !c.eval_in(ctx, scope),
            Cond::Leaf(subject, test) => leaf(subject, test, ctx, scope),
        }
    }
}

/// A leaf, read and tested the general way.
fn leaf<'a>(subject: &'a Subject, test: &Test, ctx: &Ctx<'a>, scope: &'a Node<'a>) -> bool {
    // A key or header that is not UTF-8 cannot equal or match text: treat as no match.
    let v = subject.read(ctx, scope).ok().flatten();
    match (test, v) {
        (Test::Exists(want), v) => v.is_some_and(|v| !v.is_empty()) == *want,
        (_, None) => false,
        (Test::Equals(s), Some(v)) => same(&v, s),
        (Test::In(list), Some(v)) => list.iter().any(|s| same(&v, s)),
        (Test::Matches(re), Some(v)) => v.text().is_ok_and(|t| re.is_match(&t)),
    }
}

fn read_subject(r: &mut MapReader<'_, '_>) -> Option<Subject> {
    let present: Vec<&str> = SUBJECTS.into_iter().filter(|k| r.has(k)).collect();
    if present.len() != 1 {
        let p = r.path().to_string();
        r.error_at(
            p,
            format!(
                "a condition names exactly one of: {} (e.g. `field: type`)",
                SUBJECTS.join(", ")
            ),
        );
        for k in SUBJECTS {
            let _ = r.raw(k);
        }
        return None;
    }
    let key = present[0];
    let raw = r.raw(key)?;
    let at = r.child_path(key);
    let Yaml::String(s) = raw else {
        r.error_at(at, format!("expected a string, found {}", kind(raw)));
        return None;
    };
    match key {
        "field" => Path::parse(s)
            .map(Subject::Path)
            .map_err(|e| r.error_at(at, e))
            .ok(),
        "header" => Some(Subject::Header(s.clone())),
        _ => Subject::parse_kafka(s)
            .map(Subject::Kafka)
            .map_err(|e| r.error_at(at, e))
            .ok(),
    }
}

fn read_test(r: &mut MapReader<'_, '_>, key: &str) -> Option<Test> {
    let at = r.child_path(key);
    match key {
        "equals" => {
            let v = r.raw("equals")?;
            let s = Scalar::from_yaml(v);
            if s.is_none() {
                r.error_at(
                    at,
                    format!("compare with a single value, found {}", kind(v)),
                );
            }
            s.map(Test::Equals)
        }
        "in" => match r.raw("in") {
            Some(Yaml::Sequence(items)) if !items.is_empty() => {
                let list: Vec<Scalar> = items.iter().filter_map(Scalar::from_yaml).collect();
                if list.len() != items.len() {
                    r.error_at(at, "`in` takes a list of single values");
                    return None;
                }
                Some(Test::In(list))
            }
            _ => {
                r.error_at(at, "`in` takes a non-empty list, e.g. `in: [a, b]`");
                None
            }
        },
        "exists" => r.opt::<bool>("exists").map(Test::Exists),
        _ => {
            let pattern = r.opt_string("matches")?;
            Regex::new(&pattern)
                .map(Test::Matches)
                .map_err(|e| r.error_at(at, format!("invalid regex: {e}")))
                .ok()
        }
    }
}

/// Equality across JSON and YAML kinds: numbers compare by value (`2` equals `2.0`), strings
/// exactly; no string/number coercion (`"2"` is not `2`, which keeps `equals` predictable).
fn same(v: &Val<'_>, s: &Scalar) -> bool {
    match (v, s) {
        (Val::Str(a), Scalar::Str(b)) => a == b,
        (Val::Bool(a), Scalar::Bool(b)) => a == b,
        (Val::Int(a), Scalar::Int(b)) => a == b,
        (Val::Int(_) | Val::Float(_), Scalar::Int(_) | Scalar::Float(_)) => {
            v.number().ok() == s.val().number().ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{doc, SourceMessage};
    use std::cell::OnceCell;

    #[test]
    fn text_equality_fast_path_answers_as_the_general_leaf() {
        let values = [
            r#""track""#,
            r#""Track""#,
            r#""track ""#,
            r#""tr\u0061ck""#,
            r#""""#,
            "1",
            "1.5",
            "true",
            "null",
            "[]",
            r#"["track"]"#,
            r#"{"type":"track"}"#,
        ];
        let msg = SourceMessage::BARE;
        for v in values
            .iter()
            .map(|v| format!(r#"{{"type":{v}}}"#))
            .chain([r#"{}"#.into()])
        {
            let d = doc::decode(Some(v.as_bytes())).expect("valid");
            let ua = OnceCell::new();
            let ctx = Ctx::at_root(&d, &msg, &ua);
            for want in ["track", "Track", "", "1"] {
                let subject = Subject::Path(Path::parse("type").expect("path"));
                let test = Test::Equals(Scalar::Str(want.into()));
                let general = leaf(&subject, &test, &ctx, ctx.root);
                let cond = Cond::Leaf(subject, test);
                assert_eq!(cond.eval(&ctx), general, "{v} equals {want:?}");
            }
        }
    }

    #[test]
    fn a_leaf_on_a_test_path_reads_the_chosen_element_from_the_projection_it_needs() {
        use crate::mapping::need::{self, Need};
        let yaml = "any: [{field: 'params[key=page_type].value.(string_value|int_value)', in: [product, 7]}, {field: 'ids[type~=^e].value', matches: '@'}]";
        let y: Yaml = serde_yaml_ng::from_str(yaml).expect("yaml");
        let mut errors = Vec::new();
        let cond = Cond::compile(&y, "when", &mut errors).expect("compiles");
        assert!(errors.is_empty(), "{errors:?}");
        let mut need = Need::default();
        cond.need(&mut need);
        need.number();
        let msg = SourceMessage::BARE;
        for (row, want) in [
            (
                r#"{"params":[{"key":"x"},{"key":"page_type","value":{"string_value":null,"int_value":7}}],"big":[1,2,3]}"#,
                true,
            ),
            (
                r#"{"params":[{"key":"page_type","value":{"string_value":"product"}}]}"#,
                true,
            ),
            (
                r#"{"params":[{"key":"page_type","value":{"string_value":"cart","int_value":7}}]}"#,
                false,
            ),
            (
                r#"{"params":[{"key":"other","value":{"string_value":"product"}}]}"#,
                false,
            ),
            (
                r#"{"params":{"key":"page_type"},"ids":[{"type":"device","value":"a@b"},{"type":"email","value":"c@d"}]}"#,
                true,
            ),
            (
                r#"{"ids":[{"type":"email","value":"no at"},{"type":"email","value":"c@d"}]}"#,
                false,
            ),
        ] {
            let ua = OnceCell::new();
            let full = doc::decode(Some(row.as_bytes())).expect("valid");
            let projected = need::decode(Some(row.as_bytes()), &need).expect("valid");
            assert_eq!(cond.eval(&Ctx::at_root(&full, &msg, &ua)), want, "{row}");
            assert_eq!(
                cond.eval(&Ctx::at_root(&projected, &msg, &ua)),
                want,
                "projected {row}"
            );
        }
        assert!(need.child("big").is_none(), "only what the leaves read");
    }
}
