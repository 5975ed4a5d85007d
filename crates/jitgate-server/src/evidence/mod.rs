//! The evidence service: wires `jitgate-evidence` (a pure library) to the data directory,
//! the store and the clock.
//!
//! - **Evidence key** — an Ed25519 key of its own (never the token-signing key), created on
//!   first start in the data directory: the current secret key in [`SECRET_KEY_FILE`]
//!   (owner-only), every public key it ever had in [`PUBLIC_KEYS_FILE`] (what auditors are
//!   given). Rotation adds a key; old public keys stay, so old checkpoints keep verifying.
//! - **Log id** — named in every checkpoint; fixed at first start (config `evidence.log_id`,
//!   else `jitgate/<random hex>`) and kept in the database's settings.
//! - **Merkle tree** — the server keeps the tree over the whole log in memory (64 bytes per
//!   event), built on first use and extended as the log grows. It is built by *verifying*
//!   the log against every stored checkpoint, and extended only by rows that continue the
//!   hash chain: the server never signs a checkpoint over a log it has not checked.
//! - **Checkpoints** — signed periodically when the log grew (`evidence.checkpoint_interval`),
//!   on demand, and at a graceful stop; signed and stored inside a write transaction, so no
//!   larger log can be checkpointed in between.
//! - **Verify in place**, **bundles** and **reports** — see [`verify`], [`export`], [`report`].
//! - **Witnesses** — [`witness`]: checkpoints as signed notes with consistency proofs for
//!   witnesses, their cosignatures kept and put in bundles, their alarms recorded.

use crate::auth::Caller;
pub use crate::config::evidence::EvidenceConfig;
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use crate::views::{LogProblemView, LogVerifyView};
use jitgate_core::event::{Actor, Event};
use jitgate_core::Timestamp;
use jitgate_evidence::{
    empty_root, Bundle, Checkpoint, LeafRef, LogProblem, LogVerifier, MerkleLog, SignedCheckpoint,
    VerifiedBundle,
};
use jitgate_policy::PolicySet;
use jitgate_store::{CheckpointRecord, Store, Tx};
use tokio::sync::watch;

pub(crate) mod keys;
pub mod log;
pub mod witness;

pub use keys::{EvidenceKeys, KeyFileError, PUBLIC_KEYS_FILE, SECRET_KEY_FILE};
pub use log::Evidence;
use log::Tree;

/// Rows read per query when a built tree catches up with new events inside a transaction
/// (`sync_tree`). Whole-log reads (verification, the first build) use `Store::scan_log`
/// instead. On SQLite a page travels as one value (see `Tx::event_rows`), and larger ones do
/// not read faster; on PostgreSQL rows are read one by one and larger pages save round trips.
pub fn verify_page(backend: jitgate_store::Backend) -> i64 {
    match backend {
        jitgate_store::Backend::Sqlite => 1_000,
        jitgate_store::Backend::Postgres => 10_000,
    }
}

/// Archive the text of every policy of `set` under its hash (once per set), so bundles of
/// decisions it took can carry the determining policies' text after the set changed.
pub async fn archive_policies(store: &Store, set: &PolicySet) -> ApiResult<()> {
    let mut tx = store.read().await?;
    let known = tx.policy_texts(set.hash()).await?;
    drop(tx);
    if known.len() == set.len() {
        return Ok(());
    }
    let texts: Vec<(String, String)> = set
        .ids()
        .into_iter()
        .filter_map(|id| Some((id.to_string(), set.policy_text(id)?.to_string())))
        .collect();
    let mut tx = store.write().await?;
    tx.archive_policy_texts(set.hash(), &texts).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------- checkpoints

fn to_signed(r: &CheckpointRecord) -> Result<SignedCheckpoint, String> {
    let tree_size =
        u64::try_from(r.tree_size).map_err(|_| format!("tree_size {} is negative", r.tree_size))?;
    Ok(SignedCheckpoint {
        checkpoint: Checkpoint {
            log_id: r.log_id.clone(),
            tree_size,
            root_hash: r.root_hash.clone(),
            time: jitgate_evidence::rfc3339(r.at),
            key_id: r.key_id.clone(),
        },
        signature: r.signature.clone(),
    })
}

fn to_record(s: &SignedCheckpoint, at: Timestamp) -> ApiResult<CheckpointRecord> {
    Ok(CheckpointRecord {
        log_id: s.checkpoint.log_id.clone(),
        tree_size: i64::try_from(s.checkpoint.tree_size)
            .map_err(|_| ServerError::Internal("tree size out of range".into()))?,
        root_hash: s.checkpoint.root_hash.clone(),
        at,
        key_id: s.checkpoint.key_id.clone(),
        signature: s.signature.clone(),
    })
}

/// Every stored checkpoint in the library's form. A row that cannot even be expressed as a
/// checkpoint (negative size) is a problem of its own.
fn stored_checkpoints(records: &[CheckpointRecord]) -> (Vec<SignedCheckpoint>, Option<LogProblem>) {
    let mut out = Vec::with_capacity(records.len());
    let mut problem = None;
    for r in records {
        match to_signed(r) {
            Ok(s) => out.push(s),
            Err(message) => {
                problem.get_or_insert(LogProblem::BadCheckpoint {
                    seq: r.tree_size,
                    message: format!("checkpoint row: {message}"),
                });
            }
        }
    }
    (out, problem)
}

/// Sign a checkpoint of the whole log now. Unless `force`, nothing is signed when the
/// latest checkpoint already covers every event (`Ok(None)`).
pub async fn sign_checkpoint(state: &AppState, force: bool) -> ApiResult<Option<SignedCheckpoint>> {
    let ev = &state.evidence;
    let mut tree = ev.tree.lock().await;
    // Catch up outside the write lock (on first use this reads and checks the whole log).
    {
        let mut tx = state.store.read_snapshot().await?;
        sync_tree(ev, &state.store, &mut tree, &mut tx, None).await?;
        tx.commit().await?;
    }
    let mut tx = state.store.write().await?;
    let (head, _) = tx.chain_tip().await?;
    sync_tree(ev, &state.store, &mut tree, &mut tx, Some(head)).await?;
    let latest = tx.latest_checkpoint().await?;
    if !force && (head == 0 || latest.as_ref().is_some_and(|c| c.tree_size >= head)) {
        return Ok(None);
    }
    let size = u64::try_from(head).map_err(|_| ServerError::Internal("negative head".into()))?;
    let root = if size == 0 {
        empty_root()
    } else {
        tree.log
            .root_at(size)
            .map_err(|e| ServerError::Internal(format!("Merkle root at {size}: {e}")))?
    };
    // Milliseconds, as the signed text spells it; never earlier than the latest checkpoint
    // (a larger log signed earlier would read as a forgery).
    let now = state.clock.now();
    let mut at = chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    if let Some(l) = &latest {
        if l.at > at {
            tracing::warn!(latest = %l.at, now = %at, "clock is behind the latest checkpoint; dating the new one at the latest's time");
            at = l.at;
        }
    }
    let signed = ev
        .keys()
        .current()
        .sign_checkpoint(&ev.log_id, size, &root, at)
        .map_err(|e| ServerError::Internal(format!("signing a checkpoint: {e}")))?;
    tx.insert_checkpoint(&to_record(&signed, at)?).await?;
    tx.commit().await?;
    tracing::debug!(tree_size = size, "evidence checkpoint signed");
    Ok(Some(signed))
}

/// Bring the tree up to `up_to` (default: every row there is). On first use the whole log is
/// verified against every stored checkpoint while the tree is built; later rows must
/// continue the hash chain. Either failure leaves the tree unbuilt and is reported as
/// [`ServerError::EvidenceBroken`].
async fn sync_tree(
    ev: &Evidence,
    store: &Store,
    tree: &mut Tree,
    tx: &mut Tx,
    up_to: Option<i64>,
) -> ApiResult<()> {
    if !tree.built {
        // The scan reads its own snapshot, taken now; whatever `tx` sees beyond it is read
        // by the loop below, which checks that it continues the chain.
        let (check, log) = verify_scan(ev, store, Some(MerkleLog::new()), up_to).await?;
        let log = log.unwrap_or_default();
        if let Some(p) = check.problem {
            return Err(broken(&p));
        }
        *tree = Tree {
            log,
            head: check.head_hash,
            built: true,
        };
    }
    loop {
        let after = tree.log.size() as i64;
        if up_to.is_some_and(|u| after >= u) {
            return Ok(());
        }
        let rows = tx
            .event_rows(after, up_to, verify_page(tx.backend()))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let expected = tree.log.size() as i64 + 1;
            let linked = row.seq == expected
                && row.prev_hash == tree.head
                && jitgate_store::chain_hash(&tree.head, row.canonical.as_bytes()).as_deref()
                    == Some(row.hash.as_str());
            if !linked {
                *tree = Tree::default();
                return Err(ServerError::EvidenceBroken(format!(
                    "event {} does not continue the log this server checked (expected seq \
                     {expected} linking to {}): the log was changed behind the server's back; \
                     run `jitgate evidence verify`",
                    row.seq,
                    short(&tree.head)
                )));
            }
            tree.log.push(row.canonical.as_bytes());
            tree.head = row.hash;
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

fn broken(p: &LogProblem) -> ServerError {
    ServerError::EvidenceBroken(format!(
        "the evidence log fails verification at seq {} ({}): {}; nothing is signed or exported \
         until this is investigated (`jitgate evidence verify`)",
        p.seq(),
        p.kind(),
        p.message()
    ))
}

// ---------------------------------------------------------------- verify in place

/// The outcome of checking the log in the database.
pub struct LogCheck {
    pub events: u64,
    pub verified: u64,
    pub root_hash: String,
    pub head_hash: String,
    pub checkpoints: usize,
    pub checkpoints_verified: Vec<u64>,
    pub chain_head: i64,
    pub problem: Option<LogProblem>,
}

/// Read every row (up to `up_to`), the chain head and every checkpoint in one snapshot
/// ([`Store::scan_log`]), and check them with [`LogVerifier`]; optionally build the Merkle
/// tree on the way. Also compares the store's chain head (its record of how many events
/// there are) with the rows, which catches a cut tail even with no checkpoint after it.
async fn verify_scan(
    ev: &Evidence,
    store: &Store,
    build: Option<MerkleLog>,
    up_to: Option<i64>,
) -> ApiResult<(LogCheck, Option<MerkleLog>)> {
    let mut scan = store.scan_log(up_to).await?;
    let (head_seq, head_hash) = scan.head.clone();
    let records = std::mem::take(&mut scan.checkpoints);
    let (checkpoints, row_problem) = stored_checkpoints(&records);
    let mut verifier = LogVerifier::new(&checkpoints, &ev.public_keys());
    // Pages are checked on this blocking thread while the store's reader reads the next
    // ones on another: reading and hashing overlap on two cores.
    let checked = tokio::task::spawn_blocking(move || {
        let mut build = build;
        while let Some(page) = scan.blocking_next() {
            for leaf in page?.iter() {
                let going = verifier.push_ref(LeafRef {
                    seq: leaf.seq,
                    prev_hash: leaf.prev_hash,
                    hash: leaf.hash,
                    canonical: leaf.canonical,
                });
                if !going {
                    return Ok((verifier, build));
                }
                if let Some(log) = build.as_mut() {
                    log.push(leaf.canonical.as_bytes());
                }
            }
        }
        Ok::<_, jitgate_store::StoreError>((verifier, build))
    })
    .await
    .map_err(|e| ServerError::Internal(format!("log verification: {e}")))?;
    let (verifier, build) = checked?;
    let report = verifier.finish();
    let mut problem = report.problem.clone();
    if let Some(p) = row_problem {
        if problem.as_ref().is_none_or(|q| p.seq() < q.seq()) {
            problem = Some(p);
        }
    }
    // Checked against the chain head only when the whole log was read.
    if problem.is_none() && up_to.is_none() {
        let read = report.verified as i64;
        problem = if read < head_seq {
            Some(LogProblem::Truncated {
                seq: read + 1,
                message: format!(
                    "the store's chain head records {head_seq} events but the log ends at event \
                     {read}: events {}..{head_seq} were cut off the end",
                    read + 1
                ),
            })
        } else if read > head_seq {
            Some(LogProblem::Inserted {
                seq: head_seq + 1,
                message: format!(
                    "event {} lies beyond the store's chain head ({head_seq}): it was added \
                     outside the store",
                    head_seq + 1
                ),
            })
        } else if report.head_hash != head_hash {
            Some(LogProblem::BrokenLink {
                seq: head_seq,
                message: "the store's chain head hash does not match the last event".into(),
            })
        } else {
            None
        };
    }
    let check = LogCheck {
        events: report.events,
        verified: report.verified,
        root_hash: report.root_hash,
        head_hash: report.head_hash,
        checkpoints: records.len(),
        checkpoints_verified: report.checkpoints_verified,
        chain_head: head_seq,
        problem,
    };
    Ok((check, build))
}

/// Recompute the chain, the Merkle tree and every checkpoint over the database, in one
/// snapshot; names the first problem.
pub async fn verify(state: &AppState) -> ApiResult<LogVerifyView> {
    let (check, _) = verify_scan(&state.evidence, &state.store, None, None).await?;
    Ok(LogVerifyView {
        ok: check.problem.is_none(),
        log_id: state.evidence.log_id.clone(),
        events: check.events,
        verified: check.verified,
        chain_head: check.chain_head,
        root_hash: check.root_hash,
        head_hash: check.head_hash,
        checkpoints: check.checkpoints,
        checkpoints_verified: check.checkpoints_verified.len(),
        latest_checkpoint: check.checkpoints_verified.last().copied(),
        problem: check.problem.map(|p| LogProblemView {
            kind: p.kind().to_string(),
            seq: p.seq(),
            message: p.message().to_string(),
        }),
    })
}

// ---------------------------------------------------------------- bundles

/// The evidence bundle of one grant, for a caller who may see the grant. Signs a fresh
/// checkpoint first when the latest one does not cover every event of the grant.
pub async fn export(state: &AppState, caller: &Caller, grant_id: &str) -> ApiResult<Bundle> {
    let mut tx = state.store.read().await?;
    let grant = tx
        .get_grant(grant_id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", grant_id))?;
    let request = tx
        .get_request(&grant.request_id)
        .await?
        .ok_or_else(|| ServerError::not_found("request", &grant.request_id))?;
    if !crate::visibility::can_view(&mut tx, caller, &request).await? {
        return Err(ServerError::not_found("grant", grant_id));
    }
    let events = tx.access_events(&request.id, grant_id).await?;
    let archived = tx.policy_texts(&request.decision.policy_set_hash).await?;
    drop(tx);
    let last = events.last().map_or(0, |(seq, _)| *seq);

    let mut checkpoint = latest_trusted_checkpoint(state).await?;
    if checkpoint
        .as_ref()
        .is_none_or(|c| (c.checkpoint.tree_size as i64) < last)
    {
        checkpoint = sign_checkpoint(state, true).await?;
    }
    let mut checkpoint =
        checkpoint.ok_or_else(|| ServerError::Internal("no checkpoint could be signed".into()))?;
    // With witnesses, the covering checkpoint cosigned by the most of them.
    let mut cosignatures = Vec::new();
    if let Some((cosigned, lines)) = witness::best_cosigned(state, last.unsigned_abs()).await? {
        checkpoint = cosigned;
        cosignatures = lines;
    }

    let policies = request
        .decision
        .determining_policies
        .iter()
        .filter_map(|id| Some((id.clone(), archived.get(id)?.clone())))
        .collect();
    let events: Vec<(u64, String)> = events
        .into_iter()
        .map(|(seq, text)| (seq.unsigned_abs(), text))
        .collect();

    let ev = &state.evidence;
    let mut tree = ev.tree.lock().await;
    let size = checkpoint.checkpoint.tree_size as i64;
    if (tree.log.size() as i64) < size || !tree.built {
        let mut tx = state.store.read_snapshot().await?;
        sync_tree(ev, &state.store, &mut tree, &mut tx, None).await?;
        tx.commit().await?;
    }
    let (signer, known) = {
        let keys = ev.keys();
        (keys.current().clone(), keys.public().to_vec())
    };
    let in_bundle: std::collections::HashSet<i64> =
        events.iter().map(|(seq, _)| *seq as i64).collect();
    let bundle = Bundle::build(
        grant_id, events, &tree.log, checkpoint, policies, &signer, &known,
    )
    .map_err(|e| {
        ServerError::EvidenceBroken(format!(
            "{e}; the stored log no longer matches its checkpoint: run `jitgate evidence verify`"
        ))
    })?;
    drop(tree);
    let bundle = if cosignatures.is_empty() {
        bundle
    } else {
        bundle.with_cosignatures(cosignatures, &signer)
    };
    // The recordings' bytes the server holds, for the chunks whose event is in the bundle
    // (a chunk logged after the events were read waits for the next export).
    let mut tx = state.store.read().await?;
    let rows = tx.recording_chunks_of_grant(grant_id).await?;
    drop(tx);
    let chunks: Vec<(String, u64, Vec<u8>)> = rows
        .into_iter()
        .filter(|r| in_bundle.contains(&r.event_seq))
        .filter_map(|r| Some((r.session_id, r.index, r.data?)))
        .collect();
    if chunks.is_empty() {
        return Ok(bundle);
    }
    Ok(bundle.with_recordings(chunks, &signer))
}

/// The latest checkpoint whose signature verifies with a trusted key.
async fn latest_trusted_checkpoint(state: &AppState) -> ApiResult<Option<SignedCheckpoint>> {
    let mut tx = state.store.read().await?;
    let records = tx.list_checkpoints().await?;
    drop(tx);
    let keys = state.evidence.public_keys();
    Ok(records
        .iter()
        .rev()
        .filter_map(|r| to_signed(r).ok())
        .find(|s| s.checkpoint.log_id == state.evidence.log_id && s.verify(&keys).is_ok()))
}

/// Export and verify a bundle with the server's own keys: what the report is made from.
pub async fn verified_bundle(
    state: &AppState,
    caller: &Caller,
    grant_id: &str,
) -> ApiResult<VerifiedBundle> {
    let bundle = export(state, caller, grant_id).await?;
    let keys = state.evidence.public_keys();
    jitgate_evidence::verify_bundle(bundle.to_json().as_bytes(), &keys).map_err(|e| {
        ServerError::EvidenceBroken(format!("the exported bundle does not verify: {e}"))
    })
}

/// The one-page HTML audit report of a grant.
pub async fn report(state: &AppState, caller: &Caller, grant_id: &str) -> ApiResult<String> {
    let verified = verified_bundle(state, caller, grant_id).await?;
    Ok(jitgate_evidence::report_html(&verified))
}

/// Every stored checkpoint (as stored: an auditor verifies them with the public keys).
pub async fn checkpoints(state: &AppState) -> ApiResult<Vec<SignedCheckpoint>> {
    let mut tx = state.store.read().await?;
    let records = tx.list_checkpoints().await?;
    Ok(records.iter().filter_map(|r| to_signed(r).ok()).collect())
}

/// At most `limit` stored checkpoints after the one stored at position `after`, by tree
/// size, each with its position (what a next page continues after). A row that does not
/// decode is skipped, as in [`checkpoints`].
pub async fn checkpoints_after(
    state: &AppState,
    after: Option<i64>,
    limit: usize,
) -> ApiResult<Vec<(i64, SignedCheckpoint)>> {
    let mut tx = state.store.read().await?;
    let records = tx.list_checkpoints_after(after, limit as i64).await?;
    Ok(records
        .iter()
        .filter_map(|(pos, r)| to_signed(r).ok().map(|s| (*pos, s)))
        .collect())
}

/// Rotate the evidence key: the log's tail is signed with the old key first, the rotation is
/// recorded in the log, and that is signed with the new key. Returns the new key id.
pub async fn rotate_key(state: &AppState, actor: Actor) -> ApiResult<String> {
    // A failure to sign the tail (e.g. a broken log) must not block replacing a key that may
    // be compromised; it is logged and the rotation goes on.
    if let Err(e) = sign_checkpoint(state, false).await {
        tracing::warn!(error = %e, "could not sign the log's tail before rotating the evidence key");
    }
    let (previous, new) = {
        let mut keys = state.evidence.keys();
        let previous = keys.current_id();
        let new = keys
            .rotate()
            .map_err(|e| ServerError::Internal(format!("evidence key rotation: {e}")))?;
        (previous, new)
    };
    crate::cluster_keys::publish(state, &[keys::SECRET_KEY_FILE, keys::PUBLIC_KEYS_FILE]).await;
    let mut tx = state.store.write().await?;
    let rotated = jitgate_core::server_payload::KeyRotated {
        key: jitgate_core::server_payload::KeyPurpose::Evidence,
        new_kid: Some(new.clone()),
        previous_kid: Some(previous),
        retired_kid: None,
        now: None,
        changed: None,
        gateways_notified: None,
    };
    tx.append_events(&[Event::with_payload(actor, state.clock.now(), &rotated)?])
        .await?;
    tx.commit().await?;
    if let Err(e) = sign_checkpoint(state, false).await {
        tracing::warn!(error = %e, "could not sign a checkpoint with the new evidence key");
    }
    Ok(new)
}

// ---------------------------------------------------------------- periodic task

/// Sign a checkpoint every `evidence.checkpoint_interval` when the log grew, and once more
/// at a graceful stop. Errors are logged (once per distinct message) and retried next time.
pub async fn run_checkpointer(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let interval = state.config.evidence.interval().ok().flatten();
    let mut last_error: Option<String> = None;
    if let Some(every) = interval {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => break,
            }
            match sign_checkpoint(&state, false).await {
                Ok(Some(cp)) => {
                    last_error = None;
                    tracing::info!(tree_size = cp.checkpoint.tree_size, key_id = %cp.checkpoint.key_id, "evidence checkpoint signed");
                }
                Ok(None) => last_error = None,
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        tracing::error!(error = %message, "could not sign an evidence checkpoint");
                        last_error = Some(message);
                    }
                }
            }
        }
    } else {
        let _ = shutdown.changed().await;
    }
    match sign_checkpoint(&state, false).await {
        Ok(Some(cp)) => {
            tracing::info!(
                tree_size = cp.checkpoint.tree_size,
                "evidence checkpoint signed at stop"
            )
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "no evidence checkpoint at stop"),
    }
}
