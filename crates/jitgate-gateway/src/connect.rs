//! The client side of a tunnel (`jitgate connect`): a local Modbus/TCP or DNP3 port that any
//! unmodified client (pymodbus, mbpoll, a DNP3 master, an HMI, an engineering tool)
//! connects to. Each local
//! connection becomes one TLS tunnel to the gateway, proving possession of the session key
//! the token is bound to, with a fresh challenge each time.
//!
//! When the local client leaves, the tunnel is closed with a TLS close_notify, so the gateway
//! records a normal end (`client_closed`). At start, [`probe`] checks the grant without
//! opening a session (nothing is recorded unless it is refused), and a local connection
//! gets its tunnel only once it sends its first byte, so port checks open no sessions.

use crate::tunnel::{self, ChallengeMsg, HelloMsg, Proof, Verdict};
use crate::wire::TokenResponse;
use jitgate_core::scope::Protocol;
use jitgate_credential::ClientKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot reach the gateway at {addr}: {message}")]
    Gateway { addr: String, message: String },
    #[error("the gateway refused the session: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("tunnel: {0}")]
    Tunnel(String),
}

/// Everything a tunnel needs: the token, the key it is bound to, where the gateway is.
pub struct Target {
    pub token: TokenResponse,
    pub key: ClientKey,
    /// The tunnel protocol to speak; `None`: the only one the grant gives on the asset.
    pub protocol: Option<Protocol>,
}

/// Open one tunnel and complete the handshake; returns the TLS stream ready for Modbus.
pub async fn open_tunnel(
    target: &Target,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Verdict), ConnectError> {
    handshake(target, false).await
}

/// Ask the gateway whether a session would be accepted, without opening one: the same
/// checks as a session (token, proof of possession, the grant at the server, the device
/// reachable), no session recorded. The tunnel is closed cleanly afterwards.
pub async fn probe(target: &Target) -> Result<Verdict, ConnectError> {
    let (mut tls, verdict) = handshake(target, true).await?;
    close(&mut tls).await;
    Ok(verdict)
}

/// Close a tunnel the way TLS means it: close_notify, then the TCP write side. Bounded, so a
/// gateway that stopped reading cannot hold the client.
pub async fn close(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), tls.shutdown()).await;
}

/// Handshakes this process runs at once, below the gateway's limit of connections still
/// authenticating per source address (`admission::MAX_PENDING_PER_SOURCE`): a burst of local
/// connections (a SCADA client opening 32 at once) or of teardown probes queues here instead
/// of being refused by the gateway as `too_many_pending`.
pub const MAX_HANDSHAKES_IN_FLIGHT: usize = crate::admission::MAX_PENDING_PER_SOURCE / 2;

async fn handshake(
    target: &Target,
    probe: bool,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Verdict), ConnectError> {
    static IN_FLIGHT: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let _slot = IN_FLIGHT
        .get_or_init(|| tokio::sync::Semaphore::new(MAX_HANDSHAKES_IN_FLIGHT))
        .acquire()
        .await
        .map_err(|e| ConnectError::Tunnel(e.to_string()))?;
    let t = &target.token;
    let gw_err = |m: String| ConnectError::Gateway {
        addr: t.gateway_address.clone(),
        message: m,
    };
    let tcp = TcpStream::connect(&t.gateway_address)
        .await
        .map_err(|e| gw_err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let config = crate::tls::pinned_client_config(&t.gateway_fingerprint)
        .map_err(|e| ConnectError::Tunnel(e.to_string()))?;
    let host = t
        .gateway_address
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or("localhost")
        .trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| ConnectError::Tunnel(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| gw_err(format!("TLS: {e}")))?;
    let mut stream = BufReader::with_capacity(512, tls);
    let err = |e: tunnel::TunnelError| ConnectError::Tunnel(e.to_string());
    tunnel::write_msg(
        &mut stream,
        &HelloMsg {
            v: tunnel::VERSION,
            token: t.token.clone(),
            asset: t.asset.clone(),
            probe,
            protocol: target.protocol.map(|p| p.as_str().to_string()),
        },
    )
    .await
    .map_err(err)?;
    // The gateway answers a refused token at once, with a verdict instead of a challenge.
    let line: serde_json::Value = tunnel::read_msg(&mut stream).await.map_err(err)?;
    if line.get("ok").is_some() {
        let v: Verdict =
            serde_json::from_value(line).map_err(|e| ConnectError::Tunnel(e.to_string()))?;
        return Err(ConnectError::Refused {
            code: v.code.unwrap_or_default(),
            message: v.message.unwrap_or_default(),
        });
    }
    let challenge: ChallengeMsg =
        serde_json::from_value(line).map_err(|e| ConnectError::Tunnel(e.to_string()))?;
    let nonce: [u8; 32] = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(challenge.challenge.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                ConnectError::Tunnel("the gateway's challenge is not 32 bytes of base64url".into())
            })?
    };
    let pop = target.key.sign_pop(&nonce, &t.token, &t.gateway_id);
    tunnel::write_msg(&mut stream, &Proof { pop })
        .await
        .map_err(err)?;
    let verdict: Verdict = tunnel::read_msg(&mut stream).await.map_err(err)?;
    if !verdict.ok {
        return Err(ConnectError::Refused {
            code: verdict.code.unwrap_or_default(),
            message: verdict.message.unwrap_or_default(),
        });
    }
    // Nothing else can be buffered: the gateway sends nothing after its verdict until the
    // client's first request.
    Ok((stream.into_inner(), verdict))
}

/// Copy both ways until either side closes, then close both. Not a half-close: when the
/// gateway ends the session (revocation, expiry), the local client must see its connection
/// closed at once, not a socket that still accepts writes.
async fn relay_until_either_closes(
    local: TcpStream,
    tunnel: &mut tokio_rustls::client::TlsStream<TcpStream>,
) -> std::io::Result<()> {
    let (mut local_r, mut local_w) = local.into_split();
    let (mut tunnel_r, mut tunnel_w) = tokio::io::split(&mut *tunnel);
    let result = tokio::select! {
        r = tokio::io::copy(&mut local_r, &mut tunnel_w) => r.map(|_| ()),
        r = tokio::io::copy(&mut tunnel_r, &mut local_w) => r.map(|_| ()),
    };
    // Dropping the halves closes the local socket.
    drop(local_w);
    drop(local_r);
    drop(tunnel_w);
    drop(tunnel_r);
    // Say goodbye on the tunnel (close_notify): the gateway records a normal end rather than
    // a connection that was cut. After the gateway closed first this answers its
    // close_notify, as TLS expects.
    close(tunnel).await;
    result
}

/// Serve the local port until the token expires (or the process is stopped). Each local
/// connection gets its own tunnel; a refused tunnel closes that local connection.
pub async fn serve_local(
    listen: SocketAddr,
    target: Target,
    on_event: impl Fn(String) + Send + Sync + 'static,
) -> Result<(), ConnectError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ConnectError::Bind {
            addr: listen,
            source,
        })?;
    let target = Arc::new(target);
    let on_event = Arc::new(on_event);
    let until = (target.token.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let accept = async {
        loop {
            let Ok((local, peer)) = listener.accept().await else {
                continue;
            };
            let _ = local.set_nodelay(true);
            let target = target.clone();
            let on_event = on_event.clone();
            tokio::spawn(async move {
                // Modbus clients and DNP3 masters speak first. A local connection that closes without a byte
                // (a port check, a health probe) opens no tunnel, so no empty session is
                // recorded at the gateway.
                let mut first = [0u8; 1];
                if !matches!(local.peek(&mut first).await, Ok(n) if n > 0) {
                    return;
                }
                match open_tunnel(&target).await {
                    Ok((mut tunnel, verdict)) => {
                        on_event(format!(
                            "{peer}: session {} open",
                            verdict.session.unwrap_or_default()
                        ));
                        let result = relay_until_either_closes(local, &mut tunnel).await;
                        on_event(format!(
                            "{peer}: session closed{}",
                            match result {
                                Ok(_) => String::new(),
                                Err(e) => format!(" ({e})"),
                            }
                        ));
                    }
                    Err(e) => on_event(format!("{peer}: {e}")),
                }
            });
        }
    };
    tokio::select! {
        _ = accept => Ok(()),
        _ = tokio::time::sleep(until) => { on_event("the grant expired; closing the local port".into()); Ok(()) }
    }
}
