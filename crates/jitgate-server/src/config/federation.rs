//! `[[federation.issuers]]`: the platforms whose JWTs workloads may exchange for a session
//! (docs/federation.md). What a trust must say is `jitgate_core::federation::validate_trust`
//! (checked against the inventory at start and by `jitgate check`); the parts only the
//! server knows are checked here: URLs (plain HTTP only on loopback), durations, the CA file.

use jitgate_core::federation::{
    validate_trust, Binding, ClaimPattern, Trust, DEFAULT_MAX_SESSION_SECS,
};
use jitgate_core::Identity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[federation]` in the server configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
}

/// One `[[federation.issuers]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Shown in events and errors.
    pub name: String,
    /// Must equal the tokens' `iss` exactly.
    pub issuer: String,
    /// Where the issuer publishes its keys; default: discovered from
    /// `<issuer>/.well-known/openid-configuration` (`jwks_uri`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The tokens' `aud` must contain it.
    pub audience: String,
    /// PEM trust anchor(s) for fetching the keys, in addition to the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Longest session an exchange gives (default 15m; the token's own expiry may end it
    /// sooner).
    #[serde(default = "default_max_session")]
    pub max_session: String,
    /// Fewest seconds between two fetches of the keys (a token with an unknown `kid` makes
    /// one), default 10s.
    #[serde(default = "default_refetch")]
    pub jwks_refetch_interval: String,
    /// Keys older than this are fetched again before use (keys the issuer removed stop
    /// verifying by then at the latest), default 5m.
    #[serde(default = "default_max_age")]
    pub jwks_max_age: String,
    /// `[[federation.issuers.bind]]`: claims → workload identity; bindings to different identities must be exclusive (checked at start).
    #[serde(default)]
    pub bind: Vec<BindConfig>,
}

/// One `[[federation.issuers.bind]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindConfig {
    /// A workload identity of the inventory.
    pub identity: String,
    /// Claim (or JSON pointer `/a/b` into nested claims) → the value it must have; a
    /// trailing `*` matches a prefix.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

fn default_max_session() -> String {
    humantime::format_duration(std::time::Duration::from_secs(
        DEFAULT_MAX_SESSION_SECS as u64,
    ))
    .to_string()
}
fn default_refetch() -> String {
    "10s".into()
}
fn default_max_age() -> String {
    "5m".into()
}

impl FederationConfig {
    /// Everything but the bindings' identities (which need the inventory:
    /// [`FederationConfig::check_identities`]).
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        let mut issuers = std::collections::HashSet::new();
        for i in &self.issuers {
            i.trust()?;
            i.fetch_timing()?;
            i.key_url_rule()?;
            if let Some(ca) = &i.ca_file {
                std::fs::read(ca).map_err(|e| {
                    format!(
                        "federation issuer {:?}: cannot read ca_file {}: {e}",
                        i.name,
                        ca.display()
                    )
                })?;
            }
            if !names.insert(i.name.as_str()) {
                return Err(format!(
                    "federation issuer name {:?} is used twice; give each trust its own name",
                    i.name
                ));
            }
            if !issuers.insert(i.issuer.as_str()) {
                return Err(format!(
                    "federation issuer {:?} is trusted twice; put all its bindings in one \
                     [[federation.issuers]]",
                    i.issuer
                ));
            }
        }
        Ok(())
    }

    /// Every binding names a workload of `identities` (the inventory).
    pub fn check_identities(&self, identities: &[Identity]) -> Result<(), String> {
        for i in &self.issuers {
            let trust = i.trust()?;
            validate_trust(&trust, |id| identities.iter().find(|x| x.id == id))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl IssuerConfig {
    fn invalid(&self, m: impl std::fmt::Display) -> String {
        format!("federation issuer {:?}: {m}", self.name)
    }

    /// The core's view of this trust (claim patterns parsed). The identities are checked
    /// against the inventory by [`FederationConfig::check_identities`].
    pub fn trust(&self) -> Result<Trust, String> {
        let max_session_secs = super::parse_duration_secs(&self.max_session)
            .map_err(|m| self.invalid(format!("max_session {:?}: {m}", self.max_session)))?;
        let mut bindings = Vec::new();
        for (n, b) in self.bind.iter().enumerate() {
            let mut claims = BTreeMap::new();
            for (name, pattern) in &b.claims {
                let p = ClaimPattern::parse(pattern)
                    .map_err(|m| self.invalid(format!("bind #{} claim {name:?}: {m}", n + 1)))?;
                claims.insert(name.clone(), p);
            }
            bindings.push(Binding {
                identity: b.identity.clone(),
                claims,
            });
        }
        let trust = Trust {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            max_session_secs,
            bindings,
        };
        // Everything that does not need the inventory: every identity "exists" here.
        let any = placeholder_workload();
        validate_trust(&trust, |_| Some(&any)).map_err(|e| e.to_string())?;
        Ok(trust)
    }

    /// (fewest seconds between fetches, oldest keys used in seconds).
    pub fn fetch_timing(&self) -> Result<(i64, i64), String> {
        let refetch = super::parse_duration_secs(&self.jwks_refetch_interval).map_err(|m| {
            self.invalid(format!(
                "jwks_refetch_interval {:?}: {m}",
                self.jwks_refetch_interval
            ))
        })?;
        let max_age = super::parse_duration_secs(&self.jwks_max_age)
            .map_err(|m| self.invalid(format!("jwks_max_age {:?}: {m}", self.jwks_max_age)))?;
        if refetch > 300 {
            return Err(self.invalid(
                "jwks_refetch_interval is above 5m: a rotated key would be refused that long",
            ));
        }
        if !(refetch..=86_400).contains(&max_age) || max_age < 1 {
            return Err(self.invalid(
                "jwks_max_age must be at least 1s and jwks_refetch_interval, at most 24h",
            ));
        }
        Ok((refetch, max_age))
    }

    /// The keys' URL (or the issuer, for discovery) must be HTTPS, or plain HTTP on loopback.
    fn key_url_rule(&self) -> Result<(), String> {
        let (what, url) = match &self.jwks_url {
            Some(u) => ("jwks_url", u.as_str()),
            None => (
                "issuer (used for discovery, as no jwks_url is set)",
                self.issuer.as_str(),
            ),
        };
        fetch_url_allowed(url).map_err(|m| self.invalid(format!("{what}: {m}")))
    }
}

fn placeholder_workload() -> Identity {
    Identity {
        id: String::new(),
        kind: jitgate_core::IdentityKind::Workload,
        name: String::new(),
        org: None,
        roles: Vec::new(),
        groups: Vec::new(),
        sites: Vec::new(),
        owners: Vec::new(),
        status: Default::default(),
    }
}

/// Keys are fetched over HTTPS; plain HTTP only from a loopback address (a test issuer, a
/// local proxy): anyone on the path of a plain fetch could substitute keys and sign tokens.
pub fn fetch_url_allowed(url: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    match u.scheme() {
        "https" if u.host().is_some() => Ok(()),
        "http" => {
            let host = u.host_str().unwrap_or_default();
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url:?} is plain http off loopback: keys fetched that way could be \
                     substituted by anyone on the path; use https:// (plain http is accepted \
                     only on 127.0.0.1, ::1 or localhost)"
                ))
            }
        }
        _ => Err(format!("{url:?} must be an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(extra: &str) -> Result<FederationConfig, String> {
        let text = format!(
            "[[issuers]]\nname = \"gitlab-ci\"\nissuer = \"https://gitlab.example.com\"\n\
             audience = \"https://jitgate.plant.example\"\n{extra}"
        );
        let cfg: FederationConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        cfg.validate().map(|()| cfg)
    }

    const BIND: &str = "[[issuers.bind]]\nidentity = \"svc-historian\"\n\
                        claims = { project_path = \"plant/plc-configs\", ref = \"main\" }\n";

    #[test]
    fn a_trust_needs_bound_claims_and_safe_urls() {
        let cfg = issuer(BIND).unwrap();
        let t = cfg.issuers[0].trust().unwrap();
        assert_eq!(t.max_session_secs, 900);
        assert_eq!(cfg.issuers[0].fetch_timing().unwrap(), (10, 300));

        let err = issuer("[[issuers.bind]]\nidentity = \"svc-historian\"\n").unwrap_err();
        assert!(err.contains("every token"), "{err}");
        let err = issuer("").unwrap_err();
        assert!(err.contains("at least one binding"), "{err}");
        let err = issuer(&format!("jwks_url = \"http://keys.example/jwks\"\n{BIND}")).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        issuer(&format!("jwks_url = \"http://127.0.0.1:9/jwks\"\n{BIND}")).unwrap();
        issuer(&format!("jwks_url = \"http://localhost:9/jwks\"\n{BIND}")).unwrap();
        let err = issuer(&format!("max_session = \"2d\"\n{BIND}")).unwrap_err();
        assert!(err.contains("max_session"), "{err}");
        let err = issuer(&format!("jwks_url = \"ftp://x/\"\n{BIND}")).unwrap_err();
        assert!(err.contains("https://"), "{err}");
        let err = issuer(&format!("ca_file = \"/nonexistent/ca.pem\"\n{BIND}")).unwrap_err();
        assert!(err.contains("ca_file"), "{err}");
        let err = issuer(&format!("bogus = 1\n{BIND}")).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err =
            issuer("[[issuers.bind]]\nidentity = \"svc-historian\"\nclaims = { sub = \"*\" }\n")
                .unwrap_err();
        assert!(err.contains("binds nothing"), "{err}");
    }

    #[test]
    fn bindings_must_name_workloads_of_the_inventory() {
        let cfg = issuer(BIND).unwrap();
        let inv =
            jitgate_core::Inventory::from_toml(include_str!("../../../../examples/plant.toml"))
                .unwrap();
        cfg.check_identities(&inv.identities).unwrap();
        let cfg = issuer(&BIND.replace("svc-historian", "alice")).unwrap();
        let err = cfg.check_identities(&inv.identities).unwrap_err();
        assert!(err.contains("not a workload"), "{err}");
        let cfg = issuer(&BIND.replace("svc-historian", "wl-gone")).unwrap();
        let err = cfg.check_identities(&inv.identities).unwrap_err();
        assert!(err.contains("not in the inventory"), "{err}");
    }
}
