//! Parsing both path spellings into segments (once, at start-up). Errors are sentences for the
//! user, reported by the caller at the YAML path the text came from.

use super::predicate;
use super::{Path, Seg};

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
            return Ok(Path::of(root, vec![], s));
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
        Ok(Path::of(root, segs, s))
    }

    /// Parses a dotted path: keys, `[n]` indices, `["quoted key"]`, `[sub.path=text]` tests
    /// (also `^=`, `~=`) and `(a|b)` unions.
    pub fn parse_dotted(s: &str) -> Result<Path, String> {
        let err = |why: &str| Err(format!("bad path {s:?}: {why}"));
        let (root, body) = match s.strip_prefix('$') {
            Some(rest) => (true, rest.strip_prefix('.').unwrap_or(rest)),
            None => (false, s),
        };
        if body.trim().is_empty() {
            return if root {
                Ok(Path::of(root, vec![], s))
            } else {
                err("empty")
            };
        }
        if body.trim() != body {
            return err("leading or trailing spaces");
        }
        let segs = segments(body).map_err(|why| format!("bad path {s:?}: {why}"))?;
        Ok(Path::of(root, segs, s))
    }

    pub(super) fn of(root: bool, segs: Vec<Seg>, text: &str) -> Path {
        Path {
            root,
            segs,
            text: text.to_string(),
            route: None,
        }
    }
}

/// The segments of a dotted path's body (after any `$`); the error is the reason alone.
pub(super) fn segments(body: &str) -> Result<Vec<Seg>, String> {
    let b = body.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let mut need_key = true; // at the start or right after a dot
    while i < b.len() {
        match b[i] {
            b'.' => {
                if need_key {
                    return Err("empty segment (two dots, or a dot at the start)".into());
                }
                need_key = true;
                i += 1;
                if i == b.len() {
                    return Err("ends with a dot".into());
                }
            }
            b'[' => {
                if need_key && !segs.is_empty() {
                    return Err("`[` right after a dot".into());
                }
                let (seg, next) = bracket(body, i)?;
                segs.push(seg);
                need_key = false;
                i = next;
            }
            b']' => return Err("`]` without `[`".into()),
            // Only where a key starts: `price(usd)` stays a key, as it always was.
            b'(' if need_key => {
                let (alts, next) = union(body, i)?;
                segs.push(Seg::Union(alts));
                need_key = false;
                i = next;
            }
            _ => {
                if !need_key {
                    return Err("a key must follow a dot".into());
                }
                let end = body[i..].find(['.', '[', ']']).map_or(b.len(), |e| e + i);
                let key = &body[i..end];
                if key.contains(['{', '}']) {
                    return Err("`{` or `}` in a key (templates go in a `template:` value)".into());
                }
                segs.push(Seg::Key(key.to_string(), None));
                need_key = false;
                i = end;
            }
        }
    }
    Ok(segs)
}

/// What `[…]` at `open` holds, and where the path goes on after its `]`.
fn bracket(body: &str, open: usize) -> Result<(Seg, usize), String> {
    let rest = &body[open + 1..];
    let Some(close) = rest.find(']') else {
        return Err("unclosed `[`".into());
    };
    // The two original forms read exactly as before (up to the first `]`), so no existing path
    // changes meaning; anything else is a test, which finds its own end (a quoted text may
    // hold `]`).
    let inner = rest[..close].trim();
    let after = open + 1 + close + 1;
    // A quoted key has no `"` inside: `["type"="email"]` is a test with a quoted key, which the
    // test parser answers (with how to write it), not the key `type"="email`.
    if let Some(q) = quoted_key(inner) {
        return Ok((Seg::Key(q.to_string(), None), after));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok((Seg::Index(n), after));
    }
    let (p, used) = predicate::parse(rest)?;
    Ok((Seg::Select(Box::new(p)), open + 1 + used))
}

/// True when `[…]` (its text between the brackets) is one of the two original forms.
pub(super) fn is_index_or_quoted_key(inner: &str) -> bool {
    let inner = inner.trim();
    inner.parse::<i64>().is_ok() || quoted_key(inner).is_some()
}

/// The key of a `"quoted key"` (the text between the brackets, trimmed): quotes at both ends and
/// none between them.
fn quoted_key(inner: &str) -> Option<&str> {
    inner
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .filter(|q| !q.contains('"'))
}

/// `(a|b|"c.d")` at `open`: its keys, and where the path goes on after its `)`.
fn union(body: &str, open: usize) -> Result<(Vec<String>, usize), String> {
    const HINT: &str =
        "`(…)` lists keys separated by `|`, e.g. `value.(string_value|int_value)`; quote a key holding `.`, `[`, `]`, `(`, `)`, `|` or spaces: `(\"a.b\"|c)`";
    let b = body.as_bytes();
    let mut alts = Vec::new();
    let mut i = open + 1;
    loop {
        let (alt, next) = if b.get(i) == Some(&b'"') {
            let Some(close) = body[i + 1..].find('"') else {
                return Err("unclosed `\"` in `(…)`".into());
            };
            (&body[i + 1..i + 1 + close], i + 1 + close + 1)
        } else {
            let end = body[i..]
                .find(['|', ')', '.', '[', ']', '(', '"', '{', '}'])
                .map_or(b.len(), |e| e + i);
            let alt = &body[i..end];
            if alt.is_empty() {
                return Err(match b.get(end) {
                    None => "unclosed `(`".into(),
                    Some(b'|' | b')') => format!("an empty key in `(…)`; {HINT}"),
                    Some(_) => HINT.into(),
                });
            }
            if alt.contains(char::is_whitespace) {
                return Err(format!("a space in {alt:?} in `(…)`; {HINT}"));
            }
            (alt, end)
        };
        alts.push(alt.to_string());
        match b.get(next) {
            Some(b'|') => i = next + 1,
            // One key is no choice: `(legacy)` is more likely a key that starts with `(` (which
            // paths read as such before unions existed) than a union; say how to write either.
            Some(b')') if alts.len() < 2 => {
                return Err(format!(
                    "`({})` names one key: a union lists at least two (`(a|b)`); a key that starts with `(` is written `[\"({})\"]`",
                    alts.join(""),
                    alts.join("")
                ))
            }
            Some(b')') => return Ok((alts, next + 1)),
            None => return Err("unclosed `(`".into()),
            Some(_) => return Err(HINT.into()),
        }
    }
}
