//! `[cluster]`: this node's name and address when several `jitgate serve` nodes share one
//! PostgreSQL database (docs/cluster.md). On SQLite there is one node and nothing here
//! changes behaviour beyond the name shown.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster; shown as where each gateway is attached
    /// and who holds each lease. Default: `<host name>:<listen port>`.
    #[serde(default)]
    pub node_id: Option<String>,
    /// The base URL operators and gateways reach this node at, e.g.
    /// `https://jitgate-b.plant.example:8443`. Default: built from `listen`.
    #[serde(default)]
    pub url: Option<String>,
}

impl ClusterConfig {
    /// The node's name: the configured one, else host name and port.
    pub fn node_id(&self, listen: SocketAddr) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "jitgate".into());
        format!("{host}:{}", listen.port())
    }

    /// The node's URL: the configured one, else from the listen address and TLS setting.
    pub fn url(&self, listen: SocketAddr, tls: bool) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("{}://{listen}", if tls { "https" } else { "http" }))
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.node_id {
            if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "cluster.node_id {id:?}: 1 to 128 printable characters, unique in the cluster"
                ));
            }
        }
        if let Some(url) = &self.url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "cluster.url {url:?}: an http:// or https:// base URL, e.g. https://jitgate-b.plant.example:8443"
                ));
            }
        }
        Ok(())
    }
}
