//! The witness's decision (C2SP `tlog-witness`, `add-checkpoint`): cosign a checkpoint only if
//! it is signed by the log and consistent with the last one this witness cosigned.
//!
//! Pure: the caller (`jitgate evidence witness`) keeps the state on disk, serves HTTP and
//! holds the key. The request body is untrusted and parsed with limits (fuzzed by
//! `fuzz/fuzz_targets/evidence_note.rs`).
//!
//! Beyond the protocol's refusals, the witness recognises two things no honest log can do,
//! and calls them *alarms* (the caller stops and says so loudly):
//! - **a fork**: a checkpoint the log signed for a size the witness already cosigned, with
//!   another root — or, when the proof came from the log itself, one whose consistency proof
//!   from the cosigned checkpoint fails ([`Refusal::attributed_to_log`]);
//! - **a rollback**: a checkpoint the log signed *later* (its time line) than the one the
//!   witness cosigned, for a *smaller* tree — the log shrank.

use crate::merkle::{empty_root, verify_consistency, Hash};
use crate::note::{checkpoint_fields, cosign, Cosignature, Note, NoteError, Vkey};
use crate::EvidenceKey;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Most consistency proof lines a request may carry (the protocol's limit).
pub const MAX_PROOF_LINES: usize = 63;
/// Longest request body accepted.
pub const MAX_REQUEST_BYTES: usize = crate::note::MAX_NOTE_BYTES + 8 * 1024;

/// What the witness remembers of one log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedCheckpoint {
    pub origin: String,
    pub tree_size: u64,
    /// Lowercase hex.
    pub root_hash: String,
    /// The checkpoint's time line.
    pub time: String,
    /// The whole signed note as received, kept as evidence.
    pub note: String,
}

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

impl AddCheckpoint {
    /// The request body: `old <size>\n`, proof lines, a blank line, the note.
    pub fn to_body(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note);
        out
    }

    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, Refusal> {
        let bad = |m: String| Refusal::BadRequest(m);
        if body.len() > MAX_REQUEST_BYTES {
            return Err(bad(format!(
                "the request is {} bytes; at most {MAX_REQUEST_BYTES} are accepted",
                body.len()
            )));
        }
        let text = std::str::from_utf8(body).map_err(|_| bad("the request is not UTF-8".into()))?;
        let (head, note) = text.split_once("\n\n").ok_or_else(|| {
            bad("expected `old <size>`, proof lines, a blank line, then the checkpoint".into())
        })?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line must be `old <size>`".into()))?;
        let old_size: u64 = old
            .parse()
            .ok()
            .filter(|n: &u64| n.to_string() == old)
            .ok_or_else(|| {
                bad("the old size is not a decimal number without leading zeros".into())
            })?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!("more than {MAX_PROOF_LINES} proof lines")));
            }
            let hash: Hash = B64
                .decode(line)
                .ok()
                .filter(|b| B64.encode(b) == line)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("a proof line is not standard base64 of 32 bytes".into()))?;
            proof.push(hash);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: note.to_string(),
        })
    }
}

/// Why the witness did not cosign. `status` is the HTTP status the protocol assigns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("this witness does not follow log {0:?}")]
    UnknownLog(String),
    #[error("not signed by the log's key: {0}")]
    NotSignedByLog(NoteError),
    #[error("the old size does not match the latest checkpoint this witness cosigned ({latest})")]
    Conflict { latest: u64 },
    #[error("not consistent: {0}")]
    Unprocessable(String),
    #[error("log {origin:?}: {message}")]
    Inconsistent { origin: String, message: String },
    #[error(
        "ALARM, log {origin:?} forked: {message}. The log signed two histories that cannot both \
         be true; this witness stopped cosigning. Keep {state} as evidence."
    )]
    Fork {
        origin: String,
        message: String,
        state: String,
    },
    #[error(
        "ALARM, log {origin:?} rolled back: it signed a checkpoint of {size} events at {time}, \
         after one of {latest} events at {latest_time} that this witness cosigned. The log \
         shrank; this witness stopped cosigning. Keep {state} as evidence."
    )]
    Rollback {
        origin: String,
        size: u64,
        time: String,
        latest: u64,
        latest_time: String,
        state: String,
    },
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::UnknownLog(_) => 404,
            Refusal::NotSignedByLog(_) => 403,
            Refusal::Conflict { .. } => 409,
            Refusal::Unprocessable(_)
            | Refusal::Inconsistent { .. }
            | Refusal::Fork { .. }
            | Refusal::Rollback { .. } => 422,
        }
    }

    /// Evidence that the log misbehaved (not a mistake of the submitter).
    pub fn is_alarm(&self) -> bool {
        matches!(self, Refusal::Fork { .. } | Refusal::Rollback { .. })
    }

    /// A failed consistency proof is a fork when the proof came from the log itself (a
    /// witness that fetches from the server over an authenticated channel); from anyone
    /// else it may just be a wrong proof, and is only refused.
    pub fn attributed_to_log(self) -> Refusal {
        match self {
            Refusal::Inconsistent { origin, message } => Refusal::Fork {
                origin,
                message,
                state: String::new(),
            },
            other => other,
        }
    }

    /// Name the file the caller keeps as evidence in the message.
    pub fn with_state(mut self, path: &str) -> Refusal {
        if let Refusal::Fork { state, .. } | Refusal::Rollback { state, .. } = &mut self {
            *state = path.to_string();
        }
        self
    }
}

/// Decide on one request: `Ok` carries the new record to persist *before* answering and the
/// cosignature to return. `log_keys` are the log's vkeys (type 0x01), all with its origin.
pub fn add_checkpoint(
    latest: Option<&WitnessedCheckpoint>,
    request: &AddCheckpoint,
    log_keys: &[Vkey],
    witness_name: &str,
    witness_key: &EvidenceKey,
    now_unix: u64,
) -> Result<(WitnessedCheckpoint, Cosignature), Refusal> {
    let note = Note::parse(&request.note).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let fields = checkpoint_fields(&note.text).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let keys: Vec<&Vkey> = log_keys
        .iter()
        .filter(|k| k.name == fields.origin)
        .collect();
    if keys.is_empty() {
        return Err(Refusal::UnknownLog(fields.origin.to_string()));
    }
    // Signed by one of the log's keys; a present but failing signature is refused outright.
    let mut signed = false;
    for key in &keys {
        match note.verify_log_signature(key) {
            Ok(()) => signed = true,
            Err(NoteError::NotSigned(_)) => {}
            Err(e) => return Err(Refusal::NotSignedByLog(e)),
        }
    }
    if !signed {
        return Err(Refusal::NotSignedByLog(NoteError::NotSigned(format!(
            "any key of log {}",
            fields.origin
        ))));
    }
    let root_hex = hex::encode(fields.root);
    if let Some(l) = latest.filter(|l| l.origin == fields.origin) {
        // What only a misbehaving log can sign, whatever the submitter claims as old size.
        if fields.tree_size == l.tree_size && root_hex != l.root_hash {
            return Err(Refusal::Fork {
                origin: l.origin.clone(),
                message: format!(
                    "two checkpoints of {} events with different roots ({} cosigned, {} now)",
                    l.tree_size,
                    short(&l.root_hash),
                    short(&root_hex)
                ),
                state: String::new(),
            });
        }
        if fields.tree_size < l.tree_size && fields.time > l.time.as_str() {
            return Err(Refusal::Rollback {
                origin: l.origin.clone(),
                size: fields.tree_size,
                time: fields.time.to_string(),
                latest: l.tree_size,
                latest_time: l.time.clone(),
                state: String::new(),
            });
        }
    }
    if request.old_size > fields.tree_size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is larger than the checkpoint's {}",
            request.old_size, fields.tree_size
        )));
    }
    let latest = latest.filter(|l| l.origin == fields.origin);
    let latest_size = latest.map_or(0, |l| l.tree_size);
    if request.old_size != latest_size {
        return Err(Refusal::Conflict {
            latest: latest_size,
        });
    }
    if fields.tree_size == 0 && fields.root != empty_root() {
        return Err(Refusal::Unprocessable(
            "a checkpoint of size 0 must have the empty tree's root".into(),
        ));
    }
    match latest {
        None => {
            if !request.proof.is_empty() {
                return Err(Refusal::Unprocessable(
                    "the old size is 0: the consistency proof must be empty".into(),
                ));
            }
        }
        Some(l) => {
            let old_root = crate::checkpoint::decode_hash(&l.root_hash).ok_or_else(|| {
                Refusal::Unprocessable("the stored checkpoint's root is unreadable".into())
            })?;
            let consistent = if l.tree_size == fields.tree_size {
                request.proof.is_empty() && old_root == fields.root
            } else {
                verify_consistency(
                    l.tree_size,
                    fields.tree_size,
                    &old_root,
                    &fields.root,
                    &request.proof,
                )
                .is_ok()
            };
            if !consistent {
                return Err(Refusal::Inconsistent {
                    origin: l.origin.clone(),
                    message: format!(
                        "the checkpoint of {} events is not consistent with the cosigned one of \
                         {} events (root {}): the consistency proof does not lead from one to \
                         the other",
                        fields.tree_size,
                        l.tree_size,
                        short(&l.root_hash)
                    ),
                });
            }
        }
    }
    let cosignature = cosign(witness_key, witness_name, &note.text, now_unix)
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    Ok((
        WitnessedCheckpoint {
            origin: fields.origin.to_string(),
            tree_size: fields.tree_size,
            root_hash: root_hex,
            time: fields.time.to_string(),
            note: request.note.clone(),
        },
        cosignature,
    ))
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}
