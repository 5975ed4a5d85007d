//! The gateway's own SSH connection to the asset, one per session: a fresh key, a
//! certificate of the host-access CA for it from the server (`POST
//! /gateway/ssh/target-certificate`: principal = the inventory's account, ≤ 5 minutes), the
//! asset's host key checked against its pin ([`super::keys`]), then certificate
//! authentication as the account. The user never holds a credential for the asset.
//!
//! An asset that cannot trust a CA (`endpoints.ssh.auth = "vaulted_key"`) is logged in to
//! with the key vaulted for it in the gateway's state directory instead: no certificate is
//! asked for, and the grant's teardown says `partial` (the key stands on the asset).

use super::keys::{KnownAssets, Pin};
use crate::runtime::Gateway;
use jitgate_core::inventory::SshTargetAuth;
use jitgate_core::Asset;
use russh::client;
use russh::keys::ssh_key::Certificate;
use russh::keys::PublicKeyOrCertificate;
use std::sync::{Arc, Mutex};

/// The client side of the connection to the asset (host key check only: channels carry
/// everything else).
pub struct TargetHandler {
    asset: String,
    inventory_pin: Option<String>,
    known: Arc<KnownAssets>,
    /// What the host key check found (read after the handshake).
    outcome: Arc<Mutex<Option<PinResult>>>,
}

/// The pin's verdict on the host key and the key's fingerprint, or why it could not be
/// checked.
type PinResult = Result<(Pin, String), String>;

impl client::Handler for TargetHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is pinned by the key it certifies.
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => {
                russh::keys::PublicKey::new(c.public_key().clone(), "")
            }
        };
        let fp = super::keys::fingerprint(&key);
        let result = self
            .known
            .check(&self.asset, self.inventory_pin.as_deref(), &key)
            .map(|pin| (pin, fp));
        let accept = matches!(result, Ok((Pin::Matches | Pin::FirstUse, _)));
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        Ok(accept)
    }
}

/// A connection to the asset, authenticated.
pub struct Connected {
    pub handle: client::Handle<TargetHandler>,
    /// `host:port` connected to.
    pub address: String,
    pub account: String,
    /// `SHA256:…` of the asset's host key.
    pub host_key: String,
    /// The host key was seen for the first time and is now pinned.
    pub first_use: bool,
    /// How the gateway logged in.
    pub auth: SshTargetAuth,
}

/// What the gateway logs in to the asset with.
enum Credential {
    /// A fresh key and the host-access CA's certificate for it, for this session only.
    Certificate(russh::keys::PrivateKey, Box<Certificate>),
    /// The key vaulted for the asset.
    Vaulted(russh::keys::PrivateKey),
}

/// Why the asset could not be reached for the session (refusal code, message).
pub type TargetError = (&'static str, String);

/// Connect to `asset` for a session under `grant_id`.
pub async fn connect(
    gw: &Gateway,
    known: &Arc<KnownAssets>,
    state_dir: &std::path::Path,
    config: Arc<client::Config>,
    grant_id: &str,
    asset: &Asset,
) -> Result<Connected, TargetError> {
    let Some(endpoint) = asset.endpoints.ssh.as_ref() else {
        return Err((
            "asset_not_ssh",
            format!("asset {} has no SSH endpoint in the inventory", asset.id),
        ));
    };
    let Some(account) = endpoint.account.clone() else {
        return Err((
            "asset_no_account",
            format!(
                "asset {} has no SSH `account` in the inventory: the gateway has no account to log in as",
                asset.id
            ),
        ));
    };
    let credential = match endpoint.auth {
        SshTargetAuth::Certificate => target_certificate(gw, grant_id, asset).await?,
        SshTargetAuth::VaultedKey => match super::keys::load_vault_key(state_dir, &asset.id) {
            Ok(Some(key)) => Credential::Vaulted(key),
            Ok(None) => {
                return Err((
                    "vault_key_missing",
                    format!(
                        "asset {} is logged in to with a vaulted key (auth = \"vaulted_key\"), but this gateway holds none: run `jitgate gateway --config <gateway.toml> vault-key {}` and add the line it prints to {account}'s authorized_keys on the asset",
                        asset.id, asset.id
                    ),
                ))
            }
            Err(e) => return Err(("internal", format!("reading the vaulted key: {e}"))),
        },
    };
    let address = endpoint.host.clone();
    let unreachable = |why: String| {
        (
            "device_unreachable",
            format!("the gateway cannot reach {} at {address}: {why}", asset.id),
        )
    };
    let tcp = tokio::time::timeout(
        gw.device_timeout,
        tokio::net::TcpStream::connect(address.as_str()),
    )
    .await
    .map_err(|_| unreachable("timed out".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let outcome = Arc::new(Mutex::new(None));
    let handler = TargetHandler {
        asset: asset.id.clone(),
        inventory_pin: endpoint.host_key.clone(),
        known: Arc::clone(known),
        outcome: Arc::clone(&outcome),
    };
    let connected = tokio::time::timeout(
        gw.device_timeout,
        client::connect_stream(config, tcp, handler),
    )
    .await
    .map_err(|_| unreachable("no SSH handshake in time".into()))?;
    let seen = outcome.lock().unwrap_or_else(|p| p.into_inner()).take();
    let (pin, host_key) = match seen {
        Some(Ok((Pin::Mismatch { expected }, fp))) => {
            return Err((
                "host_key_mismatch",
                format!(
                    "asset {} presented host key {fp}, but the gateway pins {expected}: the asset was replaced or someone is in the middle; the session is refused (fix the inventory's host_key, or remove the asset's line from {} after checking)",
                    asset.id,
                    super::keys::KNOWN_ASSETS_FILE
                ),
            ))
        }
        Some(Ok(ok)) => ok,
        Some(Err(e)) => return Err(("internal", format!("pinning {}'s host key: {e}", asset.id))),
        None => {
            return Err(unreachable(match connected {
                Err(e) => e.to_string(),
                Ok(_) => "no host key".into(),
            }))
        }
    };
    let mut handle = connected.map_err(|e| unreachable(e.to_string()))?;
    let auth_kind = endpoint.auth;
    let login = async {
        match credential {
            Credential::Certificate(key, cert) => {
                handle
                    .authenticate_openssh_cert(account.clone(), Arc::new(key), *cert)
                    .await
            }
            Credential::Vaulted(key) => {
                let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None);
                handle.authenticate_publickey(account.clone(), key).await
            }
        }
    };
    let auth = tokio::time::timeout(gw.device_timeout, login)
        .await
        .map_err(|_| unreachable("authentication timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    if !auth.success() {
        let hint = match auth_kind {
            SshTargetAuth::Certificate => format!(
                "it must trust jitgate's host-access CA (TrustedUserCAKeys) and accept principal {account}"
            ),
            SshTargetAuth::VaultedKey => format!(
                "{account}'s authorized_keys must hold the gateway's vaulted key (`jitgate gateway vault-key {}` prints it)",
                asset.id
            ),
        };
        return Err((
            "target_auth_failed",
            format!(
                "asset {} refused the gateway's login as {account}: {hint} (docs/inventory.md, \"SSH endpoints\")",
                asset.id
            ),
        ));
    }
    Ok(Connected {
        handle,
        address,
        account,
        host_key,
        first_use: pin == Pin::FirstUse,
        auth: auth_kind,
    })
}

/// A fresh key and the certificate the server issues for it, for this session only.
async fn target_certificate(
    gw: &Gateway,
    grant_id: &str,
    asset: &Asset,
) -> Result<Credential, TargetError> {
    let key = super::keys::new_ed25519();
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| ("internal", format!("encoding the session key: {e}")))?;
    let line = gw
        .api
        .ssh_target_certificate(grant_id, &asset.id, &public)
        .await
        .map_err(|e| match e {
            crate::server_api::ApiError::Refused { status, body } => (
                "target_certificate_refused",
                format!("the server issued no certificate for {} ({status}: {body})", asset.id),
            ),
            other => (
                "server_unreachable",
                format!(
                    "the gateway cannot obtain a certificate for {} from the server ({other}); SSH sessions need the server",
                    asset.id
                ),
            ),
        })?;
    let cert = Certificate::from_openssh(line.trim()).map_err(|e| {
        (
            "target_certificate_refused",
            format!("the server's certificate does not parse: {e}"),
        )
    })?;
    Ok(Credential::Certificate(key, Box::new(cert)))
}
