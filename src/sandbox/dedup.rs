//! The set of accepted event ids, for counting duplicates (DESIGN.md contract 4: a redelivered
//! message carries the same `id`, and MCM de-duplicates on it).
//!
//! Sharded into 64 mutex-guarded sets keyed by the id's hash, so concurrent requests almost never
//! wait on each other; each set stores the 64-bit hash, not the string, to keep memory flat under
//! long benchmarks (8 bytes plus table overhead per id). Two different ids colliding in 64 bits
//! would be miscounted as a duplicate; at a billion ids the odds are about 3 in 100 000.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 64;

/// A hasher for keys that are already uniform 64-bit hashes: re-hashing them would be wasted work.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in so the hasher stays total.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashSet<u64, BuildHasherDefault<PreHashed>>;

/// The sharded id set.
pub struct IdSet {
    shards: Vec<Mutex<Shard>>,
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSet").field("len", &self.len()).finish()
    }
}

impl Default for IdSet {
    fn default() -> IdSet {
        IdSet {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

impl IdSet {
    /// Inserts `id`; true when it had not been seen before.
    pub fn insert(&self, id: &str) -> bool {
        let h = hash_id(id);
        // The top bits pick the shard; the table inside uses the low bits, so the two stay
        // independent.
        let shard = (h >> 58) as usize % SHARDS;
        lock(&self.shards[shard]).insert(h)
    }

    /// Forgets every id.
    pub fn clear(&self) {
        for s in &self.shards {
            lock(s).clear();
        }
    }

    /// Number of distinct ids held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned shard still holds a valid set (inserting a u64 cannot leave it half-done), so the
/// poison is ignored rather than turned into a panic on every later request.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SipHash with fixed keys: stable within a process and across runs, which keeps counts
/// reproducible. Id values come from the client under test, not an adversary.
fn hash_id(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_insert_of_an_id_is_a_duplicate() {
        let s = IdSet::default();
        assert!(s.insert("a"));
        assert!(s.insert("b"));
        assert!(!s.insert("a"));
        assert_eq!(s.len(), 2);
        s.clear();
        assert!(s.is_empty());
        assert!(s.insert("a"));
    }

    #[test]
    fn ids_spread_over_shards_and_all_are_counted() {
        let s = IdSet::default();
        for i in 0..10_000 {
            assert!(s.insert(&format!("evt-{i}")));
        }
        assert_eq!(s.len(), 10_000);
        let used = s.shards.iter().filter(|sh| !lock(sh).is_empty()).count();
        assert_eq!(used, SHARDS, "every shard should receive ids");
    }

    #[test]
    fn concurrent_inserts_of_the_same_ids_count_each_once() {
        let s = std::sync::Arc::new(IdSet::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || (0..1000).filter(|i| s.insert(&i.to_string())).count())
            })
            .collect();
        let new: usize = handles
            .into_iter()
            .map(|h| h.join().expect("inserter thread"))
            .sum();
        assert_eq!(new, 1000);
        assert_eq!(s.len(), 1000);
    }
}
