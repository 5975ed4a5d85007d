//! The gateway against bad input, in process: the real server and gateway on loopback, the
//! simulated PLC as the device. Each refusal is clean, recorded, and the gateway keeps
//! serving other sessions.

use super::*;
use jitgate_credential::{ClientKey, GrantClaims, KeyRing};
use jitgate_gateway::config::GatewayConfig;
use jitgate_gateway::connect::{open_tunnel, ConnectError, Target};
use jitgate_gateway::modbus::sim::{self, SimPlc};
use jitgate_gateway::runtime::RunningGateway;
use jitgate_gateway::tunnel::{self, ChallengeMsg, Hello, Proof, Verdict};
use jitgate_gateway::wire::TokenResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

pub(crate) struct Rig {
    pub h: Harness,
    pub plc: SimPlc,
    pub gw: RunningGateway,
    pub config: GatewayConfig,
    pub _state: tempfile::TempDir,
}

pub(crate) async fn rig(store: Store) -> Rig {
    rig_at(store, crate::start_time()).await
}

/// A rig whose server clock starts at `start` (the gateway keeps the real clock).
pub(crate) async fn rig_at(store: Store, start: jitgate_core::Timestamp) -> Rig {
    let mut h = Harness::start_with(
        store,
        std::sync::Arc::new(jitgate_core::ManualClock::new(start)),
        None,
    )
    .await;
    let plc = sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    for n in 0..100u16 {
        plc.set_holding(1, n, n + 1000);
    }
    {
        let mut tx = h.state().store.write().await.unwrap();
        let mut asset = tx.get_asset("plc-7").await.unwrap().unwrap();
        asset.endpoints.modbus.as_mut().unwrap().address = plc.local_addr().to_string();
        tx.upsert_asset(&asset).await.unwrap();
        tx.commit().await.unwrap();
    }
    let key = h.api_key("gw-north", "test").await;
    let state = tempfile::tempdir().unwrap();
    let config = GatewayConfig {
        server: h.base.clone(),
        server_fingerprint: None,
        server_ca_file: None,
        api_key: Some(key),
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
    let gw = jitgate_gateway::runtime::start(config.clone())
        .await
        .unwrap();
    Rig {
        config,
        h,
        plc,
        gw,
        _state: state,
    }
}

/// The event log as `sam` sees it, polled until `done` holds (events arrive from the gateway
/// asynchronously) or 15 s pass.
pub(crate) async fn events_until(
    h: &mut Harness,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, events) = h
            .call("sam", "GET", &format!("/api/v1/events?{query}"), None)
            .await;
        let events = events.as_array().unwrap().clone();
        if done(&events) || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Move plc-7 to another device address and have the gateway pick it up now.
pub(crate) async fn point_plc7_at(r: &Rig, addr: std::net::SocketAddr) {
    let mut tx = r.h.state().store.write().await.unwrap();
    let mut asset = tx.get_asset("plc-7").await.unwrap().unwrap();
    asset.endpoints.modbus.as_mut().unwrap().address = addr.to_string();
    tx.upsert_asset(&asset).await.unwrap();
    tx.commit().await.unwrap();
    r.gw.gateway.refresh_now().await.unwrap();
}

/// A grant for alice: read holding 0-99 on plc-7, approved by bob.
pub(crate) async fn grant(h: &mut Harness) -> String {
    let req = h.request("alice", read_plc7()).await;
    let (_, v) = h.approve("bob", &req, None).await;
    v["grant"]["id"].as_str().unwrap().to_string()
}

pub(crate) async fn token_for(h: &mut Harness, grant: &str, key: &ClientKey) -> TokenResponse {
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/api/v1/grants/{grant}/token"),
            Some(json!({"public_key": key.public_b64()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    serde_json::from_value(v).unwrap()
}

pub(crate) fn refused_code(r: Result<impl Sized, ConnectError>) -> String {
    match r {
        Err(ConnectError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the session was accepted"),
    }
}

/// One FC3 read of `count` registers at `addr` on unit 1; returns the raw response.
pub(crate) async fn read_holding(
    stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin),
    addr: u16,
    count: u16,
) -> std::io::Result<Vec<u8>> {
    let mut req = vec![0, 1, 0, 0, 0, 6, 1, 3];
    req.extend_from_slice(&addr.to_be_bytes());
    req.extend_from_slice(&count.to_be_bytes());
    stream.write_all(&req).await?;
    let mut head = [0u8; 7];
    stream.read_exact(&mut head).await?;
    let len = u16::from_be_bytes([head[4], head[5]]) as usize;
    let mut body = vec![0u8; len - 1];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Claims like the server issues, for crafting bad tokens.
fn claims_like(t: &TokenResponse, key: &ClientKey) -> GrantClaims {
    let v = jitgate_credential::Verifier::new(&[]).unwrap();
    let _ = v;
    let payload = t.token.split('.').nth(2).unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    // PASETO v4.public: message || 64-byte signature.
    let mut claims: GrantClaims = serde_json::from_slice(&bytes[..bytes.len() - 64]).unwrap();
    claims.cnf = key.public_b64();
    claims
}

#[tokio::test]
async fn bad_tokens_and_proofs_are_refused_and_recorded() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let good = token_for(&mut r.h, &g, &key).await;

    // The valid session works, with the device's real values.
    let (mut ok_session, verdict) = open_tunnel(&Target {
        token: good.clone(),
        key: key.clone(),
        protocol: None,
    })
    .await
    .unwrap();
    assert!(verdict.ok);
    let body = read_holding(&mut ok_session, 0, 2).await.unwrap();
    assert_eq!(body, vec![3, 4, 0x03, 0xe8, 0x03, 0xe9]);

    // Another client key (someone who copied the token): proof of possession fails.
    let thief = ClientKey::generate();
    let code = refused_code(
        open_tunnel(&Target {
            token: good.clone(),
            key: thief.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "bad_pop_signature");

    // Forged: the same claims signed by a key the server never published.
    let forger = KeyRing::in_memory(chrono::Utc::now()).unwrap();
    let forged = TokenResponse {
        token: forger.issue(&claims_like(&good, &key)).unwrap(),
        ..good.clone()
    };
    let code = refused_code(
        open_tunnel(&Target {
            token: forged,
            key: key.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "unknown_key");

    // Expired, and for another gateway: signed by the server's own key.
    let mut expired = claims_like(&good, &key);
    expired.not_before = chrono::Utc::now() - chrono::Duration::hours(2);
    expired.issued_at = expired.not_before;
    expired.expires_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let token = r.h.state().issue_token(&expired).unwrap();
    let code = refused_code(
        open_tunnel(&Target {
            token: TokenResponse {
                token,
                ..good.clone()
            },
            key: key.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "expired");
    let mut elsewhere = claims_like(&good, &key);
    elsewhere.audience = "gw-south".into();
    let token = r.h.state().issue_token(&elsewhere).unwrap();
    let code = refused_code(
        open_tunnel(&Target {
            token: TokenResponse {
                token,
                ..good.clone()
            },
            key: key.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "wrong_audience");

    // A token for plc-7 presented for another asset behind the same gateway.
    let code = refused_code(
        open_tunnel(&Target {
            token: TokenResponse {
                asset: "historian".into(),
                ..good.clone()
            },
            key: key.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "wrong_asset");

    // Garbage instead of a token.
    let code = refused_code(
        open_tunnel(&Target {
            token: TokenResponse {
                token: "v4.public.AAAA".into(),
                ..good.clone()
            },
            key: key.clone(),
            protocol: None,
        })
        .await,
    );
    assert_eq!(code, "token_malformed");

    // A replayed proof: the signature of an earlier handshake does not answer a new challenge.
    let first = raw_handshake(&good, |nonce| {
        key.sign_pop(&nonce, &good.token, &good.gateway_id)
    })
    .await;
    assert!(first.0.ok);
    let old_sig = first.1;
    let replay = raw_handshake(&good, |_| old_sig.clone()).await;
    assert_eq!(replay.0.code.as_deref(), Some("bad_pop_signature"));

    // Through all of that the first session kept working.
    let body = read_holding(&mut ok_session, 10, 1).await.unwrap();
    assert_eq!(body, vec![3, 2, 0x03, 0xf2]);

    // Each refusal is in the evidence log with its code.
    // (Seven refusals in all: the six codes below and the replayed proof.)
    let events = events_until(&mut r.h, "limit=1000", |events| {
        events
            .iter()
            .filter(|e| e["kind"] == "session.refused")
            .count()
            >= 7
    })
    .await;
    let codes: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "session.refused")
        .map(|e| {
            e["data"]["detail"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for code in [
        "bad_pop_signature",
        "unknown_key",
        "expired",
        "wrong_audience",
        "wrong_asset",
        "token_malformed",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} not recorded: {codes:?}"
        );
    }
    r.gw.stop().await;
    r.h.stop().await;
}

/// A handshake by hand, signing the challenge with `sign`; returns the verdict and the
/// signature that was sent.
async fn raw_handshake(t: &TokenResponse, sign: impl Fn([u8; 32]) -> String) -> (Verdict, String) {
    let tcp = tokio::net::TcpStream::connect(&t.gateway_address)
        .await
        .unwrap();
    let config = jitgate_gateway::tls::pinned_client_config(&t.gateway_fingerprint).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1".to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut s = BufReader::new(tls);
    tunnel::write_msg(
        &mut s,
        &Hello {
            v: tunnel::VERSION,
            token: t.token.clone(),
            asset: t.asset.clone(),
        },
    )
    .await
    .unwrap();
    let c: ChallengeMsg = tunnel::read_msg(&mut s).await.unwrap();
    let nonce = jitgate_credential::Challenge::parse_nonce(&c.challenge).unwrap();
    let sig = sign(nonce);
    tunnel::write_msg(&mut s, &Proof { pop: sig.clone() })
        .await
        .unwrap();
    (tunnel::read_msg(&mut s).await.unwrap(), sig)
}

#[tokio::test]
async fn malformed_frames_and_bad_devices_end_only_their_session() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let target = Target {
        token: t.clone(),
        key: key.clone(),
        protocol: None,
    };
    let (mut bystander, _) = open_tunnel(&target).await.unwrap();

    // Wrong protocol id, length mismatch, oversized: each closes that session.
    for bad in [
        vec![0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1], // protocol id 1
        vec![0, 1, 0, 0, 0, 1, 1],                // length 1
        vec![0, 1, 0, 0, 1, 0, 1, 3, 0, 0, 0, 1], // length 256
        vec![0, 1, 0, 0, 0, 4, 1, 3, 0, 0],       // FC3 PDU truncated
    ] {
        let (mut s, _) = open_tunnel(&target).await.unwrap();
        s.write_all(&bad).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "session closed without an answer for {bad:?}");
    }
    // The PLC saw none of it; the bystander still works.
    let before = r.plc.requests();
    assert_eq!(
        read_holding(&mut bystander, 5, 1).await.unwrap(),
        vec![3, 2, 0x03, 0xed]
    );
    assert_eq!(r.plc.requests(), before + 1);

    // A device that never answers: point plc-7 at a silent listener.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    point_plc7_at(&r, silent_addr).await;
    let (mut s, _) = open_tunnel(&target).await.unwrap();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_holding(&mut s, 0, 1),
    )
    .await
    .unwrap();
    assert!(
        err.is_err(),
        "a silent device ends the session (device_timeout)"
    );
    // The bystander's session was opened against the real PLC and is unaffected.
    assert_eq!(
        read_holding(&mut bystander, 6, 1).await.unwrap(),
        vec![3, 2, 0x03, 0xee]
    );
    r.gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn revoked_grants_and_an_unreachable_server_refuse_new_sessions() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let target = Target {
        token: t,
        key,
        protocol: None,
    };
    let (mut live, _) = open_tunnel(&target).await.unwrap();

    // Server down: fail closed for new sessions; the running one goes on until its expiry.
    let addr = r.h.server.as_ref().unwrap().addr;
    let store = r.h.stop_server_only().await;
    assert_eq!(
        refused_code(open_tunnel(&target).await),
        "server_unreachable"
    );
    assert_eq!(
        read_holding(&mut live, 1, 1).await.unwrap(),
        vec![3, 2, 0x03, 0xe9]
    );

    // Back up on the same address: operations done while it was down are delivered.
    r.h.restart_server_at(store, addr).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, events) =
            r.h.call("sam", "GET", &format!("/api/v1/events?grant={g}"), None)
                .await;
        let ops = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "operation")
            .count();
        if ops >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spooled operation not delivered: {events}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Revoked: the server no longer confirms the grant.
    let (s, _) =
        r.h.call(
            "sam",
            "POST",
            &format!("/api/v1/grants/{g}/revoke"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Refused by the gateway's revocation list (pushed over the control channel) or, if
    // the handshake won the race with the push, by the online check.
    let code = refused_code(open_tunnel(&target).await);
    assert!(
        code == "grant_revoked" || code == "grant_not_active",
        "{code}"
    );
    r.gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn sessions_end_at_token_expiry_even_with_the_server_down() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let mut body = read_plc7();
    body["duration"] = json!("8s");
    let req = r.h.request("alice", body).await;
    let (_, v) = r.h.approve("bob", &req, None).await;
    let g = v["grant"]["id"].as_str().unwrap().to_string();
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let (mut live, _) = open_tunnel(&Target {
        token: t.clone(),
        key,
        protocol: None,
    })
    .await
    .unwrap();
    assert!(read_holding(&mut live, 0, 1).await.is_ok());

    // The server goes away; only the token's own expiry is left to end the session.
    let _store = r.h.stop_server_only().await;
    let started = std::time::Instant::now();
    let mut last_ok = started;
    loop {
        match read_holding(&mut live, 0, 1).await {
            Ok(_) => last_ok = std::time::Instant::now(),
            Err(_) => break,
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "session outlived its token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let expired_at: chrono::DateTime<chrono::Utc> = t.expires_at;
    let cut_late = chrono::Utc::now() - expired_at;
    assert!(
        cut_late < chrono::Duration::seconds(2),
        "cut {cut_late} after expires-at"
    );
    assert!(last_ok <= std::time::Instant::now());
    r.gw.stop().await;
}

#[tokio::test]
async fn key_rotation_is_for_admins_and_keeps_old_keys_published() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let (s, _) = h.call("alice", "POST", "/api/v1/keys/rotate", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, before) = h.call("sam", "GET", "/api/v1/keys", None).await;
    let (s, after) = h.call("sam", "POST", "/api/v1/keys/rotate", None).await;
    assert_eq!(s, StatusCode::OK, "{after}");
    assert_ne!(before["current_kid"], after["current_kid"]);
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        2,
        "the old key stays published: {after}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_device_flooding_exceptions_ends_its_session_only() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let target = Target {
        token: t,
        key,
        protocol: None,
    };
    let (mut bystander, _) = open_tunnel(&target).await.unwrap();

    // A device that floods unsolicited exception responses the moment it is connected.
    let flood = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flood_addr = flood.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = flood.accept().await {
            tokio::spawn(async move {
                for tid in 0..2000u16 {
                    let mut adu = tid.to_be_bytes().to_vec();
                    adu.extend_from_slice(&[0, 0, 0, 3, 1, 0x83, 0x04]);
                    if s.write_all(&adu).await.is_err() {
                        return;
                    }
                }
                let mut sink = [0u8; 256];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    point_plc7_at(&r, flood_addr).await;
    let (mut s, _) = open_tunnel(&target).await.unwrap();
    // The answer does not belong to the request: the session is closed, nothing relayed.
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_holding(&mut s, 0, 1),
    )
    .await
    .unwrap();
    assert!(
        got.is_err(),
        "a flooding device's garbage is never relayed: {got:?}"
    );
    // The bystander, on the real PLC, is unaffected.
    assert_eq!(
        read_holding(&mut bystander, 7, 1).await.unwrap(),
        vec![3, 2, 0x03, 0xef]
    );
    let events = events_until(&mut r.h, &format!("grant={g}&limit=1000"), |events| {
        events.iter().any(|e| {
            e["kind"] == "session.ended"
                && e["data"]["detail"]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("bad_device_response")
        })
    })
    .await;
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "session.ended")
        .collect();
    assert!(
        ended.iter().any(|e| e["data"]["detail"]["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("bad_device_response")),
        "the reason is recorded: {ended:?}"
    );
    r.gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn events_survive_a_gateway_restart_while_the_server_is_down() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let t = token_for(&mut r.h, &g, &key).await;
    let (mut live, _) = open_tunnel(&Target {
        token: t,
        key,
        protocol: None,
    })
    .await
    .unwrap();

    let addr = r.h.server.as_ref().unwrap().addr;
    let store = r.h.stop_server_only().await;
    for n in 0..5 {
        assert!(read_holding(&mut live, n, 1).await.is_ok());
    }
    // The gateway stops with the server unreachable: what it saw must be on disk.
    r.gw.stop().await;
    let spool: String = std::fs::read_dir(&r.config.state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        spool
            .lines()
            .filter(|l| l.contains("\"operation\""))
            .count()
            >= 5,
        "{spool}"
    );
    assert!(spool.contains("session.ended"), "{spool}");

    // Server back, gateway restarted on the same state: everything is delivered, once.
    r.h.restart_server_at(store, addr).await;
    let gw = jitgate_gateway::runtime::start(r.config.clone())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, events) =
            r.h.call(
                "sam",
                "GET",
                &format!("/api/v1/events?grant={g}&limit=1000"),
                None,
            )
            .await;
        let events = events.as_array().unwrap();
        let ops = events.iter().filter(|e| e["kind"] == "operation").count();
        let ended = events
            .iter()
            .filter(|e| e["kind"] == "session.ended")
            .count();
        if ops >= 5 && ended >= 1 {
            let mut gseqs: Vec<i64> = events
                .iter()
                .filter_map(|e| e["data"]["gseq"].as_i64())
                .collect();
            let n = gseqs.len();
            gseqs.dedup();
            assert_eq!(gseqs.len(), n, "no event recorded twice");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spooled events not delivered: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    gw.stop().await;
    r.h.stop().await;
}

#[tokio::test]
async fn a_source_holds_at_most_its_pending_connections_and_sessions_still_open() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let mut r = rig(store).await;
    let g = grant(&mut r.h).await;
    let key = ClientKey::generate();
    let good = token_for(&mut r.h, &g, &key).await;
    let max = jitgate_gateway::session::MAX_PENDING_PER_SOURCE;
    // One connection more than the cap, none starting its handshake: exactly one is closed
    // at once (the handshake itself would wait 10 s), the others are held.
    let mut idle = Vec::new();
    for _ in 0..=max {
        idle.push(
            tokio::net::TcpStream::connect(&good.gateway_address)
                .await
                .unwrap(),
        );
    }
    // All read at once, well within the 10 s handshake timeout.
    let reads = futures_util::future::join_all(idle.iter_mut().map(|conn| async move {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(1500),
            tokio::io::AsyncReadExt::read(conn, &mut buf),
        )
        .await;
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    }))
    .await;
    let closed = reads.into_iter().filter(|c| *c).count();
    assert_eq!(
        closed, 1,
        "one connection over the cap is closed, the others held"
    );
    // The held connections go away: a real session opens again (polled with a deadline).
    drop(idle);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open_tunnel(&Target {
            token: good.clone(),
            key: key.clone(),
            protocol: None,
        })
        .await
        {
            Ok((_, verdict)) if verdict.ok => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "no session after the pending connections closed: {:?}",
                other.map(|(_, v)| v.code)
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
