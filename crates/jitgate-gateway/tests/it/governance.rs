//! The gateway runtime against a scripted server: a small HTTP + WebSocket stand-in for
//! the jitgate server that serves exactly the key list, assets and grant states a test sets,
//! records every event the gateway delivers, and pushes control messages on demand. What is
//! checked here: pre-authentication refusals are folded into a bounded summary, the online
//! check compares the token's scope digest and subject with the grant's, sessions end with a
//! normal close reason, a probe opens no session, and a retired key is refused at once with
//! its live sessions cut.

use futures_util::{SinkExt, StreamExt};
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use jitgate_core::{Asset, GrantState};
use jitgate_credential::{AssetClaim, ClientKey, GrantClaims, KeyRing};
use jitgate_gateway::config::GatewayConfig;
use jitgate_gateway::connect::{self, ConnectError, Target};
use jitgate_gateway::modbus::sim::{self, SimPlc};
use jitgate_gateway::runtime::RunningGateway;
use jitgate_gateway::wire::{
    ControlDown, GatewayEvent, GatewayEventBatch, GatewaySetup, GrantStatus, TokenResponse,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub(crate) const GW: &str = "gw-north";
pub(crate) const DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) setup: Option<GatewaySetup>,
    pub(crate) grants: HashMap<String, GrantStatus>,
    pub(crate) events: Vec<GatewayEvent>,
    pub(crate) control: Vec<mpsc::UnboundedSender<ControlDown>>,
}

pub(crate) type Shared = Arc<Mutex<Fake>>;

async fn read_request(s: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut first = head.lines().next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, body))
}

async fn respond(s: &mut TcpStream, status: u16, body: &Value) {
    let text = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        text.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(text.as_bytes()).await;
    let _ = s.shutdown().await;
}

pub(crate) async fn serve_one(fake: Shared, mut s: TcpStream) {
    let mut peek = [0u8; 64];
    let n = s.peek(&mut peek).await.unwrap_or(0);
    if peek[..n].starts_with(b"GET /api/v1/gateway/control") {
        let Ok(ws) = tokio_tungstenite::accept_async(s).await else {
            return;
        };
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel();
        fake.lock().unwrap().control.push(tx);
        let sync = serde_json::to_string(&ControlDown::Sync { revoked: vec![] }).unwrap();
        if sink.send(Message::Text(sync.into())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                Some(msg) = rx.recv() => {
                    let text = serde_json::to_string(&msg).unwrap();
                    if sink.send(Message::Text(text.into())).await.is_err() { return; }
                }
                m = stream.next() => if !matches!(m, Some(Ok(_))) { return; },
            }
        }
    }
    let Some((method, path, body)) = read_request(&mut s).await else {
        return;
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/v1/gateway/hello") => {
            let setup = fake.lock().unwrap().setup.clone();
            respond(&mut s, 200, &serde_json::to_value(setup).unwrap()).await;
        }
        ("POST", "/api/v1/gateway/events") => {
            let batch: GatewayEventBatch = serde_json::from_slice(&body).unwrap();
            let recorded = batch.events.len();
            let seq = {
                let mut f = fake.lock().unwrap();
                f.events.extend(batch.events);
                f.events.last().map(|e| e.gseq).unwrap_or(0)
            };
            respond(
                &mut s,
                200,
                &json!({"delivered_seq": seq, "recorded": recorded}),
            )
            .await;
        }
        ("GET", p) if p.starts_with("/api/v1/gateway/grants/") => {
            let id = p.trim_start_matches("/api/v1/gateway/grants/");
            let status = fake.lock().unwrap().grants.get(id).cloned();
            match status {
                Some(g) => respond(&mut s, 200, &serde_json::to_value(g).unwrap()).await,
                None => respond(&mut s, 404, &json!({"code": "not_found"})).await,
            }
        }
        _ => respond(&mut s, 404, &json!({"code": "not_found"})).await,
    }
}

pub(crate) struct Rig {
    fake: Shared,
    ring: KeyRing,
    plc: SimPlc,
    pub(crate) gw: RunningGateway,
    fingerprint: String,
    _state: tempfile::TempDir,
}

fn asset(plc: &SimPlc) -> Asset {
    serde_json::from_value(json!({
        "id": "plc-7", "kind": "plc", "site": "north", "criticality": "high",
        "enforcement": "brokered", "gateway": GW,
        "endpoints": {"modbus": {"address": plc.local_addr().to_string(), "unit_ids": [1]}},
    }))
    .unwrap()
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

/// The rig, with the gateway's configuration adjusted by `edit` before it starts.
pub(crate) async fn rig_with(edit: impl FnOnce(&mut GatewayConfig)) -> Rig {
    let plc = sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    for n in 0..10u16 {
        plc.set_holding(1, n, n + 100);
    }
    let ring = KeyRing::in_memory(chrono::Utc::now()).unwrap();
    let fake: Shared = Arc::default();
    fake.lock().unwrap().setup = Some(GatewaySetup {
        gateway_id: GW.into(),
        token_keys: ring.public_keys(chrono::Utc::now()),
        assets: vec![asset(&plc)],
        ssh_user_ca_keys: vec![],
        delivered_seq: 0,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let f = fake.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_one(f.clone(), s));
        }
    });
    let state = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig {
        server: format!("http://{server}"),
        server_fingerprint: None,
        server_ca_file: None,
        api_key: Some("jgk_test".into()),
        api_key_file: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        ssh_listen: None,
        ssh_advertise: None,
        state_dir: state.path().to_path_buf(),
        tls_cert: None,
        tls_key: None,
        offline_grace: "0s".into(),
        failover_servers: Vec::new(),
        cut_after_silence: "5m".into(),
        metrics_listen: None,
        device_timeout: "1s".into(),
        event_sync_interval: "100ms".into(),
        client_limits: Default::default(),
        recordings: Default::default(),
    };
    edit(&mut config);
    let gw = jitgate_gateway::runtime::start(config).await.unwrap();
    let cert = std::fs::read(state.path().join("gateway-cert.pem")).unwrap();
    let der = rustls_pemfile::certs(&mut cert.as_slice())
        .next()
        .unwrap()
        .unwrap();
    let fingerprint = jitgate_gateway::tls::fingerprint(&der);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw
        .gateway
        .control_connected
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        assert!(Instant::now() < deadline, "control channel never came up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Rig {
        fake,
        ring,
        plc,
        gw,
        fingerprint,
        _state: state,
    }
}

impl Rig {
    /// An active grant at the fake server, and a token for it signed by the ring's current
    /// key with `claims` adjusted by `edit`.
    pub(crate) fn grant(
        &self,
        id: &str,
        key: &ClientKey,
        edit: impl Fn(&mut GrantClaims),
    ) -> Target {
        let now = chrono::Utc::now();
        self.fake.lock().unwrap().grants.insert(
            id.into(),
            GrantStatus {
                grant_id: id.into(),
                state: GrantState::Active,
                expires_at: now + chrono::Duration::hours(1),
                scope_digest: DIGEST.into(),
                subject: "alice".into(),
                scope: None,
            },
        );
        let mut claims = GrantClaims {
            token_id: format!("tok-{id}"),
            grant_id: id.into(),
            subject: "alice".into(),
            audience: GW.into(),
            assets: vec![AssetClaim {
                asset: "plc-7".into(),
                protocol: "modbus".into(),
                address: self.plc.local_addr().to_string(),
                unit_ids: vec![1],
            }],
            scope_digest: DIGEST.into(),
            scope: vec![ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: ModbusOp::Read,
                table: Some(ModbusTable::Holding),
                start: 0,
                end: 9,
            }],
            issued_at: now,
            not_before: now - chrono::Duration::seconds(5),
            expires_at: now + chrono::Duration::hours(1),
            cnf: key.public_b64(),
        };
        edit(&mut claims);
        let token = self.ring.issue(&claims).unwrap();
        Target {
            token: TokenResponse {
                token_fingerprint: jitgate_credential::token_fingerprint(&token),
                token,
                asset: "plc-7".into(),
                gateway_id: GW.into(),
                gateway_address: self.gw.addr.to_string(),
                gateway_fingerprint: self.fingerprint.clone(),
                expires_at: now + chrono::Duration::hours(1),
                protocols: Vec::new(),
            },
            key: key.clone(),
            protocol: None,
        }
    }

    /// The events the gateway delivered, polled until `done` holds (delivery is
    /// asynchronous) or 10 s pass.
    pub(crate) async fn events_until(
        &self,
        done: impl Fn(&[GatewayEvent]) -> bool,
    ) -> Vec<GatewayEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.fake.lock().unwrap().events.clone();
            if done(&events) || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn push(&self, msg: ControlDown) {
        for tx in &self.fake.lock().unwrap().control {
            let _ = tx.send(msg.clone());
        }
    }
}

fn refused_code<T>(r: Result<T, ConnectError>) -> String {
    match r {
        Err(ConnectError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the session was accepted"),
    }
}

/// One FC3 read of `count` registers at `addr` on unit 1.
pub(crate) async fn read_holding(
    s: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin),
    addr: u16,
    count: u16,
) -> std::io::Result<Vec<u8>> {
    let mut req = vec![0, 1, 0, 0, 0, 6, 1, 3];
    req.extend_from_slice(&addr.to_be_bytes());
    req.extend_from_slice(&count.to_be_bytes());
    s.write_all(&req).await?;
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await?;
    let len = u16::from_be_bytes([head[4], head[5]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(1)];
    s.read_exact(&mut body).await?;
    Ok(body)
}

pub(crate) fn of_kind<'a>(events: &'a [GatewayEvent], kind: &str) -> Vec<&'a GatewayEvent> {
    events.iter().filter(|e| e.kind == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_garbage_handshakes_leaves_a_bounded_log_and_a_summary_that_adds_up() {
    let r = rig().await;
    const FLOOD: usize = 500;
    // Half speak TLS and send garbage instead of a hello; half do not even speak TLS.
    for i in 0..FLOOD {
        let mut tcp = TcpStream::connect(r.gw.addr).await.unwrap();
        if i % 2 == 0 {
            let config = jitgate_gateway::tls::pinned_client_config(&r.fingerprint).unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            if let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
            {
                let _ = tls.write_all(b"{not json\n").await;
                let mut sink = Vec::new();
                let _ = tls.read_to_end(&mut sink).await;
            }
        } else {
            let _ = tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let mut sink = Vec::new();
            let _ = tcp.read_to_end(&mut sink).await;
        }
    }
    // Close the window now instead of waiting a minute.
    assert!(r.gw.gateway.flush_pre_auth_refusals());
    let events = r
        .events_until(|ev| {
            ev.iter()
                .any(|e| e.data["code"] == "pre_auth_refused_summary")
        })
        .await;
    let refused = of_kind(&events, "session.refused");
    let summaries: Vec<&&GatewayEvent> = refused
        .iter()
        .filter(|e| e.data["code"] == "pre_auth_refused_summary")
        .collect();
    assert_eq!(summaries.len(), 1, "{events:?}");
    let s = &summaries[0].data;
    let detailed = refused.len() - 1;
    // Bounded: 3 per address and code (here one address, at most 4 codes), not 500.
    assert!(detailed <= 12, "{detailed} detailed events: {refused:?}");
    assert_eq!(s["count"], FLOOD as u64, "{s}");
    assert_eq!(s["detailed"], detailed as u64, "{s}");
    let by_code: u64 = s["by_code"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_code, FLOOD as u64, "{s}");
    assert_eq!(s["peers"], json!({"127.0.0.1": FLOOD}), "{s}");
    assert_eq!(s["peers_truncated"], 0);
    // The throttle kicked in: most connections never got a TLS handshake.
    assert!(
        s["by_code"]["throttled"].as_u64().unwrap() >= (FLOOD as u64) - 30,
        "{s}"
    );
    assert!(s["window_start"].as_str().unwrap() <= s["window_end"].as_str().unwrap());
    // Every detailed one says it was before authentication, and names no grant.
    for e in refused
        .iter()
        .filter(|e| e.data["code"] != "pre_auth_refused_summary")
    {
        assert_eq!(e.data["pre_auth"], true, "{e:?}");
        assert!(e.grant_id.is_none());
    }
    // The window is closed: nothing more to summarise, and the address may connect again.
    assert!(!r.gw.gateway.flush_pre_auth_refusals());
    let key = ClientKey::generate();
    let target = r.grant("grant-after-flood", &key, |_| {});
    let (mut s, v) = connect::open_tunnel(&target).await.unwrap();
    assert!(v.ok);
    assert_eq!(
        read_holding(&mut s, 0, 1).await.unwrap(),
        vec![3, 2, 0, 100]
    );
    r.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_scope_or_subject_differs_from_the_grant_is_refused() {
    let r = rig().await;
    let key = ClientKey::generate();
    // Validly signed, but the claims carry another scope digest than the grant's.
    let other = r.grant("grant-scope", &key, |c| {
        c.scope_digest = format!("sha256:{}", "2".repeat(64));
    });
    let err = connect::open_tunnel(&other).await.err().unwrap();
    match &err {
        ConnectError::Refused { code, message } => {
            assert_eq!(code, "scope_mismatch");
            assert!(message.contains("scope digest"), "{message}");
            assert!(message.contains(DIGEST), "{message}");
        }
        e => panic!("{e}"),
    }
    let wrong_subject = r.grant("grant-subject", &key, |c| c.subject = "mallory".into());
    assert_eq!(
        refused_code(connect::open_tunnel(&wrong_subject).await),
        "subject_mismatch"
    );
    // The same grant with the matching claims is accepted.
    let good = r.grant("grant-scope", &key, |_| {});
    let (_s, v) = connect::open_tunnel(&good).await.unwrap();
    assert!(v.ok);
    // Post-authentication refusals are recorded one each, under their grant.
    let events = r
        .events_until(|ev| {
            ev.iter()
                .filter(|e| e.kind == "session.refused" && e.grant_id.is_some())
                .count()
                >= 2
        })
        .await;
    let codes: Vec<(&str, Option<&str>)> = of_kind(&events, "session.refused")
        .iter()
        .map(|e| (e.data["code"].as_str().unwrap(), e.grant_id.as_deref()))
        .collect();
    assert!(
        codes.contains(&("scope_mismatch", Some("grant-scope"))),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("subject_mismatch", Some("grant-subject"))),
        "{codes:?}"
    );
    r.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_disconnect_is_client_closed_and_a_probe_opens_no_session() {
    let r = rig().await;
    let key = ClientKey::generate();
    let target = r.grant("grant-close", &key, |_| {});
    // The probe: accepted, no session id, nothing recorded.
    let v = connect::probe(&target).await.unwrap();
    assert!(v.ok && v.session.is_none(), "{v:?}");
    // A session closed with close_notify, one dropped without it.
    let (mut clean, v) = connect::open_tunnel(&target).await.unwrap();
    let clean_id = v.session.unwrap();
    read_holding(&mut clean, 0, 1).await.unwrap();
    connect::close(&mut clean).await;
    let (mut cut, v) = connect::open_tunnel(&target).await.unwrap();
    let cut_id = v.session.unwrap();
    read_holding(&mut cut, 0, 1).await.unwrap();
    // Close the TCP socket under the TLS stream: no close_notify.
    cut.get_mut().0.shutdown().await.unwrap();
    drop(cut);
    let events = r
        .events_until(|ev| of_kind(ev, "session.ended").len() >= 2)
        .await;
    let ended: HashMap<&str, &Value> = of_kind(&events, "session.ended")
        .iter()
        .map(|e| (e.session_id.as_deref().unwrap(), &e.data))
        .collect();
    assert_eq!(
        ended[clean_id.as_str()]["reason"],
        "client_closed",
        "{ended:?}"
    );
    assert_eq!(ended[clean_id.as_str()]["operations"], 1);
    assert_eq!(
        ended[cut_id.as_str()]["reason"],
        "client_disconnected",
        "{ended:?}"
    );
    let started = of_kind(&events, "session.started");
    assert_eq!(started.len(), 2, "the probe is not a session: {started:?}");
    assert!(of_kind(&events, "session.refused").is_empty(), "{events:?}");
    r.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_key_is_refused_at_once_and_its_live_sessions_are_cut() {
    let mut r = rig().await;
    let key = ClientKey::generate();
    let old = r.grant("grant-old-key", &key, |_| {});
    let leaked = r.ring.current_kid().to_string();
    let (mut live, v) = connect::open_tunnel(&old).await.unwrap();
    let live_id = v.session.unwrap();
    read_holding(&mut live, 0, 1).await.unwrap();
    // Rotate; a token of the new key and one of the old both work until the retirement.
    r.ring
        .rotate(chrono::Utc::now(), chrono::Duration::days(30))
        .unwrap();
    let fresh = r.grant("grant-new-key", &key, |_| {});
    r.fake.lock().unwrap().setup.as_mut().unwrap().token_keys =
        r.ring.public_keys(chrono::Utc::now());
    r.gw.gateway.refresh_now().await.unwrap();
    let (mut bystander, _) = connect::open_tunnel(&fresh).await.unwrap();

    // The server retires the leaked key and pushes the order; its key list (served at the
    // next refresh) does not say so yet — the push alone must be enough.
    r.push(ControlDown::RetireKey {
        kid: leaked.clone(),
    });
    let mut buf = [0u8; 16];
    let ended = tokio::time::timeout(Duration::from_secs(10), live.read(&mut buf))
        .await
        .expect("the session on the retired key was not cut");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    assert_eq!(
        refused_code(connect::open_tunnel(&old).await),
        "key_retired"
    );
    // The client sees its connection closed before the session task has left the registry
    // (it closes the sockets first, then records the end): wait for that, bounded.
    let left = async {
        while r.gw.gateway.live_sessions_of_key(&leaked) != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), left)
        .await
        .expect("the cut session never left the registry");
    // A refresh with the stale list does not bring the key back.
    r.gw.gateway.refresh_now().await.unwrap();
    assert_eq!(
        refused_code(connect::open_tunnel(&old).await),
        "key_retired"
    );
    // Sessions under the current key are untouched.
    assert_eq!(
        read_holding(&mut bystander, 1, 1).await.unwrap(),
        vec![3, 2, 0, 101]
    );
    let events = r
        .events_until(|ev| ev.iter().any(|e| e.data["reason"] == "key_retired"))
        .await;
    let end = of_kind(&events, "session.ended")
        .into_iter()
        .find(|e| e.session_id.as_deref() == Some(live_id.as_str()))
        .unwrap_or_else(|| panic!("no end recorded: {events:?}"));
    assert_eq!(end.data["reason"], "key_retired");
    r.gw.stop().await;
}
