//! Replaying what a master sent through the real gateway: the bytes of one conversation,
//! payload by payload as captured, over `jitgate connect`'s tunnel to the gateway runtime,
//! whose device is the simulated outstation behind a recording tap ([`Tap`]).
//!
//! One session per conversation. A session the gateway closes (a malformed request) is
//! followed by a new one that starts with the captured payload after the one holding the
//! request that closed it, as a master that reconnects would go on; so a capture full of
//! bad frames is replayed to its end. Each session's operation records are paired with
//! the request bytes they describe, for the comparison with tshark (`dnp3_records`).

use crate::dnp3_rig::{ended, Dnp3Rig};
use crate::dnp3_tap::Tap;
use jitgate_core::scope::ScopeItem;
use jitgate_gateway::connect;
use jitgate_gateway::dnp3::framing::request_len;
use jitgate_gateway::dnp3::sim::{self, SimOutstation};
use jitgate_gateway::wire::GatewayEvent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The simulated outstation, the tap in front of it and a gateway whose inventory binds
/// the link addresses `(outstation, master)`.
pub struct Env {
    pub outstation: u16,
    pub master: u16,
    pub sim: SimOutstation,
    pub tap: Tap,
    pub rig: Dnp3Rig,
    sessions: usize,
}

impl Env {
    pub async fn start(outstation: u16, master: u16) -> Env {
        let sim = sim::start("127.0.0.1:0".parse().unwrap(), outstation, master, 8)
            .await
            .unwrap();
        let tap = Tap::start(sim.local_addr()).await;
        let rig = Dnp3Rig::start_bound(tap.addr, outstation, master).await;
        Env {
            outstation,
            master,
            sim,
            tap,
            rig,
            sessions: 0,
        }
    }

    pub async fn stop(self) {
        self.rig.gw.stop().await;
        self.sim.shutdown().await;
    }
}

/// One request as the gateway logged it, with the bytes it describes.
pub struct Recorded {
    pub name: String,
    pub bytes: Vec<u8>,
    pub record: Value,
}

/// What replaying conversations through one or more [`Env`]s produced.
#[derive(Default)]
pub struct Outcome {
    pub sessions: usize,
    pub payloads: usize,
    pub requests: usize,
    pub allowed: usize,
    pub refused: usize,
    /// Why sessions ended, and how often.
    pub endings: BTreeMap<String, usize>,
    /// Every request that was decided (allowed or refused), for the tshark comparison.
    pub recorded: Vec<Recorded>,
    /// Each malformed request's code, and how often.
    pub malformed: BTreeMap<String, usize>,
    /// Each request that closed its session: where, its code and its first bytes.
    pub closures: Vec<String>,
    /// Problems with the evidence: a refusal without its reason, a session that ended
    /// without one, a malformed close without its record.
    pub evidence_faults: Vec<String>,
}

/// The master's requests and link frames among `grant`'s operation records (not the
/// outstation's unsolicited responses nor faults of the device).
pub fn master_records(events: &[GatewayEvent], grant: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.kind == "operation" && e.grant_id.as_deref() == Some(grant))
        .filter(|e| !matches!(e.data["direction"].as_str(), Some("outstation" | "device")))
        .map(|e| e.data.clone())
        .collect()
}

/// Where each complete request in `bytes` ends, as the gateway delimits them, and whether
/// the bytes after the last one break the framing (the gateway records that, then closes).
pub fn split_requests(bytes: &[u8]) -> (Vec<usize>, bool) {
    let mut ends = Vec::new();
    let mut pos = 0;
    loop {
        match request_len(&bytes[pos..]) {
            Ok(Some(n)) => {
                pos += n;
                ends.push(pos);
            }
            Ok(None) => return (ends, false),
            Err(_) => return (ends, true),
        }
    }
}

/// Poll the delivered events every few milliseconds until `done` holds; panics after 30 s
/// (the gateway then neither decided a request nor ended the session).
async fn wait_for(rig: &Dnp3Rig, what: &str, done: impl Fn(&[GatewayEvent]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rig.with_events(&done) {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Replay `payloads` (one conversation's master side) through `env` under `scope`; `label`
/// names the conversation in the results.
pub async fn replay(
    env: &mut Env,
    label: &str,
    payloads: &[Vec<u8>],
    scope: &[ScopeItem],
    out: &mut Outcome,
) {
    let mut next = 0;
    out.payloads += payloads.len();
    while next < payloads.len() {
        env.sessions += 1;
        out.sessions += 1;
        let grant = format!("replay-{}-{}", env.master, env.sessions);
        let target = env
            .rig
            .grant(&grant, scope.to_vec(), chrono::Duration::hours(1));
        let (tls, verdict) = connect::open_tunnel(&target).await.unwrap();
        assert!(verdict.ok, "{label}: session refused: {verdict:?}");
        let (mut rd, mut wr) = tokio::io::split(tls);
        // Whatever comes back is read (and dropped) so the gateway is never held up
        // writing to a master that does not read.
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let rest = &payloads[next..];
        let bytes: Vec<u8> = rest.concat();
        let (ends, fault) = split_requests(&bytes);
        let expected = ends.len() + usize::from(fault);
        for p in rest {
            // The gateway may close mid-way (a malformed request): later writes then fail.
            if wr.write_all(p).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        wait_for(&env.rig, "the requests to be decided", |ev| {
            master_records(ev, &grant).len() >= expected || !ended(ev, &grant).is_empty()
        })
        .await;
        let _ = wr.shutdown().await;
        wait_for(&env.rig, "the session to end", |ev| {
            !ended(ev, &grant).is_empty()
        })
        .await;
        let _ = drain.await;
        let (records, reason) = env
            .rig
            .with_events(|ev| (master_records(ev, &grant), ended(ev, &grant).remove(0)));
        *out.endings.entry(ending_kind(&reason)).or_default() += 1;
        let name = |i: usize| format!("{label} session {} request {i}", env.sessions);
        check_evidence(&records, &reason, &name(records.len()), out);
        for (i, record) in records.iter().enumerate() {
            out.requests += 1;
            let start = if i == 0 {
                0
            } else {
                ends.get(i - 1).copied().unwrap_or(0)
            };
            if let Some(code) = record["malformed"].as_str() {
                let head = &bytes[start.min(bytes.len())..];
                let head = &head[..head.len().min(48)];
                out.closures.push(format!(
                    "{}: {code} ({}) {head:02x?}",
                    name(i),
                    record["reason"]
                ));
                continue;
            }
            if record["allowed"] == true {
                out.allowed += 1;
            } else {
                out.refused += 1;
            }
            if let Some(&end) = ends.get(i) {
                out.recorded.push(Recorded {
                    name: name(i),
                    bytes: bytes[start..end].to_vec(),
                    record: record.clone(),
                });
            }
        }
        if reason == "client_closed" {
            return;
        }
        // Closed by the gateway at the last recorded request when that record says why
        // (malformed, or a failure of the device), else at the first undecided one (the
        // device closed, say): go on with the payload after the one it starts in.
        let said_why = records
            .last()
            .is_some_and(|r| r["malformed"].is_string() || r["failure"].is_string());
        let at = if said_why {
            records.len() - 1
        } else {
            records.len()
        };
        let start = match at {
            0 => 0,
            _ => ends.get(at - 1).or(ends.last()).copied().unwrap_or(0),
        };
        let mut offset = 0;
        let mut holding = 0;
        for (i, p) in rest.iter().enumerate() {
            if offset > start {
                break;
            }
            holding = i;
            offset += p.len();
        }
        next += holding + 1;
    }
}

/// `malformed_request`, `client_closed`, `device_timeout`: the reason without its detail.
fn ending_kind(reason: &str) -> String {
    reason.split(':').next().unwrap_or_default().to_string()
}

/// Every refusal carries its reason; a session closed for a malformed request has that
/// request's record, with its code and reason, last.
fn check_evidence(records: &[Value], reason: &str, at: &str, out: &mut Outcome) {
    if reason.is_empty() {
        out.evidence_faults
            .push(format!("{at}: session.ended without a reason"));
    }
    for r in records {
        if r["allowed"] != true && r["reason"].as_str().is_none_or(str::is_empty) {
            out.evidence_faults
                .push(format!("{at}: a refusal without its reason: {r}"));
        }
    }
    if reason.starts_with("malformed") {
        match records.last() {
            Some(r) if r["malformed"].is_string() => {
                let code = r["malformed"].as_str().unwrap_or_default().to_string();
                *out.malformed.entry(code).or_default() += 1;
            }
            other => out.evidence_faults.push(format!(
                "{at}: closed ({reason}) but the last record is not the malformed request: {other:?}"
            )),
        }
    }
}
