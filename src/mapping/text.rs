//! The text of an MCM string field as the mapping builds it: borrowed from the message or the plan
//! wherever no transform made new text, and marked when it is known to need no JSON escaping, so
//! the request body is written without scanning it again.
//!
//! Only one kind of text is marked: a string borrowed from the message as the decoder left it.
//! Both decoders borrow a string only when it has no escape sequence, and JSON strings cannot
//! hold raw control characters, so such text has no `"`, `\` or control character — exactly the
//! bytes the writer would escape. Everything else (decoded escapes, constants, transform output,
//! user-agent fields) is scanned as before.

use crate::mcm::json::WireText;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text<'a> {
    text: Cow<'a, str>,
    plain: bool,
}

impl<'a> Text<'a> {
    /// Text of unknown content (it will be scanned for escapes).
    pub fn new(text: Cow<'a, str>) -> Text<'a> {
        Text { text, plain: false }
    }

    /// A string of a decoded message ([`super::doc::Node::Str`]): marked when the decoder
    /// borrowed it, which it does only for strings without escapes (see the module doc).
    pub fn from_message(s: &'a Cow<'a, str>) -> Text<'a> {
        match s {
            Cow::Borrowed(b) => Text {
                text: Cow::Borrowed(b),
                plain: true,
            },
            Cow::Owned(o) => Text::new(Cow::Borrowed(o)),
        }
    }

    /// One of the MCM currency codes (three upper-case letters).
    pub fn currency_code(code: &'static str) -> Text<'a> {
        Text {
            text: Cow::Borrowed(code),
            plain: true,
        }
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl WireText for Text<'_> {
    fn is_plain(&self) -> bool {
        self.plain
    }
}

impl From<Text<'_>> for String {
    fn from(t: Text<'_>) -> String {
        t.text.into_owned()
    }
}
