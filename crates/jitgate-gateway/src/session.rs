//! One tunnel session: TLS, handshake (token + proof of possession), the online grant check,
//! then Modbus/TCP frame by frame — inspected against the allow-list compiled once from the
//! token's scope — until the client leaves, the token expires, the grant is revoked or the
//! key that signed the token is retired.
//!
//! Refusals before the token is accepted are counted per client address
//! ([`crate::refusals`]); later ones are recorded one event each. Why a session ended is one
//! of: `client_closed` (TLS close_notify), `client_disconnected` (TCP closed without it),
//! `expired`, `grant_<reason>`, `key_retired`, `gateway_shutdown`, or an error
//! (`client_error: …`, `device_*`, `malformed_*`, `bad_device_response: …`).

use crate::modbus::{self, Verdict};
use crate::runtime::Gateway;
use crate::tunnel::{self, ChallengeMsg, HelloMsg, Proof};
use crate::wire::SessionClosed;
use jitgate_core::event::rfc3339;
use jitgate_core::server_payload::{
    SessionEndedDetail, SessionRefusedDetail, SessionStartedDetail,
};
use jitgate_core::Asset;
use jitgate_credential::GrantClaims;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer for client and device: one Modbus/TCP ADU is at most 260 bytes.
const FRAME_BUF: usize = 512;

/// Why a session was refused: a stable code (recorded in the evidence log and sent to the
/// client) and a message saying what to do.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

pub async fn serve(gw: Arc<Gateway>, tcp: TcpStream, peer: std::net::SocketAddr) {
    // An address that keeps failing before authentication is cut before the TLS handshake,
    // the expensive part (see `crate::refusals`).
    if gw.pre_auth_throttled(peer.ip()) {
        gw.pre_auth_refused(
            peer,
            "throttled",
            None,
            "too many failed handshakes from this address; try again in a minute",
            None,
        );
        return;
    }
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
    let mut stream = BufReader::with_capacity(FRAME_BUF, tls);
    let session_id = crate::new_session_id();
    let started = gw.clock_now();
    let mut progress = Progress::default();
    let outcome = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(&gw, &mut stream, &mut progress),
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
            let verdict = tunnel::Verdict {
                ok: false,
                session: None,
                expires_at: None,
                code: Some(refusal.code.into()),
                message: Some(refusal.message),
            };
            let _ = tunnel::write_msg(&mut stream, &verdict).await;
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
    let Accepted {
        claims,
        asset,
        kid,
        probe,
    } = accepted;

    // Connect to the device before saying yes, so a dead device is reported as such.
    let Some(address) = asset.endpoints.modbus.as_ref().map(|m| m.address.clone()) else {
        return;
    };
    let device = match tokio::time::timeout(gw.device_timeout, TcpStream::connect(&address)).await {
        Ok(Ok(d)) => d,
        _ => {
            gw.events.record(
                "session.refused",
                started,
                Some(&claims.grant_id),
                Some(&session_id),
                json!({"code": "device_unreachable", "device": address}),
            );
            let verdict = tunnel::Verdict {
                ok: false,
                session: None,
                expires_at: None,
                code: Some("device_unreachable".into()),
                message: Some(format!(
                    "the gateway cannot reach {} at {address}",
                    asset.id
                )),
            };
            let _ = tunnel::write_msg(&mut stream, &verdict).await;
            return;
        }
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
    let allow = modbus::AllowList::compile(&asset.id, &claims.scope);
    let mut kill = gw.register(&session_id, &claims.grant_id, &kid);
    // A revocation (or key retirement) that arrived between the handshake's check and the
    // registration found no session to cut: look again now that this one is registered.
    let late = match gw.revoked_reason(&claims.grant_id) {
        Some(reason) => Some((
            "grant_revoked",
            format!("grant {} has ended ({reason})", claims.grant_id),
        )),
        None if gw.key_is_retired(&kid) => Some((
            "key_retired",
            format!(
                "the token was signed with key {kid}, which has been retired; request a new token"
            ),
        )),
        None => None,
    };
    if let Some((code, message)) = late {
        gw.unregister(&session_id, None);
        let verdict = tunnel::Verdict {
            ok: false,
            session: None,
            expires_at: None,
            code: Some(code.into()),
            message: Some(message),
        };
        let _ = tunnel::write_msg(&mut stream, &verdict).await;
        return;
    }
    let verdict = tunnel::Verdict {
        ok: true,
        session: Some(session_id.clone()),
        expires_at: Some(rfc3339(claims.expires_at)),
        code: None,
        message: None,
    };
    if tunnel::write_msg(&mut stream, &verdict).await.is_err() {
        gw.unregister(&session_id, None);
        return;
    }
    gw.events.record(
        "session.started",
        started,
        Some(&claims.grant_id),
        Some(&session_id),
        detail(&SessionStartedDetail {
            subject: claims.subject.clone(),
            asset: asset.id.clone(),
            device: Some(address.to_string()),
            peer: Some(peer.to_string()),
            token_id: Some(claims.token_id.clone()),
            expires_at: Some(claims.expires_at),
        }),
    );

    // Expiry at the edge: from the token's own expiry, whatever the server says or does.
    let until_expiry = (claims.expires_at - gw.clock_now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let mut stats = Stats::default();
    let end = tokio::select! {
        reason = relay(&gw, &mut stream, device, &allow, &claims, &session_id, &mut stats) => reason,
        _ = tokio::time::sleep(until_expiry) => "expired".to_string(),
        reason = kill.changed() => match reason { Ok(()) => kill.borrow().clone(), Err(_) => "gateway_shutdown".into() },
    };
    let _ = stream.get_mut().shutdown().await;
    let closed_at = gw.clock_now();
    gw.unregister(
        &session_id,
        Some((
            claims.expires_at,
            SessionClosed {
                session_id: session_id.clone(),
                closed_at,
                reason: end.clone(),
                bytes_from_client: stats.bytes_in,
                bytes_to_client: stats.bytes_out,
                operations: stats.operations,
                denied: stats.denied,
            },
        )),
    );
    gw.events.record(
        "session.ended",
        closed_at,
        Some(&claims.grant_id),
        Some(&session_id),
        detail(&SessionEndedDetail {
            reason: end,
            operations: stats.operations,
            denied: stats.denied,
            bytes_from_client: stats.bytes_in,
            bytes_to_client: stats.bytes_out,
        }),
    );
}

/// Record a refused handshake: one event of its own once the token was accepted (it names
/// a real grant), else counted with the other pre-authentication refusals of the window.
fn refused(
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
    gw.events.record(
        "session.refused",
        at,
        grant,
        Some(session_id),
        detail(&SessionRefusedDetail {
            code: refusal.code.to_string(),
            reason: refusal.message.clone(),
            peer: Some(peer.to_string()),
            token_fingerprint: progress.fingerprint.clone(),
        }),
    );
}

#[derive(Default)]
struct Stats {
    operations: u64,
    denied: u64,
    bytes_in: u64,
    bytes_out: u64,
}

type Stream = BufReader<tokio_rustls::server::TlsStream<TcpStream>>;

/// How far a handshake got, for the refusal record: the token's fingerprint once read, the
/// grant once the token was accepted (from then on refusals are post-authentication).
#[derive(Default)]
struct Progress {
    fingerprint: Option<String>,
    grant: Option<String>,
}

/// A handshake that passed every check.
struct Accepted {
    claims: GrantClaims,
    asset: Asset,
    /// The key that signed the token (to cut the session if that key is retired).
    kid: String,
    probe: bool,
}

/// Token, proof of possession, online check.
async fn handshake(
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
    gw.check_grant_online(&claims)
        .await
        .map_err(|(code, message)| (refuse(code, message), grant.clone()))?;
    Ok(Accepted {
        claims,
        asset,
        kid,
        probe: hello.probe,
    })
}

/// The inspection loop: one request at a time, each answered before the next is read.
async fn relay(
    gw: &Gateway,
    client: &mut Stream,
    mut device: TcpStream,
    allow: &modbus::AllowList,
    claims: &GrantClaims,
    session: &str,
    stats: &mut Stats,
) -> String {
    let mut inbuf: Vec<u8> = Vec::with_capacity(FRAME_BUF);
    let mut devbuf: Vec<u8> = Vec::with_capacity(FRAME_BUF);
    let mut chunk = [0u8; FRAME_BUF];
    loop {
        // Take one complete request from what the client sent.
        let consumed = loop {
            match modbus::parse_adu(&inbuf) {
                Ok(Some((_, used))) => break used,
                Ok(None) => {}
                Err(e) => {
                    gw.events.record(
                        "operation",
                        gw.clock_now(),
                        Some(&claims.grant_id),
                        Some(session),
                        json!({"allowed": false, "malformed": e.code(), "reason": e.to_string()}),
                    );
                    return format!("malformed_frame: {e}");
                }
            }
            match client.read(&mut chunk).await {
                // The client said goodbye (TLS close_notify): a normal end.
                Ok(0) => return "client_closed".into(),
                Ok(n) => {
                    stats.bytes_in += n as u64;
                    inbuf.extend_from_slice(&chunk[..n]);
                }
                // The connection ended without close_notify (client killed, network cut, an
                // old client): not an error of the session, but not a clean close either.
                // Only complete frames ever reach the device, so nothing was truncated.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return "client_disconnected".into()
                }
                Err(e) => return format!("client_error: {e}"),
            }
        };
        let at = gw.clock_now();
        let started = std::time::Instant::now();
        // Re-parse the complete frame (cheap) so the borrow of `inbuf` ends before draining.
        let (inspection, pending) = match modbus::parse_adu(&inbuf[..consumed]) {
            Ok(Some((adu, _))) => {
                let inspection = modbus::inspect(allow, &adu);
                let pending = match (&inspection.verdict, modbus::decode_request(adu.pdu)) {
                    (Verdict::Allow, Ok(request)) => Some(modbus::Pending::new(&adu, &request)),
                    _ => None,
                };
                (inspection, pending)
            }
            _ => return "internal: frame vanished".into(),
        };
        stats.operations += 1;
        match (&inspection.verdict, pending) {
            (Verdict::Allow, Some(pending)) => {
                if let Err(e) = device.write_all(&inbuf[..consumed]).await {
                    return format!("device_error: {e}");
                }
                inbuf.drain(..consumed);
                // Read exactly one response ADU from the device and check it answers this
                // request; a device that answers garbage ends the session.
                let response_len = loop {
                    match modbus::parse_adu(&devbuf) {
                        Ok(Some((adu, used))) => match modbus::validate_response(&pending, &adu) {
                            Ok(_) => break used,
                            Err(e) => {
                                record_op(
                                    gw,
                                    claims,
                                    session,
                                    at,
                                    &inspection.operation,
                                    Some(e.code()),
                                    None,
                                );
                                return format!("bad_device_response: {e}");
                            }
                        },
                        Ok(None) => {}
                        Err(e) => {
                            record_op(
                                gw,
                                claims,
                                session,
                                at,
                                &inspection.operation,
                                Some(e.code()),
                                None,
                            );
                            return format!("bad_device_response: {e}");
                        }
                    }
                    match tokio::time::timeout(gw.device_timeout, device.read(&mut chunk)).await {
                        Ok(Ok(0)) => return "device_closed".into(),
                        Ok(Ok(n)) => devbuf.extend_from_slice(&chunk[..n]),
                        Ok(Err(e)) => return format!("device_error: {e}"),
                        Err(_) => {
                            record_op(
                                gw,
                                claims,
                                session,
                                at,
                                &inspection.operation,
                                Some("device_timeout"),
                                None,
                            );
                            return "device_timeout".into();
                        }
                    }
                };
                if let Err(e) = client.get_mut().write_all(&devbuf[..response_len]).await {
                    return format!("client_error: {e}");
                }
                stats.bytes_out += response_len as u64;
                devbuf.drain(..response_len);
                record_op(
                    gw,
                    claims,
                    session,
                    at,
                    &inspection.operation,
                    None,
                    Some(started.elapsed()),
                );
            }
            (Verdict::Malformed { error }, _) => {
                record_op(gw, claims, session, at, &inspection.operation, None, None);
                return format!("malformed_request: {error}");
            }
            _ => {
                inbuf.drain(..consumed);
                stats.denied += 1;
                if let Some(exception) = &inspection.exception_adu {
                    if let Err(e) = client.get_mut().write_all(exception).await {
                        return format!("client_error: {e}");
                    }
                    stats.bytes_out += exception.len() as u64;
                }
                record_op(gw, claims, session, at, &inspection.operation, None, None);
            }
        }
    }
}

fn record_op(
    gw: &Gateway,
    claims: &GrantClaims,
    session: &str,
    at: jitgate_core::Timestamp,
    op: &modbus::Operation,
    failure: Option<&str>,
    latency: Option<Duration>,
) {
    let mut data = serde_json::to_value(op).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = data.as_object_mut() {
        if let Some(f) = failure {
            obj.insert("failure".into(), json!(f));
        }
        if let Some(l) = latency {
            obj.insert("device_latency_us".into(), json!(l.as_micros() as u64));
        }
    }
    gw.events
        .record("operation", at, Some(&claims.grant_id), Some(session), data);
}

/// An event detail as the JSON the server records (the shapes are the core's).
fn detail<T: serde::Serialize>(d: &T) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or_default()
}
