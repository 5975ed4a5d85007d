//! Evidence bundles are untrusted input (an auditor is handed a file): parsing and verifying
//! any bytes must return an error or a verified bundle, never panic, and stay within limits.
//!
//! Random bytes rarely get past the JSON parser, so half of the inputs are instead edits of a
//! valid, correctly signed bundle built here once: the first input byte picks the mode, the
//! rest are `(position: u16, xor: u8)` edits. That drives the fuzzer into the proof, event,
//! chain and signature checks, where a byte flip must still end in an error.

#![no_main]

use jitgate_core::{Actor, Event, EventKind};
use jitgate_evidence::{
    parse_bundle, report_html, verify_bundle, verify_bundle_with, Bundle, EvidenceKey,
    EvidencePublicKey, Limits, MerkleLog,
};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::OnceLock;

struct Fixture {
    json: Vec<u8>,
    keys: Vec<EvidencePublicKey>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = EvidenceKey::from_bytes(&[7u8; 32]).unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-01T08:00:00.000Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        // A break-glass grant: the shortest valid chain, plus a session and operations.
        let digest = "sha256:00ff";
        let events = [
            Event::new(EventKind::RequestSubmitted, Actor::identity("eng-1"), t)
                .request("req-1")
                .data(
                    json!({"requester": "eng-1", "subject": "eng-1", "scope_digest": digest,
                             "scope": "plc-7 modbus read holding 0-9 unit 1", "path": "emergency",
                             "reason": "<b>trip</b> & \"reset\"", "reference": "INC-1"}),
                ),
            Event::new(EventKind::RequestDecided, Actor::system(), t)
                .request("req-1")
                .states(None, "approved")
                .data(
                    json!({"allowed": true, "determining_policies": ["break-glass"],
                             "policy_set_hash": "sha256:01",
                             "obligations": {"approvals": 0, "max_duration_secs": 3600}}),
                ),
            Event::new(EventKind::GrantIssued, Actor::scheduler(), t)
                .request("req-1")
                .grant("grant-1")
                .states(Some("approved"), "active")
                .data(json!({"subject": "eng-1", "scope_digest": digest, "emergency": true})),
            Event::new(EventKind::SessionStarted, Actor::identity("gw-1"), t)
                .request("req-1")
                .grant("grant-1")
                .data(json!({"gseq": 1, "session_id": "s-1", "detail": {}})),
            Event::new(EventKind::Operation, Actor::identity("gw-1"), t)
                .request("req-1")
                .grant("grant-1")
                .data(json!({"gseq": 2, "session_id": "s-1",
                             "detail": {"function": "read_holding_registers", "allowed": true}})),
            Event::new(EventKind::GrantEnded, Actor::scheduler(), t)
                .request("req-1")
                .grant("grant-1")
                .states(Some("active"), "ending")
                .data(json!({"end_reason": "expired"})),
        ];
        let canonicals: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.canonical_bytes()).unwrap())
            .collect();
        let log = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
        let cp = key
            .sign_checkpoint("jitgate.fuzz/log", log.size(), &log.root(), t)
            .unwrap();
        let numbered = canonicals
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as u64 + 1, c))
            .collect();
        let policies = BTreeMap::from([(
            "break-glass".to_string(),
            "permit(principal, action, resource);".to_string(),
        )]);
        let bundle = Bundle::build("grant-1", numbered, &log, cp, policies, &key, &[]).unwrap();
        let json = bundle.to_json().into_bytes();
        let keys = vec![key.public()];
        // The fixture itself must verify, or the edits below test nothing.
        verify_bundle(&json, &keys).unwrap();
        Fixture { json, keys }
    })
}

fn check(bytes: &[u8], keys: &[EvidencePublicKey]) {
    // Small limits too, so the limit paths are exercised on small inputs.
    let small = Limits {
        max_bytes: 64 * 1024,
        max_events: 8,
        max_event_bytes: 2048,
        max_proof_len: 8,
        max_policies: 4,
        max_policy_bytes: 256,
        max_id_len: 32,
        max_keys: 2,
        max_recording_chunks: 4,
    };
    let _ = parse_bundle(bytes, &small);
    let _ = verify_bundle_with(bytes, keys, &small);
    if let Ok(verified) = verify_bundle(bytes, keys) {
        // A bundle that verifies must also render.
        let _ = verified.timeline_text();
        let _ = report_html(&verified);
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data.split_first() {
        Some((mode, edits)) if mode % 2 == 1 => {
            let mut bytes = f.json.clone();
            for e in edits.chunks_exact(3) {
                let pos = usize::from(u16::from_le_bytes([e[0], e[1]])) % bytes.len();
                bytes[pos] ^= e[2];
            }
            check(&bytes, &f.keys);
        }
        _ => check(data, &f.keys),
    }
});
