//! Signed notes, cosignatures and the witness's decision: a consistent log, a forked log and a
//! rolled-back log.

use jitgate_evidence::note::{checkpoint_fields, Note, NoteError, TYPE_COSIGNATURE};
use jitgate_evidence::witness::{add_checkpoint, AddCheckpoint, Refusal, WitnessedCheckpoint};
use jitgate_evidence::{
    cosign, verify_cosignature, EvidenceKey, MerkleLog, SignedCheckpoint, Vkey,
};

const LOG: &str = "jitgate/plant-1";

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn log_of(n: u64, tag: &str) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        log.push(format!("{{\"event\":{i},\"tag\":\"{tag}\"}}").as_bytes());
    }
    log
}

struct Log {
    key: EvidenceKey,
    vkey: Vkey,
}

impl Log {
    fn new() -> Log {
        let key = EvidenceKey::generate().unwrap();
        let vkey = Vkey::for_log(LOG, &key.public()).unwrap();
        Log { key, vkey }
    }

    fn note(&self, log: &MerkleLog, size: u64, time: &str) -> String {
        self.key
            .sign_checkpoint(LOG, size, &log.root_at(size).unwrap(), at(time))
            .unwrap()
            .to_signed_note(&self.key.public())
            .unwrap()
    }
}

struct Witness {
    key: EvidenceKey,
    state: Option<WitnessedCheckpoint>,
}

impl Witness {
    fn new() -> Witness {
        Witness {
            key: EvidenceKey::generate().unwrap(),
            state: None,
        }
    }

    fn vkey(&self) -> Vkey {
        Vkey::for_cosigner("ot-security.plant-1/w1", &self.key.public()).unwrap()
    }

    /// What `jitgate evidence witness` does with a request; the state only moves on success.
    fn add(&mut self, log: &Log, req: &AddCheckpoint) -> Result<String, Refusal> {
        let (record, cosig) = add_checkpoint(
            self.state.as_ref(),
            req,
            std::slice::from_ref(&log.vkey),
            "ot-security.plant-1/w1",
            &self.key,
            1_780_000_000,
        )?;
        self.state = Some(record);
        Ok(cosig.line)
    }
}

fn request(log: &MerkleLog, old: u64, note: String) -> AddCheckpoint {
    let new = checkpoint_fields(&Note::parse(&note).unwrap().text)
        .unwrap()
        .tree_size;
    let proof = if old == 0 || old == new {
        Vec::new()
    } else {
        log.consistency_proof(old, new).unwrap()
    };
    AddCheckpoint {
        old_size: old,
        proof,
        note,
    }
}

#[test]
fn the_signed_note_example_of_the_standard_verifies() {
    // The example of c2sp.org/signed-note: our parser and key hash agree with the standard.
    let vkey = Vkey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        .unwrap();
    let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let parsed = Note::parse(note).unwrap();
    parsed.verify_log_signature(&vkey).unwrap();
    assert_eq!(parsed.to_text(), note);
    let altered = Note::parse(&note.replace("example message", "exemple message")).unwrap();
    assert!(matches!(
        altered.verify_log_signature(&vkey),
        Err(NoteError::BadSignature(_))
    ));
    // A vkey whose hash does not match its name is refused.
    assert!(
        Vkey::parse("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .is_err()
    );
}

#[test]
fn a_checkpoint_is_a_standard_note_and_reads_back() {
    let log = Log::new();
    let tree = log_of(5, "a");
    let signed = log
        .key
        .sign_checkpoint(LOG, 5, &tree.root(), at("2026-12-04T10:00:00.250Z"))
        .unwrap();
    let note = signed.to_signed_note(&log.key.public()).unwrap();
    let (text, sig) = note.split_once("\n\n").unwrap();
    assert_eq!(format!("{text}\n"), signed.checkpoint.body().unwrap());
    assert!(sig.starts_with(&format!("\u{2014} {LOG} ")), "{sig}");
    let back = SignedCheckpoint::from_signed_note(&note, std::slice::from_ref(&log.vkey)).unwrap();
    assert_eq!(back, signed);
    // The vkey round-trips through its text form.
    assert_eq!(Vkey::parse(&log.vkey.to_string()).unwrap(), log.vkey);
    // Another log's key does not read it; a changed size breaks the signature.
    let other = Log::new();
    assert!(SignedCheckpoint::from_signed_note(&note, &[other.vkey]).is_err());
    let forged = note.replacen("\n5\n", "\n6\n", 1);
    assert!(matches!(
        SignedCheckpoint::from_signed_note(&forged, &[log.vkey]),
        Err(NoteError::BadSignature(_))
    ));
}

#[test]
fn cosignatures_verify_only_for_their_note_and_key() {
    let log = Log::new();
    let tree = log_of(3, "a");
    let note = log.note(&tree, 3, "2026-12-04T10:00:00.000Z");
    let text = Note::parse(&note).unwrap().text;
    let w = Witness::new();
    let c = cosign(&w.key, "ot-security.plant-1/w1", &text, 1_780_000_123).unwrap();
    let ok = verify_cosignature(&c.line, &w.vkey(), &text)
        .unwrap()
        .unwrap();
    assert_eq!(ok.timestamp, 1_780_000_123);
    assert_eq!(w.vkey().sig_type, TYPE_COSIGNATURE);
    // Another checkpoint: fails. Another witness's key: not this witness's line (ignored).
    let other_text = Note::parse(&log.note(&tree, 2, "2026-12-04T10:00:00.000Z"))
        .unwrap()
        .text;
    assert!(verify_cosignature(&c.line, &w.vkey(), &other_text).is_err());
    assert_eq!(
        verify_cosignature(&c.line, &Witness::new().vkey(), &text).unwrap(),
        None
    );
    // The log's own key as a cosigner key: a log signature is never a cosignature.
    assert_eq!(verify_cosignature(&c.line, &log.vkey, &text).unwrap(), None);
}

#[test]
fn a_witness_follows_a_consistent_log() {
    let log = Log::new();
    let mut w = Witness::new();
    let tree = log_of(20, "a");
    // First contact: old size 0, no proof.
    let line = w
        .add(
            &log,
            &request(&tree, 0, log.note(&tree, 4, "2026-12-04T10:00:00.000Z")),
        )
        .unwrap();
    let text = Note::parse(&log.note(&tree, 4, "2026-12-04T10:00:00.000Z"))
        .unwrap()
        .text;
    assert!(verify_cosignature(&line, &w.vkey(), &text)
        .unwrap()
        .is_some());
    // Growth with a proof from 4, then from 9; the same size again is fine.
    w.add(
        &log,
        &request(&tree, 4, log.note(&tree, 9, "2026-12-04T10:01:00.000Z")),
    )
    .unwrap();
    w.add(
        &log,
        &request(&tree, 9, log.note(&tree, 20, "2026-12-04T10:02:00.000Z")),
    )
    .unwrap();
    w.add(
        &log,
        &request(&tree, 20, log.note(&tree, 20, "2026-12-04T10:03:00.000Z")),
    )
    .unwrap();
    assert_eq!(w.state.as_ref().unwrap().tree_size, 20);
    // A submitter that does not know the witness's size is told it (409), and the state stays.
    let stale = w.add(
        &log,
        &request(&tree, 0, log.note(&tree, 20, "2026-12-04T10:04:00.000Z")),
    );
    assert_eq!(stale, Err(Refusal::Conflict { latest: 20 }));
    assert_eq!(stale.unwrap_err().status(), 409);
}

#[test]
fn a_witness_refuses_what_the_log_did_not_sign() {
    let log = Log::new();
    let mut w = Witness::new();
    let tree = log_of(4, "a");
    let intruder = Log::new();
    let err = w
        .add(
            &log,
            &request(
                &tree,
                0,
                intruder.note(&tree, 4, "2026-12-04T10:00:00.000Z"),
            ),
        )
        .unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    let mut other_origin = log.note(&tree, 4, "2026-12-04T10:00:00.000Z");
    other_origin = other_origin.replace(LOG, "jitgate/other");
    let err = w.add(&log, &request(&tree, 0, other_origin)).unwrap_err();
    assert!(
        matches!(err, Refusal::UnknownLog(_) | Refusal::BadRequest(_)),
        "{err}"
    );
    assert!(w.state.is_none());
    for body in ["", "old 01\n\nx", "old 1\nnot base64\n\nx", "old -1\n\n"] {
        assert_eq!(
            AddCheckpoint::parse(body.as_bytes()).unwrap_err().status(),
            400,
            "{body:?}"
        );
    }
}

#[test]
fn a_forked_log_is_an_alarm_and_nothing_is_cosigned() {
    let log = Log::new();
    let mut w = Witness::new();
    let honest = log_of(10, "a");
    w.add(
        &log,
        &request(
            &honest,
            0,
            log.note(&honest, 10, "2026-12-04T10:00:00.000Z"),
        ),
    )
    .unwrap();
    // The same size with another history, signed by the log.
    let forked = log_of(10, "b");
    let err = w
        .add(
            &log,
            &request(
                &forked,
                10,
                log.note(&forked, 10, "2026-12-04T10:01:00.000Z"),
            ),
        )
        .unwrap_err();
    assert!(err.is_alarm(), "{err}");
    assert!(err.to_string().contains("forked"), "{err}");
    // A larger tree whose history diverges: the proof from the log cannot lead there.
    let mut diverged = log_of(8, "a");
    for i in 0..6 {
        diverged.push(format!("rewritten {i}").as_bytes());
    }
    let req = request(
        &diverged,
        10,
        log.note(&diverged, 14, "2026-12-04T10:02:00.000Z"),
    );
    let err = w.add(&log, &req).unwrap_err();
    assert!(matches!(err, Refusal::Inconsistent { .. }), "{err}");
    assert!(!err.is_alarm(), "a wrong proof from anyone is only refused");
    assert!(err.clone().attributed_to_log().is_alarm());
    assert_eq!(w.state.as_ref().unwrap().tree_size, 10, "state unchanged");
}

#[test]
fn a_rolled_back_log_is_an_alarm() {
    let log = Log::new();
    let mut w = Witness::new();
    let tree = log_of(10, "a");
    w.add(
        &log,
        &request(&tree, 0, log.note(&tree, 10, "2026-12-04T10:00:00.000Z")),
    )
    .unwrap();
    // Signed later, for fewer events: the log shrank.
    let err = w
        .add(
            &log,
            &request(&tree, 6, log.note(&tree, 6, "2026-12-04T11:00:00.000Z")),
        )
        .unwrap_err();
    assert!(matches!(err, Refusal::Rollback { .. }), "{err}");
    assert!(err.is_alarm());
    // An older checkpoint sent again is only stale (409), not an alarm.
    let err = w
        .add(
            &log,
            &request(&tree, 0, log.note(&tree, 6, "2026-12-04T09:00:00.000Z")),
        )
        .unwrap_err();
    assert!(!err.is_alarm(), "{err}");
}
