//! Shutdown for background workers (key maintenance, counter purges, the mail outbox to come).
//!
//! The daemon owns one [`Shutdown`]; each worker holds a [`ShutdownSignal`] and checks it
//! between jobs, never in the middle of one (a mail half-sent must not be aborted), then
//! drops it. After SIGTERM the daemon triggers the shutdown and waits, up to a deadline, for
//! every signal to be dropped (the pattern of tokio's mini-redis `shutdown.rs`).

use std::time::Duration;

use tokio::sync::watch;

pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// A worker's view of the shutdown: cheap to clone, one per task.
#[derive(Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Self { tx }
    }

    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }

    /// Tells every worker to stop after its current job.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Waits until every [`ShutdownSignal`] is dropped; `false` if `deadline` passed first.
    pub async fn drained(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.tx.closed())
            .await
            .is_ok()
    }
}

impl ShutdownSignal {
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the shutdown is triggered (at once if it already was).
    pub async fn triggered(&mut self) {
        // An error means the `Shutdown` itself is gone: the daemon is stopping anyway.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `period` unless the shutdown comes first; `false` when it did.
    pub async fn sleep(&mut self, period: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(period) => true,
            () = self.triggered() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_stop_between_jobs_and_are_awaited() {
        let shutdown = Shutdown::new();
        let mut signal = shutdown.signal();
        let worker = tokio::spawn(async move {
            let mut jobs = 0;
            while signal.sleep(Duration::from_millis(5)).await {
                jobs += 1;
            }
            jobs
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!shutdown.signal().is_triggered());
        shutdown.trigger();
        assert!(shutdown.drained(Duration::from_secs(5)).await);
        assert!(worker.await.unwrap() > 0);
    }

    #[tokio::test]
    async fn a_stuck_worker_is_reported() {
        let shutdown = Shutdown::new();
        let _held = shutdown.signal();
        shutdown.trigger();
        assert!(!shutdown.drained(Duration::from_millis(20)).await);
    }
}
