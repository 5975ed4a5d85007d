//! One tunnel session: TLS, handshake (token + proof of possession), the online grant check,
//! then Modbus/TCP frame by frame — inspected against the allow-list compiled once from the
//! token's scope — until the client leaves, the token expires, or the grant is revoked.

use crate::modbus::{self, Verdict};
use crate::runtime::Gateway;
use crate::tunnel::{self, ChallengeMsg, Hello, Proof};
use crate::wire::SessionClosed;
use jitgate_core::event::rfc3339;
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
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, gw.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let mut stream = BufReader::with_capacity(FRAME_BUF, tls);
    let session_id = crate::new_session_id();
    let started = gw.clock_now();
    let mut fingerprint = None;
    let outcome = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(&gw, &mut stream, &mut fingerprint),
    )
    .await;
    let (claims, asset) = match outcome {
        Ok(Ok(ok)) => ok,
        Ok(Err((refusal, grant))) => {
            gw.events.record(
                "session.refused",
                started,
                grant.as_deref(),
                Some(&session_id),
                json!({"code": refusal.code, "reason": refusal.message, "peer": peer.to_string(), "token_fingerprint": fingerprint}),
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
            gw.events.record(
                "session.refused",
                started,
                None,
                Some(&session_id),
                json!({"code": "handshake_timeout", "peer": peer.to_string()}),
            );
            return;
        }
    };

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
    let _ = device.set_nodelay(true);
    let allow = modbus::AllowList::compile(&asset.id, &claims.scope);
    let mut kill = gw.register(&session_id, &claims.grant_id);
    // A revocation that arrived between the handshake's check and the registration found
    // no session to cut: look again now that this one is registered.
    if let Some(reason) = gw.revoked_reason(&claims.grant_id) {
        gw.unregister(&session_id, None);
        let verdict = tunnel::Verdict {
            ok: false,
            session: None,
            expires_at: None,
            code: Some("grant_revoked".into()),
            message: Some(format!("grant {} has ended ({reason})", claims.grant_id)),
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
        json!({"subject": claims.subject, "asset": asset.id, "device": address, "peer": peer.to_string(), "token_id": claims.token_id, "expires_at": rfc3339(claims.expires_at)}),
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
        json!({"reason": end, "operations": stats.operations, "denied": stats.denied, "bytes_from_client": stats.bytes_in, "bytes_to_client": stats.bytes_out}),
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

/// Token, proof of possession, online check. Returns the claims and the asset.
async fn handshake(
    gw: &Gateway,
    stream: &mut Stream,
    fingerprint: &mut Option<String>,
) -> Result<(GrantClaims, Asset), (Refusal, Option<String>)> {
    let hello: Hello = tunnel::read_msg(stream)
        .await
        .map_err(|e| (refuse("bad_handshake", e.to_string()), None))?;
    // The evidence log gets the token's fingerprint, never the token.
    *fingerprint = Some(jitgate_credential::token_fingerprint(&hello.token));
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
        Err(e) if e.code() == "unknown_key" && gw.refresh_if_stale().await => {
            gw.verify_token(&hello.token, now)
        }
        other => other,
    }
    .map_err(|e| (refuse(e.code(), format!("token refused: {e}")), None))?;
    let grant = Some(claims.grant_id.clone());
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
    gw.check_grant_online(&claims.grant_id)
        .await
        .map_err(|(code, message)| (refuse(code, message), grant.clone()))?;
    Ok((claims, asset))
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
                Ok(0) => return "client_closed".into(),
                Ok(n) => {
                    stats.bytes_in += n as u64;
                    inbuf.extend_from_slice(&chunk[..n]);
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
