//! `gateway.toml`: who the gateway is, where the server is, where it listens.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// jitgate server URL, e.g. `https://jitgate.plant.example:8443`.
    pub server: String,
    /// Other server nodes on the same database, tried in order when `server` cannot be
    /// reached (docs/cluster.md). Same pin as `server`: with nodes that have certificates of
    /// their own, pin their CA (`server_ca_file`).
    #[serde(default)]
    pub failover_servers: Vec<String>,
    /// With an `https://` server: the SHA-256 fingerprint of the server's certificate
    /// (`sha256:…`, printed by `jitgate serve`). Exactly that certificate is accepted.
    #[serde(default)]
    pub server_fingerprint: Option<String>,
    /// With an `https://` server: PEM CA certificate(s) the server's certificate must chain
    /// to (e.g. the `tls/ca-cert.pem` `jitgate serve` generates in its data directory).
    #[serde(default)]
    pub server_ca_file: Option<PathBuf>,
    /// The gateway's API key (`jgk_...`), or use `api_key_file` / `JITGATE_GATEWAY_KEY`.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Address tunnels are accepted on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Address clients are told to connect to (default: `listen`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Address of the SSH server (`ssh -p PORT <asset>@gateway`, docs/gateway.md, "SSH");
    /// no SSH listener when unset.
    #[serde(default)]
    pub ssh_listen: Option<SocketAddr>,
    /// Address SSH clients are told to connect to (default: `ssh_listen`).
    #[serde(default)]
    pub ssh_advertise: Option<String>,
    /// Local state: spooled events, the self-signed certificate.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// TLS certificate and key (PEM); default: a self-signed pair in `state_dir`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// How long new sessions may start while the server is unreachable (`0s` = fail closed,
    /// the default). Running sessions always end at their token's expiry regardless.
    #[serde(default = "default_grace")]
    pub offline_grace: String,
    /// How long live sessions may go on while no server node has been heard from (control
    /// channel and API both silent), before the gateway cuts them: it never keeps enforcing
    /// stale knowledge indefinitely. New sessions are refused as soon as the server cannot
    /// confirm them (after `offline_grace`). `0s` turns the cut off; tokens still end
    /// sessions at their expiry regardless.
    #[serde(default = "default_cut_after_silence")]
    pub cut_after_silence: String,
    /// Address of the `/metrics` (Prometheus) and `/readyz` listener; none when unset. It
    /// answers without authentication: bind it to a management address.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// How long to wait for a device's answer before the session is closed.
    #[serde(default = "default_device_timeout")]
    pub device_timeout: String,

    /// How often the event write-ahead file is flushed to the disk (`fdatasync`) while
    /// events are written: what a power loss may lose of what the server has not yet taken
    /// (a killed process loses nothing). `0s`: before each event is acknowledged (a disk
    /// flush per operation: slow).
    #[serde(default = "default_event_sync_interval")]
    pub event_sync_interval: String,

    // --- Limits on the client-facing ports (`[client_limits]`; crate::admission). ---
    /// Connection cap and idle timeout; defaults when the table is absent.
    #[serde(default)]
    pub client_limits: crate::admission::ClientLimits,

    /// Session recordings' spool (`[recordings]`; crate::recording::deliver).
    #[serde(default)]
    pub recordings: RecordingsConfig,
}

/// `[recordings]` in `gateway.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsConfig {
    /// Bytes of recordings the gateway may hold undelivered in `state_dir` (default 256 MiB,
    /// at least 4 MiB). At the cap, recorded sessions' output waits until the server has
    /// taken some: sessions slow down, nothing recorded is dropped, the disk does not fill.
    pub max_spool_bytes: u64,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            max_spool_bytes: crate::recording::deliver::DEFAULT_MAX_SPOOL_BYTES,
        }
    }
}

impl RecordingsConfig {
    pub fn validate(&self) -> Result<(), String> {
        let min = crate::recording::deliver::MIN_MAX_SPOOL_BYTES;
        if self.max_spool_bytes < min {
            return Err(format!(
                "recordings.max_spool_bytes = {} is below the minimum {min} (4 MiB: a few of the largest chunks)",
                self.max_spool_bytes
            ));
        }
        Ok(())
    }

    pub fn spool_limits(&self) -> crate::recording::deliver::SpoolLimits {
        crate::recording::deliver::SpoolLimits {
            max_bytes: self.max_spool_bytes,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("./jitgate-gateway")
}
fn default_grace() -> String {
    "0s".into()
}
fn default_cut_after_silence() -> String {
    "5m".into()
}
fn default_event_sync_interval() -> String {
    "100ms".into()
}
fn default_device_timeout() -> String {
    "5s".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let cfg: GatewayConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.offline_grace()?;
        self.device_timeout()?;
        let cut = self.cut_after_silence()?;
        if !cut.is_zero() && cut < std::time::Duration::from_secs(35) {
            return Err(ConfigError::Invalid(format!(
                "cut_after_silence {:?} is shorter than the control channel's 30 s silence                  bound: a single lost connection would cut every session; use 35s or more                  (default 5m), or 0s to turn the cut off",
                self.cut_after_silence
            )));
        }
        self.client_limits
            .validate()
            .map_err(ConfigError::Invalid)?;
        self.recordings.validate().map_err(ConfigError::Invalid)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "set both tls_cert and tls_key, or neither (a self-signed pair is then created)"
                    .into(),
            ));
        }
        for (key, url) in std::iter::once(("server", &self.server)).chain(
            self.failover_servers
                .iter()
                .map(|s| ("failover_servers", s)),
        ) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "{key} {url:?} must be an http:// or https:// URL"
                )));
            }
            if url.starts_with("https://") != self.server.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "{key} {url:?}: every server node is https:// or every one http://,                      under the same pin"
                )));
            }
        }
        self.server_trust()?;
        // A wildcard address is where to listen, not where to connect: clients would be told
        // to dial 0.0.0.0 (the machine they run on).
        let listeners = [
            ("listen", Some(self.listen), &self.advertise, "advertise"),
            (
                "ssh_listen",
                self.ssh_listen,
                &self.ssh_advertise,
                "ssh_advertise",
            ),
        ];
        for (key, listen, advertise, advertise_key) in listeners {
            if let (Some(l), None) = (listen, advertise) {
                if l.ip().is_unspecified() {
                    return Err(ConfigError::Invalid(format!(
                        "{key} = \"{l}\" listens on every address, so clients cannot be told where to connect: set {advertise_key} = \"<name or address clients reach>:{}\"",
                        l.port()
                    )));
                }
            }
        }
        Ok(())
    }

    /// How the server is recognised: `None` for a plain `http://` server, else its pin. An
    /// `https://` server without a pin is an error: the gateway would otherwise send its API
    /// key to whoever answers.
    pub fn server_trust(&self) -> Result<Option<crate::server_trust::ServerTrust>, ConfigError> {
        use crate::server_trust::{parse_fingerprint, ServerTrust};
        let https = self.server.starts_with("https://");
        match (&self.server_fingerprint, &self.server_ca_file) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid(
                "set server_fingerprint or server_ca_file, not both".into(),
            )),
            (Some(_), None) | (None, Some(_)) if !https => Err(ConfigError::Invalid(format!(
                "server_fingerprint / server_ca_file pin a TLS server, but server {:?} is plain \
                 http://; use the https:// URL `jitgate serve` prints",
                self.server
            ))),
            (Some(fp), None) => parse_fingerprint(fp)
                .map(|fp| Some(ServerTrust::Fingerprint(fp)))
                .map_err(|m| ConfigError::Invalid(format!("server_fingerprint: {m}"))),
            (None, Some(ca)) => Ok(Some(ServerTrust::CaFile(ca.clone()))),
            (None, None) if https => Err(ConfigError::Invalid(format!(
                "server {:?} is https:// but nothing pins it: set server_fingerprint = \
                 \"sha256:…\" (printed by `jitgate serve`) or server_ca_file = \
                 \"/path/to/ca-cert.pem\" (the server's data directory holds tls/ca-cert.pem)",
                self.server
            ))),
            (None, None) => Ok(None),
        }
    }

    pub fn cut_after_silence(&self) -> Result<std::time::Duration, ConfigError> {
        humantime::parse_duration(&self.cut_after_silence).map_err(|e| {
            ConfigError::Invalid(format!(
                "cut_after_silence {:?}: {e}",
                self.cut_after_silence
            ))
        })
    }

    pub fn offline_grace(&self) -> Result<std::time::Duration, ConfigError> {
        humantime::parse_duration(&self.offline_grace).map_err(|e| {
            ConfigError::Invalid(format!("offline_grace {:?}: {e}", self.offline_grace))
        })
    }

    /// `event_sync_interval` as the write-ahead file's policy.
    pub fn event_sync(&self) -> Result<crate::spool::SyncPolicy, ConfigError> {
        let d = humantime::parse_duration(&self.event_sync_interval).map_err(|e| {
            ConfigError::Invalid(format!(
                "event_sync_interval {:?}: {e}",
                self.event_sync_interval
            ))
        })?;
        Ok(if d.is_zero() {
            crate::spool::SyncPolicy::EveryEvent
        } else {
            crate::spool::SyncPolicy::Interval(d)
        })
    }

    pub fn device_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        humantime::parse_duration(&self.device_timeout).map_err(|e| {
            ConfigError::Invalid(format!("device_timeout {:?}: {e}", self.device_timeout))
        })
    }

    /// The API key: `api_key`, else `api_key_file`, else `JITGATE_GATEWAY_KEY`.
    pub fn api_key(&self) -> Result<String, ConfigError> {
        if let Some(k) = &self.api_key {
            return Ok(k.clone());
        }
        if let Some(p) = &self.api_key_file {
            return std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                });
        }
        std::env::var("JITGATE_GATEWAY_KEY").map_err(|_| {
            ConfigError::Invalid("no API key: set api_key, api_key_file or JITGATE_GATEWAY_KEY (create one with `jitgate apikey create --identity <gateway>`)".into())
        })
    }

    pub fn advertised(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<GatewayConfig, String> {
        let cfg: GatewayConfig =
            toml::from_str(&format!("server = \"http://127.0.0.1:8080\"\n{extra}"))
                .map_err(|e| e.to_string())?;
        cfg.validate().map(|()| cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn a_wildcard_listener_needs_an_address_to_announce() {
        assert!(config("").is_ok());
        let err = config("listen = \"0.0.0.0:8443\"").unwrap_err();
        assert!(err.contains("set advertise"), "{err}");
        assert!(config("listen = \"0.0.0.0:8443\"\nadvertise = \"gw.example:8443\"").is_ok());
        let err = config("ssh_listen = \"[::]:2222\"").unwrap_err();
        assert!(
            err.contains("set ssh_advertise") && err.contains(":2222"),
            "{err}"
        );
        assert!(config("ssh_listen = \"10.0.0.5:2222\"").is_ok());
        assert!(
            config("ssh_listen = \"0.0.0.0:2222\"\nssh_advertise = \"gw.example:2222\"").is_ok()
        );
    }

    #[test]
    fn the_recordings_spool_cap_has_a_default_and_a_floor() {
        let cfg = config("").unwrap();
        assert_eq!(cfg.recordings.max_spool_bytes, 256 * 1024 * 1024);
        let cfg = config("[recordings]\nmax_spool_bytes = 8388608").unwrap();
        assert_eq!(cfg.recordings.spool_limits().max_bytes, 8 * 1024 * 1024);
        let err = config("[recordings]\nmax_spool_bytes = 1000").unwrap_err();
        assert!(err.contains("below the minimum"), "{err}");
        assert!(config("[recordings]\nmax_spool = 1").is_err());
    }
}
