//! `[passkeys]`: the WebAuthn relying party people's passkeys are bound to (see
//! `crate::passkeys` and docs/passkeys.md).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use webauthn_rs::prelude::Url;

/// `[passkeys]` in the server configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeysConfig {
    /// The relying-party id: the host name people reach the console at (passkeys are bound
    /// to it and cannot be moved to another). Default: the origin's host, `localhost` when
    /// no origin is set.
    #[serde(default)]
    pub rp_id: Option<String>,
    /// The console's origin as the browser sees it, e.g. `https://jitgate.plant.example`.
    /// Default: `http://localhost:<port>` (`https://` with `[tls]`), the port the server
    /// listens on.
    #[serde(default)]
    pub origin: Option<String>,
    /// How long a ceremony's challenge may be answered, e.g. `2m` (10s..10m).
    #[serde(default)]
    pub challenge_ttl: Option<String>,
}

/// The relying party as configured (or defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub rp_id: String,
    pub origin: Url,
    pub challenge_ttl_secs: i64,
}

impl PasskeysConfig {
    /// The relying party for a server listening on `listen` (with or without TLS).
    pub fn relying_party(&self, listen: SocketAddr, tls: bool) -> Result<RelyingParty, String> {
        let origin_text = match &self.origin {
            Some(o) => o.clone(),
            None => format!(
                "{}://localhost:{}",
                if tls { "https" } else { "http" },
                listen.port()
            ),
        };
        let origin = Url::parse(&origin_text)
            .map_err(|e| format!("[passkeys] origin {origin_text:?} is not a URL: {e}"))?;
        if origin.path() != "/" || origin.query().is_some() || origin.fragment().is_some() {
            return Err(format!(
                "[passkeys] origin {origin_text:?} must be scheme://host[:port] only, without a path"
            ));
        }
        let host = origin.host_str().unwrap_or_default().to_string();
        let rp_id = self.rp_id.clone().unwrap_or(host);
        let challenge_ttl_secs = match &self.challenge_ttl {
            Some(t) => super::parse_duration_secs(t)
                .map_err(|m| format!("[passkeys] challenge_ttl {t:?}: {m}"))?,
            None => jitgate_core::passkey::DEFAULT_CHALLENGE_TTL_SECS,
        };
        if !(10..=600).contains(&challenge_ttl_secs) {
            return Err(format!(
                "[passkeys] challenge_ttl {challenge_ttl_secs}s is outside 10s..10m"
            ));
        }
        // The library refuses an rp id that is not the origin's host or a suffix of it.
        webauthn_rs::WebauthnBuilder::new(&rp_id, &origin).map_err(|e| {
            format!(
                "[passkeys] rp_id {rp_id:?} does not fit origin {origin_text:?} ({e}): the rp id \
                 must be the origin's host name or a parent domain of it"
            )
        })?;
        Ok(RelyingParty {
            rp_id,
            origin,
            challenge_ttl_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_listen_port_and_tls() {
        let listen: SocketAddr = "127.0.0.1:8080"
            .parse()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        let rp = PasskeysConfig::default()
            .relying_party(listen, false)
            .map_err(|e| e.to_string());
        assert_eq!(
            rp.as_ref().map(|r| (r.rp_id.as_str(), r.origin.as_str())),
            Ok(("localhost", "http://localhost:8080/"))
        );
        let tls = PasskeysConfig::default().relying_party(listen, true);
        assert_eq!(
            tls.map(|r| r.origin.to_string()),
            Ok("https://localhost:8080/".to_string())
        );
    }

    #[test]
    fn a_mismatched_rp_id_or_an_origin_with_a_path_is_refused() {
        let listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let bad = PasskeysConfig {
            rp_id: Some("other.example".into()),
            origin: Some("https://jitgate.plant.example".into()),
            challenge_ttl: None,
        };
        assert!(bad.relying_party(listen, true).is_err());
        let path = PasskeysConfig {
            origin: Some("https://jitgate.plant.example/console".into()),
            ..PasskeysConfig::default()
        };
        assert!(path.relying_party(listen, true).is_err());
        let parent = PasskeysConfig {
            rp_id: Some("plant.example".into()),
            origin: Some("https://jitgate.plant.example".into()),
            challenge_ttl: Some("1m".into()),
        };
        assert_eq!(
            parent
                .relying_party(listen, true)
                .map(|r| r.challenge_ttl_secs),
            Ok(60)
        );
    }
}
