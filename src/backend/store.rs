//! The container groups, in memory: a map in creation order plus an id index, behind one
//! `RwLock`. Reads (the bulk of a benchmark: metadata lookups and describes) share the lock;
//! the critical sections are short and never await.

use super::group::{new_id, Group, NewGroup};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Groups>,
}

impl Store {
    /// A panic while holding the lock cannot leave the maps inconsistent with each other in
    /// a way that matters to a test service, so a poisoned lock is simply used again.
    pub fn read(&self) -> RwLockReadGuard<'_, Groups> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Groups> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
pub struct Groups {
    by_seq: BTreeMap<u64, Group>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
}

/// Which groups a describe returns. Every filter present must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub region: Option<String>,
    pub ids: Option<Vec<String>>,
    pub resource_group: Option<String>,
    /// A key without a value matches the key with any value.
    pub tags: Vec<(String, Option<String>)>,
    pub name: Option<String>,
    pub status: Option<String>,
}

impl Filter {
    pub fn matches(&self, g: &Group) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.region, &g.region)
            && eq(&self.resource_group, &g.resource_group)
            && eq(&self.name, &g.name)
            && eq(&self.status, &g.status)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&g.id))
            && tags_match(&self.tags, g)
    }
}

pub fn tags_match(filter: &[(String, Option<String>)], g: &Group) -> bool {
    filter.iter().all(|(k, v)| match (g.tags.get(k), v) {
        (Some(have), Some(want)) => have == want,
        (Some(_), None) => true,
        (None, _) => false,
    })
}

/// One page of matches.
pub struct Page<'a> {
    /// Every match, not only this page's.
    pub total: usize,
    pub items: Vec<&'a Group>,
    /// The sequence number of the first match after this page.
    pub next: Option<u64>,
}

impl Groups {
    pub fn insert(&mut self, spec: NewGroup) -> &Group {
        let mut id = new_id();
        // 103 bits of randomness make a clash practically impossible; be exact anyway.
        while self.by_id.contains_key(&id) {
            id = new_id();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(id.clone(), seq);
        self.by_seq.entry(seq).or_insert(Group::new(seq, id, spec))
    }

    pub fn get(&self, id: &str) -> Option<&Group> {
        self.by_id.get(id).and_then(|seq| self.by_seq.get(seq))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Group> {
        let seq = self.by_id.get(id)?;
        self.by_seq.get_mut(seq)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Group> {
        let seq = self.by_id.remove(id)?;
        self.by_seq.remove(&seq)
    }

    pub fn clear(&mut self) {
        self.by_seq.clear();
        self.by_id.clear();
    }

    /// Every group in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.by_seq.values()
    }

    /// The groups named by `ids` (unknown ones skipped, duplicates once), in creation order;
    /// every group when `ids` is `None`. Looking ids up keeps id queries (the proxy's
    /// metadata lookups) independent of how many groups exist.
    pub fn candidates<'a>(
        &'a self,
        ids: Option<&[String]>,
    ) -> Box<dyn Iterator<Item = &'a Group> + 'a> {
        match ids {
            None => Box::new(self.by_seq.values()),
            Some(ids) => {
                let seqs: BTreeSet<u64> = ids
                    .iter()
                    .filter_map(|id| self.by_id.get(id).copied())
                    .collect();
                Box::new(seqs.into_iter().filter_map(|seq| self.by_seq.get(&seq)))
            }
        }
    }

    /// Matches of `filter` (all groups when `None`) from sequence `from` on, `limit` of them.
    pub fn page(&self, filter: Option<&Filter>, from: u64, limit: usize) -> Page<'_> {
        let ids = filter.and_then(|f| f.ids.as_deref());
        let mut page = Page {
            total: 0,
            items: Vec::new(),
            next: None,
        };
        for g in self
            .candidates(ids)
            .filter(|g| filter.is_none_or(|f| f.matches(g)))
        {
            page.total += 1;
            if g.seq < from {
                continue;
            }
            if page.items.len() < limit {
                page.items.push(g);
            } else if page.next.is_none() {
                page.next = Some(g.seq);
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> (Groups, Vec<String>) {
        let mut groups = Groups::default();
        let ids = (0..5)
            .map(|i| {
                let spec = NewGroup::new(format!("g{i}"), "cn-hangzhou")
                    .resource_group(if i % 2 == 0 { "rg-a" } else { "rg-b" })
                    .tag("n", i.to_string());
                groups.insert(spec).id.clone()
            })
            .collect();
        (groups, ids)
    }

    #[test]
    fn pages_in_creation_order_with_the_full_total() {
        let (groups, ids) = seeded();
        let first = groups.page(None, 0, 2);
        assert_eq!(first.total, 5);
        assert_eq!(
            first.items.iter().map(|g| &g.id).collect::<Vec<_>>(),
            vec![&ids[0], &ids[1]]
        );
        let second = groups.page(None, first.next.unwrap(), 2);
        assert_eq!(second.items[0].id, ids[2]);
        let last = groups.page(None, second.next.unwrap(), 2);
        assert_eq!((last.items.len(), last.next), (1, None));
    }

    #[test]
    fn filters_combine() {
        let (groups, ids) = seeded();
        let f = Filter {
            resource_group: Some("rg-a".into()),
            ..Filter::default()
        };
        assert_eq!(groups.page(Some(&f), 0, 20).total, 3);
        let f = Filter {
            resource_group: Some("rg-a".into()),
            tags: vec![("n".into(), Some("2".into()))],
            ..Filter::default()
        };
        let page = groups.page(Some(&f), 0, 20);
        assert_eq!(
            page.items.iter().map(|g| &g.id).collect::<Vec<_>>(),
            vec![&ids[2]]
        );
        let f = Filter {
            ids: Some(vec![ids[3].clone(), "eci-missing".into(), ids[1].clone()]),
            ..Filter::default()
        };
        let page = groups.page(Some(&f), 0, 20);
        assert_eq!(
            page.items.iter().map(|g| &g.id).collect::<Vec<_>>(),
            vec![&ids[1], &ids[3]]
        );
        let f = Filter {
            tags: vec![("n".into(), None)],
            status: Some("Stopped".into()),
            ..Filter::default()
        };
        assert_eq!(groups.page(Some(&f), 0, 20).total, 0);
    }

    #[test]
    fn removal_keeps_the_index_consistent() {
        let (mut groups, ids) = seeded();
        assert!(groups.remove(&ids[0]).is_some());
        assert!(groups.get(&ids[0]).is_none());
        assert!(groups.remove(&ids[0]).is_none());
        assert_eq!(groups.iter().count(), 4);
    }
}
