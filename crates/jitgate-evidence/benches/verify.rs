//! Evidence verification rate and bundle cost.
//!
//! `cargo bench -p jitgate-evidence --bench verify`
//!
//! Builds a log of 200,000 realistic events (grants interleaved as concurrent work produces
//! them; one grant with 10,000 Modbus operations), then times, in the same run:
//! - the floor: one plain SHA-256 over each event's canonical bytes;
//! - the store's hash chain alone, the Merkle root alone;
//! - `verify_log`: chain + Merkle tree + 20 signed checkpoints (what `jitgate evidence verify`
//!   does after reading the rows);
//! - the 10,000-operation grant's bundle: build time, size, and offline `verify_bundle` time.
//!
//! Each figure is the median of several rounds; ratios to the floor are what to compare
//! across machines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/fixtures.rs"]
mod fixtures;

use fixtures::*;
use jitgate_evidence::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const EVENTS: usize = 200_000;
const TARGET_OPS: usize = 10_000;
const ROUNDS: usize = 7;

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    // One warm-up round, so caches and the allocator are in their steady state.
    black_box(f());
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64())
}

fn main() {
    // Other grants: 9 lifecycle/session events + 20 operations each, until the log holds
    // 200,000 events with the big grant.
    let ops_each = 20;
    let others = (EVENTS - (TARGET_OPS + 9)) / (ops_each + 9);
    let t = Instant::now();
    let mut log = interleaved_log(others, ops_each, others / 2, TARGET_OPS);
    // Top up with small grants' first events so the log is exactly EVENTS long.
    let mut extra = 0;
    while log.rows.len() < EVENTS {
        let e = &grant_events(1_000_000 + extra, t0(), 0)[0];
        extra += 1;
        let c = canonical(e);
        let prev = log.rows.last().unwrap().hash.clone();
        log.merkle.push(c.as_bytes());
        log.rows.push(StoredLeaf {
            seq: log.rows.len() as i64 + 1,
            hash: chain_hash(&prev, &c),
            prev_hash: prev,
            canonical: c,
        });
    }
    let n = log.rows.len();
    let bytes: usize = log.rows.iter().map(|r| r.canonical.len()).sum();
    eprintln!(
        "generated {n} events ({bytes} canonical bytes) in {:?}",
        t.elapsed()
    );

    let key = EvidenceKey::generate().unwrap();
    let stamp = log.last_time + secs(60);
    let checkpoints: Vec<SignedCheckpoint> = (1..=20)
        .map(|i| log.checkpoint(&key, (n * i / 20) as u64, stamp + secs(i as i64)))
        .collect();
    let keys = [key.public()];

    // The floor: one SHA-256 per event over the same bytes.
    let floor = time(ROUNDS, || {
        let mut acc = 0u8;
        for r in &log.rows {
            acc ^= Sha256::digest(r.canonical.as_bytes())[0];
        }
        acc
    });
    // The store's chain rule alone.
    let chain_only = time(ROUNDS, || {
        let mut prev = [0u8; 32];
        let mut ok = true;
        for r in &log.rows {
            let mut h = Sha256::new();
            h.update(prev);
            h.update(r.canonical.as_bytes());
            prev = h.finalize().into();
            ok &= hex::encode(prev) == r.hash;
        }
        ok
    });
    // The Merkle root alone (streaming).
    let merkle_only = time(ROUNDS, || {
        let mut b = RootBuilder::new();
        for r in &log.rows {
            b.push(r.canonical.as_bytes());
        }
        b.root()
    });
    // The full check.
    let report = verify_log(log.rows.iter().cloned(), &checkpoints, &keys);
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.checkpoints_verified.len(), 20);
    let full = time(ROUNDS, || verify_log(log.rows.iter(), &checkpoints, &keys));
    // The same on owned rows, as a caller that reads and drops pages hands them over.
    let full_owned = time(ROUNDS, || {
        verify_log(log.rows.iter().cloned(), &checkpoints, &keys)
    });
    // The server's proof source: an in-memory tree of the whole log.
    let tree_build = time(3, || {
        MerkleLog::from_leaves(log.rows.iter().map(|r| r.canonical.as_bytes()))
    });

    // The big grant's bundle.
    let policies = BTreeMap::from([(
        "engineer-maintenance".to_string(),
        "@id(\"engineer-maintenance\")\npermit (principal in Group::\"engineers\", action, resource);\n".to_string(),
    )]);
    let cp = checkpoints.last().unwrap().clone();
    let events = log.target_events();
    let target_events = events.len();
    let build = |events: Vec<(u64, String)>| {
        Bundle::build(
            &log.grant_id,
            events,
            &log.merkle,
            cp.clone(),
            policies.clone(),
            &key,
            &keys,
        )
        .unwrap()
    };
    let bundle_build = time(3, || build(events.clone()));
    let bundle = build(events);
    let json = bundle.to_json();
    let proof_hashes = bundle.multiproof.len();
    let verify_time = time(5, || verify_bundle(json.as_bytes(), &keys).unwrap());
    // The same bundle in format 1 (an inclusion proof per event, hex): the baseline.
    let v1 = {
        let mut b = bundle.clone();
        b.format = bundle::BUNDLE_FORMAT_V1.into();
        b.multiproof.clear();
        let size = b.checkpoint.checkpoint.tree_size;
        for e in &mut b.events {
            e.proof = log
                .merkle
                .inclusion_proof(e.seq - 1, size)
                .unwrap()
                .iter()
                .map(hex::encode)
                .collect();
        }
        b.attest(&key);
        b
    };
    let v1_json = v1.to_json();
    let v1_proof_hashes: usize = v1.events.iter().map(|e| e.proof.len()).sum();
    let v1_verify_time = time(5, || verify_bundle(v1_json.as_bytes(), &keys).unwrap());
    // A witness cosigning the last checkpoint after the one before it (consistency proof).
    let witness_key = EvidenceKey::generate().unwrap();
    let log_vkeys: Vec<Vkey> = keys
        .iter()
        .map(|k| Vkey::for_log(&cp.checkpoint.log_id, k).unwrap())
        .collect();
    let note_of = |c: &SignedCheckpoint| {
        let k = keys
            .iter()
            .find(|k| k.key_id == c.checkpoint.key_id)
            .unwrap();
        c.to_signed_note(k).unwrap()
    };
    let before = &checkpoints[checkpoints.len() - 2];
    let (state, _) = witness::add_checkpoint(
        None,
        &AddCheckpoint {
            old_size: 0,
            proof: Vec::new(),
            note: note_of(before),
        },
        &log_vkeys,
        "bench.example/w",
        &witness_key,
        1,
    )
    .unwrap();
    let request = AddCheckpoint {
        old_size: before.checkpoint.tree_size,
        proof: log
            .merkle
            .consistency_proof(before.checkpoint.tree_size, cp.checkpoint.tree_size)
            .unwrap(),
        note: note_of(&cp),
    };
    let cosign_time = time(50, || {
        witness::add_checkpoint(
            Some(&state),
            &request,
            &log_vkeys,
            "bench.example/w",
            &witness_key,
            2,
        )
        .unwrap()
    });
    let verified = verify_bundle(json.as_bytes(), &keys).unwrap();
    let report_time = time(3, || report_html(&verified));
    let html = report_html(&verified);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpus} CPUs; load average at the end of the run: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "events: {n}, canonical bytes: {bytes} (mean {} B/event)",
        bytes / n
    );
    println!();
    println!("| check over {n} events | median | events/s | × floor |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, d: Duration| {
        println!(
            "| {name} | {:.1} ms | {} | {:.2} |",
            d.as_secs_f64() * 1e3,
            rate(n, d),
            d.as_secs_f64() / floor.as_secs_f64()
        );
    };
    row("floor: one SHA-256 per event (baseline)", floor);
    row("hash chain only (store rule)", chain_only);
    row("Merkle root only (streaming)", merkle_only);
    row("`verify_log`: chain + Merkle + 20 checkpoints", full);
    row("`verify_log`, rows cloned on the way in", full_owned);
    row("`MerkleLog::from_leaves` (server proof source)", tree_build);
    println!();
    println!("| bundle of grant with {TARGET_OPS} operations ({target_events} events) in a log of {n} | value |");
    println!("|---|---:|");
    println!(
        "| bundle JSON size | {:.2} MiB ({} bytes, {:.0} B/event) |",
        json.len() as f64 / 1048576.0,
        json.len(),
        json.len() as f64 / target_events as f64
    );
    println!(
        "| multi-proof hashes | {proof_hashes} ({:.3} per event) |",
        proof_hashes as f64 / target_events as f64
    );
    println!(
        "| format 1 (baseline): bundle JSON size | {:.2} MiB ({} bytes, {:.0} B/event) |",
        v1_json.len() as f64 / 1048576.0,
        v1_json.len(),
        v1_json.len() as f64 / target_events as f64
    );
    println!(
        "| format 1 (baseline): inclusion proof hashes | {v1_proof_hashes} ({:.1} per event) |",
        v1_proof_hashes as f64 / target_events as f64
    );
    println!(
        "| format 1 (baseline): offline `verify_bundle` | {:.1} ms ({} events/s) |",
        v1_verify_time.as_secs_f64() * 1e3,
        rate(target_events, v1_verify_time)
    );
    println!(
        "| witness: check and cosign one checkpoint (signature, consistency proof of {} hashes, cosignature) | {:.1} µs |",
        request.proof.len(),
        cosign_time.as_secs_f64() * 1e6
    );
    println!(
        "| build (proofs from the in-memory tree + sign) | {:.1} ms |",
        bundle_build.as_secs_f64() * 1e3
    );
    println!("| offline `verify_bundle` (parse, proofs, events, chain, 2 signatures) | {:.1} ms ({} events/s) |", verify_time.as_secs_f64() * 1e3, rate(target_events, verify_time));
    println!(
        "| `report_html` | {:.1} ms, {:.2} MiB |",
        report_time.as_secs_f64() * 1e3,
        html.len() as f64 / 1048576.0
    );
}
