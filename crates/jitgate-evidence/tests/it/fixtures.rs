//! Realistic events and logs for the tests and the benchmark (which includes this file).
//! The event shapes mirror what jitgate-core's lifecycle and the server's gateway endpoint
//! append, so the checks run against the data they will meet.

#![allow(dead_code)]

use chrono::TimeZone;
use jitgate_core::{Actor, Event, EventKind, Timestamp};
use jitgate_evidence::{EvidenceKey, MerkleLog, SignedCheckpoint, StoredLeaf, GENESIS_HASH};
use serde_json::json;
use sha2::{Digest, Sha256};

pub fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

pub fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

pub const SCOPE: &str =
    "plc-7 modbus read holding 0-99 unit 1; plc-7 modbus write coil 10-20 unit 1";
pub const DIGEST: &str = "sha256:6d1f0c4a6b8f2b8a1f0e3c5d7a9b2c4e6f8a0b2c4d6e8f0a1b3c5d7e9f1a2b3c";

/// The whole life of one grant: request, decision, approval, grant, credential, one session
/// with `ops` Modbus operations (every tenth denied), its end, and the grant's end.
pub fn grant_events(n: usize, start: Timestamp, ops: usize) -> Vec<Event> {
    let req = format!("req-{n:06}");
    let grant = format!("grant-{n:06}");
    let appr = format!("appr-{n:06}");
    let session = format!("sess-{n:06}");
    let requester = format!("eng-{:03}", n % 97);
    let approver = format!("lead-{:03}", n % 13);
    let gw = Actor::identity("gw-north");
    let mut t = start;
    fn tick(t: &mut Timestamp, s: i64) -> Timestamp {
        *t += secs(s);
        *t
    }
    let mut out = vec![
        Event::new(EventKind::RequestSubmitted, Actor::identity(&requester), tick(&mut t, 0))
            .request(&req)
            .data(json!({
                "requester": requester,
                "subject": requester,
                "scope_digest": DIGEST,
                "scope": SCOPE,
                "window_start": jitgate_core::event::rfc3339(start),
                "duration_secs": 3600,
                "reason": "replace the pressure sensor on line 2 <urgent> & \"checked\"",
                "reference": format!("WO-{n}"),
                "path": "planned",
            })),
        Event::new(EventKind::RequestDecided, Actor::system(), tick(&mut t, 0))
            .request(&req)
            .states(None, "pending")
            .data(json!({
                "allowed": true,
                "determining_policies": ["engineer-maintenance"],
                "policy_set_hash": "sha256:9a1c",
                "obligations": {"approvals": 1, "approver_roles": ["lead"], "approver_groups": [],
                                "max_duration_secs": 14400, "step_up": true, "review": false},
                "reasons": [],
            })),
        Event::new(EventKind::ApprovalRecorded, Actor::identity(&approver), tick(&mut t, 60))
            .request(&req)
            .approval(&appr)
            .states(Some("pending"), "approved")
            .data(json!({
                "verdict": "approve", "scope_digest": DIGEST, "comment": "ok for WO",
                "step_up": true, "approvals": 1, "required": 1,
            })),
        Event::new(EventKind::RequestApproved, Actor::identity(&approver), tick(&mut t, 0))
            .request(&req)
            .approval(&appr)
            .states(Some("pending"), "approved"),
        Event::new(EventKind::GrantIssued, Actor::scheduler(), tick(&mut t, 1))
            .request(&req)
            .grant(&grant)
            .states(Some("approved"), "active")
            .data(json!({
                "subject": requester, "scope_digest": DIGEST,
                "not_before": jitgate_core::event::rfc3339(start),
                "expires_at": jitgate_core::event::rfc3339(start + secs(3600)),
                "emergency": false, "review_required": false,
            })),
        Event::new(EventKind::CredentialIssued, Actor::identity(&requester), tick(&mut t, 5))
            .request(&req)
            .grant(&grant)
            .data(json!({
                "token_fingerprint": format!("sha256:{:064x}", n),
                "token_id": format!("tok-{n}"), "asset": "plc-7", "gateway": "gw-north",
                "client_key": "MCowBQYDK2VwAyEA", "expires_at": jitgate_core::event::rfc3339(start + secs(3600)),
            })),
        Event::new(EventKind::SessionStarted, gw.clone(), tick(&mut t, 2))
            .request(&req)
            .grant(&grant)
            .data(json!({"gseq": 1, "session_id": session, "detail": {"client": "127.0.0.1:50122", "asset": "plc-7"}})),
    ];
    for i in 0..ops {
        let denied = i % 10 == 9;
        out.push(
            Event::new(EventKind::Operation, gw.clone(), t + chrono::Duration::milliseconds(i as i64 * 20))
                .request(&req)
                .grant(&grant)
                .data(json!({
                    "gseq": i + 2,
                    "session_id": session,
                    "detail": {
                        "unit": 1,
                        "function": if denied { "write_single_register" } else { "read_holding_registers" },
                        "address": (i * 7) % 100,
                        "quantity": 10,
                        "allowed": !denied,
                        "reason": if denied { "write to holding registers is outside the grant" } else { "in scope" },
                        "latency_us": 800 + (i % 50),
                    }
                })),
        );
    }
    t += chrono::Duration::milliseconds(ops as i64 * 20);
    out.push(
        Event::new(EventKind::SessionEnded, gw, tick(&mut t, 1))
            .request(&req)
            .grant(&grant)
            .data(json!({"gseq": ops + 2, "session_id": session, "detail": {"bytes_in": 4096, "bytes_out": 8192, "operations": ops}})),
    );
    out.push(
        Event::new(
            EventKind::GrantEnded,
            Actor::identity(&requester),
            tick(&mut t, 30),
        )
        .request(&req)
        .grant(&grant)
        .states(Some("active"), "ending")
        .data(json!({
            "end_reason": "completed",
            "ended_at": jitgate_core::event::rfc3339(t),
            "expires_at": jitgate_core::event::rfc3339(start + secs(3600)),
        })),
    );
    out
}

pub fn canonical(e: &Event) -> String {
    String::from_utf8(e.canonical_bytes()).unwrap()
}

/// `hex(SHA-256(prev || canonical))`, the store's chain rule.
pub fn chain_hash(prev_hex: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(hex::decode(prev_hex).unwrap());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Rows as the store would hold them, seq from 1.
pub fn chain(canonicals: impl IntoIterator<Item = String>) -> Vec<StoredLeaf> {
    let mut prev = GENESIS_HASH.to_string();
    canonicals
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let hash = chain_hash(&prev, &c);
            StoredLeaf {
                seq: i as i64 + 1,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
                canonical: c,
            }
        })
        .collect()
}

/// Recompute `prev_hash`/`hash` of every row from `from` (0-based) on, as an attacker with
/// database access would to hide an edit from the chain.
pub fn rechain(rows: &mut [StoredLeaf], from: usize) {
    let mut prev = if from == 0 {
        GENESIS_HASH.to_string()
    } else {
        rows[from - 1].hash.clone()
    };
    for (i, r) in rows.iter_mut().enumerate().skip(from) {
        r.seq = i as i64 + 1;
        r.prev_hash = prev.clone();
        r.hash = chain_hash(&prev, &r.canonical);
        prev = r.hash.clone();
    }
}

/// A log where grant number `target` (with `ops` operations) is interleaved with `others`
/// smaller grants, as concurrent work on a plant produces it.
pub struct TestLog {
    pub rows: Vec<StoredLeaf>,
    pub merkle: MerkleLog,
    /// seqs of the target grant's events
    pub target_seqs: Vec<u64>,
    pub grant_id: String,
    pub last_time: Timestamp,
}

pub fn interleaved_log(
    others: usize,
    ops_each: usize,
    target: usize,
    target_ops: usize,
) -> TestLog {
    let mut streams: Vec<std::collections::VecDeque<Event>> = Vec::new();
    let mut target_stream = 0;
    for n in 0..others + 1 {
        let ops = if n == target { target_ops } else { ops_each };
        if n == target {
            target_stream = streams.len();
        }
        streams.push(grant_events(n, t0() + secs(n as i64 * 7), ops).into());
    }
    // Round-robin, so every grant's events are spread over the log in their own order.
    let mut canonicals = Vec::new();
    let mut target_seqs = Vec::new();
    let mut last_time = t0();
    loop {
        let mut any = false;
        for (s, stream) in streams.iter_mut().enumerate() {
            if let Some(e) = stream.pop_front() {
                any = true;
                last_time = last_time.max(e.at);
                canonicals.push(canonical(&e));
                if s == target_stream {
                    target_seqs.push(canonicals.len() as u64);
                }
            }
        }
        if !any {
            break;
        }
    }
    let merkle = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
    TestLog {
        rows: chain(canonicals),
        merkle,
        target_seqs,
        grant_id: format!("grant-{target:06}"),
        last_time,
    }
}

impl TestLog {
    pub fn checkpoint(&self, key: &EvidenceKey, size: u64, time: Timestamp) -> SignedCheckpoint {
        key.sign_checkpoint(
            "jitgate.test/plant-1",
            size,
            &self.merkle.root_at(size).unwrap(),
            time,
        )
        .unwrap()
    }

    pub fn target_events(&self) -> Vec<(u64, String)> {
        self.target_seqs
            .iter()
            .map(|s| (*s, self.rows[*s as usize - 1].canonical.clone()))
            .collect()
    }
}
