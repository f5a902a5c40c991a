//! The fast path of [`super::need::decode`]: a hand-written reader for the common shape of a
//! message, building [`Node`]s only for what the [`Need`] asks for and skipping the rest without
//! serde's per-member visitor calls.
//!
//! It guarantees one thing: when it returns `Some(node)`, the serde_json projected decode would
//! return exactly `Ok(node)`. Anything it is not certain about — every syntax error, nesting
//! deeper than [`MAX_DEPTH`], an exponent or more than 15 significant digits in a number that is
//! read, `-0`, an escaped key, a surrogate `\u` escape in a string that is read — makes it
//! return `None`, and the caller decodes with serde_json, which then gives its own result or
//! error message. So errors and edge cases keep serde_json's behaviour by construction; only
//! well-formed, ordinary messages take this path (nearly all of them).

use super::doc::{Builder, Doc, Node};
use super::need::Need;
use crate::mcm::json::next_escape;
use std::borrow::Cow;

/// Deeper messages go to serde_json (its limit for read subtrees is 128; skipped ones have none).
const MAX_DEPTH: u32 = 64;

/// Powers of ten that are exact in `f64`, for numbers with up to 15 significant digits.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Decodes `text` keeping what `need` asks for; `None` means "let serde_json decide".
pub fn decode<'a>(text: &'a str, need: &'a Need) -> Option<Doc<'a>> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
        out: Builder::with_capacity(NODES),
    };
    r.ws();
    if r.peek()? != b'{' {
        return None;
    }
    let root = r.value(need, 0)?;
    r.ws();
    (r.i == r.b.len()).then(|| r.out.finish(root))
}

/// Room for this many nodes from the start: a typical commerce event's projection fits, so its
/// node vector is allocated once.
const NODES: usize = 64;

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    out: Builder<'a>,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// JSON whitespace, as serde_json accepts it.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
            self.spaces();
        }
    }

    /// Skips a run of spaces eight at a time: pretty-printed messages indent every member.
    fn spaces(&mut self) {
        const SPACES: u64 = 0x2020_2020_2020_2020;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let other = u64::from_le_bytes(word) ^ SPACES;
            if other != 0 {
                // The lowest non-zero byte (little-endian: the first) is the first non-space.
                self.i += (other.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A value that is read (objects projected by `need`).
    fn value(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        self.ws();
        Some(match self.peek()? {
            b'{' if need.keeps_all() => self.members(need, depth + 1)?,
            b'{' => self.slots(need, depth + 1)?,
            b'[' => self.items(need, depth + 1)?,
            b'"' => self.string()?,
            b'-' | b'0'..=b'9' => self.number()?,
            b't' => {
                self.literal(b"true")?;
                Node::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Node::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Node::Null
            }
            _ => return None,
        })
    }

    /// The object starting at `{`, read whole (`need` keeps everything).
    fn members(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        let mark = self.out.mark();
        self.object(depth, |r, key| {
            let v = r.value(need, depth)?;
            r.out.push(Node::Str(Cow::Borrowed(key)));
            r.out.push(v);
            Some(())
        })?;
        Some(self.out.close_obj(mark))
    }

    /// The object starting at `{`, projected: one slot per needed key in the need's order (see
    /// `Node::Proj`); the other members are skipped.
    fn slots(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        let start = self.out.open_proj(need);
        self.object(depth, |r, key| match need.child_at(key) {
            Some((i, c)) => {
                let v = r.value(c, depth)?;
                r.out.set(start + i, v);
                Some(())
            }
            None => r.skip_value(),
        })?;
        Some(Node::Proj { need, start })
    }

    /// Walks the object starting at `{`: its braces, colons and commas, calling `member` with
    /// each key when the reader stands on that member's value (which `member` must consume).
    fn object(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1; // `{`
        self.ws();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.key()?;
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            member(self, key)?;
            self.ws();
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The array starting at `[`, each element decoded with the array's own need.
    fn items(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1; // `[`
        let mark = self.out.mark();
        self.ws();
        if !self.eat(b']') {
            loop {
                let v = self.value(need, depth)?;
                self.out.push(v);
                self.ws();
                match self.next()? {
                    b',' => {}
                    b']' => break,
                    _ => return None,
                }
            }
        }
        Some(self.out.close_arr(mark))
    }

    /// An object key without escapes (escaped keys are rare: serde_json handles them).
    fn key(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let end = next_escape(self.b, start)?;
        if *self.b.get(end)? != b'"' {
            return None;
        }
        self.i = end + 1;
        self.s.get(start..end)
    }

    /// A string that is read: borrowed from the message unless it has escapes.
    fn string(&mut self) -> Option<Node<'a>> {
        self.i += 1; // `"`
        let start = self.i;
        let mut end = next_escape(self.b, start)?;
        match *self.b.get(end)? {
            b'"' => {
                self.i = end + 1;
                return Some(Node::Str(Cow::Borrowed(self.s.get(start..end)?)));
            }
            b'\\' => {}
            _ => return None, // a raw control character: serde_json's error
        }
        let mut out = String::with_capacity(end - start + 16);
        let mut run = start;
        loop {
            out.push_str(self.s.get(run..end)?);
            match *self.b.get(end)? {
                b'"' => {
                    self.i = end + 1;
                    return Some(Node::Str(Cow::Owned(out)));
                }
                b'\\' => {}
                _ => return None,
            }
            let (c, len) = self.escape(end + 1)?;
            out.push(c);
            run = end + 1 + len;
            end = next_escape(self.b, run)?;
        }
    }

    /// The escape whose letter is at `at`: the character and how many bytes it took. Surrogate
    /// `\u` escapes (pairs, and serde_json's errors for lone ones) are left to serde_json.
    fn escape(&self, at: usize) -> Option<(char, usize)> {
        Some(match *self.b.get(at)? {
            b'"' => ('"', 1),
            b'\\' => ('\\', 1),
            b'/' => ('/', 1),
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => (char::from_u32(self.hex4(at + 1)?)?, 5),
            _ => return None,
        })
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.s.get(at..at + 4)?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// A number that is read. Only the forms whose value is certain to equal serde_json's:
    /// integers of up to 18 digits (not `-0`, which serde_json makes a float), and decimals
    /// without an exponent of up to 15 significant digits, where `digits / 10^k` is one correctly
    /// rounded division — exactly what serde_json computes for them.
    fn number(&mut self) -> Option<Node<'a>> {
        let neg = self.eat(b'-');
        let int_start = self.i;
        self.int_part()?;
        let int_digits = self.i - int_start;
        let mut frac_digits = 0;
        if self.eat(b'.') {
            frac_digits = self.digits();
            if frac_digits == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        let limit = if frac_digits == 0 { 18 } else { 15 };
        if int_digits + frac_digits > limit {
            return None;
        }
        let mut sig: u64 = 0;
        for &c in self.b.get(int_start..self.i)? {
            if c != b'.' {
                sig = sig * 10 + u64::from(c - b'0');
            }
        }
        if frac_digits == 0 {
            // At most 18 digits: below 10^18 < i64::MAX.
            let v = i64::try_from(sig).ok()?;
            return match (neg, v) {
                (true, 0) => None,
                (true, v) => Some(Node::Int(-v)),
                (false, v) => Some(Node::Int(v)),
            };
        }
        // At most 15 digits: `sig` and the power of ten are exact in f64.
        let f = sig as f64 / POW10.get(frac_digits)?;
        Some(Node::Float(if neg { -f } else { f }))
    }

    /// `0` or a digit run not starting with `0` (JSON has no leading zeros).
    fn int_part(&mut self) -> Option<()> {
        match self.peek()? {
            b'0' => {
                self.i += 1;
                Some(())
            }
            b'1'..=b'9' => {
                self.digits();
                Some(())
            }
            _ => None,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// Syntax-checks and skips one value without building it. Iterative, like serde_json's own
    /// skipping, with the open containers as a bit stack (1 = object).
    fn skip_value(&mut self) -> Option<()> {
        let mut stack: u64 = 0;
        let mut depth: u32 = 0;
        'value: loop {
            self.ws();
            match self.peek()? {
                c @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let is_obj = c == b'{';
                    if !self.eat(if is_obj { b'}' } else { b']' }) {
                        if depth == MAX_DEPTH {
                            return None;
                        }
                        depth += 1;
                        stack = (stack << 1) | u64::from(is_obj);
                        if is_obj {
                            self.skip_key()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => self.skip_string()?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return None,
            }
            // A value is complete: close containers until one continues.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let in_obj = stack & 1 == 1;
                match self.next()? {
                    b',' => {
                        if in_obj {
                            self.ws();
                            self.skip_key()?;
                        }
                        continue 'value;
                    }
                    b'}' if in_obj => {}
                    b']' if !in_obj => {}
                    _ => return None,
                }
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    /// `"key"` then `:`.
    fn skip_key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.skip_string()?;
        self.ws();
        self.eat(b':').then_some(())
    }

    /// A string that is not read: checked as serde_json checks it (escapes well-formed, no raw
    /// control characters; `\u` escapes need four hex digits but are not otherwise judged).
    fn skip_string(&mut self) -> Option<()> {
        let mut at = self.i + 1;
        loop {
            let end = next_escape(self.b, at)?;
            match *self.b.get(end)? {
                b'"' => {
                    self.i = end + 1;
                    return Some(());
                }
                b'\\' => {}
                _ => return None,
            }
            at = match *self.b.get(end + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => end + 2,
                b'u' => {
                    self.hex4(end + 2)?;
                    end + 6
                }
                _ => return None,
            };
        }
    }

    /// A number that is not read: only its syntax matters (any size, exponents allowed).
    fn skip_number(&mut self) -> Option<()> {
        self.eat(b'-');
        self.int_part()?;
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::need;
    use proptest::prelude::*;

    fn serde_projected<'a>(text: &'a str, need: &'a Need) -> Option<Doc<'a>> {
        need::decode_with_serde(text, need).ok()
    }

    fn needs() -> Vec<Need> {
        let mut projected = Need::default();
        projected.keep(&["a", "b"]);
        projected.keep(&["list", "id"]);
        projected.keep(&["s"]);
        projected.keep(&["n"]);
        projected.at(&["o"]);
        vec![Need::everything(), projected, Need::default()]
    }

    /// Every case where the fast path answers, it answers as serde_json does.
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        for need in needs() {
            if let Some(fast) = decode(text, &need) {
                prop_assert_eq!(Some(fast), serde_projected(text, &need), "{}", text);
            }
        }
        Ok(())
    }

    #[test]
    fn ordinary_messages_take_the_fast_path_and_match_serde_json() {
        let texts = [
            r#"{"a":{"b":{"deep":[1,{"x":2}]},"c":3},"list":[{"id":1,"n":"x"},{"n":"y"},5]}"#,
            r#" { "s" : "plain" , "n" : -12.50 , "o" : {"k": [true, false, null]}, "e": "a\"b\\c\/\u00e9\n" } "#,
            r#"{"s":"esc\"aped \u00e9 \t","n":[0,-1,123456789012345678,0.5,-0.0,99.99]}"#,
            r#"{}"#,
            r#"{"list":[],"a":{},"s":"","skip":[[],{},[{"x":[1,-2,0.1]}]]}"#,
        ];
        for text in texts {
            for need in needs() {
                let fast = decode(text, &need);
                assert!(fast.is_some(), "fast path declined {text}");
                assert_eq!(fast, serde_projected(text, &need), "{text}");
            }
        }
        // Numbers it would not read are only syntax-checked, as serde_json skips them.
        let text = r#"{"a":{"b":1},"z":{"big":1e999999,"x":[-2E-3,0.1e+2,12345678901234567890]}}"#;
        let projected = &needs()[1];
        let fast = decode(text, projected);
        assert!(fast.is_some());
        assert_eq!(fast, serde_projected(text, projected));
    }

    #[test]
    fn unusual_or_invalid_input_is_left_to_serde_json() {
        for text in [
            r#"[1]"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"n":1e3}"#,
            r#"{"n":-0}"#,
            r#"{"n":1234567890123456789}"#,
            r#"{"n":0.1234567890123456}"#,
            r#"{"n":01}"#,
            r#"{"skip":01}"#,
            r#"{"skip":1.}"#,
            r#"{"skip":-}"#,
            r#"{"s":"\ud83d\ude00"}"#,
            r#"{"skip":"\x"}"#,
            r#"{"skip":"\u12G4"}"#,
            "{\"skip\":\"tab\there\"}",
            r#"{"k\u0065y":1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"skip":[1,2}"#,
            r#"{"skip":{"x" 1}}"#,
            r#"{"skip":tru}"#,
        ] {
            // Read whole, every one of these is declined; projected, only where it matters,
            // and then with serde_json's answer.
            assert_eq!(decode(text, &Need::everything()), None, "{text}");
            for need in needs() {
                if let Some(fast) = decode(text, &need) {
                    assert_eq!(Some(fast), serde_projected(text, &need), "{text}");
                }
            }
        }
        let deep = format!("{{\"s\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(decode(&deep, &Need::everything()), None);
        assert_eq!(decode(&deep, &Need::default()), None);
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\"a\"",
            "\"b\"",
            "\"s\"",
            "\"n\"",
            "\"o\"",
            "\"list\"",
            "\"id\"",
            "\"x\\\"y\"",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            "\"\t\"",
            "0",
            "-0",
            "1",
            "-7",
            "2.5",
            "1e3",
            "01",
            "1.",
            "true",
            "false",
            "null",
            "nul",
        ])
    }

    proptest! {
        #[test]
        fn never_disagrees_with_serde_json_on_token_soup(
            toks in proptest::collection::vec(token(), 0..40)
        ) {
            let text = format!("{{{}", toks.concat());
            agrees(&text)?;
        }

        #[test]
        fn never_disagrees_with_serde_json_on_mutated_messages(
            cut in 0usize..200, byte in any::<u8>()
        ) {
            let base = r#"{"a":{"b":[1,2.5,"x"]},"list":[{"id":"q","n":-3}],"s":"t\"u","o":{"p":null},"n":true}"#;
            let mut bytes = base.as_bytes().to_vec();
            let at = cut % bytes.len();
            bytes[at] = byte;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agrees(text)?;
            }
            agrees(&base[..at])?;
        }
    }
}
