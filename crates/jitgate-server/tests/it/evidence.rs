//! Evidence end to end through the API: checkpoints, in-place verification against direct
//! tampering of the database (SQLite and PostgreSQL), bundles verified offline with the
//! public key file, reports, key rotation, periodic checkpoints, and SIEM delivery to local
//! collectors across collector and server restarts.

use super::*;
use jitgate_core::Clock;
use jitgate_evidence::{verify_bundle, BundleError, EvidenceKey, EvidencePublicKey};
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A server with a custom configuration (the harness's defaults otherwise).
/// `data_dir` outlives the harness (restarts reuse its evidence key).
pub(super) async fn start_custom(
    store: Store,
    clock: Arc<ManualClock>,
    data_dir: &std::path::Path,
    tune: impl FnOnce(&mut ServerConfig),
) -> Harness {
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        session_ttl: "24h".into(),
        ..ServerConfig::default()
    };
    tune(&mut config);
    let server = jitgate_server::start_with_store(config, clock.clone(), store)
        .await
        .expect("server starts");
    let inv = Inventory::from_toml(PLANT).unwrap();
    jitgate_server::service::load_inventory(&server.state, Actor::system(), &inv)
        .await
        .unwrap();
    let mut tx = server.state.store.write().await.unwrap();
    for i in &inv.identities {
        if tx.get_password(&i.id).await.unwrap().is_none()
            && i.kind != jitgate_core::IdentityKind::Workload
        {
            tx.set_password(
                &i.id,
                &jitgate_server::auth::hash_password(&password(&i.id)).unwrap(),
            )
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    Harness {
        data: tempfile::tempdir().unwrap(),
        base: format!("http://{}", server.addr),
        clock,
        server: Some(server),
        http: reqwest::Client::new(),
        tokens: HashMap::new(),
    }
}

/// alice's read grant on plc-7, approved by bob, with one gateway session of `ops`
/// operations recorded through the gateway endpoint. Returns (request id, grant id).
pub(super) async fn grant_with_operations(h: &mut Harness, ops: usize) -> (String, String) {
    let req = h.request("alice", read_plc7()).await;
    let (status, v) = h.approve("bob", &req, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let grant = v["grant"]["id"].as_str().unwrap().to_string();
    let key = h.api_key("gw-north", "evidence-test").await;
    let base: i64 = {
        let (_, v) = h
            .raw(
                "POST",
                "/api/v1/gateway/events",
                Some(&key),
                Some(json!({"events": []})),
            )
            .await;
        v["delivered_seq"].as_i64().unwrap_or(0)
    };
    let at = h.clock.now() + chrono::Duration::seconds(1);
    let session = format!("sess-{grant}");
    let mut events = vec![
        json!({"gseq": base + 1, "kind": "session.started", "at": at,
        "grant_id": grant, "session_id": session, "data": {"asset": "plc-7", "protocol": "modbus"}}),
    ];
    for i in 0..ops {
        events.push(
            json!({"gseq": base + 2 + i as i64, "kind": "operation", "at": at,
            "grant_id": grant, "session_id": session,
            "data": {"function": "read holding registers", "unit": 1, "address": i % 100,
                     "count": 1, "verdict": "allowed"}}),
        );
    }
    events.push(
        json!({"gseq": base + 2 + ops as i64, "kind": "session.ended", "at": at,
        "grant_id": grant, "session_id": session, "data": {"reason": "client closed"}}),
    );
    for chunk in events.chunks(1000) {
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/gateway/events",
                Some(&key),
                Some(json!({"events": chunk})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    (req["id"].as_str().unwrap().to_string(), grant)
}

async fn verify(h: &mut Harness) -> Value {
    let (s, v) = h.call("sam", "GET", "/api/v1/evidence/verify", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn checkpoint(h: &mut Harness) -> Value {
    let (s, v) = h
        .call("sam", "POST", "/api/v1/evidence/checkpoints", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn public_keys(h: &mut Harness) -> Vec<EvidencePublicKey> {
    let (s, v) = h.call("alice", "GET", "/api/v1/evidence/keys", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    EvidencePublicKey::parse_file(v["key_file"].as_str().unwrap()).unwrap()
}

async fn export(h: &mut Harness, who: &str, grant: &str) -> (StatusCode, String) {
    let token = h.login(who).await;
    let resp = h
        .http
        .get(format!("{}/api/v1/grants/{grant}/evidence", h.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn problem(v: &Value) -> (String, i64) {
    assert_eq!(v["ok"], false, "expected a problem: {v}");
    (
        v["problem"]["kind"].as_str().unwrap().to_string(),
        v["problem"]["seq"].as_i64().unwrap(),
    )
}

async fn exec(store: &Store, sql: &str) {
    sqlx::query(sql).execute(store.pool()).await.unwrap();
}

/// Every column of every event row, and the chain head and checkpoints, to put back after
/// each tampering.
struct Snapshot {
    events: Vec<Vec<Option<String>>>,
    ints: Vec<(i64, i64)>,
    head: (i64, String),
    checkpoints: Vec<(String, i64, String, i64, String, String)>,
}

async fn snapshot(store: &Store) -> Snapshot {
    let rows = sqlx::query(
        "SELECT seq, at, prev_hash, hash, kind, actor, request_id, approval_id, grant_id, canonical \
         FROM events ORDER BY seq",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let events = rows
        .iter()
        .map(|r| {
            (2..10)
                .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect();
    let ints = rows
        .iter()
        .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap()))
        .collect();
    let h = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let cps = sqlx::query(
        "SELECT log_id, tree_size, root_hash, at, key_id, signature FROM checkpoints ORDER BY pos",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get(0).unwrap(),
            r.try_get(1).unwrap(),
            r.try_get(2).unwrap(),
            r.try_get(3).unwrap(),
            r.try_get(4).unwrap(),
            r.try_get(5).unwrap(),
        )
    })
    .collect();
    Snapshot {
        events,
        ints,
        head: (h.try_get(0).unwrap(), h.try_get(1).unwrap()),
        checkpoints: cps,
    }
}

async fn restore(store: &Store, s: &Snapshot) {
    exec(store, "DELETE FROM events").await;
    exec(store, "DELETE FROM checkpoints").await;
    for (row, (seq, at)) in s.events.iter().zip(&s.ints) {
        let mut q = sqlx::query(
            "INSERT INTO events (seq, at, prev_hash, hash, kind, actor, request_id, approval_id, \
             grant_id, canonical) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(*seq)
        .bind(*at);
        for v in row {
            q = q.bind(v.clone());
        }
        q.execute(store.pool()).await.unwrap();
    }
    for c in &s.checkpoints {
        sqlx::query(
            "INSERT INTO checkpoints (log_id, tree_size, root_hash, at, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.0.clone())
        .bind(c.1)
        .bind(c.2.clone())
        .bind(c.3)
        .bind(c.4.clone())
        .bind(c.5.clone())
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(s.head.0)
        .bind(s.head.1.clone())
        .execute(store.pool())
        .await
        .unwrap();
}

async fn row_hash(store: &Store, seq: i64) -> String {
    sqlx::query("SELECT hash FROM events WHERE seq = $1")
        .bind(seq)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test]
async fn verify_names_every_kind_of_tampering_on_each_backend() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store.clone()).await;
        let (_, _grant) = grant_with_operations(&mut h, 20).await;
        let first_cp = checkpoint(&mut h).await;
        let first_size = first_cp["checkpoint"]["tree_size"].as_i64().unwrap();
        grant_with_operations(&mut h, 10).await;
        let cp = checkpoint(&mut h).await;
        let n = cp["checkpoint"]["tree_size"].as_i64().unwrap();
        let v = verify(&mut h).await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["events"].as_i64(), Some(n));
        assert_eq!(v["checkpoints_verified"], 2, "{v}");
        assert_eq!(v["latest_checkpoint"].as_i64(), Some(n));
        let clean = snapshot(&store).await;
        // An event in the middle of the first grant's operations.
        let k = first_size - 5;

        // 1. One row's bytes edited.
        exec(&store, &format!(
            "UPDATE events SET canonical = replace(canonical, 'holding', 'HOLDING') WHERE seq = {k}"
        )).await;
        assert_eq!(problem(&verify(&mut h).await), ("altered".into(), k));
        restore(&store, &clean).await;
        assert_eq!(verify(&mut h).await["ok"], true);

        // 2. One row deleted.
        exec(&store, &format!("DELETE FROM events WHERE seq = {k}")).await;
        assert_eq!(problem(&verify(&mut h).await), ("deleted".into(), k));
        restore(&store, &clean).await;

        // 3. Two rows swapped.
        exec(&store, &format!("UPDATE events SET seq = -1 WHERE seq = {k}")).await;
        exec(&store, &format!("UPDATE events SET seq = {k} WHERE seq = {}", k + 1)).await;
        exec(&store, &format!("UPDATE events SET seq = {} WHERE seq = -1", k + 1)).await;
        assert_eq!(problem(&verify(&mut h).await), ("reordered".into(), k));
        restore(&store, &clean).await;

        // 4. A row inserted (later rows renumbered, the new row chained to its predecessor).
        exec(&store, &format!("UPDATE events SET seq = -(seq + 1) WHERE seq >= {k}")).await;
        exec(&store, "UPDATE events SET seq = -seq WHERE seq < 0").await;
        let prev = row_hash(&store, k - 1).await;
        let forged = r#"{"actor":"gw-north","at":"2020-01-01T00:00:00.000Z","data":{},"kind":"operation"}"#;
        let hash = jitgate_store::chain_hash(&prev, forged.as_bytes()).unwrap();
        sqlx::query(
            "INSERT INTO events (seq, prev_hash, hash, kind, actor, at, canonical) \
             VALUES ($1, $2, $3, 'operation', 'gw-north', 0, $4)",
        )
        .bind(k)
        .bind(prev)
        .bind(hash)
        .bind(forged)
        .execute(store.pool())
        .await
        .unwrap();
        exec(&store, "UPDATE chain_head SET seq = seq + 1 WHERE id = 1").await;
        assert_eq!(problem(&verify(&mut h).await), ("inserted".into(), k));
        restore(&store, &clean).await;

        // 5. The tail cut off, the chain head moved back to match: only the checkpoint knows.
        exec(&store, &format!("DELETE FROM events WHERE seq > {}", n - 3)).await;
        let last = row_hash(&store, n - 3).await;
        exec(&store, &format!("UPDATE chain_head SET seq = {}, hash = '{last}' WHERE id = 1", n - 3)).await;
        let v = verify(&mut h).await;
        assert_eq!(problem(&v), ("truncated".into(), n - 2), "{v}");
        assert!(v["problem"]["message"].as_str().unwrap().contains("cut off"), "{v}");
        // ... and the tail cut off with the chain head left alone.
        restore(&store, &clean).await;
        exec(&store, &format!("DELETE FROM events WHERE seq > {}", n - 3)).await;
        assert_eq!(problem(&verify(&mut h).await), ("truncated".into(), n - 2));
        restore(&store, &clean).await;

        // 6. A checkpoint replaced: another root, then a signature by a key nobody trusts.
        let other_root = "00".repeat(32);
        exec(&store, &format!(
            "UPDATE checkpoints SET root_hash = '{other_root}' WHERE tree_size = {first_size}"
        )).await;
        let v = verify(&mut h).await;
        assert_eq!(problem(&v), ("bad-checkpoint".into(), first_size), "{v}");
        restore(&store, &clean).await;
        let mallory = EvidenceKey::generate().unwrap();
        let log_id = v["log_id"].as_str().unwrap();
        let forged = mallory
            .sign_checkpoint(log_id, first_size as u64, &[7; 32], h.clock.now())
            .unwrap();
        exec(&store, &format!(
            "UPDATE checkpoints SET root_hash = '{}', key_id = '{}', signature = '{}' WHERE tree_size = {first_size}",
            forged.checkpoint.root_hash, forged.checkpoint.key_id, forged.signature
        )).await;
        let v = verify(&mut h).await;
        assert_eq!(problem(&v), ("bad-checkpoint".into(), first_size), "{v}");
        assert!(v["problem"]["message"].as_str().unwrap().contains("not among the trusted"), "{v}");
        restore(&store, &clean).await;

        // 7. History rewritten consistently (every later hash recomputed): the chain holds,
        //    the signed root does not.
        let rows = sqlx::query("SELECT seq, canonical FROM events WHERE seq >= $1 ORDER BY seq")
            .bind(k)
            .fetch_all(store.pool())
            .await
            .unwrap();
        let mut prev = row_hash(&store, k - 1).await;
        for r in rows {
            let seq: i64 = r.try_get(0).unwrap();
            let mut text: String = r.try_get(1).unwrap();
            if seq == k {
                text = text.replace("holding", "HOLDING");
            }
            let hash = jitgate_store::chain_hash(&prev, text.as_bytes()).unwrap();
            sqlx::query("UPDATE events SET canonical = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
                .bind(text)
                .bind(prev.clone())
                .bind(hash.clone())
                .bind(seq)
                .execute(store.pool())
                .await
                .unwrap();
            prev = hash;
        }
        exec(&store, &format!("UPDATE chain_head SET hash = '{prev}' WHERE id = 1")).await;
        let chain = h.call("sam", "GET", "/api/v1/evidence/chain", None).await.1;
        assert_eq!(chain["ok"], true, "the hash chain alone is fooled: {chain}");
        let v = verify(&mut h).await;
        assert_eq!(problem(&v), ("root-mismatch".into(), first_size), "{v}");
        // The running server signs the log it checked, not the rewritten rows...
        let again = checkpoint(&mut h).await;
        assert_eq!(again["checkpoint"]["root_hash"], cp["checkpoint"]["root_hash"]);
        // ... and a restarted one, which checks the log afresh, signs nothing over it.
        let addr = h.server.as_ref().unwrap().addr;
        let store2 = h.stop_server_only().await;
        h.restart_server_at(store2, addr).await;
        let (s, e) = h.call("sam", "POST", "/api/v1/evidence/checkpoints", None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert_eq!(e["code"], "evidence_broken");
        assert!(e["message"].as_str().unwrap().contains("root-mismatch"), "{e}");
        restore(&store, &clean).await;
        assert_eq!(verify(&mut h).await["ok"], true);

        // 8. A stored hash that is not a hash, and a raw line feed added to an event's text
        //    (the verifier's fast read refuses both pages and reads them row by row).
        exec(&store, &format!("UPDATE events SET hash = 'not a hash' WHERE seq = {k}")).await;
        assert_eq!(problem(&verify(&mut h).await), ("malformed".into(), k));
        restore(&store, &clean).await;
        let lf = match store.backend() {
            jitgate_store::Backend::Sqlite => "char(10)",
            jitgate_store::Backend::Postgres => "chr(10)",
        };
        exec(&store, &format!("UPDATE events SET canonical = canonical || {lf} WHERE seq = {k}")).await;
        assert_eq!(problem(&verify(&mut h).await), ("altered".into(), k));
        restore(&store, &clean).await;
        assert_eq!(verify(&mut h).await["ok"], true);

        // Only security, audit and admin roles verify the log.
        let (s, _) = h.call("alice", "GET", "/api/v1/evidence/verify", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bundle_verifies_offline_and_every_change_is_named() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let (request, grant) = grant_with_operations(&mut h, 25).await;
    let (s, v) = h
        .call(
            "sam",
            "POST",
            &format!("/api/v1/grants/{grant}/revoke"),
            Some(json!({"reason": "done"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let keys = public_keys(&mut h).await;

    // The requester exports the bundle; no checkpoint existed, so one was signed for it.
    let (s, text) = export(&mut h, "alice", &grant).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let verified = verify_bundle(text.as_bytes(), &keys).unwrap();
    assert_eq!(verified.grant_id, grant);
    assert_eq!(verified.request_id, request);
    let kinds: Vec<&str> = verified
        .events
        .iter()
        .map(|e| e.event.kind.as_str())
        .collect();
    for k in [
        "request.submitted",
        "request.decided",
        "approval.recorded",
        "grant.issued",
        "session.started",
        "operation",
        "session.ended",
        "grant.ended",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "operation").count(), 25);
    // The determining policies' text travels with the decision.
    assert!(
        !verified.policies.is_empty(),
        "no policy text in the bundle"
    );
    assert!(verified.timeline_text().contains("grant.issued"));

    // A single changed byte in an event: named by its place.
    let bundle: Value = serde_json::from_str(&text).unwrap();
    let mut edited = bundle.clone();
    let c = edited["events"][5]["canonical"]
        .as_str()
        .unwrap()
        .replacen("\"at\"", "\"At\"", 1);
    edited["events"][5]["canonical"] = json!(c);
    let err = verify_bundle(edited.to_string().as_bytes(), &keys).unwrap_err();
    assert!(err.to_string().contains("events[5]"), "{err}");
    // Reordered events.
    let mut swapped = bundle.clone();
    swapped["events"].as_array_mut().unwrap().swap(3, 4);
    assert!(matches!(
        verify_bundle(swapped.to_string().as_bytes(), &keys),
        Err(BundleError::Order { .. })
    ));
    // Truncated file, and an event removed.
    assert!(matches!(
        verify_bundle(&text.as_bytes()[..text.len() / 2], &keys),
        Err(BundleError::Json { .. })
    ));
    let mut fewer = bundle.clone();
    fewer["events"].as_array_mut().unwrap().pop();
    assert!(matches!(
        verify_bundle(fewer.to_string().as_bytes(), &keys),
        Err(BundleError::Attestation(_))
    ));
    // Verified with a key that did not sign it.
    let other = [EvidenceKey::generate().unwrap().public()];
    assert!(matches!(
        verify_bundle(text.as_bytes(), &other),
        Err(BundleError::Checkpoint(_))
    ));

    // Someone who may not see the grant gets nothing (not even its existence).
    let (s, _) = export(&mut h, "vera", &grant).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The report: one page, no scripts, the controls mapped.
    let token = h.login("sam").await;
    let resp = h
        .http
        .get(format!("{}/api/v1/grants/{grant}/evidence/report", h.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(&grant) && html.contains("IEC 62443"),
        "report lacks content"
    );
    assert!(!html.contains("<script"));
    h.stop().await;
}

#[tokio::test]
async fn rotation_keeps_the_whole_log_verifiable() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let (_, first_grant) = grant_with_operations(&mut h, 3).await;
    let old = checkpoint(&mut h).await["checkpoint"]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let old_keys = public_keys(&mut h).await;

    let (s, v) = h
        .call("alice", "POST", "/api/v1/evidence/keys/rotate", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only admins rotate: {v}");
    let (s, v) = h
        .call("sam", "POST", "/api/v1/evidence/keys/rotate", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["current_key_id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);

    let (_, second_grant) = grant_with_operations(&mut h, 3).await;
    let cp = checkpoint(&mut h).await;
    assert_eq!(cp["checkpoint"]["key_id"], new.as_str());
    let v = verify(&mut h).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checkpoints_verified"].as_u64().unwrap() >= 3, "{v}");

    // The rotation is itself in the log.
    let events = h
        .call("sam", "GET", "/api/v1/events?limit=1000", None)
        .await
        .1;
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "key.rotated"
            && e["data"]["key"] == "evidence"
            && e["data"]["new_kid"] == new.as_str()));

    // Bundles are signed with the new key; the old key file alone no longer suffices.
    let all_keys = public_keys(&mut h).await;
    for g in [&first_grant, &second_grant] {
        let (s, text) = export(&mut h, "alice", g).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        verify_bundle(text.as_bytes(), &all_keys).unwrap();
        assert!(verify_bundle(text.as_bytes(), &old_keys).is_err());
    }

    // After a restart the keys are the same (files in the data directory).
    let addr = h.server.as_ref().unwrap().addr;
    let store = h.stop_server_only().await;
    h.restart_server_at(store, addr).await;
    assert_eq!(public_keys(&mut h).await, all_keys);
    assert_eq!(verify(&mut h).await["ok"], true);
    h.stop().await;
}

#[tokio::test]
async fn checkpoints_are_signed_periodically_when_the_log_grows() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut h = start_custom(store, clock, data.path(), |c| {
        c.evidence.checkpoint_interval = "1s".into();
        c.evidence.log_id = Some("jitgate.test/plant-1".into());
    })
    .await;
    grant_with_operations(&mut h, 2).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let head = h.event_count().await;
    let cps = loop {
        let cps = h
            .call("sam", "GET", "/api/v1/evidence/checkpoints", None)
            .await
            .1;
        let covered = cps
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["checkpoint"]["tree_size"].as_i64() >= Some(head));
        if covered || std::time::Instant::now() > deadline {
            break cps;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let list = cps.as_array().unwrap();
    assert!(
        list.iter()
            .any(|c| c["checkpoint"]["tree_size"].as_i64() >= Some(head)),
        "no periodic checkpoint covering {head} events: {cps}"
    );
    assert!(list
        .iter()
        .all(|c| c["checkpoint"]["log_id"] == "jitgate.test/plant-1"));
    // An idle log gets no new checkpoints.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = h
        .call("sam", "GET", "/api/v1/evidence/checkpoints", None)
        .await
        .1;
    assert_eq!(
        again.as_array().unwrap().len(),
        list.len(),
        "checkpoints of an unchanged log"
    );
    h.stop().await;
}

#[tokio::test]
async fn the_log_id_cannot_change_under_a_database() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let h = start_custom(store, clock.clone(), data.path(), |c| {
        c.evidence.log_id = Some("jitgate.test/a".into());
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let store = h.stop().await;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        evidence: jitgate_server::evidence::EvidenceConfig {
            log_id: Some("jitgate.test/b".into()),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let err = jitgate_server::start_with_store(config, clock, store)
        .await
        .err()
        .expect("a different log id is refused");
    assert!(err.to_string().contains("jitgate.test/a"), "{err}");
}

// ---------------------------------------------------------------- SIEM

/// A TCP collector that records every byte per connection; `stop` closes it like a crashed
/// or restarted collector.
struct Collector {
    addr: std::net::SocketAddr,
    received: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start(addr: &str, received: Arc<std::sync::Mutex<Vec<Vec<u8>>>>) -> Collector {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = received.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let rec = rec.clone();
                let idx = {
                    let mut r = rec.lock().unwrap();
                    r.push(Vec::new());
                    r.len() - 1
                };
                conns.spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => rec.lock().unwrap()[idx].extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        Collector {
            addr,
            received,
            task,
        }
    }

    fn stop(self) -> Arc<std::sync::Mutex<Vec<Vec<u8>>>> {
        // Aborting drops the listener and (with the JoinSet) every connection.
        self.task.abort();
        self.received
    }
}

/// Sequence numbers in the order received, over all connections, parsed per format.
fn seqs(received: &std::sync::Mutex<Vec<Vec<u8>>>, syslog: bool) -> Vec<i64> {
    let mut out = Vec::new();
    for conn in received.lock().unwrap().iter() {
        if syslog {
            // Octet counting: `<len> <message>`.
            let mut rest = &conn[..];
            while let Some(sp) = rest.iter().position(|b| *b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                if rest.len() < sp + 1 + len {
                    break; // a frame still arriving
                }
                let msg = std::str::from_utf8(&rest[sp + 1..sp + 1 + len]).unwrap();
                assert!(msg.starts_with("<"), "{msg}");
                let seq = msg
                    .split("seq=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                out.push(seq.parse().unwrap());
                rest = &rest[sp + 1 + len..];
            }
        } else {
            let text = String::from_utf8_lossy(conn);
            for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["metadata"]["product"]["name"], "jitgate", "{v}");
                out.push(v["metadata"]["sequence"].as_i64().unwrap());
            }
        }
    }
    out
}

async fn wait_for(received: &std::sync::Mutex<Vec<Vec<u8>>>, syslog: bool, upto: i64) -> Vec<i64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = seqs(received, syslog);
        if s.contains(&upto) || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_complete(s: &[i64], upto: i64, what: &str) {
    let set: std::collections::BTreeSet<i64> = s.iter().copied().collect();
    let missing: Vec<i64> = (1..=upto).filter(|n| !set.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{what}: events {missing:?} never arrived (got {s:?})"
    );
}

fn duplicates(s: &[i64]) -> Vec<i64> {
    let mut count = BTreeMap::new();
    for n in s {
        *count.entry(*n).or_insert(0) += 1;
    }
    count
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(n, _)| n)
        .collect()
}

#[tokio::test]
async fn siem_streams_every_event_once_across_collector_and_server_restarts() {
    let ocsf_rx = Arc::new(std::sync::Mutex::new(Vec::new()));
    let syslog_rx = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ocsf = Collector::start("127.0.0.1:0", ocsf_rx.clone()).await;
    let syslog = Collector::start("127.0.0.1:0", syslog_rx.clone()).await;
    let (ocsf_addr, syslog_addr) = (ocsf.addr, syslog.addr);
    let sinks: Vec<jitgate_server::siem::SiemConfig> = toml::from_str::<toml::Value>(&format!(
        "[[siem]]\nformat = \"ocsf\"\naddress = \"{ocsf_addr}\"\n\n\
         [[siem]]\nname = \"soc-syslog\"\nformat = \"syslog\"\naddress = \"{syslog_addr}\"\nbatch = 7\n"
    ))
    .unwrap()["siem"]
        .clone()
        .try_into()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let data = dir.path().join("data");
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = Store::open_data_dir(&db).await.unwrap();
    let sinks2 = sinks.clone();
    let mut h = start_custom(store, clock.clone(), &data, move |c| c.siem = sinks2).await;

    // 1. Everything so far reaches both collectors, in order.
    grant_with_operations(&mut h, 10).await;
    let n1 = h.event_count().await;
    let s = wait_for(&ocsf_rx, false, n1).await;
    assert_complete(&s, n1, "ocsf");
    assert!(s.windows(2).all(|w| w[0] < w[1]), "in order: {s:?}");
    assert_complete(&wait_for(&syslog_rx, true, n1).await, n1, "syslog");

    // 2. The OCSF collector goes away; events keep coming; it comes back on the same port.
    let ocsf_rx = ocsf.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    grant_with_operations(&mut h, 10).await;
    let n2 = h.event_count().await;
    assert_complete(
        &wait_for(&syslog_rx, true, n2).await,
        n2,
        "syslog while ocsf is down",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ocsf = Collector::start(&ocsf_addr.to_string(), ocsf_rx.clone()).await;
    let s = wait_for(&ocsf_rx, false, n2).await;
    assert_complete(&s, n2, "ocsf after its restart");

    // 3. The server stops; events are added while it is down; it starts again.
    let store = h.stop().await;
    {
        let mut tx = store.write().await.unwrap();
        let events: Vec<_> = (0..5)
            .map(|i| {
                jitgate_core::Event::new(
                    jitgate_core::EventKind::InventoryChanged,
                    Actor::system(),
                    clock.now(),
                )
                .data(json!({"offline": i}))
            })
            .collect();
        tx.append_events(&events).await.unwrap();
        tx.commit().await.unwrap();
    }
    let n3 = {
        let mut tx = store.read().await.unwrap();
        tx.chain_tip().await.unwrap().0
    };
    let h = start_custom(store, clock.clone(), &data, move |c| c.siem = sinks).await;
    let s = wait_for(&ocsf_rx, false, n3).await;
    assert_complete(&s, n3, "ocsf after the server restart");
    let s = wait_for(&syslog_rx, true, n3).await;
    assert_complete(&s, n3, "syslog after the server restart");
    // The syslog collector never went away: across the server restart it got each event
    // exactly once (the cursor was kept; nothing was re-sent).
    assert!(duplicates(&s).is_empty(), "re-sent: {:?}", duplicates(&s));
    // The OCSF collector's restart cost no event, and re-sent nothing that it had read.
    let s = seqs(&ocsf_rx, false);
    assert!(
        duplicates(&s).is_empty(),
        "ocsf re-sent: {:?}",
        duplicates(&s)
    );
    // The cursors are in the settings table (saved just after the send: poll for it). The
    // restarted server may append events of its own at start (a checkpoint, a policy load),
    // so the cursor must reach the log's tip as it is when read, which is at least n3.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut tx = h.state().store.read().await.unwrap();
        let cursor = tx.get_setting("siem/soc-syslog/cursor").await.unwrap();
        let tip = tx.chain_tip().await.unwrap().0;
        drop(tx);
        assert!(tip >= n3, "the log shrank: tip {tip} < {n3}");
        if cursor == Some(tip.to_string()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cursor {cursor:?}, expected the tip {tip}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
    ocsf.stop();
    syslog.stop();
}

#[tokio::test]
async fn siem_over_tls_checks_the_collector_certificate() {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["collector.test".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let rec = received.clone();
    let collector = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, rec) = (acceptor.clone(), rec.clone());
            tokio::spawn(async move {
                // A client that does not trust this certificate fails the handshake here.
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let idx = {
                    let mut r = rec.lock().unwrap();
                    r.push(Vec::new());
                    r.len() - 1
                };
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    rec.lock().unwrap()[idx].extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    let sink = |server_name: &str| -> Vec<jitgate_server::siem::SiemConfig> {
        toml::from_str::<toml::Value>(&format!(
            "[[siem]]\nname = \"tls-{server_name}\"\nformat = \"syslog\"\naddress = \"{addr}\"\n\
             tls = true\nca_file = {:?}\nserver_name = \"{server_name}\"\n",
            ca.display().to_string()
        ))
        .unwrap()["siem"]
            .clone()
            .try_into()
            .unwrap()
    };
    // First a sink that expects another name: the handshake fails, nothing is delivered.
    let data = tempfile::tempdir().unwrap();
    let (store, _db) = jitgate_testkit::sqlite_store().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let wrong = sink("other.test");
    let mut h = start_custom(store, clock.clone(), data.path(), move |c| c.siem = wrong).await;
    grant_with_operations(&mut h, 3).await;
    let n = h.event_count().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        seqs(&received, true).is_empty(),
        "delivered to a collector it should not trust"
    );
    let store = h.stop().await;
    // Then the right name: every event arrives over TLS.
    let right = sink("collector.test");
    let h = start_custom(store, clock, data.path(), move |c| c.siem = right).await;
    let s = wait_for(&received, true, n).await;
    assert_complete(&s, n, "syslog over TLS");
    h.stop().await;
    collector.abort();
}
