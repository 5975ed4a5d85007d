//! Public DNP3 captures (IDS test corpora, `tests/corpus/dnp3/README.md`) replayed through
//! the real gateway, and a generated corpus of requests: nothing malformed or out of scope
//! reaches the outstation (judged by tshark from the bytes it received), every closed
//! session and refusal is in the evidence with its reason, the gateway keeps serving, and
//! the operation records agree with tshark's dissection of the requests they describe.
//!
//! An auditor replays captures of their own with
//! `JITGATE_DNP3_CORPUS_DIR=/path/to/pcaps cargo test -p jitgate-gateway --test it dnp3_corpus_replay`.

use crate::dnp3_generated;
use crate::dnp3_outstation_view::{self, Fragment};
use crate::dnp3_records::{compare, Agreement};
use crate::dnp3_replay::{replay, Env, Outcome};
use crate::dnp3_rig::rule;
use crate::dnp3_tshark::{corpus_files, have_tshark, read_capture};
use jitgate_core::scope::Dnp3Op::{Operate, Read, TimeSync};
use jitgate_core::scope::Dnp3Target::{BinaryOutput, Class, Device};
use jitgate_core::scope::ScopeItem;
use jitgate_dnp3::link::{encode_frame, parse_frame, Control, LinkHeader};
use jitgate_dnp3::parse::{parse_response, Limits};
use jitgate_dnp3::transport::segment;
use jitgate_gateway::connect;
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The grant the captures are replayed under: some of their traffic is in it (class polls,
/// the CROB on index 1 of the select/operate captures, time synchronisation), the rest is not
/// (file transfer, unsolicited reporting, reads of outputs, other indexes).
fn capture_scope() -> Vec<ScopeItem> {
    vec![
        rule(Read, Class, 0, 3),
        rule(Operate, BinaryOutput, 0, 1),
        rule(TimeSync, Device, 0, 0),
    ]
}

/// [`capture_scope`] judged from tshark's reading of a fragment, by the rules of the scope
/// words (docs/dnp3.md, "Decision rules"), written here without the gateway's code.
fn in_capture_scope(f: &Fragment) -> Result<(), String> {
    let only = |allowed: &dyn Fn(i64, i64) -> bool| {
        f.objects
            .iter()
            .all(|&(g, v)| allowed(g, v))
            .then_some(())
            .ok_or_else(|| format!("function {} with objects {:?}", f.function, f.objects))
    };
    match f.function {
        // CONFIRM; DELAY_MEASURE and RECORD_CURRENT_TIME (time-sync): no objects.
        0 | 23 | 24 => only(&|_, _| false),
        // READ of class data 0-3; of the IIN (any DNP3 grant); of the time (time-sync).
        1 => only(&|g, v| (g == 60 && (1..=4).contains(&v)) || g == 80 || (50..=52).contains(&g)),
        2 => {
            // Clearing the restart indication (any DNP3 grant), or one time object.
            let restart = f.objects == [(80, 1)] && f.starts == [7] && f.stops == [7];
            let time = matches!(f.objects[..], [(50, 1 | 3)]) && f.quantities == [1];
            (restart || time)
                .then_some(())
                .ok_or_else(|| format!("WRITE of {:?}", f.objects))
        }
        // SELECT, OPERATE, DIRECT_OPERATE(_NR) of CROBs on binary outputs 0-1.
        3..=6 => {
            only(&|g, v| g == 12 && v == 1)?;
            let points: Vec<i64> = f
                .indexes
                .iter()
                .chain(&f.starts)
                .chain(&f.stops)
                .copied()
                .collect();
            let stated = !f.indexes.is_empty() || !f.starts.is_empty();
            (stated && points.iter().all(|i| (0..=1).contains(i)))
                .then_some(())
                .ok_or_else(|| format!("control of points {points:?}"))
        }
        other => Err(format!("function {other}")),
    }
}

/// The gateway still serves after everything replayed: a class 0 poll in a new session is
/// answered by the outstation with its points, no error bit set.
async fn still_serves(env: &Env, scope: &[ScopeItem]) {
    let target = env
        .rig
        .grant("after-replay", scope.to_vec(), chrono::Duration::hours(1));
    let (mut s, verdict) = connect::open_tunnel(&target).await.unwrap();
    assert!(verdict.ok, "{verdict:?}");
    let header = LinkHeader {
        control: Control::from_byte(0xC4),
        destination: env.outstation,
        source: env.master,
    };
    let mut bytes = Vec::new();
    for seg in segment(&[0xC3, 0x01, 60, 1, 0x06], 0).0 {
        encode_frame(&header, &seg, &mut bytes).unwrap();
    }
    s.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    let frame = loop {
        if let Ok(Some((f, _))) = parse_frame(&buf) {
            break f;
        }
        let mut chunk = [0u8; 512];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the session ended without an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let r = parse_response(&frame.user_data()[1..], &Limits::default()).unwrap();
    assert_eq!((r.control.seq, r.iin.iin2), (3, 0), "{r:?}");
    assert!(!r.headers.is_empty(), "class 0 answered without points");
    connect::close(&mut s).await;
}

fn summary(what: &str, out: &Outcome, agreement: &Agreement) -> String {
    format!(
        "{what}: {} payloads in {} sessions, {} requests decided ({} allowed, {} refused), \
         sessions ended {:?}, malformed {:?}; records vs tshark: {} compared, {} agreed, {} explained",
        out.payloads,
        out.sessions,
        out.allowed + out.refused,
        out.allowed,
        out.refused,
        out.endings,
        out.malformed,
        agreement.compared,
        agreement.agreed,
        agreement.explained.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_dnp3_captures_replayed_through_the_gateway() {
    if !have_tshark() {
        return;
    }
    let (dir, files) = corpus_files();
    assert!(!files.is_empty(), "no captures under {}", dir.display());
    let scope = capture_scope();
    // One gateway (and outstation) per pair of link addresses the captures use.
    let mut envs: BTreeMap<(u16, u16), Env> = BTreeMap::new();
    let mut out = Outcome::default();
    let mut lines = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(&dir)
            .unwrap_or(file)
            .display()
            .to_string();
        let streams = read_capture(file);
        if streams.is_empty() {
            lines.push(format!("{name}: no master payloads"));
            continue;
        }
        let before = (
            out.sessions,
            out.allowed,
            out.refused,
            out.malformed.values().sum::<usize>(),
        );
        for stream in &streams {
            let key = (stream.outstation, stream.master);
            let env = match envs.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Env::start(stream.outstation, stream.master).await)
                }
            };
            let payloads: Vec<Vec<u8>> = stream.payloads.iter().map(|(_, p)| p.clone()).collect();
            replay(
                env,
                &format!("{name} {}", stream.name),
                &payloads,
                &scope,
                &mut out,
            )
            .await;
        }
        lines.push(format!(
            "{name}: {} streams, {} sessions, {} allowed, {} refused, {} closed malformed",
            streams.len(),
            out.sessions - before.0,
            out.allowed - before.1,
            out.refused - before.2,
            out.malformed.values().sum::<usize>() - before.3,
        ));
    }
    let mut problems = Vec::new();
    let mut reached = (0, 0);
    for env in envs.values() {
        still_serves(env, &scope).await;
        match dnp3_outstation_view::check(env, Some(&in_capture_scope)).await {
            Ok(r) => {
                reached.0 += r.fragments;
                reached.1 += r.link_frames;
            }
            Err(p) => problems.extend(p),
        }
    }
    let agreement = compare(&out.recorded);
    println!("{}", lines.join("\n"));
    println!(
        "{}",
        summary(&format!("{} captures", files.len()), &out, &agreement)
    );
    println!(
        "at the outstations (tshark): {} fragments and {} link frames; {} problems",
        reached.0,
        reached.1,
        problems.len()
    );
    for e in &agreement.explained {
        println!("explained: {e}");
    }
    for c in &out.closures {
        println!("closed: {c}");
    }
    for env in std::mem::take(&mut envs).into_values() {
        env.stop().await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        out.evidence_faults.is_empty(),
        "{}",
        out.evidence_faults.join("\n")
    );
    assert!(
        agreement.failures.is_empty(),
        "{}",
        agreement.failures.join("\n")
    );
    // The vendored corpus must show each outcome; an auditor's may not.
    if std::env::var_os("JITGATE_DNP3_CORPUS_DIR").is_none() {
        assert!(
            out.allowed > 20 && out.refused > 5,
            "{out:?}",
            out = (out.allowed, out.refused)
        );
        assert!(
            out.malformed.values().sum::<usize>() >= 1,
            "{:?}",
            out.malformed
        );
        assert!(reached.0 > 20, "{reached:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_records_agree_with_tshark_on_a_generated_corpus() {
    if !have_tshark() {
        return;
    }
    let mut env = Env::start(10, 1).await;
    let corpus = dnp3_generated::corpus();
    let mut out = Outcome::default();
    replay(
        &mut env,
        "generated",
        &corpus,
        &dnp3_generated::scope(),
        &mut out,
    )
    .await;
    let reached = dnp3_outstation_view::check(&env, None).await;
    env.stop().await;
    let agreement = compare(&out.recorded);
    println!("{}", summary("generated corpus", &out, &agreement));
    for e in &agreement.explained {
        println!("explained: {e}");
    }
    assert!(
        out.evidence_faults.is_empty(),
        "{}",
        out.evidence_faults.join("\n")
    );
    println!("{}", out.closures.join("\n"));
    println!("{}", agreement.failures.join("\n"));
    // Every generated request is well-formed: one session decided them all.
    assert_eq!(
        (out.sessions, out.malformed.len()),
        (1, 0),
        "{:?} {:?}",
        out.endings,
        out.malformed
    );
    assert_eq!(out.recorded.len(), corpus.len());
    let reached = reached.unwrap_or_else(|p| panic!("{}", p.join("\n")));
    assert!(
        agreement.failures.is_empty(),
        "{}",
        agreement.failures.join("\n")
    );
    // The corpus covers what it claims to.
    let records: Vec<&serde_json::Value> = out.recorded.iter().map(|r| &r.record).collect();
    let distinct = |f: &dyn Fn(&serde_json::Value) -> Vec<String>| {
        records
            .iter()
            .flat_map(|r| f(r))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let functions = distinct(&|r| vec![r["function"].to_string()]);
    let objects = distinct(&|r| objs(r, |o| format!("{}/{}", o["group"], o["variation"])));
    let qualifiers = distinct(&|r| objs(r, |o| o["qualifier"].to_string()));
    let commands: usize = records
        .iter()
        .filter_map(|r| r["objects"].as_array())
        .flatten()
        .map(|o| o["commands"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "covered: {functions} function codes, {objects} group/variations, {qualifiers} qualifiers; \
         {} fragments and {} link frames reached the outstation",
        reached.fragments, reached.link_frames
    );
    assert!(functions >= 30 && objects >= 40 && qualifiers >= 8 && commands >= 50);
    assert!(
        out.allowed >= 100 && out.refused >= 50,
        "{} {}",
        out.allowed,
        out.refused
    );
}

fn objs(r: &serde_json::Value, f: impl Fn(&serde_json::Value) -> String) -> Vec<String> {
    r["objects"]
        .as_array()
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}
