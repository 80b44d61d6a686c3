//! The policy store: the snapshot in force (behind one `arc-swap`, read once per request)
//! and the reload bookkeeping beside it. Reload writes it, the admin listener reads it, the
//! proxy composes it into its state: none of them reaches into another.

use super::reload::ReloadState;
use crate::diagnostics::Diagnostics;
use crate::snapshot::{Account, Snapshot};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct PolicyStore {
    dir: PathBuf,
    account: Account,
    current: ArcSwap<Snapshot>,
    pub(crate) reload: ReloadState,
}

impl PolicyStore {
    /// Loads `dir` as generation 1, reporting every problem. Warnings are logged; the
    /// generation gauges are set (the first load is not a reload, so it is not counted).
    pub fn open(dir: &Path, account: Account) -> Result<Self, Diagnostics> {
        let (reload, read) = ReloadState::first_read(dir);
        let mut snapshot = Snapshot::build(dir, account.clone(), read?)?;
        for warning in &snapshot.warnings {
            tracing::warn!("{warning}");
        }
        snapshot.generation = 1;
        super::metrics::snapshot_loaded(1, snapshot.loaded_at);
        Ok(Self {
            dir: dir.to_owned(),
            account,
            current: ArcSwap::from_pointee(snapshot),
            reload,
        })
    }

    /// The snapshot in force. A request takes it once and decides on it throughout, so a
    /// reload in the middle cannot mix two policy sets.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub(crate) fn swap(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn account(&self) -> Account {
        self.account.clone()
    }

    /// Reload bookkeeping for `/v1/status`.
    pub fn reload_state(&self) -> &ReloadState {
        &self.reload
    }
}
