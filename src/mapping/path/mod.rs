//! Source paths, parsed once at start-up into segment vectors.
//!
//! Two spellings, both relative to the current scope (the message, or the array element inside an
//! `each:`); a leading `$` anchors either one at the message root:
//! - dotted: `order.lines[0].sku`, `items[-1].id` (negative = from the end),
//!   `context["page.path"]` (quoted keys may hold dots);
//! - JSON pointer (RFC 6901): `/order/lines/0/sku`, with `~0` for `~` and `~1` for `/`.
//!
//! Resolution walks the pre-split segments only: no string parsing per message. A path that
//! meets a missing key, an index out of range or a scalar resolves to `None`, never an error.

use super::doc::{Doc, Node};
use super::need::Need;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// An object key, and its slot in the projected object it reads (see [`Path::hint`]).
    Key(String, Option<Slot>),
    Index(i64),
    /// A JSON-pointer token: an object key, or an array index when it is a number.
    Token(String, Option<usize>),
}

/// Where a key's member sits in a projected object: the number of the need the object is
/// decoded with, and the slot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    need: u32,
    index: u32,
}

/// A compiled path; `Display` shows it as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    root: bool,
    segs: Vec<Seg>,
    text: String,
    /// Every segment's slot, when every segment is a key with a slot hint (the usual path):
    /// [`Path::resolve`] then walks these without looking at the segments.
    route: Option<Vec<Slot>>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses either spelling: a pointer when it starts with `/` (or `$/`), dotted otherwise.
    pub fn parse(s: &str) -> Result<Path, String> {
        let body = s.strip_prefix('$').unwrap_or(s);
        if body.starts_with('/') {
            Path::parse_pointer(s)
        } else {
            Path::parse_dotted(s)
        }
    }

    /// Parses a JSON pointer (`/a/0/b`, `$/a`); the empty pointer means the scope itself.
    pub fn parse_pointer(s: &str) -> Result<Path, String> {
        let (root, body) = match s.strip_prefix('$') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if body.is_empty() {
            return Ok(Path {
                root,
                segs: vec![],
                text: s.to_string(),
                route: None,
            });
        }
        let Some(rest) = body.strip_prefix('/') else {
            return Err(format!("JSON pointer {s:?} must start with `/`"));
        };
        let mut segs = Vec::new();
        for raw in rest.split('/') {
            let mut tok = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => tok.push('~'),
                        Some('1') => tok.push('/'),
                        _ => {
                            return Err(format!(
                                "JSON pointer {s:?}: `~` must be followed by 0 or 1"
                            ))
                        }
                    }
                } else {
                    tok.push(c);
                }
            }
            // RFC 6901: array indices have no leading zeros ("01" is a key only).
            let idx = (tok == "0" || (!tok.starts_with('0') && !tok.is_empty()))
                .then(|| tok.parse::<usize>().ok())
                .flatten();
            segs.push(Seg::Token(tok, idx));
        }
        Ok(Path {
            root,
            segs,
            text: s.to_string(),
            route: None,
        })
    }

    /// Parses a dotted path with `[n]` indices and `["quoted key"]` segments.
    pub fn parse_dotted(s: &str) -> Result<Path, String> {
        let err = |why: &str| Err(format!("bad path {s:?}: {why}"));
        let (root, body) = match s.strip_prefix('$') {
            Some(rest) => (true, rest.strip_prefix('.').unwrap_or(rest)),
            None => (false, s),
        };
        if body.trim().is_empty() {
            return if root {
                Ok(Path {
                    root,
                    segs: vec![],
                    text: s.into(),
                    route: None,
                })
            } else {
                err("empty")
            };
        }
        if body.trim() != body {
            return err("leading or trailing spaces");
        }
        let b = body.as_bytes();
        let mut segs = Vec::new();
        let mut i = 0;
        let mut need_key = true; // at the start or right after a dot
        while i < b.len() {
            match b[i] {
                b'.' => {
                    if need_key {
                        return err("empty segment (two dots, or a dot at the start)");
                    }
                    need_key = true;
                    i += 1;
                    if i == b.len() {
                        return err("ends with a dot");
                    }
                }
                b'[' => {
                    if need_key && !segs.is_empty() {
                        return err("`[` right after a dot");
                    }
                    let Some(close) = body[i..].find(']').map(|c| c + i) else {
                        return err("unclosed `[`");
                    };
                    let inner = body[i + 1..close].trim();
                    if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                        segs.push(Seg::Key(q.to_string(), None));
                    } else if let Ok(n) = inner.parse::<i64>() {
                        segs.push(Seg::Index(n));
                    } else {
                        return err("`[…]` holds an integer index or a \"quoted key\"");
                    }
                    need_key = false;
                    i = close + 1;
                }
                b']' => return err("`]` without `[`"),
                _ => {
                    if !need_key {
                        return err("a key must follow a dot");
                    }
                    let end = body[i..].find(['.', '[', ']']).map_or(b.len(), |e| e + i);
                    let key = &body[i..end];
                    if key.contains(['{', '}']) {
                        return err("`{` or `}` in a key (templates go in a `template:` value)");
                    }
                    segs.push(Seg::Key(key.to_string(), None));
                    need_key = false;
                    i = end;
                }
            }
        }
        Ok(Path {
            root,
            segs,
            text: s.to_string(),
            route: None,
        })
    }

    /// Member keys from the root to this path's value, for projection: `scope` is the key path
    /// of the current `each:` element (ignored when anchored with `$`). Array indices are
    /// transparent (all elements share a need). A pointer token that may be an array index stops
    /// the walk, and the prefix is kept whole: a superset is always safe.
    pub fn need_keys<'s>(&'s self, scope: &[&'s str]) -> (Vec<&'s str>, bool) {
        let mut keys: Vec<&str> = if self.root {
            Vec::new()
        } else {
            scope.to_vec()
        };
        for seg in &self.segs {
            match seg {
                Seg::Key(k, _) | Seg::Token(k, None) => keys.push(k),
                Seg::Index(_) => {}
                Seg::Token(_, Some(_)) => return (keys, true),
            }
        }
        (keys, false)
    }

    /// Records that this path's value is read whole.
    pub fn need_value(&self, need: &mut Need, scope: &[&str]) {
        let (keys, _) = self.need_keys(scope);
        need.keep(&keys);
    }

    /// Records, for each key segment, the member's slot in the projected object it will read
    /// when messages are decoded with `need` (the block's, complete) and the path is read from
    /// an element at `scope` (the key path of the enclosing `each:`, as [`Path::need_keys`]
    /// gives it). Segments that read a kept-whole subtree, or follow a pointer token, get none;
    /// so do all when `need` is not numbered ([`Need::number`]).
    pub fn hint(&mut self, need: &Need, scope: &[String]) {
        let mut cur = if self.root {
            Some(need)
        } else {
            scope
                .iter()
                .try_fold(need, |n, k| (!n.keeps_all()).then(|| n.child(k)).flatten())
        };
        for seg in &mut self.segs {
            match seg {
                Seg::Key(k, hint) => {
                    *hint = None;
                    let parent = cur.filter(|n| !n.keeps_all());
                    cur = match parent.and_then(|n| Some((n.id(), n.child_at(k)?))) {
                        Some((id, (i, c))) => {
                            *hint = u32::try_from(i)
                                .ok()
                                .filter(|_| id != 0)
                                .map(|index| Slot { need: id, index });
                            Some(c)
                        }
                        None => None,
                    };
                }
                Seg::Index(_) => {} // all elements of an array share one need
                Seg::Token(..) => cur = None,
            }
        }
        self.route = self
            .segs
            .iter()
            .map(|s| match s {
                Seg::Key(_, hint) => *hint,
                _ => None,
            })
            .collect::<Option<Vec<Slot>>>()
            .filter(|r| !r.is_empty());
    }

    /// Follows the path from `scope` (or the root when anchored with `$`) in `doc`. JSON `null`
    /// counts as absent, so `default:` and `first:` treat both the same.
    #[inline]
    pub fn resolve<'n, 'a>(&self, doc: &'n Doc<'a>, scope: &'n Node<'a>) -> Option<&'n Node<'a>> {
        let Some(route) = &self.route else {
            return self.walk(doc, scope);
        };
        // Slot by slot while the objects are the projected ones the hints name; anything else
        // (another layout, an array, a scalar) takes the general walk, which then answers.
        let mut cur = if self.root { doc.root() } else { scope };
        for h in route {
            cur = match doc.slot(cur, h.need, h.index) {
                Some(v) => v,
                None => return self.walk(doc, scope),
            };
        }
        (!matches!(cur, Node::Null)).then_some(cur)
    }

    /// [`Path::resolve`] segment by segment.
    #[inline(never)]
    fn walk<'n, 'a>(&self, doc: &'n Doc<'a>, scope: &'n Node<'a>) -> Option<&'n Node<'a>> {
        let mut cur = if self.root { doc.root() } else { scope };
        for seg in &self.segs {
            cur = match seg {
                // A projected object holds the member at its slot (an absent one as `null`). The
                // hint names the need it was computed against, the block's; the slot is only
                // read from an object decoded with that same need node, and any other object is
                // searched by name.
                Seg::Key(k, Some(h)) => match doc.slot(cur, h.need, h.index) {
                    Some(v) => v,
                    None => doc.get(cur, k)?,
                },
                Seg::Key(k, None) => doc.get(cur, k)?,
                Seg::Index(i) => doc.at(cur, *i)?,
                Seg::Token(k, idx) => match (cur, idx) {
                    (Node::Arr { .. }, Some(i)) => doc.at(cur, i64::try_from(*i).ok()?)?,
                    _ => doc.get(cur, k)?,
                },
            };
        }
        (!matches!(cur, Node::Null)).then_some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::doc::{self, decode};

    const MSG: &[u8] =
        br#"{"order":{"lines":[{"sku":"A"},{"sku":"B"}],"n":null},"a/b":{"~x":1},"k.d":2,"01":3}"#;

    fn get(path: &str) -> Option<String> {
        let d = decode(Some(MSG)).expect("json");
        let p = Path::parse(path).expect("path");
        p.resolve(&d, d.root()).map(|v| format!("{v:?}"))
    }

    #[test]
    fn dotted_paths_resolve() {
        assert_eq!(get("order.lines[1].sku").as_deref(), Some(r#"Str("B")"#));
        assert_eq!(get("order.lines[-2].sku").as_deref(), Some(r#"Str("A")"#));
        assert_eq!(get("$.order.lines[0].sku").as_deref(), Some(r#"Str("A")"#));
        assert_eq!(get(r#"["k.d"]"#).as_deref(), Some("Int(2)"));
        assert_eq!(get("order.lines[2].sku"), None);
        assert_eq!(get("order.n"), None, "null is absent");
        assert_eq!(get("order.lines.sku"), None);
    }

    #[test]
    fn pointers_resolve_with_escapes() {
        assert_eq!(get("/order/lines/0/sku").as_deref(), Some(r#"Str("A")"#));
        assert_eq!(get("/a~1b/~0x").as_deref(), Some("Int(1)"));
        assert_eq!(get("$/01").as_deref(), Some("Int(3)"));
    }

    #[test]
    fn slot_hints_read_projected_objects_and_leave_others_to_names() {
        use crate::mapping::need::{self, Need};
        let mut need = Need::default();
        need.keep(&["z"]);
        need.keep(&["order", "n"]);
        need.keep(&["order", "lines", "sku"]);
        need.keep(&["whole"]);
        let unnumbered = need.clone();
        need.number();
        let hinted = |text: &str, scope: &[String]| {
            let mut p = Path::parse(text).expect("path");
            p.hint(&need, scope);
            p
        };
        let slots = |p: &Path| -> Vec<Option<u32>> {
            p.segs
                .iter()
                .map(|s| match s {
                    Seg::Key(_, h) => h.map(|h| h.index),
                    _ => None,
                })
                .collect()
        };
        let lines = hinted("order.lines[1].sku", &[]);
        assert_eq!(slots(&lines), [Some(1), Some(1), None, Some(0)]);
        let sku = hinted("sku", &["order".into(), "lines".into()]);
        assert_eq!(slots(&sku), [Some(0)]);
        assert_eq!(slots(&hinted("$.z", &["order".into()])), [Some(0)]);
        assert_eq!(slots(&hinted("whole.x", &[])), [Some(2), None]);

        let mut bare = Path::parse("order.lines[1].sku").expect("path");
        bare.hint(&unnumbered, &[]);
        assert_eq!(
            slots(&bare),
            [None, None, None, None],
            "no numbers, no hints"
        );

        // The same keys in another order: the hints name the other need, so names are used.
        let mut other = Need::default();
        other.keep(&["order", "lines", "sku"]);
        other.keep(&["order", "n"]);
        other.keep(&["z"]);
        other.number();
        let projected = need::decode(Some(MSG), &need).expect("json");
        let reordered = need::decode(Some(MSG), &other).expect("json");
        let full = decode(Some(MSG)).expect("json");
        for doc in [&projected, &reordered, &full] {
            let line = lines.resolve(doc, doc.root()).expect("sku");
            assert_eq!(line, &Node::Str("B".into()));
            assert_eq!(bare.resolve(doc, doc.root()), Some(line));
            assert_eq!(
                hinted("order.n", &[]).resolve(doc, doc.root()),
                None,
                "null is absent"
            );
            assert_eq!(hinted("z", &[]).resolve(doc, doc.root()), None, "absent");
        }
        // A route that meets something other than the projected object it expects.
        let scalar = need::decode(Some(br#"{"order":"x","z":[1]}"#), &need).expect("json");
        assert_eq!(hinted("order.n", &[]).resolve(&scalar, scalar.root()), None);
        let z = hinted("z", &[]).resolve(&scalar, scalar.root());
        assert_eq!(
            z.map(|z| scalar.tree(z)),
            Some(doc::Tree::Arr(vec![doc::Tree::Int(1)]))
        );
        assert!(hinted("order.n", &[]).route.is_some());
        assert!(lines.route.is_none(), "an index segment: walked");
    }

    #[test]
    fn bad_syntax_is_reported() {
        for bad in [
            "", "a..b", ".a", "a.", "a[", "a[x]", "a.[0]", "a]", "{{ a }}", " a", "/a/~2",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in [
            "a",
            "a[0][1]",
            "a[-1].b",
            "$",
            "$.a",
            "/",
            "$/a",
            r#"a["x.y"].z"#,
        ] {
            assert!(Path::parse(good).is_ok(), "{good:?} should parse");
        }
    }
}
