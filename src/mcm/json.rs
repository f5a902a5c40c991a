//! The wire JSON of an [`McmEvent`], written by hand: byte-for-byte what `serde_json` writes for
//! the derived `Serialize` (same field order, absent fields and empty `items` omitted, the same
//! string escapes, numbers through serde_json's own formatter), at a fraction of the cost.
//!
//! Serialisation is on every message's path, and the derive spends most of its time in generic
//! per-byte string escaping and per-field `io::Write` calls; here a field is a few `Vec` pushes.
//! The derive stays for everything else (`to_value`, pretty output, the sandbox); a property
//! test in this file checks that both agree on arbitrary events.

use super::event::{DeviceOf, ItemOf, McmEventOf, MoneyOf};
use serde_json::ser::{CompactFormatter, Formatter};
use std::borrow::Cow;

/// The text of a string field, as the writer needs it.
pub trait WireText: AsRef<str> {
    /// True only when no byte of the text needs escaping: it is then copied without scanning
    /// (the mapping knows this of text borrowed from a decoded message).
    fn is_plain(&self) -> bool {
        false
    }
}

impl WireText for String {}
impl WireText for Cow<'_, str> {}
impl WireText for &str {}

/// A member name as written before its value: `k!("id")` is `"id":`, one copy per member.
macro_rules! k {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}

/// Appends the wire JSON of `e` to `out`.
pub fn write_event<S: WireText>(out: &mut Vec<u8>, e: &McmEventOf<S>) {
    let mut o = Obj::open(out);
    o.opt_str(k!("id"), e.id.as_ref());
    // Enum names are upper-case ASCII words: nothing to escape.
    o.plain(k!("event_type"), e.event_type.as_str());
    o.i64(k!("timestamp"), e.timestamp);
    o.plain(k!("channel_type"), e.channel_type.as_str());
    o.opt_str(k!("user_id"), e.user_id.as_ref());
    if let Some(d) = &e.device {
        o.key(k!("device"));
        write_device(o.out, d);
    }
    o.opt_str(k!("custom_id"), e.custom_id.as_ref());
    o.opt_str(k!("session_id"), e.session_id.as_ref());
    if !e.items.is_empty() {
        o.key(k!("items"));
        o.out.push(b'[');
        for (i, item) in e.items.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            write_item(o.out, item);
        }
        o.out.push(b']');
    }
    o.money(k!("revenue"), e.revenue.as_ref());
    o.opt_str(k!("search_query"), e.search_query.as_ref());
    o.opt_str(k!("page_id"), e.page_id.as_ref());
    o.opt_str(k!("referrer_page_id"), e.referrer_page_id.as_ref());
    o.money(k!("shipping_charge"), e.shipping_charge.as_ref());
    o.opt_str(k!("decision_track_id"), e.decision_track_id.as_ref());
    o.opt_str(k!("domain"), e.domain.as_ref());
    o.opt_str(
        k!("personalization_mode"),
        e.personalization_mode.map(|p| p.as_str()).as_ref(),
    );
    o.close();
}

fn write_device<S: WireText>(out: &mut Vec<u8>, d: &DeviceOf<S>) {
    let mut o = Obj::open(out);
    o.opt_str(k!("os"), d.os.as_ref());
    o.opt_str(k!("os_version"), d.os_version.as_ref());
    o.opt_str(k!("persistent_id"), d.persistent_id.as_ref());
    o.opt_str(k!("advertising_id"), d.advertising_id.as_ref());
    o.opt_str(k!("unique_device_id"), d.unique_device_id.as_ref());
    o.opt_str(k!("model"), d.model.as_ref());
    o.opt_str(k!("ua"), d.ua.as_ref());
    o.opt_str(k!("language"), d.language.as_ref());
    o.opt_str(k!("ip"), d.ip.as_ref());
    o.close();
}

fn write_item<S: WireText>(out: &mut Vec<u8>, it: &ItemOf<S>) {
    let mut o = Obj::open(out);
    o.opt_str(k!("id"), it.id.as_ref());
    o.opt_str(k!("item_group_id"), it.item_group_id.as_ref());
    o.money(k!("price"), it.price.as_ref());
    if let Some(q) = it.quantity {
        o.i64(k!("quantity"), q);
    }
    o.opt_str(k!("seller_id"), it.seller_id.as_ref());
    o.money(k!("price_seller"), it.price_seller.as_ref());
    o.close();
}

fn write_money<S: WireText>(out: &mut Vec<u8>, m: &MoneyOf<S>) {
    let mut o = Obj::open(out);
    o.opt_str(k!("currency"), m.currency.as_ref());
    if let Some(a) = m.amount {
        o.key(k!("amount"));
        write_f64(o.out, a);
    }
    o.close();
}

/// An object being written: tracks whether a comma is due before the next member.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

// The member methods are inlined so that every `k!` name is a constant of known length at its
// call site: its copy becomes a few stores instead of a `memcpy` call per member.
impl<'o> Obj<'o> {
    #[inline(always)]
    fn open(out: &'o mut Vec<u8>) -> Obj<'o> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes a member name made by [`k!`] (fixed ASCII names that need no escaping).
    #[inline(always)]
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(key.as_bytes());
    }

    /// A member whose text needs no escaping (see [`write_plain`]).
    #[inline(always)]
    fn plain(&mut self, key: &str, v: &str) {
        self.key(key);
        write_plain(self.out, v);
    }

    #[inline(always)]
    fn opt_str<S: WireText>(&mut self, key: &str, v: Option<&S>) {
        if let Some(v) = v {
            self.key(key);
            if v.is_plain() {
                write_plain(self.out, v.as_ref());
            } else {
                write_str(self.out, v.as_ref());
            }
        }
    }

    #[inline(always)]
    fn i64(&mut self, key: &str, v: i64) {
        self.key(key);
        // One digit (the usual quantity) is one byte; the checked conversion is that test.
        if let Ok(digit @ 0..=9) = u8::try_from(v) {
            self.out.push(b'0' + digit);
            return;
        }
        CompactFormatter
            .write_i64(self.out, v)
            .expect("writing to a Vec<u8> cannot fail");
    }

    #[inline(always)]
    fn money<S: WireText>(&mut self, key: &str, m: Option<&MoneyOf<S>>) {
        if let Some(m) = m {
            self.key(key);
            write_money(self.out, m);
        }
    }

    #[inline(always)]
    fn close(self) {
        self.out.push(b'}');
    }
}

/// Floats exactly as serde_json writes them (its own formatter), non-finite ones as `null`.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    // Whole amounts (`25.0`, the usual price or quantity-derived total) are most of the floats
    // an event carries; serde_json's shortest-round-trip formatter writes them in fixed notation
    // as the integer and `.0` below 1e16, which the integer formatter does several times faster.
    // −0.0 is left to the float formatter (it keeps the sign).
    const WHOLE_LIMIT: f64 = 1e15;
    if v.fract() == 0.0 && v.abs() < WHOLE_LIMIT && (v != 0.0 || v.is_sign_positive()) {
        // Whole and below 1e15 in magnitude, so the conversion is exact.
        CompactFormatter
            .write_i64(out, v as i64)
            .expect("writing to a Vec<u8> cannot fail");
        out.extend_from_slice(b".0");
    } else if v.is_finite() {
        CompactFormatter
            .write_f64(out, v)
            .expect("writing to a Vec<u8> cannot fail");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, the short forms `\b \t \n \f \r`, and
/// `\u00XX` (lower-case hex) for the other control characters; everything else verbatim. Values
/// almost never need an escape, so the string is tested as a whole first and then copied at once.
#[inline]
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if has_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    }
}

/// A string known to need no escape ([`WireText::is_plain`]): quoted and copied.
#[inline]
fn write_plain(out: &mut Vec<u8>, s: &str) {
    debug_assert!(
        !has_escape(s.as_bytes()),
        "text marked plain needs escaping: {s:?}"
    );
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// [`write_str`] for a string with at least one byte to escape.
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        let b = bytes[i];
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xF)],
                ]);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// True when some byte of `bytes` must be escaped: eight bytes at a time, the last (partial)
/// eight as one word overlapping bytes already tested (a word is only ever asked "any?", so
/// testing a byte twice changes nothing), and strings under eight bytes as two overlapping
/// four-byte halves.
#[inline]
pub(crate) fn has_escape(bytes: &[u8]) -> bool {
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    let half = |c: &[u8]| {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        u64::from(u32::from_le_bytes(w))
    };
    let n = bytes.len();
    match n {
        0 => false,
        1..=3 => bytes.iter().any(|&b| needs_escape(b)),
        4..=7 => match (bytes.get(..4), bytes.get(n - 4..)) {
            (Some(lo), Some(hi)) => escape_bits(half(lo) | (half(hi) << 32)) != 0,
            _ => bytes.iter().any(|&b| needs_escape(b)),
        },
        _ => {
            let mut chunks = bytes.chunks_exact(8);
            let mut any = 0;
            for c in &mut chunks {
                any |= escape_bits(word(c));
            }
            if !chunks.remainder().is_empty() {
                if let Some(last) = bytes.get(n - 8..) {
                    any |= escape_bits(word(last));
                }
            }
            any != 0
        }
    }
}

/// The index of the first byte at or after `from` that must be escaped. Eight bytes at a time
/// (SWAR): real values (ids, URLs, user agents) almost never contain one, so the common case is
/// a handful of word tests per string instead of a branch per byte. The mapping's JSON reader
/// uses it too: inside a JSON string, exactly these bytes end it or need a closer look.
#[inline]
pub(crate) fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let hit = escape_bits(u64::from_le_bytes(word));
        if hit != 0 {
            // Little-endian: the lowest bit belongs to the first byte. At most 7, so the
            // conversion is exact.
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|i| at + i)
}

/// Eight bytes (little-endian) → the high bit of each byte that must be escaped, and possibly
/// of some bytes after the first such byte, never before it: the lowest set bit marks exactly
/// the first byte to escape (0 when there is none). The classic "has byte less than n" / "has
/// zero byte" tricks: a subtraction only borrows out of a byte that is itself a hit, so a false
/// positive can only sit above a true one (checked against a bytewise scan by
/// `swar_scan_finds_exactly_the_first_escape`).
#[inline]
pub(crate) fn escape_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (w.wrapping_sub(ONES * 0x20) | quote.wrapping_sub(ONES) | backslash.wrapping_sub(ONES))
        & !w
        & HIGH
}

/// Inside a JSON string these bytes end it or start an escape; in output they must be escaped.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcm::event::{
        ChannelType, Device, EventType, Item, McmEvent, Money, PersonalizationMode,
    };
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Option<String>> {
        // Control characters, quotes, backslashes and non-ASCII are what escaping must get right.
        let s = proptest::string::string_regex("[\\x00-\\x1f\"\\\\a-z/é€😀 ]{0,12}")
            .expect("a valid regex");
        proptest::option::of(s)
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1_000_000i64..1_000_000).prop_map(|c| c as f64 / 100.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e21),
            Just(999_999_999_999_999.0),
            Just(1e15),
            (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(|c| c as f64),
        ]
    }

    fn money() -> impl Strategy<Value = Option<Money>> {
        proptest::option::of(
            (text(), proptest::option::of(float()))
                .prop_map(|(currency, amount)| Money { currency, amount }),
        )
    }

    fn item() -> impl Strategy<Value = Item> {
        (
            text(),
            text(),
            money(),
            proptest::option::of(any::<i64>()),
            text(),
            money(),
        )
            .prop_map(
                |(id, item_group_id, price, quantity, seller_id, price_seller)| Item {
                    id,
                    item_group_id,
                    price,
                    quantity,
                    seller_id,
                    price_seller,
                },
            )
    }

    fn device() -> impl Strategy<Value = Option<Device>> {
        proptest::option::of(proptest::collection::vec(text(), 9).prop_map(|mut f| {
            let mut next = || f.pop().flatten();
            Device {
                os: next(),
                os_version: next(),
                persistent_id: next(),
                advertising_id: next(),
                unique_device_id: next(),
                model: next(),
                ua: next(),
                language: next(),
                ip: next(),
            }
        }))
    }

    fn event() -> impl Strategy<Value = McmEvent> {
        (
            (
                0..EventType::ALL.len(),
                any::<i64>(),
                0..ChannelType::ALL.len(),
                proptest::option::of(0..PersonalizationMode::ALL.len()),
                device(),
                proptest::collection::vec(item(), 0..3),
                money(),
                money(),
            ),
            proptest::collection::vec(text(), 10),
        )
            .prop_map(|((t, ts, c, p, device, items, revenue, shipping), mut f)| {
                let mut e = McmEvent::new(EventType::ALL[t], ts, ChannelType::ALL[c]);
                let mut next = || f.pop().flatten();
                e.id = next();
                e.user_id = next();
                e.custom_id = next();
                e.session_id = next();
                e.search_query = next();
                e.page_id = next();
                e.referrer_page_id = next();
                e.decision_track_id = next();
                e.domain = next();
                e.personalization_mode = p.map(|i| PersonalizationMode::ALL[i]);
                e.device = device;
                e.items = items;
                e.revenue = revenue;
                e.shipping_charge = shipping;
                e
            })
    }

    proptest! {
        #[test]
        fn swar_scan_finds_exactly_the_first_escape(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a')],
                0..40,
            ),
            from in 0usize..42,
        ) {
            let naive = bytes
                .get(from..)
                .and_then(|r| r.iter().position(|&b| needs_escape(b)).map(|i| from + i));
            prop_assert_eq!(next_escape(&bytes, from), naive);
        }

        #[test]
        fn escape_test_answers_as_a_bytewise_scan(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a')],
                0..40,
            ),
            clean in proptest::collection::vec(b'a'..=b'z', 0..40),
            at in 0usize..40,
            bad in prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20],
        ) {
            prop_assert_eq!(has_escape(&bytes), bytes.iter().any(|&b| needs_escape(b)));
            // One escape byte anywhere in an otherwise clean string, at every length.
            let mut one = clean.clone();
            prop_assert!(!has_escape(&one));
            if !one.is_empty() {
                let i = at % one.len();
                one[i] = bad;
                prop_assert!(has_escape(&one), "{:?}", one);
            }
        }

        #[test]
        fn hand_written_json_is_byte_identical_to_serde_json(e in event()) {
            let mut ours = Vec::new();
            write_event(&mut ours, &e);
            let theirs = serde_json::to_vec(&e).expect("serde_json serialises every event");
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }

    #[test]
    fn whole_floats_match_serde_json() {
        let mut ours = Vec::new();
        for v in (-2000..2000).map(f64::from).chain([
            0.0,
            -0.0,
            1e15 - 1.0,
            1e15,
            -1e15,
            1e16,
            123_456_789_012.0,
        ]) {
            ours.clear();
            write_f64(&mut ours, v);
            let theirs = serde_json::to_vec(&v).expect("finite");
            assert_eq!(ours, theirs, "{v}");
        }
    }
}
