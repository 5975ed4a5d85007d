//! `[login]`: the password-hashing pool and the backoff and lockout after failed sign-ins
//! and step-up codes (the rule is `jitgate_core::lockout`; see docs/configuration.md).

use jitgate_core::lockout::LockoutPolicy;
use serde::{Deserialize, Serialize};

/// `[login]` in the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Passwords checked (argon2id, ~19 MiB each) at once; default: the number of cores.
    #[serde(default)]
    pub hash_concurrency: Option<usize>,
    /// Sign-ins waiting for the pool beyond which more are refused `503 server_busy`.
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
    /// Failures counted per identity name (`[login.identity]`).
    #[serde(default = "identity_default")]
    pub identity: LockoutSettings,
    /// Failures counted per source address (`[login.source]`).
    #[serde(default = "source_default")]
    pub source: LockoutSettings,
}

fn default_hash_queue() -> usize {
    64
}

fn identity_default() -> LockoutSettings {
    LockoutSettings::from_policy(&LockoutPolicy::IDENTITY_DEFAULT)
}
fn source_default() -> LockoutSettings {
    LockoutSettings::from_policy(&LockoutPolicy::SOURCE_DEFAULT)
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            hash_concurrency: None,
            hash_queue: default_hash_queue(),
            identity: identity_default(),
            source: source_default(),
        }
    }
}

/// One [`LockoutPolicy`] as written in the file (durations as text, e.g. `15m`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutSettings {
    pub free_failures: u32,
    pub backoff: String,
    pub backoff_max: String,
    pub lockout_after: u32,
    pub lockout: String,
    pub forget_after: String,
}

impl LockoutSettings {
    fn from_policy(p: &LockoutPolicy) -> Self {
        let d = |s: i64| {
            humantime::format_duration(std::time::Duration::from_secs(s as u64)).to_string()
        };
        LockoutSettings {
            free_failures: p.free_failures,
            backoff: d(p.backoff_base_secs),
            backoff_max: d(p.backoff_max_secs),
            lockout_after: p.lockout_after,
            lockout: d(p.lockout_secs),
            forget_after: d(p.forget_after_secs),
        }
    }

    pub fn policy(&self, section: &str) -> Result<LockoutPolicy, String> {
        let d = |name: &str, v: &str| {
            super::parse_duration_secs(v).map_err(|m| format!("[{section}] {name} {v:?}: {m}"))
        };
        let p = LockoutPolicy {
            free_failures: self.free_failures,
            backoff_base_secs: d("backoff", &self.backoff)?,
            backoff_max_secs: d("backoff_max", &self.backoff_max)?,
            lockout_after: self.lockout_after,
            lockout_secs: d("lockout", &self.lockout)?,
            forget_after_secs: d("forget_after", &self.forget_after)?,
        };
        p.check().map_err(|m| format!("[{section}]: {m}"))?;
        Ok(p)
    }
}

impl LoginConfig {
    pub fn identity_policy(&self) -> Result<LockoutPolicy, String> {
        self.identity.policy("login.identity")
    }
    pub fn source_policy(&self) -> Result<LockoutPolicy, String> {
        self.source.policy("login.source")
    }
    /// Passwords checked at once.
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.identity_policy()?;
        self.source_policy()?;
        if self.hash_concurrency == Some(0) || self.hash_concurrency.is_some_and(|n| n > 256) {
            return Err("[login] hash_concurrency must be within 1..256".into());
        }
        if self.hash_queue > 100_000 {
            return Err("[login] hash_queue must be at most 100000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_core_defaults() {
        let c = LoginConfig::default();
        assert_eq!(
            c.identity_policy().unwrap(),
            LockoutPolicy::IDENTITY_DEFAULT
        );
        assert_eq!(c.source_policy().unwrap(), LockoutPolicy::SOURCE_DEFAULT);
        assert_eq!(c.identity.lockout, "15m");
        c.validate().unwrap();
    }

    #[test]
    fn a_file_may_set_each_threshold() {
        let c: LoginConfig = toml::from_str(
            "hash_concurrency = 2\n[identity]\nfree_failures = 1\nbackoff = \"2s\"\nbackoff_max = \"10s\"\nlockout_after = 3\nlockout = \"5m\"\nforget_after = \"1h\"\n",
        )
        .unwrap();
        assert_eq!(c.hash_concurrency(), 2);
        let p = c.identity_policy().unwrap();
        assert_eq!(
            (
                p.free_failures,
                p.backoff_base_secs,
                p.lockout_after,
                p.lockout_secs
            ),
            (1, 2, 3, 300)
        );
        let bad: LoginConfig = toml::from_str(
            "[identity]\nfree_failures = 5\nbackoff = \"1s\"\nbackoff_max = \"1m\"\nlockout_after = 5\nlockout = \"5m\"\nforget_after = \"1h\"\n",
        )
        .unwrap();
        assert!(bad.validate().unwrap_err().contains("login.identity"));
    }
}
