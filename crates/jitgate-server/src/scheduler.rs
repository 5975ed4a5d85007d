//! The scheduler ends grants at expiry, lapses requests whose window closed and activates
//! approved requests when their window opens. It sleeps until the next deadline the store
//! knows of (at most one second, so clock jumps and missed wake-ups are caught quickly).

use crate::service;
use crate::state::AppState;
use std::time::Duration;

const MAX_SLEEP: Duration = Duration::from_secs(1);

pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        // `tick` looks for due work with a read first and takes the write lock only when
        // there is some, so waking often (after every API change) costs little.
        if let Err(e) = service::tick(&state).await {
            tracing::error!(error = %e, "scheduler pass failed; retrying");
        }
        // Overdue post-session reviews are notified once each (a read when there are none).
        if let Err(e) = crate::reviews::notify_overdue(&state).await {
            tracing::error!(error = %e, "overdue review pass failed; retrying");
        }
        let sleep = next_sleep(&state).await;
        let wake_at = state.clock.now() + chrono::Duration::from_std(sleep).unwrap_or_default();
        state.next_wake_ms.store(
            wake_at.timestamp_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = state.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn next_sleep(state: &AppState) -> Duration {
    let next = match state.store.read().await {
        Ok(mut tx) => tx.next_deadline().await.ok().flatten(),
        Err(_) => None,
    };
    match next {
        Some(t) => {
            let ms = (t - state.clock.now()).num_milliseconds().max(0) as u64;
            Duration::from_millis(ms).min(MAX_SLEEP)
        }
        None => MAX_SLEEP,
    }
}
