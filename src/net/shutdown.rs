//! A cloneable shutdown signal that every server loop and background task selects on.
//!
//! One `Shutdown` is created per process (or per in-process server in tests and the demo);
//! clones are handed to each listener. Triggering any clone stops them all. A `watch`
//! channel is used rather than a broadcast so that a task that subscribes *after* the
//! trigger still sees it (a late-starting listener must not miss a shutdown).

use std::sync::Arc;
use tokio::sync::watch;

/// The shutdown signal. Cheap to clone; all clones share one state.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Starts the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] has been called (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // `wait_for` checks the current value first, so a trigger that happened before
        // this call is not missed. It only errs when the sender is gone, which cannot
        // happen while `self` holds it.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }

    /// Spawns a task that triggers this signal on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
    /// Must be called inside a tokio runtime.
    pub fn trigger_on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            this.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot install a SIGTERM handler ({e}); only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_trigger_before_waiting_is_not_missed() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        s.clone().trigger();
        assert!(s.is_triggered());
        tokio::time::timeout(Duration::from_secs(1), s.wait())
            .await
            .expect("wait resolves after an earlier trigger");
    }

    #[tokio::test]
    async fn waiters_wake_on_trigger() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.trigger();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("waiter wakes")
            .expect("waiter task ok");
    }
}
