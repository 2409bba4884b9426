//! The verified-token cache ([`crate::VerifierConfig::cache_size`]): a bounded map from the
//! SHA-256 of a whole compact JWS to what its full verification produced, so that a token
//! presented again skips the signature and claim checks.
//!
//! What makes it safe is not in this module but in how the verifier uses it (crate docs,
//! "Verified-token cache"): every hit is checked again against the current key set and the
//! clock exactly as a fresh verification would, and falls back to one if anything changed.
//! This module only has to be bounded and exact about keys:
//! * the key is the 32-byte digest, compared in full (`HashMap` equality on the whole array);
//!   the token itself is never stored;
//! * at most `capacity` entries; when full, a CLOCK sweep (second chance) picks the victim:
//!   entries already past their `dead_after` instant first, then entries not read since the
//!   hand last passed them. A flood of distinct tokens thus cycles through the unreferenced
//!   slots, and an entry read at least once per revolution of the hand survives it;
//! * [`TokenCache::retain`] drops entries on demand (the verifier's key-set refresh).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sha2::{Digest, Sha256};

/// SHA-256 of the token's bytes.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Counters and size of a [`TokenCache`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Maximum number of entries (`0`: the cache is off).
    pub capacity: usize,
    /// Entries held now.
    pub entries: usize,
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications that had to run in full (no entry, or an entry no longer valid).
    pub misses: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries dropped because their key left (or changed in) the key set, or they expired.
    pub invalidations: u64,
}

struct Slot<V> {
    hash: TokenHash,
    value: Arc<V>,
    /// Unix second after which the entry can never be served again (`exp` + leeway).
    dead_after: i64,
    /// Set by every read, cleared by the CLOCK hand as it passes.
    referenced: AtomicBool,
}

struct State<V> {
    index: HashMap<TokenHash, usize>,
    /// Grows up to the capacity, never beyond; `None` marks a slot emptied by removal.
    slots: Vec<Option<Slot<V>>>,
    /// Indexes of the `None` slots.
    free: Vec<usize>,
    hand: usize,
}

pub(crate) struct TokenCache<V> {
    capacity: usize,
    state: RwLock<State<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

impl<V> TokenCache<V> {
    /// `None` for a capacity of 0 (the cache is off).
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        Some(Self {
            capacity,
            state: RwLock::new(State {
                index: HashMap::new(),
                slots: Vec::new(),
                free: Vec::new(),
                hand: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State<V>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<V>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry stored under exactly `hash`, marked as recently used. Under a shared lock:
    /// concurrent readers do not wait for each other.
    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Arc<V>> {
        let state = self.read();
        let slot = state.slots.get(*state.index.get(hash)?)?.as_ref()?;
        slot.referenced.store(true, Ordering::Relaxed);
        Some(slot.value.clone())
    }

    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores `value` under `hash` (replacing an entry of the same hash), evicting one entry
    /// when full. `now` is the current Unix second, for preferring dead entries as victims.
    pub(crate) fn insert(&self, hash: TokenHash, value: Arc<V>, dead_after: i64, now: i64) {
        let mut state = self.write();
        let slot = Slot {
            hash,
            value,
            dead_after,
            referenced: AtomicBool::new(false),
        };
        if let Some(&i) = state.index.get(&hash) {
            if let Some(place) = state.slots.get_mut(i) {
                *place = Some(slot);
                return;
            }
        }
        let i = if let Some(i) = state.free.pop() {
            i
        } else if state.slots.len() < self.capacity {
            state.slots.push(None);
            state.slots.len() - 1
        } else {
            let i = state.victim(now);
            if let Some(old) = state.slots.get_mut(i).and_then(Option::take) {
                state.index.remove(&old.hash);
                let counter = if old.dead_after < now {
                    &self.invalidations
                } else {
                    &self.evictions
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            i
        };
        if let Some(place) = state.slots.get_mut(i) {
            *place = Some(slot);
            state.index.insert(hash, i);
        }
    }

    /// Removes the entry under `hash` if it is still `value` (and not a newer entry another
    /// request stored meanwhile).
    pub(crate) fn remove_if_same(&self, hash: &TokenHash, value: &Arc<V>) {
        let mut state = self.write();
        let Some(&i) = state.index.get(hash) else {
            return;
        };
        let same = state
            .slots
            .get(i)
            .and_then(Option::as_ref)
            .is_some_and(|slot| Arc::ptr_eq(&slot.value, value));
        if same {
            state.remove(i);
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keeps only the entries for which `keep(value, dead_after)` holds; returns how many
    /// were dropped.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&V, i64) -> bool) -> usize {
        let mut state = self.write();
        let doomed: Vec<usize> = state
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let slot = slot.as_ref()?;
                (!keep(&slot.value, slot.dead_after)).then_some(i)
            })
            .collect();
        for &i in &doomed {
            state.remove(i);
        }
        self.invalidations
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        doomed.len()
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            capacity: self.capacity,
            entries: self.read().index.len(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }
}

impl<V> State<V> {
    fn remove(&mut self, i: usize) {
        if let Some(old) = self.slots.get_mut(i).and_then(Option::take) {
            self.index.remove(&old.hash);
            self.free.push(i);
        }
    }

    /// The slot to reuse when every slot is taken: CLOCK with second chance, a dead entry at
    /// once. Two revolutions at most (the first clears every reference bit it passes).
    fn victim(&mut self, now: i64) -> usize {
        let len = self.slots.len();
        for _ in 0..2 * len {
            let i = self.hand % len;
            self.hand = (i + 1) % len;
            match &self.slots[i] {
                None => return i,
                Some(slot) if slot.dead_after < now => return i,
                Some(slot) if slot.referenced.swap(false, Ordering::Relaxed) => {}
                Some(_) => return i,
            }
        }
        // Unreachable (the second revolution finds a cleared bit); kept total.
        let i = self.hand % len.max(1);
        self.hand = (i + 1) % len.max(1);
        i
    }
}

impl<V> std::fmt::Debug for TokenCache<V> {
    /// Sizes only: never a hash (or anything else derived from a token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.stats();
        f.debug_struct("TokenCache")
            .field("capacity", &stats.capacity)
            .field("entries", &stats.entries)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u32) -> TokenHash {
        token_hash(&format!("token-{n}"))
    }

    fn cache(capacity: usize) -> TokenCache<u32> {
        TokenCache::new(capacity).unwrap()
    }

    const NOW: i64 = 1_000_000;
    const LIVE: i64 = NOW + 900;

    #[test]
    fn zero_capacity_is_no_cache() {
        assert!(TokenCache::<u32>::new(0).is_none());
    }

    #[test]
    fn the_key_is_the_whole_digest() {
        let c = cache(8);
        c.insert(h(1), Arc::new(1), LIVE, NOW);
        assert_eq!(c.get(&h(1)).as_deref(), Some(&1));
        // Same first 31 bytes, different last one: a different key.
        let mut near = h(1);
        near[31] ^= 1;
        assert!(c.get(&near).is_none());
        let mut near = h(1);
        near[0] ^= 0x80;
        assert!(c.get(&near).is_none());
        // One changed byte of the token: a different digest altogether.
        assert_ne!(token_hash("a.b.c"), token_hash("a.b.d"));
        assert_eq!(token_hash("a.b.c"), token_hash("a.b.c"));
        assert!(c.get(&token_hash("token-1 ")).is_none());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let c = cache(16);
        for n in 0..10_000 {
            c.insert(h(n), Arc::new(n), LIVE, NOW);
            // Touch a few, as real traffic would.
            if n % 3 == 0 {
                c.get(&h(n));
            }
            assert!(c.stats().entries <= 16);
        }
        let stats = c.stats();
        assert_eq!(stats.entries, 16);
        assert_eq!(stats.evictions, 10_000 - 16);
        let state = c.read();
        assert_eq!(state.slots.len(), 16);
        assert_eq!(state.index.len(), 16);
        // Index and slots agree.
        for (hash, &i) in &state.index {
            assert_eq!(&state.slots[i].as_ref().unwrap().hash, hash);
        }
    }

    #[test]
    fn eviction_gives_recently_read_entries_a_second_chance() {
        let c = cache(4);
        for n in 0..4 {
            c.insert(h(n), Arc::new(n), LIVE, NOW);
        }
        // 0 and 2 are hot; a flood of one-off tokens goes by.
        for n in 100..140 {
            c.get(&h(0));
            c.get(&h(2));
            c.insert(h(n), Arc::new(n), LIVE, NOW);
        }
        assert_eq!(c.get(&h(0)).as_deref(), Some(&0));
        assert_eq!(c.get(&h(2)).as_deref(), Some(&2));
        assert!(c.get(&h(1)).is_none());
        assert!(c.get(&h(3)).is_none());
        // The newest one-off is in, older ones were pushed out.
        assert_eq!(c.get(&h(139)).as_deref(), Some(&139));
        assert!(c.get(&h(100)).is_none());
        assert_eq!(c.stats().entries, 4);
    }

    #[test]
    fn dead_entries_are_evicted_first() {
        let c = cache(3);
        c.insert(h(0), Arc::new(0), LIVE, NOW);
        c.insert(h(1), Arc::new(1), NOW + 5, NOW);
        c.insert(h(2), Arc::new(2), LIVE, NOW);
        // All three recently read: without the expiry rule the hand would take slot 0.
        for n in 0..3 {
            c.get(&h(n));
        }
        let later = NOW + 6;
        c.insert(h(3), Arc::new(3), later + 900, later);
        assert!(c.get(&h(1)).is_none(), "the dead entry went first");
        for n in [0, 2, 3] {
            assert_eq!(c.get(&h(n)).as_deref(), Some(&n));
        }
        let stats = c.stats();
        assert_eq!((stats.evictions, stats.invalidations), (0, 1));
    }

    #[test]
    fn reinserting_a_hash_replaces_its_entry() {
        let c = cache(2);
        c.insert(h(1), Arc::new(1), LIVE, NOW);
        c.insert(h(1), Arc::new(11), LIVE, NOW);
        assert_eq!(c.get(&h(1)).as_deref(), Some(&11));
        assert_eq!(c.stats().entries, 1);
    }

    #[test]
    fn retain_drops_entries_and_frees_their_slots() {
        let c = cache(6);
        for n in 0..6 {
            c.insert(h(n), Arc::new(n), LIVE, NOW);
        }
        // "Entries of the odd key left the key set."
        assert_eq!(c.retain(|v, _| v % 2 == 0), 3);
        for n in 0..6 {
            assert_eq!(c.get(&h(n)).is_some(), n % 2 == 0, "{n}");
        }
        let stats = c.stats();
        assert_eq!((stats.entries, stats.invalidations), (3, 3));
        // The freed slots are reused before anything is evicted.
        for n in 10..13 {
            c.insert(h(n), Arc::new(n), LIVE, NOW);
        }
        assert_eq!(c.stats().evictions, 0);
        assert_eq!(c.stats().entries, 6);
        // By expiry too.
        assert_eq!(c.retain(|_, dead_after| dead_after > LIVE), 6);
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn remove_if_same_leaves_a_newer_entry_alone() {
        let c = cache(2);
        let old = Arc::new(1);
        c.insert(h(1), old.clone(), LIVE, NOW);
        let seen = c.get(&h(1)).unwrap();
        c.insert(h(1), Arc::new(2), LIVE, NOW);
        c.remove_if_same(&h(1), &seen);
        assert_eq!(c.get(&h(1)).as_deref(), Some(&2));
        let newer = c.get(&h(1)).unwrap();
        c.remove_if_same(&h(1), &newer);
        assert!(c.get(&h(1)).is_none());
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn a_capacity_of_one_works() {
        let c = cache(1);
        c.insert(h(1), Arc::new(1), LIVE, NOW);
        c.get(&h(1));
        c.insert(h(2), Arc::new(2), LIVE, NOW);
        assert!(c.get(&h(1)).is_none());
        assert_eq!(c.get(&h(2)).as_deref(), Some(&2));
    }

    #[test]
    fn debug_shows_sizes_only() {
        let c = cache(2);
        c.insert(h(1), Arc::new(1), LIVE, NOW);
        let debug = format!("{c:?}");
        assert_eq!(debug, "TokenCache { capacity: 2, entries: 1 }");
    }
}
