//! Finding a needed member by its key, for the projected decode: a few word compares per
//! member of the message instead of a string comparison per needed key.
//!
//! A [`KeyHead`] is a key's length and first 16 bytes as two words; the reader in `scan.rs`
//! gets it for free while it looks for the key's closing quote. A [`KeyTable`] holds the heads of
//! one object's needed keys in a small open-addressing hash table, so a member is found (or
//! ruled out, as most are) with one multiply, one probe and a head comparison. The key text is
//! only compared for keys longer than a head, where two keys can share one.

/// A key's length and first 16 bytes as two little-endian words, zero past its end. Equal keys
/// have equal heads; keys of up to [`KeyHead::BYTES`] bytes are equal exactly when their heads
/// are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyHead {
    pub(super) len: usize,
    pub(super) words: [u64; 2],
}

impl KeyHead {
    /// How many bytes a head holds.
    pub(super) const BYTES: usize = 16;

    /// The head of `key`, byte by byte (the reader builds heads from words it has loaded).
    pub(super) fn of(key: &[u8]) -> KeyHead {
        let mut bytes = [0u8; KeyHead::BYTES];
        for (d, s) in bytes.iter_mut().zip(key) {
            *d = *s;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(w)
        };
        KeyHead {
            len: key.len(),
            words: [word(0), word(8)],
        }
    }

    /// Where the table starts looking for this head (Fibonacci hashing of the mixed words).
    #[inline]
    fn bucket(&self, bits: u32) -> usize {
        let mixed = self.words[0] ^ self.words[1].rotate_left(29) ^ self.len as u64;
        // `bits` ≥ 1, so the shift is at most 63; the result is below 2^bits.
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }
}

/// The keys of one projected object, by slot, with a hash index over their heads.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct KeyTable {
    names: Vec<String>,
    heads: Vec<KeyHead>,
    /// Open addressing with linear probing: `slot + 1`, or 0 for an empty bucket. Twice as many
    /// buckets as keys or more (a power of two), so a miss usually stops at the first empty one.
    index: Vec<usize>,
    bits: u32,
}

impl KeyTable {
    /// Adds `name` as the next slot (the caller checks it is not there yet).
    pub(super) fn push(&mut self, name: &str) {
        self.names.push(name.to_string());
        self.heads.push(KeyHead::of(name.as_bytes()));
        let mut bits = 3;
        while (1usize << bits) < 2 * self.names.len() {
            bits += 1;
        }
        self.bits = bits;
        self.index = vec![0; 1 << bits];
        for (slot, head) in self.heads.iter().enumerate() {
            let mask = self.index.len() - 1;
            let mut b = head.bucket(bits);
            while self.index[b] != 0 {
                b = (b + 1) & mask;
            }
            self.index[b] = slot + 1;
        }
    }

    /// The slot of the key whose head is `head` and text is `key`.
    #[inline]
    pub(super) fn find(&self, head: &KeyHead, key: &[u8]) -> Option<usize> {
        self.find_by(head, || Some(key))
    }

    /// [`KeyTable::find`] with the key's text asked for only when its head does not settle the
    /// answer (keys longer than a head); `None` from `key` is "not found".
    #[inline]
    pub(super) fn find_by<'k>(
        &self,
        head: &KeyHead,
        key: impl Fn() -> Option<&'k [u8]>,
    ) -> Option<usize> {
        let mask = self.index.len().checked_sub(1)?;
        let mut b = head.bucket(self.bits);
        loop {
            let slot = self.index.get(b)?.checked_sub(1)?;
            if self.heads.get(slot) == Some(head)
                && (head.len <= KeyHead::BYTES
                    || key().is_some_and(|k| self.names.get(slot).map(String::as_bytes) == Some(k)))
            {
                return Some(slot);
            }
            b = (b + 1) & mask;
        }
    }

    /// The slot of `key` (the same answer as [`KeyTable::find`] given its head).
    pub(super) fn position(&self, key: &str) -> Option<usize> {
        self.find(&KeyHead::of(key.as_bytes()), key.as_bytes())
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_only_those() {
        let names: Vec<String> = [
            "",
            "a",
            "b",
            "id",
            "sku",
            "price",
            "products",
            "product_id",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "userAgent",
            "properties",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain((0..40).map(|i| format!("k{i}")))
        .collect();
        let mut t = KeyTable::default();
        assert_eq!(t.position("a"), None, "an empty table finds nothing");
        for (i, n) in names.iter().enumerate() {
            t.push(n);
            for (j, m) in names.iter().enumerate().take(i + 1) {
                assert_eq!(t.position(m), Some(j), "{m:?} after {i} pushes");
            }
        }
        for miss in [
            "c",
            "ids",
            "product",
            "abcdefghijklmnops",
            "k40",
            "Price",
            "a\0",
        ] {
            assert_eq!(t.position(miss), None, "{miss:?}");
        }
        assert!(t.names().eq(names.iter().map(String::as_str)));
    }
}
