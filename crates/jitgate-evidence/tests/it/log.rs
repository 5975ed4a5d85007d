//! Tampering with a stored log the way someone with database access would, and checking that
//! `verify_log` names the right problem at the right event.

use crate::fixtures::*;
use jitgate_evidence::*;

struct Setup {
    log: TestLog,
    key: EvidenceKey,
    checkpoints: Vec<SignedCheckpoint>,
}

/// 40 grants of 5 operations each: 40 × 14 = 560 events, checkpoints at 100, 200, 300, 560.
fn setup() -> Setup {
    let log = interleaved_log(39, 5, 7, 5);
    assert_eq!(log.rows.len(), 560);
    let key = EvidenceKey::generate().unwrap();
    let at = log.last_time + secs(60);
    let checkpoints = [100, 200, 300, 560]
        .iter()
        .enumerate()
        .map(|(i, s)| log.checkpoint(&key, *s, at + secs(i as i64)))
        .collect();
    Setup {
        log,
        key,
        checkpoints,
    }
}

fn run(rows: &[StoredLeaf], s: &Setup) -> LogReport {
    verify_log(rows.iter().cloned(), &s.checkpoints, &[s.key.public()])
}

fn problem(report: &LogReport) -> &LogProblem {
    report
        .problem
        .as_ref()
        .unwrap_or_else(|| panic!("no problem found: {report:?}"))
}

#[test]
fn an_intact_log_verifies_against_every_checkpoint() {
    let s = setup();
    let r = run(&s.log.rows, &s);
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(r.events, 560);
    assert_eq!(r.verified, 560);
    assert_eq!(r.checkpoints_verified, vec![100, 200, 300, 560]);
    assert_eq!(r.root_hash, hex::encode(s.log.merkle.root()));
    assert_eq!(r.head_hash, s.log.rows[559].hash);
    // Checkpoints may come in any order.
    let mut shuffled = s.checkpoints.clone();
    shuffled.reverse();
    assert!(verify_log(s.log.rows.iter().cloned(), &shuffled, &[s.key.public()]).is_ok());
    // An empty log with no checkpoint is fine; an empty-log checkpoint must match too.
    let empty = verify_log(std::iter::empty::<StoredLeaf>(), &[], &[]);
    assert!(empty.is_ok());
    assert_eq!(empty.root_hash, hex::encode(empty_root()));
}

#[test]
fn an_updated_row_is_named_as_altered() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    rows[149].canonical = rows[149]
        .canonical
        .replace("\"allowed\":false", "\"allowed\":true");
    if rows[149].canonical == s.log.rows[149].canonical {
        rows[149].canonical.push(' ');
    }
    let r = run(&rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::Altered { seq: 150, .. }),
        "{:?}",
        r.problem
    );
    assert_eq!(r.verified, 149);
    assert_eq!(r.checkpoints_verified, vec![100]);
}

#[test]
fn a_deleted_row_is_named() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    rows.remove(149);
    let r = run(&rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::Deleted { seq: 150, .. }),
        "{:?}",
        r.problem
    );
    assert!(problem(&r).message().contains("event 150 is missing"));
    // The first row deleted.
    let r = run(&s.log.rows[1..], &s);
    assert!(
        matches!(problem(&r), LogProblem::Deleted { seq: 1, .. }),
        "{:?}",
        r.problem
    );
}

#[test]
fn swapped_rows_are_named_as_reordered() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    // Swap the sequence numbers of two rows: each row keeps its text and hashes.
    rows.swap(149, 152);
    rows[149].seq = 150;
    rows[152].seq = 153;
    let r = run(&rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::Reordered { seq: 150, .. }),
        "{:?}",
        r.problem
    );
    assert!(problem(&r).message().contains("seq 152"), "{}", problem(&r));
}

#[test]
fn a_truncated_tail_is_named() {
    let s = setup();
    let rows = &s.log.rows[..500];
    let r = run(rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::Truncated { seq: 501, .. }),
        "{:?}",
        r.problem
    );
    assert!(
        problem(&r).message().contains("501..560"),
        "{}",
        problem(&r)
    );
    assert_eq!(r.checkpoints_verified, vec![100, 200, 300]);
}

#[test]
fn an_inserted_row_is_named() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    // A fabricated event slotted in as seq 150, linked correctly to 149; later rows renumbered.
    let forged = canonical(&grant_events(999, t0(), 0)[0]);
    let prev = rows[148].hash.clone();
    rows.insert(
        149,
        StoredLeaf {
            seq: 150,
            hash: chain_hash(&prev, &forged),
            prev_hash: prev,
            canonical: forged,
        },
    );
    for (i, r) in rows.iter_mut().enumerate().skip(150) {
        r.seq = i as i64 + 1;
    }
    let r = run(&rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::Inserted { seq: 150, .. }),
        "{:?}",
        r.problem
    );
}

#[test]
fn a_consistently_rewritten_history_fails_at_the_next_checkpoint() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    rows[149].canonical.push(' ');
    rechain(&mut rows, 149);
    let r = run(&rows, &s);
    match problem(&r) {
        LogProblem::RootMismatch { seq: 200, message } => {
            assert!(message.contains("after event 100"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.checkpoints_verified, vec![100]);
    // Deleting a row and renumbering + rechaining is caught the same way.
    let mut rows = s.log.rows.clone();
    rows.remove(250);
    rechain(&mut rows, 250);
    let r = run(&rows, &s);
    assert!(
        matches!(problem(&r), LogProblem::RootMismatch { seq: 300, .. }),
        "{:?}",
        r.problem
    );
}

#[test]
fn a_replaced_checkpoint_is_named() {
    let s = setup();
    // Its root edited (the signature no longer matches).
    let mut cps = s.checkpoints.clone();
    cps[1].checkpoint.root_hash = hex::encode(s.log.merkle.root_at(199).unwrap());
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &[s.key.public()]);
    match problem(&r) {
        LogProblem::BadCheckpoint { seq: 200, message } => {
            assert!(message.contains("does not verify"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Re-signed by a key that is not trusted.
    let mallory = EvidenceKey::generate().unwrap();
    let mut cps = s.checkpoints.clone();
    cps[2] = s.log.checkpoint(&mallory, 300, s.log.last_time + secs(62));
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &[s.key.public()]);
    match problem(&r) {
        LogProblem::BadCheckpoint { seq: 300, message } => {
            assert!(message.contains("not among the trusted"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A checkpoint of a larger tree dated before a smaller one.
    let mut cps = s.checkpoints.clone();
    cps[3] = s.log.checkpoint(&s.key, 560, s.log.last_time);
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &[s.key.public()]);
    assert!(
        matches!(
            problem(&r),
            LogProblem::CheckpointRegression { seq: 560, .. }
        ),
        "{:?}",
        r.problem
    );
    // A checkpoint dated before the events it covers.
    let early = s.log.checkpoint(&s.key, 300, t0() - secs(3600));
    let r = verify_log(s.log.rows.iter().cloned(), &[early], &[s.key.public()]);
    assert!(
        matches!(
            problem(&r),
            LogProblem::CheckpointRegression { seq: 300, .. }
        ),
        "{:?}",
        r.problem
    );
    // Another log's checkpoint.
    let mut cps = s.checkpoints.clone();
    cps.push(
        s.key
            .sign_checkpoint(
                "jitgate.test/other",
                50,
                &s.log.merkle.root_at(50).unwrap(),
                s.log.last_time,
            )
            .unwrap(),
    );
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &[s.key.public()]);
    assert!(
        matches!(problem(&r), LogProblem::ForeignCheckpoint { seq: 50, .. }),
        "{:?}",
        r.problem
    );
}

#[test]
fn the_first_problem_is_the_lowest_seq() {
    let s = setup();
    let mut rows = s.log.rows.clone();
    rows[400].canonical.push(' ');
    let mut cps = s.checkpoints.clone();
    cps[1].checkpoint.tree_size = 201;
    let r = verify_log(rows.iter().cloned(), &cps, &[s.key.public()]);
    assert!(
        matches!(problem(&r), LogProblem::BadCheckpoint { seq: 201, .. }),
        "{:?}",
        r.problem
    );
    assert!(problem(&r)
        .to_string()
        .starts_with("seq 201 (bad-checkpoint): "));
}

#[test]
fn after_a_key_rotation_old_checkpoints_keep_verifying() {
    let s = setup();
    let new_key = EvidenceKey::generate().unwrap();
    let mut cps = s.checkpoints[..2].to_vec();
    cps.push(s.log.checkpoint(&new_key, 300, s.log.last_time + secs(90)));
    cps.push(s.log.checkpoint(&new_key, 560, s.log.last_time + secs(91)));
    let both = [s.key.public(), new_key.public()];
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &both);
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(r.checkpoints_verified, vec![100, 200, 300, 560]);
    // Dropping the old key from the trusted set makes its checkpoints unverifiable.
    let r = verify_log(s.log.rows.iter().cloned(), &cps, &[new_key.public()]);
    assert!(
        matches!(problem(&r), LogProblem::BadCheckpoint { seq: 100, .. }),
        "{:?}",
        r.problem
    );
}

#[test]
fn the_streaming_verifier_gives_the_same_report_page_by_page() {
    let s = setup();
    let mut v = LogVerifier::new(&s.checkpoints, &[s.key.public()]);
    for page in s.log.rows.chunks(64) {
        for row in page {
            assert!(v.push(row));
        }
    }
    assert_eq!(v.finish(), run(&s.log.rows, &s));
}
