//! Replay protection: the nonces of verified requests, remembered for as long as their
//! timestamps would still pass the clock-skew check, in bounded memory.
//!
//! A nonce only has to be remembered while a replay of its request could otherwise
//! succeed, that is while the request's own (signed) timestamp is within the skew window
//! of `now`; after that the timestamp check refuses the replay by itself. So each entry
//! expires at `timestamp + window`, and the map never holds more than the requests signed
//! within one window. Entries are 128-bit digests of `(access key id, nonce)`, not the
//! strings, so a client cannot make ramgate hold long nonces in memory.
//!
//! The memory is shared by every AccessKey, so each key may hold at most an eighth of it
//! ([`PER_KEY_SHARE`]): one key signing as fast as it can fills its own share and gets 503
//! for its own requests, while every other key's requests are still checked and served.
//!
//! The entries are spread over shards, each with its own lock, so that workers verifying
//! signatures at once seldom wait for each other; the bounds above hold for the whole
//! cache, not per shard (see [`NonceCache`]).
//!
//! Time is the caller's `now` (Unix seconds), never the wall clock: the verifier takes
//! `now` as a parameter so tests can replay recorded requests at their recorded time.

use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// At most this many nonces are remembered at once (about 50 MiB). Past it, signed
/// requests are refused until older nonces expire: forgetting a nonce early would let its
/// request be replayed, so a full cache fails closed.
pub const MAX_NONCES: usize = 1 << 20;

/// One AccessKey may hold at most `capacity / PER_KEY_SHARE` of the remembered nonces.
pub const PER_KEY_SHARE: usize = 8;

/// The nonces are kept in this many shards, each behind its own lock and chosen by the
/// nonce's digest, so that workers checking different nonces do not wait for each other.
const SHARDS: usize = 16;

/// Nonces seen within the skew window.
///
/// Bounds are global, as if there were one map: [`NonceCache::len`] counts every shard,
/// and each key's count is kept once, in a shard of its own by the key's hash. Every check
/// first purges, in every shard that holds one, the nonces expired at `now` (a shard's
/// earliest expiry is readable without its lock), so an answer never depends on which
/// shard a nonce or an expired nonce is in. Locks are taken nonce shard first, then key
/// shard, never the other way round, so two checks cannot deadlock.
#[derive(Debug)]
pub struct NonceCache {
    window: Duration,
    capacity: usize,
    per_key: usize,
    shards: Box<[Shard]>,
    /// How many nonces all shards hold together.
    len: AtomicUsize,
    /// AccessKey hash → how many of the remembered nonces are its, in shards by that hash.
    key_counts: Box<[Mutex<HashMap<u64, usize>>]>,
    /// Hashes AccessKey ids for `key_counts`: SipHash under a random key of this process,
    /// so nobody can pick two ids that share a count (and ids come from verified requests,
    /// that is from the keys configured).
    key_hasher: RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    inner: Mutex<Inner>,
    /// The earliest expiry in `inner.by_expiry` (`i64::MAX` when empty), kept under the
    /// lock, read without it: a shard with nothing expired is not locked to be purged.
    next_expiry: AtomicI64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Digest → (expiry in Unix seconds, the hash of its AccessKey id).
    seen: HashMap<u128, (i64, u64)>,
    /// The same entries by expiry, soonest first, to drop the expired ones cheaply.
    by_expiry: BinaryHeap<Reverse<(i64, u128)>>,
}

/// What [`NonceCache::check_and_remember`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use: it is now remembered.
    New,
    /// Used before, within the window.
    Replayed,
    /// The cache, or this AccessKey's share of it, is full of live nonces; the request
    /// cannot be checked.
    Full,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(900))
    }
}

/// A poisoned lock means a panic while holding it; no operation below can leave a map
/// half-updated, so carrying on is safe (and refusing every signed request for the rest
/// of the process would not be).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NonceCache {
    /// A cache that remembers each nonce for at least `window` past its request's
    /// timestamp (use the clock-skew window).
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, MAX_NONCES)
    }

    /// Like [`NonceCache::new`] with another bound (tests); each key's share is
    /// `capacity / PER_KEY_SHARE` (at least one).
    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            window,
            capacity,
            per_key: (capacity / PER_KEY_SHARE).max(1),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    next_expiry: AtomicI64::new(i64::MAX),
                    ..Shard::default()
                })
                .collect(),
            len: AtomicUsize::new(0),
            key_counts: (0..SHARDS).map(|_| Mutex::default()).collect(),
            key_hasher: RandomState::new(),
        }
    }

    /// The retention window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records `nonce` of `key_id`, signed at `timestamp`, unless it was seen before and
    /// has not expired at `now`. `skew` is the clock-skew window in force; the nonce is kept
    /// until `timestamp + max(skew, window)`.
    pub fn check_and_remember(
        &self,
        key_id: &str,
        nonce: &str,
        timestamp: i64,
        skew: Duration,
        now: i64,
    ) -> Seen {
        let retention = i64::try_from(skew.max(self.window).as_secs()).unwrap_or(i64::MAX);
        let expires = timestamp.saturating_add(retention);
        let digest = digest(key_id, nonce);
        let key = self.key_hasher.hash_one(key_id);
        self.purge(now);
        let shard = &self.shards[shard_of(digest)];
        let mut inner = lock(&shard.inner);
        if inner.seen.contains_key(&digest) {
            return Seen::Replayed;
        }
        // Room in the whole cache, taken only while there is some...
        let reserved = self
            .len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            return Seen::Full;
        }
        // ...and in the key's share (given back if the share is full).
        {
            let mut counts = lock(&self.key_counts[key_shard_of(key)]);
            let held = counts.entry(key).or_insert(0);
            if *held >= self.per_key {
                self.len.fetch_sub(1, Ordering::AcqRel);
                return Seen::Full;
            }
            *held += 1;
        }
        inner.seen.insert(digest, (expires, key));
        inner.by_expiry.push(Reverse((expires, digest)));
        shard.next_expiry.fetch_min(expires, Ordering::AcqRel);
        Seen::New
    }

    /// How many nonces are remembered (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets, in every shard, every nonce whose request's timestamp is now outside the
    /// window.
    fn purge(&self, now: i64) {
        for shard in self.shards.iter() {
            if shard.next_expiry.load(Ordering::Acquire) >= now {
                continue;
            }
            let mut inner = lock(&shard.inner);
            while let Some(Reverse((expires, digest))) = inner.by_expiry.peek().copied() {
                if expires >= now {
                    break;
                }
                inner.by_expiry.pop();
                let Some(&(at, key)) = inner.seen.get(&digest) else {
                    continue;
                };
                if at != expires {
                    continue;
                }
                inner.seen.remove(&digest);
                self.len.fetch_sub(1, Ordering::AcqRel);
                let mut counts = lock(&self.key_counts[key_shard_of(key)]);
                if let Some(held) = counts.get_mut(&key) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        counts.remove(&key);
                    }
                }
            }
            let next = inner
                .by_expiry
                .peek()
                .map_or(i64::MAX, |Reverse((expires, _))| *expires);
            shard.next_expiry.store(next, Ordering::Release);
        }
    }
}

/// The shard of a nonce: its digest's low bits (SHA-256 output, evenly spread).
fn shard_of(digest: u128) -> usize {
    (digest % SHARDS as u128) as usize
}

/// The shard of a key's count.
fn key_shard_of(key: u64) -> usize {
    (key % SHARDS as u64) as usize
}

/// 128 bits of SHA-256 over the key id and the nonce, the key id prefixed by its length
/// (LEB128) so that no two pairs share an encoding. The short prefix keeps a usual pair
/// (a 20-character id, a 32-digit nonce) within one SHA-256 block.
fn digest(key_id: &str, nonce: &str) -> u128 {
    let mut hasher = Sha256::new();
    let mut length = [0u8; 10];
    let mut n = key_id.len() as u64;
    let mut used = 0;
    for slot in length.iter_mut() {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        used += 1;
        if n == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    hasher.update(&length[..used]);
    hasher.update(key_id.as_bytes());
    hasher.update(nonce.as_bytes());
    let out = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&out[..16]);
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: Duration = Duration::from_secs(900);

    #[test]
    fn a_nonce_is_refused_the_second_time_within_the_window() {
        let cache = NonceCache::new(SKEW);
        assert_eq!(
            cache.check_and_remember("ak", "n1", 1000, SKEW, 1000),
            Seen::New
        );
        assert_eq!(
            cache.check_and_remember("ak", "n1", 1000, SKEW, 1500),
            Seen::Replayed
        );
        // Another key's nonce is its own.
        assert_eq!(
            cache.check_and_remember("ak2", "n1", 1000, SKEW, 1500),
            Seen::New
        );
    }

    #[test]
    fn nonces_are_forgotten_once_their_timestamp_is_out_of_the_window() {
        let cache = NonceCache::new(SKEW);
        assert_eq!(
            cache.check_and_remember("ak", "n1", 1000, SKEW, 1000),
            Seen::New
        );
        assert_eq!(cache.len(), 1);
        // At 1901 a request stamped 1000 fails the skew check anyway: no need to keep it.
        assert_eq!(
            cache.check_and_remember("ak", "n2", 1901, SKEW, 1901),
            Seen::New
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.check_and_remember("ak", "n1", 1901, SKEW, 1901),
            Seen::New
        );
    }

    #[test]
    fn a_full_cache_fails_closed() {
        let cache = NonceCache::with_capacity(SKEW, 2);
        assert_eq!(
            cache.check_and_remember("ak", "a", 1000, SKEW, 1000),
            Seen::New
        );
        assert_eq!(
            cache.check_and_remember("ak2", "b", 1000, SKEW, 1000),
            Seen::New
        );
        assert_eq!(
            cache.check_and_remember("ak3", "c", 1000, SKEW, 1000),
            Seen::Full
        );
        // Space comes back as the window moves on.
        assert_eq!(
            cache.check_and_remember("ak3", "c", 2000, SKEW, 2000),
            Seen::New
        );
    }

    /// Issue 11, finding 9: one AccessKey filling the nonce memory turned every signed
    /// request into a 503. Now it fills its own share only.
    #[test]
    fn nonce_memory_is_bounded_per_access_key() {
        let cache = NonceCache::with_capacity(SKEW, 16);
        for n in 0..2 {
            assert_eq!(
                cache.check_and_remember("greedy", &n.to_string(), 1000, SKEW, 1000),
                Seen::New
            );
        }
        assert_eq!(
            cache.check_and_remember("greedy", "2", 1000, SKEW, 1000),
            Seen::Full
        );
        for key in ["a", "b", "c"] {
            assert_eq!(
                cache.check_and_remember(key, "0", 1000, SKEW, 1000),
                Seen::New,
                "{key}"
            );
        }
        // The share comes back as the window moves on.
        assert_eq!(
            cache.check_and_remember("greedy", "2", 2000, SKEW, 2000),
            Seen::New
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn digests_do_not_confuse_the_split_between_key_and_nonce() {
        assert_ne!(digest("ab", "c"), digest("a", "bc"));
        // Lengths past one LEB128 byte are prefixed with more.
        let long = "k".repeat(200);
        assert_ne!(digest(&long, "n"), digest(&long[..199], "kn"));
    }

    /// Nonces spread over the shards, and are still checked, counted and purged as in one
    /// map, with workers on several threads.
    #[test]
    fn shards_answer_as_one_map_across_threads() {
        let cache = NonceCache::with_capacity(SKEW, 8 * 400);
        std::thread::scope(|s| {
            for t in 0..4 {
                let cache = &cache;
                s.spawn(move || {
                    for n in 0..100 {
                        let nonce = format!("{t}-{n}");
                        assert_eq!(
                            cache.check_and_remember("ak", &nonce, 1000, SKEW, 1000),
                            Seen::New
                        );
                    }
                });
            }
        });
        assert_eq!(cache.len(), 400);
        assert!(cache
            .shards
            .iter()
            .all(|shard| !lock(&shard.inner).seen.is_empty()));
        // The key's share (400) is used up, whichever shard the next nonce falls in.
        assert_eq!(
            cache.check_and_remember("ak", "one more", 1000, SKEW, 1000),
            Seen::Full
        );
        assert_eq!(
            cache.check_and_remember("ak", "0-0", 1000, SKEW, 1000),
            Seen::Replayed
        );
        // Everything expires at once, from every shard.
        assert_eq!(
            cache.check_and_remember("ak", "0-0", 2000, SKEW, 2000),
            Seen::New
        );
        assert_eq!(cache.len(), 1);
    }
}
