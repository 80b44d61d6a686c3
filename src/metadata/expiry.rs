//! Entries for groups that exist live `ttl`; "does not exist" answers live the shorter
//! `negative_ttl`, so a group created elsewhere shows up soon.

use super::Entry;
use moka::Expiry;
use std::time::{Duration, Instant};

pub struct FoundOrNot {
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

impl Expiry<super::Id, Entry> for FoundOrNot {
    fn expire_after_create(
        &self,
        _key: &super::Id,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.meta.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }

    fn expire_after_update(
        &self,
        key: &super::Id,
        value: &Entry,
        updated_at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}
