//! `[sso]`: OpenID providers people sign in with (docs/sso.md). What a provider's mapping
//! must say is `jitgate_core::sso::validate_providers` (checked against the inventory at
//! start and by `jitgate check`); the parts only the server knows are checked here: URLs
//! (plain HTTP only on loopback), durations, the client secret's file or variable.

use super::federation::fetch_url_allowed;
use jitgate_core::sso::{validate_providers, GroupRoles, Provider, Rule};
use jitgate_core::{Identity, IdentityKind};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[sso]` in the server configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// Identities whose password is refused: they sign in through a provider only. Each must
    /// be mapped by some provider (checked at start).
    #[serde(default)]
    pub sso_only: Vec<String>,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// One `[[sso.providers]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// In URLs, events and `jitgate login --sso --provider NAME`.
    pub name: String,
    /// On the console's button: "Sign in with <display_name>" (default: the name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The provider's issuer; `<issuer>/.well-known/openid-configuration` is its discovery
    /// document, and the ID tokens' `iss` must equal it.
    pub issuer: String,
    pub client_id: String,
    /// File holding the client secret (first line; surrounding whitespace ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// This server's callback as registered at the provider:
    /// `<public URL>/api/v1/auth/sso/<name>/callback`.
    pub redirect_url: String,
    /// Scopes asked for besides `openid` (e.g. `email`, `profile`, `groups`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim of the ID token holding the person's groups (with `[[sso.providers.groups]]`).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// PEM trust anchor(s) for reaching the provider, in addition to the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Longest session a sign-in gives (default 8h; never longer than `session_ttl`).
    #[serde(default = "default_max_session")]
    pub max_session: String,
    /// Fewest seconds between two fetches of the provider's keys (default 10s).
    #[serde(default = "default_refetch")]
    pub jwks_refetch_interval: String,
    /// Keys (and the discovery document) older than this are fetched again (default 5m).
    #[serde(default = "default_max_age")]
    pub jwks_max_age: String,
    /// `[[sso.providers.map]]`: subject or e-mail → identity; rules to different identities
    /// must be exclusive (checked at start).
    #[serde(default)]
    pub map: Vec<MapConfig>,
    /// `[[sso.providers.groups]]`: a group of `groups_claim` → roles for the session.
    #[serde(default)]
    pub groups: Vec<GroupsConfig>,
}

/// One `[[sso.providers.map]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// A person (human or vendor) of the inventory.
    pub identity: String,
    /// The provider's `sub` for this person.
    #[serde(default)]
    pub subject: Option<String>,
    /// The person's verified e-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// One `[[sso.providers.groups]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    pub group: String,
    pub roles: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}
fn default_max_session() -> String {
    "8h".into()
}
fn default_refetch() -> String {
    "10s".into()
}
fn default_max_age() -> String {
    "5m".into()
}

/// Roles the group mapping may never add: a person's session is not a gateway.
const ROLES_NOT_MAPPED: &[&str] = &["gateway"];

impl SsoConfig {
    /// Everything but the identities (which need the inventory:
    /// [`SsoConfig::check_identities`]).
    pub fn validate(&self) -> Result<(), String> {
        let providers = self.core_providers()?;
        let person = placeholder_person();
        // Every identity "exists" here; mapping overlaps and the rest are checked.
        let mapped: Vec<String> = Vec::new();
        validate_providers(&providers, &mapped, |_| Some(&person)).map_err(|e| e.to_string())?;
        for p in &self.providers {
            p.fetch_timing()?;
            fetch_url_allowed(&p.issuer).map_err(|m| p.invalid(format!("issuer: {m}")))?;
            reqwest::Url::parse(&p.redirect_url).map_err(|e| {
                p.invalid(format!(
                    "redirect_url {:?} is not a URL ({e})",
                    p.redirect_url
                ))
            })?;
            p.client_secret()?;
            if let Some(ca) = &p.ca_file {
                std::fs::read(ca)
                    .map_err(|e| p.invalid(format!("cannot read ca_file {}: {e}", ca.display())))?;
            }
            for g in &p.groups {
                if let Some(r) = g
                    .roles
                    .iter()
                    .find(|r| ROLES_NOT_MAPPED.contains(&r.as_str()) || r.contains(','))
                {
                    return Err(p.invalid(format!(
                        "groups {:?}: role {r:?} cannot be given by a group",
                        g.group
                    )));
                }
            }
        }
        Ok(())
    }

    /// The core's view of every provider.
    pub fn core_providers(&self) -> Result<Vec<Provider>, String> {
        self.providers
            .iter()
            .map(ProviderConfig::provider)
            .collect()
    }

    /// Every rule names a person of `identities` (the inventory), no rule overlaps another,
    /// every `sso_only` identity is mapped.
    pub fn check_identities(&self, identities: &[Identity]) -> Result<(), String> {
        if self.providers.is_empty() && self.sso_only.is_empty() {
            return Ok(());
        }
        let providers = self.core_providers()?;
        validate_providers(&providers, &self.sso_only, |id| {
            identities.iter().find(|x| x.id == id)
        })
        .map_err(|e| e.to_string())
    }
}

impl ProviderConfig {
    fn invalid(&self, m: impl std::fmt::Display) -> String {
        format!("sso provider {:?}: {m}", self.name)
    }

    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// The core's view of this provider.
    pub fn provider(&self) -> Result<Provider, String> {
        let max_session_secs = super::parse_duration_secs(&self.max_session)
            .map_err(|m| self.invalid(format!("max_session {:?}: {m}", self.max_session)))?;
        Ok(Provider {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            rules: self
                .map
                .iter()
                .map(|m| Rule {
                    identity: m.identity.clone(),
                    subject: m.subject.clone(),
                    email: m.email.clone(),
                })
                .collect(),
            groups_claim: self.groups_claim.clone(),
            group_roles: self
                .groups
                .iter()
                .map(|g| GroupRoles {
                    group: g.group.clone(),
                    roles: g.roles.clone(),
                })
                .collect(),
            max_session_secs,
        })
    }

    /// The client secret, from its file or variable; `None` for a public client (PKCE
    /// only). A secret written inline in the configuration is not accepted: configuration
    /// files are shared and versioned, secrets are not.
    pub fn client_secret(&self) -> Result<Option<String>, String> {
        match (&self.client_secret_file, &self.client_secret_env) {
            (Some(_), Some(_)) => {
                Err(self.invalid("set client_secret_file or client_secret_env, not both"))
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    self.invalid(format!(
                        "cannot read client_secret_file {}: {e}",
                        path.display()
                    ))
                })?;
                let secret = text.lines().next().unwrap_or("").trim().to_string();
                if secret.is_empty() {
                    return Err(
                        self.invalid(format!("client_secret_file {} is empty", path.display()))
                    );
                }
                Ok(Some(secret))
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
                _ => Err(self.invalid(format!(
                    "client_secret_env names {var:?}, which is not set (or empty) in the \
                     server's environment"
                ))),
            },
            (None, None) => Ok(None),
        }
    }

    /// (fewest seconds between key fetches, oldest keys used in seconds).
    pub fn fetch_timing(&self) -> Result<(i64, i64), String> {
        let refetch = super::parse_duration_secs(&self.jwks_refetch_interval).map_err(|m| {
            self.invalid(format!(
                "jwks_refetch_interval {:?}: {m}",
                self.jwks_refetch_interval
            ))
        })?;
        let max_age = super::parse_duration_secs(&self.jwks_max_age)
            .map_err(|m| self.invalid(format!("jwks_max_age {:?}: {m}", self.jwks_max_age)))?;
        if refetch > 300 || !(refetch..=86_400).contains(&max_age) || max_age < 1 {
            return Err(self.invalid(
                "jwks_refetch_interval must be at most 5m, and jwks_max_age at least 1s and \
                 jwks_refetch_interval, at most 24h",
            ));
        }
        Ok((refetch, max_age))
    }
}

fn placeholder_person() -> Identity {
    Identity {
        id: String::new(),
        kind: IdentityKind::Human,
        name: String::new(),
        org: None,
        roles: Vec::new(),
        groups: Vec::new(),
        sites: Vec::new(),
        owners: Vec::new(),
        status: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(extra: &str) -> Result<SsoConfig, String> {
        sso_at("https://idp.plant.example", extra)
    }

    fn sso_at(issuer: &str, extra: &str) -> Result<SsoConfig, String> {
        let text = format!(
            "[[providers]]\nname = \"plant-idp\"\nissuer = \"{issuer}\"\n\
             client_id = \"jitgate\"\n\
             redirect_url = \"https://jitgate.plant.example/api/v1/auth/sso/plant-idp/callback\"\n\
             {extra}"
        );
        let cfg: SsoConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        cfg.validate().map(|()| cfg)
    }

    const MAP: &str = "[[providers.map]]\nidentity = \"alice\"\nsubject = \"sub-a\"\n";

    #[test]
    fn a_provider_needs_exclusive_rules_safe_urls_and_no_inline_secret() {
        let cfg = sso(MAP).unwrap();
        assert_eq!(
            cfg.providers[0].provider().unwrap().max_session_secs,
            8 * 3600
        );
        assert_eq!(cfg.providers[0].client_secret().unwrap(), None);
        let err = sso("").unwrap_err();
        assert!(err.contains("map at least one"), "{err}");
        let err = sso(&format!(
            "{MAP}[[providers.map]]\nidentity = \"bob\"\nemail = \"bob@plant.example\"\n"
        ))
        .unwrap_err();
        assert!(err.contains("map #1 (alice) and map #2 (bob)"), "{err}");
        let err = sso(&format!("client_secret = \"s3cret\"\n{MAP}")).unwrap_err();
        assert!(err.contains("client_secret"), "{err}");
        let err = sso(&format!(
            "client_secret_env = \"JITGATE_TEST_UNSET_VAR\"\n{MAP}"
        ))
        .unwrap_err();
        assert!(err.contains("not set"), "{err}");
        let err = sso(&format!("client_secret_file = \"/nonexistent/s\"\n{MAP}")).unwrap_err();
        assert!(err.contains("client_secret_file"), "{err}");
        let err = sso(&format!(
            "{MAP}[[providers.groups]]\ngroup = \"g\"\nroles = [\"approver\"]\n"
        ))
        .unwrap_err();
        assert!(err.contains("groups_claim"), "{err}");
        let err = sso(&format!(
            "groups_claim = \"groups\"\n{MAP}[[providers.groups]]\ngroup = \"g\"\nroles = [\"gateway\"]\n"
        ))
        .unwrap_err();
        assert!(err.contains("gateway"), "{err}");
        let err = sso_at("http://idp.plant.example", MAP).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        sso_at("http://127.0.0.1:9000", MAP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let cfg = sso(&format!(
            "client_secret_file = {:?}\n{MAP}",
            secret.display().to_string()
        ))
        .unwrap();
        assert_eq!(
            cfg.providers[0].client_secret().unwrap().as_deref(),
            Some("s3cret")
        );
    }

    #[test]
    fn rules_must_name_people_of_the_inventory_and_sso_only_must_be_mapped() {
        let inv =
            jitgate_core::Inventory::from_toml(include_str!("../../../../examples/plant.toml"))
                .unwrap();
        let mut cfg = sso(MAP).unwrap();
        cfg.check_identities(&inv.identities).unwrap();
        cfg.sso_only = vec!["alice".into()];
        cfg.check_identities(&inv.identities).unwrap();
        cfg.sso_only = vec!["bob".into()];
        let err = cfg.check_identities(&inv.identities).unwrap_err();
        assert!(err.contains("sso_only"), "{err}");
        let cfg = sso(&MAP.replace("alice", "svc-historian")).unwrap();
        let err = cfg.check_identities(&inv.identities).unwrap_err();
        assert!(err.contains("workload"), "{err}");
    }
}
