//! The few facts about container groups that authorization needs, shared by the decision
//! engine (which reads them), the metadata client (which fetches them) and the in-memory
//! backend (which owns them).

/// A container group's tags (or a request's `Tag.N`): few, so a sorted vector beats a map.
/// Keys are unique; [`Tags::set`] replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds from pairs; a later duplicate key replaces an earlier one.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut tags = Self::new();
        for (k, v) in pairs {
            tags.set(k.into(), v.into());
        }
        tags
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn set(&mut self, key: String, value: String) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            self.0.remove(i);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Pairs sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when every pair of `wanted` is present here with the same value.
    pub fn contains_all(&self, wanted: &Tags) -> bool {
        wanted.iter().all(|(k, v)| self.get(k) == Some(v))
    }
}

/// What ramgate needs to know about one existing container group, besides its id (which
/// travels beside it): many groups share one resource group and set of tags, so the
/// metadata cache keeps one shared copy of each (docs/PERFORMANCE.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerGroupMeta {
    pub resource_group: String,
    pub tags: Tags,
}
