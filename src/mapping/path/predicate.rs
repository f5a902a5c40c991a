//! Test segments: `[sub.path=text]`, `[sub.path^=prefix]` and `[sub.path~=regex]` choose the
//! first element of an array whose member at `sub.path` passes the test.
//!
//! Why: exports such as GA4's BigQuery rows keep values in lists of `{key, value}` pairs in no
//! fixed order, and CDP exports keep typed identity lists (`[{type: email, value: …}]`); an index
//! cannot name "the page_location parameter". What it guarantees: everything is parsed once (the
//! regex compiled, the number in the text read); at run time a test never fails — an element
//! whose member is missing, null, an object or an array, or that is not an object at all, simply
//! does not match, and a value that is not an array has no element to choose.
//!
//! Syntax, between the brackets:
//! - the sub-path: a dotted path relative to the element, of keys, `[n]` and `["quoted key"]`
//!   only (a key holding `=`, `^`, `~`, `!`, `<`, `>`, `*`, `$`, `|`, `"` or `(` is quoted that way);
//! - the operator: `=`, `^=` or `~=`, with no spaces around it;
//! - the text: either `"quoted"` (it may then hold anything; a `"` inside is written `""`,
//!   nothing else is an escape, so regex backslashes are written as they are) or unquoted, up to
//!   the first `]`, with no leading or trailing space.
//!
//! Matching: `=` holds for a string equal to the text; for a number when the text, read as a
//! JSON number, has the same value (`[n=3]` matches `3` and `3.0`); for a boolean when the text is
//! `true` / `false`. `^=` (starts with) and `~=` (a regex found anywhere in the value; anchor it
//! with `^…$`) test a string, or a number's or boolean's text as `when: … matches` reads it.

use super::parse::{is_index_or_quoted_key, segments};
use super::{Path, Seg};
use crate::mapping::doc::{Doc, Node};
use crate::mapping::value::Val;
use regex::Regex;

/// A compiled `[sub.path<op>text]`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Predicate {
    /// The member tested, relative to each element: keys and indices only.
    sub: Path,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Equals),
    Prefix(String),
    Matches(Regex),
}

/// `=`: the text, and its value when it is a JSON number (read once, here).
#[derive(Debug, Clone)]
struct Equals {
    text: String,
    /// When the text is an integer: integers compare exactly, not through `f64`.
    int: Option<i64>,
    float: Option<f64>,
}

impl Equals {
    fn new(text: String) -> Equals {
        // Only a JSON number's text is read as one (`inf`, ` 3`, `03` or `0x1` are not).
        let num = serde_json::from_str::<serde_json::Number>(&text)
            .ok()
            .filter(|_| text.trim() == text);
        Equals {
            int: num.as_ref().and_then(serde_json::Number::as_i64),
            float: num.as_ref().and_then(serde_json::Number::as_f64),
            text,
        }
    }

    fn holds(&self, v: &Node<'_>) -> bool {
        match v {
            Node::Str(s) => *s == self.text,
            Node::Int(i) => match (self.int, self.float) {
                (Some(want), _) => *i == want,
                (None, Some(want)) => *i as f64 == want,
                (None, None) => false,
            },
            Node::Float(f) => self.float == Some(*f),
            Node::Bool(b) => self.text == if *b { "true" } else { "false" },
            Node::Null | Node::Arr { .. } | Node::Obj { .. } | Node::Proj { .. } => false,
        }
    }
}

/// Regexes compare by their pattern (paths are compared in tests and plan equality).
impl PartialEq for Test {
    fn eq(&self, other: &Test) -> bool {
        match (self, other) {
            (Test::Equals(a), Test::Equals(b)) => a.text == b.text,
            (Test::Prefix(a), Test::Prefix(b)) => a == b,
            (Test::Matches(a), Test::Matches(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// The operators, as written after the sub-path.
#[derive(Clone, Copy)]
enum Op {
    Equals,
    Prefix,
    Matches,
}

/// Characters that end a sub-path: an operator starts there. `*`, `$` and `|` are not
/// operators, but `*=`, `$=` and `|=` are likely attempts at one and must not pass silently as
/// part of a key.
const OPERATOR_START: &[u8] = b"=^~!<>*$|";

impl Predicate {
    /// The sub-path's keys (indices are transparent, as everywhere in projection).
    pub(super) fn sub_keys(&self) -> impl Iterator<Item = &str> {
        self.sub.segs.iter().filter_map(|s| match s {
            Seg::Key(k, _) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The first element of the array `arr` the test holds for; `None` for anything else.
    pub(super) fn first<'n, 'a>(
        &self,
        doc: &'n Doc<'a>,
        arr: &'n Node<'a>,
    ) -> Option<&'n Node<'a>> {
        doc.items(arr)?.iter().find(|el| self.holds(doc, el))
    }

    fn holds(&self, doc: &Doc<'_>, el: &Node<'_>) -> bool {
        let Some(v) = self.sub.walk(doc, el) else {
            return false;
        };
        match &self.test {
            Test::Equals(e) => e.holds(v),
            Test::Prefix(p) => text_holds(v, |t| t.starts_with(p.as_str())),
            Test::Matches(re) => text_holds(v, |t| re.is_match(t)),
        }
    }
}

/// `f` of a scalar's text, as `when: … matches` reads it (a string's without a copy); false for
/// arrays and objects.
fn text_holds(n: &Node<'_>, f: impl FnOnce(&str) -> bool) -> bool {
    Val::from_node(n).is_some_and(|v| v.text().is_ok_and(|t| f(&t)))
}

/// Parses a test from `rest`, the text right after its `[`: the predicate, and how many bytes
/// of `rest` it took, its `]` included. The error is the reason alone.
pub(super) fn parse(rest: &str) -> Result<(Predicate, usize), String> {
    let shown = |upto: usize| format!("`[{}]`", &rest[..upto]);
    let first_close = rest.find(']').unwrap_or(rest.len());
    let b = rest.as_bytes();
    // The sub-path runs to the operator, stepping over its own `[n]` / `["key"]`.
    let mut i = 0;
    loop {
        match b.get(i) {
            None => return Err("unclosed `[`".into()),
            Some(b']') => {
                return Err(
                    "`[…]` holds an integer index, a \"quoted key\" or a test such as `[key=value]`"
                        .into(),
                )
            }
            Some(b'[') => {
                let Some(close) = rest[i + 1..].find(']') else {
                    return Err("unclosed `[`".into());
                };
                if !is_index_or_quoted_key(&rest[i + 1..i + 1 + close]) {
                    return Err(format!(
                        "in {}: a test's sub-path holds keys, `[n]` and `[\"quoted key\"]` only",
                        shown(first_close)
                    ));
                }
                i += 1 + close + 1;
            }
            // `$` ends a sub-path (`$=`): at its start it would be read as an anchor.
            Some(b'$') if i == 0 => {
                return Err(format!(
                    "in {}: the sub-path is relative to the element, `$` cannot anchor it (quote a key that starts with `$`: `[[\"$type\"]=x]`)",
                    shown(first_close)
                ))
            }
            Some(b'"' | b'(') => {
                return Err(format!(
                    "in {}: a test's sub-path holds keys, `[n]` and `[\"quoted key\"]` only (a key holding `\"` or `(` is quoted that way: `[[\"a(b)\"]=x]`)",
                    shown(first_close)
                ))
            }
            Some(c) if OPERATOR_START.contains(c) => break,
            Some(_) => i += 1,
        }
    }
    let sub = sub_path(&rest[..i]).map_err(|why| format!("in {}: {why}", shown(first_close)))?;
    let ops = &rest[i..];
    let (op, op_len) = if ops.starts_with("^=") {
        (Op::Prefix, 2)
    } else if ops.starts_with("~=") {
        (Op::Matches, 2)
    } else if ops.starts_with('=') && !ops.starts_with("==") {
        (Op::Equals, 1)
    } else {
        let op: String = ops
            .chars()
            .take_while(|c| c.is_ascii() && (OPERATOR_START.contains(&(*c as u8)) || *c == '='))
            .take(2)
            .collect();
        return Err(format!(
            "unknown operator `{op}` in {} (a test is `=`, `^=` or `~=`; quote a key or a text that holds such characters)",
            shown(first_close)
        ));
    };
    let after = i + op_len;
    let (text, used) =
        value(&rest[after..]).map_err(|why| format!("in {}: {why}", shown(first_close)))?;
    let test = match op {
        Op::Equals => Test::Equals(Equals::new(text)),
        Op::Prefix => Test::Prefix(text),
        Op::Matches => Test::Matches(
            Regex::new(&text).map_err(|e| format!("bad regex {text:?} in a `~=` test: {e}"))?,
        ),
    };
    Ok((Predicate { sub, test }, after + used))
}

/// The sub-path of a test: relative to the element, keys and indices only.
fn sub_path(text: &str) -> Result<Path, String> {
    if text.is_empty() {
        return Err(
            "nothing before the operator: name the member to test, e.g. `[key=page_location]`"
                .into(),
        );
    }
    if text.trim() != text {
        return Err(
            "no spaces around the operator (quote a text that has leading or trailing spaces)"
                .into(),
        );
    }
    let segs = segments(text).map_err(|why| format!("sub-path {text:?}: {why}"))?;
    // The scan in `parse` lets nothing else through; checked here so a change there cannot
    // nest tests (whose needs `Path::reach` does not record).
    if segs
        .iter()
        .any(|s| !matches!(s, Seg::Key(..) | Seg::Index(_)))
    {
        return Err(format!(
            "sub-path {text:?}: keys, `[n]` and `[\"quoted key\"]` only"
        ));
    }
    Ok(Path::of(false, segs, text))
}

/// The text after the operator, up to and with the closing `]`: the text, and bytes taken.
fn value(rest: &str) -> Result<(String, usize), String> {
    let b = rest.as_bytes();
    if b.first() == Some(&b'"') {
        let mut text = String::new();
        let mut i = 1;
        loop {
            let Some(q) = rest[i..].find('"') else {
                return Err("unclosed quoted text (a `\"` inside is written `\"\"`)".into());
            };
            text.push_str(&rest[i..i + q]);
            i += q + 1;
            if b.get(i) == Some(&b'"') {
                text.push('"');
                i += 1;
            } else {
                break;
            }
        }
        return match b.get(i) {
            Some(b']') => Ok((text, i + 1)),
            _ => Err("`]` must follow a quoted text (a `\"` inside is written `\"\"`)".into()),
        };
    }
    let Some(close) = rest.find(']') else {
        return Err("unclosed `[`".into());
    };
    let text = &rest[..close];
    if text.is_empty() {
        return Err("no text after the operator (write `\"\"` to match empty text)".into());
    }
    if text.trim() != text {
        return Err(format!(
            "the text {text:?} has leading or trailing spaces: quote it to keep them"
        ));
    }
    Ok((text.to_string(), close + 1))
}
