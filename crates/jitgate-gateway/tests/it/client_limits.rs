//! The limits on the gateway's client port (`[client_limits]`), through the real gateway
//! (TLS tunnels with proof of possession, the simulated PLC behind it) and mbpoll through
//! `jitgate connect`'s local port: beyond the connection cap a connection is closed at once
//! and counted as `too_many_connections` without throttling its source; a session without
//! traffic ends as `idle_timeout`; other clients are served before and after.

use crate::governance::{of_kind, read_holding, rig_with, Rig};
use crate::peers;
use jitgate_credential::ClientKey;
use jitgate_gateway::connect::{self, Target};
use jitgate_gateway::refusals::THROTTLE_AFTER;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// mbpoll reads holding registers 0-2 of unit 1 through a `jitgate connect` local port.
async fn mbpoll_through_connect(target: Target) {
    let port = crate::ports::free_port();
    let local = tokio::spawn(connect::serve_local(
        format!("127.0.0.1:{port}").parse().unwrap(),
        target,
        |_| {},
    ));
    // The local port is bound by the task; wait until it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "jitgate connect never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = tokio::task::spawn_blocking(move || {
        peers::mbpoll(
            port,
            &["-a", "1", "-t", "4", "-r", "0", "-c", "3", "127.0.0.1"],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        peers::mbpoll_values(&out),
        vec![(0, 100), (1, 101), (2, 102)],
        "mbpoll through the gateway: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    local.abort();
}

/// Poll until `done` holds (the gateway frees a slot when the session task ends).
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A raw TCP connection is closed by the gateway without a byte.
async fn closed_at_once(r: &Rig) {
    let mut tcp = TcpStream::connect(r.gw.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("the gateway kept a connection beyond its cap");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_connections_are_closed_counted_and_never_throttled() {
    if !peers::have_mbpoll() {
        return;
    }
    let r = rig_with(|c| c.client_limits.max_connections = 2).await;
    let key = ClientKey::generate();
    let target = r.grant("grant-cap", &key, |_| {});
    let (mut a, _) = connect::open_tunnel(&target).await.unwrap();
    let (mut b, _) = connect::open_tunnel(&target).await.unwrap();
    assert_eq!(
        read_holding(&mut a, 0, 1).await.unwrap(),
        vec![3, 2, 0, 100]
    );
    assert_eq!(r.gw.gateway.open_connections(), 2);
    // More refusals than would throttle an address that failed handshakes.
    let refused = THROTTLE_AFTER as usize + 5;
    for _ in 0..refused {
        closed_at_once(&r).await;
    }
    assert!(connect::open_tunnel(&target).await.is_err());
    // The sessions in place are untouched.
    assert_eq!(
        read_holding(&mut b, 1, 1).await.unwrap(),
        vec![3, 2, 0, 101]
    );
    // One leaves: the next client is served, mbpoll through `jitgate connect` included,
    // although its address was refused more than the throttle allows.
    connect::close(&mut a).await;
    until("the closed session kept its place", || {
        r.gw.gateway.open_connections() == 1
    })
    .await;
    mbpoll_through_connect(target).await;
    assert_eq!(
        read_holding(&mut b, 2, 1).await.unwrap(),
        vec![3, 2, 0, 102]
    );

    assert!(r.gw.gateway.flush_pre_auth_refusals());
    let events = r
        .events_until(|ev| {
            ev.iter()
                .any(|e| e.data["code"] == "pre_auth_refused_summary")
        })
        .await;
    let refusals = of_kind(&events, "session.refused");
    let detailed: Vec<_> = refusals
        .iter()
        .filter(|e| e.data["code"] == "too_many_connections")
        .collect();
    assert_eq!(
        detailed.len(),
        3,
        "three per address and code: {refusals:?}"
    );
    assert_eq!(detailed[0].data["pre_auth"], true);
    assert!(detailed[0].grant_id.is_none());
    let summary = refusals
        .iter()
        .find(|e| e.data["code"] == "pre_auth_refused_summary")
        .unwrap();
    assert_eq!(
        summary.data["by_code"],
        serde_json::json!({"too_many_connections": refused + 1}),
        "{summary:?}"
    );
    r.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_traffic_ends_as_idle_timeout_and_others_are_served() {
    if !peers::have_mbpoll() {
        return;
    }
    let r = rig_with(|c| c.client_limits.idle_timeout = "2s".into()).await;
    let key = ClientKey::generate();
    let target = r.grant("grant-idle", &key, |_| {});
    let (mut idle, v) = connect::open_tunnel(&target).await.unwrap();
    let idle_id = v.session.unwrap();
    // Nothing sent: the gateway ends the session (the read sees the close).
    let mut buf = [0u8; 16];
    let ended = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf))
        .await
        .expect("an idle session was never ended");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    // Other clients are served after it.
    let (mut next, _) = connect::open_tunnel(&target).await.unwrap();
    assert_eq!(
        read_holding(&mut next, 0, 1).await.unwrap(),
        vec![3, 2, 0, 100]
    );
    connect::close(&mut next).await;
    mbpoll_through_connect(target).await;
    let events = r
        .events_until(|ev| {
            ev.iter().any(|e| {
                e.kind == "session.ended" && e.session_id.as_deref() == Some(idle_id.as_str())
            })
        })
        .await;
    let end = of_kind(&events, "session.ended")
        .into_iter()
        .find(|e| e.session_id.as_deref() == Some(idle_id.as_str()))
        .unwrap_or_else(|| panic!("no end recorded: {events:?}"));
    assert_eq!(end.data["reason"], "idle_timeout");
    assert_eq!(end.data["operations"], 0);
    assert_eq!(end.grant_id.as_deref(), Some("grant-idle"));
    r.gw.stop().await;
}
