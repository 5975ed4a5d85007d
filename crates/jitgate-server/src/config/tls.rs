//! `[tls]`: the server's certificate (files, or a CA generated in the data directory); see
//! [`crate::tls`] for serving it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Name of the directory in `data_dir` that holds generated certificates.
pub const TLS_DIR: &str = "tls";

/// `[tls]` in the server configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS. Implied by `cert_file`; without files, a CA and a server certificate are
    /// generated in `data_dir/tls/`.
    #[serde(default)]
    pub enabled: bool,
    /// PEM certificate chain (server certificate first).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Extra DNS names or IP addresses for a generated server certificate (it always names
    /// `localhost`, 127.0.0.1, ::1, this host's name and the listen address).
    #[serde(default)]
    pub names: Vec<String>,
}

impl TlsConfig {
    /// Is HTTPS served?
    pub fn is_on(&self) -> bool {
        self.enabled || self.cert_file.is_some() || self.key_file.is_some()
    }

    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "[tls] set both cert_file and key_file, or neither (a CA and a \
                            server certificate are then generated in data_dir/tls/)"
                        .into(),
                )
            }
            (Some(c), Some(k)) => {
                jitgate_gateway::tls::load_pem(c, k).map_err(|e| format!("[tls] {e}"))?;
            }
            (None, None) => {}
        }
        for n in &self.names {
            if n.trim().is_empty() || n.contains(char::is_whitespace) {
                return Err(format!(
                    "[tls] names: {n:?} is not a DNS name or IP address"
                ));
            }
        }
        Ok(())
    }
}

/// Refuse plain HTTP off loopback unless the operator said the network is trusted.
pub fn check_plain_http(config: &super::ServerConfig) -> Result<(), String> {
    if config.tls.is_on()
        || config.listen.ip().is_loopback()
        || config.insecure_plain_http_on_trusted_network
    {
        return Ok(());
    }
    Err(format!(
        "refusing to serve plain HTTP on {listen}, which is not a loopback address: passwords, \
         session tokens and gateway API keys would cross the network in clear. Turn TLS on with \
         `[tls] enabled = true` (or JITGATE_TLS=true; a CA and a server certificate are then \
         generated in {dir}) or with `[tls] cert_file` and `key_file`; or listen on 127.0.0.1; \
         or, only on a network you trust end to end, set \
         insecure_plain_http_on_trusted_network = true \
         (JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK=true)",
        listen = config.listen,
        dir = config.data_dir.join(TLS_DIR).display(),
    ))
}
