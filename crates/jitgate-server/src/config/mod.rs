//! Server configuration: one TOML file, overridden by `JITGATE_*` environment variables,
//! overridden by command-line flags (the binary applies flags last). Unknown keys are errors
//! that name the key.
//!
//! The sections that belong to one part of the server have their types here too
//! ([`evidence`], [`siem`], [`console`]), so configuration sits below everything it
//! configures: no configuration type imports a part of the server.

pub mod cluster;
pub mod console;
pub mod evidence;
pub mod federation;
pub mod limits;
pub mod login;
pub mod passkeys;
pub mod siem;
pub mod sso;
pub mod tls;

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
    /// Sign-in limits (`[login]`): password-hashing pool, backoff and lockout.
    #[serde(default)]
    pub login: login::LoginConfig,
    /// Evidence log: log id, checkpoint interval (`[evidence]`); see docs/evidence.md.
    #[serde(default)]
    pub evidence: evidence::EvidenceConfig,
    /// SIEM collectors events are streamed to (`[[siem]]`).
    #[serde(default)]
    pub siem: Vec<siem::SiemConfig>,
    /// How long after a grant's expiry its post-session review is due, e.g. `24h`.
    #[serde(default = "default_review_due_after")]
    pub review_due_after: String,
    /// Outgoing notifications (`[[notify.webhook]]`); see docs/notifications.md.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// How long a teardown waits for each gateway to acknowledge a revocation (and for the
    /// credential probe) before the verdict is `failed`, e.g. `5s`.
    #[serde(default = "default_teardown_timeout")]
    pub teardown_timeout: String,
    /// The web console (`[console]`): session cookie flags, idle timeout; see docs/console.md.
    #[serde(default)]
    pub console: console::ConsoleConfig,
    /// HTTPS (`[tls]`): certificate files, or a CA generated in `data_dir`; see
    /// docs/configuration.md.
    #[serde(default)]
    pub tls: tls::TlsConfig,
    /// Serve plain HTTP on a non-loopback address. Off: `serve` refuses to start that way.
    #[serde(default)]
    pub insecure_plain_http_on_trusted_network: bool,
    /// Connection, body, scope, open-request, page and stream limits (`[limits]`).
    #[serde(default)]
    pub limits: limits::LimitsConfig,
    /// This node's name and URL among several on one PostgreSQL (`[cluster]`);
    /// see docs/cluster.md.
    #[serde(default)]
    pub cluster: cluster::ClusterConfig,
    /// Issuers whose JWTs workloads exchange for a session (`[[federation.issuers]]`); see
    /// docs/federation.md.
    #[serde(default)]
    pub federation: federation::FederationConfig,
    /// The WebAuthn relying party of people's passkeys (`[passkeys]`); see docs/passkeys.md.
    #[serde(default)]
    pub passkeys: passkeys::PasskeysConfig,
    /// OpenID providers people sign in with (`[sso]`, `[[sso.providers]]`); see docs/sso.md.
    #[serde(default)]
    pub sso: sso::SsoConfig,
    /// Thresholds of the findings detectors (`[findings]`); see docs/findings.md.
    #[serde(default)]
    pub findings: jitgate_core::findings::FindingsConfig,
}

fn default_teardown_timeout() -> String {
    "5s".into()
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
fn default_review_due_after() -> String {
    "24h".into()
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
            login: login::LoginConfig::default(),
            evidence: evidence::EvidenceConfig::default(),
            siem: Vec::new(),
            review_due_after: default_review_due_after(),
            notify: NotifyConfig::default(),
            teardown_timeout: default_teardown_timeout(),
            console: console::ConsoleConfig::default(),
            tls: tls::TlsConfig::default(),
            insecure_plain_http_on_trusted_network: false,
            limits: limits::LimitsConfig::default(),
            cluster: cluster::ClusterConfig::default(),
            federation: federation::FederationConfig::default(),
            passkeys: passkeys::PasskeysConfig::default(),
            sso: sso::SsoConfig::default(),
            findings: jitgate_core::findings::FindingsConfig::default(),
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
        if let Some(v) = env("JITGATE_EVIDENCE_LOG_ID") {
            cfg.evidence.log_id = Some(v);
        }
        if let Some(v) = env("JITGATE_EVIDENCE_WITNESSES") {
            // Vkeys hold no whitespace: one list, separated by spaces or newlines.
            cfg.evidence.witnesses = v.split_whitespace().map(str::to_string).collect();
        }
        if let Some(v) = env("JITGATE_EVIDENCE_CHECKPOINT_INTERVAL") {
            cfg.evidence.checkpoint_interval = v;
        }
        if let Some(v) = env("JITGATE_REVIEW_DUE_AFTER") {
            cfg.review_due_after = v;
        }
        if let Some(v) = env("JITGATE_TEARDOWN_TIMEOUT") {
            cfg.teardown_timeout = v;
        }
        if let Some(v) = env("JITGATE_CONSOLE_IDLE_TIMEOUT") {
            cfg.console.idle_timeout = v;
        }
        if let Some(v) = env("JITGATE_CONSOLE_SECURE_COOKIE") {
            cfg.console.secure_cookie = match v.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: "JITGATE_CONSOLE_SECURE_COOKIE",
                        value: v.clone(),
                        message: "expected true or false".into(),
                    })
                }
            };
        }
        if let Some(v) = env("JITGATE_PASSKEYS_RP_ID") {
            cfg.passkeys.rp_id = Some(v);
        }
        if let Some(v) = env("JITGATE_PASSKEYS_ORIGIN") {
            cfg.passkeys.origin = Some(v);
        }
        apply_tls_env(&mut cfg, &env)?;
        cfg.limits.apply_env(&env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.evidence.validate().map_err(ConfigError::Invalid)?;
        siem::validate_all(&self.siem).map_err(ConfigError::Invalid)?;
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
        let due = self.review_due_after_secs()?;
        if !(0..=90 * 86_400).contains(&due) {
            return Err(ConfigError::Invalid(format!(
                "review_due_after {} is outside 0s..90d; reviews of break-glass access are \
                 meant to happen soon after it",
                self.review_due_after
            )));
        }
        self.notify.validate()?;
        self.console.validate().map_err(ConfigError::Invalid)?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.cluster.validate().map_err(ConfigError::Invalid)?;
        self.login.validate().map_err(ConfigError::Invalid)?;
        self.federation.validate().map_err(ConfigError::Invalid)?;
        self.sso.validate().map_err(ConfigError::Invalid)?;
        self.findings.validate().map_err(ConfigError::Invalid)?;
        self.tls.validate().map_err(ConfigError::Invalid)?;
        self.relying_party()?;
        tls::check_plain_http(self).map_err(ConfigError::Invalid)?;
        let td = self.teardown_timeout()?;
        if td < std::time::Duration::from_millis(100) || td > std::time::Duration::from_secs(300) {
            return Err(ConfigError::Invalid(format!(
                "teardown_timeout {} is outside 100ms..5m",
                self.teardown_timeout
            )));
        }
        Ok(())
    }

    /// The passkeys' relying party (`[passkeys]`, defaulted from `listen` and `[tls]`).
    pub fn relying_party(&self) -> Result<passkeys::RelyingParty, ConfigError> {
        self.passkeys
            .relying_party(self.listen, self.tls.is_on())
            .map_err(ConfigError::Invalid)
    }

    pub fn teardown_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        humantime::parse_duration(self.teardown_timeout.trim()).map_err(|e| {
            ConfigError::Invalid(format!(
                "teardown_timeout {:?}: {e}; write it like 5s or 500ms",
                self.teardown_timeout
            ))
        })
    }

    pub fn review_due_after_secs(&self) -> Result<i64, ConfigError> {
        parse_duration_secs(&self.review_due_after).map_err(|m| {
            ConfigError::Invalid(format!("review_due_after {:?}: {m}", self.review_due_after))
        })
    }

    pub fn session_ttl_secs(&self) -> Result<i64, ConfigError> {
        parse_duration_secs(&self.session_ttl)
            .map_err(|m| ConfigError::Invalid(format!("session_ttl {:?}: {m}", self.session_ttl)))
    }
}

/// When a review of `grant` is due: `review_due_after` (default 24h) after the grant's
/// expiry.
pub fn review_due_at(
    config: &ServerConfig,
    grant: &jitgate_core::Grant,
) -> Result<jitgate_core::Timestamp, crate::error::ServerError> {
    let secs = config
        .review_due_after_secs()
        .map_err(|e| crate::error::ServerError::Internal(format!("configuration: {e}")))?;
    Ok(grant.expires_at + chrono::Duration::seconds(secs))
}

/// `JITGATE_TLS`, `JITGATE_TLS_CERT_FILE`, `JITGATE_TLS_KEY_FILE`,
/// `JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK`.
fn apply_tls_env(
    cfg: &mut ServerConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let flag = |var: &'static str, v: String| match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Env {
            var,
            value: v.clone(),
            message: "expected true or false".into(),
        }),
    };
    if let Some(v) = env("JITGATE_TLS") {
        cfg.tls.enabled = flag("JITGATE_TLS", v)?;
    }
    if let Some(v) = env("JITGATE_TLS_CERT_FILE") {
        cfg.tls.cert_file = Some(v.into());
    }
    if let Some(v) = env("JITGATE_TLS_KEY_FILE") {
        cfg.tls.key_file = Some(v.into());
    }
    if let Some(v) = env("JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK") {
        cfg.insecure_plain_http_on_trusted_network =
            flag("JITGATE_INSECURE_PLAIN_HTTP_ON_TRUSTED_NETWORK", v)?;
    }
    Ok(())
}

/// `30m`, `2h`, `1h30m`, `90s`, `1d` → seconds.
pub fn parse_duration_secs(text: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write durations like 30m, 2h or 1h30m"))?;
    i64::try_from(d.as_secs()).map_err(|_| "duration is too long".to_string())
}

/// `[notify]`: where notifications go.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `[[notify.webhook]]` entries.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
}

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// jitgate's JSON envelope (docs/notifications.md).
    #[default]
    Json,
    /// A Slack-compatible message (`text` + `blocks`), for Slack incoming webhooks and the
    /// many chat tools that accept the same shape.
    Slack,
}

/// One `[[notify.webhook]]`. The HMAC key comes from a file or an environment variable,
/// never from this file, so the configuration can be shared and versioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name; shown in `jitgate notifications` and logs (the URL never is: chat
    /// webhook URLs are secrets themselves).
    pub name: String,
    /// `https://...` (or `http://` for a receiver on a trusted network).
    pub url: String,
    /// File holding the HMAC-SHA256 key (at least 16 bytes; surrounding whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the HMAC-SHA256 key.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Notice kinds to send; default: all of [`NOTICE_KINDS`].
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// Every notice kind a webhook can subscribe to.
pub const NOTICE_KINDS: &[&str] = &[
    "request.awaiting_approval",
    "grant.active",
    "breakglass.started",
    "teardown.failed",
    "review.due",
];

/// Shortest HMAC key accepted, in bytes.
pub const MIN_WEBHOOK_SECRET: usize = 16;

impl NotifyConfig {
    /// Check every webhook, including that its secret can be read now.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for w in &self.webhooks {
            w.validate()?;
            if !seen.insert(w.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "notify.webhook {:?} is defined twice; give each webhook a unique name",
                    w.name
                )));
            }
            w.secret()?;
        }
        Ok(())
    }
}

impl WebhookConfig {
    /// Everything but the secret (which [`WebhookConfig::secret`] reads).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.name;
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok_name {
            return Err(ConfigError::Invalid(format!(
                "notify.webhook name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
            )));
        }
        let invalid = |m: String| ConfigError::Invalid(format!("notify.webhook {name:?}: {m}"));
        // The URL is not echoed: a chat webhook URL carries its own secret.
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| invalid(format!("url is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "url must be http://host/... or https://host/...".into(),
            ));
        }
        match (&self.secret_file, &self.secret_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "set either secret_file or secret_env, not both".into(),
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "needs an HMAC key: set secret_file = \"/etc/jitgate/<name>.secret\" or \
                     secret_env = \"JITGATE_<NAME>_SECRET\" (at least 16 random bytes, e.g. \
                     `openssl rand -hex 32`)"
                        .into(),
                ))
            }
            _ => {}
        }
        if let Some(events) = &self.events {
            if events.is_empty() {
                return Err(invalid(
                    "events is empty; omit it to send every kind, or remove the webhook".into(),
                ));
            }
            for e in events {
                if !NOTICE_KINDS.contains(&e.as_str()) {
                    return Err(invalid(format!(
                        "unknown event {e:?}; use {}",
                        NOTICE_KINDS.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// Read the HMAC key from its file or environment variable.
    pub fn secret(&self) -> Result<Vec<u8>, ConfigError> {
        let name = &self.name;
        let raw = if let Some(path) = &self.secret_file {
            std::fs::read(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "notify.webhook {name:?}: cannot read secret_file {}: {e}",
                    path.display()
                ))
            })?
        } else if let Some(var) = &self.secret_env {
            std::env::var(var)
                .map_err(|_| {
                    ConfigError::Invalid(format!(
                        "notify.webhook {name:?}: environment variable {var} (secret_env) is \
                         not set or not UTF-8"
                    ))
                })?
                .into_bytes()
        } else {
            return Err(ConfigError::Invalid(format!(
                "notify.webhook {name:?} has no secret_file or secret_env"
            )));
        };
        let secret = raw.trim_ascii().to_vec();
        if secret.len() < MIN_WEBHOOK_SECRET {
            return Err(ConfigError::Invalid(format!(
                "notify.webhook {name:?}: the HMAC key has {} bytes; use at least \
                 {MIN_WEBHOOK_SECRET} random bytes (e.g. `openssl rand -hex 32`)",
                secret.len()
            )));
        }
        Ok(secret)
    }

    /// Does this webhook want notices of `kind`?
    pub fn wants(&self, kind: &str) -> bool {
        match &self.events {
            None => true,
            Some(events) => events.iter().any(|e| e == kind),
        }
    }
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

    fn webhook_config(dir: &Path, extra: &str) -> Result<ServerConfig, ConfigError> {
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            format!(
                "[[notify.webhook]]\nname = \"soc\"\nurl = \"https://soc.example/hook\"\n{extra}\n"
            ),
        )
        .unwrap();
        ServerConfig::load(Some(&p), |_| None)
    }

    #[test]
    fn webhooks_are_validated_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("soc.secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let file = format!("secret_file = {:?}", secret.display().to_string());

        let cfg = webhook_config(dir.path(), &file).unwrap();
        let w = &cfg.notify.webhooks[0];
        assert_eq!(w.format, WebhookFormat::Json);
        assert!(w.wants("review.due"));
        assert_eq!(w.secret().unwrap(), b"0123456789abcdef0123456789abcdef");

        let err = webhook_config(dir.path(), "").unwrap_err().to_string();
        assert!(
            err.contains("secret_file") && err.contains("secret_env"),
            "{err}"
        );

        std::fs::write(&secret, "short").unwrap();
        let err = webhook_config(dir.path(), &file).unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        std::fs::write(&secret, "0123456789abcdef").unwrap();

        let err = webhook_config(dir.path(), &format!("{file}\nevents = [\"grant.actve\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("grant.actve") && err.contains("grant.active"),
            "{err}"
        );

        let err = webhook_config(dir.path(), &format!("{file}\nformat = \"xml\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml"), "{err}");

        let err = webhook_config(
            dir.path(),
            &format!("{file}\n[[notify.webhook]]\nname = \"soc\"\nurl = \"http://h/\"\n{file}"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("twice"), "{err}");

        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            format!("[[notify.webhook]]\nname = \"x\"\nurl = \"ftp://h/secret-path\"\n{file}\n"),
        )
        .unwrap();
        let err = ServerConfig::load(Some(&p), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        assert!(!err.contains("secret-path"), "the URL is not echoed: {err}");
    }

    #[test]
    fn review_due_after_has_a_default_and_an_override() {
        let cfg = ServerConfig::load(None, |k| {
            (k == "JITGATE_REVIEW_DUE_AFTER").then(|| "2h".into())
        })
        .unwrap();
        assert_eq!(cfg.review_due_after_secs().unwrap(), 7200);
        assert_eq!(
            ServerConfig::default().review_due_after_secs().unwrap(),
            86_400
        );
    }
}
