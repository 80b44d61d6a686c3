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
//! Time is the caller's `now` (Unix seconds), never the wall clock: the verifier takes
//! `now` as a parameter so tests can replay recorded requests at their recorded time.

use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// At most this many nonces are remembered at once (about 50 MiB). Past it, signed
/// requests are refused until older nonces expire: forgetting a nonce early would let its
/// request be replayed, so a full cache fails closed.
pub const MAX_NONCES: usize = 1 << 20;

/// One AccessKey may hold at most `capacity / PER_KEY_SHARE` of the remembered nonces.
pub const PER_KEY_SHARE: usize = 8;

/// Nonces seen within the skew window.
#[derive(Debug)]
pub struct NonceCache {
    window: Duration,
    capacity: usize,
    per_key: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Digest → (expiry in Unix seconds, the digest of its AccessKey id).
    seen: HashMap<u128, (i64, u128)>,
    /// AccessKey digest → how many of `seen` are its.
    per_key: HashMap<u128, usize>,
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
            inner: Mutex::new(Inner::default()),
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
        let key = digest_key(key_id);
        // A poisoned lock means a panic while holding it; the map operations below cannot
        // leave it half-updated, so carrying on is safe (and refusing every signed request
        // for the rest of the process would not be).
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.purge(now);
        if inner.seen.contains_key(&digest) {
            return Seen::Replayed;
        }
        let held = inner.per_key.get(&key).copied().unwrap_or(0);
        if inner.seen.len() >= self.capacity || held >= self.per_key {
            return Seen::Full;
        }
        inner.seen.insert(digest, (expires, key));
        inner.per_key.insert(key, held + 1);
        inner.by_expiry.push(Reverse((expires, digest)));
        Seen::New
    }

    /// How many nonces are remembered (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Forgets every nonce whose request's timestamp is now outside the window.
    fn purge(&mut self, now: i64) {
        while let Some(Reverse((expires, digest))) = self.by_expiry.peek().copied() {
            if expires >= now {
                break;
            }
            self.by_expiry.pop();
            let Some(&(at, key)) = self.seen.get(&digest) else {
                continue;
            };
            if at != expires {
                continue;
            }
            self.seen.remove(&digest);
            if let Some(held) = self.per_key.get_mut(&key) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    self.per_key.remove(&key);
                }
            }
        }
    }
}

/// 128 bits of SHA-256 over the key id alone, counting each key's share.
fn digest_key(key_id: &str) -> u128 {
    let out = Sha256::digest(key_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&out[..16]);
    u128::from_be_bytes(first)
}

/// 128 bits of SHA-256 over the key id and the nonce, length-prefixed so that no two
/// pairs share an encoding.
fn digest(key_id: &str, nonce: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((key_id.len() as u64).to_be_bytes());
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
    }
}
