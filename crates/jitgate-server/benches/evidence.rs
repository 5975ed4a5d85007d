//! Evidence log throughput and cost, measured through the store and the server.
//!
//! `cargo bench -p jitgate-server --bench evidence` (PostgreSQL rows from JITGATE_TEST_PG,
//! default postgres://postgres@127.0.0.1:5432/test; skipped loudly when unreachable).
//!
//! 1. **Appends/s** with concurrent writers on SQLite: `Store::write` + `append_events` +
//!    commit, one transaction per batch (what the gateway endpoint does with each delivery),
//!    for several writer counts and batch sizes, at `synchronous=NORMAL` (the store's
//!    setting) and `synchronous=FULL`. Baseline in the same run: the same rows, batches and
//!    writers into a plain table with no hash chain and no chain head.
//! 2. **Full-log verification** of 200,000 events with 20 checkpoints, as `jitgate evidence
//!    verify` runs it (rows read from the database in one snapshot, chain + Merkle tree +
//!    signatures + chain head). Baselines in the same run: reading the rows alone, and the
//!    store's older chain-only `verify_chain`.
//! 3. **Bundle of a grant with 10,000 operations** in that log: export through the API
//!    (cold: the tree is built and the log verified first; warm), size, and offline
//!    `verify_bundle`. Baseline: parsing the same bytes as plain JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jitgate_core::event::{Actor, Event, EventKind};
use jitgate_core::{Inventory, SystemClock};
use jitgate_server::config::ServerConfig;
use jitgate_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PLANT: &str = include_str!("../../../examples/plant.toml");
const LOG_EVENTS: i64 = 200_000;
const GRANT_OPS: usize = 10_000;
const ROUNDS: usize = 5;

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// A gateway operation event as the server records it (≈ 330 bytes canonical).
fn operation(i: usize, grant: &str, request: &str) -> Event {
    Event::new(
        EventKind::Operation,
        Actor::identity("gw-north"),
        chrono::Utc::now(),
    )
    .grant(grant)
    .request(request)
    .data(json!({
        "gseq": i,
        "session_id": format!("sess-{grant}"),
        "detail": {"function": "read holding registers", "unit": 1, "address": i % 100,
                   "count": 10, "verdict": "allowed", "asset": "plc-7"},
    }))
}

// ---------------------------------------------------------------- 1. appends

/// `writers` tasks append `total` events in batches of `batch`, one transaction each.
async fn appends(store: &Store, writers: usize, batch: usize, total: usize) -> f64 {
    let per_writer = total / writers;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let events: Vec<Event> = (0..batch)
                .map(|i| operation(i, &format!("grant-w{w}"), "req-bench"))
                .collect();
            for _ in 0..per_writer / batch {
                let mut tx = store.write().await.unwrap();
                tx.append_events(&events).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per_writer / batch * batch * writers) as f64 / t.elapsed().as_secs_f64()
}

/// The baseline: the same rows into a table without the chain, batches and writers
/// serialised the same way (one SQLite writer at a time).
async fn plain_inserts(store: &Store, writers: usize, batch: usize, total: usize) -> f64 {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let per_writer = total / writers;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, lock) = (store.clone(), lock.clone());
        tasks.push(tokio::spawn(async move {
            let rows: Vec<(String, String)> = (0..batch)
                .map(|i| {
                    let e = operation(i, &format!("grant-w{w}"), "req-bench");
                    (
                        e.kind.as_str().to_string(),
                        String::from_utf8(e.canonical_bytes()).unwrap(),
                    )
                })
                .collect();
            let mut sql = String::from("INSERT INTO bench_plain (kind, canonical) VALUES ");
            for n in 0..batch {
                if n > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${})", 2 * n + 1, 2 * n + 2));
            }
            for _ in 0..per_writer / batch {
                let _g = lock.lock().await;
                let mut tx = store.pool().begin().await.unwrap();
                let mut q = sqlx::query(&sql);
                for (k, c) in &rows {
                    q = q.bind(k.clone()).bind(c.clone());
                }
                q.execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per_writer / batch * batch * writers) as f64 / t.elapsed().as_secs_f64()
}

/// Set `synchronous` on every pooled connection (the store sets NORMAL on new ones).
async fn set_synchronous(store: &Store, mode: &str) {
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut c = store.pool().acquire().await.unwrap();
        sqlx::query(&format!("PRAGMA synchronous = {mode}"))
            .execute(&mut *c)
            .await
            .unwrap();
        held.push(c);
    }
}

async fn bench_appends() {
    println!("\n## 1. appends/s, SQLite, concurrent writers\n");
    println!("| synchronous | writers | events/tx | events | chained appends/s | plain inserts/s (baseline) | chained / plain |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for mode in ["NORMAL", "FULL"] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(&dir.path().join("data"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, canonical TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        set_synchronous(&store, mode).await;
        // Warm-up.
        appends(&store, 2, 100, 2_000).await;
        for (writers, batch, total) in [
            (1, 1, 3_000),
            (8, 1, 4_000),
            (32, 1, 4_800),
            (1, 100, 60_000),
            (8, 100, 80_000),
            (32, 100, 96_000),
            (8, 1000, 80_000),
        ] {
            let chained = appends(&store, writers, batch, total).await;
            let plain = plain_inserts(&store, writers, batch, total).await;
            println!(
                "| {mode} | {writers} | {batch} | {total} | {chained:.0} | {plain:.0} | {:.2} |",
                chained / plain
            );
        }
        let mut tx = store.read_snapshot().await.unwrap();
        let report = tx.verify_chain().await.unwrap();
        assert!(report.is_ok(), "chain broken after the run: {report:?}");
        drop(tx);
        store.close().await;
    }
}

// ---------------------------------------------------------------- 2. + 3. verify, bundle

async fn start(store: Store, data: &std::path::Path) -> (jitgate_server::RunningServer, String) {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        ..ServerConfig::default()
    };
    config.evidence.checkpoint_interval = "0s".into();
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
    let base = format!("http://{}", server.addr);
    (server, base)
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    req = req.bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
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

async fn fill(store: &Store, n: i64) {
    let events: Vec<Event> = (0..1000)
        .map(|i| operation(i, "grant-other", "req-other"))
        .collect();
    let mut left = n;
    while left > 0 {
        let take = left.min(1000) as usize;
        let mut tx = store.write().await.unwrap();
        tx.append_events(&events[..take]).await.unwrap();
        tx.commit().await.unwrap();
        left -= take as i64;
    }
}

async fn bench_log(label: &str, store: Store) {
    let data = tempfile::tempdir().unwrap();
    let (server, base) = start(store, data.path()).await;
    let state = server.state.clone();
    let http = reqwest::Client::new();
    let (alice, bob, sam) = (
        login(&http, &base, "alice").await,
        login(&http, &base, "bob").await,
        login(&http, &base, "sam").await,
    );
    // The big grant: approved, then 10,000 operations delivered by the gateway in batches of
    // 1,000, interleaved with other traffic, up to LOG_EVENTS events with 20 checkpoints.
    let req = call(&http, "POST", format!("{base}/api/v1/requests"), &alice,
        Some(json!({"scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}], "duration": "8h",
                    "reason": "benchmark", "reference": "BENCH", "path": "planned"}))).await;
    let id = req["id"].as_str().unwrap();
    let approved = call(
        &http,
        "POST",
        format!("{base}/api/v1/requests/{id}/approve"),
        &bob,
        Some(json!({"scope_digest": req["scope_digest"]})),
    )
    .await;
    let grant = approved["grant"]["id"].as_str().unwrap().to_string();
    let key = call(
        &http,
        "POST",
        format!("{base}/api/v1/api-keys"),
        &sam,
        Some(json!({"identity": "gw-north", "name": "bench"})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let slice = (LOG_EVENTS - 30_000) / 10;
    for b in 0..10 {
        let mut events = Vec::new();
        if b == 0 {
            events.push(
                json!({"gseq": 1, "kind": "session.started", "at": chrono::Utc::now(),
                "grant_id": grant, "session_id": "s-1", "data": {"asset": "plc-7"}}),
            );
        }
        for i in 0..GRANT_OPS / 10 {
            let n = b * GRANT_OPS / 10 + i;
            events.push(json!({"gseq": 2 + n, "kind": "operation", "at": chrono::Utc::now(),
                "grant_id": grant, "session_id": "s-1",
                "data": {"function": "read holding registers", "unit": 1, "address": n % 100, "count": 10, "verdict": "allowed"}}));
        }
        if b == 9 {
            events.push(
                json!({"gseq": 2 + GRANT_OPS, "kind": "session.ended", "at": chrono::Utc::now(),
                "grant_id": grant, "session_id": "s-1", "data": {}}),
            );
        }
        call(
            &http,
            "POST",
            format!("{base}/api/v1/gateway/events"),
            &key,
            Some(json!({"events": events})),
        )
        .await;
        for _ in 0..2 {
            fill(&state.store, slice / 2).await;
            jitgate_server::evidence::sign_checkpoint(&state, true)
                .await
                .unwrap();
        }
    }
    call(
        &http,
        "POST",
        format!("{base}/api/v1/grants/{grant}/revoke"),
        &alice,
        Some(json!({"reason": "benchmark"})),
    )
    .await;
    let head = state
        .store
        .read()
        .await
        .unwrap()
        .chain_tip()
        .await
        .unwrap()
        .0;
    fill(&state.store, LOG_EVENTS - head).await;
    let n = state
        .store
        .read()
        .await
        .unwrap()
        .chain_tip()
        .await
        .unwrap()
        .0;
    eprintln!("{label}: built a log of {n} events in {:?}", t.elapsed());

    // 2. Full-log verification, as `jitgate evidence verify` runs it.
    let page = jitgate_server::evidence::verify_page(state.store.backend());
    // The bulk read `verify` does (`Store::scan_log`: rusqlite / binary COPY), no checks.
    let read_only = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut scan = state.store.scan_log(None).await.unwrap();
            let mut bytes = 0usize;
            while let Some(page) = scan.next().await {
                bytes += page
                    .unwrap()
                    .iter()
                    .map(|l| l.canonical.len())
                    .sum::<usize>();
            }
            std::hint::black_box(bytes);
            d.push(t.elapsed());
        }
        d
    });
    // Pages through sqlx (`Tx::event_rows`; on SQLite 1,000 rows packed into one value):
    // the read path `verify` had before the scan.
    let paged = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut tx = state.store.read_snapshot().await.unwrap();
            let mut after = 0;
            let mut bytes = 0usize;
            loop {
                let rows = tx.event_rows(after, None, page).await.unwrap();
                let Some(last) = rows.last() else { break };
                after = last.seq;
                bytes += rows.iter().map(|r| r.canonical.len()).sum::<usize>();
            }
            std::hint::black_box(bytes);
            tx.commit().await.unwrap();
            d.push(t.elapsed());
        }
        d
    });
    // The drivers' row-by-row read, what a plain `SELECT … ORDER BY seq` costs.
    let per_row = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut after = 0i64;
            let mut bytes = 0usize;
            loop {
                let rows = sqlx::query(
                    "SELECT seq, prev_hash, hash, canonical FROM events WHERE seq > $1 \
                     ORDER BY seq LIMIT 20000",
                )
                .bind(after)
                .fetch_all(state.store.pool())
                .await
                .unwrap();
                let Some(last) = rows.last() else { break };
                after = sqlx::Row::try_get(last, 0).unwrap();
                for r in &rows {
                    let c: String = sqlx::Row::try_get(r, 3).unwrap();
                    let h: String = sqlx::Row::try_get(r, 2).unwrap();
                    let p: String = sqlx::Row::try_get(r, 1).unwrap();
                    bytes += c.len() + h.len() + p.len();
                }
            }
            std::hint::black_box(bytes);
            d.push(t.elapsed());
        }
        d
    });
    // The pure check over rows already in memory (no database).
    let leaves: Vec<jitgate_evidence::StoredLeaf> = {
        let mut tx = state.store.read_snapshot().await.unwrap();
        let mut out = Vec::new();
        loop {
            let rows = tx.event_rows(out.len() as i64, None, page).await.unwrap();
            if rows.is_empty() {
                break;
            }
            out.extend(rows.into_iter().map(|r| jitgate_evidence::StoredLeaf {
                seq: r.seq,
                prev_hash: r.prev_hash,
                hash: r.hash,
                canonical: r.canonical,
            }));
        }
        out
    };
    let cps = jitgate_server::evidence::checkpoints(&state).await.unwrap();
    let keys = state.evidence.public_keys();
    let in_memory = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                let r = jitgate_evidence::verify_log(leaves.iter(), &cps, &keys);
                assert!(r.is_ok(), "{:?}", r.problem);
                t.elapsed()
            })
            .collect(),
    );
    drop(leaves);
    // Read and check in one task, page after page (no overlap), for comparison.
    let sequential = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut scan = state.store.scan_log(None).await.unwrap();
            let mut v = jitgate_evidence::LogVerifier::new(&cps, &keys);
            while let Some(page) = scan.next().await {
                for l in page.unwrap().iter() {
                    v.push_ref(jitgate_evidence::LeafRef {
                        seq: l.seq,
                        prev_hash: l.prev_hash,
                        hash: l.hash,
                        canonical: l.canonical,
                    });
                }
            }
            assert!(v.finish().is_ok());
            d.push(t.elapsed());
        }
        d
    });
    let chain_only = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let r = state
                .store
                .read_snapshot()
                .await
                .unwrap()
                .verify_chain()
                .await
                .unwrap();
            assert!(r.is_ok());
            d.push(t.elapsed());
        }
        d
    });
    let mut report = None;
    let full = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let v = jitgate_server::evidence::verify(&state).await.unwrap();
            d.push(t.elapsed());
            report = Some(v);
        }
        d
    });
    let report = report.unwrap();
    assert!(report.ok, "{:?}", report.problem);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "\n## 2. full-log verification, {label}: {n} events, {} checkpoints\n",
        report.checkpoints
    );
    println!("| what | median | events/s | × verify's read |");
    println!("|---|---:|---:|---:|");
    let ratio = |d: Duration| d.as_secs_f64() / read_only.as_secs_f64();
    println!(
        "| read rows one by one (driver), no checks (baseline) | {per_row:.1?} | {:.0} | {:.2} |",
        rate(per_row),
        ratio(per_row)
    );
    println!(
        "| read pages through sqlx (`Tx::event_rows`; SQLite: 1,000 rows packed per value), no checks | {paged:.1?} | {:.0} | {:.2} |",
        rate(paged),
        ratio(paged)
    );
    println!(
        "| read rows as `verify` does (`Store::scan_log`), no checks (baseline) | {read_only:.1?} | {:.0} | 1.00 |",
        rate(read_only)
    );
    println!(
        "| library `verify_log` over the rows in memory (no database) | {in_memory:.1?} | {:.0} | {:.2} |",
        rate(in_memory),
        ratio(in_memory)
    );
    println!(
        "| scan + `LogVerifier` in one task (no overlap) | {sequential:.1?} | {:.0} | {:.2} |",
        rate(sequential),
        ratio(sequential)
    );
    println!(
        "| store `verify_chain` (chain only) | {chain_only:.1?} | {:.0} | {:.2} |",
        rate(chain_only),
        chain_only.as_secs_f64() / read_only.as_secs_f64()
    );
    println!("| **`evidence verify`** (chain + Merkle + {} checkpoints + head) | {full:.1?} | **{:.0}** | {:.2} |", report.checkpoints_verified, rate(full), full.as_secs_f64() / read_only.as_secs_f64());

    // 3. The 10,000-operation grant's bundle.
    // Cold: a restarted server builds (and verifies) the tree on first use.
    let store = server.stop().await;
    let (server, base2) = {
        let config = {
            let mut c = ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: data.path().to_path_buf(),
                ..ServerConfig::default()
            };
            c.evidence.checkpoint_interval = "0s".into();
            c
        };
        let s = jitgate_server::start_with_store(config, Arc::new(SystemClock), store)
            .await
            .unwrap();
        let b = format!("http://{}", s.addr);
        (s, b)
    };
    let base = base2;
    let alice = login(&http, &base, "alice").await;
    let export_once = || async {
        let t = Instant::now();
        let text = http
            .get(format!("{base}/api/v1/grants/{grant}/evidence"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (t.elapsed(), text)
    };
    let (cold, text) = export_once().await;
    let warm = median({
        let mut d = Vec::new();
        for _ in 0..ROUNDS {
            d.push(export_once().await.0);
        }
        d
    });
    let keys = server.state.evidence.public_keys();
    let bytes = text.into_bytes();
    let parse = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(serde_json::from_slice::<Value>(&bytes).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    let mut verified = None;
    let offline = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                verified = Some(jitgate_evidence::verify_bundle(&bytes, &keys).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    let verified = verified.unwrap();
    let ops = verified.of_kind(EventKind::Operation).count();
    assert_eq!(ops, GRANT_OPS);
    let report_t = Instant::now();
    let html = jitgate_evidence::report_html(&verified);
    let report_t = report_t.elapsed();
    println!("\n## 3. bundle of a grant with {ops} operations, {label} (log of {n} events)\n");
    println!("| what | value |");
    println!("|---|---:|");
    println!("| events in the bundle | {} |", verified.events.len());
    println!(
        "| bundle size (compact JSON) | {:.2} MiB ({} bytes per event) |",
        bytes.len() as f64 / 1048576.0,
        bytes.len() / verified.events.len()
    );
    println!("| export via API, cold (tree built + whole log verified first) | {cold:.1?} |");
    println!("| export via API, warm (median) | {warm:.1?} |");
    println!("| parse as plain JSON (baseline) | {parse:.1?} |");
    println!(
        "| **offline `verify_bundle`** | **{offline:.1?}** ({:.2}× the parse) |",
        offline.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "| `report_html` | {report_t:.1?}, {:.2} MiB page |",
        html.len() as f64 / 1048576.0
    );
    server.stop().await.close().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "machine: {} CPUs; {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        bench_appends().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(&dir.path().join("data"))
            .await
            .unwrap();
        bench_log("SQLite", store).await;
        if let Some(pg) = jitgate_testkit::postgres_store().await {
            let store = pg.store.clone();
            bench_log("PostgreSQL", store).await;
            pg.cleanup().await;
        }
        println!(
            "\nload average at the end: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    });
}
