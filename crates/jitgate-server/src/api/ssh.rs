//! SSH credentials under a grant (docs/credentials.md, "SSH certificates"):
//!
//! - `GET /ssh/ca` — the public keys of jitgate's SSH user CA and host-access CA;
//! - `POST /grants/{id}/ssh-certificate` — the subject's OpenSSH user certificate for one
//!   asset, presented to the gateway;
//! - `POST /gateway/ssh/target-certificate` — gateways only: the certificate the gateway
//!   presents to the asset for one session, for the asset's account in the inventory.
//!
//! Who may have one, for how long and with which permissions is `jitgate_core::ssh`'s
//! decision; this loads the grant and asset, asks the core, signs, and records the
//! certificate and its `credential.issued` event in one transaction. Everything happens
//! under the write lock, so a grant revoked a moment earlier is seen as ended.

use super::extract::ApiJson;
use super::types::{
    ApiError, SshCaKeyView, SshCaView, SshCertificateBody, SshCertificateView,
    TargetCertificateBody,
};
use crate::auth::Caller;
use crate::error::{ApiResult, GatewayTrustCode, ServerError};
use crate::ssh_ca::{CaPublicKey, CaRole};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::event::{Actor, Event};
use jitgate_core::scope::Protocol;
use jitgate_core::server_payload::{SshCertificateIssued, SshCredential};
use jitgate_core::ssh::{self, CertificateKind, CertificatePlan, EarlierCertificate};
use jitgate_core::{Asset, Grant};
use jitgate_store::{SshCertificateRecord, Tx};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ssh/ca", get(ssh_ca))
        .route("/grants/{id}/ssh-certificate", post(user_certificate))
        .route("/gateway/ssh/target-certificate", post(target_certificate))
}

#[derive(OpenApi)]
#[openapi(
    paths(ssh_ca, user_certificate, target_certificate),
    components(schemas(
        SshCaView,
        SshCaKeyView,
        SshCertificateBody,
        TargetCertificateBody,
        SshCertificateView
    ))
)]
pub struct SshDoc;

fn key_view(k: CaPublicKey) -> SshCaKeyView {
    SshCaKeyView {
        public_key: k.public_key,
        fingerprint: k.fingerprint,
    }
}

/// The public keys of jitgate's SSH CAs, for any signed-in caller (they are public).
#[utoipa::path(get, path = "/api/v1/ssh/ca", responses((status = 200, body = SshCaView)))]
pub(crate) async fn ssh_ca(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<SshCaView>> {
    Ok(Json(SshCaView {
        user_ca: key_view(state.ssh_cas.public(CaRole::User)),
        host_access_ca: key_view(state.ssh_cas.public(CaRole::HostAccess)),
    }))
}

/// An OpenSSH user certificate for the grant's subject, on one asset of the grant's SSH
/// scope: key id = grant id, principal = the subject, valid from now until the grant's
/// expiry at the latest (and at most an hour), extensions from the scope.
#[utoipa::path(post, path = "/api/v1/grants/{id}/ssh-certificate", params(("id" = String, Path)),
    request_body = SshCertificateBody,
    responses((status = 200, body = SshCertificateView),
        (status = 403, body = ApiError, description = "not the grant's subject (`forbidden`), or no SSH scope on that asset (`asset_not_granted`)"),
        (status = 404, body = ApiError, description = "unknown grant, or one the caller may not see"),
        (status = 409, body = ApiError, description = "the grant is not active (`wrong_state`), or the key is certified for another grant (`public_key_reused`)"),
        (status = 422, body = ApiError, description = "`public_key` unusable (`invalid_ssh_public_key`), or the asset has no SSH endpoint (`scope_not_exposed`)")))]
pub(crate) async fn user_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SshCertificateBody>,
) -> ApiResult<Json<SshCertificateView>> {
    let key = crate::ssh_ca::parse_public_key(&body.public_key)
        .map_err(ServerError::InvalidSshPublicKey)?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let g = crate::visibility::grant_of_subject(&mut tx, &caller, &id).await?;
    let asset_id = match body.asset {
        Some(a) => a,
        None => only_ssh_asset(&g)?,
    };
    let asset = tx.get_asset(&asset_id).await?;
    let plan = ssh::user_certificate(&g, &caller.identity, &asset_id, has_ssh(&asset), now)?;
    let mut view = issue(
        &state,
        &mut tx,
        &g,
        &plan,
        &key,
        CaRole::User,
        &caller,
        None,
    )
    .await?;
    // Where to take the certificate, and the host key to expect there: learnt over the
    // server's authenticated channel, so the client need not trust the gateway on first use.
    let gateway = asset.as_ref().and_then(|a| a.gateway.clone());
    if let Some(gw) = gateway {
        if let Some(hello) = crate::control::announced(&mut tx, &gw).await? {
            view.gateway_ssh_address = hello.ssh_address;
            view.gateway_ssh_host_key = hello.ssh_host_key;
        }
    }
    tx.commit().await?;
    Ok(Json(view))
}

/// For a gateway, the certificate it presents to the asset for one session: signed by the
/// host-access CA, for the account the inventory names in the asset's SSH endpoint.
#[utoipa::path(post, path = "/api/v1/gateway/ssh/target-certificate", request_body = TargetCertificateBody,
    responses((status = 200, body = SshCertificateView),
        (status = 403, body = ApiError, description = "not a gateway (`forbidden`), a gateway that does not front the asset (`grant_not_fronted`), or no SSH scope on the asset (`asset_not_granted`)"),
        (status = 404, body = ApiError, description = "unknown grant or asset"),
        (status = 409, body = ApiError, description = "the grant is not active (`wrong_state`), or the key is certified for another grant (`public_key_reused`)"),
        (status = 422, body = ApiError, description = "`public_key` unusable (`invalid_ssh_public_key`), or the asset has no SSH endpoint or `account` (`scope_not_exposed`)")))]
pub(crate) async fn target_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TargetCertificateBody>,
) -> ApiResult<Json<SshCertificateView>> {
    caller.require_gateway()?;
    let key = crate::ssh_ca::parse_public_key(&body.public_key)
        .map_err(ServerError::InvalidSshPublicKey)?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let asset = tx
        .get_asset(&body.asset)
        .await?
        .ok_or_else(|| ServerError::not_found("asset", &body.asset))?;
    if asset.gateway.as_deref() != Some(caller.id()) {
        return Err(ServerError::GatewayTrust {
            code: GatewayTrustCode::GrantNotFronted,
            message: format!(
                "gateway {} does not front asset {}; only the gateway the inventory names for an asset obtains its target certificates",
                caller.id(),
                asset.id
            ),
        });
    }
    let g = tx
        .get_grant(&body.grant_id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", &body.grant_id))?;
    // A gateway learns nothing of grants on assets it does not front (as `/gateway/grants`).
    let mut fronts_any = false;
    for a in g.scope.assets() {
        if let Some(a) = tx.get_asset(&a).await? {
            fronts_any |= a.gateway.as_deref() == Some(caller.id());
        }
    }
    if !fronts_any {
        return Err(ServerError::not_found("grant", &body.grant_id));
    }
    let endpoint = asset.endpoints.ssh.as_ref();
    let plan = ssh::target_certificate(
        &g,
        &asset.id,
        endpoint.is_some(),
        endpoint.and_then(|s| s.account.as_deref()),
        endpoint.map(|s| s.auth).unwrap_or_default(),
        now,
    )?;
    let view = issue(
        &state,
        &mut tx,
        &g,
        &plan,
        &key,
        CaRole::HostAccess,
        &caller,
        Some(caller.id().to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view))
}

fn has_ssh(asset: &Option<Asset>) -> bool {
    asset.as_ref().is_some_and(|a| a.endpoints.ssh.is_some())
}

fn only_ssh_asset(g: &Grant) -> ApiResult<String> {
    let mut ssh_assets: Vec<&str> = g
        .scope
        .items()
        .iter()
        .filter(|i| i.protocol() == Protocol::Ssh)
        .map(|i| i.asset())
        .collect();
    ssh_assets.dedup();
    match ssh_assets.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(jitgate_core::CoreError::AssetNotGranted {
            grant: g.id.clone(),
            asset: "any asset".into(),
            what: "SSH access".into(),
            hint: "request SSH access (`--ssh shell`, `--ssh 'command …'`, `--ssh sftp`, `--ssh 'forward host:port'`)".into(),
        }
        .into()),
        many => Err(ServerError::BadRequest(format!(
            "grant {} gives SSH access on several assets ({}); name one with `asset` (`--asset`)",
            g.id,
            many.join(", ")
        ))),
    }
}

/// One key, one grant (the core's rule over what was certified before), then sign, record
/// and log — in the caller's write transaction.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per kind; a struct would only rename them"
)]
async fn issue(
    state: &AppState,
    tx: &mut Tx,
    g: &Grant,
    plan: &CertificatePlan,
    key: &ssh_key::PublicKey,
    role: CaRole,
    caller: &Caller,
    gateway: Option<String>,
) -> ApiResult<SshCertificateView> {
    let key_fingerprint = crate::ssh_ca::fingerprint(key.key_data());
    let earlier = tx.ssh_certificates_for_key(&key_fingerprint).await?;
    let earlier: Vec<EarlierCertificate<'_>> = earlier
        .iter()
        .map(|c| EarlierCertificate {
            grant_id: &c.grant_id,
            kind: if c.kind == CertificateKind::User.as_str() {
                CertificateKind::User
            } else {
                CertificateKind::Target
            },
            principal: &c.principal,
        })
        .collect();
    ssh::check_key_reuse(plan, &earlier)?;
    let signed = state
        .ssh_cas
        .sign(role, plan, key)
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let now = state.clock.now();
    tx.insert_ssh_certificate(&SshCertificateRecord {
        serial: signed.serial.to_string(),
        grant_id: g.id.clone(),
        kind: plan.kind.as_str().to_string(),
        asset: plan.asset.clone(),
        principal: plan.principal.clone(),
        key_fingerprint: key_fingerprint.clone(),
        valid_after: plan.valid_after,
        valid_before: plan.valid_before,
        issued_at: now,
    })
    .await?;
    let extensions: Vec<String> = plan
        .permissions
        .extensions()
        .into_iter()
        .map(String::from)
        .collect();
    let issued = SshCertificateIssued {
        credential: match plan.kind {
            CertificateKind::User => SshCredential::SshUserCertificate,
            CertificateKind::Target => SshCredential::SshTargetCertificate,
        },
        asset: plan.asset.clone(),
        key_id: plan.key_id.clone(),
        principal: plan.principal.clone(),
        serial: signed.serial.to_string(),
        key_fingerprint: key_fingerprint.clone(),
        ca_fingerprint: signed.ca_fingerprint.clone(),
        valid_after: plan.valid_after,
        valid_before: plan.valid_before,
        extensions: extensions.clone(),
        force_command: plan.permissions.force_command.clone(),
        gateway,
    };
    tx.append_events(&[
        Event::with_payload(Actor::identity(caller.id()), now, &issued)?
            .request(&g.request_id)
            .grant(&g.id),
    ])
    .await?;
    Ok(SshCertificateView {
        certificate: signed.line,
        key_id: plan.key_id.clone(),
        principals: vec![plan.principal.clone()],
        serial: signed.serial.to_string(),
        valid_after: plan.valid_after,
        valid_before: plan.valid_before,
        extensions,
        force_command: plan.permissions.force_command.clone(),
        asset: plan.asset.clone(),
        key_fingerprint,
        ca_fingerprint: signed.ca_fingerprint,
        gateway_ssh_address: None,
        gateway_ssh_host_key: None,
    })
}
