//! The server's side of witnessing (docs/evidence.md, "Witnesses").
//!
//! A witness (`jitgate evidence witness`, run by an auditor or a second site) fetches the
//! latest checkpoint with a consistency proof from the last one it cosigned ([`for_witness`],
//! the body of a C2SP `tlog-witness` `add-checkpoint` request), checks it, and posts its
//! cosignature back ([`accept_cosignatures`]). The server keeps cosignatures only from the
//! witnesses configured in `evidence.witnesses` and only of checkpoints it stored; bundles
//! carry them ([`best_cosigned`]). A witness that finds the log forked or rolled back reports
//! it ([`record_alarm`]): the report must carry checkpoints the log itself signed, and is
//! recorded as an `evidence.witness_alarm` event with what the server's own log says.
//!
//! Cosignatures are not events: an event per cosignature would grow the log, which needs a
//! new checkpoint, which witnesses cosign — without end.

use super::{sign_checkpoint, sync_tree, to_signed};
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use jitgate_core::codes::Code;
use jitgate_core::event::{Actor, Event};
use jitgate_core::server_payload::{WitnessAlarm, WitnessAlarmKind};
use jitgate_evidence::note::Note;
use jitgate_evidence::{verify_cosignature, AddCheckpoint, SignedCheckpoint, Vkey};
use jitgate_store::CosignatureRecord;
use serde::{Deserialize, Serialize};

/// The log's vkeys: its id with every evidence public key it ever had.
pub fn log_vkeys(state: &AppState) -> ApiResult<Vec<Vkey>> {
    state
        .evidence
        .public_keys()
        .iter()
        .map(|k| Vkey::for_log(&state.evidence.log_id, k))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            ServerError::Internal(format!(
                "the log id cannot name a signed-note key ({e}); set evidence.log_id without \
                 spaces or plus signs"
            ))
        })
}

/// The configured witnesses' vkeys (validated at start).
fn witness_vkeys(state: &AppState) -> Vec<Vkey> {
    state
        .config
        .evidence
        .witnesses
        .iter()
        .filter_map(|v| Vkey::parse(v).ok())
        .collect()
}

/// The latest checkpoint as a signed note, with a consistency proof from `old` (the size of
/// the last checkpoint the witness cosigned), in the `add-checkpoint` request format. A
/// checkpoint is signed first when the log grew since the latest. When `old` is larger than
/// the log, the proof is empty: the witness sees the log shrank.
pub async fn for_witness(state: &AppState, old: u64) -> ApiResult<String> {
    sign_checkpoint(state, false).await?;
    let mut tx = state.store.read().await?;
    let latest = tx.latest_checkpoint().await?;
    drop(tx);
    let record = latest.ok_or_else(|| ServerError::Witness {
        code: Code::NoCheckpoint,
        message: "the log has no checkpoint yet: it holds no events".into(),
    })?;
    let signed = to_signed(&record).map_err(ServerError::Internal)?;
    let key = state
        .evidence
        .public_keys()
        .into_iter()
        .find(|k| k.key_id == signed.checkpoint.key_id)
        .ok_or_else(|| {
            ServerError::EvidenceBroken(format!(
                "the latest checkpoint is signed by key {}, which this server does not know",
                signed.checkpoint.key_id
            ))
        })?;
    let note = signed
        .to_signed_note(&key)
        .map_err(|e| ServerError::Internal(format!("checkpoint note: {e}")))?;
    let size = signed.checkpoint.tree_size;
    let proof = if old == 0 || old >= size {
        Vec::new()
    } else {
        let ev = &state.evidence;
        let mut tree = ev.tree.lock().await;
        if (tree.log.size()) < size || !tree.built {
            let mut tx = state.store.read_snapshot().await?;
            sync_tree(ev, &state.store, &mut tree, &mut tx, None).await?;
            tx.commit().await?;
        }
        tree.log
            .consistency_proof(old, size)
            .map_err(|e| ServerError::Internal(format!("consistency proof {old}→{size}: {e}")))?
    };
    Ok(AddCheckpoint {
        old_size: old,
        proof,
        note,
    }
    .to_body())
}

/// What [`accept_cosignatures`] kept.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CosignaturesAccepted {
    pub tree_size: u64,
    /// Witnesses whose cosignature was stored now.
    pub stored: Vec<String>,
    /// Witnesses whose cosignature of this checkpoint was already stored.
    pub already: Vec<String>,
}

/// Keep the cosignatures on a checkpoint note: the note must be a checkpoint this server
/// stored (same size, root and time, signed by its key), and every cosignature line must be
/// by a configured witness and verify.
pub async fn accept_cosignatures(state: &AppState, body: &str) -> ApiResult<CosignaturesAccepted> {
    let bad = |m: String| ServerError::BadRequest(m);
    let note = Note::parse(body).map_err(|e| bad(format!("not a signed note: {e}")))?;
    let checkpoint = SignedCheckpoint::from_signed_note(body, &log_vkeys(state)?)
        .map_err(|e| bad(format!("not a checkpoint of this log: {e}")))?;
    let cp = &checkpoint.checkpoint;
    let at = cp
        .timestamp()
        .map_err(|e| bad(format!("checkpoint time: {e}")))?;
    let mut tx = state.store.read().await?;
    let stored =
        tx.list_checkpoints().await?.into_iter().any(|r| {
            r.tree_size as u64 == cp.tree_size && r.root_hash == cp.root_hash && r.at == at
        });
    drop(tx);
    if !stored {
        return Err(ServerError::Witness {
            code: Code::CheckpointUnknown,
            message: format!(
                "this server stored no checkpoint of {} events at {}: cosign a checkpoint \
                 fetched from it (GET /api/v1/evidence/witness)",
                cp.tree_size, cp.time
            ),
        });
    }
    let witnesses = witness_vkeys(state);
    let log_names: Vec<String> = vec![state.evidence.log_id.clone()];
    let now = state.clock.now();
    let mut records = Vec::new();
    for sig in note
        .signatures
        .iter()
        .filter(|s| !log_names.contains(&s.name))
    {
        let line = sig.line();
        let mut matched = None;
        for vkey in &witnesses {
            if let Some(c) =
                verify_cosignature(&line, vkey, &note.text).map_err(|e| ServerError::Witness {
                    code: Code::WitnessUnknown,
                    message: format!("cosignature by {}: {e}", sig.name),
                })?
            {
                matched = Some(c);
                break;
            }
        }
        let c = matched.ok_or_else(|| ServerError::Witness {
            code: Code::WitnessUnknown,
            message: format!(
                "{} is not a witness of this server: add its key (the line `jitgate evidence \
                 witness` printed) to evidence.witnesses",
                sig.name
            ),
        })?;
        records.push(CosignatureRecord {
            tree_size: cp.tree_size as i64,
            root_hash: cp.root_hash.clone(),
            at,
            witness: c.witness,
            cosigned_at: i64::try_from(c.timestamp).unwrap_or(i64::MAX),
            line: c.line.trim_end().to_string(),
            received_at: now,
        });
    }
    if records.is_empty() {
        return Err(bad(
            "the note carries no cosignature: append the witness's signature line to the \
             checkpoint note"
                .into(),
        ));
    }
    let mut tx = state.store.write().await?;
    let mut out = CosignaturesAccepted {
        tree_size: cp.tree_size,
        stored: Vec::new(),
        already: Vec::new(),
    };
    for r in &records {
        if tx.insert_cosignature(r).await? {
            out.stored.push(r.witness.clone());
        } else {
            out.already.push(r.witness.clone());
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Cosignature lines of stored checkpoints, by (tree size, root, time).
pub async fn cosignatures_from(
    state: &AppState,
    min_tree_size: u64,
) -> ApiResult<Vec<CosignatureRecord>> {
    let mut tx = state.store.read().await?;
    let rows = tx
        .cosignatures_from(i64::try_from(min_tree_size).unwrap_or(i64::MAX))
        .await?;
    Ok(rows)
}

/// Among the trusted checkpoints that cover `last_seq`, the one cosigned by the most
/// configured witnesses (the latest of those), with its cosignature lines; `None` when no
/// covering checkpoint is cosigned.
pub async fn best_cosigned(
    state: &AppState,
    last_seq: u64,
) -> ApiResult<Option<(SignedCheckpoint, Vec<String>)>> {
    if state.config.evidence.witnesses.is_empty() {
        return Ok(None);
    }
    let rows = cosignatures_from(state, last_seq).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut tx = state.store.read().await?;
    let checkpoints = tx.list_checkpoints().await?;
    drop(tx);
    let keys = state.evidence.public_keys();
    let mut best: Option<(SignedCheckpoint, Vec<String>)> = None;
    for record in checkpoints
        .iter()
        .filter(|r| r.tree_size as u64 >= last_seq)
    {
        let lines: Vec<String> = rows
            .iter()
            .filter(|c| {
                c.tree_size == record.tree_size
                    && c.root_hash == record.root_hash
                    && c.at == record.at
            })
            .map(|c| c.line.clone())
            .collect();
        if lines.is_empty() || best.as_ref().is_some_and(|(_, b)| b.len() > lines.len()) {
            continue;
        }
        let Ok(signed) = to_signed(record) else {
            continue;
        };
        if signed.checkpoint.log_id == state.evidence.log_id && signed.verify(&keys).is_ok() {
            best = Some((signed, lines));
        }
    }
    Ok(best)
}

/// A witness's alarm: the checkpoint it cosigned and the one it was shown, both notes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmReport {
    /// The witness's key name.
    pub witness: String,
    pub alarm: WitnessAlarmKind,
    /// The witness's own words.
    pub message: String,
    /// The last checkpoint note it cosigned.
    pub cosigned: String,
    /// The checkpoint note it refused.
    pub presented: String,
}

/// Record a witness's alarm as an `evidence.witness_alarm` event. Both notes must be signed by
/// this log's keys (so an alarm cannot be made up from nothing); the event also says whether
/// the server's log today still has the root the witness cosigned.
pub async fn record_alarm(state: &AppState, actor: Actor, report: AlarmReport) -> ApiResult<bool> {
    let vkeys = log_vkeys(state)?;
    let read = |what: &str, note: &str| {
        SignedCheckpoint::from_signed_note(note, &vkeys).map_err(|e| {
            ServerError::BadRequest(format!(
                "{what}: not a checkpoint signed by this log ({e}): an alarm carries the two \
                 checkpoint notes the log signed"
            ))
        })
    };
    let cosigned = read("cosigned", &report.cosigned)?.checkpoint;
    let presented = read("presented", &report.presented)?.checkpoint;
    // What the server's own tree says about the cosigned size today.
    let agrees = {
        let ev = &state.evidence;
        let mut tree = ev.tree.lock().await;
        let mut tx = state.store.read_snapshot().await?;
        sync_tree(ev, &state.store, &mut tree, &mut tx, None).await?;
        tx.commit().await?;
        tree.log
            .root_at(cosigned.tree_size)
            .ok()
            .map(hex::encode)
            .is_some_and(|r| r == cosigned.root_hash)
    };
    let payload = WitnessAlarm {
        witness: truncated(&report.witness, 255),
        alarm: report.alarm,
        message: truncated(&report.message, 2000),
        cosigned_size: cosigned.tree_size,
        cosigned_root: cosigned.root_hash,
        presented_size: presented.tree_size,
        presented_root: presented.root_hash,
        log_agrees_with_cosigned: agrees,
    };
    tracing::error!(
        witness = %payload.witness,
        alarm = ?payload.alarm,
        log_agrees_with_cosigned = agrees,
        "a witness reports the evidence log {}: {}",
        match payload.alarm {
            WitnessAlarmKind::Fork => "forked",
            WitnessAlarmKind::Rollback => "rolled back",
        },
        payload.message
    );
    let mut tx = state.store.write().await?;
    tx.append_events(&[Event::with_payload(actor, state.clock.now(), &payload)?])
        .await?;
    tx.commit().await?;
    Ok(agrees)
}

fn truncated(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
