//! One shared copy of each distinct metadata (resource group and tags) the cache holds.
//!
//! Container groups come in fleets: thousands share a resource group and a handful of
//! tags. Keeping one `Arc` per distinct value instead of one per group cuts a cached entry
//! to moka's own bookkeeping plus the id (docs/PERFORMANCE.md §3). Only lookups that miss
//! come here; hits never take the lock.

use crate::model::ContainerGroupMeta;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Below this many distinct values the set is never pruned.
const PRUNE_AT: usize = 4096;

#[derive(Default)]
pub struct Interner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: HashSet<Arc<ContainerGroupMeta>>,
    prune_at: usize,
}

impl Interner {
    /// The shared copy equal to `meta`.
    pub fn intern(&self, meta: ContainerGroupMeta) -> Arc<ContainerGroupMeta> {
        // A panic elsewhere while holding the lock cannot leave the set inconsistent
        // (insertions are single calls), so a poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = state.seen.get(&meta) {
            return shared.clone();
        }
        if state.seen.len() >= state.prune_at.max(PRUNE_AT) {
            // Values no cache entry holds any more: the set is their only owner. Pruning
            // again only after the set doubles keeps the cost constant per insertion.
            state.seen.retain(|shared| Arc::strong_count(shared) > 1);
            state.prune_at = 2 * state.seen.len();
        }
        let shared = Arc::new(meta);
        state.seen.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tags;

    fn meta(group: &str, env: &str) -> ContainerGroupMeta {
        ContainerGroupMeta {
            resource_group: group.into(),
            tags: Tags::from_pairs([("env", env)]),
        }
    }

    #[test]
    fn equal_values_share_one_copy_and_different_ones_do_not() {
        let interner = Interner::default();
        let a = interner.intern(meta("rg-1", "test"));
        let b = interner.intern(meta("rg-1", "test"));
        let c = interner.intern(meta("rg-1", "prod"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, meta("rg-1", "prod"));
    }

    #[test]
    fn values_nobody_holds_are_dropped_once_the_set_is_large() {
        let interner = Interner::default();
        let kept = interner.intern(meta("rg-kept", "test"));
        for i in 0..3 * PRUNE_AT {
            drop(interner.intern(meta(&format!("rg-{i}"), "test")));
        }
        let state = interner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert!(state.seen.len() <= PRUNE_AT + 1, "{}", state.seen.len());
        assert!(state.seen.contains(&*kept));
    }
}
