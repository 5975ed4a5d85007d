//! The gateway's client of the server API (`/api/v1/gateway/...`), authenticated with the
//! gateway's API key.

use crate::server_trust::ServerTrust;
use crate::wire::{
    GatewayEvent, GatewayEventAck, GatewayEventBatch, GatewayHello, GatewaySetup, GrantStatus,
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
    base: String,
    key: String,
    http: reqwest::Client,
    /// TLS to the server (`https://`), pinned; `None` for plain `http://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ServerApi {
    /// A client of `server`; an `https://` server must come with its pin (`trust`).
    pub fn new(server: &str, key: &str, trust: Option<&ServerTrust>) -> Result<Self, ApiError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2));
        let tls = match trust {
            Some(t) => Some(
                crate::server_trust::client_config(t)
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
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            key: key.to_string(),
            http,
            tls,
        })
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
        if let Some(rest) = self.base.strip_prefix("http://") {
            Ok(format!("ws://{rest}/gateway/control"))
        } else if let Some(rest) = self.base.strip_prefix("https://") {
            Ok(format!("wss://{rest}/gateway/control"))
        } else {
            Err(format!(
                "server URL {} must start with https:// or http://",
                self.base
            ))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn hello(&self, hello: &GatewayHello) -> Result<GatewaySetup, ApiError> {
        self.send(
            self.http
                .post(format!("{}/gateway/hello", self.base))
                .json(hello),
        )
        .await
    }

    pub async fn grant_status(&self, grant: &str) -> Result<GrantStatus, ApiError> {
        self.send(
            self.http
                .get(format!("{}/gateway/grants/{grant}", self.base)),
        )
        .await
    }

    pub async fn post_events(&self, events: &[GatewayEvent]) -> Result<GatewayEventAck, ApiError> {
        let batch = GatewayEventBatch {
            events: events.to_vec(),
        };
        self.send(
            self.http
                .post(format!("{}/gateway/events", self.base))
                .json(&batch),
        )
        .await
    }
}
