//! The tunnel handshake (`crate::tunnel`): token, proof of possession, online grant
//! check. Shared by every protocol that travels through the tunnel (Modbus/TCP; DNP3 next);
//! what follows the handshake is the protocol's (see `crate::session`).
//!
//! A refusal before the token is accepted is counted with the other pre-authentication
//! refusals of its source ([`crate::refusals`]); once the token names a real grant, each
//! refusal is recorded as its own `session.refused` event under that grant.

use crate::live::to_json;
use crate::runtime::Gateway;
use crate::tunnel::{self, ChallengeMsg, HelloMsg, Proof};
use jitgate_core::scope::Protocol;
use jitgate_core::server_payload::SessionRefusedDetail;
use jitgate_core::Asset;
use jitgate_credential::GrantClaims;
use tokio::io::BufReader;
use tokio::net::TcpStream;

/// Why a session was refused: a stable code (recorded in the evidence log and sent to the
/// client) and a message saying what to do.
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

pub fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Record a refused handshake: one event of its own once the token was accepted (it names
/// a real grant), else counted with the other pre-authentication refusals of the window.
pub fn refused(
    gw: &Gateway,
    progress: &Progress,
    grant: Option<&str>,
    session_id: &str,
    at: jitgate_core::Timestamp,
    peer: std::net::SocketAddr,
    refusal: &Refusal,
) {
    if progress.grant.is_none() {
        gw.pre_auth_refused(
            peer,
            refusal.code,
            Some(session_id),
            &refusal.message,
            progress.fingerprint.as_deref(),
        );
        return;
    }
    // A refusal: nothing is answered on its strength (a failure to write is logged).
    let _ = gw.events.record(
        "session.refused",
        at,
        grant,
        Some(session_id),
        to_json(&SessionRefusedDetail {
            code: refusal.code.to_string(),
            reason: refusal.message.clone(),
            peer: Some(peer.to_string()),
            token_fingerprint: progress.fingerprint.clone(),
        }),
    );
}

pub type Stream = BufReader<tokio_rustls::server::TlsStream<TcpStream>>;

/// How far a handshake got, for the refusal record: the token's fingerprint once read, the
/// grant once the token was accepted (from then on refusals are post-authentication).
#[derive(Default)]
pub struct Progress {
    pub fingerprint: Option<String>,
    pub grant: Option<String>,
}

/// A handshake that passed every check.
pub struct Accepted {
    pub claims: GrantClaims,
    pub asset: Asset,
    /// The key that signed the token (to cut the session if that key is retired).
    pub kid: String,
    pub probe: bool,
    /// The protocol the session speaks after the handshake.
    pub protocol: Protocol,
}

/// Token, proof of possession, online check.
pub async fn handshake(
    gw: &Gateway,
    stream: &mut Stream,
    progress: &mut Progress,
) -> Result<Accepted, (Refusal, Option<String>)> {
    let hello: HelloMsg = tunnel::read_msg(stream)
        .await
        .map_err(|e| (refuse("bad_handshake", e.to_string()), None))?;
    // The evidence log gets the token's fingerprint, never the token.
    progress.fingerprint = Some(jitgate_credential::token_fingerprint(&hello.token));
    if hello.v != tunnel::VERSION {
        return Err((
            refuse(
                "bad_handshake",
                format!(
                    "tunnel protocol version {} is not supported (this gateway speaks {})",
                    hello.v,
                    tunnel::VERSION
                ),
            ),
            None,
        ));
    }
    let now = gw.clock_now();
    let claims = match gw.verify_token(&hello.token, now) {
        // A key the gateway has not seen may be a fresh rotation: refetch the keys once.
        Err(jitgate_credential::CredentialError::UnknownKey { .. })
            if gw.refresh_if_stale().await =>
        {
            gw.verify_token(&hello.token, now)
        }
        other => other,
    }
    .map_err(|e| (refuse(e.code(), format!("token refused: {e}")), None))?;
    // Verified: the footer's key id is the key that signed it.
    let kid = jitgate_credential::token_kid(&hello.token).unwrap_or_default();
    let grant = Some(claims.grant_id.clone());
    progress.grant = grant.clone();
    // The revocation list first: an ended grant's credential is refused here without asking
    // the server (and across restarts: the list is on disk).
    if let Some(reason) = gw.revoked_reason(&claims.grant_id) {
        return Err((
            refuse(
                "grant_revoked",
                format!(
                    "grant {} has ended ({reason}); its credential is refused. Request access again if the work is not finished",
                    claims.grant_id
                ),
            ),
            grant,
        ));
    }
    let asset = gw.asset(&hello.asset).ok_or_else(|| {
        (
            refuse(
                "asset_not_fronted",
                format!("this gateway does not front asset {}", hello.asset),
            ),
            grant.clone(),
        )
    })?;
    if !claims.assets.iter().any(|a| a.asset == asset.id) {
        return Err((
            refuse(
                "wrong_asset",
                format!("the token is not for asset {}", asset.id),
            ),
            grant,
        ));
    }
    let challenge = gw.issue_challenge(now);
    tunnel::write_msg(
        stream,
        &ChallengeMsg {
            challenge: challenge.nonce_b64(),
        },
    )
    .await
    .map_err(|e| (refuse("bad_handshake", e.to_string()), grant.clone()))?;
    let proof: Proof = tunnel::read_msg(stream)
        .await
        .map_err(|e| (refuse("bad_handshake", e.to_string()), grant.clone()))?;
    gw.consume_challenge(&challenge.nonce, gw.clock_now())
        .map_err(|e| (refuse(e.code(), e.to_string()), grant.clone()))?;
    jitgate_credential::verify_pop(&claims, &challenge.nonce, &hello.token, &gw.id, &proof.pop)
        .map_err(|e| {
            (
                refuse(e.code(), format!("proof of possession refused: {e}")),
                grant.clone(),
            )
        })?;
    gw.check_grant_online((&claims).into())
        .await
        .map_err(|(code, message)| (refuse(code, message), grant.clone()))?;
    let offered = jitgate_core::scope::tunnel_protocols(&claims.scope, &asset);
    let protocol =
        jitgate_core::scope::choose_tunnel_protocol(hello.protocol.as_deref(), &offered, &asset.id)
            .map_err(|(code, message)| (refuse(code, message), grant.clone()))?;
    Ok(Accepted {
        claims,
        asset,
        kid,
        probe: hello.probe,
        protocol,
    })
}
