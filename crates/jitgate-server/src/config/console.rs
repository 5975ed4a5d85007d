//! `[console]`: the web console's cookie and idle timeout (see [`crate::console`]).

use serde::{Deserialize, Serialize};

/// `[console]` in the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure` (sent over HTTPS only). Keep it on whenever people
    /// reach the console through TLS (a reverse proxy in front of jitgate). Browsers also
    /// accept and send a `Secure` cookie on plain `http://127.0.0.1` and `http://localhost`
    /// (loopback is a secure context), so the quickstart works with it on. Turn it off only
    /// for plain HTTP on a non-loopback address on a trusted network — the cookie then
    /// travels in clear text.
    #[serde(default = "default_true")]
    pub secure_cookie: bool,
    /// A console session ends after this long without an action by the person (`15m`);
    /// the session's absolute lifetime stays `session_ttl`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
}

fn default_true() -> bool {
    true
}
fn default_idle_timeout() -> String {
    "15m".into()
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            secure_cookie: true,
            idle_timeout: default_idle_timeout(),
        }
    }
}

impl ConsoleConfig {
    pub fn idle_timeout_secs(&self) -> Result<i64, String> {
        super::parse_duration_secs(&self.idle_timeout)
            .map_err(|m| format!("[console] idle_timeout {:?}: {m}", self.idle_timeout))
    }

    pub fn validate(&self) -> Result<(), String> {
        let idle = self.idle_timeout_secs()?;
        if !(60..=86_400).contains(&idle) {
            return Err(format!(
                "[console] idle_timeout {} is outside 1m..24h",
                self.idle_timeout
            ));
        }
        Ok(())
    }
}
