//! What reached the outstation, as tshark reads it: the tap's bytes, cut into link frames by
//! their length bytes alone (IEEE 1815: 10 header bytes, then the user data in blocks of
//! 16 with a CRC each), written one frame per packet so each application fragment is read
//! on its own, and dissected. Every frame must be well-formed DNP3 from the bound master
//! to the bound outstation, and the evidence must say exactly what arrived: as many
//! fragments as allowed requests, as many link frames as allowed link requests and
//! stand-ins for refused link-confirmed ones.
//!
//! Two notes of tshark 4.0 on well-formed frames are explained, not failures:
//! - every TEST_LINK_STATES frame (link function 2, no user data, as IEEE 1815 defines it;
//!   the gateway sends one in place of a refused link-confirmed request) is read as
//!   "Malformed Packet (Exception occurred)" although its header CRC is right;
//! - a request listing indexes of variation 0 (see `dnp3_records`) gets "Number of items
//!   is invalid for normally empty object" and follow-on notes. Accepted only where no
//!   scope is judged (the generated corpus); the captures' grant allows no such request.

use crate::dnp3_replay::{master_records, Env};
use crate::dnp3_tshark::{dissect_streams, Row, AGG};
use serde_json::Value;

const FIELDS: &[&str] = &[
    "dnp3.start",
    "dnp3.len",
    "dnp3.ctl.dir",
    "dnp3.ctl.prm",
    "dnp3.ctl.prifunc",
    "dnp3.ctl.secfunc",
    "dnp3.src",
    "dnp3.dst",
    "dnp3.al.func",
    "dnp3.al.obj",
    "dnp3.al.objq.prefix",
    "dnp3.al.objq.range",
    "dnp3.al.range.start",
    "dnp3.al.range.stop",
    "dnp3.al.range.quantity",
    "dnp3.al.index",
    "_ws.expert.message",
    "_ws.malformed",
];

/// One application fragment that reached the outstation, as tshark read it.
#[derive(Debug)]
pub struct Fragment {
    pub function: i64,
    /// (group, variation) of each object header.
    pub objects: Vec<(i64, i64)>,
    pub starts: Vec<i64>,
    pub stops: Vec<i64>,
    pub quantities: Vec<i64>,
    pub indexes: Vec<i64>,
}

/// Judges an application fragment against a grant: `Err` says why it is outside.
pub type Judge<'a> = &'a dyn Fn(&Fragment) -> Result<(), String>;

/// What the outstation received, checked; `Err` lists every problem.
pub struct Received {
    pub fragments: usize,
    pub link_frames: usize,
    /// Frames with a note of tshark's that the module notes explain.
    pub explained: usize,
}

/// Split one stream the device received into link frames.
fn link_frames(stream: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let rest = &stream[pos..];
        if !rest.starts_with(&[0x05, 0x64]) || rest.len() < 10 {
            return Err(format!(
                "bytes that are not a link frame at offset {pos}: {rest:02x?}"
            ));
        }
        let n = usize::from(rest[2])
            .checked_sub(5)
            .ok_or("a length below 5")?;
        let size = 10 + n + 2 * n.div_ceil(16);
        let frame = rest
            .get(..size)
            .ok_or(format!("a frame cut short at offset {pos}"))?;
        out.push(frame.to_vec());
        pos += size;
    }
    Ok(out)
}

/// Dissect what `env`'s outstation received and check it frame by frame; `in_scope`, when
/// given, judges each application fragment against the grant.
pub async fn check(env: &Env, in_scope: Option<Judge<'_>>) -> Result<Received, Vec<String>> {
    let streams = env.tap.streams_when_closed().await;
    let mut problems = Vec::new();
    let mut split = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        match link_frames(&s.concat()) {
            Ok(frames) => split.push(frames),
            Err(e) => problems.push(format!("device connection {i}: {e}")),
        }
    }
    let rows = dissect_streams(&split, FIELDS);
    let mut got = Received {
        fragments: 0,
        link_frames: 0,
        explained: 0,
    };
    for (n, values) in rows.iter().enumerate() {
        let row = Row {
            names: FIELDS,
            values,
        };
        let at = format!("frame {n} at the outstation");
        match frame(&row, env, in_scope) {
            Ok(explained) => got.explained += usize::from(explained),
            Err(e) => problems.push(format!("{at}: {e}: {values:?}")),
        }
        if row.get("dnp3.al.func").is_empty() {
            let user_data = matches!(row.nums("dnp3.ctl.prifunc")[..], [3 | 4])
                && flag(row.get("dnp3.ctl.prm"));
            if !user_data {
                got.link_frames += 1;
            }
        } else {
            got.fragments += 1;
        }
    }
    // The evidence says what reached the device: every allowed request, every stand-in.
    let records: Vec<Value> = env.rig.with_events(|ev| {
        let grants: std::collections::BTreeSet<&str> =
            ev.iter().filter_map(|e| e.grant_id.as_deref()).collect();
        grants
            .into_iter()
            .flat_map(|g| master_records(ev, g))
            .collect()
    });
    let allowed_app = records
        .iter()
        .filter(|r| r["allowed"] == true && r["function"].is_number())
        .count();
    let allowed_link = records
        .iter()
        .filter(|r| r["allowed"] == true && r["link"].is_string())
        .count();
    let stand_ins = records
        .iter()
        .filter(|r| {
            r["allowed"] == false && r["link_confirmed"] == true && r["malformed"].is_null()
        })
        .count();
    if got.fragments != allowed_app {
        problems.push(format!(
            "{} fragments reached the outstation; the evidence allowed {allowed_app} requests",
            got.fragments
        ));
    }
    if got.link_frames != allowed_link + stand_ins {
        problems.push(format!(
            "{} link frames reached the outstation; the evidence allowed {allowed_link} link requests and {stand_ins} refused link-confirmed ones",
            got.link_frames
        ));
    }
    if problems.is_empty() {
        Ok(got)
    } else {
        Err(problems)
    }
}

fn flag(s: &str) -> bool {
    matches!(s, "1" | "True" | "true")
}

const TSHARK_EMPTY_OBJECT: &str = "Number of items is invalid for normally empty object";

/// `Ok(true)`: well-formed, with a note of tshark's the module notes explain.
fn frame(row: &Row, env: &Env, in_scope: Option<Judge<'_>>) -> Result<bool, String> {
    if row.get("dnp3.start").is_empty() {
        return Err("tshark does not read a DNP3 frame".into());
    }
    if row.get("dnp3.start").contains(AGG) {
        return Err("more than one frame in one packet".into());
    }
    let expert = row.get("_ws.expert.message");
    let noted = !expert.is_empty() || !row.get("_ws.malformed").is_empty();
    let test_link_states = flag(row.get("dnp3.ctl.prm"))
        && row.nums("dnp3.ctl.prifunc") == [2]
        && row.nums("dnp3.len") == [5]
        && expert == "Malformed Packet (Exception occurred)";
    let empty_object = in_scope.is_none() && expert.starts_with(TSHARK_EMPTY_OBJECT);
    if noted && !test_link_states && !empty_object {
        return Err(format!("tshark notes: {expert}"));
    }
    if !flag(row.get("dnp3.ctl.dir")) {
        return Err("not in the master's direction".into());
    }
    let (src, dst) = (row.nums("dnp3.src"), row.nums("dnp3.dst"));
    if src != [i64::from(env.master)] || dst != [i64::from(env.outstation)] {
        return Err(format!("link addresses {src:?} -> {dst:?}"));
    }
    let prm = flag(row.get("dnp3.ctl.prm"));
    let function = if prm {
        row.nums("dnp3.ctl.prifunc")
    } else {
        row.nums("dnp3.ctl.secfunc")
    };
    // What a master sends: RESET/TEST_LINK_STATES, user data, REQUEST_LINK_STATUS; and its
    // answers ACK, NACK, LINK_STATUS, NOT_SUPPORTED.
    let ok = match (prm, &function[..]) {
        (true, [f]) => matches!(*f, 0 | 2 | 3 | 4 | 9),
        (false, [f]) => matches!(*f, 0 | 1 | 11 | 15),
        _ => false,
    };
    if !ok {
        return Err(format!("link function {function:?} (PRM {prm})"));
    }
    let functions = row.nums("dnp3.al.func");
    match (&functions[..], in_scope) {
        ([], _) | (_, None) => Ok(noted),
        ([f], Some(judge)) => {
            let objs = row.nums("dnp3.al.obj");
            judge(&Fragment {
                function: *f,
                objects: objs.iter().map(|o| (o >> 8, o & 0xFF)).collect(),
                starts: row.nums("dnp3.al.range.start"),
                stops: row.nums("dnp3.al.range.stop"),
                quantities: row.nums("dnp3.al.range.quantity"),
                indexes: row.nums("dnp3.al.index"),
            })
            .map(|()| noted)
        }
        (many, _) => Err(format!("{} application functions in one frame", many.len())),
    }
}
