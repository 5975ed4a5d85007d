//! Verifying a whole log in place: the hash chain the store keeps, the Merkle tree over the
//! same events, and the signed checkpoints — in one streaming pass.
//!
//! The two structures catch different attackers. The hash chain names the exact row a naive
//! edit touched (an `UPDATE` of one row's text, a `DELETE`, swapped sequence numbers). An
//! attacker who rewrites the chain consistently from the edit onwards defeats the chain, but
//! not the checkpoints: their roots were signed with a key the database does not hold, so the
//! first checkpoint covering the edit no longer matches, and the report says between which two
//! checkpoints the history changed.

use crate::checkpoint::SignedCheckpoint;
use crate::merkle::{leaf_hash, Hash, RootBuilder};
use crate::{EvidencePublicKey, Timestamp};
use sha2::{Digest, Sha256};
use std::borrow::Borrow;
use std::collections::VecDeque;

/// The `prev_hash` of the first event: 32 zero bytes (as the store defines it).
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How far to read past a broken link to tell "reordered" from "removed or replaced".
const DIAGNOSIS_WINDOW: usize = 1024;

/// How much later than a checkpoint an event it covers may be dated before the checkpoint is
/// called older than its events. Events and checkpoints come from the same server clock;
/// gateway-reported times may run a little ahead.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// One row of the event log as the store keeps it (`events` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLeaf {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The canonical event bytes, verbatim: both the chain and the Merkle tree hash these.
    pub canonical: String,
}

/// A [`StoredLeaf`] borrowed from wherever the row was read (a page buffer), so a verifier
/// streaming millions of rows copies none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafRef<'a> {
    pub seq: i64,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    pub canonical: &'a str,
}

impl<'a> From<&'a StoredLeaf> for LeafRef<'a> {
    fn from(l: &'a StoredLeaf) -> Self {
        LeafRef {
            seq: l.seq,
            prev_hash: &l.prev_hash,
            hash: &l.hash,
            canonical: &l.canonical,
        }
    }
}

/// The first thing wrong with a log. `seq` is where: the event (or, for checkpoints, the last
/// event the checkpoint covers, i.e. its tree size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogProblem {
    /// The event's bytes do not hash to its stored hash: it was edited after it was written.
    Altered { seq: i64, message: String },
    /// The sequence jumps over `seq`: the event was deleted.
    Deleted { seq: i64, message: String },
    /// The event at `seq` was inserted: the next event links to the one before it.
    Inserted { seq: i64, message: String },
    /// The event at `seq` links to an event stored later: events were reordered or swapped.
    Reordered { seq: i64, message: String },
    /// The event at `seq` does not link to the one before, and nothing nearby explains it:
    /// events were removed and renumbered, or an event was replaced with its hash rewritten.
    BrokenLink { seq: i64, message: String },
    /// A stored hash is not 64 lowercase hex digits.
    Malformed { seq: i64, message: String },
    /// A checkpoint covers events that are no longer there: the tail was cut off.
    Truncated { seq: i64, message: String },
    /// A checkpoint's signature, key or fields are wrong: it was replaced or forged.
    BadCheckpoint { seq: i64, message: String },
    /// The events up to a checkpoint do not have the root it signed: history was rewritten
    /// (consistently enough to fool the chain) somewhere before `seq`.
    RootMismatch { seq: i64, message: String },
    /// A checkpoint is dated before the events it covers, or before a checkpoint of a smaller
    /// tree: it is not what the server signed at that time.
    CheckpointRegression { seq: i64, message: String },
    /// A checkpoint names another log.
    ForeignCheckpoint { seq: i64, message: String },
}

impl LogProblem {
    pub fn seq(&self) -> i64 {
        match self {
            LogProblem::Altered { seq, .. }
            | LogProblem::Deleted { seq, .. }
            | LogProblem::Inserted { seq, .. }
            | LogProblem::Reordered { seq, .. }
            | LogProblem::BrokenLink { seq, .. }
            | LogProblem::Malformed { seq, .. }
            | LogProblem::Truncated { seq, .. }
            | LogProblem::BadCheckpoint { seq, .. }
            | LogProblem::RootMismatch { seq, .. }
            | LogProblem::CheckpointRegression { seq, .. }
            | LogProblem::ForeignCheckpoint { seq, .. } => *seq,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            LogProblem::Altered { message, .. }
            | LogProblem::Deleted { message, .. }
            | LogProblem::Inserted { message, .. }
            | LogProblem::Reordered { message, .. }
            | LogProblem::BrokenLink { message, .. }
            | LogProblem::Malformed { message, .. }
            | LogProblem::Truncated { message, .. }
            | LogProblem::BadCheckpoint { message, .. }
            | LogProblem::RootMismatch { message, .. }
            | LogProblem::CheckpointRegression { message, .. }
            | LogProblem::ForeignCheckpoint { message, .. } => message,
        }
    }

    /// A stable short name: `altered`, `deleted`, `inserted`, …
    pub fn kind(&self) -> &'static str {
        match self {
            LogProblem::Altered { .. } => "altered",
            LogProblem::Deleted { .. } => "deleted",
            LogProblem::Inserted { .. } => "inserted",
            LogProblem::Reordered { .. } => "reordered",
            LogProblem::BrokenLink { .. } => "broken-link",
            LogProblem::Malformed { .. } => "malformed",
            LogProblem::Truncated { .. } => "truncated",
            LogProblem::BadCheckpoint { .. } => "bad-checkpoint",
            LogProblem::RootMismatch { .. } => "root-mismatch",
            LogProblem::CheckpointRegression { .. } => "checkpoint-regression",
            LogProblem::ForeignCheckpoint { .. } => "foreign-checkpoint",
        }
    }
}

impl std::fmt::Display for LogProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seq {} ({}): {}",
            self.seq(),
            self.kind(),
            self.message()
        )
    }
}

/// What [`verify_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Rows read.
    pub events: u64,
    /// Events verified from the start (chain and tree) before the first problem, if any.
    pub verified: u64,
    /// Hex Merkle root of the first `verified` events.
    pub root_hash: String,
    /// Chain hash of the last verified event ([`GENESIS_HASH`] for none).
    pub head_hash: String,
    /// Tree sizes of the checkpoints whose signature and root both verified.
    pub checkpoints_verified: Vec<u64>,
    /// The first problem (lowest seq), if any.
    pub problem: Option<LogProblem>,
}

impl LogReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// The largest verified checkpoint; events after it are only chain-protected so far.
    pub fn latest_checkpoint(&self) -> Option<u64> {
        self.checkpoints_verified.last().copied()
    }
}

/// Verify a log: `events` in seq order (as `SELECT … ORDER BY seq` returns them), every
/// checkpoint the caller has (in any order), and the trusted evidence public keys (all of
/// them, old ones included: rotation keeps old checkpoints verifiable).
///
/// Rows may be owned or borrowed (`rows.iter()` works as well as `rows.into_iter()`).
pub fn verify_log<L: Borrow<StoredLeaf>>(
    events: impl Iterator<Item = L>,
    checkpoints: &[SignedCheckpoint],
    keys: &[EvidencePublicKey],
) -> LogReport {
    let mut v = LogVerifier::new(checkpoints, keys);
    for leaf in events {
        if !v.push(leaf.borrow()) {
            break;
        }
    }
    v.finish()
}

#[derive(Debug, Clone)]
struct Pending {
    size: u64,
    root: Hash,
    time: Timestamp,
    key_id: String,
}

/// A broken link being looked into: which hash the row at `seq` points to.
#[derive(Debug)]
struct Diagnosis {
    seq: i64,
    wanted: String,
    read: usize,
}

/// [`verify_log`] one row at a time, for callers that read the log in pages (the store).
#[derive(Debug)]
pub struct LogVerifier {
    pending: VecDeque<Pending>,
    checkpoint_problem: Option<LogProblem>,
    tree: RootBuilder,
    next_seq: i64,
    prev: [u8; 32],
    /// `prev` as the store spells it; kept as bytes so the hot path never allocates.
    prev_hex: [u8; 64],
    /// Chain hash of the event before `prev`, to recognise an inserted event.
    prev2_hex: Option<[u8; 64]>,
    events: u64,
    verified_checkpoints: Vec<u64>,
    problem: Option<LogProblem>,
    diagnosis: Option<Diagnosis>,
}

impl LogVerifier {
    pub fn new(checkpoints: &[SignedCheckpoint], keys: &[EvidencePublicKey]) -> Self {
        let (pending, checkpoint_problem) = check_checkpoints(checkpoints, keys);
        let mut v = LogVerifier {
            pending: pending.into(),
            checkpoint_problem,
            tree: RootBuilder::new(),
            next_seq: 1,
            prev: [0; 32],
            prev_hex: [b'0'; 64],
            prev2_hex: None,
            events: 0,
            verified_checkpoints: Vec::new(),
            problem: None,
            diagnosis: None,
        };
        // A checkpoint of the empty log is checked before any row.
        v.check_roots(None);
        v
    }

    /// Feed the next row; `false` once nothing more can be learned (stop reading).
    pub fn push(&mut self, leaf: &StoredLeaf) -> bool {
        self.push_ref(leaf.into())
    }

    /// [`LogVerifier::push`] of a borrowed row.
    pub fn push_ref(&mut self, leaf: LeafRef<'_>) -> bool {
        self.events += 1;
        if let Some(d) = &mut self.diagnosis {
            d.read += 1;
            if leaf.hash == d.wanted {
                let seq = d.seq;
                self.problem = Some(LogProblem::Reordered {
                    seq,
                    message: format!(
                        "event {seq} links to the event now stored at seq {}: events were \
                         reordered or swapped",
                        leaf.seq
                    ),
                });
                self.diagnosis = None;
                return false;
            }
            if d.read >= DIAGNOSIS_WINDOW {
                self.end_diagnosis();
                return false;
            }
            return true;
        }
        if self.problem.is_some() {
            return false;
        }
        self.check_row(leaf)
    }

    fn end_diagnosis(&mut self) {
        if let Some(d) = self.diagnosis.take() {
            let seq = d.seq;
            self.problem = Some(LogProblem::BrokenLink {
                seq,
                message: format!(
                    "event {seq} does not link to event {}: events were removed and renumbered, \
                     or event {} was replaced and its hash rewritten",
                    seq - 1,
                    seq - 1
                ),
            });
        }
    }

    fn fail(&mut self, p: LogProblem) -> bool {
        self.problem = Some(p);
        false
    }

    fn check_row(&mut self, leaf: LeafRef<'_>) -> bool {
        let seq = leaf.seq;
        let expected = self.next_seq;
        if seq > expected {
            return self.fail(LogProblem::Deleted {
                seq: expected,
                message: if expected == 1 {
                    format!(
                        "the log starts at event {seq}: events 1..{} are missing",
                        seq - 1
                    )
                } else {
                    format!(
                        "event {expected} is missing: the log goes from {} to {seq}",
                        expected - 1
                    )
                },
            });
        }
        if seq < expected {
            return self.fail(LogProblem::Inserted {
                seq,
                message: format!(
                    "seq {seq} appears again after {}: an event was inserted with a duplicate \
                     sequence number (or the rows were not read in seq order)",
                    expected - 1
                ),
            });
        }
        // Only the length is checked here: both hashes are compared byte for byte with hex
        // this verifier computed, so any other misspelling shows up as a mismatch.
        if leaf.hash.len() != 64 || leaf.prev_hash.len() != 64 {
            return self.fail(LogProblem::Malformed {
                seq,
                message: "hash or prev_hash is not 64 hex digits".into(),
            });
        }
        if leaf.prev_hash.as_bytes() != self.prev_hex {
            if self.prev2_hex.as_ref().map(|h| &h[..]) == Some(leaf.prev_hash.as_bytes()) {
                return self.fail(LogProblem::Inserted {
                    seq: seq - 1,
                    message: format!(
                        "event {seq} links to event {}, skipping the event stored at seq {}: \
                         that event was inserted",
                        seq - 2,
                        seq - 1
                    ),
                });
            }
            self.diagnosis = Some(Diagnosis {
                seq,
                wanted: leaf.prev_hash.to_string(),
                read: 0,
            });
            return true;
        }
        let mut h = Sha256::new();
        h.update(self.prev);
        h.update(leaf.canonical.as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        let mut hex_buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the hash length.
        let _ = hex::encode_to_slice(hash, &mut hex_buf);
        if hex_buf != leaf.hash.as_bytes() {
            return self.fail(LogProblem::Altered {
                seq,
                message: "the stored bytes do not hash to the stored hash: the event was \
                          altered after it was written"
                    .into(),
            });
        }
        self.tree
            .push_leaf_hash(leaf_hash(leaf.canonical.as_bytes()));
        self.prev = hash;
        self.prev2_hex = Some(std::mem::replace(&mut self.prev_hex, hex_buf));
        self.next_seq += 1;
        self.check_roots(Some(leaf));
        self.problem.is_none() || self.diagnosis.is_some()
    }

    /// Compare the root with every checkpoint of the current size.
    fn check_roots(&mut self, last: Option<LeafRef<'_>>) {
        let size = self.tree.size();
        let mut root = None;
        while let Some(cp) = self.pending.front() {
            if cp.size != size {
                break;
            }
            let root = *root.get_or_insert_with(|| self.tree.root());
            let seq = size as i64;
            if cp.root != root {
                let since = self
                    .verified_checkpoints
                    .last()
                    .map_or("the start".to_string(), |s| format!("event {s}"));
                self.problem = Some(LogProblem::RootMismatch {
                    seq,
                    message: format!(
                        "the first {size} events do not have the Merkle root checkpoint {size} \
                         (key {}) signed: history was rewritten after {since} and up to event \
                         {size}",
                        cp.key_id
                    ),
                });
                return;
            }
            if let Some(at) = last.and_then(|l| event_time(l.canonical)) {
                if at > cp.time + chrono::Duration::seconds(CLOCK_SKEW_SECS) {
                    self.problem = Some(LogProblem::CheckpointRegression {
                        seq,
                        message: format!(
                            "checkpoint {size} is dated {}, before event {size} ({}) that it \
                             covers: it is older than its events",
                            crate::rfc3339(cp.time),
                            crate::rfc3339(at)
                        ),
                    });
                    return;
                }
            }
            if self.verified_checkpoints.last() != Some(&size) {
                self.verified_checkpoints.push(size);
            }
            self.pending.pop_front();
        }
    }

    pub fn finish(mut self) -> LogReport {
        if self.diagnosis.is_some() {
            self.end_diagnosis();
        }
        let verified = self.tree.size();
        let mut problem = self.problem.take();
        if problem.is_none() {
            if let Some(cp) = self.pending.front() {
                problem = Some(LogProblem::Truncated {
                    seq: verified as i64 + 1,
                    message: format!(
                        "checkpoint {} (key {}) covers {} events but the log ends at event \
                         {verified}: events {}..{} were cut off the end",
                        cp.size,
                        cp.key_id,
                        cp.size,
                        verified + 1,
                        cp.size
                    ),
                });
            }
        }
        // The lowest seq is the first problem; a chain problem wins a tie (it is more precise).
        let problem = match (problem, self.checkpoint_problem.take()) {
            (Some(a), Some(b)) => Some(if b.seq() < a.seq() { b } else { a }),
            (a, b) => a.or(b),
        };
        LogReport {
            events: self.events,
            verified,
            root_hash: hex::encode(self.tree.root()),
            head_hash: String::from_utf8_lossy(&self.prev_hex).into_owned(),
            checkpoints_verified: self.verified_checkpoints,
            problem,
        }
    }
}

/// Just the `at` field of a canonical event, without building the whole event.
fn event_time(canonical: &str) -> Option<Timestamp> {
    #[derive(serde::Deserialize)]
    struct At {
        #[serde(with = "jitgate_core::event::millis")]
        at: Timestamp,
    }
    serde_json::from_str::<At>(canonical).ok().map(|a| a.at)
}

/// Check every checkpoint's fields and signature; return the good ones sorted by size and the
/// problem with the lowest tree size among the bad ones.
fn check_checkpoints(
    checkpoints: &[SignedCheckpoint],
    keys: &[EvidencePublicKey],
) -> (Vec<Pending>, Option<LogProblem>) {
    let mut good = Vec::new();
    let mut problems = Vec::new();
    let log_id = checkpoints.first().map(|c| c.checkpoint.log_id.as_str());
    for cp in checkpoints {
        let c = &cp.checkpoint;
        let seq = i64::try_from(c.tree_size).unwrap_or(i64::MAX);
        if Some(c.log_id.as_str()) != log_id {
            problems.push(LogProblem::ForeignCheckpoint {
                seq,
                message: format!(
                    "checkpoint {} names log {:?}, the others {:?}",
                    c.tree_size,
                    crate::checkpoint::truncate(&c.log_id, 80),
                    log_id.unwrap_or_default()
                ),
            });
            continue;
        }
        if let Err(e) = cp.verify(keys) {
            problems.push(LogProblem::BadCheckpoint {
                seq,
                message: format!("checkpoint {}: {e}", c.tree_size),
            });
            continue;
        }
        // verify() checked both the root and the time spellings.
        if let (Ok(root), Ok(time)) = (c.root(), c.timestamp()) {
            good.push(Pending {
                size: c.tree_size,
                root,
                time,
                key_id: c.key_id.clone(),
            });
        }
    }
    good.sort_by_key(|p| (p.size, p.time));
    // A larger tree signed earlier than a smaller one: one of them is not what it claims.
    for pair in good.windows(2) {
        if pair[1].size > pair[0].size && pair[1].time < pair[0].time {
            problems.push(LogProblem::CheckpointRegression {
                seq: pair[1].size as i64,
                message: format!(
                    "checkpoint {} is dated {}, before checkpoint {} ({}): a checkpoint of a \
                     larger tree cannot be older",
                    pair[1].size,
                    crate::rfc3339(pair[1].time),
                    pair[0].size,
                    crate::rfc3339(pair[0].time)
                ),
            });
        }
    }
    let first = problems.into_iter().min_by_key(LogProblem::seq);
    (good, first)
}
