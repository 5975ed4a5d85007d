//! The gateway's SSH server (docs/gateway.md, "SSH"): an unmodified OpenSSH client logs in
//! as `<asset>@gateway` with the user certificate jitgate issued for its grant; the gateway
//! checks it, opens its own SSH connection to the asset with a certificate issued for that
//! session, and relays only the channel requests the grant's scope names.
//!
//! It uses the shared session machinery as a library ([`crate::live`]): admission, its own
//! credential check, the online grant check, `open_session`, and a cut that closes the
//! connection with a message to the user.
//!
//! - [`allow`] — the allow-list compiled once per session from the scope, and the decision
//!   per channel request (pure; unit- and property-tested);
//! - [`cert`] — the user certificate's checks (pure);
//! - [`keys`] — the gateway's host key, the pins of the assets' host keys, vaulted keys;
//! - [`target`] — the connection to the asset (target certificate, host key pin);
//! - [`server`] — the russh server: authentication, channels, relay, cut;
//! - [`record`] — the hook a session recorder plugs into;
//! - [`sftp`] — following an `sftp` channel to log its transfers (pure);
//! - [`probe`] — the teardown's SSH probe, the client side the server runs.

pub mod allow;
pub mod cert;
mod follow;
pub mod keys;
pub mod probe;
pub mod record;
pub mod server;
pub mod sftp;
pub mod target;

use crate::runtime::Gateway;
use std::sync::Arc;
use std::time::Duration;

/// Channels one SSH session may have open at once (sessions and forwardings together);
/// one more is refused (`resource shortage`). OpenSSH's own `MaxSessions` default.
pub const MAX_CHANNELS: usize = 10;
/// The window the gateway grants each channel, in both directions (client → gateway and
/// asset → gateway): at most this many bytes are in flight per channel before the sender
/// waits. A peer's own window, however large it announces, only lets the gateway send
/// sooner; the gateway keeps no more than one window per channel and direction.
pub const WINDOW: u32 = 1 << 20;
/// Largest SSH packet the gateway accepts.
pub const MAX_PACKET: u32 = 32 * 1024;
/// From connection to authenticated session (OpenSSH's `LoginGraceTime` is 120 s; the
/// tunnel's handshake gets 10 s).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Authentication attempts per connection (OpenSSH's `MaxAuthTries` default is 6).
pub const MAX_AUTH_ATTEMPTS: usize = 6;

/// What every SSH connection of a gateway shares.
pub struct SshService {
    pub gw: Arc<Gateway>,
    server_config: Arc<russh::server::Config>,
    client_config: Arc<russh::client::Config>,
    known: Arc<keys::KnownAssets>,
    /// The gateway's host key, as an OpenSSH public key line.
    pub host_key: String,
    /// `SHA256:…` of it.
    pub host_key_fingerprint: String,
    /// Where the host key, the asset pins and the vaulted keys are.
    pub state_dir: std::path::PathBuf,
}

/// The ciphers the gateway asks for on its own connection to an asset, in order. On that
/// leg the gateway is the SSH client, so its order decides: AES-GCM first, which both ends
/// compute with the CPU's AES instructions (ring here, OpenSSL in OpenSSH). Measured in a
/// recorded bulk stream it took about a fifth off the asset's sshd CPU per MiB, and left
/// the gateway's within noise (docs/BENCHMARKS.md, SSH, "AES-GCM to the asset").
/// ChaCha20-Poly1305 and AES-CTR remain for assets that offer nothing else. The user's leg
/// is negotiated in the user's client's order, as always.
const ASSET_CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

impl SshService {
    /// The SSH service of `gw`, with its host key and the first-seen asset keys in
    /// `state_dir`.
    pub fn new(gw: Arc<Gateway>, state_dir: &std::path::Path) -> Result<SshService, String> {
        let key = keys::load_or_create_host_key(state_dir)?;
        let host_key = key
            .public_key()
            .to_openssh()
            .map_err(|e| format!("encoding the SSH host key: {e}"))?;
        let host_key_fingerprint = keys::fingerprint(key.public_key());
        let server_config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-jitgate".into()),
            methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
            // Refusals wait a little (OpenSSH clients try every key they hold).
            auth_rejection_time: Duration::from_millis(250),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![key],
            window_size: WINDOW,
            maximum_packet_size: MAX_PACKET,
            max_auth_attempts: MAX_AUTH_ATTEMPTS,
            // Idle sessions end by the gateway's own idle timeout (`[client_limits]`);
            // unauthenticated ones by AUTH_TIMEOUT.
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(60)),
            nodelay: true,
            ..Default::default()
        };
        let client_config = russh::client::Config {
            window_size: WINDOW,
            maximum_packet_size: MAX_PACKET,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(60)),
            nodelay: true,
            preferred: russh::Preferred {
                cipher: std::borrow::Cow::Borrowed(ASSET_CIPHERS),
                ..russh::Preferred::DEFAULT
            },
            ..Default::default()
        };
        Ok(SshService {
            gw,
            server_config: Arc::new(server_config),
            client_config: Arc::new(client_config),
            known: Arc::new(keys::KnownAssets::load(state_dir)?),
            host_key,
            host_key_fingerprint,
            state_dir: state_dir.to_path_buf(),
        })
    }

    /// Accept SSH connections until `stop` changes.
    pub async fn run(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                conn = listener.accept() => match conn {
                    Ok((tcp, peer)) => { tokio::spawn(server::serve(Arc::clone(&self), tcp, peer)); }
                    Err(e) => {
                        tracing::warn!(error = %e, "SSH accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}
