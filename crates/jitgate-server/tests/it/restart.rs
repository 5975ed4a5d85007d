//! A grant that expires while the server is down is ended at start, before anything is served.

use super::*;
use jitgate_core::Clock;

#[tokio::test]
async fn grant_expiring_while_down_is_ended_at_start() {
    // SQLite on a file, really closed and reopened.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = Store::open_data_dir(&data).await.unwrap();
    let gid = {
        let mut h = Harness::start_with(store, clock.clone(), None).await;
        let mut body = write_plc7("30m");
        body["path"] = json!("emergency");
        let v = h.request("oscar", body).await;
        let store = h.stop().await;
        store.close().await;
        v["grant"]["id"].as_str().unwrap().to_string()
    };
    clock.advance(chrono::Duration::hours(3));
    let store = Store::open_data_dir(&data).await.unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        ..ServerConfig::default()
    };
    let server = jitgate_server::start_with_store(config, clock.clone(), store)
        .await
        .unwrap();
    // Read straight from the store: no request has been served yet.
    let mut tx = server.state.store.read().await.unwrap();
    let g = tx.get_grant(&gid).await.unwrap().unwrap();
    assert_eq!(g.state, jitgate_core::GrantState::Ending);
    assert_eq!(g.end_reason, Some(jitgate_core::EndReason::Expired));
    assert_eq!(
        g.ended_at,
        Some(g.expires_at),
        "recorded as ended at its expiry, not at restart"
    );
    assert!(clock.now() > g.expires_at);
    let events = tx
        .list_events(&jitgate_store::EventFilter {
            grant_id: Some(gid.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(last.kind, jitgate_core::EventKind::GrantEnded);
    assert_eq!(last.actor.0, "system:scheduler");
    drop(tx);
    server.stop().await.close().await;
}

#[tokio::test]
async fn restart_on_postgres_ends_expired_grants_too() {
    let Some(pg) = jitgate_testkit::postgres_store().await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut h = Harness::start_with(pg.store.clone(), clock.clone(), None).await;
    let mut body = write_plc7("30m");
    body["path"] = json!("emergency");
    let v = h.request("oscar", body).await;
    let gid = v["grant"]["id"].as_str().unwrap().to_string();
    // The node comes back with its data directory (as a restarted node does): the database
    // holds the cluster's keys, sealed under the cluster.key found there.
    let keys = std::mem::replace(&mut h.data, tempfile::tempdir().unwrap());
    let store = h.stop().await;
    clock.advance(chrono::Duration::hours(1));
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: keys.path().to_path_buf(),
        ..ServerConfig::default()
    };
    let server = jitgate_server::start_with_store(config, clock.clone(), store)
        .await
        .unwrap();
    let g = server
        .state
        .store
        .read()
        .await
        .unwrap()
        .get_grant(&gid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.state, jitgate_core::GrantState::Ending);
    assert_eq!(g.end_reason, Some(jitgate_core::EndReason::Expired));
    server.stop().await;
    pg.cleanup().await;
}
