//! Session recordings at the server: the chain rule applied to `recording.chunk` events as
//! gateways report them, chunk bytes accepted only when they match the hash already in the
//! evidence log, casts served to whoever may see the session's grant, and a grant's chunks
//! for its bundle. The rules (hash, framing, what may follow what) are
//! `jitgate_core::recording`'s.
//!
//! Why the hash travels in the event stream and the bytes separately: the event stream is
//! ordered and small, so every closed chunk's hash is in the log within moments (a cut or a
//! crash of the gateway loses at most the chunk it had not closed); the bytes may wait in
//! the gateway's spool, and are then checked against a hash an attacker holding the
//! gateway's key can no longer change.

use crate::auth::Caller;
use crate::error::{ApiResult, GatewayTrustCode, ServerError};
use crate::state::AppState;
use crate::views::RecordingView;
use jitgate_core::recording::{
    decode_hash, parse_frame, valid_session_id, ChainState, ChunkMeta, FrameError,
};
use jitgate_core::server_payload::RecordingChunkDetail;
use jitgate_core::{Code, Timestamp};
use jitgate_store::{RecordingChunkRecord, Tx};
use std::collections::{BTreeMap, HashMap};

/// The most rows `GET /recordings` reads (chunks, not sessions).
pub const LIST_ROWS: i64 = 100_000;

fn chain_err(gseq: i64, message: String) -> ServerError {
    ServerError::GatewayTrust {
        code: GatewayTrustCode::RecordingChain,
        message: format!("event gseq {gseq}: {message}"),
    }
}

/// Check one `recording.chunk` event of a gateway's batch against its session's chain (as
/// stored, and as changed by earlier events of the same batch) and return the row to write
/// with it. `grant` is the event's grant once the caller checked the gateway fronts it.
#[allow(
    clippy::too_many_arguments,
    reason = "one event's fields, as the batch loop has them"
)]
pub async fn accept_chunk_event(
    tx: &mut Tx,
    chains: &mut HashMap<String, ChainState>,
    gateway: &str,
    gseq: i64,
    session: Option<&str>,
    grant: Option<&str>,
    data: &serde_json::Value,
    at: Timestamp,
) -> ApiResult<RecordingChunkRecord> {
    let Some(session) = session.filter(|s| valid_session_id(s)) else {
        return Err(ServerError::InvalidBody(format!(
            "event gseq {gseq}: recording.chunk needs a session_id of 1–128 characters of A-Z a-z 0-9 . _ -"
        )));
    };
    let Some(grant) = grant else {
        return Err(ServerError::InvalidBody(format!(
            "event gseq {gseq}: recording.chunk needs the grant_id of its session"
        )));
    };
    let detail: RecordingChunkDetail = serde_json::from_value(data.clone()).map_err(|e| {
        ServerError::InvalidBody(format!("event gseq {gseq}: recording.chunk data: {e}"))
    })?;
    let meta = ChunkMeta::try_from((session, &detail)).map_err(|e| {
        ServerError::InvalidBody(format!("event gseq {gseq}: recording.chunk data: {e}"))
    })?;
    if !chains.contains_key(session) {
        let state = match tx.recording_head(session).await? {
            None => ChainState::new(session),
            Some(head) => {
                if head.gateway != gateway || head.grant_id != grant {
                    return Err(chain_err(
                        gseq,
                        format!(
                            "session {session}'s recording was started by another gateway or under another grant; a gateway records only its own sessions"
                        ),
                    ));
                }
                ChainState {
                    session_id: session.to_string(),
                    next_index: head.index + 1,
                    bytes: head.offset + head.length,
                    last_hash: decode_hash(&head.hash).unwrap_or_default(),
                    complete: head.last,
                }
            }
        };
        chains.insert(session.to_string(), state);
    }
    if let Some(state) = chains.get_mut(session) {
        state
            .push(&meta)
            .map_err(|e| chain_err(gseq, format!("session {session}: {e}")))?;
    }
    Ok(RecordingChunkRecord {
        session_id: session.to_string(),
        index: meta.index,
        grant_id: grant.to_string(),
        gateway: gateway.to_string(),
        event_seq: 0,
        offset: meta.offset,
        length: meta.length,
        last: meta.last,
        prev_hash: detail.prev_hash,
        hash: detail.hash,
        recorded_at: at,
        data: None,
        stored_at: None,
    })
}

fn refused(code: Code, message: String) -> ServerError {
    ServerError::Recording { code, message }
}

/// What storing a chunk's bytes did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Stored,
    /// The same bytes were stored before (a retry).
    AlreadyStored,
}

/// Store the bytes of chunk `index` of `session`, delivered by `gateway` as one frame.
pub async fn store_chunk(
    state: &AppState,
    gateway: &str,
    session: &str,
    index: u64,
    body: &[u8],
) -> ApiResult<Stored> {
    let (meta, bytes, used) = parse_frame(body).map_err(|e| {
        let what = match e {
            FrameError::HashMismatch { .. } => "the frame's bytes do not match its own hash",
            _ => "not a recording chunk frame",
        };
        refused(Code::InvalidRecordingChunk, format!("{what}: {e}"))
    })?;
    if used != body.len() {
        return Err(refused(
            Code::InvalidRecordingChunk,
            format!(
                "{} bytes follow the frame; send exactly one chunk per request",
                body.len() - used
            ),
        ));
    }
    if meta.session_id != session || meta.index != index {
        return Err(refused(
            Code::InvalidRecordingChunk,
            format!(
                "the frame is chunk {} of session {}, the URL names chunk {index} of session {session}",
                meta.index, meta.session_id
            ),
        ));
    }
    let mut tx = state.store.write().await?;
    let Some(row) = tx.recording_chunk(session, index).await? else {
        return Err(refused(
            Code::RecordingChunkUnknown,
            format!(
                "no recording.chunk event for chunk {index} of session {session} is recorded yet; deliver the gateway's events first, then retry"
            ),
        ));
    };
    // Another gateway's session is answered as if unknown: nothing is said about it.
    if row.gateway != gateway {
        return Err(refused(
            Code::RecordingChunkUnknown,
            format!("no recording.chunk event for chunk {index} of session {session} was recorded from this gateway"),
        ));
    }
    let recorded = RecordingChunkDetail {
        index: row.index,
        offset: row.offset,
        length: row.length,
        last: row.last,
        prev_hash: row.prev_hash.clone(),
        hash: row.hash.clone(),
    };
    if RecordingChunkDetail::from(&meta) != recorded {
        return Err(refused(
            Code::RecordingChunkMismatch,
            format!(
                "chunk {index} of session {session}: the frame (hash {}, {} bytes at {}) is not the chunk the evidence log recorded (hash {}, {} bytes at {}); a recorded chunk cannot be replaced",
                hex::encode(meta.hash), meta.length, meta.offset, row.hash, row.length, row.offset
            ),
        ));
    }
    if row.stored_at.is_some() {
        return Ok(Stored::AlreadyStored);
    }
    let stored = tx
        .store_recording_data(session, index, bytes, state.clock.now())
        .await?;
    tx.commit().await?;
    Ok(if stored {
        Stored::Stored
    } else {
        Stored::AlreadyStored
    })
}

/// Whether `caller` may see the sessions of `grant_id`: the session list's rule (security,
/// audit, admin and operations staff; the subject; whoever may see the request).
pub async fn may_see_grant(tx: &mut Tx, caller: &Caller, grant_id: &str) -> ApiResult<bool> {
    if caller.sees_everything() || caller.identity.has_role("operator") {
        return Ok(true);
    }
    let Some(g) = tx.get_grant(grant_id).await? else {
        return Ok(false);
    };
    if g.subject == caller.id() {
        return Ok(true);
    }
    match tx.get_request(&g.request_id).await? {
        Some(r) => crate::visibility::can_view(tx, caller, &r).await,
        None => Ok(false),
    }
}

/// A session's cast as far as it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    pub bytes: Vec<u8>,
    /// Chunks whose hash is in the log.
    pub chunks: u64,
    /// Chunks served up to here, counted from the first chunk: the chunks before the one
    /// asked for, and from it up to the first whose bytes are missing.
    pub served: u64,
    /// The last chunk was recorded and every chunk is served.
    pub complete: bool,
}

/// The cast of `session` from chunk `from` on, for a caller who may see its grant (others
/// get `not_found`).
pub async fn cast(state: &AppState, caller: &Caller, session: &str, from: u64) -> ApiResult<Cast> {
    let not_found = || ServerError::NotFound {
        what: "recording",
        id: session.to_string(),
        hint: "`jitgate recordings list` lists the recordings you can see",
    };
    let mut tx = state.store.read().await?;
    let Some(head) = tx.recording_head(session).await? else {
        return Err(not_found());
    };
    if !may_see_grant(&mut tx, caller, &head.grant_id).await? {
        return Err(not_found());
    }
    let total = head.index + 1;
    let from = from.min(total);
    let chunks = tx.recording_chunks(session, from, true).await?;
    let mut bytes = Vec::new();
    let mut served = from;
    for c in &chunks {
        let Some(data) = c.data.as_deref() else {
            break;
        };
        bytes.extend_from_slice(data);
        served += 1;
    }
    Ok(Cast {
        bytes,
        chunks: total,
        served,
        complete: served == total && head.last,
    })
}

/// The recordings `caller` may see, of one grant or of all, newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    grant: Option<&str>,
) -> ApiResult<Vec<RecordingView>> {
    let mut tx = state.store.read().await?;
    if let Some(g) = grant {
        if !may_see_grant(&mut tx, caller, g).await? {
            return Err(ServerError::not_found("grant", g));
        }
    }
    let rows = tx.recording_index(grant, LIST_ROWS).await?;
    let mut by_session: BTreeMap<String, RecordingView> = BTreeMap::new();
    for r in rows {
        let v = by_session
            .entry(r.session_id.clone())
            .or_insert_with(|| RecordingView {
                session_id: r.session_id.clone(),
                grant_id: r.grant_id.clone(),
                gateway: r.gateway.clone(),
                chunks: 0,
                stored_chunks: 0,
                bytes: 0,
                complete: false,
                started_at: r.recorded_at,
                updated_at: r.recorded_at,
            });
        v.chunks += 1;
        v.stored_chunks += u64::from(r.stored_at.is_some());
        v.bytes += r.length;
        v.complete |= r.last;
        v.started_at = v.started_at.min(r.recorded_at);
        v.updated_at = v.updated_at.max(r.recorded_at);
    }
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for v in by_session.into_values() {
        let ok = match seen.get(&v.grant_id) {
            Some(ok) => *ok,
            None => {
                let ok = may_see_grant(&mut tx, caller, &v.grant_id).await?;
                seen.insert(v.grant_id.clone(), ok);
                ok
            }
        };
        if ok {
            out.push(v);
        }
    }
    out.sort_by_key(|v| std::cmp::Reverse(v.started_at));
    Ok(out)
}
