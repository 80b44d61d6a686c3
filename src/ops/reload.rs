//! Hot reload: a change in the policy directory (seen by the [`watch`](super::watch)er,
//! debounced), a periodic content check (the backstop for events a watch can miss: a
//! directory replaced whole, a link re-pointed outside it, a full inotify queue) and
//! `SIGHUP` all reload the whole directory into a new snapshot, validated, then swapped in
//! with one `arc-swap` store, so each request sees exactly one snapshot. A failed reload
//! changes nothing, logs every problem with file, line and column, is counted, and is kept
//! in [`ReloadState`] for `/v1/status` until a later load succeeds.
//!
//! Every trigger funnels into [`reload_now`], which reads the directory and compares it
//! with what the last attempt read: the watcher, the periodic check and a burst of events
//! may all notice one change, but it is loaded, logged and counted once. `SIGHUP` always
//! reloads (and is always counted): it is an operator asking.
//!
//! The periodic check reads nothing while each file's size, modification time and inode
//! are as it last saw them: reading a 10,000-policy directory every half second took
//! about a tenth of a core, for nothing. A change those keep (an edit within one clock tick
//! that keeps the size) is still seen by the watcher.

use super::store::PolicyStore;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::net::Shutdown;
use crate::snapshot::{read_sources, Snapshot};
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// How often the directory's contents are compared with the last load's, whatever the
/// watcher says.
pub const POLL: Duration = Duration::from_millis(500);

/// What set off a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A file-system event in the policy directory.
    Watch,
    /// The periodic content check.
    Poll,
    /// `SIGHUP`.
    Signal,
}

/// How a reload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new snapshot, of this generation, is in use.
    Swapped(u64),
    /// The directory holds what is already in use (or what the last attempt found).
    Unchanged,
    /// The directory is invalid; the snapshot in use stays.
    Failed,
}

/// One problem of a failed reload, for `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub hint: Option<String>,
}

/// The last failed reload: when, why it ran, and every problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadError {
    pub at: String,
    pub trigger: Trigger,
    /// Every problem as `ramgate check` prints it (`<file>:<line>:<column>: error: ...`).
    pub message: String,
    pub problems: Vec<Problem>,
}

/// The last reload attempt that did something (swapped, failed, or was asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attempt {
    #[serde(serialize_with = "rfc3339_ser")]
    pub at: SystemTime,
    pub trigger: Trigger,
    pub outcome: Outcome,
}

/// Reload bookkeeping, kept in the [`PolicyStore`]. Requests never touch it: they read the
/// snapshot only.
#[derive(Debug, Default)]
pub struct ReloadState {
    /// Held for a whole reload, so that two triggers never load at once (which could
    /// number two snapshots alike, or swap an older reading in after a newer one). Holds
    /// what the last attempt saw.
    serial: Mutex<LastSeen>,
    /// What `/v1/status` shows; locked only briefly.
    status: Mutex<Status>,
}

/// What the last reload attempt saw of the directory.
#[derive(Debug, Default)]
struct LastSeen {
    /// A fingerprint of the names and contents read.
    content: Option<u64>,
    /// The [`stamp`] taken before they were read.
    stamp: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Status {
    last_error: Option<ReloadError>,
    last_attempt: Option<Attempt>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing is left half-updated under these locks: a panic elsewhere must not stop
    // reloads or the status page.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReloadState {
    /// Reads the policy directory for the start-up load, remembering what it saw, so that
    /// the first periodic check does not build it a second time.
    pub fn first_read(dir: &Path) -> (Self, Result<Vec<(PathBuf, String)>, Diagnostics>) {
        let stamp = stamp(dir);
        let read = read_sources(dir);
        let seen = LastSeen {
            content: Some(fingerprint(&read)),
            stamp: Some(stamp),
        };
        let state = Self {
            serial: Mutex::new(seen),
            status: Mutex::default(),
        };
        (state, read)
    }

    /// The last failed reload, unless a load succeeded since.
    pub fn last_error(&self) -> Option<ReloadError> {
        lock(&self.status).last_error.clone()
    }

    /// The last reload attempt that swapped, failed, or was asked for by `SIGHUP`.
    pub fn last_attempt(&self) -> Option<Attempt> {
        lock(&self.status).last_attempt
    }
}

/// Reloads now, unless (for any trigger but `SIGHUP`) the directory reads exactly as the
/// last attempt found it, or (for the periodic check) its files' stamps are unchanged.
/// Blocking: file reads and policy compilation.
pub fn reload_now(store: &PolicyStore, trigger: Trigger) -> Outcome {
    let dir = store.dir();
    let mut last = lock(&store.reload.serial);
    // Taken before reading: a file changed after this is seen by the next check.
    let stamp = stamp(dir);
    if trigger == Trigger::Poll && last.stamp == Some(stamp) {
        return Outcome::Unchanged;
    }
    last.stamp = Some(stamp);
    // Every file the snapshot would be built from, read once: what is fingerprinted is
    // exactly what is compiled.
    let read = read_sources(dir);
    let fingerprint = fingerprint(&read);
    let forced = trigger == Trigger::Signal;
    if !forced && last.content == Some(fingerprint) {
        return Outcome::Unchanged;
    }
    last.content = Some(fingerprint);
    let outcome = build_and_swap(store, trigger, read);
    // The build's scratch (and the replaced snapshot, unless a request still holds it) is
    // free now: give it back rather than keep the load's peak resident.
    crate::ops::memory::release_free_heap();
    outcome
}

/// Builds a snapshot from what was read and swaps it in if it differs from the current
/// one; records and counts the attempt.
fn build_and_swap(
    store: &PolicyStore,
    trigger: Trigger,
    read: Result<Vec<(PathBuf, String)>, Diagnostics>,
) -> Outcome {
    let forced = trigger == Trigger::Signal;
    let current = store.current();
    let built = read.and_then(|sources| Snapshot::build(store.dir(), store.account(), sources));
    let outcome = match built {
        Ok(mut next) => {
            let had_error = lock(&store.reload.status).last_error.take().is_some();
            if next.content_hash == current.content_hash && next.files == current.files {
                // Nothing to swap. Counted only when asked for, or when it ends an error
                // (the directory was broken and is back as it was): both are reloads an
                // operator wants to see succeed.
                if !(forced || had_error) {
                    return Outcome::Unchanged;
                }
                tracing::info!(
                    generation = current.generation,
                    ?trigger,
                    "policy directory valid and unchanged"
                );
                Outcome::Unchanged
            } else {
                for warning in &next.warnings {
                    tracing::warn!("{warning}");
                }
                next.generation = current.generation + 1;
                let generation = next.generation;
                let files = next.files.len();
                store.swap(next);
                tracing::info!(generation, files, ?trigger, "policy snapshot reloaded");
                Outcome::Swapped(generation)
            }
        }
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!("policy reload failed; the policies in force stay: {p}");
            }
            let error = ReloadError {
                at: rfc3339(SystemTime::now()),
                trigger,
                message: problems.to_string(),
                problems: problems.0.iter().map(problem).collect(),
            };
            lock(&store.reload.status).last_error = Some(error);
            Outcome::Failed
        }
    };
    lock(&store.reload.status).last_attempt = Some(Attempt {
        at: SystemTime::now(),
        trigger,
        outcome,
    });
    // Counted only once the status page tells the same story: whoever sees the counter
    // move finds this attempt in `/v1/status`.
    match outcome {
        Outcome::Failed => crate::ops::metrics::reload(false, current.generation),
        Outcome::Swapped(generation) => crate::ops::metrics::reload(true, generation),
        Outcome::Unchanged => crate::ops::metrics::reload(true, current.generation),
    }
    outcome
}

/// A hash of the directory's entries as `stat` sees them through links (name, size,
/// modification time, device and inode), or of why one could not be read. A ConfigMap's
/// `..data` swap changes what every link leads to, so it changes the stamp.
fn stamp(dir: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut seen: Vec<_> = entries
                .map(|entry| {
                    let entry = entry.map_err(|e| e.kind())?;
                    let meta = std::fs::metadata(entry.path()).map_err(|e| e.kind())?;
                    Ok((entry.file_name(), file_stamp(&meta)))
                })
                .collect::<Result<_, std::io::ErrorKind>>()
                .unwrap_or_else(|kind| vec![(format!("{kind:?}").into(), [0; 4])]);
            seen.sort_unstable();
            seen.hash(&mut h);
        }
        Err(e) => format!("{:?}", e.kind()).hash(&mut h),
    }
    h.finish()
}

fn file_stamp(meta: &std::fs::Metadata) -> [u64; 4] {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    [meta.len(), modified, dev, ino]
}

/// A hash of the names and contents read, or of the reading's failure: a directory that
/// stays unreadable in the same way is reported once, not on every check.
fn fingerprint(read: &Result<Vec<(PathBuf, String)>, Diagnostics>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match read {
        Ok(sources) => {
            0u8.hash(&mut h);
            sources.hash(&mut h);
        }
        Err(problems) => {
            1u8.hash(&mut h);
            problems.to_string().hash(&mut h);
        }
    }
    h.finish()
}

fn problem(d: &Diagnostic) -> Problem {
    Problem {
        file: d.file.display().to_string(),
        line: d.position.line,
        column: d.position.column,
        message: d.message.clone(),
        hint: d.hint.clone(),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn rfc3339_ser<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// Starts the reload triggers until `shutdown`: the directory watch (debounced), the
/// periodic check, and `SIGHUP`. The watch and the signal handler are in place when this
/// returns, so a change or a `SIGHUP` right after start-up is not missed (an unhandled
/// `SIGHUP` would end the process). Must be called inside a tokio runtime.
pub fn spawn(store: Arc<PolicyStore>, shutdown: Shutdown) {
    let dir = store.dir().to_owned();
    let kick = Arc::new(Notify::new());
    let mut watcher = crate::ops::watch::watch(&dir, kick.clone());
    let mut hangup = Hangup::new();
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = shutdown.wait() => return,
                _ = kick.notified() => {
                    crate::ops::watch::debounce(&kick).await;
                    Trigger::Watch
                }
                _ = poll.tick() => Trigger::Poll,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the policy directory");
                    Trigger::Signal
                }
            };
            let reloading = store.clone();
            let outcome = tokio::task::spawn_blocking(move || reload_now(&reloading, trigger))
                .await
                .unwrap_or(Outcome::Failed);
            if trigger == Trigger::Poll && outcome != Outcome::Unchanged {
                // The watch missed this change: the directory may have been replaced (the
                // watch then follows a deleted inode). Watch it afresh.
                tracing::debug!("the periodic check found a change first; watching afresh");
                drop(watcher.take());
                watcher = crate::ops::watch::watch(&dir, kick.clone());
            }
        }
    });
}

/// `SIGHUP`, where there is such a thing.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .map_err(|e| tracing::warn!("cannot handle SIGHUP ({e}); reload by changing files"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on each `SIGHUP`; never, where there is none.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Account;
    use std::path::Path;

    const PRINCIPALS: &str = r#"
[account]
guardrails = []

[[resource_groups]]
id = "rg-default"
name = "default"
default = true

[[users]]
name = "liumi"
attach = [{ policy = "tagged" }]

[[roles]]
name = "AliyunECIContainerGroupRole"
attach = [{ policy = "AliyunECIContainerGroupRolePolicy" }]
"#;

    fn policy(env: &str) -> String {
        format!(
            r#"{{"Version":"1","Statement":[{{"Action":"eci:*","Resource":"*","Effect":"Allow",
 "Condition":{{"StringEquals":{{"eci:tag/env":"{env}"}}}}}}]}}"#
        )
    }

    /// A store over a fresh policy directory.
    fn store(tmp: &Path) -> Arc<PolicyStore> {
        let dir = tmp.join("policies");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("principals.toml"), PRINCIPALS).unwrap();
        std::fs::write(dir.join("tagged.json"), policy("test")).unwrap();
        let account = Account {
            id: "1234567890123456".into(),
            region: "cn-hangzhou".into(),
        };
        Arc::new(PolicyStore::open(&dir, account).unwrap())
    }

    fn write(store: &PolicyStore, name: &str, content: &str) {
        std::fs::write(store.dir().join(name), content).unwrap();
    }

    #[tokio::test]
    async fn a_change_is_swapped_in_once_with_the_next_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        assert_eq!(store.current().generation, 1);
        // The first look finds what is in use.
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Unchanged);
        write(&store, "tagged.json", &policy("prod"));
        assert_eq!(reload_now(&store, Trigger::Watch), Outcome::Swapped(2));
        // The periodic check then sees the same change: nothing more happens.
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Unchanged);
        assert_eq!(store.current().generation, 2);
        assert!(store.reload.last_error().is_none());
        assert_eq!(
            store.reload.last_attempt().map(|a| a.outcome),
            Some(Outcome::Swapped(2))
        );
    }

    #[tokio::test]
    async fn the_periodic_check_reloads_what_the_watcher_missed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        // A change no event announced: only the periodic check can find it.
        write(&store, "tagged.json", &policy("production"));
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Swapped(2));
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Unchanged);
    }

    #[test]
    fn the_stamp_follows_sizes_links_and_names_but_not_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir(dir.join("v1")).unwrap();
        std::fs::create_dir(dir.join("v2")).unwrap();
        std::fs::write(dir.join("v1/p.json"), "{}").unwrap();
        std::fs::write(dir.join("v2/p.json"), "{}").unwrap();
        std::fs::write(dir.join("a.json"), "{}").unwrap();
        let first = stamp(dir);
        let _ = std::fs::read(dir.join("a.json")).unwrap();
        assert_eq!(stamp(dir), first, "reading changes nothing");
        std::fs::write(dir.join("a.json"), "{ }").unwrap();
        let resized = stamp(dir);
        assert_ne!(resized, first);
        std::fs::write(dir.join("b.json"), "{}").unwrap();
        let added = stamp(dir);
        assert_ne!(added, resized);
        #[cfg(unix)]
        {
            // A ConfigMap-style swap: same name, same size, another file behind the link.
            std::os::unix::fs::symlink(dir.join("v1/p.json"), dir.join("p.json")).unwrap();
            let linked = stamp(dir);
            std::fs::remove_file(dir.join("p.json")).unwrap();
            std::os::unix::fs::symlink(dir.join("v2/p.json"), dir.join("p.json")).unwrap();
            assert_ne!(stamp(dir), linked);
        }
    }

    #[tokio::test]
    async fn a_broken_directory_changes_nothing_and_is_reported_with_its_position() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        let before = store.current();
        write(
            &store,
            "tagged.json",
            "{\"Version\":\"1\",\n \"Statement\":[{\"Effect\":\"Allow\"]}\n",
        );
        assert_eq!(reload_now(&store, Trigger::Watch), Outcome::Failed);
        assert!(Arc::ptr_eq(&before, &store.current()));
        let error = store.reload.last_error().expect("the error is kept");
        assert_eq!(error.trigger, Trigger::Watch);
        let p = &error.problems[0];
        assert!(p.file.ends_with("tagged.json"), "{p:?}");
        assert_eq!(p.line, 2, "{p:?}");
        assert!(p.column > 1, "{p:?}");
        assert!(
            error.message.contains("tagged.json:2:"),
            "{}",
            error.message
        );

        // Seen again by another trigger: not reloaded (nor logged, nor counted) again.
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Unchanged);
        // SIGHUP always reloads.
        assert_eq!(reload_now(&store, Trigger::Signal), Outcome::Failed);
        assert_eq!(
            store.reload.last_error().map(|e| e.trigger),
            Some(Trigger::Signal)
        );

        // Put back as it was: valid again, nothing to swap, and the error is over.
        write(&store, "tagged.json", &policy("test"));
        assert_eq!(reload_now(&store, Trigger::Watch), Outcome::Unchanged);
        assert!(store.reload.last_error().is_none());
        assert_eq!(store.current().generation, 1);
    }

    #[tokio::test]
    async fn sighup_on_an_unchanged_directory_keeps_the_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        assert_eq!(reload_now(&store, Trigger::Signal), Outcome::Unchanged);
        assert_eq!(reload_now(&store, Trigger::Signal), Outcome::Unchanged);
        assert_eq!(store.current().generation, 1);
        assert_eq!(
            store.reload.last_attempt().map(|a| a.trigger),
            Some(Trigger::Signal)
        );
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_reported_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        std::fs::rename(store.dir(), tmp.path().join("gone")).unwrap();
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Failed);
        assert_eq!(reload_now(&store, Trigger::Poll), Outcome::Unchanged);
        let error = store.reload.last_error().unwrap();
        assert!(
            error.message.contains("cannot read the policy directory"),
            "{}",
            error.message
        );
        assert_eq!(store.current().generation, 1);
    }
}
