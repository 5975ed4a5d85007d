//! Full lifecycles per second through the HTTP API (request → decide → approve → grant →
//! revoke) with 32 concurrent clients, on SQLite and on PostgreSQL, with the gateway fronting
//! the asset running, so every revoked grant's teardown is verified in the background (and
//! the time until all are verified is reported). Baseline in the same
//! run: `GET /healthz` round trips with the same 32 clients (HTTP + runtime overhead alone).
//! Each backend runs twice: plain HTTP on loopback (the quickstart), then TLS on the API and
//! the gateway's control channel (a generated CA, clients trusting only it, the gateway
//! pinning the certificate), as deployed.
//!
//! `cargo bench -p jitgate-server --bench lifecycle` (PostgreSQL from JITGATE_TEST_PG,
//! default postgres://postgres@127.0.0.1:5432/test; skipped loudly when unreachable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jitgate_core::event::Actor;
use jitgate_core::{Inventory, SystemClock};
use jitgate_server::config::ServerConfig;
use jitgate_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const LIFECYCLES_PER_CLIENT: usize = 40;
const PLANT: &str = include_str!("../../../examples/plant.toml");

async fn start(
    store: Store,
    data: &std::path::Path,
    tls: bool,
) -> (jitgate_server::RunningServer, String) {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        ..ServerConfig::default()
    };
    // With TLS: a CA and a server certificate generated in the data dir, as `up --tls`.
    config.tls.enabled = tls;
    // Every client files requests as alice, many open at once: the per-requester cap (an
    // abuse limit, 20 by default) would refuse the load this measures.
    config.limits.max_open_requests = 100_000;
    let server = jitgate_server::start_with_store(config, Arc::new(SystemClock), store)
        .await
        .unwrap();
    let inv = Inventory::from_toml(PLANT).unwrap();
    jitgate_server::service::load_inventory(&server.state, Actor::system(), &inv)
        .await
        .unwrap();
    let mut tx = server.state.store.write().await.unwrap();
    for who in ["alice", "bob", "sam"] {
        tx.set_password(
            who,
            &jitgate_server::auth::hash_password("benchmark-password").unwrap(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let scheme = if tls { "https" } else { "http" };
    let base = format!("{scheme}://{}", server.addr);
    (server, base)
}

async fn login(http: &reqwest::Client, base: &str, who: &str) -> String {
    let v: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"identity": who, "password": "benchmark-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn one_lifecycle(http: &reqwest::Client, base: &str, alice: &str, bob: &str) {
    let req = post(
        http,
        format!("{base}/api/v1/requests"),
        alice,
        json!({"scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}], "duration": "1h",
               "reason": "benchmark", "reference": "BENCH", "path": "planned"}),
    )
    .await;
    let id = req["id"].as_str().unwrap();
    let approved = post(
        http,
        format!("{base}/api/v1/requests/{id}/approve"),
        bob,
        json!({"scope_digest": req["scope_digest"]}),
    )
    .await;
    assert_eq!(approved["state"], "active");
    let gid = approved["grant"]["id"].as_str().unwrap();
    post(
        http,
        format!("{base}/api/v1/grants/{gid}/revoke"),
        alice,
        json!({"reason": "benchmark"}),
    )
    .await;
}

/// gw-north, the gateway fronting plc-7, in process: every revoked grant's teardown is
/// verified against it (acknowledgement over the control channel, a probe through a real
/// TLS tunnel), as in a real deployment.
async fn gateway(
    http: &reqwest::Client,
    base: &str,
    sam: &str,
    state: &std::path::Path,
    server_fingerprint: Option<String>,
) -> jitgate_gateway::runtime::RunningGateway {
    let key = post(
        http,
        format!("{base}/api/v1/api-keys"),
        sam,
        json!({"identity": "gw-north", "name": "bench"}),
    )
    .await;
    let config = jitgate_gateway::config::GatewayConfig {
        server: base.to_string(),
        server_fingerprint,
        server_ca_file: None,
        api_key: Some(key["key"].as_str().unwrap().to_string()),
        api_key_file: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        ssh_listen: None,
        ssh_advertise: None,
        state_dir: state.to_path_buf(),
        tls_cert: None,
        tls_key: None,
        offline_grace: "0s".into(),
        failover_servers: Vec::new(),
        cut_after_silence: "5m".into(),
        metrics_listen: None,
        device_timeout: "2s".into(),
        event_sync_interval: "100ms".into(),
        client_limits: Default::default(),
        recordings: Default::default(),
    };
    let gw = jitgate_gateway::runtime::start(config).await.unwrap();
    while !gw
        .gateway
        .control_connected
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw
}

async fn run(label: &str, store: Store, tls: bool) -> (f64, f64) {
    let data = tempfile::tempdir().unwrap();
    let (server, base) = start(store, data.path(), tls).await;
    let mut http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS);
    let mut fingerprint = None;
    if let Some(info) = &server.tls {
        // Clients trust the generated CA only; the gateway pins the certificate.
        let ca = std::fs::read(info.ca_file.as_ref().unwrap()).unwrap();
        http = http
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        fingerprint = Some(info.fingerprint.clone());
    }
    let http = http.build().unwrap();
    let alice = login(&http, &base, "alice").await;
    let bob = login(&http, &base, "bob").await;
    let sam = login(&http, &base, "sam").await;
    let gw_state = tempfile::tempdir().unwrap();
    let gw = gateway(&http, &base, &sam, gw_state.path(), fingerprint).await;
    // Warm up connections and caches.
    for _ in 0..5 {
        one_lifecycle(&http, &base, &alice, &bob).await;
    }

    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base) = (http.clone(), base.clone());
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

    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, alice, bob) = (http.clone(), base.clone(), alice.clone(), bob.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..LIFECYCLES_PER_CLIENT {
                one_lifecycle(&http, &base, &alice, &bob).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = t.elapsed();
    let per_sec = (CLIENTS * LIFECYCLES_PER_CLIENT) as f64 / elapsed.as_secs_f64();
    // The teardowns go on in the background; how long until every one has its verdict?
    let total = CLIENTS * LIFECYCLES_PER_CLIENT + 5;
    let verified = loop {
        let mut tx = server.state.store.read().await.unwrap();
        let done = tx.list_teardowns("verified", 100_000).await.unwrap().len();
        let failed = tx.list_teardowns("failed", 100_000).await.unwrap().len();
        drop(tx);
        assert_eq!(failed, 0, "a teardown failed during the benchmark");
        if done >= total || t.elapsed() > Duration::from_secs(300) {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all_verified_after = t.elapsed();
    // A snapshot: teardowns of the revoked grants may still be appending events.
    let chain = server
        .state
        .store
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
        "| {label} | {CLIENTS} | {} | {:.1} s | **{per_sec:.0}** | {baseline:.0} | {verified} verified, all after {:.1} s | {} |",
        CLIENTS * LIFECYCLES_PER_CLIENT,
        elapsed.as_secs_f64(),
        all_verified_after.as_secs_f64(),
        chain.events
    );
    gw.stop().await;
    server.stop().await.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    (per_sec, baseline)
}

#[tokio::main]
async fn main() {
    println!("| backend | clients | lifecycles | wall time | lifecycles/s | baseline GET /healthz req/s | teardowns | events in chain |");
    println!("|---|---|---|---|---|---|---|---|");
    // Plain HTTP on loopback (the quickstart), then TLS on the API and the control channel
    // (a deployment), on each backend.
    for tls in [false, true] {
        let over = if tls { ", TLS" } else { "" };
        let (store, _dir) = jitgate_testkit::sqlite_store().await;
        run(&format!("SQLite (WAL){over}"), store, tls).await;
        match jitgate_testkit::postgres_store().await {
            Some(pg) => {
                run(&format!("PostgreSQL{over}"), pg.store.clone(), tls).await;
                pg.cleanup().await;
            }
            None => println!("| PostgreSQL | skipped: not reachable | | | | | | |"),
        }
    }
}
