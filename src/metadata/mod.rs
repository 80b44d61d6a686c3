//! The cached metadata client (SPEC §4): a container group's resource group and tags,
//! looked up with `DescribeContainerGroups` + `ContainerGroupIds` in batches of up to 20,
//! through a bounded moka cache with a TTL, a shorter TTL for "does not exist", and one
//! upstream call for concurrent misses of one id.
//!
//! Writes made through the proxy [`invalidate`](MetadataClient::invalidate) their ids, and
//! a write wins against every lookup that started before it ended: every entry carries the
//! invalidation epoch read *before* the upstream fetch that produced it began, an entry
//! whose epoch is older than its id's last invalidation is never served from the cache,
//! and a lookup that joined a load begun before such an invalidation (moka coalesces
//! concurrent loads of one key) fetches that id again instead of deciding on it — unless
//! the invalidation came after this lookup itself began, when the write and the lookup were
//! concurrent and either order is correct.
//!
//! Entries are small because a sidecar may cache 100,000 of them: the key is the id alone,
//! held inline (ECI ids are 24 bytes), and the resource group and tags are
//! interned (`intern.rs`): groups with equal metadata share one copy.

mod expiry;
mod intern;

use crate::model::{ContainerGroupMeta, Tags};
use crate::upstream::{Upstream, UpstreamError};
use http::header::{HeaderName, HeaderValue};
use moka::future::Cache;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

pub const BATCH: usize = 20;

/// A container group id as a cache key: up to 24 bytes without a separate allocation.
type Id = compact_str::CompactString;

#[derive(Debug, Clone)]
struct Entry {
    meta: Option<Arc<ContainerGroupMeta>>,
    epoch: u64,
}

/// Why the metadata a decision needs could not be had (the request then fails closed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("the metadata lookup failed: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("the backend answered a metadata lookup with HTTP {0}")]
    Status(http::StatusCode),
    #[error("the backend's metadata answer is not the expected JSON: {0}")]
    Answer(String),
    /// One id answered twice with different groups or tags: neither can be trusted.
    #[error("the backend's metadata answer describes {0:?} twice, differently")]
    Contradiction(String),
}

/// How a lookup went, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LookupStats {
    pub hits: u32,
    pub negative_hits: u32,
    pub misses: u32,
}

#[derive(Clone)]
pub struct MetadataClient {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache<Id, Entry>,
    /// id → the epoch of its last invalidation.
    invalidated: Cache<Id, u64>,
    interned: intern::Interner,
    epoch: AtomicU64,
    /// The epoch of the last [`MetadataClient::invalidate_all`]: older entries are ignored.
    all_invalidated: AtomicU64,
    upstream: Upstream,
    principal_header: HeaderValue,
}

impl MetadataClient {
    pub fn new(
        upstream: Upstream,
        ttl: Duration,
        negative_ttl: Duration,
        max_entries: u64,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_entries)
            .expire_after(expiry::FoundOrNot { ttl, negative_ttl })
            .build();
        let invalidated = Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(ttl.max(negative_ttl))
            .build();
        Self {
            inner: Arc::new(Inner {
                cache,
                invalidated,
                epoch: AtomicU64::new(0),
                all_invalidated: AtomicU64::new(0),
                interned: intern::Interner::default(),
                upstream,
                principal_header: HeaderValue::from_static("ramgate-metadata"),
            }),
        }
    }

    /// Forget `ids` (after a write through the proxy changed or deleted them).
    pub async fn invalidate(&self, ids: &[String]) {
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        for id in ids {
            self.inner
                .invalidated
                .insert(Id::from(id.as_str()), epoch)
                .await;
            self.inner.cache.invalidate(id.as_str()).await;
        }
    }

    /// Forget every entry, and every lookup already in flight (another replica's writes
    /// may have been missed: `cluster`'s subscription was down).
    pub fn invalidate_all(&self) {
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.all_invalidated.store(epoch, Ordering::SeqCst);
        self.inner.cache.invalidate_all();
    }

    /// Remember a group the proxy just created (its id, group and tags are known).
    pub async fn remember(&self, id: String, meta: ContainerGroupMeta) {
        let epoch = self.inner.epoch.load(Ordering::SeqCst);
        let meta = Some(self.inner.interned.intern(meta));
        self.inner
            .cache
            .insert(Id::from(id), Entry { meta, epoch })
            .await;
    }

    pub fn entry_count(&self) -> u64 {
        self.inner.cache.entry_count()
    }

    /// The metadata of each id, in order (None: it does not exist). Fails, as a whole, if
    /// any id cannot be looked up.
    pub async fn lookup(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Option<Arc<ContainerGroupMeta>>>, LookupStats), LookupError> {
        // Read before anything is fetched: every load this lookup starts is stamped with an
        // epoch no newer than the data it fetches.
        let started_at = self.inner.epoch.load(Ordering::SeqCst);
        let mut stats = LookupStats::default();
        let mut found = vec![None; ids.len()];
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.fresh(id).await {
                Some(entry) => {
                    if entry.meta.is_some() {
                        stats.hits += 1;
                    } else {
                        stats.negative_hits += 1;
                    }
                    found[i] = entry.meta;
                }
                None => missing.push(i),
            }
        }
        if missing.is_empty() {
            return Ok((found, stats));
        }
        stats.misses = missing.len() as u32;
        let missing_ids: Vec<String> = missing.iter().map(|&i| ids[i].clone()).collect();
        // One batch load for this request's misses; concurrent requests missing the same id
        // wait on whichever load started first (moka coalesces per key).
        let batch: Arc<OnceCell<HashMap<String, Arc<ContainerGroupMeta>>>> =
            Arc::new(OnceCell::new());
        let mut stale = Vec::new();
        for i in missing {
            let id = ids[i].clone();
            let epoch = started_at;
            let (batch, missing_ids) = (batch.clone(), &missing_ids);
            let entry = self
                .inner
                .cache
                .try_get_with(Id::from(id.as_str()), async move {
                    let map = batch.get_or_try_init(|| self.fetch(missing_ids)).await?;
                    Ok::<_, LookupError>(Entry {
                        meta: map.get(&id).cloned(),
                        epoch,
                    })
                })
                .await
                .map_err(|e: Arc<LookupError>| (*e).clone())?;
            match self.inner.invalidated.get(ids[i].as_str()).await {
                // Loaded (by this lookup or one it joined) before a write this lookup must
                // see: that write ended before this lookup began.
                Some(at) if entry.epoch < at && at <= started_at => stale.push(i),
                _ => found[i] = entry.meta,
            }
        }
        if !stale.is_empty() {
            let epoch = self.inner.epoch.load(Ordering::SeqCst);
            let stale_ids: Vec<String> = stale.iter().map(|&i| ids[i].clone()).collect();
            let map = self.fetch(&stale_ids).await?;
            for i in stale {
                let meta = map.get(&ids[i]).cloned();
                let entry = Entry {
                    meta: meta.clone(),
                    epoch,
                };
                self.inner
                    .cache
                    .insert(Id::from(ids[i].as_str()), entry)
                    .await;
                found[i] = meta;
            }
        }
        Ok((found, stats))
    }

    /// A cached entry, unless an invalidation happened after its load started.
    async fn fresh(&self, id: &str) -> Option<Entry> {
        let entry = self.inner.cache.get(id).await?;
        if entry.epoch < self.inner.all_invalidated.load(Ordering::SeqCst) {
            self.inner.cache.invalidate(id).await;
            return None;
        }
        match self.inner.invalidated.get(id).await {
            Some(invalidated_at) if entry.epoch < invalidated_at => {
                self.inner.cache.invalidate(id).await;
                None
            }
            _ => Some(entry),
        }
    }

    /// Asks the backend, 20 ids per call.
    async fn fetch(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Arc<ContainerGroupMeta>>, LookupError> {
        let started = Instant::now();
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let ids_json =
                serde_json::to_string(chunk).map_err(|e| LookupError::Answer(e.to_string()))?;
            let query = crate::request::encoding::encode_pairs([
                ("Action", "DescribeContainerGroups"),
                ("ContainerGroupIds", ids_json.as_str()),
                ("Limit", "20"),
                ("Version", crate::request::VERSION),
            ]);
            let headers = [
                (
                    HeaderName::from_static("x-acs-action"),
                    HeaderValue::from_static("DescribeContainerGroups"),
                ),
                (
                    HeaderName::from_static("x-acs-version"),
                    HeaderValue::from_static(crate::request::VERSION),
                ),
                (
                    HeaderName::from_static("x-ramgate-principal"),
                    self.inner.principal_header.clone(),
                ),
            ];
            let response = self.inner.upstream.call_retrying(&query, &headers).await?;
            if !response.status.is_success() {
                return Err(LookupError::Status(response.status));
            }
            let answer: DescribeAnswer = serde_json::from_slice(&response.body)
                .map_err(|e| LookupError::Answer(e.to_string()))?;
            for group in answer.container_groups {
                let (id, meta) = group.into_meta();
                // Only ids we asked for: a backend that ignores filters cannot plant others.
                if !chunk.contains(&id) {
                    continue;
                }
                // An id answered twice must be answered alike: otherwise either answer
                // could be the more permissive one, so contradicting answers fail the
                // lookup (503; tests/faults.rs, `TwoAnswers`).
                if out
                    .get(&id)
                    .is_some_and(|seen: &Arc<ContainerGroupMeta>| **seen != meta)
                {
                    return Err(LookupError::Contradiction(id));
                }
                let meta = self.inner.interned.intern(meta);
                out.insert(id, meta);
            }
        }
        crate::ops::metrics::metadata_lookup(started.elapsed());
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAnswer {
    container_groups: Vec<GroupItem>,
}

/// The fields of a `ContainerGroups` item that authorization needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupItem {
    pub container_group_id: String,
    pub resource_group_id: String,
    #[serde(default)]
    pub tags: Vec<TagItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagItem {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl GroupItem {
    /// The item's id and metadata.
    pub fn into_meta(self) -> (String, ContainerGroupMeta) {
        let meta = ContainerGroupMeta {
            resource_group: self.resource_group_id,
            tags: Tags::from_pairs(self.tags.into_iter().map(|t| (t.key, t.value))),
        };
        (self.container_group_id, meta)
    }
}
