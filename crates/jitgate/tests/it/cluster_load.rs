//! Lifecycles driven against several nodes, what they answered, and the checks of the log
//! every node wrote to: shared by the kill test (`cluster_kill.rs`) and the chaos test
//! (`cluster_chaos.rs`).
//!
//! - every call that answered success has its event (`request.submitted`, `grant.issued`,
//!   `grant.ended` with reason `revoked`, or `expired` for a short grant);
//! - every ended grant ended exactly once (an expiry by whichever node's scheduler got
//!   there, never by both), and has exactly one final teardown verdict, `verified`, and no
//!   `failed` one.

use crate::cluster_nodes::{call, wait_for, CallError};
use jitgate_core::Timestamp;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A short grant is left to expire on its own.
pub const SHORT: &str = "3s";

/// What the nodes answered with success, as the clients saw it.
#[derive(Default)]
pub struct Answered {
    pub requests: HashSet<String>,
    /// Grants issued by an answered approval, and whether they were short.
    pub grants: HashMap<String, bool>,
    pub revoked: HashSet<String>,
    /// Short requests whose approval came after their window had closed (`request_lapsed`:
    /// a node's death or a loaded machine delayed it): the product's answer, not a failure.
    pub lapsed: HashSet<String>,
    /// Answers other than success or no answer at all: none are expected.
    pub refusals: Vec<String>,
}

/// How a lifecycle went: `request` answered or not, and the grant its approval issued.
pub struct Lifecycle {
    pub requested: bool,
    pub grant: Option<String>,
}

pub struct Load {
    pub urls: Vec<String>,
    pub alice: String,
    pub bob: String,
    pub http: reqwest::Client,
    pub answered: Mutex<Answered>,
    /// Answered calls, in all and by node.
    pub total: AtomicUsize,
    pub by_node: Vec<AtomicUsize>,
    pub stop: AtomicBool,
}

impl Load {
    pub fn new(urls: &[String], alice: &str, bob: &str, http: &reqwest::Client) -> Load {
        Load {
            urls: urls.to_vec(),
            alice: alice.to_string(),
            bob: bob.to_string(),
            http: http.clone(),
            answered: Mutex::default(),
            total: AtomicUsize::new(0),
            by_node: urls.iter().map(|_| AtomicUsize::new(0)).collect(),
            stop: AtomicBool::new(false),
        }
    }

    /// One call on node `at`: `Some` when it answered success (counted), `None` when it did
    /// not answer (the node is down or died during the call: its effect is unknown).
    pub async fn call(&self, at: usize, who: &str, path: &str, body: Value) -> Option<Value> {
        match call(&self.http, &self.urls[at], Some(who), "POST", path, body).await {
            Ok(v) => {
                self.total.fetch_add(1, Ordering::SeqCst);
                self.by_node[at].fetch_add(1, Ordering::SeqCst);
                Some(v)
            }
            Err(CallError::NoAnswer(_)) => None,
            Err(CallError::Refused(409, v)) if v["code"] == "request_lapsed" => {
                let id = path.split('/').nth(2).unwrap_or_default().to_string();
                self.answered.lock().unwrap().lapsed.insert(id);
                None
            }
            Err(CallError::Refused(status, v)) => {
                let mut a = self.answered.lock().unwrap();
                a.refusals
                    .push(format!("{path} on node {at}: {status} {v}"));
                None
            }
        }
    }

    /// One lifecycle on node `at`: request, approve, then revoke unless `short` (left to
    /// expire). Stops where a call got no answer, as a person whose server went away would
    /// leave it.
    pub async fn lifecycle(&self, at: usize, short: bool) -> Lifecycle {
        self.lifecycle_lasting(at, short, SHORT).await
    }

    /// As [`Load::lifecycle`], a short grant lasting `short_for`.
    pub async fn lifecycle_lasting(&self, at: usize, short: bool, short_for: &str) -> Lifecycle {
        let duration = if short { short_for } else { "1h" };
        let Some(req) = self
            .call(
                at,
                &self.alice,
                "/requests",
                json!({
                "scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}],
                "duration": duration, "reason": "cluster load", "reference": "WO-15",
                "path": "planned"}),
            )
            .await
        else {
            return Lifecycle {
                requested: false,
                grant: None,
            };
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
            return Lifecycle {
                requested: true,
                grant: None,
            };
        };
        let grant = approved["grant"]["id"].as_str().unwrap().to_string();
        self.answered
            .lock()
            .unwrap()
            .grants
            .insert(grant.clone(), short);
        if !short {
            let revoked = self
                .call(
                    at,
                    &self.alice,
                    &format!("/grants/{grant}/revoke"),
                    json!({"reason": "cluster load"}),
                )
                .await;
            if revoked.is_some() {
                self.answered.lock().unwrap().revoked.insert(grant.clone());
            }
        }
        Lifecycle {
            requested: true,
            grant: Some(grant),
        }
    }
}

/// One event of the log, as the assertions read it.
#[derive(Debug)]
pub struct Row {
    pub kind: String,
    pub at: Timestamp,
    pub request: String,
    pub grant: String,
    pub data: Value,
}

/// The whole log, in order, straight from the database every node writes to.
pub async fn all_events(store: &jitgate_store::Store) -> Vec<Row> {
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
            at: e.event.at,
            request: e.event.request_id.unwrap_or_default(),
            grant: e.event.grant_id.unwrap_or_default(),
            data: e.event.data,
        }));
    }
}

/// Wait (bounded by `within`) until every grant that ended — answered or not — has a final
/// teardown verdict, and every answered short grant and revocation has ended; returns the log
/// then.
pub fn settled(
    rt: &tokio::runtime::Runtime,
    store: &jitgate_store::Store,
    answered: &Answered,
    within: Duration,
) -> Vec<Row> {
    wait_for(
        "every ended grant torn down with a final verdict",
        within,
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
    rt.block_on(all_events(store))
}

/// The checks of the log against what the clients saw answered (see the module note).
/// No attempt may be `failed`, even when nodes or the gateway were killed meanwhile: an
/// attempt that found the gateway away or restarting waits for it (docs/teardown.md), and
/// nodes on one host stay within the gateway's per-address allowance (probes are paced).
/// Returns the number of grants that ended.
pub fn check_lifecycles(events: &[Row], answered: &Answered) -> usize {
    assert!(answered.refusals.is_empty(), "{:#?}", answered.refusals);
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
        let failed_checks: Vec<_> = of("teardown.check", &e.grant)
            .into_iter()
            .filter(|c| c.data["outcome"] != "ok")
            .collect();
        assert_eq!(
            finals[0].data["verdict"], "verified",
            "grant {}: checks not ok: {failed_checks:#?}",
            e.grant
        );
        assert!(
            verdicts.iter().all(|v| v.data["verdict"] != "failed"),
            "grant {} (short: {:?}): no failed verdict while nodes and the gateway moved: \
             {verdicts:#?}\nchecks not ok: {failed_checks:#?}",
            e.grant,
            answered.grants.get(&e.grant)
        );
    }
    ended
}

/// `GET /evidence/verify` on each of `urls`: the chain verifies on every node.
pub fn assert_chain_verifies(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
) {
    for url in urls {
        let v = rt
            .block_on(call(
                http,
                url,
                Some(token),
                "GET",
                "/evidence/verify",
                Value::Null,
            ))
            .unwrap();
        assert_eq!(v["ok"], true, "{url}: {v:#}");
    }
}
