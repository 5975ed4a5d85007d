//! Wireshark's DNP3 dissector as an independent oracle: a corpus of frames (hand-built,
//! generated, corrupted) is written as a pcap of DNP3 over TCP port 20000, and jitgate's
//! parse must agree with `tshark`'s on which frames are corrupted and, for every fragment
//! both accept, on the function code, each object's group/variation, qualifier codes,
//! ranges, counts and indexes.
//!
//! Skips (loudly) when tshark is missing, and fails instead under `JITGATE_REQUIRE_PEERS=1`.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test: a failed step is a failed test"
)]

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/pcap.rs"]
mod pcap;

use corpus::{Case, Rng};
use jitgate_dnp3::header::{iin1, iin2};
use jitgate_dnp3::link::{parse_frame, Control, LinkHeader};
use jitgate_dnp3::{parse_request, parse_response, Indexes, Limits, ObjectHeader, Reassembler};
use jitgate_dnp3::{refusal_frame, Iin};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn peers_required() -> bool {
    std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What one side says about one TCP payload.
#[derive(Debug, Default, PartialEq, Eq)]
struct View {
    /// Every link frame's header and block CRCs are right.
    link_ok: bool,
    /// A complete fragment was parsed: function and flattened per-header fields.
    function: Option<u8>,
    objects: Vec<u16>,
    prefixes: Vec<u8>,
    ranges: Vec<u8>,
    starts: Vec<u32>,
    stops: Vec<u32>,
    quantities: Vec<u32>,
    indexes: Vec<u32>,
}

/// My parse of one payload: the view, why it was refused (if it was), and the position of
/// the first header that reads variation 0 by an index list (see `TSHARK_EMPTY_OBJECT`).
fn mine(payload: &[u8]) -> (View, Option<String>, Option<usize>) {
    let mut view = View::default();
    let mut rest = payload;
    let mut reassembler = Reassembler::default();
    let mut fragment = None;
    while !rest.is_empty() {
        let Ok(Some((frame, used))) = parse_frame(rest) else {
            return (view, Some("link".into()), None);
        };
        rest = &rest[used..];
        match reassembler.push(frame.user_data()) {
            Ok(Some(f)) => fragment = Some(f),
            Ok(None) => {}
            Err(e) => return (view, Some(e.code().into()), None),
        }
    }
    view.link_ok = true;
    let Some(fragment) = fragment else {
        return (view, Some("no fragment".into()), None);
    };
    let limits = Limits::default();
    let headers = if fragment.get(1).is_some_and(|&f| f >= 0x81) {
        parse_response(&fragment, &limits).map(|r| r.headers)
    } else {
        parse_request(&fragment, &limits).map(|r| r.headers)
    };
    let headers = match headers {
        Ok(h) => h,
        Err(e) => return (view, Some(e.code().into()), None),
    };
    view.function = fragment.get(1).copied();
    for h in &headers {
        flatten(h, &mut view);
    }
    let v0_list = headers
        .iter()
        .position(|h| h.variation == 0 && matches!(h.indexes, Indexes::List(_)));
    (view, None, v0_list)
}

fn flatten(h: &ObjectHeader, view: &mut View) {
    view.objects
        .push(u16::from(h.group) << 8 | u16::from(h.variation));
    view.prefixes.push(h.qualifier >> 4);
    view.ranges.push(h.qualifier & 0x0F);
    match &h.indexes {
        Indexes::All => {}
        Indexes::Range { start, stop } => {
            view.starts.push(*start);
            view.stops.push(*stop);
        }
        Indexes::Count(n) => view.quantities.push(*n),
        Indexes::List(list) => {
            view.quantities.push(list.len() as u32);
            view.indexes.extend(list);
        }
    }
}

/// tshark's expert note on a READ that lists indexes of variation 0 of some groups (1, 2,
/// 20, 22, 30, 32...): it reads one index, flags "potentially malicious" and goes on with
/// the next bytes as a new header. IEEE 1815 allows such a read (specific points, default
/// variation); jitgate parses the whole list. Those packets are compared only up to that
/// header.
const TSHARK_EMPTY_OBJECT: &str = "Number of items is invalid for normally empty object";

const FIELDS: &[&str] = &[
    "frame.number",
    "dnp3.start",
    "_ws.expert.message",
    "_ws.malformed",
    "dnp3.al.func",
    "dnp3.al.obj",
    "dnp3.al.objq.prefix",
    "dnp3.al.objq.range",
    "dnp3.al.range.start",
    "dnp3.al.range.stop",
    "dnp3.al.range.quantity",
    "dnp3.al.index",
];

fn numbers(field: &str) -> Vec<u32> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
            None => s.parse().unwrap(),
        })
        .collect()
}

fn theirs(line: &str) -> View {
    let f: Vec<&str> = line.split('\t').collect();
    let field = |name: &str| f[FIELDS.iter().position(|n| *n == name).unwrap()];
    let is_dnp3 = !field("dnp3.start").is_empty();
    let crc_bad = field("_ws.expert.message").contains("Checksum incorrect");
    let n = |name| numbers(field(name));
    View {
        link_ok: is_dnp3 && !crc_bad,
        function: n("dnp3.al.func").first().map(|&x| x as u8),
        objects: n("dnp3.al.obj").iter().map(|&x| x as u16).collect(),
        prefixes: n("dnp3.al.objq.prefix").iter().map(|&x| x as u8).collect(),
        ranges: n("dnp3.al.objq.range").iter().map(|&x| x as u8).collect(),
        starts: n("dnp3.al.range.start"),
        stops: n("dnp3.al.range.stop"),
        quantities: n("dnp3.al.range.quantity"),
        indexes: n("dnp3.al.index"),
    }
}

fn run_tshark(cases: &[Case]) -> Vec<String> {
    tshark_fields(cases, FIELDS)
}

fn tshark_fields(cases: &[Case], fields: &[&str]) -> Vec<String> {
    // One directory per call: the tests of this binary run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("jitgate-dnp3-oracle-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("corpus.pcap");
    let payloads: Vec<Vec<u8>> = cases.iter().map(|c| c.payload.clone()).collect();
    std::fs::write(&file, pcap::write(&payloads)).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(&file).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// False (after saying so) when the test must skip; panics when tshark is required.
fn tshark_or_skip() -> bool {
    if have_tshark() {
        return true;
    }
    if peers_required() {
        panic!("tshark is required (JITGATE_REQUIRE_PEERS=1) but missing");
    }
    eprintln!("\n!!!!!!!!!!\n!!! SKIPPED: tshark is not available; set JITGATE_REQUIRE_PEERS=1 to make this a failure\n!!!!!!!!!!\n");
    false
}

/// The gateway's answers to refused requests, read back by tshark: a response from the
/// outstation's address to the master's, with exactly the IIN bits the refusal sets.
#[test]
fn tshark_reads_refusals_as_null_responses() {
    if !tshark_or_skip() {
        return;
    }
    let request = LinkHeader {
        control: Control::from_byte(0xC4),
        destination: 12,
        source: 1,
    };
    // (IIN1, IIN2, expected IIN2.0 fcni, IIN2.1 obju, IIN2.2 pioor, IIN1.7 rst)
    let answers = [
        (0x00, iin2::NO_FUNC_CODE_SUPPORT, "1", "0", "0", "0"),
        (0x00, iin2::OBJECT_UNKNOWN, "0", "1", "0", "0"),
        (0x00, iin2::PARAMETER_ERROR, "0", "0", "1", "0"),
        (
            iin1::DEVICE_RESTART,
            iin2::PARAMETER_ERROR,
            "0",
            "0",
            "1",
            "1",
        ),
    ];
    let cases: Vec<Case> = answers
        .iter()
        .enumerate()
        .map(|(i, &(a, b, ..))| Case {
            name: format!("refusal {i}"),
            payload: refusal_frame(&request, 5, i as u8, Iin { iin1: a, iin2: b }),
        })
        .collect();
    let fields = [
        "dnp3.src",
        "dnp3.dst",
        "dnp3.ctl.dir",
        "dnp3.al.func",
        "dnp3.al.seq",
        "dnp3.al.iin.fcni",
        "dnp3.al.iin.obju",
        "dnp3.al.iin.pioor",
        "dnp3.al.iin.rst",
        "_ws.expert.message",
    ];
    let lines = tshark_fields(&cases, &fields);
    assert_eq!(lines.len(), answers.len());
    for (i, (line, &(_, _, fcni, obju, pioor, rst))) in lines.iter().zip(&answers).enumerate() {
        let seq = i.to_string();
        // tshark notes every response with an error IIN bit as an "IIN Abnormality".
        let expected = [
            "12",
            "1",
            "0",
            "129",
            &seq,
            fcni,
            obju,
            pioor,
            rst,
            "IIN Abnormality",
        ];
        let got: Vec<&str> = line.split('\t').collect();
        assert_eq!(got, expected, "refusal {i}");
    }
    println!(
        "tshark read {} refusal frames as null responses with the expected IIN bits",
        lines.len()
    );
}

#[test]
fn tshark_agrees_with_the_parser() {
    if !tshark_or_skip() {
        return;
    }
    let cases = corpus::all(&mut Rng(0x5EED_0D1A_3000_0001));
    let lines = run_tshark(&cases);
    assert_eq!(lines.len(), cases.len(), "one line per packet");
    let (mut link_agree, mut app_compared, mut app_agree, mut corrupted) = (0, 0, 0, 0);
    let (mut tshark_declined, mut app_malformed_agree) = (0, 0);
    let mut failures = Vec::new();
    for (case, line) in cases.iter().zip(&lines) {
        let (m, my_error, v0_list) = mine(&case.payload);
        let t = theirs(line);
        if !m.link_ok {
            corrupted += 1;
        }
        if m.link_ok == t.link_ok {
            link_agree += 1;
        } else {
            failures.push(format!(
                "{}: link ok mine={} tshark={}\n  bytes {}",
                case.name,
                m.link_ok,
                t.link_ok,
                hex(&case.payload)
            ));
            continue;
        }
        if let Some(e) = &my_error {
            if !m.link_ok || e == "no fragment" {
                continue;
            }
            // Refused above the link layer: tshark must see the same problem.
            let expected = match e.as_str() {
                "unknown_function" => None,
                "unknown_object" => Some("Unknown Object"),
                _ => Some("_ws.malformed"),
            };
            match expected {
                Some(what) if !line.contains(what) => failures.push(format!(
                    "{}: we refuse it ({e}), tshark does not say {what:?}: {line}",
                    case.name
                )),
                Some(_) => app_malformed_agree += 1,
                None => {}
            }
            continue;
        }
        if t.function.is_none() {
            continue;
        }
        if line.contains(TSHARK_EMPTY_OBJECT) {
            // tshark stopped where the standard goes on; up to that header we must agree.
            let upto = v0_list.map(|p| p + 1);
            match upto {
                Some(n) if m.objects.get(..n) == t.objects.get(..n) => tshark_declined += 1,
                _ => failures.push(format!(
                    "{}: tshark calls an object normally empty where we see none\n  mine   {m:?}\n  tshark {t:?}",
                    case.name
                )),
            }
            continue;
        }
        app_compared += 1;
        if m == t {
            app_agree += 1;
        } else {
            failures.push(format!(
                "{}:\n  mine   {m:?}\n  tshark {t:?}\n  bytes  {}",
                case.name,
                hex(&case.payload)
            ));
        }
    }
    println!(
        "tshark oracle: {} packets, link-layer verdict agreed on {link_agree} ({corrupted} corrupted by us); \
         {app_malformed_agree} malformed or unknown-object fragments flagged by both; \
         {app_compared} fragments compared field by field, {app_agree} agreed; \
         {tshark_declined} reads of variation 0 by index list left aside (tshark's empty-object rule)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        corrupted > 20 && app_compared > 300 && app_malformed_agree >= 7,
        "the corpus must exercise every path"
    );
}
