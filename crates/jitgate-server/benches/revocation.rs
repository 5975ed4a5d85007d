//! Revocation-to-cut latency and expiry precision, on loopback, in one run:
//!
//! - the real server (SQLite), two real gateways (gw-north fronting plc-7, gw-b fronting
//!   plc-3) with their WebSocket control channels, the simulated PLC as both devices;
//! - 100 live sessions (real TLS tunnels with proof of possession), 50 per gateway, each
//!   with a reader blocked on its socket;
//! - **revocation**: ≥ 200 times, revoke one grant through the API and measure from the
//!   moment the call returns to the moment its client's connection reads end-of-stream; the
//!   session is replaced so 100 stay live;
//! - **expiry**: 200 sessions whose grants expire at staggered times; measure from each
//!   grant's `expires_at` to its client's end-of-stream (wall clock);
//! - **baselines**, same run: an API round trip (`GET /healthz`) and a plain loopback TCP
//!   close seen by a blocked reader — what any cut costs at the least.
//!
//! `cargo bench -p jitgate-server --bench revocation`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jitgate_core::event::Actor;
use jitgate_core::{Inventory, SystemClock, Timestamp};
use jitgate_credential::ClientKey;
use jitgate_gateway::config::GatewayConfig;
use jitgate_gateway::connect::{open_tunnel, Target};
use jitgate_gateway::wire::TokenResponse;
use jitgate_server::config::ServerConfig;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

const LIVE: usize = 100;
const REVOCATIONS: usize = 240;
const EXPIRY_ROUNDS: usize = 2;
const PLANT: &str = include_str!("../../../examples/plant.toml");

struct Api {
    http: reqwest::Client,
    base: String,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Api {
    async fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        }
        .bearer_auth(&self.tokens[who]);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status}: {v}");
        v
    }
}

/// The time a session's client saw its connection end.
struct Live {
    grant: String,
    expires_at: Timestamp,
    ended: oneshot::Receiver<(Instant, Timestamp)>,
}

async fn open_session(api: &Api, asset: &str, duration: &str) -> Live {
    let req = api
        .call(
            "alice",
            "POST",
            "/api/v1/requests",
            Some(json!({"scope": [{"asset": asset, "modbus": ["read holding 0-99 unit 1"]}],
                "duration": duration, "reason": "benchmark", "reference": "BENCH", "path": "planned"})),
        )
        .await;
    let id = req["id"].as_str().unwrap();
    let approved = api
        .call(
            "bob",
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some(json!({"scope_digest": req["scope_digest"]})),
        )
        .await;
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let key = ClientKey::generate();
    let token: TokenResponse = serde_json::from_value(
        api.call(
            "alice",
            "POST",
            &format!("/api/v1/grants/{grant}/token"),
            Some(json!({"public_key": key.public_b64()})),
        )
        .await,
    )
    .unwrap();
    let expires_at = token.expires_at;
    let (mut stream, verdict) = open_tunnel(&Target {
        token,
        key,
        protocol: None,
    })
    .await
    .unwrap();
    assert!(verdict.ok);
    let (tx, ended) = oneshot::channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send((Instant::now(), chrono::Utc::now()));
    });
    Live {
        grant,
        expires_at,
        ended,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(label: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "{label:<44} n={:<4} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().unwrap()
    )
}

async fn gateway(
    api: &Api,
    id: &str,
    state: &std::path::Path,
) -> jitgate_gateway::runtime::RunningGateway {
    let key = api
        .call(
            "sam",
            "POST",
            "/api/v1/api-keys",
            Some(json!({"identity": id, "name": "bench"})),
        )
        .await;
    let config = GatewayConfig {
        server: api.base.clone(),
        server_fingerprint: None,
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let store = jitgate_store::Store::open_data_dir(data.path()).await.unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            ..ServerConfig::default()
        };
        // Alice holds the 100 live grants (and the expiring ones) at once: the per-requester
        // cap on open requests (an abuse limit, 20 by default) would refuse the load measured.
        config.limits.max_open_requests = 100_000;
        let server = jitgate_server::start_with_store(config, Arc::new(SystemClock), store)
            .await
            .unwrap();
        let plc = jitgate_gateway::modbus::sim::start("127.0.0.1:0".parse().unwrap(), vec![1, 2])
            .await
            .unwrap();
        // Two gateways: gw-north fronts plc-7, a second one (gw-b) fronts plc-3.
        let mut inv = Inventory::from_toml(PLANT).unwrap();
        let mut gw_b = inv.identities.iter().find(|i| i.id == "gw-north").unwrap().clone();
        gw_b.id = "gw-b".into();
        inv.identities.push(gw_b);
        for a in inv.assets.iter_mut().filter(|a| a.id == "plc-7" || a.id == "plc-3") {
            a.endpoints.modbus.as_mut().unwrap().address = plc.local_addr().to_string();
            if a.id == "plc-3" {
                a.gateway = Some("gw-b".into());
            }
        }
        jitgate_server::service::load_inventory(&server.state, Actor::system(), &inv)
            .await
            .unwrap();
        {
            let mut tx = server.state.store.write().await.unwrap();
            for who in ["alice", "bob", "sam"] {
                tx.set_password(who, &jitgate_server::auth::hash_password("benchmark-password").unwrap())
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        let http = reqwest::Client::new();
        let base = format!("http://{}", server.addr);
        let mut tokens = std::collections::HashMap::new();
        for who in ["alice", "bob", "sam"] {
            let v: Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"identity": who, "password": "benchmark-password"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.insert(who, v["token"].as_str().unwrap().to_string());
        }
        let api = Api { http, base, tokens };
        let states = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let gw_north = gateway(&api, "gw-north", states[0].path()).await;
        let gw_b = gateway(&api, "gw-b", states[1].path()).await;
        let asset_of = |i: usize| if i.is_multiple_of(2) { "plc-7" } else { "plc-3" };

        // Baseline 1: one API round trip.
        let mut api_rtt = Vec::new();
        for _ in 0..REVOCATIONS {
            let t = Instant::now();
            api.http.get(format!("{}/healthz", api.base)).send().await.unwrap();
            api_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        // Baseline 2: a loopback TCP close seen by a blocked reader.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tcp_close = Vec::new();
        for _ in 0..REVOCATIONS {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server_side, _) = listener.accept().await.unwrap();
            let reader = tokio::spawn(async move {
                let mut b = [0u8; 8];
                let _ = client.read(&mut b).await;
                Instant::now()
            });
            tokio::time::sleep(Duration::from_millis(1)).await;
            let t = Instant::now();
            drop(server_side);
            let seen = reader.await.unwrap();
            tcp_close.push(seen.duration_since(t).as_secs_f64() * 1000.0);
        }

        // Revocation: 100 live sessions; revoke one at a time, replace it.
        let mut live: Vec<Live> = Vec::new();
        for i in 0..LIVE {
            live.push(open_session(&api, asset_of(i), "1h").await);
        }
        let mut cut = Vec::new();
        let mut before_return = 0;
        for n in 0..REVOCATIONS {
            let slot = n % LIVE;
            let victim = std::mem::replace(&mut live[slot], open_session(&api, asset_of(slot), "1h").await);
            api.call(
                "sam",
                "POST",
                &format!("/api/v1/grants/{}/revoke", victim.grant),
                Some(json!({"reason": "benchmark"})),
            )
            .await;
            let returned = Instant::now();
            let (seen, _) = tokio::time::timeout(Duration::from_secs(10), victim.ended)
                .await
                .expect("a revoked session was not cut within 10 s")
                .unwrap();
            if seen < returned {
                before_return += 1;
            }
            cut.push(seen.saturating_duration_since(returned).as_secs_f64() * 1000.0);
        }
        let live_at_end = gw_north.gateway.live_sessions() + gw_b.gateway.live_sessions();

        // Expiry: grants of 10..19 s, ten of each, 100 at a time.
        let mut expiry = Vec::new();
        for _ in 0..EXPIRY_ROUNDS {
            let mut batch = Vec::new();
            for i in 0..LIVE {
                batch.push(open_session(&api, asset_of(i), &format!("{}s", 10 + i % 10)).await);
            }
            for s in batch {
                let (_, at) = tokio::time::timeout(Duration::from_secs(60), s.ended)
                    .await
                    .expect("a session outlived its grant by a minute")
                    .unwrap();
                expiry.push((at - s.expires_at).num_microseconds().unwrap() as f64 / 1000.0);
            }
        }
        let early = expiry.iter().filter(|ms| **ms < 0.0).count();

        println!("\nrevocation and expiry, loopback, SQLite, 2 gateways, {LIVE} live sessions");
        println!("{}", summary("baseline: API round trip (GET /healthz)", api_rtt));
        println!("{}", summary("baseline: loopback TCP close seen by reader", tcp_close));
        println!("{}", summary("revoke returned -> client connection closed", cut));
        println!(
            "  ({before_return} of {REVOCATIONS} cut before the revoke call had returned; counted as 0 ms; {live_at_end} sessions live at the end)"
        );
        println!("{}", summary("expires_at -> client connection closed", expiry));
        println!("  ({early} cut before expires_at)");
        for l in live {
            drop(l);
        }
        gw_north.stop().await;
        gw_b.stop().await;
        server.stop().await;
        plc.shutdown().await;
    });
}
