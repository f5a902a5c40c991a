//! The byte level of the projected reader (`scan.rs`): whitespace, keys, scalars, and
//! skipping what is not read — each exactly as strict as serde_json, or declining (`None`).
//!
//! Every method works on the message at the cursor's position and either consumes one token
//! (advancing the position) or returns `None`, after which the whole message goes to serde_json:
//! a `None` never has to leave the position meaningful.

use super::doc::Node;
use super::keys::KeyHead;
use crate::mcm::json::{escape_bits, next_escape};
use std::borrow::Cow;

/// Deeper messages go to serde_json (its limit for read subtrees is 128; skipped ones have none).
pub(super) const MAX_DEPTH: u32 = 64;

/// Powers of ten that are exact in `f64`, for numbers with up to 15 significant digits.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// An object key as read: where it lies in the message, and its head.
pub(super) struct Key {
    start: usize,
    end: usize,
    pub(super) head: KeyHead,
}

/// A position in a message.
pub(super) struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            s: text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// True when the whole message has been read.
    pub(super) fn at_end(&self) -> bool {
        self.i == self.b.len()
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(super) fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    pub(super) fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// JSON whitespace, as serde_json accepts it.
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
            // Most gaps are one byte (`": "`, `", "`) or a newline and an indent: only a
            // second space starts the word-at-a-time skip.
            if self.peek() == Some(b' ') {
                self.spaces();
            }
        }
    }

    /// Skips a run of spaces eight at a time: pretty-printed messages indent every member.
    #[inline]
    pub(super) fn spaces(&mut self) {
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

    /// What follows a member or an element: `,` (`Some(true)`: another one comes) or `close`
    /// (`Some(false)`), after any whitespace; anything else is `None`. The separator usually
    /// follows the value directly, so it is looked at before the whitespace skip is.
    #[inline(always)]
    pub(super) fn separator(&mut self, close: u8) -> Option<bool> {
        let mut c = self.peek()?;
        if matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
            self.ws();
            c = self.peek()?;
        }
        self.i += 1;
        match c {
            b',' => Some(true),
            _ if c == close => Some(false),
            _ => None,
        }
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A scalar that is read, written into `slot`: a string, number, boolean or `null`.
    #[inline(always)]
    pub(super) fn scalar(&mut self, slot: &mut Node<'a>) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(slot),
            b'-' | b'0'..=b'9' => self.number(slot),
            b't' => {
                self.literal(b"true")?;
                *slot = Node::Bool(true);
                Some(())
            }
            b'f' => {
                self.literal(b"false")?;
                *slot = Node::Bool(false);
                Some(())
            }
            b'n' => {
                self.literal(b"null")?;
                *slot = Node::Null;
                Some(())
            }
            _ => None,
        }
    }

    /// An object key without escapes (escaped keys are rare: serde_json handles them), and its
    /// head. Keys are short, so the first sixteen bytes are loaded as two words up front: they
    /// find the closing quote (the escape test of `next_escape`) and, masked to the key's
    /// length, are its [`KeyHead`] — no second pass over the key to match it.
    #[inline(always)]
    pub(super) fn key(&mut self) -> Option<Key> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        // "Sixteen bytes left?" as the only test (no overflow check on `start + 16`).
        let chunk = self
            .b
            .get(start..)
            .and_then(<[u8]>::first_chunk::<{ KeyHead::BYTES }>);
        let (end, head) = match chunk {
            Some(chunk) => {
                let (lo, hi) = chunk.split_at(8);
                let word = |half: &[u8]| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(half);
                    u64::from_le_bytes(w)
                };
                let (w0, w1) = (word(lo), word(hi));
                // The bytes below a word's first escape byte (its lowest flagged high bit).
                let below = |hit: u64| (hit & hit.wrapping_neg()).wrapping_sub(1) >> 7;
                let (h0, h1) = (escape_bits(w0), escape_bits(w1));
                if h0 != 0 {
                    let len = (h0.trailing_zeros() / 8) as usize;
                    let words = [w0 & below(h0), 0];
                    (start + len, KeyHead { len, words })
                } else if h1 != 0 {
                    let len = 8 + (h1.trailing_zeros() / 8) as usize;
                    let words = [w0, w1 & below(h1)];
                    (start + len, KeyHead { len, words })
                } else {
                    let end = next_escape(self.b, start + KeyHead::BYTES)?;
                    let words = [w0, w1];
                    (
                        end,
                        KeyHead {
                            len: end - start,
                            words,
                        },
                    )
                }
            }
            // Near the end of the message: the plain way.
            None => {
                let end = next_escape(self.b, start)?;
                (end, KeyHead::of(self.b.get(start..end)?))
            }
        };
        if *self.b.get(end)? != b'"' {
            return None;
        }
        self.i = end + 1;
        Some(Key { start, end, head })
    }

    /// The bytes of a key read by [`Cursor::key`].
    #[inline]
    pub(super) fn key_bytes(&self, k: &Key) -> Option<&'a [u8]> {
        self.b.get(k.start..k.end)
    }

    /// The text of a key read by [`Cursor::key`].
    pub(super) fn key_text(&self, k: &Key) -> Option<&'a str> {
        self.s.get(k.start..k.end)
    }

    /// A string that is read: borrowed from the message unless it has escapes (then decoded,
    /// out of line: they are rare in what rules read).
    #[inline(always)]
    fn string(&mut self, slot: &mut Node<'a>) -> Option<()> {
        let start = self.i + 1; // after `"`
        let end = self.escape_at(start)?;
        if *self.b.get(end)? != b'"' {
            return self.escaped_string(start, end, slot);
        }
        self.i = end + 1;
        // Two `split_at_checked`s rather than `get(start..end)`: the same boundary checks,
        // inlined instead of a call.
        let (head, _) = self.s.split_at_checked(end)?;
        let (_, text) = head.split_at_checked(start)?;
        *slot = Node::Str(Cow::Borrowed(text));
        Some(())
    }

    /// The first byte at or after `from` that ends a string or needs a closer look (`"`, `\\`,
    /// a control character): [`next_escape`], inlined for the reader's strings, which lie inside
    /// the message so whole words are there to read (the message's last few bytes aside).
    #[inline(always)]
    fn escape_at(&self, from: usize) -> Option<usize> {
        let mut at = from;
        // Sixteen bytes per bounds check while they last (values are mostly longer than
        // eight bytes), then eight, then the last few bytes one by one.
        while let Some(chunk) = self.b.get(at..at + 16) {
            let (lo, hi) = chunk.split_at(8);
            for (half, offset) in [(lo, 0), (hi, 8)] {
                let mut w = [0u8; 8];
                w.copy_from_slice(half);
                let hit = escape_bits(u64::from_le_bytes(w));
                if hit != 0 {
                    return Some(at + offset + (hit.trailing_zeros() / 8) as usize);
                }
            }
            at += 16;
        }
        if let Some(chunk) = self.b.get(at..at + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let hit = escape_bits(u64::from_le_bytes(w));
            if hit != 0 {
                return Some(at + (hit.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        next_escape(self.b, at)
    }

    /// A string from `start` whose first escape (or raw control character) is at `end`.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, mut end: usize, slot: &mut Node<'a>) -> Option<()> {
        if *self.b.get(end)? != b'\\' {
            return None; // a raw control character: serde_json's error
        }
        let mut out = String::with_capacity(end - start + 16);
        let mut run = start;
        loop {
            out.push_str(self.s.get(run..end)?);
            match *self.b.get(end)? {
                b'"' => {
                    self.i = end + 1;
                    *slot = Node::Str(Cow::Owned(out));
                    return Some(());
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
    #[inline(always)]
    pub(super) fn number(&mut self, slot: &mut Node<'a>) -> Option<()> {
        let neg = self.eat(b'-');
        // One pass: the significand accumulates as the digits are read (wrapping past 19
        // digits, but such numbers are declined below).
        let mut sig: u64 = 0;
        // `0` or a digit run not starting with `0` (JSON has no leading zeros).
        let int_digits = match self.peek()? {
            b'0' => {
                self.i += 1;
                1
            }
            b'1'..=b'9' => self.digits_into(&mut sig),
            _ => return None,
        };
        let mut frac_digits = 0;
        if self.eat(b'.') {
            frac_digits = self.digits_into(&mut sig);
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
        if frac_digits == 0 {
            // At most 18 digits: below 10^18 < i64::MAX.
            let v = i64::try_from(sig).ok()?;
            *slot = match (neg, v) {
                (true, 0) => return None,
                (true, v) => Node::Int(-v),
                (false, v) => Node::Int(v),
            };
            return Some(());
        }
        // At most 15 digits: `sig` and the power of ten are exact in f64.
        let f = sig as f64 / POW10.get(frac_digits)?;
        *slot = Node::Float(if neg { -f } else { f });
        Some(())
    }

    /// A run of digits, accumulated into `sig` (wrapping; see [`Cursor::number`]): how many.
    #[inline(always)]
    fn digits_into(&mut self, sig: &mut u64) -> usize {
        let start = self.i;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            *sig = sig.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        self.i - start
    }

    /// `0` or a digit run not starting with `0` (JSON has no leading zeros).
    pub(super) fn int_part(&mut self) -> Option<()> {
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

    pub(super) fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// Skips a member that is not read: strings and numbers (most of them) inline, anything
    /// else by [`Cursor::skip_value`].
    #[inline(always)]
    pub(super) fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => self.skip_value(),
        }
    }

    /// Syntax-checks and skips one value without building it. Iterative, like serde_json's own
    /// skipping, with the open containers as a bit stack (1 = object).
    pub(super) fn skip_value(&mut self) -> Option<()> {
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
    pub(super) fn skip_key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.skip_string()?;
        self.ws();
        self.eat(b':').then_some(())
    }

    /// A string that is not read: checked as serde_json checks it (escapes well-formed, no raw
    /// control characters; `\u` escapes need four hex digits but are not otherwise judged).
    #[inline(always)]
    pub(super) fn skip_string(&mut self) -> Option<()> {
        let end = self.escape_at(self.i + 1)?;
        if *self.b.get(end)? == b'"' {
            self.i = end + 1;
            return Some(());
        }
        self.skip_escaped_string(end)
    }

    /// The rest of a skipped string whose first escape (or raw control character) is at `end`.
    #[inline(never)]
    fn skip_escaped_string(&mut self, mut end: usize) -> Option<()> {
        loop {
            match *self.b.get(end)? {
                b'"' => {
                    self.i = end + 1;
                    return Some(());
                }
                b'\\' => {}
                _ => return None,
            }
            let at = match *self.b.get(end + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => end + 2,
                b'u' => {
                    self.hex4(end + 2)?;
                    end + 6
                }
                _ => return None,
            };
            end = self.escape_at(at)?;
        }
    }

    /// A number that is not read: only its syntax matters (any size, exponents allowed).
    pub(super) fn skip_number(&mut self) -> Option<()> {
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
