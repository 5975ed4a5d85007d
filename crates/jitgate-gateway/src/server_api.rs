//! The gateway's client of the server API (`/api/v1/gateway/...`), authenticated with the
//! gateway's API key.

use crate::wire::{
    GatewayEvent, GatewayEventAck, GatewayEventBatch, GatewayHello, GatewaySetup, GrantStatus,
};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached (or timed out): callers fail closed or spool.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error.
    #[error("server refused ({status}): {body}")]
    Refused { status: u16, body: String },
}

#[derive(Clone)]
pub struct ServerApi {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ServerApi {
    pub fn new(server: &str, key: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        Ok(ServerApi {
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            key: key.to_string(),
            http,
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let resp = req
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
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

    /// The control channel's WebSocket URL (`ws://…/api/v1/gateway/control`).
    pub fn control_url(&self) -> Result<String, String> {
        if let Some(rest) = self.base.strip_prefix("http://") {
            Ok(format!("ws://{rest}/gateway/control"))
        } else if self.base.starts_with("https://") {
            Err("the control channel speaks ws:// only: give the server as http://host:port (on a trusted network or loopback), or put both behind a TLS tunnel".into())
        } else {
            Err(format!("server URL {} must start with http://", self.base))
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
