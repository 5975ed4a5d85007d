//! A real gateway runtime in front of a DNP3 device (the Rust simulated outstation, dnp3py's
//! outstation or a scripted fake), with the scripted server of `governance.rs`, and dnp3py's
//! master as the client through `jitgate connect`'s local port.

use crate::governance::{serve_one, Shared, DIGEST, GW};
use crate::peers;
use jitgate_core::scope::{Dnp3Op, Dnp3Target, Protocol, ScopeItem};
use jitgate_core::{Asset, GrantState};
use jitgate_credential::{AssetClaim, ClientKey, GrantClaims, KeyRing};
use jitgate_gateway::config::GatewayConfig;
use jitgate_gateway::connect::{self, Target};
use jitgate_gateway::runtime::RunningGateway;
use jitgate_gateway::wire::{
    ControlDown, GatewayEvent, GatewaySetup, GrantStatus, Revocation, TokenResponse,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// True when python3 can import dnp3py's `dnp3` package; otherwise reports it missing
/// (a failure under `JITGATE_REQUIRE_PEERS=1`).
pub fn have_dnp3py() -> bool {
    let ok = Command::new(peers::python())
        .args(["-c", "import dnp3.master.tcp_runner, dnp3.outstation"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        peers::missing("python3 with dnp3py", "pip install dnp3py==0.6.0");
    }
    ok
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it")
        .join(name)
}

/// Run dnp3py's master through 127.0.0.1:`port` with `steps` (see `dnp3_master.py`);
/// blocking: call from `spawn_blocking`.
pub fn master(port: u16, steps: Value) -> Vec<Value> {
    master_with_progress(port, steps, None)
}

/// As [`master`], the name of each step appended to `progress` once it is done.
pub fn master_with_progress(
    port: u16,
    steps: Value,
    progress: Option<&std::path::Path>,
) -> Vec<Value> {
    let mut cmd = Command::new(peers::python());
    if let Some(p) = progress {
        cmd.env("DNP3_MASTER_PROGRESS", p);
    }
    let out = cmd
        .arg(script("dnp3_master.py"))
        .arg(port.to_string())
        .arg(steps.to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "dnp3_master.py failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the master prints JSON")
}

pub async fn master_async(port: u16, steps: Value) -> Vec<Value> {
    tokio::task::spawn_blocking(move || master(port, steps))
        .await
        .unwrap()
}

/// dnp3py's outstation, killed on drop; its log says what reached it.
pub struct PyOutstation {
    child: Child,
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl PyOutstation {
    pub fn start() -> PyOutstation {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(peers::python())
            .arg(script("dnp3_outstation.py"))
            .arg(port.to_string())
            .arg(log.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert_eq!(
            line.trim(),
            "listening",
            "dnp3py's outstation did not start"
        );
        PyOutstation { child, port, log }
    }

    /// Every record the outstation logged: `{"request": hex}`, `{"operate": ...}`.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for PyOutstation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use crate::ports::free_port;

pub fn rule(op: Dnp3Op, target: Dnp3Target, start: u16, end: u16) -> ScopeItem {
    ScopeItem::Dnp3 {
        asset: "rtu-12".into(),
        op,
        target,
        start,
        end,
    }
}

pub struct Dnp3Rig {
    fake: Shared,
    ring: KeyRing,
    pub gw: RunningGateway,
    fingerprint: String,
    device: String,
    _state: tempfile::TempDir,
}

impl Dnp3Rig {
    /// A gateway fronting `rtu-12` (outstation 10, master 1) at `device`.
    pub async fn start(device: std::net::SocketAddr) -> Dnp3Rig {
        Dnp3Rig::start_bound(device, 10, 1).await
    }

    /// A gateway fronting `rtu-12` at `device`, its inventory binding the link addresses
    /// `outstation` and `master` (a replayed capture brings its own).
    pub async fn start_bound(
        device: std::net::SocketAddr,
        outstation: u16,
        master: u16,
    ) -> Dnp3Rig {
        let asset: Asset = serde_json::from_value(json!({
            "id": "rtu-12", "kind": "rtu", "site": "south", "criticality": "high",
            "enforcement": "brokered", "gateway": GW,
            "endpoints": {"dnp3": {"address": device.to_string(), "outstation": outstation, "master": master}},
        }))
        .unwrap();
        let ring = KeyRing::in_memory(chrono::Utc::now()).unwrap();
        let fake: Shared = Shared::default();
        fake.lock().unwrap().setup = Some(GatewaySetup {
            gateway_id: GW.into(),
            token_keys: ring.public_keys(chrono::Utc::now()),
            assets: vec![asset],
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
        let config = GatewayConfig {
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
            device_timeout: "2s".into(),
            event_sync_interval: "100ms".into(),
            client_limits: Default::default(),
            recordings: Default::default(),
        };
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
        Dnp3Rig {
            fake,
            ring,
            gw,
            fingerprint,
            device: device.to_string(),
            _state: state,
        }
    }

    /// An active grant `id` with `scope` on rtu-12, and a token for it that expires in
    /// `lifetime`.
    pub fn grant(&self, id: &str, scope: Vec<ScopeItem>, lifetime: chrono::Duration) -> Target {
        let now = chrono::Utc::now();
        let key = ClientKey::generate();
        self.fake.lock().unwrap().grants.insert(
            id.into(),
            GrantStatus {
                grant_id: id.into(),
                state: GrantState::Active,
                expires_at: now + lifetime,
                scope_digest: DIGEST.into(),
                subject: "alice".into(),
                scope: None,
            },
        );
        let claims = GrantClaims {
            token_id: format!("tok-{id}"),
            grant_id: id.into(),
            subject: "alice".into(),
            audience: GW.into(),
            assets: vec![AssetClaim {
                asset: "rtu-12".into(),
                protocol: "dnp3".into(),
                address: self.device.clone(),
                unit_ids: vec![],
            }],
            scope_digest: DIGEST.into(),
            scope,
            issued_at: now,
            not_before: now - chrono::Duration::seconds(5),
            expires_at: now + lifetime,
            cnf: key.public_b64(),
        };
        let token = self.ring.issue(&claims).unwrap();
        Target {
            token: TokenResponse {
                token_fingerprint: jitgate_credential::token_fingerprint(&token),
                token,
                asset: "rtu-12".into(),
                gateway_id: GW.into(),
                gateway_address: self.gw.addr.to_string(),
                gateway_fingerprint: self.fingerprint.clone(),
                expires_at: now + lifetime,
                protocols: Vec::new(),
            },
            key,
            protocol: Some(Protocol::Dnp3),
        }
    }

    /// `jitgate connect`'s local port for `target`, as a DNP3 master sees it.
    pub async fn local_port(&self, target: Target) -> u16 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}").parse().unwrap();
        tokio::spawn(connect::serve_local(listen, target, |_| {}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            assert!(Instant::now() < deadline, "the local port never opened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        port
    }

    /// `f` of the events the gateway delivered so far.
    pub fn with_events<T>(&self, f: impl FnOnce(&[GatewayEvent]) -> T) -> T {
        f(&self.fake.lock().unwrap().events)
    }

    /// The events the gateway delivered, polled until `done` holds or 10 s pass.
    pub async fn events_until(&self, done: impl Fn(&[GatewayEvent]) -> bool) -> Vec<GatewayEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.fake.lock().unwrap().events.clone();
            if done(&events) || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server revokes `grant` and tells the gateway.
    pub fn revoke(&self, grant: &str) {
        let msg = ControlDown::Revoke(Revocation {
            grant_id: grant.into(),
            reason: "revoked".into(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            ended_by: Some("sam".into()),
            note: Some("test".into()),
        });
        if let Some(g) = self.fake.lock().unwrap().grants.get_mut(grant) {
            g.state = GrantState::Ending;
        }
        for tx in &self.fake.lock().unwrap().control {
            let _ = tx.send(msg.clone());
        }
    }
}

/// The DNP3 operation records of `grant`'s sessions.
pub fn operations<'a>(events: &'a [GatewayEvent], grant: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e.kind == "operation" && e.grant_id.as_deref() == Some(grant))
        .map(|e| &e.data)
        .collect()
}

/// Why `grant`'s sessions ended, in order.
pub fn ended(events: &[GatewayEvent], grant: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == "session.ended" && e.grant_id.as_deref() == Some(grant))
        .map(|e| e.data["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}
