//! Bundles: built from a log, verified offline, and refused — with the reason and the place —
//! when truncated, reordered, re-signed, backed by an old checkpoint, or changed by one byte.

use crate::fixtures::*;
use jitgate_core::Event;
use jitgate_evidence::*;
use std::collections::BTreeMap;

const POLICY: &str = "@id(\"engineer-maintenance\")\n@approvals(\"1\")\npermit (principal in Group::\"engineers\", action == Action::\"modbus:write\", resource)\nwhen { context.path == \"planned\" };\n";

fn policies() -> BTreeMap<String, String> {
    BTreeMap::from([("engineer-maintenance".to_string(), POLICY.to_string())])
}

struct Fixture {
    log: TestLog,
    key: EvidenceKey,
    bundle: Bundle,
}

fn fixture(others: usize, target_ops: usize) -> Fixture {
    let log = interleaved_log(others, 2, 3.min(others), target_ops);
    let key = EvidenceKey::generate().unwrap();
    let size = log.rows.len() as u64;
    let cp = log.checkpoint(&key, size, log.last_time + secs(10));
    let bundle = Bundle::build(
        &log.grant_id,
        log.target_events(),
        &log.merkle,
        cp,
        policies(),
        &key,
        &[key.public()],
    )
    .unwrap();
    Fixture { log, key, bundle }
}

fn verify(b: &Bundle, keys: &[EvidencePublicKey]) -> Result<VerifiedBundle, BundleError> {
    verify_bundle(b.to_json().as_bytes(), keys)
}

/// A bundle of exactly these events, built by a trusted exporter: for the checks that hold
/// even against the server's own key (the chain must make sense).
fn bundle_of(events: &[Event], grant: &str) -> (Bundle, EvidenceKey) {
    let canonicals: Vec<String> = events.iter().map(canonical).collect();
    let merkle = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
    let key = EvidenceKey::generate().unwrap();
    let cp = key
        .sign_checkpoint(
            "jitgate.test/plant-1",
            merkle.size(),
            &merkle.root(),
            t0() + secs(86_400),
        )
        .unwrap();
    let numbered = canonicals
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    let b = Bundle::build(grant, numbered, &merkle, cp, policies(), &key, &[]).unwrap();
    (b, key)
}

#[test]
fn a_bundle_round_trips_and_verifies_offline() {
    let f = fixture(12, 6);
    let json = f.bundle.to_json();
    let v = verify_bundle(json.as_bytes(), &[f.key.public()]).unwrap();
    assert_eq!(v.grant_id, "grant-000003");
    assert_eq!(v.request_id, "req-000003");
    assert_eq!(v.events.len(), 7 + 6 + 2);
    assert!(v.notes.is_empty(), "{:?}", v.notes);
    let kinds: Vec<String> = v.timeline().into_iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds[..7],
        [
            "request.submitted",
            "request.decided",
            "approval.recorded",
            "request.approved",
            "grant.issued",
            "credential.issued",
            "session.started"
        ]
    );
    assert_eq!(kinds.last().unwrap(), "grant.ended");
    // Events keep their place in the log: seqs are spread, increasing.
    let seqs: Vec<u64> = v.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, f.log.target_seqs);
    let text = v.timeline_text();
    assert!(
        text.contains("grant grant-000003 (request req-000003)"),
        "{text}"
    );
    assert!(
        text.contains("lead-003 approves scope digest sha256:"),
        "{text}"
    );
    assert!(text.contains("operation"), "{text}");
    assert_eq!(text.lines().count(), 2 + 1 + v.events.len());
    // The JSON parses back to the same bundle.
    assert_eq!(
        parse_bundle(json.as_bytes(), &Limits::default()).unwrap(),
        f.bundle
    );
}

#[test]
fn a_bundle_verifies_across_a_key_rotation() {
    let log = interleaved_log(5, 2, 2, 3);
    let old = EvidenceKey::generate().unwrap();
    let new = EvidenceKey::generate().unwrap();
    let cp = log.checkpoint(&old, log.rows.len() as u64, log.last_time);
    let b = Bundle::build(
        &log.grant_id,
        log.target_events(),
        &log.merkle,
        cp,
        policies(),
        &new,
        &[old.public(), new.public()],
    )
    .unwrap();
    assert_eq!(b.keys.len(), 2);
    verify(&b, &[old.public(), new.public()]).unwrap();
    let err = verify(&b, &[new.public()]).unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint(CheckpointError::UnknownKey(_))),
        "{err}"
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let f = fixture(4, 2);
    let json = f.bundle.to_json();
    for cut in (0..json.len()).step_by(41) {
        let err = verify_bundle(&json.as_bytes()[..cut], &[f.key.public()]).unwrap_err();
        assert!(
            matches!(err, BundleError::Json { .. }),
            "cut at {cut}: {err}"
        );
    }
    let err = verify_bundle(&json.as_bytes()[..json.len() / 2], &[f.key.public()]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn removed_events_are_refused() {
    let f = fixture(4, 4);
    let mut b = f.bundle.clone();
    b.events.remove(9);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    assert!(
        matches!(&err, BundleError::Attestation(m) if m.contains("removed")),
        "{err}"
    );
    // The last events (the end of the grant) cut off.
    let mut b = f.bundle.clone();
    b.events.truncate(b.events.len() - 2);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("signed 13 events and the bundle has 11"),
        "{err}"
    );
    // The start cut off.
    let mut b = f.bundle.clone();
    b.events.remove(0);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    // The multi-proof no longer fits the events, and the attestation names the removal; a
    // re-attested bundle (the exporter's own cut) is refused as incomplete below.
    assert!(
        matches!(&err, BundleError::Attestation(m) if m.contains("removed")),
        "{err}"
    );
    let mut events = f.log.target_events();
    events.remove(0);
    let cut = Bundle::build(
        &f.log.grant_id,
        events,
        &f.log.merkle,
        f.bundle.checkpoint.clone(),
        policies(),
        &f.key,
        &[],
    )
    .unwrap();
    let err = verify(&cut, &[f.key.public()]).unwrap_err();
    assert!(
        matches!(&err, BundleError::Incomplete(m) if m.contains("request.submitted")),
        "{err}"
    );
}

#[test]
fn reordered_events_are_refused() {
    let f = fixture(4, 4);
    let mut b = f.bundle.clone();
    b.events.swap(3, 4);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    match &err {
        BundleError::Order {
            path,
            seq,
            previous,
        } => {
            assert_eq!(path, "events[4]");
            assert_eq!(*seq, f.bundle.events[3].seq);
            assert_eq!(*previous, f.bundle.events[4].seq);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("reordered"), "{err}");
    // A duplicated event.
    let mut b = f.bundle.clone();
    b.events.insert(5, b.events[4].clone());
    assert!(matches!(
        verify(&b, &[f.key.public()]).unwrap_err(),
        BundleError::Order { .. }
    ));
}

#[test]
fn a_bundle_re_signed_with_another_key_is_refused() {
    let f = fixture(4, 2);
    let mallory = EvidenceKey::generate().unwrap();
    // Mallory edits an event, rebuilds the tree from the bundle's own events, signs it all.
    let mut events = f.log.target_events();
    events[2].1 = events[2].1.replace("ok for WO", "approved by phone");
    let canonicals: Vec<String> = f.log.rows.iter().map(|r| r.canonical.clone()).collect();
    let mut all = canonicals.clone();
    all[events[2].0 as usize - 1] = events[2].1.clone();
    let merkle = MerkleLog::from_leaves(all.iter().map(String::as_bytes));
    let cp = mallory
        .sign_checkpoint(
            "jitgate.test/plant-1",
            merkle.size(),
            &merkle.root(),
            f.log.last_time,
        )
        .unwrap();
    let forged = Bundle::build(
        &f.log.grant_id,
        events,
        &merkle,
        cp,
        policies(),
        &mallory,
        &[],
    )
    .unwrap();
    let err = verify(&forged, &[f.key.public()]).unwrap_err();
    assert!(
        matches!(err, BundleError::Checkpoint(CheckpointError::UnknownKey(_))),
        "{err}"
    );
    assert!(
        err.to_string().contains("re-signed with another key"),
        "{err}"
    );
    // Only the attestation re-signed (the checkpoint kept): named as the attestation's key.
    let mut b = f.bundle.clone();
    b.policies.insert(
        "engineer-maintenance".into(),
        "permit(principal, action, resource);".into(),
    );
    b.attest(&mallory);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    assert!(
        matches!(&err, BundleError::Attestation(m) if m.contains("not trusted")),
        "{err}"
    );
}

#[test]
fn a_checkpoint_older_than_the_events_is_refused() {
    let f = fixture(6, 3);
    let last = *f.log.target_seqs.last().unwrap();
    // A genuine, trusted checkpoint — from before the grant ended.
    let mut b = f.bundle.clone();
    b.checkpoint = f.log.checkpoint(&f.key, last - 1, f.log.last_time);
    b.attest(&f.key);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    match &err {
        BundleError::CheckpointOlderThanEvents { seq, path, .. } => {
            assert_eq!(*seq, last);
            assert_eq!(*path, format!("events[{}]", f.bundle.events.len() - 1));
        }
        other => panic!("{other}"),
    }
    // The right size, but dated before the events it covers.
    let mut b = f.bundle.clone();
    b.checkpoint = f
        .log
        .checkpoint(&f.key, f.log.rows.len() as u64, t0() - secs(3600));
    b.attest(&f.key);
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    assert!(
        matches!(err, BundleError::CheckpointOlderThanEvents { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("the checkpoint is dated"), "{err}");
}

#[test]
fn a_changed_policy_text_is_named() {
    let f = fixture(4, 2);
    let mut b = f.bundle.clone();
    b.policies.insert(
        "engineer-maintenance".into(),
        POLICY.replace("planned", "emergency"),
    );
    let err = verify(&b, &[f.key.public()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "attestation: policies[\"engineer-maintenance\"]: the text differs from what the exporter signed"
    );
}

/// Flip one bit of every byte of the file in turn: each variant must be refused.
#[test]
fn every_single_byte_change_is_refused() {
    let f = fixture(2, 1);
    let json = f.bundle.to_json().into_bytes();
    let keys = [f.key.public()];
    verify_bundle(&json, &keys).unwrap();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..json.len() {
        let mut changed = json.clone();
        changed[i] ^= 0x01;
        let err = verify_bundle(&changed, &keys)
            .err()
            .unwrap_or_else(|| panic!("flipping byte {i} ({:?}) went unnoticed", json[i] as char));
        let kind = format!("{err:?}");
        *kinds
            .entry(kind.split([' ', '(', '{']).next().unwrap().to_string())
            .or_default() += 1;
    }
    // Changes inside event text that keep it a canonical event are caught by the proof.
    eprintln!("{} single-byte changes refused: {kinds:?}", json.len());
    assert!(
        kinds.get("MultiProof").copied().unwrap_or(0) > 200,
        "{kinds:?}"
    );
}

#[test]
fn an_event_of_another_grant_is_refused_even_from_the_exporter() {
    let mut events = grant_events(1, t0(), 1);
    let other = grant_events(2, t0(), 1);
    events.insert(6, other[6].clone()); // grant-000002's session.started
    let (b, key) = bundle_of(&events, "grant-000001");
    let err = verify(&b, &[key.public()]).unwrap_err();
    match &err {
        BundleError::ForeignEvent {
            seq: 7,
            path,
            message,
        } => {
            assert_eq!(path, "events[6]");
            assert!(message.contains("request req-000002"), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_impossible_order_is_refused_even_from_the_exporter() {
    // The grant issued before the approval was recorded.
    let mut events = grant_events(1, t0(), 1);
    events.swap(2, 4);
    let (b, key) = bundle_of(&events, "grant-000001");
    let err = verify(&b, &[key.public()]).unwrap_err();
    assert!(
        matches!(err, BundleError::Causality { seq: 3, .. }),
        "{err}"
    );
    // An approval of another scope digest.
    let mut events = grant_events(1, t0(), 1);
    events[2].data["scope_digest"] = "sha256:0000".into();
    let (b, key) = bundle_of(&events, "grant-000001");
    let err = verify(&b, &[key.public()]).unwrap_err();
    assert!(
        err.to_string().contains("does not approve this scope"),
        "{err}"
    );
    // A grant with fewer approvals than the decision required.
    let mut events = grant_events(1, t0(), 1);
    events[1].data["obligations"]["approvals"] = 2.into();
    let (b, key) = bundle_of(&events, "grant-000001");
    let err = verify(&b, &[key.public()]).unwrap_err();
    assert!(err.to_string().contains("1 of the 2 approvals"), "{err}");
    // No grant at all.
    let events = grant_events(1, t0(), 0)[..4].to_vec();
    let (b, key) = bundle_of(&events, "grant-000001");
    let err = verify(&b, &[key.public()]).unwrap_err();
    assert!(
        matches!(&err, BundleError::Incomplete(m) if m.contains("no grant.issued")),
        "{err}"
    );
    // Break-glass: no approval needed.
    let mut events = grant_events(1, t0(), 1);
    events[0].data["path"] = "emergency".into();
    events[1].state_after = Some("approved".into());
    events.drain(2..4);
    let (b, key) = bundle_of(&events, "grant-000001");
    verify(&b, &[key.public()]).unwrap();
}

#[test]
fn non_canonical_event_text_is_refused() {
    let events = grant_events(1, t0(), 0);
    let mut canonicals: Vec<String> = events.iter().map(canonical).collect();
    canonicals[1] = canonicals[1].replacen(",", ", ", 1);
    let merkle = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
    let key = EvidenceKey::generate().unwrap();
    let cp = key
        .sign_checkpoint(
            "jitgate.test/plant-1",
            merkle.size(),
            &merkle.root(),
            t0() + secs(86_400),
        )
        .unwrap();
    let numbered = canonicals
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    let b = Bundle::build(
        "grant-000001",
        numbered,
        &merkle,
        cp,
        BTreeMap::new(),
        &key,
        &[],
    )
    .unwrap();
    let err = verify(&b, &[key.public()]).unwrap_err();
    assert!(
        matches!(err, BundleError::NotCanonical { seq: 2, .. }),
        "{err}"
    );
}

#[test]
fn limits_unknown_fields_and_duplicate_keys_are_enforced() {
    let f = fixture(2, 1);
    let json = f.bundle.to_json_pretty();
    let keys = [f.key.public()];
    let tight = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    assert!(matches!(
        verify_bundle_with(json.as_bytes(), &keys, &tight),
        Err(BundleError::TooLarge { .. })
    ));
    let few = Limits {
        max_events: 3,
        ..Limits::default()
    };
    let err = verify_bundle_with(json.as_bytes(), &keys, &few).unwrap_err();
    assert!(err.to_string().starts_with("events: "), "{err}");
    let short = Limits {
        max_event_bytes: 100,
        ..Limits::default()
    };
    let err = verify_bundle_with(json.as_bytes(), &keys, &short).unwrap_err();
    assert!(
        err.to_string().starts_with("events[0].canonical: "),
        "{err}"
    );

    let extra = json.replacen("{", "{\n  \"comment\": \"hi\",", 1);
    let err = verify_bundle(extra.as_bytes(), &keys).unwrap_err();
    assert!(err.to_string().contains("unknown field `comment`"), "{err}");
    let dup = json.replacen(
        "\"policies\": {",
        "\"policies\": {\n    \"engineer-maintenance\": \"x\",",
        1,
    );
    let err = verify_bundle(dup.as_bytes(), &keys).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let v2 = json.replacen(BUNDLE_FORMAT, "jitgate-evidence-bundle/3", 1);
    assert!(matches!(
        verify_bundle(v2.as_bytes(), &keys),
        Err(BundleError::Format { .. })
    ));
    assert!(verify_bundle(b"", &keys).is_err());
    assert!(verify_bundle(b"[]", &keys).is_err());
    assert!(verify_bundle(&[0xff; 64], &keys).is_err());
}

#[test]
fn the_builder_refuses_what_it_cannot_prove() {
    let f = fixture(3, 1);
    let cp = f.log.checkpoint(&f.key, 10, f.log.last_time);
    let err = Bundle::build(
        &f.log.grant_id,
        f.log.target_events(),
        &f.log.merkle,
        cp.clone(),
        policies(),
        &f.key,
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("sign a newer checkpoint"), "{err}");
    // Text that is not what the log holds.
    let mut events = f.log.target_events();
    events[0].1.push(' ');
    let cp = f.bundle.checkpoint.clone();
    let err = Bundle::build(
        &f.log.grant_id,
        events,
        &f.log.merkle,
        cp.clone(),
        policies(),
        &f.key,
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("disagree"), "{err}");
    // A closure as the proof source.
    let source = |indices: &[u64], size: u64| f.log.merkle.multiproof(indices, size);
    let b = Bundle::build(
        &f.log.grant_id,
        f.log.target_events(),
        &source,
        cp,
        policies(),
        &f.key,
        &[],
    )
    .unwrap();
    assert_eq!(b, f.bundle);
}

/// Bundles exported before the multi-proof (format 1: an inclusion proof per event) keep
/// verifying, and their proofs are still checked event by event.
#[test]
fn format_1_bundles_keep_verifying() {
    let f = fixture(4, 2);
    let mut b = f.bundle.clone();
    b.format = jitgate_evidence::bundle::BUNDLE_FORMAT_V1.into();
    b.multiproof.clear();
    let size = b.checkpoint.checkpoint.tree_size;
    for e in &mut b.events {
        e.proof = f
            .log
            .merkle
            .inclusion_proof(e.seq - 1, size)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
    }
    b.attest(&f.key);
    let v = verify(&b, &[f.key.public()]).unwrap();
    assert_eq!(v.events.len(), b.events.len());
    // An edited event is named by its own proof in format 1.
    let mut edited = b.clone();
    edited.events[3].canonical.push(' ');
    assert!(matches!(
        verify(&edited, &[f.key.public()]),
        Err(BundleError::Inclusion { seq, .. }) if seq == b.events[3].seq
    ));
    // Format 1 with a multi-proof, or format 2 with per-event proofs: refused.
    let mut mixed = b.clone();
    mixed.multiproof = f.bundle.multiproof.clone();
    assert!(verify(&mixed, &[f.key.public()]).is_err());
    let mut mixed = f.bundle.clone();
    mixed.events[0].proof = b.events[0].proof.clone();
    assert!(verify(&mixed, &[f.key.public()]).is_err());
}
