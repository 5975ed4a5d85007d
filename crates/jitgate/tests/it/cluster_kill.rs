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

use crate::cluster_nodes::{
    attached_to, call, people, start_cluster, wait_for, CallError, Gateway,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Client tasks (each alternates between the nodes).
const CLIENTS: usize = 4;
/// Answered calls before node A is killed, while it is down, and after its restart.
const BEFORE_KILL: usize = 40;
const WHILE_DOWN: usize = 20;
const AFTER_RESTART: usize = 20;
/// Every third lifecycle is a short grant left to expire instead of being revoked.
const SHORT: &str = "3s";

/// What the nodes answered with success, as the clients saw it.
#[derive(Default)]
struct Answered {
    requests: HashSet<String>,
    /// Grants issued by an answered approval, and whether they were short.
    grants: HashMap<String, bool>,
    revoked: HashSet<String>,
    /// Answers other than success or no answer at all: none are expected.
    refusals: Vec<String>,
}

struct Load {
    urls: [String; 2],
    alice: String,
    bob: String,
    http: reqwest::Client,
    answered: Mutex<Answered>,
    /// Answered calls, in all and by node.
    total: AtomicUsize,
    by_node: [AtomicUsize; 2],
    stop: AtomicBool,
}

impl Load {
    /// One call on node `at`: `Some` when it answered success (counted), `None` when it did
    /// not answer (the node is down or died during the call: its effect is unknown).
    async fn call(&self, at: usize, who: &str, path: &str, body: Value) -> Option<Value> {
        match call(&self.http, &self.urls[at], Some(who), "POST", path, body).await {
            Ok(v) => {
                self.total.fetch_add(1, Ordering::SeqCst);
                self.by_node[at].fetch_add(1, Ordering::SeqCst);
                Some(v)
            }
            Err(CallError::NoAnswer(_)) => None,
            Err(CallError::Refused(status, v)) => {
                let mut a = self.answered.lock().unwrap();
                a.refusals
                    .push(format!("{path} on node {at}: {status} {v}"));
                None
            }
        }
    }

    /// One lifecycle on node `at`; `false` when a call got no answer (the lifecycle is
    /// left where it stopped, as a person whose server went away would leave it).
    async fn lifecycle(&self, at: usize, short: bool) -> bool {
        let duration = if short { SHORT } else { "1h" };
        let Some(req) = self
            .call(at, &self.alice, "/requests", json!({
                "scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}],
                "duration": duration, "reason": "kill test", "reference": "WO-15", "path": "planned"}))
            .await
        else {
            return false;
        };
        let id = req["id"].as_str().unwrap().to_string();
        self.answered.lock().unwrap().requests.insert(id.clone());
        let Some(approved) = self
            .call(
                at,
                &self.bob,
                &format!("/requests/{id}/approve"),
                json!({"scope_digest": req["scope_digest"]}),
            )
            .await
        else {
            return false;
        };
        let grant = approved["grant"]["id"].as_str().unwrap().to_string();
        self.answered
            .lock()
            .unwrap()
            .grants
            .insert(grant.clone(), short);
        if short {
            return true;
        }
        let revoked = self
            .call(
                at,
                &self.alice,
                &format!("/grants/{grant}/revoke"),
                json!({"reason": "kill test"}),
            )
            .await;
        if revoked.is_some() {
            self.answered.lock().unwrap().revoked.insert(grant);
        }
        revoked.is_some()
    }

    /// Lifecycles on each node in turn, whether or not it is up.
    async fn client(self: Arc<Self>, c: usize) {
        let mut i = c;
        while !self.stop.load(Ordering::SeqCst) {
            if !self.lifecycle(i % 2, i % 3 == 2).await {
                // Not a timing assumption: only keeps a client from spinning on a dead node.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            i += 1;
        }
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

    let load = Arc::new(Load {
        urls: urls.clone(),
        alice: tokens[0].clone(),
        bob: tokens[1].clone(),
        http: http.clone(),
        answered: Mutex::default(),
        total: AtomicUsize::new(0),
        by_node: [AtomicUsize::new(0), AtomicUsize::new(0)],
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| rt.spawn(load.clone().client(c)))
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
    assert!(answered.refusals.is_empty(), "{:#?}", answered.refusals);
    assert!(
        answered.grants.values().any(|&short| short) && !answered.revoked.is_empty(),
        "both kinds of lifecycle were answered"
    );

    // Every grant that ended (answered or not) reaches one final verdict; the short ones
    // expire on their own.
    let store = &pg.store;
    wait_for(
        "every ended grant torn down with a final verdict",
        Duration::from_secs(60),
        || {
            let events = rt.block_on(all_events(store));
            let ended: HashSet<&str> = events
                .iter()
                .filter(|e| e.kind == "grant.ended")
                .map(|e| e.grant.as_str())
                .collect();
            let closed: HashSet<&str> = events
                .iter()
                .filter(|e| e.kind == "teardown.verdict" && e.data["final"] == true)
                .map(|e| e.grant.as_str())
                .collect();
            let expected_ended = answered
                .grants
                .iter()
                .filter(|(g, short)| **short || answered.revoked.contains(*g))
                .all(|(g, _)| ended.contains(g.as_str()));
            (expected_ended && ended.is_subset(&closed)).then_some(())
        },
    );

    let events = rt.block_on(all_events(store));
    let of = |kind: &str, grant: &str| -> Vec<&Row> {
        events
            .iter()
            .filter(|e| e.kind == kind && e.grant == grant)
            .collect()
    };
    let submitted: HashSet<&str> = events
        .iter()
        .filter(|e| e.kind == "request.submitted")
        .map(|e| e.request.as_str())
        .collect();
    for id in &answered.requests {
        assert!(
            submitted.contains(id.as_str()),
            "request {id} was answered but has no request.submitted"
        );
    }
    for (grant, short) in &answered.grants {
        assert_eq!(
            of("grant.issued", grant).len(),
            1,
            "grant {grant}: one grant.issued"
        );
        let ended = of("grant.ended", grant);
        let want = if *short {
            Some("expired")
        } else if answered.revoked.contains(grant) {
            Some("revoked")
        } else {
            None // its revocation got no answer: it may or may not have happened
        };
        if let Some(want) = want {
            assert_eq!(
                ended.len(),
                1,
                "grant {grant} ended exactly once: {ended:#?}"
            );
            assert_eq!(ended[0].data["end_reason"]["kind"], want, "grant {grant}");
        }
    }
    let mut ended = 0;
    for e in events.iter().filter(|e| e.kind == "grant.ended") {
        ended += 1;
        assert_eq!(
            of("grant.ended", &e.grant).len(),
            1,
            "grant {} ended once",
            e.grant
        );
        let verdicts = of("teardown.verdict", &e.grant);
        let finals: Vec<_> = verdicts
            .iter()
            .filter(|v| v.data["final"] == true)
            .collect();
        assert_eq!(
            finals.len(),
            1,
            "grant {}: one final verdict: {verdicts:#?}",
            e.grant
        );
        assert_eq!(finals[0].data["verdict"], "verified", "grant {}", e.grant);
        let failed_checks: Vec<_> = of("teardown.check", &e.grant)
            .into_iter()
            .filter(|c| c.data["outcome"] != "ok")
            .collect();
        assert!(
            verdicts.iter().all(|v| v.data["verdict"] != "failed"),
            "grant {} (short: {:?}): no failed verdict while the gateway moved: \
             {verdicts:#?}\nchecks not ok: {failed_checks:#?}",
            e.grant,
            answered.grants.get(&e.grant)
        );
    }

    // The log both nodes appended to — through the kill — verifies, on each node.
    for url in &urls {
        let v = rt
            .block_on(call(
                &http,
                url,
                Some(&sam),
                "GET",
                "/evidence/verify",
                Value::Null,
            ))
            .unwrap();
        assert_eq!(v["ok"], true, "{v:#}");
    }
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

/// One event of the log, as the assertions read it.
#[derive(Debug)]
struct Row {
    kind: String,
    request: String,
    grant: String,
    data: Value,
}

/// The whole log, in order, straight from the database every node writes to.
async fn all_events(store: &jitgate_store::Store) -> Vec<Row> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut tx = store.read().await.unwrap();
        let page = tx
            .list_events(&jitgate_store::EventFilter {
                after_seq: after,
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = Some(last.seq);
        out.extend(page.into_iter().map(|e| Row {
            kind: e.event.kind.as_str().to_string(),
            request: e.event.request_id.unwrap_or_default(),
            grant: e.event.grant_id.unwrap_or_default(),
            data: e.event.data,
        }));
    }
}
