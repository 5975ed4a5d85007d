//! The gateway's client of the server API (`/api/v1/gateway/...`), authenticated with the
//! gateway's API key and, over TLS, its enrolled client certificate ([`connect`] enrols or
//! renews it first).
//!
//! Several server nodes (docs/cluster.md): the client knows the configured `server` and
//! `failover_servers`, uses one at a time, and moves on to the next when the current one
//! cannot be reached — for the call that found it down and everything after. Calls are safe
//! to repeat on another node: event deliveries carry sequence numbers the server
//! deduplicates, recording chunks are keyed by session and index, the rest only read or
//! issue.

use crate::enrolment::{ClientIdentity, EnrolRequest, Enrolled};
use crate::server_trust::ServerTrust;
use crate::wire::{
    GatewayEvent, GatewayEventAck, GatewayEventBatch, GatewayHello, GatewaySetup, GrantStatus,
    RecordingChunkAck,
};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached (or timed out): callers fail closed or spool.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error.
    #[error("server refused ({status}): {body}")]
    Refused { status: u16, body: String },
    /// The server's TLS certificate is not the pinned one (or does not chain to the pinned
    /// CA): nothing was sent to it.
    #[error("the server's certificate is not trusted: {0}; check server_fingerprint / server_ca_file in gateway.toml")]
    Untrusted(String),
}

fn send_error(e: reqwest::Error) -> ApiError {
    let text = crate::server_trust::error_chain(&e);
    if crate::server_trust::is_certificate_error(&text) {
        ApiError::Untrusted(text)
    } else {
        ApiError::Unreachable(text)
    }
}

#[derive(Clone)]
pub struct ServerApi {
    /// `<server>/api/v1` for every configured server node, the primary first.
    bases: Arc<Vec<String>>,
    /// Which of `bases` is in use.
    current: Arc<std::sync::atomic::AtomicUsize>,
    key: String,
    http: reqwest::Client,
    /// TLS to the server (`https://`), pinned; `None` for plain `http://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ServerApi {
    /// A client of `server`; an `https://` server must come with its pin (`trust`).
    pub fn new(server: &str, key: &str, trust: Option<&ServerTrust>) -> Result<Self, ApiError> {
        Self::with_identity(server, key, trust, None)
    }

    /// As [`ServerApi::new`], presenting the gateway's enrolled client certificate.
    pub fn with_identity(
        server: &str,
        key: &str,
        trust: Option<&ServerTrust>,
        identity: Option<&ClientIdentity>,
    ) -> Result<Self, ApiError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2));
        let tls = match trust {
            Some(t) => Some(
                crate::server_trust::client_config_with_identity(t, identity)
                    .map_err(|e| ApiError::Untrusted(e.to_string()))?,
            ),
            None if server.starts_with("https://") => {
                return Err(ApiError::Untrusted(
                    "an https:// server needs server_fingerprint or server_ca_file".into(),
                ))
            }
            None => None,
        };
        if let Some(config) = &tls {
            builder = builder
                .use_preconfigured_tls((**config).clone())
                .https_only(true);
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        Ok(ServerApi {
            bases: Arc::new(vec![format!("{}/api/v1", server.trim_end_matches('/'))]),
            current: Arc::default(),
            key: key.to_string(),
            http,
            tls,
        })
    }

    /// Add the other server nodes to fail over to, in order after the primary.
    pub fn with_failover(mut self, servers: &[String]) -> Self {
        let mut bases = (*self.bases).clone();
        bases.extend(
            servers
                .iter()
                .map(|s| format!("{}/api/v1", s.trim_end_matches('/'))),
        );
        self.bases = Arc::new(bases);
        self
    }

    /// The base URL in use (`…/api/v1`).
    fn base(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.bases[i % self.bases.len()]
    }

    /// The server node in use (its URL as configured).
    pub fn server(&self) -> String {
        self.base().trim_end_matches("/api/v1").to_string()
    }

    /// Move on to the next server node (the current one is gone).
    pub fn fail_over(&self) {
        if self.bases.len() > 1 {
            let next =
                (self.current.load(std::sync::atomic::Ordering::Relaxed) + 1) % self.bases.len();
            self.current
                .store(next, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(server = %self.server(), "failing over to the next server node");
        }
    }

    /// One call, made on the server in use and, while it cannot be reached, on each other
    /// node in turn; the node that answers stays in use.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        make: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let n = self.bases.len();
        let start = self.current.load(std::sync::atomic::Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let at = (start + i) % n;
            match self.send(make(&self.http, &self.bases[at])).await {
                Err(e @ ApiError::Unreachable(_)) => last = Some(e),
                answer => {
                    if at != start % n {
                        self.current.store(at, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(server = %self.server(), "failed over to another server node");
                    }
                    return answer;
                }
            }
        }
        Err(last.unwrap_or_else(|| ApiError::Unreachable("no server configured".into())))
    }

    /// The pinned TLS configuration for the control channel (`None`: plain `ws://`).
    pub fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let resp = req
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ApiError::Refused {
                status: status.as_u16(),
                body,
            });
        }
        resp.json()
            .await
            .map_err(|e| ApiError::Unreachable(format!("reading the answer: {e}")))
    }

    /// The control channel's WebSocket URL: `wss://…/api/v1/gateway/control` for an
    /// `https://` server (same pin as the API calls), `ws://…` for a plain one.
    pub fn control_url(&self) -> Result<String, String> {
        let base = self.base();
        if let Some(rest) = base.strip_prefix("http://") {
            Ok(format!("ws://{rest}/gateway/control"))
        } else if let Some(rest) = base.strip_prefix("https://") {
            Ok(format!("wss://{rest}/gateway/control"))
        } else {
            Err(format!(
                "server URL {base} must start with https:// or http://"
            ))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn hello(&self, hello: &GatewayHello) -> Result<GatewaySetup, ApiError> {
        self.call(|http, base| http.post(format!("{base}/gateway/hello")).json(hello))
            .await
    }

    /// `POST /gateway/enrol`: a certificate for the key behind `csr`.
    pub async fn enrol(&self, csr: &str) -> Result<Enrolled, ApiError> {
        let body = EnrolRequest {
            csr: csr.to_string(),
        };
        self.call(|http, base| http.post(format!("{base}/gateway/enrol")).json(&body))
            .await
    }

    pub async fn grant_status(&self, grant: &str) -> Result<GrantStatus, ApiError> {
        self.call(|http, base| http.get(format!("{base}/gateway/grants/{grant}")))
            .await
    }

    /// `POST /gateway/ssh/target-certificate`: the certificate (OpenSSH line) the gateway
    /// presents to `asset` for one session under `grant_id`, for `public_key`.
    pub async fn ssh_target_certificate(
        &self,
        grant_id: &str,
        asset: &str,
        public_key: &str,
    ) -> Result<String, ApiError> {
        #[derive(serde::Deserialize)]
        struct Issued {
            certificate: String,
        }
        let body = serde_json::json!({
            "grant_id": grant_id,
            "asset": asset,
            "public_key": public_key,
        });
        let issued: Issued = self
            .call(|http, base| {
                http.post(format!("{base}/gateway/ssh/target-certificate"))
                    .json(&body)
            })
            .await?;
        Ok(issued.certificate)
    }

    pub async fn post_events(&self, events: &[GatewayEvent]) -> Result<GatewayEventAck, ApiError> {
        let batch = GatewayEventBatch {
            events: events.to_vec(),
        };
        self.call(|http, base| http.post(format!("{base}/gateway/events")).json(&batch))
            .await
    }

    /// `POST /gateway/events` with events already in their JSON form (the write-ahead
    /// file's lines, [`crate::spool`]): the body is built once, not re-serialised.
    pub async fn post_event_lines<'a>(
        &self,
        lines: impl Iterator<Item = &'a str>,
    ) -> Result<GatewayEventAck, ApiError> {
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(b"{\"events\":[");
        for (i, line) in lines.enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(line.as_bytes());
        }
        body.extend_from_slice(b"]}");
        let body = bytes::Bytes::from(body);
        self.call(|http, base| {
            http.post(format!("{base}/gateway/events"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }

    /// `POST /gateway/recordings/{session}/chunks/{index}`: one framed recording chunk.
    pub async fn post_recording_chunk(
        &self,
        session: &str,
        index: u64,
        frame: Vec<u8>,
    ) -> Result<RecordingChunkAck, ApiError> {
        // Shared, not copied, when the call moves on to another node.
        let frame = bytes::Bytes::from(frame);
        self.call(|http, base| {
            http.post(format!(
                "{base}/gateway/recordings/{session}/chunks/{index}"
            ))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(frame.clone())
        })
        .await
    }
}

/// A client of the configured server. Over `https://`, the gateway first makes sure it holds
/// a current client certificate in `state_dir`: the first time it enrols with its API key
/// alone; when a third of the certificate's lifetime remains it renews with the certificate
/// itself. A plain `http://` server gets no certificate (nothing to present it over).
pub async fn connect(
    server: &str,
    failover: &[String],
    key: &str,
    trust: Option<&ServerTrust>,
    state_dir: &std::path::Path,
    gateway_hint: &str,
) -> Result<ServerApi, ApiError> {
    let Some(trust) = trust else {
        return Ok(ServerApi::new(server, key, None)?.with_failover(failover));
    };
    let local = |e: crate::tls::TlsError| {
        ApiError::Untrusted(format!(
            "client certificate in {}: {e}",
            state_dir.display()
        ))
    };
    let current = crate::enrolment::load(state_dir).map_err(local)?;
    let now = chrono::Utc::now().timestamp();
    let current = match current {
        Some(id) if !id.due_for_renewal(now) => id,
        Some(id) => {
            let api = ServerApi::with_identity(server, key, Some(trust), Some(&id))?
                .with_failover(failover);
            match enrol_with(&api, state_dir, gateway_hint).await {
                Ok(renewed) => renewed,
                // Still valid: keep working with it and try again at the next start.
                Err(e) if id.not_after > now => {
                    tracing::warn!(error = %e, not_after = id.not_after,
                        "could not renew the gateway's client certificate; using the current one");
                    id
                }
                Err(e) => return Err(e),
            }
        }
        None => {
            let api = ServerApi::new(server, key, Some(trust))?.with_failover(failover);
            let id = enrol_with(&api, state_dir, gateway_hint).await?;
            tracing::info!(fingerprint = %id.fingerprint, "enrolled: client certificate issued");
            id
        }
    };
    Ok(ServerApi::with_identity(server, key, Some(trust), Some(&current))?.with_failover(failover))
}

async fn enrol_with(
    api: &ServerApi,
    state_dir: &std::path::Path,
    gateway_hint: &str,
) -> Result<ClientIdentity, ApiError> {
    let (key_pem, csr) = crate::enrolment::new_request(gateway_hint)
        .map_err(|e| ApiError::Unreachable(format!("making a key pair: {e}")))?;
    let enrolled = api.enrol(&csr).await?;
    crate::enrolment::save(state_dir, &key_pem, &enrolled.certificate).map_err(|e| {
        ApiError::Unreachable(format!(
            "saving the client certificate in {}: {e}",
            state_dir.display()
        ))
    })
}
