//! `GET /console/stream`: Server-Sent Events telling an open console that something it
//! shows changed.
//!
//! The stream task looks at the head of the event log every 500 ms (one indexed read; it
//! works the same with several servers on one PostgreSQL, where an in-process broadcast
//! would miss the other servers' events). New events the person may see are sent as one
//! `change` message: `[{seq, kind, request_id, grant_id}]`; the page then refreshes what
//! it shows through the API. Every few seconds the session is checked again: when it ended
//! (idle timeout, sign-out elsewhere, identity disabled) a `signed-out` message is sent and
//! the stream closes. It also closes when the server stops.

use super::session::{self, session_cookie};
use crate::auth::{self, Caller};
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jitgate_store::EventFilter;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(500);
/// Re-check the session every this many polls.
const RECHECK_EVERY: u32 = 10;

struct Watch {
    state: AppState,
    token: String,
    caller: Caller,
    last_seq: i64,
    polls: u32,
    done: bool,
    _slot: StreamSlot,
}

/// Live streams open per console session (by session token hash), across this process.
static OPEN_STREAMS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, usize>>> =
    std::sync::LazyLock::new(Default::default);

/// One of a session's `[limits] max_streams_per_session` streams; freed when dropped (the
/// stream ended or the browser went away).
struct StreamSlot(String);

impl StreamSlot {
    fn take(token: &str, max: usize) -> ApiResult<StreamSlot> {
        let key = auth::token_hash(token);
        let mut open = OPEN_STREAMS.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.clone()).or_default();
        if *n >= max {
            return Err(ServerError::Limit {
                code: jitgate_core::codes::Code::TooManyStreams,
                message: format!(
                    "this console session already has {max} live streams open \
                     ([limits] max_streams_per_session); close another tab of the console"
                ),
            });
        }
        *n += 1;
        Ok(StreamSlot(key))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = OPEN_STREAMS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.0);
            }
        }
    }
}

pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match open(state, &headers).await {
        Ok(watch) => {
            let events = futures_util::stream::unfold(watch, next);
            Sse::new(events)
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn open(state: AppState, headers: &HeaderMap) -> ApiResult<Watch> {
    let token = session_cookie(headers, &state)
        .ok_or_else(|| ServerError::Unauthenticated("not signed in".into()))?;
    session::touch(&state, &token, false).await?;
    let caller = auth::authenticate(&state, &token).await?;
    let slot = StreamSlot::take(&token, state.config.limits.max_streams_per_session)?;
    let (last_seq, _) = state.store.read().await?.chain_tip().await?;
    Ok(Watch {
        state,
        token,
        caller,
        last_seq,
        polls: 0,
        done: false,
        _slot: slot,
    })
}

/// Wait for the next message worth sending; `None` ends the stream.
async fn next(mut w: Watch) -> Option<(Result<SseEvent, Infallible>, Watch)> {
    if w.done {
        return None;
    }
    let mut shutdown = w.state.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return None;
                }
            }
        }
        w.polls += 1;
        if w.polls.is_multiple_of(RECHECK_EVERY) {
            let alive = match session::touch(&w.state, &w.token, false).await {
                // The identity's rights as they are now: a changed role changes what the
                // stream shows; a disabled identity's stream ends.
                Ok(()) => auth::authenticate(&w.state, &w.token)
                    .await
                    .map(|caller| w.caller = caller),
                Err(e) => Err(e),
            };
            if let Err(e) = alive {
                w.done = true;
                let msg = SseEvent::default()
                    .event("signed-out")
                    .data(json!({"message": e.to_string()}).to_string());
                return Some((Ok(msg), w));
            }
        }
        match changes(&mut w).await {
            Ok(items) if items.is_empty() => continue,
            Ok(items) => {
                let msg = SseEvent::default()
                    .event("change")
                    .data(serde_json::Value::Array(items).to_string());
                return Some((Ok(msg), w));
            }
            Err(e) => {
                // A passing database hiccup: try again at the next poll.
                tracing::warn!(error = %e, "console stream: reading new events");
                continue;
            }
        }
    }
}

/// New events since the last look that this caller may see (their ids and kinds only).
async fn changes(w: &mut Watch) -> ApiResult<Vec<serde_json::Value>> {
    let mut tx = w.state.store.read().await?;
    let (head, _) = tx.chain_tip().await?;
    if head <= w.last_seq {
        return Ok(Vec::new());
    }
    let events = tx
        .list_events(&EventFilter {
            after_seq: Some(w.last_seq),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let mut visible: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        w.last_seq = w.last_seq.max(e.seq);
        let ev = e.event;
        let see = if w.caller.sees_everything() {
            true
        } else if let Some(rid) = &ev.request_id {
            match visible.get(rid) {
                Some(v) => *v,
                None => {
                    let v = match tx.get_request(rid).await? {
                        Some(r) => crate::visibility::can_view(&mut tx, &w.caller, &r).await?,
                        None => false,
                    };
                    visible.insert(rid.clone(), v);
                    v
                }
            }
        } else {
            false
        };
        if see {
            out.push(json!({
                "seq": e.seq,
                "kind": ev.kind.as_str(),
                "request_id": ev.request_id,
                "grant_id": ev.grant_id,
            }));
        }
    }
    Ok(out)
}
