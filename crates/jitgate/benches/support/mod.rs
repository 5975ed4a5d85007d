//! What the gateway benchmarks (`gateway.rs`: Modbus, `dnp3.rs`: DNP3) share: the processes
//! (a jitgate deployment of `jitgate up`, `jitgate gateway` and `jitgate connect`, the socat
//! TLS tunnel), the load generator (clients that warm up on their own connections, then
//! start their timed round trips together), percentiles, CPU and memory sampling from
//! /proc, the result tables and the targets.
//!
//! Targets (issue 14, the same for both protocols): jitgate's p50 ≤ 1.0× and p99 ≤ 1.5× the
//! TLS tunnel's, throughput ≥ the tunnel's at 32 concurrent clients; ≤ 64 KiB per idle
//! session.

#![allow(dead_code, reason = "each benchmark uses the part it needs")]

use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

pub const BIN: &str = env!("CARGO_BIN_EXE_jitgate");
pub const PLANT: &str = include_str!("../../../../examples/plant.toml");

#[path = "layout.rs"]
mod layout;
#[allow(unused_imports, reason = "each benchmark uses the part it needs")]
pub use layout::{server_apart, set_cpus};

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "../../tests/it/ports.rs"]
mod ports;
pub use ports::free_port;

pub async fn wait_port(port: u16) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port}");
}

pub async fn api(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    cluster_nodes::call(http, base, token, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// CPU time spent by the whole machine so far (all cores, user + system), from /proc/stat.
pub fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().next().unwrap();
    // cpu user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    Duration::from_secs_f64(busy as f64 / TICKS_PER_SECOND)
}

/// CPU time (user + system) of one process so far, from /proc/<pid>/stat.
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
const TICKS_PER_SECOND: f64 = 100.0;

/// The `p` quantile of sorted latencies, in µs.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// What a deployment grants and how its client connects.
pub struct Grant {
    /// `(text in examples/plant.toml, replacement)`: the device's address, typically.
    pub inventory: Vec<(String, String)>,
    /// The scope of alice's request, as `POST /requests` takes it.
    pub scope: Value,
    /// Who approves (the asset's site engineer under the default policies).
    pub approver: &'static str,
    /// `jitgate connect --protocol`, when the grant gives more than one.
    pub protocol: Option<&'static str>,
}

/// One jitgate deployment: server, gateway and `jitgate connect`, each its own process, with
/// an active grant for `alice`.
pub struct Jitgate {
    pub up: Proc,
    pub gateway: Proc,
    pub connect: Proc,
    pub connect_port: u16,
    pub http: reqwest::Client,
    pub base: String,
    pub alice: String,
    pub grant: String,
}

impl Jitgate {
    pub fn connect_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.connect_port))
    }

    /// The processes whose CPU the tables split, with the benchmark's own last.
    pub fn processes(&self, own: &'static str) -> [(&'static str, u32); 4] {
        [
            ("server (`jitgate up`)", self.up.0.id()),
            ("gateway", self.gateway.0.id()),
            ("`jitgate connect`", self.connect.0.id()),
            (own, std::process::id()),
        ]
    }
}

/// Bring up a deployment in `tmp`. With `tls`, the server speaks HTTPS (`up --tls`): the
/// gateway and `connect` pin its certificate and the gateway enrols its client certificate
/// (mutual TLS on the API and the control channel).
pub async fn deploy(tmp: &Path, grant: &Grant, tls: bool) -> Jitgate {
    std::fs::create_dir_all(tmp).unwrap();
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
    // JITGATE_BENCH_SERVER_WRAPPER="chrt --idle 0": start the server through a command — a
    // diagnostic of how the server's scheduling shapes the data path (docs/BENCHMARKS.md,
    // "Layout"), never a figure of the product.
    let wrapper = std::env::var("JITGATE_BENCH_SERVER_WRAPPER").unwrap_or_default();
    let mut words: Vec<&str> = wrapper.split_whitespace().collect();
    if server_apart() {
        words.splice(0..0, ["taskset", "-c", "1"]);
    }
    words.push(BIN);
    let mut up = Command::new(words[0]);
    up.args(&words[1..]);
    let up = Proc(
        up.args(&args)
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
    for who in ["alice", grant.approver, "sam"] {
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
    let mut plant = PLANT.to_string();
    for (from, to) in &grant.inventory {
        assert!(
            plant.contains(from.as_str()),
            "examples/plant.toml has {from:?}"
        );
        plant = plant.replace(from, to);
    }
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
    // 1,000 idle sessions are opened by the benchmarks: above the default connection cap.
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
    let req = api(
        &http,
        &base,
        Some(&tokens["alice"]),
        "POST",
        "/requests",
        json!({"scope": grant.scope, "duration": "8h", "reason": "benchmark", "path": "planned"}),
    )
    .await;
    let id = req["id"].as_str().unwrap();
    let approved = api(
        &http,
        &base,
        Some(&tokens[grant.approver]),
        "POST",
        &format!("/requests/{id}/approve"),
        json!({"scope_digest": req["scope_digest"]}),
    )
    .await;
    let grant_id = approved["grant"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the approval issues the grant: {approved}"))
        .to_string();
    let connect_port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["--server", &base, "--token", &tokens["alice"]]);
    if let Some(fp) = &pin {
        cmd.args(["--server-fingerprint", fp]);
    }
    cmd.args([
        "connect",
        &grant_id,
        "--listen",
        &format!("127.0.0.1:{connect_port}"),
    ]);
    if let Some(p) = grant.protocol {
        cmd.args(["--protocol", p]);
    }
    let connect = Proc(
        cmd.stdout(Stdio::null())
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
        grant: grant_id,
    }
}

/// The generic TLS tunnel to `device`: two socat relays with a TLS hop between them, as a
/// TCP-tunnelling bastion gives. Returns the relays and the address clients dial.
pub async fn socat_tunnel(tmp: &Path, device: SocketAddr) -> ([Proc; 2], SocketAddr) {
    let dir = tmp.join("socat");
    jitgate_gateway::tls::load_or_create_self_signed(&dir, vec!["127.0.0.1".into()]).unwrap();
    let cert = dir.join("gateway-cert.pem");
    let key = dir.join("gateway-key.pem");
    let (tls_port, plain_port) = (free_port(), free_port());
    let far = Proc(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{tls_port},reuseaddr,fork,cert={},key={},verify=0",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:{device},nodelay"))
            .spawn()
            .expect("socat is installed"),
    );
    wait_port(tls_port).await;
    let near = Proc(
        Command::new("socat")
            .arg(format!("TCP-LISTEN:{plain_port},reuseaddr,fork,nodelay"))
            .arg(format!("OPENSSL:127.0.0.1:{tls_port},verify=0,nodelay"))
            .spawn()
            .unwrap(),
    );
    wait_port(plain_port).await;
    ([far, near], SocketAddr::from(([127, 0, 0, 1], plain_port)))
}

/// One client of a load: it owns its connection's protocol state and makes round `i`
/// (a request and its whole answer; panics on a wrong answer).
pub trait Client: Send + 'static {
    fn round(&mut self, s: &mut TcpStream, i: usize) -> impl Future<Output = ()> + Send;
}

/// What one load measured.
pub struct Measured {
    /// Every timed round trip, sorted.
    pub lat: Vec<Duration>,
    /// Wall time of the timed part.
    pub wall: Duration,
    /// CPU time the whole machine spent during it.
    pub machine: Duration,
}

/// Run `clients` clients (each made by `make(c)`) against `addr`. Each connects and warms
/// up (`warm` rounds: connection set-up, TLS, caches) on its own connection; all then
/// start the timed rounds together, so the figures are steady-state relaying, not set-up.
pub async fn load<C: Client>(
    addr: SocketAddr,
    clients: usize,
    warm: usize,
    per_client: usize,
    make: impl Fn(usize) -> C,
    pause: Option<u32>,
) -> Measured {
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ready, go) = (ready.clone(), go.clone());
        let mut client = make(c);
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..warm + per_client {
                if i == warm {
                    ready.wait().await;
                    go.wait().await;
                }
                let t = Instant::now();
                client.round(&mut s, i).await;
                if i >= warm {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    ready.wait().await;
    if let Some(pid) = pause {
        signal(pid, "-STOP");
    }
    let cpu = machine_cpu();
    let start = Instant::now();
    go.wait().await;
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    if let Some(pid) = pause {
        signal(pid, "-CONT");
    }
    lat.sort();
    Measured {
        lat,
        wall,
        machine: machine_cpu().saturating_sub(cpu),
    }
}

/// One path a load is run through: its name, the address clients dial, and the processes
/// whose CPU is split by process (jitgate paths only).
pub struct Route {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub processes: Option<[(&'static str, u32); 4]>,
}

impl Route {
    /// A path whose processes are not split (the device itself, the socat tunnel).
    pub fn plain(name: &'static str, addr: SocketAddr) -> Route {
        Route {
            name,
            addr,
            processes: None,
        }
    }

    /// The path through `j`'s `jitgate connect`, with `own` naming the benchmark's process.
    pub fn jitgate(name: &'static str, j: &Jitgate, own: &'static str) -> Route {
        Route {
            name,
            addr: j.connect_addr(),
            processes: Some(j.processes(own)),
        }
    }

    /// CPU time of each split process so far.
    fn cpu(&self) -> Vec<Duration> {
        self.processes
            .iter()
            .flatten()
            .map(|p| process_cpu(p.1))
            .collect()
    }
}

/// One row of a results table.
pub struct Row {
    pub workload: &'static str,
    pub path: &'static str,
    pub clients: usize,
    pub p50: f64,
    pub p99: f64,
    pub rps: f64,
}

/// Send `sig` (`-STOP`, `-CONT`) to process `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

/// `JITGATE_BENCH_PAUSE_SERVER=1`, a diagnostic: the server is stopped (SIGSTOP) during the
/// timed part of every jitgate slice and continued after it — sessions are open and warm,
/// the gateway keeps writing every operation to its write-ahead file and retries the
/// delivery afterwards. It shows what the data path does when the evidence recorder takes
/// no CPU; not a figure of the product.
fn pause_server() -> bool {
    std::env::var("JITGATE_BENCH_PAUSE_SERVER").is_ok_and(|v| v == "1")
}

/// How many slices each load is cut into (`JITGATE_BENCH_SLICES`, default 5): the paths
/// take turns slice by slice, so a change in the machine's speed during the run (a busy
/// neighbour, a frequency step — the socat tunnel's own p50 moved by 40% between runs a
/// minute apart) falls on the baseline and on jitgate alike instead of on whichever path
/// happened to run then.
fn slices() -> usize {
    std::env::var("JITGATE_BENCH_SLICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(5)
}

/// What one path gathered over the slices of one load.
#[derive(Default)]
struct Pooled {
    lat: Vec<Duration>,
    wall: Duration,
    machine: Duration,
    processes: Vec<Duration>,
}

/// Run `workload` through every path at each `(clients, rounds per client)`, printing one
/// table row per path and load and then the CPU per round by process for the jitgate paths.
/// Each load runs in [`slices`] turns; in each turn every path runs a slice of the rounds
/// (on fresh connections, warmed up), starting with a different path each turn.
pub async fn run_paths<C: Client>(
    workload: &'static str,
    routes: &[Route],
    loads: &[(usize, usize)],
    make: impl Fn(usize) -> C + Copy,
) -> Vec<Row> {
    let turns = slices();
    println!("\n### {workload}\n");
    if pause_server() {
        println!("(diagnostic: the server stopped during the timed part of every jitgate slice)\n");
    }
    println!("({turns} turns, the paths taking turns; connection set-up excluded)\n");
    println!(
        "| path | clients | rounds | p50 µs | p99 µs | p99.9 µs | mean µs | rounds/s | machine CPU µs per round |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut split = Vec::new();
    for &(clients, per_client) in loads {
        let mut pooled: Vec<Pooled> = routes.iter().map(|_| Pooled::default()).collect();
        let slice = per_client.div_ceil(turns);
        for turn in 0..turns {
            for k in 0..routes.len() {
                let at = (turn + k) % routes.len();
                let path = &routes[at];
                let before = path.cpu();
                // The server is the first of a jitgate path's processes.
                let pause = path
                    .processes
                    .filter(|_| pause_server())
                    .map(|procs| procs[0].1);
                let m = load(path.addr, clients, 50, slice, make, pause).await;
                let after = path.cpu();
                let p = &mut pooled[at];
                p.lat.extend(m.lat);
                p.wall += m.wall;
                p.machine += m.machine;
                p.processes.resize(after.len(), Duration::ZERO);
                for (sum, (b, a)) in p.processes.iter_mut().zip(before.iter().zip(&after)) {
                    *sum += a.saturating_sub(*b);
                }
            }
        }
        for (path, mut p) in routes.iter().zip(pooled) {
            p.lat.sort();
            let n = p.lat.len() as f64;
            let (p50, p99, p999) = (pct(&p.lat, 0.50), pct(&p.lat, 0.99), pct(&p.lat, 0.999));
            let mean = p.lat.iter().sum::<Duration>().as_secs_f64() * 1e6 / n;
            let rps = n / p.wall.as_secs_f64();
            let cpu_per = p.machine.as_secs_f64() * 1e6 / n;
            println!(
                "| {} | {clients} | {} | {p50:.0} | {p99:.0} | {p999:.0} | {mean:.0} | {rps:.0} | {cpu_per:.0} |",
                path.name,
                p.lat.len()
            );
            rows.push(Row {
                workload,
                path: path.name,
                clients,
                p50,
                p99,
                rps,
            });
            if let Some(procs) = &path.processes {
                let per: Vec<f64> = p
                    .processes
                    .iter()
                    .map(|d| d.as_secs_f64() * 1e6 / n)
                    .collect();
                split.push((clients, path.name, procs.map(|p| p.0), per));
            }
        }
    }
    if let Some((_, _, names, _)) = split.first() {
        println!(
            "\nCPU µs per round through jitgate, by process (/proc/<pid>/stat, 10 ms ticks):\n"
        );
        println!("| path | clients | {} |", names.join(" | "));
        println!("|---|---|{}", "---|".repeat(names.len()));
        for (clients, name, _, per) in &split {
            let cells: Vec<String> = per.iter().map(|v| format!("{v:.1}")).collect();
            println!("| {name} | {clients} | {} |", cells.join(" | "));
        }
    }
    rows
}

/// Print jitgate's ratios to the tunnel's and whether each target is met. `tunnel` and
/// each of `jitgate` are path names of `rows`.
pub fn verdicts(rows: &[Row], tunnel: &str, jitgate: &[&str]) {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut seen: Vec<(&str, usize)> = rows.iter().map(|r| (r.workload, r.clients)).collect();
    seen.dedup();
    for (workload, clients) in seen {
        let get = |path: &str| {
            rows.iter()
                .find(|r| r.workload == workload && r.clients == clients && r.path == path)
                .unwrap()
        };
        let t = get(tunnel);
        for name in jitgate {
            let j = get(name);
            let (p50, p99, thr) = (j.p50 / t.p50, j.p99 / t.p99, j.rps / t.rps);
            let throughput = if clients >= 32 {
                format!(" (target ≥ 1.0×: {})", met(thr >= 1.0))
            } else {
                String::new()
            };
            println!(
                "{workload}, {clients} client(s), {name}: p50 {p50:.2}× the tunnel's (target ≤ 1.0×: {}), p99 {p99:.2}× (target ≤ 1.5×: {}), throughput {thr:.2}×{throughput}.",
                met(p50 <= 1.0),
                met(p99 <= 1.5),
            );
        }
    }
}

/// Open `n` tunnels to the gateway of `j` (its grant, `protocol`) and leave them idle;
/// print the gateway process's RSS growth per session.
pub async fn idle_sessions(j: &Jitgate, protocol: Option<jitgate_core::scope::Protocol>, n: usize) {
    let client_key = jitgate_credential::ClientKey::generate();
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
        protocol,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = j.gateway.0.id();
    let before = rss_kib(pid);
    let mut open = Vec::new();
    for _ in 0..n {
        open.push(
            jitgate_gateway::connect::open_tunnel(&target)
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "\nGateway RSS: {before} KiB idle, {after} KiB with {n} idle sessions open → {per:.1} KiB per idle session (target ≤ 64 KiB: {}).",
        if per <= 64.0 { "met" } else { "NOT met" }
    );
    // Close them and let the gateway record their ends before any load is timed.
    drop(open);
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Several `jitgate serve` nodes on one PostgreSQL: the one helper the multi-node tests use.
#[path = "../../tests/it/cluster_nodes.rs"]
pub mod cluster_nodes;
