//! A node killed with SIGKILL mid-load loses nothing (docs/cluster.md, "Work done once" and
//! "After a restart"): two real `jitgate serve` nodes on one PostgreSQL database, a real
//! gateway attached to node A with node B to fail over to, and client tasks driving
//! lifecycles (request, approve, then revoke — or a short grant left to expire) on each node
//! in turn. Node A is killed after a number of answered calls and restarted while the load
//! goes on. Afterwards, from the database every node wrote to:
//!
//! - every call that answered success has its event (`request.submitted`, `grant.issued`,
//!   `grant.ended` with reason `revoked`);
//! - every ended grant ended exactly once (an expiry by whichever node's scheduler got
//!   there, never by both), and has exactly one final teardown verdict and no `failed` one;
//! - the gateway re-attached to node B, and the evidence log verifies on both nodes.

use crate::cluster_load::{assert_chain_verifies, check_lifecycles, settled, Load};
use crate::cluster_nodes::{attached_to, people, start_cluster, wait_for, Gateway};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Client tasks (each alternates between the nodes).
const CLIENTS: usize = 4;
/// Answered calls before node A is killed, while it is down, and after its restart.
const BEFORE_KILL: usize = 40;
const WHILE_DOWN: usize = 20;
const AFTER_RESTART: usize = 20;

/// Lifecycles on each node in turn, whether or not it is up; every third is a short grant
/// left to expire instead of being revoked.
async fn client(load: Arc<Load>, c: usize) {
    let mut i = c;
    while !load.stop.load(Ordering::SeqCst) {
        let at = i % load.urls.len();
        if load.lifecycle(at, i % 3 == 2).await.grant.is_none() {
            // Not a timing assumption: only keeps a client from spinning on a dead node.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        i += 1;
    }
}

#[test]
fn a_node_killed_mid_load_loses_nothing_and_its_gateway_reattaches() {
    let started = Instant::now();
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
    let tmp = tempfile::tempdir().unwrap();
    let inventory = crate::cluster_nodes::inventory(tmp.path(), plc.local_addr());
    // alice files every request; many are open at once (the per-requester cap is an abuse
    // limit, not what this tests).
    let (mut nodes, sam_password) = start_cluster(
        tmp.path(),
        &pg.url(),
        &inventory,
        &["node-a", "node-b"],
        "[limits]\nmax_open_requests = 100000\n",
    );
    let urls = [nodes[0].url(), nodes[1].url()];
    let http = reqwest::Client::new();
    let tokens = rt.block_on(people(&http, &urls[0], &sam_password, &["alice", "bob"]));
    let sam = tokens[2].clone();
    let _gw = rt.block_on(Gateway::start(&http, tmp.path(), &urls, &sam, ""));
    let attached = |at: usize| rt.block_on(attached_to(&http, &urls[at], &sam, "gw-north"));
    wait_for(
        "gw-north attached to node-a",
        Duration::from_secs(30),
        || (attached(1).as_deref() == Some("node-a")).then_some(()),
    );

    let load = Arc::new(Load::new(&urls, &tokens[0], &tokens[1], &http));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| rt.spawn(client(load.clone(), c)))
        .collect();
    let answered_at_least = |n: usize, what: &str| {
        wait_for(what, Duration::from_secs(60), || {
            (load.total.load(Ordering::SeqCst) >= n).then_some(())
        })
    };

    // Mid-load, node A dies: no shutdown, calls in flight on it get no answer.
    answered_at_least(BEFORE_KILL, "answered calls before the kill");
    nodes[0].kill();
    let at_kill = load.total.load(Ordering::SeqCst);
    wait_for(
        "gw-north attached to node-b after node-a died",
        Duration::from_secs(30),
        || (attached(1).as_deref() == Some("node-b")).then_some(()),
    );
    answered_at_least(at_kill + WHILE_DOWN, "answered calls while node A is down");

    // Back: it serves again, and answers its share of the calls.
    nodes[0].start();
    let a_before = load.by_node[0].load(Ordering::SeqCst);
    let at_restart = load.total.load(Ordering::SeqCst);
    answered_at_least(
        at_restart + AFTER_RESTART,
        "answered calls after the restart",
    );
    wait_for(
        "calls answered by the restarted node A",
        Duration::from_secs(30),
        || (load.by_node[0].load(Ordering::SeqCst) > a_before).then_some(()),
    );
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    let answered = std::mem::take(&mut *load.answered.lock().unwrap());
    assert!(
        answered.grants.values().any(|&short| short) && !answered.revoked.is_empty(),
        "both kinds of lifecycle were answered"
    );

    // Every grant that ended (answered or not) reaches one final verdict; the short ones
    // expire on their own.
    let events = settled(&rt, &pg.store, &answered, Duration::from_secs(60));
    let ended = check_lifecycles(&events, &answered);

    // The log both nodes appended to — through the kill — verifies, on each node.
    assert_chain_verifies(&rt, &http, &urls, &sam);
    assert_eq!(
        attached(0).as_deref(),
        Some("node-b"),
        "the gateway stays on node B"
    );
    eprintln!(
        "cluster_kill: {} answered calls ({} requests, {} grants, {} revoked), {ended} grants \
         ended and verified, in {:.1} s",
        load.total.load(Ordering::SeqCst),
        answered.requests.len(),
        answered.grants.len(),
        answered.revoked.len(),
        started.elapsed().as_secs_f64()
    );
    drop(nodes);
    rt.block_on(plc.shutdown());
    rt.block_on(pg.cleanup());
}
