//! Modbus read round trips, in one run on loopback:
//!   (1) direct to a fast simulated PLC (Rust, in this process: the device is not the bottleneck);
//!   (2) through a generic TLS tunnel of two socat relays — what a TCP-tunnelling bastion gives;
//!   (3) through `jitgate connect` + `jitgate gateway`, inspecting every frame, twice: with
//!       the server on plain HTTP, and on TLS (HTTPS API, wss:// control channel, the
//!       gateway's enrolled client certificate) as a plant deploys it.
//! Steady-state p50/p99/mean latency, requests/s and CPU per request at 1 and 32 concurrent
//! clients (connection set-up excluded), then the gateway's memory
//! per idle session with 1,000 sessions open. Every jitgate part runs as its own process, as
//! socat does.
//!
//! `cargo bench -p jitgate --bench gateway` (needs socat; results in docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_jitgate");
const PLANT: &str = include_str!("../../../examples/plant.toml");

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_port(port: u16) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port}");
}

async fn api(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let url = format!("{base}/api/v1{path}");
    let mut req = if method == "GET" {
        http.get(url)
    } else {
        http.post(url).json(&body)
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

/// One FC3 read of 10 registers per round trip. Each client connects and warms up (`warm`
/// round trips: connection set-up, TLS, caches) on its own connection; all then start the
/// timed round trips together, so the figures are steady-state relaying, not set-up.
/// Returns every timed latency, the wall time of the timed part, and the CPU time the whole
/// machine spent during it.
async fn load(
    addr: SocketAddr,
    clients: usize,
    warm: usize,
    per_client: usize,
) -> (Vec<Duration>, Duration, Duration) {
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ready, go) = (ready.clone(), go.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut lat = Vec::with_capacity(per_client);
            let mut resp = [0u8; 29];
            for i in 0..warm + per_client {
                if i == warm {
                    ready.wait().await;
                    go.wait().await;
                }
                let tid = (i as u16).wrapping_add(c as u16);
                let addr = (i % 90) as u16;
                let mut req = [0u8; 12];
                req[..2].copy_from_slice(&tid.to_be_bytes());
                req[5] = 6;
                req[6] = 1;
                req[7] = 3;
                req[8..10].copy_from_slice(&addr.to_be_bytes());
                req[10..12].copy_from_slice(&10u16.to_be_bytes());
                let t = Instant::now();
                s.write_all(&req).await.unwrap();
                s.read_exact(&mut resp).await.unwrap();
                if i >= warm {
                    lat.push(t.elapsed());
                }
                assert_eq!(resp[7], 3, "a normal FC3 response");
            }
            lat
        }));
    }
    ready.wait().await;
    let cpu = machine_cpu();
    let start = Instant::now();
    go.wait().await;
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    (all, wall, machine_cpu().saturating_sub(cpu))
}

/// CPU time spent by the whole machine so far (all cores, user + system), from /proc/stat.
fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().next().unwrap();
    // cpu user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    Duration::from_secs_f64(busy as f64 / ticks_per_second())
}

/// CPU time (user + system) of one process so far, from /proc/<pid>/stat.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second())
}

fn ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
    100.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// One jitgate deployment: server, gateway and `jitgate connect`, each its own process, with
/// a grant for `alice` to read the simulated PLC.
struct Jitgate {
    up: Proc,
    gateway: Proc,
    connect: Proc,
    connect_port: u16,
    http: reqwest::Client,
    base: String,
    alice: String,
    grant: String,
}

/// Bring up a deployment. With `tls`, the server speaks HTTPS (`up --tls`): the gateway and
/// `connect` pin its certificate and the gateway enrols its client certificate (mutual TLS
/// on the API and the control channel).
async fn deploy(tmp: &std::path::Path, plc_addr: SocketAddr, tls: bool) -> Jitgate {
    let data = tmp.join("data");
    let api_port = free_port();
    let mut args = vec![
        "up".to_string(),
        "--data-dir".into(),
        data.to_str().unwrap().into(),
        "--listen".into(),
        format!("127.0.0.1:{api_port}"),
    ];
    if tls {
        args.push("--tls".into());
    }
    let up = Proc(
        Command::new(BIN)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(api_port).await;
    while !data.join("bootstrap-credentials.toml").exists() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.toml")).unwrap())
            .unwrap();
    let (base, http, pin) = if tls {
        let (certs, _) = jitgate_gateway::tls::load_pem(
            &data.join("tls/server-cert.pem"),
            &data.join("tls/server-key.pem"),
        )
        .unwrap();
        let fp = jitgate_gateway::tls::fingerprint(&certs[0]);
        let trust = jitgate_gateway::server_trust::ServerTrust::Fingerprint(fp.clone());
        let config = jitgate_gateway::server_trust::client_config(&trust).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*config).clone())
            .build()
            .unwrap();
        (format!("https://127.0.0.1:{api_port}"), http, Some(fp))
    } else {
        (
            format!("http://127.0.0.1:{api_port}"),
            reqwest::Client::new(),
            None,
        )
    };
    let mut tokens = std::collections::HashMap::new();
    for who in ["alice", "bob", "sam"] {
        let v = api(
            &http,
            &base,
            None,
            "POST",
            "/auth/login",
            json!({"identity": who, "password": creds["passwords"][who].as_str().unwrap()}),
        )
        .await;
        tokens.insert(who, v["token"].as_str().unwrap().to_string());
    }
    let plant = PLANT.replace("127.0.0.1:5020", &plc_addr.to_string());
    api(
        &http,
        &base,
        Some(&tokens["sam"]),
        "POST",
        "/inventory",
        json!({"toml": plant}),
    )
    .await;
    let gw_port = free_port();
    let gw_conf = tmp.join("gateway.toml");
    let pin_line = pin
        .as_ref()
        .map(|fp| format!("server_fingerprint = \"{fp}\"\n"))
        .unwrap_or_default();
    // 1,000 idle sessions are opened below: above the default connection cap.
    std::fs::write(&gw_conf, format!("server = \"{base}\"\n{pin_line}api_key = \"{}\"\nlisten = \"127.0.0.1:{gw_port}\"\nstate_dir = \"{}\"\n\n[client_limits]\nmax_connections = 2000\n", creds["api_keys"]["gw-north"].as_str().unwrap(), tmp.join("gw").display())).unwrap();
    let gateway = Proc(
        Command::new(BIN)
            .args(["gateway", "--config", gw_conf.to_str().unwrap()])
            .env("JITGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(gw_port).await;
    let req = api(&http, &base, Some(&tokens["alice"]), "POST", "/requests", json!({"scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}], "duration": "8h", "reason": "benchmark", "path": "planned"})).await;
    let id = req["id"].as_str().unwrap();
    let approved = api(
        &http,
        &base,
        Some(&tokens["bob"]),
        "POST",
        &format!("/requests/{id}/approve"),
        json!({"scope_digest": req["scope_digest"]}),
    )
    .await;
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let connect_port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["--server", &base, "--token", &tokens["alice"]]);
    if let Some(fp) = &pin {
        cmd.args(["--server-fingerprint", fp]);
    }
    let connect = Proc(
        cmd.args([
            "connect",
            &grant,
            "--listen",
            &format!("127.0.0.1:{connect_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_port(connect_port).await;
    Jitgate {
        up,
        gateway,
        connect,
        connect_port,
        http,
        base,
        alice: tokens["alice"].clone(),
        grant,
    }
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let plc = jitgate_gateway::modbus::sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    let plc_addr = plc.local_addr();

    // jitgate twice: the server over plain HTTP (loopback quickstart) and over TLS (what a
    // plant deploys: HTTPS API, wss:// control channel, gateway client certificate).
    std::fs::create_dir_all(tmp.path().join("plain")).unwrap();
    std::fs::create_dir_all(tmp.path().join("tls")).unwrap();
    let plain = deploy(&tmp.path().join("plain"), plc_addr, false).await;
    let tls = deploy(&tmp.path().join("tls"), plc_addr, true).await;

    // The generic TLS tunnel: two socat relays with a TLS hop between them.
    jitgate_gateway::tls::load_or_create_self_signed(
        &tmp.path().join("socat"),
        vec!["127.0.0.1".into()],
    )
    .unwrap();
    let cert = tmp.path().join("socat/gateway-cert.pem");
    let key = tmp.path().join("socat/gateway-key.pem");
    let (tls_port, plain_port) = (free_port(), free_port());
    let _socat_far = Proc(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{tls_port},reuseaddr,fork,cert={},key={},verify=0",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:{plc_addr},nodelay"))
            .spawn()
            .expect("socat is installed"),
    );
    wait_port(tls_port).await;
    let _socat_near = Proc(
        Command::new("socat")
            .arg(format!("TCP-LISTEN:{plain_port},reuseaddr,fork,nodelay"))
            .arg(format!("OPENSSL:127.0.0.1:{tls_port},verify=0,nodelay"))
            .spawn()
            .unwrap(),
    );
    wait_port(plain_port).await;

    let paths: [(&str, SocketAddr); 4] = [
        ("direct to the PLC", plc_addr),
        (
            "socat TLS tunnel (baseline)",
            format!("127.0.0.1:{plain_port}").parse().unwrap(),
        ),
        (
            "jitgate connect + gateway (server plain HTTP)",
            format!("127.0.0.1:{}", plain.connect_port).parse().unwrap(),
        ),
        (
            "jitgate connect + gateway (server TLS, gateway mTLS)",
            format!("127.0.0.1:{}", tls.connect_port).parse().unwrap(),
        ),
    ];
    println!(
        "| path | clients | requests | p50 µs | p99 µs | mean µs | requests/s | machine CPU µs per request |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let procs_of = |j: &Jitgate| {
        [
            ("server (`jitgate up`)", j.up.0.id()),
            ("gateway", j.gateway.0.id()),
            ("`jitgate connect`", j.connect.0.id()),
            ("clients + PLC (this process)", std::process::id()),
        ]
    };
    let mut results = Vec::new();
    let mut split = Vec::new();
    for (clients, per_client) in [(1usize, 4000usize), (32, 1000)] {
        for (name, addr) in &paths {
            let procs = procs_of(if name.contains("server TLS") {
                &tls
            } else {
                &plain
            });
            let before: Vec<Duration> = procs.iter().map(|p| process_cpu(p.1)).collect();
            let (mut lat, wall, cpu) = load(*addr, clients, 50, per_client).await;
            let after: Vec<Duration> = procs.iter().map(|p| process_cpu(p.1)).collect();
            lat.sort();
            let (p50, p99) = (pct(&lat, 0.50), pct(&lat, 0.99));
            let mean = lat.iter().sum::<Duration>().as_secs_f64() * 1e6 / lat.len() as f64;
            let rps = lat.len() as f64 / wall.as_secs_f64();
            let cpu_per = cpu.as_secs_f64() * 1e6 / lat.len() as f64;
            println!(
                "| {name} | {clients} | {} | {p50:.0} | {p99:.0} | {mean:.0} | {rps:.0} | {cpu_per:.0} |",
                lat.len()
            );
            results.push((clients, name.to_string(), p50, rps));
            if name.starts_with("jitgate") {
                let per: Vec<f64> = before
                    .iter()
                    .zip(&after)
                    .map(|(b, a)| a.saturating_sub(*b).as_secs_f64() * 1e6 / lat.len() as f64)
                    .collect();
                split.push((clients, name.to_string(), per));
            }
        }
    }
    println!(
        "\nCPU µs per request through jitgate, by process (from /proc/<pid>/stat, 10 ms ticks):\n"
    );
    let names = procs_of(&plain).map(|p| p.0);
    println!("| path | clients | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    for (clients, name, per) in &split {
        println!(
            "| {name} | {clients} | {} |",
            per.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    for clients in [1usize, 32] {
        let get = |n: &str| {
            results
                .iter()
                .find(|r| r.0 == clients && r.1.starts_with(n))
                .unwrap()
        };
        let tunnel = get("socat");
        for (label, jit) in [
            (
                "plain-HTTP server",
                get("jitgate connect + gateway (server plain"),
            ),
            ("TLS server", get("jitgate connect + gateway (server TLS")),
        ] {
            println!(
                "\nAt {clients} client(s), {label}: jitgate p50 = {:.2}× the TLS tunnel's; throughput = {:.2}× the tunnel's.",
                jit.2 / tunnel.2,
                jit.3 / tunnel.3
            );
        }
    }

    // Memory per idle session: 1000 tunnels open at the gateway process.
    let client_key = jitgate_credential::ClientKey::generate();
    let j = &tls;
    let token = api(
        &j.http,
        &j.base,
        Some(&j.alice),
        "POST",
        &format!("/grants/{}/token", j.grant),
        json!({"public_key": client_key.public_b64()}),
    )
    .await;
    let token: jitgate_gateway::wire::TokenResponse = serde_json::from_value(token).unwrap();
    let target = jitgate_gateway::connect::Target {
        token,
        key: client_key,
        protocol: None,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = j.gateway.0.id();
    let before = rss_kib(pid);
    let mut open = Vec::new();
    for _ in 0..1000 {
        open.push(
            jitgate_gateway::connect::open_tunnel(&target)
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    println!(
        "\nGateway RSS: {before} KiB idle, {after} KiB with 1000 idle sessions open → {:.1} KiB per idle session.",
        (after.saturating_sub(before)) as f64 / 1000.0
    );
    drop(open);
    plc.shutdown().await;
}
