//! Bounded inference: engine work runs on tokio's blocking threads, at most `workers` at a
//! time plus `queue` waiting. Beyond that a request is refused at once (503 with
//! Retry-After) instead of piling up in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// The pool is saturated: the caller answers 503 with Retry-After.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("all inference workers are busy")]
pub struct Busy;

/// Admission control for engine work.
#[derive(Debug, Clone)]
pub struct InferencePool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl InferencePool {
    /// `workers` concurrent jobs, up to `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> InferencePool {
        InferencePool {
            running: Arc::new(Semaphore::new(workers.max(1))),
            admitted: Arc::new(Semaphore::new(workers.max(1) + queue)),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Jobs admitted and not finished (running or waiting): the queue-depth gauge.
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread once a worker is free; `Busy` when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let admission = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let _worker = self
                .running
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Busy)?;
            tokio::task::spawn_blocking(job).await.map_err(|_| Busy)
        }
        .await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        drop(admission);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_instead_of_growing() {
        let pool = InferencePool::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let blocker = {
            let pool = pool.clone();
            let rx = rx.clone();
            tokio::spawn(async move {
                pool.run(move || rx.lock().map(|r| r.recv().ok()).ok())
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 7).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(pool.depth(), 2);
        assert!(pool.run(|| 1).await.is_err(), "third job is refused");
        tx.send(()).unwrap();
        assert!(blocker.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
        assert_eq!(pool.depth(), 0);
    }
}
