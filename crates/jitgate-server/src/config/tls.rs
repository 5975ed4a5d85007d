//! `[tls]`: the server's certificate (files, or a CA generated in the data directory); see
//! [`crate::tls`] for serving it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Name of the directory in `data_dir` that holds generated certificates.
pub const TLS_DIR: &str = "tls";

/// `[tls]` in the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Must gateways present the client certificate issued at their enrolment (mutual TLS)
    /// besides their API key? `required` (default) or `optional`. Applies with TLS on.
    #[serde(default)]
    pub gateway_client_certs: jitgate_core::gateway_enrolment::ClientCertMode,
    /// Lifetime of gateways' client certificates, in days; gateways renew them when a third
    /// of it remains.
    #[serde(default = "default_gateway_cert_days")]
    pub gateway_cert_days: u32,
}

/// Default lifetime of a gateway's client certificate.
pub const DEFAULT_GATEWAY_CERT_DAYS: u32 = 90;
/// Longest lifetime of a gateway's client certificate (as public CAs' 397 days).
pub const MAX_GATEWAY_CERT_DAYS: u32 = 397;

fn default_gateway_cert_days() -> u32 {
    DEFAULT_GATEWAY_CERT_DAYS
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: false,
            cert_file: None,
            key_file: None,
            names: Vec::new(),
            gateway_client_certs: Default::default(),
            gateway_cert_days: DEFAULT_GATEWAY_CERT_DAYS,
        }
    }
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
        if !(1..=MAX_GATEWAY_CERT_DAYS).contains(&self.gateway_cert_days) {
            return Err(format!(
                "[tls] gateway_cert_days = {}: give 1 to {MAX_GATEWAY_CERT_DAYS} days (default \
                 {DEFAULT_GATEWAY_CERT_DAYS})",
                self.gateway_cert_days
            ));
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
