//! Watching the policy directory for changes, with inotify (Linux; elsewhere the periodic
//! check alone finds changes, within its half second).
//!
//! The directory itself is watched, non-recursively, and any event that can mean a change
//! "kicks" the reload task, which then re-reads the directory and compares contents. This
//! is deliberately coarse: a Kubernetes ConfigMap volume never modifies the files a reader
//! sees. It writes a new `..<timestamp>` directory, points a temporary `..data_tmp` link at
//! it and renames that over `..data`, so the visible
//! `principals.toml -> ..data/principals.toml` links never change at all. A watcher that
//! waits for writes to the files it knows misses that; an event on any entry of the
//! directory (here: the `..data` rename) does not. Events come in bursts (an editor's
//! write-and-rename, the kubelet's several steps), so the reload task [`debounce`]s them.
//!
//! Opening and reading are not asked for at all (`CHANGES`). The `notify` crate (used
//! before) always watches opens, so a reload's own reading of 10,000 files woke the
//! watcher 10,000 times; on a proxy with one core that made a reload a fifth slower.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the directory must stay quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(100);
/// A directory that never stays quiet is still reloaded this often, so that changes take
/// effect within a second (SPEC §7) however busy it is.
pub const MAX_DELAY: Duration = Duration::from_millis(400);

/// A running watch; it stops when dropped.
pub struct Watch(tokio::task::AbortHandle);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The events that can mean the directory's contents changed: an entry written, created,
/// removed, renamed or re-permissioned, or the directory itself moved or deleted.
#[cfg(target_os = "linux")]
const CHANGES: inotify::WatchMask = inotify::WatchMask::MODIFY
    .union(inotify::WatchMask::CLOSE_WRITE)
    .union(inotify::WatchMask::ATTRIB)
    .union(inotify::WatchMask::CREATE)
    .union(inotify::WatchMask::DELETE)
    .union(inotify::WatchMask::MOVED_FROM)
    .union(inotify::WatchMask::MOVED_TO)
    .union(inotify::WatchMask::DELETE_SELF)
    .union(inotify::WatchMask::MOVE_SELF);

/// Starts watching `dir`; every event (or watch error) calls `kick.notify_one()`. Must be
/// called inside a tokio runtime. `None` (logged) if the platform refuses the watch, e.g.
/// when out of inotify watches: the periodic check still works.
#[cfg(target_os = "linux")]
pub fn watch(dir: &Path, kick: Arc<Notify>) -> Option<Watch> {
    use futures_core::Stream;
    let started = inotify::Inotify::init().and_then(|inotify| {
        inotify.watches().add(dir, CHANGES)?;
        inotify.into_event_stream(vec![0u8; 4096])
    });
    let mut events = match started {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(
                "cannot watch the policy directory {} ({e}); relying on the periodic check",
                dir.display()
            );
            return None;
        }
    };
    let task = tokio::spawn(async move {
        while let Some(event) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut events).poll_next(cx)).await
        {
            if let Err(e) = event {
                // The watch may have lost events: look again.
                tracing::warn!("watching the policy directory: {e}");
            }
            // Every event asked for is a change, and a queue overflow means some were lost.
            kick.notify_one();
        }
    });
    Some(Watch(task.abort_handle()))
}

/// No watch here: the periodic check finds changes.
#[cfg(not(target_os = "linux"))]
pub fn watch(_dir: &Path, _kick: Arc<Notify>) -> Option<Watch> {
    None
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
    use std::time::Instant;

    /// Waits for a kick, at most `within`.
    async fn kicked(kick: &Notify, within: Duration) -> bool {
        tokio::time::timeout(within, kick.notified()).await.is_ok()
    }

    #[cfg(target_os = "linux")]
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

    #[cfg(target_os = "linux")]
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
