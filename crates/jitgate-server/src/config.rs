//! Server configuration: one TOML file, overridden by `JITGATE_*` environment variables,
//! overridden by command-line flags (the binary applies flags last). Unknown keys are errors
//! that name the key.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite database and local state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL, `sqlite://...` for a specific SQLite file; default:
    /// SQLite in `data_dir`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Directory of `*.cedar` policy files; default: the built-in OT policy set.
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// Inventory file loaded (upserted) at start.
    #[serde(default)]
    pub inventory: Option<PathBuf>,
    /// Lifetime of a login session token, e.g. `1h`.
    #[serde(default = "default_session_ttl")]
    pub session_ttl: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./jitgate-data")
}
fn default_session_ttl() -> String {
    "1h".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            database_url: None,
            policy_dir: None,
            inventory: None,
            session_ttl: default_session_ttl(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?} is invalid: {message}")]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Read the file (if any), then apply `JITGATE_*` variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                toml::from_str::<ServerConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => ServerConfig::default(),
        };
        if let Some(v) = env("JITGATE_LISTEN") {
            cfg.listen = v
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                    var: "JITGATE_LISTEN",
                    value: v.clone(),
                    message: format!("{e}; expected host:port such as 127.0.0.1:8080"),
                })?;
        }
        if let Some(v) = env("JITGATE_DATA_DIR") {
            cfg.data_dir = v.into();
        }
        if let Some(v) = env("JITGATE_DATABASE_URL") {
            cfg.database_url = Some(v);
        }
        if let Some(v) = env("JITGATE_POLICY_DIR") {
            cfg.policy_dir = Some(v.into());
        }
        if let Some(v) = env("JITGATE_INVENTORY") {
            cfg.inventory = Some(v.into());
        }
        if let Some(v) = env("JITGATE_SESSION_TTL") {
            cfg.session_ttl = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let ttl = self.session_ttl_secs()?;
        if !(60..=86_400).contains(&ttl) {
            return Err(ConfigError::Invalid(format!(
                "session_ttl {} is outside 1m..24h; session tokens are meant to be short-lived",
                self.session_ttl
            )));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError::Invalid(format!(
                    "database_url must start with sqlite: or postgres://, got {url:?}"
                )));
            }
        }
        Ok(())
    }

    pub fn session_ttl_secs(&self) -> Result<i64, ConfigError> {
        parse_duration_secs(&self.session_ttl)
            .map_err(|m| ConfigError::Invalid(format!("session_ttl {:?}: {m}", self.session_ttl)))
    }
}

/// `30m`, `2h`, `1h30m`, `90s`, `1d` → seconds.
pub fn parse_duration_secs(text: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write durations like 30m, 2h or 1h30m"))?;
    i64::try_from(d.as_secs()).map_err(|_| "duration is too long".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let err = ServerConfig::load(Some(&p), |_| None).unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\n").unwrap();
        let cfg = ServerConfig::load(Some(&p), |k| {
            (k == "JITGATE_LISTEN").then(|| "127.0.0.1:2".into())
        })
        .unwrap();
        assert_eq!(cfg.listen.port(), 2);
        let err = ServerConfig::load(Some(&p), |k| (k == "JITGATE_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(err.to_string().contains("JITGATE_LISTEN"), "{err}");
    }

    #[test]
    fn long_session_ttl_is_refused() {
        let cfg = ServerConfig {
            session_ttl: "30d".into(),
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }
}
