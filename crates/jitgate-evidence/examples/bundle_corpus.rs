//! Writes a corpus of evidence bundles with this verifier's verdicts, for checking that an
//! independent verifier (verifier/python) agrees on every case (`.ci/verifiers-agree.sh`).
//!
//! `cargo run -p jitgate-evidence --example bundle_corpus -- DIR`
//!
//! DIR gets `<case>.json` bundles, `keys.pub` (the evidence public keys, two after a
//! rotation), `w1.vkey` and `w2.vkey` (witness keys), and `expected.json`:
//! `{case: {"ok": bool, "error": "<BundleError variant>" or null, "args": [extra CLI args]}}`.
//! Cases: a small grant, a 10,000-operation grant in a log of others, a checkpoint signed
//! before a key rotation, events of canonical form version 1, a format 1 bundle, a witnessed
//! bundle, and each kind of tampering (changed byte, dropped and reordered events, forged
//! checkpoint, changed policy, forged or missing cosignature, untrusted key).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/fixtures.rs"]
mod fixtures;

use fixtures::*;
use jitgate_evidence::bundle::BUNDLE_FORMAT_V1;
use jitgate_evidence::note::Note;
use jitgate_evidence::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const POLICY: &str =
    "@id(\"engineer-maintenance\")\npermit (principal in Group::\"engineers\", action, resource);\n";

fn policies() -> BTreeMap<String, String> {
    BTreeMap::from([("engineer-maintenance".to_string(), POLICY.to_string())])
}

/// Seeded keys, so the corpus is the same bytes on every run.
fn key(seed: u8) -> EvidenceKey {
    EvidenceKey::from_bytes(&[seed; 32]).unwrap()
}

struct Corpus {
    dir: PathBuf,
    keys: Vec<EvidencePublicKey>,
    witnesses: Vec<Vkey>,
    expected: BTreeMap<String, Value>,
}

impl Corpus {
    /// Write the bundle and record what this verifier says of it with these CLI args.
    fn case(&mut self, name: &str, bundle: &[u8], args: &[&str]) {
        std::fs::write(self.dir.join(format!("{name}.json")), bundle).unwrap();
        let mut witness_keys = Vec::new();
        let mut min = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match *a {
                "--witness-key" => {
                    let file = it.next().unwrap();
                    let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
                    witness_keys.extend(Vkey::parse_lines(&text).unwrap());
                }
                "--min-witnesses" => min = Some(it.next().unwrap().parse().unwrap()),
                other => panic!("unknown arg {other}"),
            }
        }
        let min = min.unwrap_or(usize::from(!witness_keys.is_empty()));
        let policy = WitnessPolicy::new(witness_keys, min).unwrap();
        let verdict = verify_bundle_witnessed(bundle, &self.keys, &Limits::default(), &policy);
        let (ok, error) = match &verdict {
            Ok(_) => (true, Value::Null),
            Err(e) => {
                let kind = format!("{e:?}");
                let kind = kind.split([' ', '(', '{']).next().unwrap().to_string();
                (false, Value::String(kind))
            }
        };
        println!(
            "{name:24} {}",
            match &verdict {
                Ok(v) => format!("ok ({} events)", v.events.len()),
                Err(e) => format!("REJECTED: {e}"),
            }
        );
        self.expected.insert(
            name.to_string(),
            json!({"ok": ok, "error": error, "args": args}),
        );
    }
}

fn build(
    log: &TestLog,
    cp: SignedCheckpoint,
    signer: &EvidenceKey,
    known: &[EvidencePublicKey],
) -> Bundle {
    Bundle::build(
        &log.grant_id,
        log.target_events(),
        &log.merkle,
        cp,
        policies(),
        signer,
        known,
    )
    .unwrap()
}

fn edit(bundle: &Bundle, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(&bundle.to_json()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: bundle_corpus DIR");
        std::process::exit(2)
    }));
    std::fs::create_dir_all(&dir).unwrap();
    let old_key = key(1);
    let new_key = key(2);
    let keys = vec![old_key.public(), new_key.public()];
    let key_file: String = keys.iter().map(EvidencePublicKey::to_line).collect();
    std::fs::write(dir.join("keys.pub"), key_file).unwrap();
    let w1 = key(11);
    let w2 = key(12);
    let witnesses = vec![
        Vkey::for_cosigner("audit.example/w1", &w1.public()).unwrap(),
        Vkey::for_cosigner("site-b.example/w2", &w2.public()).unwrap(),
    ];
    std::fs::write(dir.join("w1.vkey"), format!("{}\n", witnesses[0])).unwrap();
    std::fs::write(dir.join("w2.vkey"), format!("{}\n", witnesses[1])).unwrap();
    let mut c = Corpus {
        dir: dir.clone(),
        keys: keys.clone(),
        witnesses,
        expected: BTreeMap::new(),
    };

    // A small grant among a few others, signed by the current key.
    let small = interleaved_log(3, 2, 1, 4);
    let cp = small.checkpoint(
        &new_key,
        small.rows.len() as u64,
        small.last_time + secs(10),
    );
    let b = build(&small, cp.clone(), &new_key, &keys);
    c.case("small", b.to_json().as_bytes(), &[]);

    // Tampering, each kind once.
    c.case(
        "changed_byte",
        &edit(&b, |v| {
            let t = v["events"][2]["canonical"].as_str().unwrap().replacen(
                "\"actor\":\"",
                "\"actor\":\"x",
                1,
            );
            v["events"][2]["canonical"] = t.into();
        }),
        &[],
    );
    c.case(
        "dropped_event",
        &edit(&b, |v| {
            v["events"].as_array_mut().unwrap().remove(3);
        }),
        &[],
    );
    c.case(
        "reordered_events",
        &edit(&b, |v| v["events"].as_array_mut().unwrap().swap(2, 3)),
        &[],
    );
    c.case(
        "forged_checkpoint",
        &edit(&b, |v| {
            let n = v["checkpoint"]["checkpoint"]["tree_size"].as_u64().unwrap();
            v["checkpoint"]["checkpoint"]["tree_size"] = (n + 1).into();
        }),
        &[],
    );
    c.case(
        "changed_policy",
        &edit(&b, |v| {
            v["policies"]["engineer-maintenance"] = POLICY.replace("engineers", "everyone").into();
        }),
        &[],
    );
    let stranger = key(9);
    let resigned = build(
        &small,
        small.checkpoint(
            &stranger,
            small.rows.len() as u64,
            small.last_time + secs(10),
        ),
        &stranger,
        &[],
    );
    c.case("untrusted_key", resigned.to_json().as_bytes(), &[]);

    // Witnessed: w1 cosigned the checkpoint; w2 did not.
    let note = cp.to_signed_note(&new_key.public()).unwrap();
    let text = Note::parse(&note).unwrap().text;
    let cosig = cosign(&w1, &c.witnesses[0].name, &text, 1_790_000_000).unwrap();
    let witnessed = b
        .clone()
        .with_cosignatures(vec![cosig.line.clone()], &new_key);
    c.case(
        "witnessed",
        witnessed.to_json().as_bytes(),
        &["--witness-key", "w1.vkey"],
    );
    c.case(
        "missing_witness",
        witnessed.to_json().as_bytes(),
        &[
            "--witness-key",
            "w1.vkey",
            "--witness-key",
            "w2.vkey",
            "--min-witnesses",
            "2",
        ],
    );
    c.case("witness_not_required", witnessed.to_json().as_bytes(), &[]);
    let other_cp_text = Note::parse(
        &small
            .checkpoint(
                &new_key,
                small.rows.len() as u64 - 1,
                small.last_time + secs(10),
            )
            .to_signed_note(&new_key.public())
            .unwrap(),
    )
    .unwrap()
    .text;
    let misplaced = cosign(&w1, &c.witnesses[0].name, &other_cp_text, 1_790_000_000).unwrap();
    let forged = b.clone().with_cosignatures(vec![misplaced.line], &new_key);
    c.case(
        "forged_cosignature",
        forged.to_json().as_bytes(),
        &["--witness-key", "w1.vkey"],
    );

    // A checkpoint signed with the key before a rotation; the bundle attested by the new one.
    let cp_old = small.checkpoint(
        &old_key,
        small.rows.len() as u64,
        small.last_time + secs(10),
    );
    c.case(
        "rotated_key",
        build(&small, cp_old, &new_key, &keys).to_json().as_bytes(),
        &[],
    );

    // Events written before canonical form version 2.
    let mut v1_events: Vec<_> = grant_events(1, t0(), 3);
    for e in &mut v1_events {
        e.canonical_version = None;
    }
    let canonicals: Vec<String> = v1_events.iter().map(canonical).collect();
    let merkle = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
    let cp_v1 = new_key
        .sign_checkpoint(
            "jitgate.test/plant-1",
            merkle.size(),
            &merkle.root(),
            t0() + secs(86_400),
        )
        .unwrap();
    let numbered: Vec<(u64, String)> = canonicals
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    let b_v1 = Bundle::build(
        "grant-000001",
        numbered,
        &merkle,
        cp_v1,
        policies(),
        &new_key,
        &keys,
    )
    .unwrap();
    c.case("canonical_v1_events", b_v1.to_json().as_bytes(), &[]);

    // A bundle of format 1 (an inclusion proof per event), as exported before.
    let mut f1 = b.clone();
    f1.format = BUNDLE_FORMAT_V1.into();
    f1.multiproof.clear();
    let size = f1.checkpoint.checkpoint.tree_size;
    for e in &mut f1.events {
        e.proof = small
            .merkle
            .inclusion_proof(e.seq - 1, size)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
    }
    f1.attest(&new_key);
    c.case("format_1", f1.to_json().as_bytes(), &[]);
    c.case(
        "format_1_changed_proof",
        &edit(&f1, |v| {
            let p = v["events"][1]["proof"][0]
                .as_str()
                .unwrap()
                .replacen('0', "1", 1);
            let p = if p == v["events"][1]["proof"][0].as_str().unwrap() {
                p.replacen('1', "2", 1)
            } else {
                p
            };
            v["events"][1]["proof"][0] = p.into();
        }),
        &[],
    );

    // The 10,000-operation grant in a log of 2,000 others.
    let large = interleaved_log(2_000, 2, 1_000, 10_000);
    let cp_large = large.checkpoint(
        &new_key,
        large.rows.len() as u64,
        large.last_time + secs(10),
    );
    c.case(
        "large",
        build(&large, cp_large, &new_key, &keys)
            .to_json()
            .as_bytes(),
        &[],
    );

    let expected = serde_json::to_string_pretty(&c.expected).unwrap();
    std::fs::write(Path::new(&dir).join("expected.json"), expected + "\n").unwrap();
    println!("wrote {} cases to {}", c.expected.len(), dir.display());
}
