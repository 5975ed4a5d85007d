//! One tunnel connection, front to back: admission (connection cap, pending connections per
//! source, throttle), TLS, the handshake ([`crate::handshake`]), then a session of the
//! asset's framed protocol ([`crate::protocol`]) relayed by [`crate::relay`] until the
//! client leaves, the credential expires, the grant is revoked, the key that signed the
//! token is retired, the session idles too long or the gateway stops.
//!
//! Why a session ended is one of: `client_closed` (TLS close_notify), `client_disconnected`
//! (TCP closed without it), `expired`, `idle_timeout`, `grant_<reason>`, `key_retired`,
//! `gateway_shutdown`, or an error (`client_error: …`, `device_*`, `malformed_*`,
//! `bad_device_response: …`).

use crate::admission::Admitted;
use crate::dnp3::Dnp3;
use crate::handshake::{self, refuse, refused, Accepted, Progress, Stream};
use crate::live::{SessionInfo, SessionStats};
use crate::modbus::proto::Modbus;
use crate::protocol::FrameProtocol;
use crate::runtime::Gateway;
use crate::tunnel;
use jitgate_core::event::rfc3339;
use jitgate_core::scope::Protocol;
use jitgate_core::server_payload::SessionStartedDetail;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use crate::admission::MAX_PENDING_PER_SOURCE;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Buffer of the TLS stream's reader: the handshake's lines and the protocol's frames.
const READ_BUF: usize = 512;

pub async fn serve(gw: Arc<Gateway>, tcp: TcpStream, peer: std::net::SocketAddr) {
    // Refused (and counted) here: closed before the TLS handshake, the expensive part.
    let Some(mut admitted) = gw.admit(peer) else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, gw.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            gw.pre_auth_refused(peer, "tls_failed", None, &e.to_string(), None);
            return;
        }
        Err(_) => {
            gw.pre_auth_refused(peer, "tls_timeout", None, "no TLS handshake in 10 s", None);
            return;
        }
    };
    let mut stream = BufReader::with_capacity(READ_BUF, tls);
    let session_id = crate::new_session_id();
    let started = gw.clock_now();
    let mut progress = Progress::default();
    let outcome = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake::handshake(&gw, &mut stream, &mut progress),
    )
    .await;
    let accepted = match outcome {
        Ok(Ok(ok)) => ok,
        Ok(Err((refusal, grant))) => {
            refused(
                &gw,
                &progress,
                grant.as_deref(),
                &session_id,
                started,
                peer,
                &refusal,
            );
            let _ = tunnel::write_msg(&mut stream, &no(refusal.code, refusal.message)).await;
            let _ = stream.get_mut().shutdown().await;
            return;
        }
        Err(_) => {
            let refusal = refuse("handshake_timeout", "the handshake took longer than 10 s");
            let grant = progress.grant.clone();
            refused(
                &gw,
                &progress,
                grant.as_deref(),
                &session_id,
                started,
                peer,
                &refusal,
            );
            return;
        }
    };
    // Authenticated: no longer counts against the source's pending connections (it keeps
    // its place under the gateway's connection cap until it ends).
    admitted.authenticated();
    match accepted.protocol {
        Protocol::Dnp3 => {
            run::<Dnp3>(&gw, stream, accepted, session_id, started, peer, admitted).await
        }
        // `choose_tunnel_protocol` offers only tunnel protocols.
        Protocol::Modbus | Protocol::Ssh => {
            run::<Modbus>(&gw, stream, accepted, session_id, started, peer, admitted).await
        }
    }
}

/// A refusing verdict.
fn no(code: &str, message: String) -> tunnel::Verdict {
    tunnel::Verdict {
        ok: false,
        session: None,
        expires_at: None,
        code: Some(code.into()),
        message: Some(message),
    }
}

/// After the handshake: reach the device, answer the client, relay frames of protocol `P`
/// until something ends the session, record how it ended.
async fn run<P: FrameProtocol>(
    gw: &Arc<Gateway>,
    mut stream: Stream,
    accepted: Accepted,
    session_id: String,
    started: jitgate_core::Timestamp,
    peer: std::net::SocketAddr,
    _admitted: Admitted,
) {
    let Accepted {
        claims,
        asset,
        kid,
        probe,
        protocol: _,
    } = accepted;
    // Connect to the device before saying yes, so a dead device is reported as such.
    let Some(address) = P::device_address(&asset) else {
        return;
    };
    let connected = tokio::time::timeout(gw.device_timeout, TcpStream::connect(&address)).await;
    let Ok(Ok(mut device)) = connected else {
        // A refusal: nothing is answered on its strength (a failure to write is logged).
        let _ = gw.events.record(
            "session.refused",
            started,
            Some(&claims.grant_id),
            Some(&session_id),
            json!({"code": "device_unreachable", "device": address}),
        );
        let message = format!("the gateway cannot reach {} at {address}", asset.id);
        let _ = tunnel::write_msg(&mut stream, &no("device_unreachable", message)).await;
        return;
    };
    if probe {
        // Every check passed: say so, open nothing, record nothing (no session existed).
        drop(device);
        let verdict = tunnel::Verdict {
            ok: true,
            session: None,
            expires_at: Some(rfc3339(claims.expires_at)),
            code: None,
            message: None,
        };
        let _ = tunnel::write_msg(&mut stream, &verdict).await;
        let _ = stream.get_mut().shutdown().await;
        return;
    }
    let _ = device.set_nodelay(true);
    let allow = P::compile(&asset, &claims.scope);
    let mut state = P::new_state(&allow);
    let info = SessionInfo {
        session_id: session_id.clone(),
        grant_id: claims.grant_id.clone(),
        kid,
        expires_at: claims.expires_at,
    };
    let mut handle = match gw.open_session(info) {
        Ok(handle) => handle,
        Err((code, message)) => {
            let _ = tunnel::write_msg(&mut stream, &no(code, message)).await;
            return;
        }
    };
    let verdict = tunnel::Verdict {
        ok: true,
        session: Some(session_id),
        expires_at: Some(rfc3339(claims.expires_at)),
        code: None,
        message: None,
    };
    if tunnel::write_msg(&mut stream, &verdict).await.is_err() {
        return;
    }
    let opened = handle.started(
        started,
        &SessionStartedDetail {
            subject: claims.subject.clone(),
            asset: asset.id.clone(),
            protocol: Some(P::NAME.into()),
            device: Some(address),
            peer: Some(peer.to_string()),
            token_id: Some(claims.token_id.clone()),
            expires_at: Some(claims.expires_at),
        },
    );
    let mut stats = SessionStats::default();
    if let Err(e) = opened {
        // No evidence of the session: it ends before a frame is relayed.
        let _ = stream.get_mut().shutdown().await;
        handle.end(e.to_string(), stats, gw.clock_now());
        return;
    }
    let end = tokio::select! {
        reason = crate::relay::relay::<P, _, _>(&handle, &mut stream, &mut device, &allow, &mut state, gw.device_timeout, &mut stats) => reason,
        reason = handle.cut() => reason,
    };
    let _ = stream.get_mut().shutdown().await;
    handle.end(end, stats, gw.clock_now());
}
