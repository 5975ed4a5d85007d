//! The grant token's payload and the rules that make it self-consistent.
//!
//! The same rules run when the server issues a token and when a gateway verifies one, so the
//! server can never hand out a token a gateway would refuse for its shape, and a gateway never
//! trusts a scope item that points outside the endpoints the token names.
//!
//! Registered PASETO claim names (`jti`, `sub`, `aud`, `iat`, `nbf`, `exp`) are used where a
//! claim means the same thing, so any PASETO tool can read the token.

use crate::{b64, CredentialError, Timestamp};
use chrono::Duration;
use jitgate_core::inventory::Asset;
use jitgate_core::lifecycle::{Grant, GrantState};
use jitgate_core::scope::{Protocol, ScopeItem};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Ids, subjects and gateway names longer than this are not ours; refusing them keeps claim
/// checks and log lines bounded.
const MAX_ID_LEN: usize = 256;

/// Claims of a grant token, serialized as the PASETO payload (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantClaims {
    /// Random, unique per token.
    #[serde(rename = "jti")]
    pub token_id: String,
    pub grant_id: String,
    /// The identity who may use the token.
    #[serde(rename = "sub")]
    pub subject: String,
    /// The gateway id the token is for.
    #[serde(rename = "aud")]
    pub audience: String,
    /// The endpoints of the grant's assets behind that gateway.
    pub assets: Vec<AssetClaim>,
    /// `sha256:<hex>` of the grant's whole canonical scope (what the approvers approved); the
    /// token may carry only part of that scope, the part behind this gateway.
    pub scope_digest: String,
    /// The grant's scope items on `assets`; the gateway compiles its allow-list from these.
    pub scope: Vec<ScopeItem>,
    #[serde(rename = "iat")]
    pub issued_at: Timestamp,
    #[serde(rename = "nbf")]
    pub not_before: Timestamp,
    #[serde(rename = "exp")]
    pub expires_at: Timestamp,
    /// Confirmation key: the client's Ed25519 public key, base64url (32 bytes).
    pub cnf: String,
}

/// One endpoint of an asset, as the gateway must reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetClaim {
    pub asset: String,
    /// `modbus`, `dnp3` or `ssh` (as in the scope language).
    pub protocol: String,
    /// `host:port` of the device as seen from the gateway.
    pub address: String,
    /// Modbus unit ids served at that address; empty for other protocols.
    #[serde(default)]
    pub unit_ids: Vec<u8>,
}

impl AssetClaim {
    /// The endpoint of `asset` for `protocol` from the inventory, if the asset exposes it.
    pub fn from_asset(asset: &Asset, protocol: Protocol) -> Option<AssetClaim> {
        let (address, unit_ids) = match protocol {
            Protocol::Modbus => {
                let ep = asset.endpoints.modbus.as_ref()?;
                (ep.address.clone(), ep.unit_ids.clone())
            }
            Protocol::Dnp3 => (asset.endpoints.dnp3.as_ref()?.address.clone(), Vec::new()),
            Protocol::Ssh => (asset.endpoints.ssh.as_ref()?.host.clone(), Vec::new()),
        };
        Some(AssetClaim {
            asset: asset.id.clone(),
            protocol: protocol.as_str().to_string(),
            address,
            unit_ids,
        })
    }
}

impl GrantClaims {
    /// Claims for a token on `grant` at gateway `audience`, bound to client key `cnf`.
    ///
    /// `endpoints` are the endpoints behind that gateway (e.g. from [`AssetClaim::from_asset`]);
    /// the token carries the grant's scope items on those endpoints and only the endpoints
    /// that scope uses. The token lives at most `max_lifetime` and never past the grant's
    /// `expires_at`. Fails when the grant is not active now or has no scope behind the gateway.
    pub fn for_grant(
        grant: &Grant,
        audience: &str,
        endpoints: &[AssetClaim],
        cnf: &str,
        now: Timestamp,
        max_lifetime: Duration,
    ) -> Result<GrantClaims, CredentialError> {
        if grant.state != GrantState::Active {
            return Err(CredentialError::GrantNotUsable(format!(
                "grant {} is {}; tokens are issued only for active grants",
                grant.id,
                grant.state.as_str()
            )));
        }
        if now < grant.not_before {
            return Err(CredentialError::GrantNotUsable(format!(
                "grant {} starts at {}; ask again then",
                grant.id, grant.not_before
            )));
        }
        if now >= grant.expires_at {
            return Err(CredentialError::GrantNotUsable(format!(
                "grant {} expired at {}",
                grant.id, grant.expires_at
            )));
        }
        if max_lifetime <= Duration::zero() {
            return Err(CredentialError::GrantNotUsable(
                "the configured maximum token lifetime must be positive".into(),
            ));
        }
        let scope: Vec<ScopeItem> = grant
            .scope
            .items()
            .iter()
            .filter(|item| {
                endpoints
                    .iter()
                    .any(|e| e.asset == item.asset() && e.protocol == item.protocol().as_str())
            })
            .cloned()
            .collect();
        if scope.is_empty() {
            return Err(CredentialError::GrantNotUsable(format!(
                "grant {} has no scope on the assets behind gateway {audience}; connect through the gateway that fronts the granted assets",
                grant.id
            )));
        }
        let assets: Vec<AssetClaim> = endpoints
            .iter()
            .filter(|e| {
                scope
                    .iter()
                    .any(|i| i.asset() == e.asset && i.protocol().as_str() == e.protocol)
            })
            .cloned()
            .collect();
        let claims = GrantClaims {
            token_id: new_token_id()?,
            grant_id: grant.id.clone(),
            subject: grant.subject.clone(),
            audience: audience.to_string(),
            assets,
            scope_digest: grant.scope_digest.clone(),
            scope,
            issued_at: now,
            not_before: now,
            expires_at: grant.expires_at.min(now + max_lifetime),
            cnf: cnf.to_string(),
        };
        claims.check_consistent()?;
        Ok(claims)
    }

    /// The confirmation key as raw bytes, if it is a usable Ed25519 public key.
    pub(crate) fn cnf_key(&self) -> Result<ed25519_compact::PublicKey, CredentialError> {
        let bytes = b64::decode_exact::<32>(&self.cnf).ok_or_else(|| {
            CredentialError::BadClaims(
                "cnf is not a base64url Ed25519 public key (32 bytes)".into(),
            )
        })?;
        let key = ed25519_compact::PublicKey::new(bytes);
        key.validate().map_err(|_| {
            CredentialError::BadClaims("cnf is not a valid Ed25519 public key".into())
        })?;
        Ok(key)
    }

    /// Shape rules that do not depend on the clock or the verifier: ids present and bounded,
    /// times ordered, digest well-formed, confirmation key usable, and every scope item on an
    /// endpoint the token names (and every endpoint used by some item).
    pub fn check_consistent(&self) -> Result<(), CredentialError> {
        for (name, value) in [
            ("jti", &self.token_id),
            ("grant_id", &self.grant_id),
            ("sub", &self.subject),
            ("aud", &self.audience),
        ] {
            if value.is_empty() || value.len() > MAX_ID_LEN {
                return Err(bad(format!(
                    "{name} must be 1-{MAX_ID_LEN} bytes, got {}",
                    value.len()
                )));
            }
        }
        if self.expires_at <= self.not_before {
            return Err(bad("exp must be after nbf".into()));
        }
        if self.issued_at > self.expires_at {
            return Err(bad("iat must not be after exp".into()));
        }
        match self.scope_digest.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {}
            _ => {
                return Err(bad(
                    "scope_digest must be `sha256:` and 64 lowercase hex digits".into(),
                ))
            }
        }
        self.cnf_key()?;
        self.check_scope_matches_assets()
    }

    fn check_scope_matches_assets(&self) -> Result<(), CredentialError> {
        if self.assets.is_empty() || self.scope.is_empty() {
            return Err(bad(
                "a token must name at least one asset and one scope item".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for a in &self.assets {
            if a.asset.is_empty() || a.asset.len() > MAX_ID_LEN || a.address.is_empty() {
                return Err(bad(format!(
                    "asset endpoint {:?} needs an asset id and an address",
                    a.asset
                )));
            }
            if !["modbus", "dnp3", "ssh"].contains(&a.protocol.as_str()) {
                return Err(bad(format!(
                    "asset {} has unknown protocol {:?}",
                    a.asset, a.protocol
                )));
            }
            if !seen.insert((a.asset.as_str(), a.protocol.as_str())) {
                return Err(bad(format!(
                    "asset {} {} is listed twice",
                    a.asset, a.protocol
                )));
            }
        }
        let mut used = BTreeSet::new();
        for item in &self.scope {
            let protocol = item.protocol().as_str();
            let endpoint = self
                .assets
                .iter()
                .find(|a| a.asset == item.asset() && a.protocol == protocol)
                .ok_or_else(|| {
                    bad(format!(
                        "scope item `{item}` is on {} {protocol}, which the token's assets do not include",
                        item.asset()
                    ))
                })?;
            if let ScopeItem::Modbus { unit, .. } = item {
                if !endpoint.unit_ids.contains(unit) {
                    return Err(bad(format!(
                        "scope item `{item}` names unit {unit}, which {} does not serve",
                        endpoint.asset
                    )));
                }
            }
            used.insert((endpoint.asset.as_str(), protocol));
        }
        if used.len() != self.assets.len() {
            return Err(bad(
                "the token names an asset endpoint that none of its scope items use".into(),
            ));
        }
        Ok(())
    }
}

fn bad(reason: String) -> CredentialError {
    CredentialError::BadClaims(reason)
}

/// 128 random bits: unique per token without coordination between server nodes.
fn new_token_id() -> Result<String, CredentialError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| CredentialError::Crypto(format!("operating system RNG failed: {e}")))?;
    Ok(format!("tok-{}", b64::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_core::scope::{ModbusOp, ModbusTable};

    fn item(asset: &str, unit: u8) -> ScopeItem {
        ScopeItem::Modbus {
            asset: asset.into(),
            unit,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Holding),
            start: 0,
            end: 9,
        }
    }

    fn claims() -> GrantClaims {
        let now = chrono::Utc::now();
        GrantClaims {
            token_id: "tok-1".into(),
            grant_id: "grt-1".into(),
            subject: "alice".into(),
            audience: "gw-1".into(),
            assets: vec![AssetClaim {
                asset: "plc-7".into(),
                protocol: "modbus".into(),
                address: "127.0.0.1:502".into(),
                unit_ids: vec![1],
            }],
            scope_digest: format!("sha256:{}", "a".repeat(64)),
            scope: vec![item("plc-7", 1)],
            issued_at: now,
            not_before: now,
            expires_at: now + Duration::minutes(5),
            cnf: crate::ClientKey::generate().public_b64(),
        }
    }

    #[test]
    fn consistent_claims_pass() {
        claims().check_consistent().unwrap();
    }

    #[test]
    fn registered_claim_names_are_used() {
        let json = serde_json::to_value(claims()).unwrap();
        for key in ["jti", "sub", "aud", "iat", "nbf", "exp", "cnf"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
    }

    #[test]
    fn scope_outside_assets_is_refused() {
        let mut c = claims();
        c.scope.push(item("plc-8", 1));
        let err = c.check_consistent().unwrap_err();
        assert_eq!(err.code(), "bad_claims");
        assert!(err.to_string().contains("plc-8"), "{err}");

        let mut c = claims();
        c.scope = vec![item("plc-7", 2)];
        assert!(c
            .check_consistent()
            .unwrap_err()
            .to_string()
            .contains("unit 2"));

        let mut c = claims();
        c.assets.push(AssetClaim {
            asset: "plc-9".into(),
            protocol: "modbus".into(),
            address: "10.0.0.9:502".into(),
            unit_ids: vec![1],
        });
        assert!(c
            .check_consistent()
            .unwrap_err()
            .to_string()
            .contains("none of its scope items"));
    }

    #[test]
    fn bad_shapes_are_refused() {
        let mut c = claims();
        c.expires_at = c.not_before;
        assert_eq!(c.check_consistent().unwrap_err().code(), "bad_claims");
        let mut c = claims();
        c.scope_digest = "sha256:XYZ".into();
        assert_eq!(c.check_consistent().unwrap_err().code(), "bad_claims");
        let mut c = claims();
        c.cnf = "AAAA".into();
        assert_eq!(c.check_consistent().unwrap_err().code(), "bad_claims");
        let mut c = claims();
        // The identity point has small order: a key no one holds a secret for.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        c.cnf = b64::encode(identity);
        assert_eq!(c.check_consistent().unwrap_err().code(), "bad_claims");
        let mut c = claims();
        c.subject = String::new();
        assert_eq!(c.check_consistent().unwrap_err().code(), "bad_claims");
    }
}
