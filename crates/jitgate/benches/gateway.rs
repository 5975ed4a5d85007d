//! Modbus read round trips, in one run on loopback:
//!   (1) direct to a fast simulated PLC (Rust, in this process: the device is not the bottleneck);
//!   (2) through a generic TLS tunnel of two socat relays — what a TCP-tunnelling bastion gives;
//!   (3) through `jitgate connect` + `jitgate gateway`, inspecting every frame and recording
//!       every operation at a running server, twice: with the server on plain HTTP, and on
//!       TLS (HTTPS API, wss:// control channel, the gateway's enrolled client certificate) as
//!       a plant deploys it.
//! Steady-state p50/p99/mean latency, requests/s and CPU per request at 1 and 32 concurrent
//! clients (connection set-up excluded), then the gateway's memory per idle session with
//! 1,000 sessions open. Every jitgate part runs as its own process, as socat does. The
//! shared machinery is in `support/`.
//!
//! `cargo bench -p jitgate --bench gateway` (needs socat; results in docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{Client, Grant, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One FC3 read of 10 registers per round trip.
struct ModbusClient(u16);

impl Client for ModbusClient {
    async fn round(&mut self, s: &mut TcpStream, i: usize) {
        let tid = (i as u16).wrapping_add(self.0);
        let addr = (i % 90) as u16;
        let mut req = [0u8; 12];
        req[..2].copy_from_slice(&tid.to_be_bytes());
        req[5] = 6;
        req[6] = 1;
        req[7] = 3;
        req[8..10].copy_from_slice(&addr.to_be_bytes());
        req[10..12].copy_from_slice(&10u16.to_be_bytes());
        let mut resp = [0u8; 29];
        s.write_all(&req).await.unwrap();
        s.read_exact(&mut resp).await.unwrap();
        assert_eq!(resp[7], 3, "a normal FC3 response");
        assert_eq!(resp[..2], tid.to_be_bytes(), "the answer to this request");
    }
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    support::set_cpus();
    let plc = jitgate_gateway::modbus::sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    let plc_addr = plc.local_addr();
    let grant = Grant {
        inventory: vec![("127.0.0.1:5020".into(), plc_addr.to_string())],
        scope: json!([{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}]),
        approver: "bob",
        protocol: None,
    };
    // jitgate twice: the server over plain HTTP (loopback quickstart) and over TLS (what a
    // plant deploys: HTTPS API, wss:// control channel, gateway client certificate).
    let plain = support::deploy(&tmp.path().join("plain"), &grant, false).await;
    let tls = support::deploy(&tmp.path().join("tls"), &grant, true).await;
    let (_socat, tunnel) = support::socat_tunnel(tmp.path(), plc_addr).await;
    // Memory per idle session first, on a gateway that has carried no load: afterwards the
    // allocator keeps the load's freed heap, and new sessions would fill it unseen.
    support::idle_sessions(&tls, None, 1000).await;

    const OWN: &str = "clients + PLC (this process)";
    let routes = [
        Route::plain("direct to the PLC", plc_addr),
        Route::plain("socat TLS tunnel (baseline)", tunnel),
        Route::jitgate("jitgate connect + gateway (server plain HTTP)", &plain, OWN),
        Route::jitgate(
            "jitgate connect + gateway (server TLS, gateway mTLS)",
            &tls,
            OWN,
        ),
    ];
    let rows = support::run_paths(
        "Modbus FC3 read of 10 registers",
        &routes,
        &[(1, 16000), (32, 1000)],
        |c| ModbusClient(c as u16),
    )
    .await;
    println!();
    support::verdicts(&rows, routes[1].name, &[routes[2].name, routes[3].name]);

    plc.shutdown().await;
}
