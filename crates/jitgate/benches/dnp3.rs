//! DNP3 round trips, in one run on loopback, through three paths to the same simulated
//! outstation (`jitgate_gateway::dnp3::sim`, 16 points of each type, in this process):
//!   (1) direct;
//!   (2) through a generic TLS tunnel of two socat relays — what a TCP-tunnelling bastion gives;
//!   (3) through `jitgate connect --protocol dnp3` + `jitgate gateway` (server on TLS, gateway
//!       mTLS, as a plant deploys it), which checks every frame's link addresses, reassembles
//!       and decides every fragment against the grant, and records every operation at the
//!       running server.
//! Two workloads, each at 1 and 32 concurrent masters: a class 0 poll (READ g60v1, the
//! static data of every point; the integrity poll's static part) and a SELECT + OPERATE
//! pair of one CROB (a latch of binary output `master % 16`, on then off). Every path is
//! driven by the same master, written here on `jitgate-dnp3`'s encoder and parser, and each
//! answer is checked (response to this request, no IIN2 error bits, the CROB's status 0).
//! Then the gateway's memory per idle DNP3 session with 1,000 sessions open.
//!
//! `cargo bench -p jitgate --bench dnp3` (needs socat; results in docs/BENCHMARKS.md).
//! `JITGATE_DNP3_BENCH_ONLY=poll` (or `pair`, `idle`, comma-separated) runs only those
//! parts and `JITGATE_DNP3_BENCH_MASTERS=1` (or `32`) only that load, e.g. under a
//! profiler (with `JITGATE_DNP3_BENCH_ROUNDS=10` for ten times the rounds);
//! `JITGATE_BENCH_SERVER_APART=1` puts the server on a CPU of its own;
//! `JITGATE_BENCH_SERVER_WRAPPER="chrt --idle 0"` starts the server through that command (a
//! diagnostic of how its scheduling shapes the data path; docs/BENCHMARKS.md, DNP3);
//! `JITGATE_BENCH_PAUSE_SERVER=1` stops the server during the timed part of every jitgate
//! slice (a diagnostic: the data path with the evidence recorder taking no CPU);
//! `JITGATE_BENCH_SLICES=N` sets how many turns the paths take (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use jitgate_dnp3::header::{control_of, AppControl};
use jitgate_dnp3::link::{encode_frame, function, parse_frame, Control, LinkHeader};
use jitgate_dnp3::transport::segment;
use jitgate_dnp3::{FunctionCode, Reassembler};
use serde_json::json;
use support::{Client, Grant, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// rtu-12's link addresses in examples/plant.toml.
const MASTER: u16 = 1;
const OUTSTATION: u16 = 10;
const POINTS: u16 = 16;

#[derive(Clone, Copy)]
enum Work {
    /// READ class 0 (g60v1, all objects).
    Class0,
    /// SELECT then OPERATE of one CROB: one round is the pair.
    SelectOperate,
}

/// A minimal DNP3 master on one connection: unconfirmed user data, one fragment per request.
struct Master {
    work: Work,
    /// The binary output this master operates.
    index: u8,
    app_seq: u8,
    tx_seq: u8,
    rx: Reassembler,
    inbuf: Vec<u8>,
    chunk: Vec<u8>,
}

impl Master {
    fn new(work: Work, master: usize) -> Master {
        Master {
            work,
            index: (master % usize::from(POINTS)) as u8,
            app_seq: 0,
            tx_seq: 0,
            rx: Reassembler::default(),
            inbuf: Vec::new(),
            chunk: vec![0u8; 4096],
        }
    }

    /// Send one request (`function`, `objects`) and return the response fragment to it.
    async fn request(
        &mut self,
        s: &mut TcpStream,
        function: FunctionCode,
        objects: &[u8],
    ) -> Vec<u8> {
        let seq = self.app_seq;
        self.app_seq = (seq + 1) & 0x0F;
        let mut fragment = vec![AppControl::single(seq).to_byte(), function.code()];
        fragment.extend_from_slice(objects);
        self.send(s, &fragment).await;
        let fragment = self.next_fragment(s).await;
        let ac = control_of(&fragment).unwrap();
        assert_eq!(
            fragment[1],
            FunctionCode::Response.code(),
            "a solicited response"
        );
        assert_eq!(ac.seq, seq, "the response to this request");
        assert!(
            ac.fir && ac.fin && !ac.con,
            "one fragment, no confirm asked"
        );
        fragment
    }

    async fn send(&mut self, s: &mut TcpStream, fragment: &[u8]) {
        let header = LinkHeader {
            control: Control {
                dir: true,
                prm: true,
                fcb: false,
                fcv: false,
                function: function::UNCONFIRMED_USER_DATA,
            },
            destination: OUTSTATION,
            source: MASTER,
        };
        let (segments, next) = segment(fragment, self.tx_seq);
        self.tx_seq = next;
        let mut out = Vec::new();
        for seg in segments {
            encode_frame(&header, &seg, &mut out).unwrap();
        }
        s.write_all(&out).await.unwrap();
    }

    /// Read link frames until the outstation's next application fragment is whole.
    async fn next_fragment(&mut self, s: &mut TcpStream) -> Vec<u8> {
        loop {
            while let Some((frame, used)) = parse_frame(&self.inbuf).unwrap() {
                self.inbuf.drain(..used);
                assert!(
                    frame.header.carries_user_data(),
                    "user data from the outstation"
                );
                assert_eq!(
                    (frame.header.source, frame.header.destination),
                    (OUTSTATION, MASTER)
                );
                if let Some(fragment) = self.rx.push(frame.user_data()).unwrap() {
                    return fragment;
                }
            }
            let n = s.read(&mut self.chunk).await.unwrap();
            assert!(n > 0, "the outstation's side closed");
            self.inbuf.extend_from_slice(&self.chunk[..n]);
        }
    }
}

/// A CROB (g12v1, one object, 1-byte count and index): latch on or off, once, no timing.
fn crob(index: u8, on: bool) -> Vec<u8> {
    let code = if on { 0x03 } else { 0x04 };
    let mut o = vec![12, 1, 0x17, 1, index, code, 1];
    o.extend_from_slice(&[0; 8]); // on time, off time (ms)
    o.push(0); // status
    o
}

impl Client for Master {
    async fn round(&mut self, s: &mut TcpStream, i: usize) {
        match self.work {
            Work::Class0 => {
                let r = self.request(s, FunctionCode::Read, &[60, 1, 0x06]).await;
                assert_eq!(r[3], 0, "no IIN2 error bits");
                // Five point types of 16 points, each under its own object header.
                assert!(r.len() > 200, "the static data: {} bytes", r.len());
            }
            Work::SelectOperate => {
                let objects = crob(self.index, i.is_multiple_of(2));
                for f in [FunctionCode::Select, FunctionCode::Operate] {
                    let r = self.request(s, f, &objects).await;
                    assert_eq!(r[3], 0, "{f:?}: no IIN2 error bits");
                    assert_eq!(r[4..], objects[..], "{f:?}: the CROB echoed with status 0");
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    support::set_cpus();
    let rtu = jitgate_gateway::dnp3::sim::start(
        "127.0.0.1:0".parse().unwrap(),
        OUTSTATION,
        MASTER,
        POINTS,
    )
    .await
    .unwrap();
    rtu.preset_values();
    let rtu_addr = rtu.local_addr();
    let grant = Grant {
        inventory: vec![
            ("127.0.0.1:20000".into(), rtu_addr.to_string()),
            // Operating a high-criticality asset takes two approvers with step-up under the
            // default policies; one approver is enough for the benchmark, and the data path
            // does not depend on how the grant was approved.
            (
                "id = \"rtu-12\"\nname = \"Feeder RTU\"\nkind = \"rtu\"\nsite = \"south\"\nzone = \"substation\"\ncriticality = \"high\"".into(),
                "id = \"rtu-12\"\nname = \"Feeder RTU\"\nkind = \"rtu\"\nsite = \"south\"\nzone = \"substation\"\ncriticality = \"medium\"".into(),
            ),
        ],
        scope: json!([{"asset": "rtu-12", "dnp3": ["read class 0", "operate binary-output 0-15"]}]),
        approver: "carol",
        protocol: Some("dnp3"),
    };
    let jit = support::deploy(&tmp.path().join("tls"), &grant, true).await;
    let (_socat, tunnel) = support::socat_tunnel(tmp.path(), rtu_addr).await;
    // Memory per idle session first, on a gateway that has carried no load: afterwards the
    // allocator keeps the load's freed heap, and new sessions would fill it unseen.
    let only = std::env::var("JITGATE_DNP3_BENCH_ONLY").ok();
    let run = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    let masters = std::env::var("JITGATE_DNP3_BENCH_MASTERS").ok();
    // JITGATE_DNP3_BENCH_ROUNDS=10: ten times the rounds (a longer run for a profiler).
    let scale: usize = std::env::var("JITGATE_DNP3_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let loads = |all: [(usize, usize); 2]| -> Vec<(usize, usize)> {
        all.into_iter()
            .filter(|(n, _)| masters.as_deref().is_none_or(|m| m == n.to_string()))
            .map(|(n, rounds)| (n, rounds * scale))
            .collect()
    };
    if run("idle") {
        support::idle_sessions(&jit, Some(jitgate_core::scope::Protocol::Dnp3), 1000).await;
    }

    let routes = [
        Route::plain("direct to the outstation", rtu_addr),
        Route::plain("socat TLS tunnel (baseline)", tunnel),
        Route::jitgate(
            "jitgate connect + gateway",
            &jit,
            "masters + outstation (this process)",
        ),
    ];
    let mut rows = Vec::new();
    if run("poll") {
        rows.extend(
            support::run_paths(
                "DNP3 class 0 poll",
                &routes,
                &loads([(1, 16000), (32, 1000)]),
                |c| Master::new(Work::Class0, c),
            )
            .await,
        );
    }
    if run("pair") {
        rows.extend(
            support::run_paths(
                "DNP3 SELECT + OPERATE pair",
                &routes,
                &loads([(1, 8000), (32, 500)]),
                |c| Master::new(Work::SelectOperate, c),
            )
            .await,
        );
    }
    println!();
    support::verdicts(&rows, routes[1].name, &[routes[2].name]);

    rtu.shutdown().await;
}
