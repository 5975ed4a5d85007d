//! The password-hashing pool and the sign-ins in flight: handles the state holds.
//!
//! argon2id takes ~19 MiB and tens of milliseconds per check; run on unbounded blocking
//! threads, 128 concurrent wrong passwords took the server from ~290 MiB to 2.5 GiB. Here at
//! most `hash_concurrency` checks run at once (a semaphore, default one per core); up to
//! `hash_queue` more wait their turn, and beyond that a sign-in is refused at once with
//! `503 server_busy` and `Retry-After`, costing nothing.
//!
//! One check at a time per identity name: a second concurrent attempt for the same name is
//! refused (`429 login_backoff`) instead of slipping through before the first one's failure is
//! counted. Rules (how many failures, how long to wait) are `jitgate_core::lockout`; this
//! module only bounds the work.

use crate::error::ServerError;
use jitgate_core::Code;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

pub struct Throttle {
    pool: Arc<Semaphore>,
    /// Callers waiting for a permit.
    waiting: AtomicUsize,
    queue: usize,
    in_flight: Mutex<HashSet<String>>,
}

impl Throttle {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Throttle {
            pool: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// Run `work` (a password hash or check) on a blocking thread once a pool permit is
    /// free; `server_busy` without waiting when `hash_queue` callers already wait.
    pub async fn hash<T, F>(&self, work: F) -> Result<T, ServerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match self.pool.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(busy());
                }
                let got = self.pool.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                got.map_err(|_| ServerError::Internal("password pool closed".into()))?
            }
        };
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| ServerError::Internal(format!("password check: {e}")))?;
        Ok(out)
    }

    /// Mark `name` as being checked; `None` if it already is (the guard unmarks it).
    pub fn begin(self: &Arc<Self>, name: &str) -> Option<InFlight> {
        let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(name.to_string()) {
            return None;
        }
        Some(InFlight {
            throttle: Arc::clone(self),
            name: name.to_string(),
        })
    }

    /// Checks running now (for tests and the benchmark).
    pub fn running(&self, concurrency: usize) -> usize {
        concurrency.saturating_sub(self.pool.available_permits())
    }
}

fn busy() -> ServerError {
    ServerError::Throttled {
        code: Code::ServerBusy,
        message: "too many sign-ins are being checked at once; retry in a second".into(),
        retry_after_secs: 1,
    }
}

/// An identity name being checked; dropped when the check is over.
pub struct InFlight {
    throttle: Arc<Throttle>,
    name: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = self
            .throttle
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        set.remove(&self.name);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_the_pool_runs_and_the_queue_overflows_as_busy() {
        let t = Arc::new(Throttle::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        // One runs (blocked on the channel), one waits, the third is refused.
        let t1 = t.clone();
        let r1 = rx.clone();
        let first =
            tokio::spawn(async move { t1.hash(move || r1.lock().unwrap().recv().ok()).await });
        while t.pool.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let t2 = t.clone();
        let second = tokio::spawn(async move { t2.hash(|| 2).await });
        while t.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let third = t.hash(|| 3).await.unwrap_err();
        assert_eq!(third.code(), Code::ServerBusy);
        assert_eq!(third.retry_after_secs(), Some(1));
        tx.send(()).unwrap();
        assert!(first.await.unwrap().is_ok());
        assert_eq!(second.await.unwrap().unwrap(), 2);
        assert_eq!(t.hash(|| 4).await.unwrap(), 4);
    }

    #[test]
    fn one_check_per_identity_at_a_time() {
        let t = Arc::new(Throttle::new(2, 2));
        let a = t.begin("alice").unwrap();
        assert!(t.begin("alice").is_none());
        assert!(t.begin("bob").is_some());
        drop(a);
        assert!(t.begin("alice").is_some());
    }
}
