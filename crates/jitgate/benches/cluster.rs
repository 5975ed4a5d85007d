//! Several `jitgate serve` nodes on one PostgreSQL database (docs/cluster.md), as real
//! processes of the release build, each part on a fresh database of its own:
//!
//! 1. **Revocation to cut**, same node vs across nodes: three nodes, a real `jitgate
//!    gateway` attached to node A (`failover_servers` B, C) in front of the simulated PLC,
//!    and per trial a new grant with a real `jitgate connect` whose Modbus connection reads
//!    in a loop. The grant is revoked on node A (the gateway's own node: the baseline) or on
//!    node B (the revocation crosses nodes through `NOTIFY`); measured from the revoke call
//!    being sent to the client's connection being closed.
//! 2. **Failover**: SIGKILL the node the gateway is attached to; measured from the kill to
//!    another node holding its control channel (`GET /gateways`, `attached_to`, asked of
//!    every live node) and to a new session's first read answered (a `jitgate connect` made
//!    before the kill, through a live node). The killed node is restarted between trials.
//! 3. **Lifecycles/s** (request → approve, which issues the grant → revoke) by 32 clients
//!    spread over 1, 2 and 3 nodes, every teardown verified in the background by the gateway
//!    attached to the first node (as `jitgate-server`'s `lifecycle` benchmark, which runs
//!    one in-process server); the same clients' `GET /healthz` as the baseline.
//!
//! `cargo bench -p jitgate --bench cluster` (PostgreSQL from JITGATE_TEST_PG, default
//! postgres://postgres@127.0.0.1:5432/test). Results in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster_nodes::{self as nodes, attached_to, call, Gateway, Node};
use support::{free_port, wait_port, Proc, BIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRIALS: usize = 25;
const FAILOVERS: usize = 6;
const CLIENTS: usize = 32;
const LIFECYCLES_PER_CLIENT: usize = 40;
/// Every node may hold many open requests of one person (alice files them all).
const TABLES: &str = "[limits]\nmax_open_requests = 100000\n";

/// A cluster on a fresh database: nodes, the gateway, tokens of alice, bob and sam per node.
struct Cluster {
    nodes: Vec<Node>,
    urls: Vec<String>,
    http: reqwest::Client,
    /// `[node][alice, bob, sam]`.
    tokens: Vec<Vec<String>>,
    gateway: Gateway,
    pg: jitgate_testkit::PgTestDb,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    async fn start(n: usize, plc: std::net::SocketAddr) -> Cluster {
        let pg = jitgate_testkit::postgres_store()
            .await
            .expect("PostgreSQL (JITGATE_TEST_PG) is needed for several nodes");
        let tmp = tempfile::tempdir().unwrap();
        let inventory = nodes::inventory(tmp.path(), plc);
        let ids: Vec<&str> = ["node-a", "node-b", "node-c"][..n].to_vec();
        let (nodes, sam_password) =
            nodes::start_cluster(tmp.path(), &pg.url(), &inventory, &ids, TABLES);
        let urls: Vec<String> = nodes.iter().map(Node::url).collect();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        let mut tokens = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            // Passwords once (on the first node); every node signs its people in.
            let who: &[&str] = if i == 0 { &["alice", "bob"] } else { &[] };
            let mut t = nodes::people(&http, url, &sam_password, who).await;
            if i > 0 {
                let sam = t.pop().unwrap();
                for id in ["alice", "bob"] {
                    t.push(nodes::login(&http, url, id, nodes::PASSWORD).await);
                }
                t.push(sam);
            }
            tokens.push(t);
        }
        let gateway = Gateway::start(&http, tmp.path(), &urls, &tokens[0][2], "").await;
        let c = Cluster {
            nodes,
            urls,
            http,
            tokens,
            gateway,
            pg,
            _tmp: tmp,
        };
        c.wait_attached(|at| at == "node-a", Duration::from_secs(30))
            .await;
        c
    }

    /// Wait until a live node `ok` accepts says it holds the gateway's control channel
    /// (`attached_to` naming itself: what a node knows first hand, the moment the channel
    /// opens); that node.
    async fn wait_attached(&self, ok: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            for (i, url) in self.urls.iter().enumerate() {
                let id = &self.nodes[i].id;
                if self.nodes[i].pid().is_none() || !ok(id) {
                    continue;
                }
                let at = attached_to(&self.http, url, &self.tokens[i][2], "gw-north").await;
                if at.as_ref() == Some(id) {
                    return at.unwrap();
                }
            }
            assert!(Instant::now() < deadline, "the gateway did not attach");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn index_of(&self, node: &str) -> usize {
        self.nodes.iter().position(|n| n.id == node).unwrap()
    }

    /// alice's request for plc-7, approved by bob, on node `at`: the grant id.
    async fn grant(&self, at: usize) -> String {
        let t = &self.tokens[at];
        let req = call(
            &self.http,
            &self.urls[at],
            Some(&t[0]),
            "POST",
            "/requests",
            json!({"scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}],
                   "duration": "1h", "reason": "benchmark", "reference": "BENCH", "path": "planned"}),
        )
        .await
        .unwrap();
        let id = req["id"].as_str().unwrap();
        let approved = call(
            &self.http,
            &self.urls[at],
            Some(&t[1]),
            "POST",
            &format!("/requests/{id}/approve"),
            json!({"scope_digest": req["scope_digest"]}),
        )
        .await
        .unwrap();
        approved["grant"]["id"].as_str().unwrap().to_string()
    }

    /// A real `jitgate connect` for `grant` through node `at`: the process and its port.
    async fn connect(&self, at: usize, grant: &str) -> (Proc, u16) {
        let port = free_port();
        let p = Proc(
            Command::new(BIN)
                .args(["--server", &self.urls[at], "--token", &self.tokens[at][0]])
                .args(["connect", grant, "--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_port(port).await;
        (p, port)
    }

    async fn revoke(&self, at: usize, grant: &str) {
        call(
            &self.http,
            &self.urls[at],
            Some(&self.tokens[at][0]),
            "POST",
            &format!("/grants/{grant}/revoke"),
            json!({"reason": "benchmark"}),
        )
        .await
        .unwrap();
    }

    async fn stop(self) {
        drop(self.gateway);
        drop(self.nodes);
        self.pg.cleanup().await;
    }
}

/// One Modbus FC3 read of one register, `tid` its transaction id.
fn fc3(tid: u16) -> [u8; 12] {
    let mut req = [0u8; 12];
    req[..2].copy_from_slice(&tid.to_be_bytes());
    req[5] = 6;
    req[6] = 1;
    req[7] = 3;
    req[10..12].copy_from_slice(&1u16.to_be_bytes());
    req
}

/// A Modbus client on `port` that reads every 10 ms, its reader always blocked on the
/// socket; `live` answers once 3 reads came back, `closed` when the connection ends.
async fn reading_client(
    port: u16,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    tokio::task::JoinHandle<Instant>,
) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = s.into_split();
    tokio::spawn(async move {
        for tid in 0u16.. {
            if wr.write_all(&fc3(tid)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (live_tx, live) = tokio::sync::oneshot::channel();
    let closed = tokio::spawn(async move {
        let mut live_tx = Some(live_tx);
        let mut answers = 0;
        let mut frame = [0u8; 11];
        loop {
            match rd.read_exact(&mut frame).await {
                Ok(_) => {
                    assert_eq!(frame[7], 3, "a normal FC3 answer");
                    answers += 1;
                    if answers == 3 {
                        let _ = live_tx.take().unwrap().send(());
                    }
                }
                Err(_) => return Instant::now(),
            }
        }
    });
    (live, closed)
}

/// A new session's first read: `true` when answered within 2 s.
async fn first_read(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(&fc3(1)).await.ok()?;
        let mut frame = [0u8; 11];
        s.read_exact(&mut frame).await.ok()?;
        (frame[7] == 3).then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n`, p50, p99, max in ms of `samples`.
fn stats(samples: &mut [Duration]) -> String {
    samples.sort();
    let p = |q: f64| ms(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    format!(
        "{} | {:.1} | {:.1} | {:.1}",
        samples.len(),
        p(0.5),
        p(0.99),
        ms(*samples.last().unwrap())
    )
}

async fn revocation_to_cut(c: &Cluster) {
    let mut cut: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut answered: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    // Alternate, so both see the same machine load.
    for trial in 0..2 * TRIALS {
        let at = trial % 2; // 0: node A, the gateway's; 1: node B
        let grant = c.grant(at).await;
        let (_connect, port) = c.connect(at, &grant).await;
        let (live, closed) = reading_client(port).await;
        tokio::time::timeout(Duration::from_secs(10), live)
            .await
            .expect("the session reads")
            .unwrap();
        let sent = Instant::now();
        c.revoke(at, &grant).await;
        answered[at].push(sent.elapsed());
        let closed_at = tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .expect("the session was cut within 10 s")
            .unwrap();
        cut[at].push(closed_at - sent);
    }
    println!("\n### Revocation to cut (gateway attached to node A)\n");
    println!("| revoked on | what | n | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (at, name) in [
        (0, "node A (same node, baseline)"),
        (1, "node B (cross-node)"),
    ] {
        println!(
            "| {name} | revoke call sent → client connection closed | {} |",
            stats(&mut cut[at])
        );
        println!(
            "| {name} | revoke call sent → answered | {} |",
            stats(&mut answered[at])
        );
    }
    let p99 = ms(cut[1][((cut[1].len() as f64 - 1.0) * 0.99).round() as usize]);
    println!(
        "\nCross-node p99 {p99:.1} ms (target < 250 ms: {}).",
        if p99 < 250.0 { "met" } else { "NOT met" }
    );
}

async fn failover(c: &mut Cluster) {
    println!("\n### Failover: SIGKILL of the gateway's node\n");
    println!("| trial | killed | re-attached to | kill → attached (ms) | kill → new session's first read (ms) |");
    println!("|---|---|---|---|---|");
    let mut attach = Vec::new();
    let mut read = Vec::new();
    for trial in 1..=FAILOVERS {
        let on = c.wait_attached(|_| true, Duration::from_secs(30)).await;
        let dead = c.index_of(&on);
        let via = (dead + 1) % c.nodes.len();
        let grant = c.grant(via).await;
        let (_connect, port) = c.connect(via, &grant).await;
        assert!(first_read(port).await, "the session works before the kill");
        let killed = Instant::now();
        c.nodes[dead].kill();
        let reader = tokio::spawn(async move {
            while !first_read(port).await {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Instant::now()
        });
        let dead_id = on.clone();
        let now_on = c
            .wait_attached(|at| at != dead_id, Duration::from_secs(60))
            .await;
        let attached = killed.elapsed();
        let first = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("a new session within 60 s")
            .unwrap()
            - killed;
        println!(
            "| {trial} | {on} | {now_on} | {:.0} | {:.0} |",
            ms(attached),
            ms(first)
        );
        attach.push(attached);
        read.push(first);
        c.revoke(via, &grant).await;
        // Back for the next trial (ready: database answers, listening for the others).
        c.nodes[dead].start();
    }
    println!("\n| measurement | n | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| kill → gateway attached to another node | {} |",
        stats(&mut attach)
    );
    println!("| kill → new session's first read | {} |", stats(&mut read));
}

async fn lifecycle(http: &reqwest::Client, base: &str, alice: &str, bob: &str) {
    let req = call(http, base, Some(alice), "POST", "/requests",
        json!({"scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}], "duration": "1h",
               "reason": "benchmark", "reference": "BENCH", "path": "planned"})).await.unwrap();
    let id = req["id"].as_str().unwrap();
    let approved = call(
        http,
        base,
        Some(bob),
        "POST",
        &format!("/requests/{id}/approve"),
        json!({"scope_digest": req["scope_digest"]}),
    )
    .await
    .unwrap();
    assert_eq!(approved["state"], "active");
    let gid = approved["grant"]["id"].as_str().unwrap();
    call(
        http,
        base,
        Some(alice),
        "POST",
        &format!("/grants/{gid}/revoke"),
        json!({"reason": "benchmark"}),
    )
    .await
    .unwrap();
}

/// CPU time the machine has spent so far, and the load average now.
fn machine() -> (Duration, String) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap();
    (
        support::machine_cpu(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

async fn lifecycles(n: usize, plc: std::net::SocketAddr) {
    let c = Cluster::start(n, plc).await;
    // Warm-up: connections and caches on every node.
    for at in 0..n {
        for _ in 0..5 {
            lifecycle(&c.http, &c.urls[at], &c.tokens[at][0], &c.tokens[at][1]).await;
        }
    }
    let spread = |i: usize| i % n;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (http, base) = (c.http.clone(), c.urls[spread(i)].clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let r = http.get(format!("{base}/healthz")).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let baseline = (CLIENTS * 200) as f64 / t.elapsed().as_secs_f64();

    let (cpu0, load0) = machine();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let at = spread(i);
        let (http, base) = (c.http.clone(), c.urls[at].clone());
        let (alice, bob) = (c.tokens[at][0].clone(), c.tokens[at][1].clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..LIFECYCLES_PER_CLIENT {
                lifecycle(&http, &base, &alice, &bob).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = t.elapsed();
    let (cpu1, _) = machine();
    let per_sec = (CLIENTS * LIFECYCLES_PER_CLIENT) as f64 / wall.as_secs_f64();
    let busy = (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64();
    let total = CLIENTS * LIFECYCLES_PER_CLIENT + 5 * n;
    // A failed attempt is retried until verified (docs/teardown.md); the most seen at once
    // is reported, not hidden.
    let mut most_failed = 0;
    let verified = loop {
        let mut tx = c.pg.store.read().await.unwrap();
        let done = tx.list_teardowns("verified", 100_000).await.unwrap().len();
        let failed = tx.list_teardowns("failed", 100_000).await.unwrap().len();
        drop(tx);
        most_failed = most_failed.max(failed);
        if done >= total || t.elapsed() > Duration::from_secs(300) {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all_verified_after = t.elapsed();
    let chain =
        c.pg.store
            .read_snapshot()
            .await
            .unwrap()
            .verify_chain()
            .await
            .unwrap();
    assert!(
        chain.first_bad.is_none(),
        "event chain intact after the run"
    );
    println!(
        "| {n} | {CLIENTS} | {} | {:.1} s | **{per_sec:.0}** | {baseline:.0} | {busy:.2} of 2 | {load0} | {verified} of {total} verified, all after {:.1} s; {most_failed} failed attempts at most at once | {} |",
        CLIENTS * LIFECYCLES_PER_CLIENT,
        wall.as_secs_f64(),
        all_verified_after.as_secs_f64(),
        chain.events
    );
    for (why, count) in failed_checks(&c.pg.store).await {
        println!("  - {n} node(s): {count} failed check(s): {why}");
    }
    c.stop().await;
}

fn commit(dir: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::main]
async fn main() {
    let plc = jitgate_gateway::modbus::sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    let (_, load) = machine();
    println!(
        "commit {}, {} cores, load average at the start {load}",
        commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut c = Cluster::start(3, plc.local_addr()).await;
    revocation_to_cut(&c).await;
    failover(&mut c).await;
    c.stop().await;

    println!("\n### Lifecycles/s over 1, 2 and 3 nodes\n");
    println!("| nodes | clients | lifecycles | wall time | lifecycles/s | baseline GET /healthz req/s | machine CPU busy (cores) | load average before | teardowns | events in chain |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in 1..=3 {
        lifecycles(n, plc.local_addr()).await;
    }
    let (_, load) = machine();
    println!("\nload average at the end {load}");
    plc.shutdown().await;
}

/// The failed teardown checks in the log, by check and reason (the detail without its
/// numbers and names), most frequent first: why attempts failed, not only how many.
async fn failed_checks(store: &jitgate_store::Store) -> Vec<(String, usize)> {
    let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
    let mut after = None;
    loop {
        let page = {
            let mut tx = store.read().await.unwrap();
            tx.list_events(&jitgate_store::EventFilter {
                after_seq: after,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
        };
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for e in &page {
            let d = &e.event.data;
            if e.event.kind.as_str() == "teardown.check" && d["outcome"] == "failed" {
                let detail = d["detail"].as_str().unwrap_or("");
                let shape: String = detail
                    .split_whitespace()
                    .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                    .collect::<Vec<_>>()
                    .join(" ");
                *by_reason
                    .entry(format!("{} — {shape}", d["check"].as_str().unwrap_or("?")))
                    .or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, usize)> = by_reason.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v
}
