//! The fast path of [`super::need::decode`]: a hand-written reader for the common shape of a
//! message, building [`Node`]s only for what the [`Need`] asks for and skipping the rest without
//! serde's per-member visitor calls. This file walks the structure (objects, arrays, which
//! members are read); `cursor.rs` reads the tokens.
//!
//! It guarantees one thing: when it returns `Some(doc)`, the serde_json projected decode would
//! return exactly `Ok(doc)`. Anything it is not certain about — every syntax error, nesting
//! deeper than [`MAX_DEPTH`], an exponent or more than 15 significant digits in a number that is
//! read, `-0`, an escaped key, a surrogate `\u` escape in a string that is read — makes it
//! return `None`, and the caller decodes with serde_json, which then gives its own result or
//! error message. So errors and edge cases keep serde_json's behaviour by construction; only
//! well-formed, ordinary messages take this path (nearly all of them).

use super::build::{Builder, Place};
use super::cursor::{Cursor, Key, MAX_DEPTH};
use super::doc::{Doc, Node};
use super::need::Need;
use std::borrow::Cow;

/// Decodes `text` keeping what `need` asks for; `None` means "let serde_json decide".
pub fn decode<'a>(text: &'a str, need: &'a Need) -> Option<Doc<'a>> {
    let mut r = Reader {
        c: Cursor::new(text),
        out: Builder::with_capacity(NODES),
    };
    r.c.ws();
    if r.c.peek()? != b'{' {
        return None;
    }
    let root = r.container(need, 0)?;
    r.c.ws();
    r.c.at_end().then(|| r.out.finish(root))
}

/// Room for this many nodes from the start: a typical commerce event's projection fits, so its
/// node vector is allocated once.
const NODES: usize = 64;

struct Reader<'a> {
    c: Cursor<'a>,
    out: Builder<'a>,
}

impl<'a> Reader<'a> {
    /// A value that is read, written into the builder's node `at` (`Node::Null` until then).
    /// Scalars are read straight into it, inlined into the member and element loops; only
    /// containers take a call (and recurse), and are stored when they close. Writing in place
    /// matters: returning a `Node` through memory and copying it costs more than reading it.
    #[inline(always)]
    fn value(&mut self, need: &'a Need, depth: u32, at: Place) -> Option<()> {
        self.c.ws();
        match self.c.peek()? {
            b'{' | b'[' => {
                let v = self.container(need, depth)?;
                *self.out.place(at)? = v;
                Some(())
            }
            _ => self.c.scalar(self.out.place(at)?),
        }
    }

    /// The object or array starting here.
    #[inline]
    fn container(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        match self.c.peek()? {
            b'{' if need.keeps_all() => self.members(need, depth + 1),
            b'{' => self.slots(need, depth + 1),
            _ => self.items(need, depth + 1),
        }
    }

    /// The object starting at `{`, read whole (`need` keeps everything).
    #[inline(never)]
    fn members(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        let mark = self.out.mark();
        self.object(depth, |r, key| {
            let name = r.c.key_text(&key)?;
            r.out.push(Node::Str(Cow::Borrowed(name)));
            let at = r.out.push_place();
            r.value(need, depth, at)
        })?;
        Some(self.out.close_obj(mark))
    }

    /// The object starting at `{`, projected: one slot per needed key in the need's order (see
    /// `Node::Proj`); the other members are skipped.
    #[inline(never)]
    fn slots(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        let start = self.out.open_proj(need);
        self.object(depth, |r, key| {
            // The key's bytes are only looked at for keys longer than a head (see `keys.rs`).
            match need.child_by_head(&key.head, || r.c.key_bytes(&key)) {
                Some((i, c)) => r.value(c, depth, Place::Node(start + i)),
                None => r.c.skip(),
            }
        })?;
        Some(Node::Proj { need, start })
    }

    /// Walks the object starting at `{`: its braces, colons and commas, calling `member` with
    /// each key when the reader stands on that member's value, which `member` must consume.
    #[inline(always)]
    fn object(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, Key) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.c.next(); // `{`
        self.c.ws();
        if self.c.eat(b'}') {
            return Some(());
        }
        loop {
            self.c.ws();
            let key = self.c.key()?;
            // The colon nearly always follows the key directly.
            if !self.c.eat(b':') {
                self.c.ws();
                if !self.c.eat(b':') {
                    return None;
                }
            }
            member(self, key)?;
            if !self.c.separator(b'}')? {
                return Some(());
            }
        }
    }

    /// The array starting at `[`, each element decoded with the array's own need.
    #[inline(never)]
    fn items(&mut self, need: &'a Need, depth: u32) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.c.next(); // `[`
        let mark = self.out.mark();
        self.c.ws();
        if !self.c.eat(b']') {
            loop {
                let at = self.out.push_place();
                self.value(need, depth, at)?;
                if !self.c.separator(b']')? {
                    break;
                }
            }
        }
        Some(self.out.close_arr(mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::keys::KeyHead;
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
        // Keys around a key head's 8- and 16-byte words, two sharing a head.
        projected.keep(&["products"]);
        projected.keep(&["product_id"]);
        projected.keep(&["abcdefghijklmnop"]);
        projected.keep(&["abcdefghijklmnopq"]);
        projected.keep(&["abcdefghijklmnopr"]);
        vec![Need::everything(), projected, Need::default()]
    }

    #[test]
    fn key_heads_match_byte_by_byte_heads_at_every_length_and_position() {
        for len in 0..24 {
            let key: String = ('a'..='z').cycle().take(len).collect();
            for tail in ["\":1}", "\":1}            "] {
                let text = format!("\"{key}{tail}");
                let mut c = Cursor::new(&text);
                let k = c.key().expect("a plain key");
                assert_eq!(c.key_text(&k), Some(key.as_str()));
                assert_eq!(k.head, KeyHead::of(key.as_bytes()), "{text}");
                assert_eq!(c.peek(), Some(b':'));
            }
        }
        let mut c = Cursor::new("\"k\\u0065y\":1}");
        assert!(c.key().is_none(), "escaped keys are left to serde_json");
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
            "\"products\"",
            "\"product_id\"",
            "\"abcdefghijklmnopq\"",
            "\"abcdefghijklmnopr\"",
            "\"abcdefghijklmnopqrstuvwxyz\"",
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
        fn numbers_read_as_serde_json_reads_them(
            neg in any::<bool>(),
            int in "0|[1-9][0-9]{0,20}",
            frac in proptest::option::of("[0-9]{0,18}"),
            exp in proptest::option::of("[eE][+-]?[0-9]{0,3}"),
        ) {
            let num = format!(
                "{}{int}{}{}",
                if neg { "-" } else { "" },
                frac.map(|f| format!(".{f}")).unwrap_or_default(),
                exp.unwrap_or_default()
            );
            for text in [format!(r#"{{"n":{num}}}"#), format!(r#"{{"n":[{num},{num}],"z":{num}}}"#)] {
                agrees(&text)?;
            }
            // Ordinary ones are read here, not left to serde_json.
            let ordinary = format!(r#"{{"n":{}}}"#, &num[..num.len().min(10)]);
            if !ordinary.contains(['e', 'E']) && !ordinary.ends_with(".}") && ordinary != r#"{"n":-0}"# {
                for need in needs() {
                    prop_assert!(decode(&ordinary, &need).is_some(), "{}", ordinary);
                }
            }
        }

        #[test]
        fn never_disagrees_with_serde_json_on_mutated_messages(
            cut in 0usize..200, byte in any::<u8>()
        ) {
            let base = r#"{"a":{"b":[1,2.5,"x"]},"list":[{"id":"q","n":-3}],"s":"t\"u","o":{"p":null},"n":true,"products":[1],"abcdefghijklmnopr":2,"abcdefghijklmnopq":"x","product_id":"p"}"#;
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
