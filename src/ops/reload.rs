//! Hot reload: `SIGHUP` and a periodic content-hash check reload the whole policy
//! directory into a new snapshot, validated, then swapped in with one `arc-swap` store, so
//! each request sees exactly one snapshot. A failed reload changes nothing, logs every
//! problem with file, line and column, and is kept for `/v1/status`.

use crate::net::Shutdown;
use crate::proxy::State;
use crate::snapshot::{list_files, Snapshot};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// The last failed reload's problems, if the latest attempt failed.
pub fn last_error(_state: &State) -> Option<String> {
    LAST_ERROR.lock().ok().and_then(|e| e.clone())
}

/// Reloads now. Returns whether a new snapshot was swapped in.
pub fn reload(state: &State) -> bool {
    let current = state.snapshot.load();
    match Snapshot::load(&state.config.policy.dir, state.config.account()) {
        Ok(mut next) => {
            if next.content_hash == current.content_hash && next.files == current.files {
                return false;
            }
            next.generation = current.generation + 1;
            let generation = next.generation;
            state.snapshot.store(Arc::new(next));
            if let Ok(mut e) = LAST_ERROR.lock() {
                *e = None;
            }
            crate::ops::metrics::reload(true, generation);
            tracing::info!(generation, "policy snapshot reloaded");
            true
        }
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!("policy reload failed: {p}");
            }
            if let Ok(mut e) = LAST_ERROR.lock() {
                *e = Some(problems.to_string());
            }
            crate::ops::metrics::reload(false, current.generation);
            false
        }
    }
}

/// Spawns the reload triggers: SIGHUP, and a hash check every second (which also catches
/// a ConfigMap's `..data` symlink swap).
pub fn spawn(state: Arc<State>, shutdown: Shutdown) {
    let polled = state.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_seen = fingerprint(&polled);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait() => return,
            }
            let now = fingerprint(&polled);
            if now != last_seen {
                last_seen = now;
                let state = polled.clone();
                let _ = tokio::task::spawn_blocking(move || reload(&state)).await;
            }
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = shutdown.wait() => return,
            }
            tracing::info!("SIGHUP: reloading policies");
            let state = state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut e) = LAST_ERROR.lock() {
                    *e = None;
                }
                reload(&state)
            })
            .await;
        }
    });
}

/// What the files are now: names and contents, hashed.
fn fingerprint(state: &State) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let files = list_files(&state.config.policy.dir).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).ok()?.hash(&mut h);
    }
    Some(h.finish())
}
