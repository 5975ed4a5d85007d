//! API integration tests: the real HTTP server on port 0, on SQLite and on PostgreSQL
//! (`jitgate_testkit::each_backend`), with a manual clock so expiry and lapse are exact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod campaign_exceptions;
mod campaigns;
mod compliance;
mod console;
mod evidence;
mod exception_gateway;
mod exceptions;
mod federation;
mod findings;
mod gateway;
mod governance;
mod layers;
mod lifecycle;
mod limits;
mod login;
mod metrics;
mod notify;
mod pages;
mod passkeys;
mod recordings;
mod restart;
mod ssh;
mod sso;
mod teardown;
mod witness;

use jitgate_core::event::Actor;
use jitgate_core::{Inventory, ManualClock, Timestamp};
use jitgate_server::config::ServerConfig;
use jitgate_server::RunningServer;
use jitgate_store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub const PLANT: &str = include_str!("../../../../examples/plant.toml");

pub fn password(id: &str) -> String {
    format!("test-password-of-{id}")
}

/// A whole second, so that times survive every database round trip unchanged.
pub fn start_time() -> Timestamp {
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp(now, 0).unwrap()
}

pub struct Harness {
    /// Data directory (token-signing keys); removed when the harness is dropped.
    pub data: tempfile::TempDir,
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub server: Option<RunningServer>,
    pub http: reqwest::Client,
    tokens: HashMap<String, String>,
}

impl Harness {
    /// Start a server on `store` with the sample plant, a password for every person.
    pub async fn start(store: Store) -> Harness {
        Self::start_with(store, Arc::new(ManualClock::new(start_time())), None).await
    }

    pub async fn start_with(
        store: Store,
        clock: Arc<ManualClock>,
        policy_dir: Option<PathBuf>,
    ) -> Harness {
        Self::start_configured(store, clock, |c| c.policy_dir = policy_dir).await
    }

    /// Start with the test configuration changed by `configure`.
    pub async fn start_configured(
        store: Store,
        clock: Arc<ManualClock>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Harness {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            // Tests move the clock by hours; keep logins valid across that.
            session_ttl: "24h".into(),
            ..ServerConfig::default()
        };
        configure(&mut config);
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
            data,
            base: format!("http://{}", server.addr),
            clock,
            server: Some(server),
            http: reqwest::Client::new(),
            tokens: HashMap::new(),
        }
    }

    pub fn state(&self) -> &jitgate_server::state::AppState {
        &self.server.as_ref().unwrap().state
    }

    /// Stop the HTTP server (as if it crashed), keeping the harness and its tokens.
    pub async fn stop_server_only(&mut self) -> Store {
        self.server.take().unwrap().stop().await
    }

    /// Start the server again on `store`, listening on `addr` (gateways keep their URL).
    pub async fn restart_server_at(&mut self, store: Store, addr: std::net::SocketAddr) {
        let config = ServerConfig {
            listen: addr,
            data_dir: self.data.path().to_path_buf(),
            session_ttl: "24h".into(),
            ..ServerConfig::default()
        };
        let server = jitgate_server::start_with_store(config, self.clock.clone(), store)
            .await
            .expect("server restarts");
        self.server = Some(server);
    }

    pub async fn stop(mut self) -> Store {
        self.server.take().unwrap().stop().await
    }

    pub async fn login(&mut self, who: &str) -> String {
        if let Some(t) = self.tokens.get(who) {
            return t.clone();
        }
        let (status, body) = self
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": who, "password": password(who)})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {who}: {body}");
        let token = body["token"].as_str().unwrap().to_string();
        self.tokens.insert(who.to_string(), token.clone());
        token
    }

    pub fn set_token(&mut self, who: &str, token: &str) {
        self.tokens.insert(who.to_string(), token.to_string());
    }

    /// A new API key for `identity` (a workload such as the gateway `gw-north`), minted by
    /// the administrator sam; `name` labels it.
    pub async fn api_key(&mut self, identity: &str, name: &str) -> String {
        let (s, v) = self
            .call(
                "sam",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": identity, "name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "API key for {identity}: {v}");
        v["key"].as_str().unwrap().to_string()
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{}", self.base, path);
        let mut req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            other => panic!("method {other}"),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Call as `who` (logging in first if needed).
    pub async fn call(
        &mut self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.login(who).await;
        self.raw(method, path, Some(&token), body).await
    }

    pub async fn request(&mut self, who: &str, body: Value) -> Value {
        let (status, v) = self.call(who, "POST", "/api/v1/requests", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "request by {who}: {v}");
        v
    }

    pub async fn approve(
        &mut self,
        who: &str,
        request: &Value,
        totp: Option<String>,
    ) -> (StatusCode, Value) {
        let id = request["id"].as_str().unwrap();
        let body = json!({"scope_digest": request["scope_digest"], "comment": "ok", "totp": totp});
        self.call(
            who,
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some(body),
        )
        .await
    }

    pub async fn event_count(&self) -> i64 {
        let mut tx = self.state().store.read().await.unwrap();
        tx.verify_chain().await.unwrap().events
    }

    pub async fn tick(&self) -> usize {
        jitgate_server::service::tick(self.state()).await.unwrap()
    }
}

pub fn read_plc7() -> Value {
    json!({
        "scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1"]}],
        "duration": "1h", "reason": "check valve positions", "reference": "WO-1234", "path": "planned"
    })
}

pub fn write_plc7(duration: &str) -> Value {
    json!({
        "scope": [{"asset": "plc-7", "modbus": ["read holding 0-99 unit 1", "write coil 10-20 unit 1"]}],
        "duration": duration, "reason": "replace valve positioner", "reference": "WO-1234", "path": "planned"
    })
}

/// The events of `kind` among the last 1,000 (as `sam` sees them).
pub async fn events_of(h: &mut Harness, kind: &str) -> Vec<Value> {
    let (s, all) = h
        .call("sam", "GET", "/api/v1/events?limit=1000", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{all}");
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}
