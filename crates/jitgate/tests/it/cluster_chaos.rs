//! The chaos test (docs/cluster.md, "Tested"): three real `jitgate serve` nodes on one
//! PostgreSQL database, one real gateway in front of the simulated PLC with the other nodes
//! as `failover_servers`, client tasks driving `JITGATE_CHAOS_LIFECYCLES` (default 1,000)
//! lifecycles spread over the nodes — request, approve, then revoke, or a short grant left to
//! expire — and a few Modbus sessions through the gateway on short grants. Meanwhile a
//! chaos thread kills (SIGKILL) nodes and the gateway at moments drawn from a seeded RNG
//! (printed; `JITGATE_CHAOS_SEED` replays it) and restarts each within a bounded time, one
//! process down at a time. Afterwards:
//!
//! - every answered API call's event is in the log, each ended grant ended once with one
//!   final `verified` teardown verdict and no `failed` attempt (the checks of
//!   `cluster_load.rs`; an attempt that found the gateway away waits for it);
//! - every Modbus operation the client saw answered is in the log, in order, under its
//!   session (the gateway's write-ahead file), and every session the client opened ended;
//! - no session was served more than 1 s past its grant's expiry: neither as the client saw
//!   it (its last answer) nor as the log has it (`session.ended` times; a session cut by the
//!   gateway's death is ended `gateway_restarted` by the next process, later by design);
//! - the chain verifies on every node.

use crate::cluster_load::{
    all_events, assert_chain_verifies, check_lifecycles, settled, Load, Row,
};
use crate::cluster_nodes::{attached_to, call, people, start_cluster, wait_for, Gateway, Node};
use chrono::Utc;
use jitgate_core::Timestamp;
use jitgate_gateway::connect::{open_tunnel, Target};
use jitgate_gateway::wire::TokenResponse;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// Client tasks driving lifecycles.
const CLIENTS: usize = 6;
/// Kills in a run: of a node (drawn among the three), of the gateway.
const NODE_KILLS: usize = 4;
const GATEWAY_KILLS: usize = 2;
/// Lifecycles that open a Modbus session through the gateway.
const SESSIONS: usize = 6;
/// How long the grants with a Modbus session last. Longer than the other short grants:
/// every node and this process reach the gateway from 127.0.0.1, so in a burst of teardown
/// probes the gateway's cap on connections still authenticating per source address
/// (`too_many_pending`, 8) closes some of the client's tunnels at once; it tries again.
const SESSION_GRANT: &str = "20s";
/// How long past its grant's expiry a session may still be served at most.
const EXPIRY_SLACK: chrono::Duration = chrono::Duration::seconds(1);
/// How long one process stays down at most before it is started again.
const MAX_DOWN_MS: u64 = 1500;

fn lifecycles() -> usize {
    std::env::var("JITGATE_CHAOS_LIFECYCLES")
        .ok()
        .map(|v| v.parse().expect("JITGATE_CHAOS_LIFECYCLES: a number"))
        .unwrap_or(1000)
}

fn seed() -> u64 {
    std::env::var("JITGATE_CHAOS_SEED")
        .ok()
        .map(|v| v.parse().expect("JITGATE_CHAOS_SEED: a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// One Modbus session as the client saw it.
#[derive(Debug)]
struct Session {
    id: String,
    /// The register of each answered read, in order.
    answered: Vec<u64>,
}

/// What the client of one short grant saw through the gateway.
#[derive(Debug)]
struct Seen {
    grant: String,
    expires_at: Timestamp,
    sessions: Vec<Session>,
    /// When the last answer arrived (`None`: none did).
    last_answer: Option<Timestamp>,
    /// Why tunnels were refused (the gateway away, the grant expired), each reason once.
    refused: Vec<String>,
}

/// The grant's token, from whichever node answers first, before the grant expires; `None`
/// when none did in time (the log has the grant regardless).
async fn token(
    load: &Load,
    grant: &str,
    key: &jitgate_credential::ClientKey,
) -> Option<TokenResponse> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut at = 0;
    while Instant::now() < deadline {
        let got = call(
            &load.http,
            &load.urls[at],
            Some(&load.alice),
            "POST",
            &format!("/grants/{grant}/token"),
            json!({"public_key": key.public_b64()}),
        )
        .await;
        if let Ok(v) = got {
            return Some(serde_json::from_value(v).unwrap());
        }
        at = (at + 1) % load.urls.len();
        // Not a timing assumption: only keeps the client from spinning on dead nodes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Read holding registers through the gateway under `grant` until 2 s past its expiry,
/// opening a new session whenever one ends (the gateway was killed: it comes back).
async fn modbus_client(load: Arc<Load>, grant: String) -> Option<Seen> {
    let key = jitgate_credential::ClientKey::generate();
    let token = token(&load, &grant, &key).await?;
    let expires_at = token.expires_at;
    let target = Target {
        token,
        key,
        protocol: None,
    };
    let mut seen = Seen {
        grant,
        expires_at,
        sessions: Vec::new(),
        last_answer: None,
        refused: Vec::new(),
    };
    let mut addr: u16 = 0;
    while Utc::now() < expires_at + chrono::Duration::seconds(2) {
        let (mut tls, verdict) = match open_tunnel(&target).await {
            Ok(open) => open,
            Err(e) => {
                // The gateway is down, or the grant has expired: refused.
                let e = e.to_string();
                if !seen.refused.contains(&e) {
                    seen.refused.push(e);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut session = Session {
            id: verdict.session.expect("an accepted session has an id"),
            answered: Vec::new(),
        };
        loop {
            let mut req = [0u8; 12];
            req[..2].copy_from_slice(&addr.to_be_bytes());
            req[5] = 6;
            req[6] = 1;
            req[7] = 3;
            req[8..10].copy_from_slice(&addr.to_be_bytes());
            req[10..12].copy_from_slice(&1u16.to_be_bytes());
            if tls.write_all(&req).await.is_err() {
                break;
            }
            let mut resp = [0u8; 11];
            match tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut resp)).await {
                Ok(Ok(_)) => {}
                _ => break, // cut (expiry, the gateway killed)
            }
            seen.last_answer = Some(Utc::now());
            assert_eq!(resp[7], 3, "a normal FC3 answer: {resp:?}");
            assert_eq!(
                resp[9..11],
                addr.to_be_bytes(),
                "register {addr} holds {addr}"
            );
            session.answered.push(u64::from(addr));
            addr = (addr + 1) % 100;
            // Pacing, not timing: a few hundred operations per session are enough.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen.sessions.push(session);
    }
    Some(seen)
}

/// What the run shares between the clients and the chaos thread.
struct Run {
    load: Arc<Load>,
    total: usize,
    next: AtomicUsize,
    /// Lifecycles finished, however far they got.
    done: AtomicUsize,
    sessions: Mutex<Vec<tokio::task::JoinHandle<Option<Seen>>>>,
}

/// Lifecycles until `total` are taken. Each starts on node `i % 3` and moves on to the
/// next node while none answers its request; it stays on the node that did.
async fn client(run: Arc<Run>) {
    let nodes = run.load.urls.len();
    let stride = (run.total / SESSIONS).max(1);
    loop {
        let i = run.next.fetch_add(1, Ordering::SeqCst);
        if i >= run.total {
            return;
        }
        let with_session = i.is_multiple_of(stride);
        let short = with_session || i % 3 == 2;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut at = i % nodes;
        let lifecycle = loop {
            let l = if with_session {
                run.load.lifecycle_lasting(at, true, SESSION_GRANT).await
            } else {
                run.load.lifecycle(at, short).await
            };
            if l.requested {
                break l;
            }
            assert!(Instant::now() < deadline, "no node answered for 60 s");
            at = (at + 1) % nodes;
            // Not a timing assumption: only keeps a client from spinning on a dead node.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if let (true, Some(grant)) = (with_session, lifecycle.grant) {
            let task = tokio::spawn(modbus_client(run.load.clone(), grant));
            run.sessions.lock().unwrap().push(task);
        }
        run.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Who is killed.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Node(usize),
    Gateway,
}

/// The chaos: each kill at a moment drawn from `rng` (once that many lifecycles are done,
/// plus up to 300 ms), the process started again after 100–1500 ms. One process is down at
/// a time, so two nodes always serve. Returns what it did, for the report.
fn chaos(run: &Run, nodes: &mut [Node], gateway: &mut Gateway, rng: &mut StdRng) -> Vec<String> {
    let (lo, hi) = (run.total / 20, (run.total * 9 / 10).max(run.total / 20 + 1));
    let mut plan: Vec<(usize, Victim)> = Vec::new();
    for _ in 0..NODE_KILLS {
        let n = rng.gen_range(0..nodes.len());
        plan.push((rng.gen_range(lo..hi), Victim::Node(n)));
    }
    for _ in 0..GATEWAY_KILLS {
        plan.push((rng.gen_range(lo..hi), Victim::Gateway));
    }
    plan.sort_by_key(|(at, _)| *at);
    let started = Instant::now();
    let mut done = Vec::new();
    for (at, victim) in plan {
        wait_for("lifecycles before a kill", Duration::from_secs(120), || {
            (run.done.load(Ordering::SeqCst) >= at).then_some(())
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
        let down = Duration::from_millis(rng.gen_range(100..MAX_DOWN_MS));
        let when = started.elapsed();
        let progress = run.done.load(Ordering::SeqCst);
        match victim {
            Victim::Node(n) => {
                nodes[n].kill();
                std::thread::sleep(down);
                nodes[n].start();
            }
            Victim::Gateway => {
                gateway.kill();
                std::thread::sleep(down);
                gateway.restart();
            }
        }
        let name = match victim {
            Victim::Node(n) => nodes[n].id.clone(),
            Victim::Gateway => "gw-north".to_string(),
        };
        done.push(format!(
            "{name} killed at {:.1} s ({progress} lifecycles done), down {} ms, serving again after {:.1} s",
            when.as_secs_f64(),
            down.as_millis(),
            (started.elapsed() - when).as_secs_f64()
        ));
    }
    done
}

#[test]
fn lifecycles_and_sessions_through_random_kills_of_nodes_and_the_gateway() {
    let started = Instant::now();
    let seed = seed();
    let total = lifecycles();
    eprintln!(
        "cluster_chaos: seed {seed} (JITGATE_CHAOS_SEED={seed} replays it), {total} lifecycles"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(pg) = rt.block_on(jitgate_testkit::postgres_store()) else {
        return;
    };
    let plc = rt
        .block_on(jitgate_gateway::modbus::sim::start(
            "127.0.0.1:0".parse().unwrap(),
            vec![1],
        ))
        .unwrap();
    for n in 0..100u16 {
        plc.set_holding(1, n, n);
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = crate::cluster_nodes::inventory(tmp.path(), plc.local_addr());
    // alice files every request; many are open at once (the per-requester cap is an abuse
    // limit, not what this tests).
    let (mut nodes, sam_password) = start_cluster(
        tmp.path(),
        &pg.url(),
        &inventory,
        &NODES,
        "[limits]\nmax_open_requests = 100000\n",
    );
    eprintln!(
        "cluster_chaos: nodes up at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    let http = reqwest::Client::new();
    let tokens = rt.block_on(people(&http, &urls[0], &sam_password, &["alice", "bob"]));
    let sam = tokens[2].clone();
    let mut gateway = rt.block_on(Gateway::start(&http, tmp.path(), &urls, &sam, ""));
    wait_for(
        "gw-north attached to node-a",
        Duration::from_secs(30),
        || {
            (rt.block_on(attached_to(&http, &urls[1], &sam, "gw-north"))
                .as_deref()
                == Some("node-a"))
            .then_some(())
        },
    );

    let run = Arc::new(Run {
        load: Arc::new(Load::new(&urls, &tokens[0], &tokens[1], &http)),
        total,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        sessions: Mutex::default(),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| rt.spawn(client(run.clone())))
        .collect();
    let kills = chaos(&run, &mut nodes, &mut gateway, &mut rng);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    let load_done = started.elapsed();
    eprintln!(
        "cluster_chaos: load done at {:.1} s; kills:\n  {}",
        load_done.as_secs_f64(),
        kills.join("\n  ")
    );
    let seen: Vec<Seen> = std::mem::take(&mut *run.sessions.lock().unwrap())
        .into_iter()
        .filter_map(|t| rt.block_on(t).unwrap())
        .collect();
    for s in &seen {
        eprintln!(
            "cluster_chaos: grant {}: {} sessions, {} operations answered, refused: {:?}",
            s.grant,
            s.sessions.len(),
            s.sessions.iter().map(|s| s.answered.len()).sum::<usize>(),
            s.refused
        );
    }
    let answered = std::mem::take(&mut *run.load.answered.lock().unwrap());
    assert!(
        answered.grants.values().any(|&short| short) && !answered.revoked.is_empty(),
        "both kinds of lifecycle were answered"
    );
    assert!(
        seen.iter().any(|s| s.last_answer.is_some()),
        "some Modbus operation was answered through the gateway: {seen:#?}"
    );

    // The API calls: every answered one in the log, one final verdict per ended grant.
    let events = settled(&rt, &pg.store, &answered, Duration::from_secs(120));
    let ended = check_lifecycles(&events, &answered);
    eprintln!(
        "cluster_chaos: grants settled at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The sessions: every one the client opened has ended in the log (a killed gateway's
    // sessions once the next process has delivered its write-ahead file).
    let events = wait_for(
        "every session ended in the log",
        Duration::from_secs(60),
        || {
            let events = rt.block_on(all_events(&pg.store));
            let logged = sessions_in(&events);
            seen.iter()
                .flat_map(|s| &s.sessions)
                .all(|s| logged.get(&s.id).is_some_and(|l| !l.ended.is_empty()))
                .then_some(events)
        },
    );
    let logged = sessions_in(&events);
    let mut operations = 0;
    for grant in &seen {
        let late = grant.expires_at + EXPIRY_SLACK;
        if let Some(last) = grant.last_answer {
            assert!(
                last <= late,
                "grant {}: an answer at {last}, more than 1 s after its expiry at {}",
                grant.grant,
                grant.expires_at
            );
        }
        for s in &grant.sessions {
            let log = &logged[&s.id];
            operations += s.answered.len();
            assert!(
                log.addresses.len() >= s.answered.len()
                    && log.addresses[..s.answered.len()] == s.answered[..]
                    && log.addresses.len() <= s.answered.len() + 1,
                "session {} of grant {}: every answered operation recorded once, in order \
                 (at most the one in flight more): answered {:?}, logged {:?}",
                s.id,
                grant.grant,
                s.answered,
                log.addresses
            );
            assert_eq!(
                log.ended.len(),
                1,
                "session {}: one end: {:?}",
                s.id,
                log.ended
            );
            let (reason, at) = &log.ended[0];
            assert!(
                reason == "gateway_restarted" || *at <= late,
                "session {} of grant {}: ended ({reason}) at {at}, more than 1 s after the \
                 grant's expiry at {}",
                s.id,
                grant.grant,
                grant.expires_at
            );
        }
    }

    assert_chain_verifies(&rt, &http, &urls, &sam);
    eprintln!(
        "cluster_chaos: seed {seed}: {total} lifecycles ({} answered calls: {} requests, {} \
         grants, {} revoked, {} lapsed before approval; {ended} grants ended and verified) in \
         {:.1} s, all checked at {:.1} s; {} Modbus sessions on {} grants, {operations} \
         answered operations, all recorded",
        run.load.total.load(Ordering::SeqCst),
        answered.requests.len(),
        answered.grants.len(),
        answered.revoked.len(),
        answered.lapsed.len(),
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        seen.iter().map(|s| s.sessions.len()).sum::<usize>(),
        seen.len(),
    );
    drop(gateway);
    drop(nodes);
    rt.block_on(plc.shutdown());
    rt.block_on(pg.cleanup());
}

/// What the log holds of one session.
#[derive(Debug, Default)]
struct Logged {
    /// The register of each recorded operation, in the log's order.
    addresses: Vec<u64>,
    /// Its `session.ended` events: the reason and when.
    ended: Vec<(String, Timestamp)>,
}

fn sessions_in(events: &[Row]) -> HashMap<String, Logged> {
    let mut out: HashMap<String, Logged> = HashMap::new();
    for e in events {
        let Some(sid) = e.data["session_id"].as_str() else {
            continue;
        };
        let detail = &e.data["detail"];
        match e.kind.as_str() {
            "operation" => out
                .entry(sid.to_string())
                .or_default()
                .addresses
                .push(detail["address"].as_u64().unwrap()),
            "session.ended" => out.entry(sid.to_string()).or_default().ended.push((
                detail["reason"].as_str().unwrap_or_default().to_string(),
                e.at,
            )),
            _ => {}
        }
    }
    out
}
