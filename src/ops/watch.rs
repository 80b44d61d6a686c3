//! Watching the policy directory for changes, with `notify`.
//!
//! The directory itself is watched, non-recursively, and any event that can mean a change
//! (not merely a file being opened or read) "kicks" the reload task, which then re-reads the
//! directory and compares contents. This is deliberately coarse: a Kubernetes ConfigMap
//! volume never modifies the files a reader sees. It writes a new `..<timestamp>` directory,
//! points a temporary `..data_tmp` link at it and renames that over `..data`, so the visible
//! `principals.toml -> ..data/principals.toml` links never change at all. A watcher that
//! waits for writes to the files it knows misses that; an event on any entry of the
//! directory (here: the `..data` rename) does not. Events come in bursts (an editor's
//! write-and-rename, the kubelet's several steps), so the reload task [`debounce`]s them.

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the directory must stay quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(100);
/// A directory that never stays quiet is still reloaded this often, so that changes take
/// effect within a second (SPEC §7) however busy it is.
pub const MAX_DELAY: Duration = Duration::from_millis(400);

/// Starts watching `dir`; every relevant event (or watch error) calls `kick.notify_one()`.
/// The watch lasts as long as the returned watcher is kept. `None` (logged) if the platform
/// refuses the watch, e.g. when out of inotify watches: the periodic check still works.
pub fn watch(dir: &Path, kick: Arc<Notify>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if relevant(&event.kind) => kick.notify_one(),
        Ok(_) => {}
        Err(e) => {
            // The watch may have lost events (a queue overflow, say): look again.
            tracing::warn!("watching the policy directory: {e}");
            kick.notify_one();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "cannot watch the policy directory ({e}); relying on the periodic check"
            );
            return None;
        }
    };
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(
                "cannot watch the policy directory {} ({e}); relying on the periodic check",
                dir.display()
            );
            None
        }
    }
}

/// Whether an event can mean that the directory's contents changed. Opening, reading and
/// closing a file without writing cannot, and must be ignored: the reload itself opens
/// every file, and would otherwise kick itself forever.
pub fn relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Called after a first kick: returns once no kick has come for [`QUIET`], or after
/// [`MAX_DELAY`] in all.
pub async fn debounce(kick: &Notify) {
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
        tokio::select! {
            _ = kick.notified() => {
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
            }
            _ = tokio::time::sleep_until(quiet_until) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};
    use std::time::Instant;

    #[test]
    fn reads_are_not_changes_but_writes_renames_and_removals_are() {
        assert!(!relevant(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!relevant(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!relevant(&EventKind::Access(AccessKind::Read)));
        assert!(relevant(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(relevant(&EventKind::Create(CreateKind::Any)));
        assert!(relevant(&EventKind::Modify(ModifyKind::Name(
            RenameMode::Both
        ))));
        assert!(relevant(&EventKind::Remove(notify::event::RemoveKind::Any)));
        assert!(relevant(&EventKind::Any));
    }

    /// Waits for a kick, at most `within`.
    async fn kicked(kick: &Notify, within: Duration) -> bool {
        tokio::time::timeout(within, kick.notified()).await.is_ok()
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_configmap_data_link_swap_is_seen_and_reading_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let v1 = dir.join("..2026_11_28_10_00_00.123");
        std::fs::create_dir(&v1).unwrap();
        std::fs::write(v1.join("principals.toml"), "one").unwrap();
        std::os::unix::fs::symlink("..2026_11_28_10_00_00.123", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/principals.toml", dir.join("principals.toml")).unwrap();

        let kick = Arc::new(Notify::new());
        let _watcher = watch(dir, kick.clone()).expect("a watch");

        // Reading through the link, as a reload does, is no change.
        assert_eq!(
            std::fs::read_to_string(dir.join("principals.toml")).unwrap(),
            "one"
        );
        assert!(!kicked(&kick, Duration::from_millis(300)).await);

        // The kubelet's update: a new directory, a temporary link renamed over `..data`.
        let v2 = dir.join("..2026_11_28_10_05_00.456");
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v2.join("principals.toml"), "two").unwrap();
        std::os::unix::fs::symlink("..2026_11_28_10_05_00.456", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        std::fs::remove_dir_all(&v1).unwrap();
        assert!(kicked(&kick, Duration::from_secs(5)).await);
        assert_eq!(
            std::fs::read_to_string(dir.join("principals.toml")).unwrap(),
            "two"
        );
    }

    #[tokio::test]
    async fn an_in_place_write_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("p.json"), "{}").unwrap();
        let kick = Arc::new(Notify::new());
        let _watcher = watch(tmp.path(), kick.clone()).expect("a watch");
        std::fs::write(tmp.path().join("p.json"), "{ }").unwrap();
        assert!(kicked(&kick, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn debounce_waits_for_quiet_but_not_forever() {
        let kick = Arc::new(Notify::new());
        let started = Instant::now();
        debounce(&kick).await;
        let quiet = started.elapsed();
        assert!(quiet >= QUIET && quiet < MAX_DELAY, "{quiet:?}");

        // Kicked every 20 ms without pause: still over by MAX_DELAY (plus scheduling).
        let kicker = {
            let kick = kick.clone();
            tokio::spawn(async move {
                loop {
                    kick.notify_one();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let started = Instant::now();
        debounce(&kick).await;
        let busy = started.elapsed();
        kicker.abort();
        assert!(
            busy >= MAX_DELAY - Duration::from_millis(30) && busy < MAX_DELAY * 3,
            "{busy:?}"
        );
    }
}
