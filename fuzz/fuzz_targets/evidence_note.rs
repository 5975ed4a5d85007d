//! Checkpoint notes, vkeys, cosignature lines and witness requests are untrusted text (a
//! witness reads what a server sends; a server reads what a witness posts): any bytes must
//! give an error or a value, never a panic.
//!
//! Half of the inputs are edits of a valid add-checkpoint request built here once (a log of
//! 9 events, a witness that cosigned 4): the first byte picks the mode, the rest are
//! `(position: u16, xor: u8)` edits, which drives the fuzzer into the signature, proof and
//! fork/rollback checks, where a flipped byte must still end in a refusal.

#![no_main]

use jitgate_evidence::note::{checkpoint_fields, Note, NoteSignature};
use jitgate_evidence::witness::{add_checkpoint, AddCheckpoint, WitnessedCheckpoint};
use jitgate_evidence::{verify_cosignature, EvidenceKey, MerkleLog, SignedCheckpoint, Vkey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixture {
    request: Vec<u8>,
    log_keys: Vec<Vkey>,
    witness_key: EvidenceKey,
    witness_vkey: Vkey,
    state: WitnessedCheckpoint,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = EvidenceKey::from_bytes(&[9u8; 32]).unwrap();
        let witness_key = EvidenceKey::from_bytes(&[10u8; 32]).unwrap();
        let log = MerkleLog::from_leaves((0..9).map(|i| format!("event {i}").into_bytes()));
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let note = |size: u64, time: &str| {
            key.sign_checkpoint("jitgate.fuzz/log", size, &log.root_at(size).unwrap(), t(time))
                .unwrap()
                .to_signed_note(&key.public())
                .unwrap()
        };
        let old = note(4, "2026-11-01T08:00:00.000Z");
        let log_keys = vec![Vkey::for_log("jitgate.fuzz/log", &key.public()).unwrap()];
        let witness_vkey = Vkey::for_cosigner("w.fuzz/1", &witness_key.public()).unwrap();
        let first = AddCheckpoint {
            old_size: 0,
            proof: Vec::new(),
            note: old,
        };
        let (state, _) =
            add_checkpoint(None, &first, &log_keys, "w.fuzz/1", &witness_key, 1).unwrap();
        let request = AddCheckpoint {
            old_size: 4,
            proof: log.consistency_proof(4, 9).unwrap(),
            note: note(9, "2026-11-01T08:01:00.000Z"),
        };
        // The fixture itself must be cosigned, or the edits below test nothing.
        add_checkpoint(Some(&state), &request, &log_keys, "w.fuzz/1", &witness_key, 2).unwrap();
        Fixture {
            request: request.to_body().into_bytes(),
            log_keys,
            witness_key,
            witness_vkey,
            state,
        }
    })
}

fn check(bytes: &[u8], f: &Fixture) {
    if let Ok(req) = AddCheckpoint::parse(bytes) {
        let _ = req.to_body();
        if let Ok((record, cosig)) = add_checkpoint(
            Some(&f.state),
            &req,
            &f.log_keys,
            "w.fuzz/1",
            &f.witness_key,
            3,
        ) {
            // What the witness cosigned must read back as this log's checkpoint, and the
            // cosignature must verify over it.
            let text = Note::parse(&req.note).unwrap().text;
            assert!(verify_cosignature(&cosig.line, &f.witness_vkey, &text)
                .unwrap()
                .is_some());
            assert!(record.tree_size >= f.state.tree_size);
            SignedCheckpoint::from_signed_note(&req.note, &f.log_keys).unwrap();
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(note) = Note::parse(text) {
            let _ = checkpoint_fields(&note.text);
            let _ = note.to_text();
        }
        let _ = SignedCheckpoint::from_signed_note(text, &f.log_keys);
        let _ = Vkey::parse(text);
        let _ = NoteSignature::parse_line(text);
        let _ = verify_cosignature(text, &f.witness_vkey, "x\n");
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data.split_first() {
        Some((mode, edits)) if mode % 2 == 1 => {
            let mut bytes = f.request.clone();
            for e in edits.chunks_exact(3) {
                let pos = usize::from(u16::from_le_bytes([e[0], e[1]])) % bytes.len();
                bytes[pos] ^= e[2];
            }
            check(&bytes, f);
        }
        _ => check(data, f),
    }
});
