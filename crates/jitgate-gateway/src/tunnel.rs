//! The tunnel handshake between `jitgate connect` and a gateway, over TLS.
//!
//! ```text
//! client → gateway   {"v":1,"token":"v4.public...","asset":"plc-7","protocol":"modbus"}\n
//!                    (+ "probe":true: check only; "protocol" may be left out when the grant
//!                    gives one tunnel protocol on the asset)
//! gateway → client   {"challenge":"<base64url 32 bytes>"}\n
//! client → gateway   {"pop":"<base64url Ed25519 signature>"}\n
//! gateway → client   {"ok":true,"session":"sess-...","expires_at":"..."}\n   (or ok:false, code, message; then close)
//! ...then the raw Modbus/TCP or DNP3 byte stream, inspected frame by frame by the gateway.
//! ```
//!
//! Lines are JSON, at most [`MAX_LINE`] bytes: the handshake reads untrusted input.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// Longest handshake line (a token is at most 16 KiB).
pub const MAX_LINE: usize = 20 * 1024;
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub v: u32,
    pub token: String,
    pub asset: String,
}

/// What the gateway reads first: a [`Hello`], with `"probe": true` when the client only wants
/// to know whether a session would be accepted (`jitgate connect` checks its grant at start
/// this way). A probe goes through every check of a session — token, proof of possession,
/// online grant check, device reachable — and gets the same verdict, but no session is
/// opened or recorded; a refused probe is recorded like any refusal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloMsg {
    pub v: u32,
    pub token: String,
    pub asset: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// `modbus` or `dnp3`; absent: the only tunnel protocol the grant gives on the asset
    /// (`jitgate_core::scope::choose_tunnel_protocol`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeMsg {
    pub challenge: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub pop: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Verdict {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("handshake line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("peer closed the connection during the handshake")]
    Closed,
    #[error("handshake message is malformed: {0}")]
    Malformed(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Read one JSON line, refusing more than [`MAX_LINE`] bytes without buffering them.
pub async fn read_msg<R, T>(reader: &mut R) -> Result<T, TunnelError>
where
    R: AsyncBufRead + Unpin,
    T: for<'de> Deserialize<'de>,
{
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Err(TunnelError::Closed);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE {
            return Err(TunnelError::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            break;
        }
    }
    serde_json::from_slice(&line).map_err(|e| TunnelError::Malformed(e.to_string()))
}

pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    msg: &T,
) -> Result<(), TunnelError> {
    let mut bytes = serde_json::to_vec(msg).map_err(|e| TunnelError::Malformed(e.to_string()))?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    writer.flush().await?;
    Ok(())
}
