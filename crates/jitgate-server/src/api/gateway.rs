//! Endpoints for gateways (`/gateway/...`, callers are workloads with the `gateway` role)
//! and for subjects obtaining a grant token (`/grants/{id}/token`), plus key rotation.

use super::extract::{ApiJson, JsonBytes};
use super::types::*;
use crate::auth::Caller;
use crate::error::{ApiResult, GatewayTrustCode, ServerError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::event::{Actor, Event, EventKind};
use jitgate_core::scope::Protocol;
use jitgate_core::server_payload::{CredentialIssued, GatewayReport, KeyPurpose, KeyRotated};
use jitgate_core::{Asset, GrantState};
use jitgate_credential::{AssetClaim, GrantClaims};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gateway/hello", post(hello))
        .route("/gateway/control", get(super::control::control))
        .route("/gateway/grants/{id}", get(grant_status))
        .route("/gateway/events", post(gateway_events))
        .route("/grants/{id}/token", post(issue_token))
        .route("/keys", get(keys_info))
        .route("/keys/rotate", post(rotate_keys))
        .route("/keys/{kid}/retire", post(retire_key))
}

/// How far ahead of the server's clock a gateway's event may be dated (clock skew). Events
/// naming a grant may also not be dated before the grant was issued, less this skew.
pub const MAX_EVENT_SKEW_SECS: i64 = 300;

fn gateway_seq_key(id: &str) -> String {
    format!("gateway/{id}/delivered_seq")
}

async fn fronted_assets(state: &AppState, gateway: &str) -> ApiResult<Vec<Asset>> {
    let mut tx = state.store.read().await?;
    Ok(tx
        .list_assets()
        .await?
        .into_iter()
        .filter(|a| a.gateway.as_deref() == Some(gateway))
        .collect())
}

#[utoipa::path(post, path = "/api/v1/gateway/hello", request_body = GatewayHello,
    responses((status = 200, body = GatewaySetup), (status = 403, body = ApiError)))]
pub(crate) async fn hello(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<GatewayHello>,
) -> ApiResult<Json<GatewaySetup>> {
    caller.require_gateway()?;
    if !body.tls_fingerprint.starts_with("sha256:") || body.tls_fingerprint.len() != 71 {
        return Err(ServerError::BadRequest(
            "tls_fingerprint must be `sha256:` + 64 hex digits".into(),
        ));
    }
    if body.address.parse::<std::net::SocketAddr>().is_err() && !body.address.contains(':') {
        return Err(ServerError::BadRequest("address must be host:port".into()));
    }
    let mut tx = state.store.write().await?;
    let record = serde_json::to_string(&body).map_err(|e| ServerError::Internal(e.to_string()))?;
    tx.set_setting(&crate::control::gateway_key(caller.id()), &record)
        .await?;
    let delivered_seq = tx
        .get_setting(&gateway_seq_key(caller.id()))
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    tx.commit().await?;
    let token_keys = state.keyring_public(state.clock.now());
    let assets = fronted_assets(&state, caller.id()).await?;
    Ok(Json(GatewaySetup {
        gateway_id: caller.id().to_string(),
        token_keys,
        assets,
        ssh_user_ca_keys: vec![state.ssh_cas.public(crate::ssh_ca::CaRole::User).public_key],
        delivered_seq,
    }))
}

#[utoipa::path(get, path = "/api/v1/gateway/grants/{id}", params(("id" = String, Path)),
    responses((status = 200, body = GrantStatus), (status = 404, body = ApiError)))]
pub(crate) async fn grant_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantStatus>> {
    caller.require_gateway()?;
    let mut tx = state.store.read().await?;
    let g = tx
        .get_grant(&id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", &id))?;
    let mut fronts = false;
    for asset in g.scope.assets() {
        if let Some(a) = tx.get_asset(&asset).await? {
            fronts |= a.gateway.as_deref() == Some(caller.id());
        }
    }
    if !fronts {
        return Err(ServerError::not_found("grant", &id));
    }
    // A grant past expiry that the scheduler has not ended yet is reported as ending.
    let state_now = if g.state == GrantState::Active && state.clock.now() >= g.expires_at {
        GrantState::Ending
    } else {
        g.state
    };
    Ok(Json(GrantStatus {
        grant_id: g.id,
        state: state_now,
        expires_at: g.expires_at,
        scope_digest: g.scope_digest,
        subject: g.subject,
        scope: Some(g.scope),
    }))
}

#[utoipa::path(post, path = "/api/v1/gateway/events", request_body = GatewayEventBatch,
    responses((status = 200, body = GatewayEventAck), (status = 403, body = ApiError)))]
pub(crate) async fn gateway_events(
    State(state): State<AppState>,
    caller: Caller,
    raw: JsonBytes,
) -> ApiResult<Json<GatewayEventAck>> {
    caller.require_gateway()?;
    let body: DeliveredBatch<'_> = raw.parse::<_, GatewayEventBatch>()?;
    if body.events.len() > 10_000 {
        return Err(ServerError::BadRequest(
            "at most 10000 events per batch".into(),
        ));
    }
    let actor = Actor::identity(caller.id());
    let now = state.clock.now();
    // The assets this gateway fronts, read before the write lock (the inventory rarely
    // changes; an asset moved to another gateway meanwhile only affects events already
    // being sent by the old one).
    let fronted: std::collections::HashSet<String> = fronted_assets(&state, caller.id())
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    // What each named grant is, as far as this gateway may speak of it: its request, and
    // whether one of its assets is fronted by this gateway. Read before the write lock too:
    // a grant's scope, request and issue time never change, and the lock is what every
    // writer waits for.
    let mut grants: HashMap<String, Option<(jitgate_core::Grant, bool)>> = HashMap::new();
    {
        let mut tx = state.store.read().await?;
        for gid in body.events.iter().filter_map(|e| e.grant_id.as_ref()) {
            if !grants.contains_key(gid) {
                let found = tx.get_grant(gid).await?.map(|g| {
                    let fronts = g.scope.assets().iter().any(|id| fronted.contains(id));
                    (g, fronts)
                });
                grants.insert(gid.clone(), found);
            }
        }
    }
    let mut tx = state.store.write().await?;
    let mut delivered: i64 = tx
        .get_setting(&gateway_seq_key(caller.id()))
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut events = Vec::new();
    // Recording chains touched by this batch, and the chunk rows to write with the events.
    let mut chains = HashMap::new();
    let mut chunk_rows = Vec::new();
    for e in body.events {
        if e.gseq <= delivered {
            continue; // already recorded: a redelivery after an outage
        }
        // A gateway numbers its events without gaps; a jump would make the server skip real
        // events later as "already delivered", so it is refused, never absorbed.
        if e.gseq != delivered + 1 {
            return Err(ServerError::GatewayTrust {
                code: GatewayTrustCode::SequenceGap,
                message: format!(
                    "event gseq {} does not follow the last recorded gseq {delivered}; send gseq {} next (gateway event numbers never skip)",
                    e.gseq,
                    delivered + 1
                ),
            });
        }
        let kind = match e.kind.as_ref() {
            "session.started" => EventKind::SessionStarted,
            "session.refused" => EventKind::SessionRefused,
            "session.ended" => EventKind::SessionEnded,
            "operation" => EventKind::Operation,
            "recording.chunk" => EventKind::RecordingChunk,
            other => {
                return Err(ServerError::InvalidBody(format!(
                    "event gseq {}: unknown kind {other:?}; use session.started, session.refused, session.ended, operation or recording.chunk",
                    e.gseq
                )))
            }
        };
        if e.at > now + chrono::Duration::seconds(MAX_EVENT_SKEW_SECS) {
            return Err(ServerError::GatewayTrust {
                code: GatewayTrustCode::TimeOutOfBounds,
                message: format!(
                    "event gseq {} is dated {}, more than {MAX_EVENT_SKEW_SECS}s after the server's time {}; fix the gateway's clock (NTP)",
                    e.gseq,
                    jitgate_core::event::rfc3339(e.at),
                    jitgate_core::event::rfc3339(now)
                ),
            });
        }
        let mut claimed_grant_id = None;
        let mut link = None;
        if let Some(gid) = &e.grant_id {
            match grants.get(gid).cloned().flatten() {
                Some((g, true)) => {
                    let earliest =
                        g.created_at - chrono::Duration::seconds(MAX_EVENT_SKEW_SECS);
                    if e.at < earliest {
                        return Err(ServerError::GatewayTrust {
                            code: GatewayTrustCode::TimeOutOfBounds,
                            message: format!(
                                "event gseq {} is dated {}, before grant {gid} was issued ({}); fix the gateway's clock (NTP)",
                                e.gseq,
                                jitgate_core::event::rfc3339(e.at),
                                jitgate_core::event::rfc3339(g.created_at)
                            ),
                        });
                    }
                    link = Some((gid.clone(), g.request_id.clone()));
                }
                // A refused session may name a grant that does not exist (a forged token) or
                // one for an asset this gateway does not front (a token brought to the wrong
                // gateway): recorded, but not linked to that grant's evidence.
                _ if kind == EventKind::SessionRefused => claimed_grant_id = Some(gid.clone()),
                _ => {
                    return Err(ServerError::GatewayTrust {
                        code: GatewayTrustCode::GrantNotFronted,
                        message: format!(
                            "event gseq {}: gateway {} fronts no asset of grant {gid}; a gateway reports sessions only for the assets it fronts",
                            e.gseq,
                            caller.id()
                        ),
                    })
                }
            }
        }
        let detail = e.data.map_or("null", |d| d.get());
        if kind == EventKind::RecordingChunk {
            let data: serde_json::Value = serde_json::from_str(detail)
                .map_err(|err| ServerError::InvalidBody(format!("event gseq {}: {err}", e.gseq)))?;
            let row = crate::recordings::accept_chunk_event(
                &mut tx,
                &mut chains,
                caller.id(),
                e.gseq,
                e.session_id.as_deref(),
                link.as_ref().map(|(gid, _)| gid.as_str()),
                &data,
                e.at,
            )
            .await?;
            chunk_rows.push((events.len(), row));
        }
        // The event's canonical text is written from the detail's text as it arrived: the
        // bytes `GatewayReport::into_event` would give, without building a `Value` of it
        // (jitgate_core::event::write_jcs_text; a core test compares the two).
        let mut detail_jcs = Vec::with_capacity(detail.len());
        jitgate_core::event::write_jcs_text(detail, &mut detail_jcs)
            .map_err(|err| ServerError::InvalidBody(format!("event gseq {}: {err}", e.gseq)))?;
        let data = GatewayReport::data_jcs(
            e.gseq,
            e.session_id.as_deref(),
            &detail_jcs,
            claimed_grant_id.as_deref(),
        );
        let mut event = Event::new(kind, actor.clone(), e.at);
        if let Some((gid, rid)) = link {
            event = event.grant(&gid).request(&rid);
        }
        let canonical = String::from_utf8(event.canonical_bytes_with_data(&data))
            .map_err(|err| ServerError::Internal(format!("event gseq {}: {err}", e.gseq)))?;
        delivered = e.gseq;
        events.push((event, canonical));
    }
    let recorded = events.len();
    let seqs = tx.append_encoded(&events).await?;
    for (i, mut row) in chunk_rows {
        row.event_seq = seqs.get(i).copied().unwrap_or_default();
        tx.insert_recording_chunk(&row).await?;
    }
    tx.set_setting(&gateway_seq_key(caller.id()), &delivered.to_string())
        .await?;
    tx.commit().await?;
    Ok(Json(GatewayEventAck {
        delivered_seq: delivered,
        recorded,
    }))
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/token", params(("id" = String, Path)), request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let g = crate::visibility::grant_of_subject(&mut tx, &caller, &id).await?;
    if g.state != GrantState::Active || now >= g.expires_at {
        return Err(jitgate_core::CoreError::WrongState {
            what: format!("grant {id}"),
            state: if g.state == GrantState::Active {
                "expired".into()
            } else {
                g.state.as_str().into()
            },
            needed: "active".into(),
        }
        .into());
    }
    let assets = g.scope.assets();
    let asset_id = match (&body.asset, assets.as_slice()) {
        (Some(a), _) if assets.contains(a) => a.clone(),
        (Some(a), _) => {
            return Err(ServerError::BadRequest(format!(
                "grant {id} does not cover asset {a}; it covers {}",
                assets.join(", ")
            )))
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(ServerError::BadRequest(format!(
                "grant {id} covers several assets ({}); name one with --asset",
                assets.join(", ")
            )))
        }
    };
    let asset = tx
        .get_asset(&asset_id)
        .await?
        .ok_or_else(|| ServerError::not_found("asset", &asset_id))?;
    let gateway_id = asset.gateway.clone().ok_or_else(|| {
        ServerError::BadRequest(format!("asset {asset_id} has no gateway in the inventory; it cannot be reached through jitgate connect"))
    })?;
    let hello: GatewayHello = crate::control::announced(&mut tx, &gateway_id)
        .await?
        .ok_or_else(|| {
            ServerError::BadRequest(format!(
                "gateway {gateway_id} has not announced itself yet; is `jitgate gateway` running?"
            ))
        })?;
    // A standing exception's grant lasts months; the token handed out does not
    // (`exception::credential_lifetime`): the client asks for a fresh one when it ends.
    let path = tx
        .get_request(&g.request_id)
        .await?
        .map_or(jitgate_core::AccessPath::Planned, |r| r.path);
    drop(tx);
    let max_lifetime = jitgate_core::exception::credential_lifetime(
        path,
        chrono::Duration::days(crate::state::MAX_TOKEN_LIFETIME_DAYS),
    );
    let endpoints: Vec<AssetClaim> = [Protocol::Modbus, Protocol::Dnp3, Protocol::Ssh]
        .into_iter()
        .filter_map(|p| AssetClaim::from_asset(&asset, p))
        .collect();
    let claims = GrantClaims::for_grant(
        &g,
        &gateway_id,
        &endpoints,
        &body.public_key,
        now,
        max_lifetime,
    )
    .map_err(|e| match e {
        jitgate_credential::CredentialError::GrantNotUsable(_)
        | jitgate_credential::CredentialError::BadClaims(_)
        | jitgate_credential::CredentialError::InvalidPublicKey { .. } => {
            ServerError::BadRequest(e.to_string())
        }
        _ => ServerError::Internal(e.to_string()),
    })?;
    let token = state.issue_token(&claims)?;
    let fingerprint = jitgate_credential::token_fingerprint(&token);
    let mut tx = state.store.write().await?;
    let issued = CredentialIssued {
        token_fingerprint: fingerprint.clone(),
        token_id: claims.token_id.clone(),
        asset: asset_id.clone(),
        gateway: gateway_id.clone(),
        client_key: body.public_key.clone(),
        expires_at: claims.expires_at,
    };
    tx.append_events(&[
        Event::with_payload(Actor::identity(caller.id()), now, &issued)?
            .request(&g.request_id)
            .grant(&g.id),
    ])
    .await?;
    tx.commit().await?;
    Ok(Json(TokenResponse {
        token,
        token_fingerprint: fingerprint,
        asset: asset_id,
        gateway_id,
        gateway_address: hello.address,
        gateway_fingerprint: hello.tls_fingerprint,
        expires_at: claims.expires_at,
        protocols: jitgate_core::scope::tunnel_protocols(g.scope.items(), &asset),
    }))
}

#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = KeysInfo)))]
pub(crate) async fn keys_info(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<KeysInfo>> {
    Ok(Json(state.keys_info()))
}

#[utoipa::path(post, path = "/api/v1/keys/rotate", responses((status = 200, body = KeysInfo), (status = 403, body = ApiError)))]
pub(crate) async fn rotate_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<KeysInfo>> {
    caller.require_admin()?;
    let kid = state.rotate_keys()?;
    crate::cluster_keys::publish(&state, &[jitgate_credential::keyring::KEY_FILE_NAME]).await;
    let mut tx = state.store.write().await?;
    let rotated = KeyRotated {
        key: KeyPurpose::TokenSigning,
        new_kid: Some(kid),
        previous_kid: None,
        retired_kid: None,
        now: None,
        changed: None,
        gateways_notified: None,
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        state.clock.now(),
        &rotated,
    )?])
    .await?;
    tx.commit().await?;
    Ok(Json(state.keys_info()))
}

/// Retire a token-signing key now (it leaked): persisted in the key file, recorded in the
/// evidence log (`key.rotated` with `retired_kid` and `now: true`), pushed to every connected
/// gateway, which refuses its tokens (`key_retired`) and cuts the sessions opened with them.
/// The current key cannot be retired: rotate first.
#[utoipa::path(post, path = "/api/v1/keys/{kid}/retire", params(("kid" = String, Path)), request_body = RetireKeyBody,
    responses((status = 200, body = KeyRetired), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn retire_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(kid): Path<String>,
    ApiJson(body): ApiJson<RetireKeyBody>,
) -> ApiResult<Json<KeyRetired>> {
    caller.require_admin()?;
    if !body.now {
        return Err(ServerError::BadRequest(
            "retirement is immediate: send {\"now\": true}. Without an emergency, `POST /keys/rotate` retires the previous key once every token it signed has expired".into(),
        ));
    }
    let now = state.clock.now();
    let changed = state
        .keyring
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retire_now(&kid, now)
        .map_err(|e| match e {
            jitgate_credential::CredentialError::NoSuchKey { .. } => {
                ServerError::not_found("key", &kid)
            }
            jitgate_credential::CredentialError::KeyIsCurrent { .. } => {
                ServerError::BadRequest(e.to_string())
            }
            _ => ServerError::Internal(format!("key retirement: {e}")),
        })?;
    // Gateways first: every second counts when a key leaked. A gateway that is not connected
    // fetches the key list when it reconnects (and every 30 s). The other nodes' gateways
    // get it from their node as soon as it reads the published key file.
    let gateways_notified = state
        .control
        .broadcast(&jitgate_gateway::wire::ControlDown::RetireKey { kid: kid.clone() });
    crate::cluster_keys::publish(&state, &[jitgate_credential::keyring::KEY_FILE_NAME]).await;
    let mut tx = state.store.write().await?;
    let retired = KeyRotated {
        key: KeyPurpose::TokenSigning,
        new_kid: None,
        previous_kid: None,
        retired_kid: Some(kid.clone()),
        now: Some(true),
        changed: Some(changed),
        gateways_notified: Some(gateways_notified.clone()),
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &retired,
    )?])
    .await?;
    tx.commit().await?;
    let info = state.keys_info();
    Ok(Json(KeyRetired {
        retired_kid: kid,
        changed,
        gateways_notified,
        current_kid: info.current_kid,
        keys: info.keys,
    }))
}

/// A gateway's delivery as parsed from the body: strings borrowed where they can be, each
/// event's `data` kept as the text it arrived in (written canonically from it). The
/// documented shape, and the errors for a body that does not fit, are
/// [`GatewayEventBatch`]'s.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveredBatch<'a> {
    #[serde(borrow)]
    events: Vec<DeliveredEvent<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveredEvent<'a> {
    gseq: i64,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    at: jitgate_core::Timestamp,
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
}
