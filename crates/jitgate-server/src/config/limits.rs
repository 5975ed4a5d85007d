//! `[limits]`: what one client may hold of the server — connections and how long they may
//! sit half-sent, body size, scope size, open requests, page size, console live streams.
//! Each limit is refused with its own error code (docs/configuration.md, "Limits").

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[limits]` in the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A connection must send a request's whole head within this long (`10s`).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: String,
    /// A connection that sends and receives nothing for this long is closed (`30s`); a
    /// half-sent body counts as nothing. WebSocket (gateway control channel) connections
    /// are exempt once upgraded; console live streams send a keep-alive every 15 s.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    /// Connections the API listener holds at once; one more is answered
    /// `503 too_many_connections` and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Largest request body, in bytes; larger is `413 payload_too_large`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Scope rules one request may carry in all; more is `422 too_many_scope_items`.
    #[serde(default = "default_max_scope_items")]
    pub max_scope_items: usize,
    /// Open requests (pending, approved, active, ending) one requester may have; one more is
    /// `429 too_many_open_requests`.
    #[serde(default = "default_max_open_requests")]
    pub max_open_requests: usize,
    /// Items in a page of a list when the caller sends no `limit`.
    #[serde(default = "default_page_size")]
    pub default_page_size: usize,
    /// Largest `limit` a list accepts; a larger one is `400 bad_request`.
    #[serde(default = "default_max_page_size")]
    pub max_page_size: usize,
    /// Console live-update streams one console session may hold open; one more is
    /// `429 too_many_streams`.
    #[serde(default = "default_max_streams_per_session")]
    pub max_streams_per_session: usize,
}

fn default_header_read_timeout() -> String {
    "10s".into()
}
fn default_idle_timeout() -> String {
    "30s".into()
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_scope_items() -> usize {
    64
}
fn default_max_open_requests() -> usize {
    20
}
fn default_page_size() -> usize {
    100
}
fn default_max_page_size() -> usize {
    1000
}
fn default_max_streams_per_session() -> usize {
    4
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_body_bytes: default_max_body_bytes(),
            max_scope_items: default_max_scope_items(),
            max_open_requests: default_max_open_requests(),
            default_page_size: default_page_size(),
            max_page_size: default_max_page_size(),
            max_streams_per_session: default_max_streams_per_session(),
        }
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("[limits] {key} {text:?}: {e}; write it like 10s or 500ms"))
}

impl LimitsConfig {
    pub fn header_read_timeout(&self) -> Duration {
        duration("header_read_timeout", &self.header_read_timeout)
            .unwrap_or(Duration::from_secs(10))
    }

    pub fn idle_timeout(&self) -> Duration {
        duration("idle_timeout", &self.idle_timeout).unwrap_or(Duration::from_secs(30))
    }

    pub fn validate(&self) -> Result<(), String> {
        let h = duration("header_read_timeout", &self.header_read_timeout)?;
        if h < Duration::from_millis(100) || h > Duration::from_secs(300) {
            return Err(format!(
                "[limits] header_read_timeout {} is outside 100ms..5m",
                self.header_read_timeout
            ));
        }
        let i = duration("idle_timeout", &self.idle_timeout)?;
        if i < Duration::from_millis(100) || i > Duration::from_secs(3600) {
            return Err(format!(
                "[limits] idle_timeout {} is outside 100ms..1h",
                self.idle_timeout
            ));
        }
        let ranges: [(&str, usize, usize, usize); 7] = [
            ("max_connections", self.max_connections, 1, 1_000_000),
            ("max_body_bytes", self.max_body_bytes, 1024, 1 << 30),
            ("max_scope_items", self.max_scope_items, 1, 100_000),
            ("max_open_requests", self.max_open_requests, 1, 100_000),
            ("default_page_size", self.default_page_size, 1, 100_000),
            ("max_page_size", self.max_page_size, 1, 100_000),
            (
                "max_streams_per_session",
                self.max_streams_per_session,
                1,
                1000,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("[limits] {key} {v} is outside {lo}..{hi}"));
            }
        }
        if self.default_page_size > self.max_page_size {
            return Err(format!(
                "[limits] default_page_size {} is above max_page_size {}",
                self.default_page_size, self.max_page_size
            ));
        }
        Ok(())
    }

    /// `JITGATE_LIMITS_<KEY>` overrides, one per key.
    pub fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("JITGATE_LIMITS_HEADER_READ_TIMEOUT") {
            self.header_read_timeout = v;
        }
        if let Some(v) = env("JITGATE_LIMITS_IDLE_TIMEOUT") {
            self.idle_timeout = v;
        }
        let numbers: [(&'static str, &mut usize); 7] = [
            ("JITGATE_LIMITS_MAX_CONNECTIONS", &mut self.max_connections),
            ("JITGATE_LIMITS_MAX_BODY_BYTES", &mut self.max_body_bytes),
            ("JITGATE_LIMITS_MAX_SCOPE_ITEMS", &mut self.max_scope_items),
            (
                "JITGATE_LIMITS_MAX_OPEN_REQUESTS",
                &mut self.max_open_requests,
            ),
            (
                "JITGATE_LIMITS_DEFAULT_PAGE_SIZE",
                &mut self.default_page_size,
            ),
            ("JITGATE_LIMITS_MAX_PAGE_SIZE", &mut self.max_page_size),
            (
                "JITGATE_LIMITS_MAX_STREAMS_PER_SESSION",
                &mut self.max_streams_per_session,
            ),
        ];
        for (var, slot) in numbers {
            if let Some(v) = env(var) {
                *slot = v.trim().parse().map_err(|_| ConfigError::Env {
                    var,
                    value: v.clone(),
                    message: "expected a whole number".into(),
                })?;
            }
        }
        Ok(())
    }
}
