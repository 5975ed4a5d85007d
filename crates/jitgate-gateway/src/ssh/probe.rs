//! The teardown's SSH probe, the client side (used by the server): present a fresh user
//! certificate for an ended grant to a gateway's SSH listener and report how it was
//! refused. The server signs the certificate ([`probe_key`] gives it the key to certify);
//! this connects, authenticates, asks to run `true`, and reads the answer.
//!
//! A gateway refuses a certificate of an ended grant after the SSH authentication step,
//! with `jitgate: <code>: <reason>` on the first channel's stderr (see
//! [`super::server`]): the probe reads that code. A rejection at the authentication step
//! itself carries no code ([`ProbeOutcome::AuthRejected`]).

use russh::client;
use russh::keys::ssh_key::{Certificate, PrivateKey};
use russh::keys::PublicKeyOrCertificate;
use russh::ChannelMsg;
use std::sync::Arc;
use std::time::Duration;

/// What the gateway did with the probe's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Refused with a code (`grant_revoked`, `grant_not_active`, …) and its reason.
    Refused { code: String, message: String },
    /// Refused at the authentication step (no reason given).
    AuthRejected,
    /// A session opened: the command ran (exit status).
    Accepted { exit_status: Option<u32> },
    /// The gateway never judged the certificate: the connection or the SSH handshake
    /// failed (the listener down, restarting, or closing connections at its per-address
    /// limit before the handshake), or no answer came within the timeout.
    NotReached { reason: String },
}

/// The probe's key pair: the private half stays here, the server certifies the public one.
pub struct ProbeKey {
    key: PrivateKey,
    /// OpenSSH public key line.
    pub public_key: String,
}

pub fn probe_key() -> Result<ProbeKey, String> {
    let key = super::keys::new_ed25519();
    let public_key = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("encoding the probe key: {e}"))?;
    Ok(ProbeKey { key, public_key })
}

struct ProbeHandler {
    /// The gateway's announced SSH host key (OpenSSH line): only it is accepted.
    host_key: Option<String>,
}

impl client::Handler for ProbeHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            return Ok(false);
        };
        Ok(match &self.host_key {
            Some(line) => russh::keys::PublicKey::from_openssh(line.trim())
                .is_ok_and(|pinned| pinned.key_data() == key.key_data()),
            // A gateway that announced no key: nothing to pin (the probe sends nothing
            // secret; a wrong peer can only make the check fail).
            None => true,
        })
    }
}

/// Probe `address` (`host:port`) as `asset` with `certificate` (an OpenSSH line issued for
/// `key`), within `timeout`.
pub async fn probe(
    address: &str,
    host_key: Option<&str>,
    asset: &str,
    key: ProbeKey,
    certificate: &str,
    timeout: Duration,
) -> Result<ProbeOutcome, String> {
    let cert = Certificate::from_openssh(certificate.trim())
        .map_err(|e| format!("the probe certificate does not parse: {e}"))?;
    let work = async {
        let config = Arc::new(client::Config::default());
        let handler = ProbeHandler {
            host_key: host_key.map(str::to_string),
        };
        let mut handle = match client::connect(config, address, handler).await {
            Ok(h) => h,
            Err(e) => {
                return Ok(ProbeOutcome::NotReached {
                    reason: format!("cannot connect to {address}: {e}"),
                })
            }
        };
        let auth = handle
            .authenticate_openssh_cert(asset, Arc::new(key.key), cert)
            .await
            .map_err(|e| format!("authentication: {e}"))?;
        if !auth.success() {
            return Ok(ProbeOutcome::AuthRejected);
        }
        let mut channel = match handle.channel_open_session().await {
            Ok(c) => c,
            // No session channel after authenticating: refused, but without a reason.
            Err(_) => return Ok(ProbeOutcome::AuthRejected),
        };
        channel
            .exec(true, "true")
            .await
            .map_err(|e| format!("exec: {e}"))?;
        let mut stderr = Vec::new();
        let mut exit_status = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::ExtendedData { data, .. } => {
                    stderr.extend_from_slice(&data);
                    if stderr.len() > 4096 {
                        break;
                    }
                }
                ChannelMsg::ExitStatus { exit_status: s } => exit_status = Some(s),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "probe done", "en")
            .await;
        let text = String::from_utf8_lossy(&stderr);
        Ok(match parse_refusal(&text) {
            Some((code, message)) => ProbeOutcome::Refused { code, message },
            None => ProbeOutcome::Accepted { exit_status },
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => Ok(ProbeOutcome::NotReached {
            reason: format!(
                "no answer from {address} within {}",
                humantime::format_duration(timeout)
            ),
        }),
    }
}

/// `jitgate: <code>: <reason>` (the first such line) → (code, reason). A refusal of a
/// channel request (`jitgate: refused: …`) is not a refusal of the credential.
pub fn parse_refusal(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("jitgate: ")?;
        let (code, reason) = rest.split_once(": ")?;
        let is_code = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        (is_code && code != "refused").then(|| (code.to_string(), reason.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_lines() {
        assert_eq!(
            parse_refusal("jitgate: grant_revoked: grant g-1 has ended (revoked)\r\n"),
            Some((
                "grant_revoked".into(),
                "grant g-1 has ended (revoked)".into()
            ))
        );
        assert_eq!(
            parse_refusal("jitgate: refused: the scope names no command"),
            None
        );
        assert_eq!(parse_refusal("hello\njitgate: Grant: x"), None);
        assert_eq!(parse_refusal(""), None);
    }
}
