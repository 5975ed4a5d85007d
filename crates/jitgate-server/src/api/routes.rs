//! Handlers of `/api/v1`. Each authenticates its caller ([`Caller`]) and authorizes the
//! action, then calls `service` (lifecycle) or the store (simple reads). The `#[utoipa::path]`
//! annotations feed `/openapi.json`.

use super::extract::{ApiJson, ApiQuery, Peer};
use super::limits::{page_response, Page};
use super::types::*;
use crate::auth::{self, AuthVia, Caller};
use crate::error::{ApiResult, ServerError};
use crate::paging::page_of;
use crate::service::{self, GrantQuery, RequestQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_core::event::Actor;
use jitgate_core::{
    ApprovalVerdict, Asset, EndReason, Identity, IdentityKind, IdentityStatus, Inventory, Org, Site,
};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout/everywhere", post(logout_everywhere))
        .route("/auth/password", post(change_password))
        .route("/auth/whoami", get(whoami))
        .route("/auth/totp/enroll", post(totp_enroll))
        .route("/auth/totp/confirm", post(totp_confirm))
        .route("/identities", get(list_identities))
        .route("/identities/{id}", get(get_identity).put(put_identity))
        .route("/identities/{id}/disable", post(disable_identity))
        .route("/identities/{id}/enable", post(enable_identity))
        .route("/identities/{id}/password", post(set_password))
        .route("/identities/{id}/unlock", post(unlock_identity))
        .route("/assets", get(list_assets))
        .route("/assets/{id}", get(get_asset).put(put_asset))
        .route("/sites", get(list_sites))
        .route("/sites/{id}", axum::routing::put(put_site))
        .route("/orgs", get(list_orgs))
        .route("/orgs/{id}", axum::routing::put(put_org))
        .route("/inventory", post(load_inventory))
        .route("/requests", get(list_requests).post(create_request))
        .route("/requests/{id}", get(get_request))
        .route("/requests/{id}/approve", post(approve))
        .route("/requests/{id}/deny", post(deny))
        .route("/requests/{id}/withdraw", post(withdraw))
        .route("/grants", get(list_grants))
        .route("/grants/{id}", get(get_grant))
        .route("/grants/{id}/revoke", post(revoke))
        .route("/grants/{id}/complete", post(complete))
        .route("/policies", get(policy_info))
        .route("/policies/reload", post(policy_reload))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "jitgate API", description = "Just-in-time privileged access for OT: requests, decisions, approvals, grants, evidence."),
    paths(
        login, logout, whoami, totp_enroll, totp_confirm,
        change_password, logout_everywhere, unlock_identity,
        list_identities, get_identity, put_identity, disable_identity, enable_identity, set_password,
        list_assets, get_asset, put_asset, list_sites, put_site, list_orgs, put_org, load_inventory,
        create_request, list_requests, get_request, approve, deny, withdraw,
        list_grants, get_grant, revoke, complete, policy_info, policy_reload,
        super::evidence::list_events, super::evidence::chain_status, super::evidence::verify_log,
        super::evidence::list_checkpoints, super::evidence::sign_checkpoint,
        super::evidence::evidence_keys, super::evidence::rotate_evidence_key,
        super::evidence::witness_checkpoint, super::evidence::witness_cosignatures,
        super::evidence::witness_alarm,
        super::evidence::export_bundle, super::evidence::grant_report,
        super::gateway::hello, super::gateway::grant_status, super::gateway::gateway_events,
        super::gateway::issue_token, super::gateway::keys_info, super::gateway::rotate_keys,
        super::gateway::retire_key,
    ),
    components(schemas(ApiError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

// ---------------------------------------------------------------- authentication

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginBody, security(()),
    responses((status = 200, body = LoginResponse), (status = 401, body = ApiError),
        (status = 429, body = ApiError), (status = 503, body = ApiError)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<LoginResponse>> {
    crate::login::sign_in(
        &state,
        &body.identity,
        &body.password,
        body.totp.as_deref(),
        peer,
    )
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = ChangePasswordBody,
    responses((status = 200, body = SessionsEnded), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 429, body = ApiError)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> ApiResult<Json<SessionsEnded>> {
    let keep = bearer_hash(&headers);
    let sessions_ended = crate::login::change_own_password(
        &state,
        &caller,
        keep.as_deref(),
        &body.current,
        &body.new,
        body.totp.as_deref(),
    )
    .await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout/everywhere", responses((status = 200, body = SessionsEnded)))]
async fn logout_everywhere(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SessionsEnded>> {
    let sessions_ended = crate::login::logout_everywhere(&state, &caller).await?;
    Ok(Json(SessionsEnded { sessions_ended }))
}

#[utoipa::path(post, path = "/api/v1/identities/{id}/unlock", params(("id" = String, Path)),
    responses((status = 200, body = UnlockView), (status = 403, body = ApiError)))]
async fn unlock_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<UnlockView>> {
    crate::login::unlock(&state, &caller, &id).await.map(Json)
}

/// The SHA-256 of the bearer token of this request, if any.
fn bearer_hash(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| auth::token_hash(t.trim()))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", security((), ("bearer" = [])), responses((status = 204, description = "signed out, or nothing to sign out of")))]
async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    if let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let mut tx = state.store.write().await?;
        tx.delete_session(&auth::token_hash(token.trim())).await?;
        tx.commit().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = ApiError)))]
async fn whoami(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<WhoAmI>> {
    let mut tx = state.store.read().await?;
    let totp_enrolled = tx.get_totp(caller.id()).await?.is_some_and(|t| t.confirmed);
    Ok(Json(WhoAmI {
        auth: match caller.via {
            AuthVia::Session => "session".into(),
            AuthVia::ApiKey => "api_key".into(),
        },
        auth_method: caller.method.as_str().into(),
        identity: caller.identity,
        totp_enrolled,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/totp/enroll", responses((status = 200, body = TotpEnrollResponse), (status = 409, body = ApiError)))]
async fn totp_enroll(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TotpEnrollResponse>> {
    if caller.identity.kind == IdentityKind::Workload {
        return Err(ServerError::Forbidden(
            "workloads authenticate with API keys, not TOTP".into(),
        ));
    }
    let mut tx = state.store.write().await?;
    if tx.get_totp(caller.id()).await?.is_some_and(|t| t.confirmed) {
        return Err(ServerError::Forbidden(
            "TOTP is already enrolled; an administrator must reset it before enrolling a new device".into(),
        ));
    }
    let secret = auth::new_totp_secret();
    let sealed = state.totp_key.seal(caller.id(), &secret)?;
    tx.set_totp(caller.id(), &sealed, false).await?;
    tx.commit().await?;
    let otpauth_url = auth::totp_url(&secret, caller.id())?;
    Ok(Json(TotpEnrollResponse {
        secret,
        otpauth_url,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", request_body = TotpCodeBody, responses((status = 204), (status = 401, body = ApiError)))]
async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TotpCodeBody>,
) -> ApiResult<StatusCode> {
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    let Some(rec) = tx.get_totp(caller.id()).await? else {
        return Err(ServerError::BadRequest(
            "no TOTP enrolment in progress; run `jitgate totp enroll` first".into(),
        ));
    };
    drop(tx);
    if rec.confirmed {
        return Err(ServerError::BadRequest("TOTP is already confirmed".into()));
    }
    crate::login::step_up(
        &state,
        caller.id(),
        &body.code,
        jitgate_core::payload::AuthStage::TotpConfirm,
    )
    .await?;
    let mut tx = state.store.write().await?;
    tx.set_totp(caller.id(), &rec.secret_b32, true).await?;
    let enrolled = jitgate_core::server_payload::AuthEnrolled {
        factor: jitgate_core::server_payload::Factor::Totp,
        identity: None,
        key_id: None,
        name: None,
        minted_by: None,
        expires_at: None,
        fingerprint: None,
        enrolment: None,
    };
    tx.append_events(&[jitgate_core::Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &enrolled,
    )?])
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- inventory

#[utoipa::path(get, path = "/api/v1/identities", params(Page), responses((status = 200, body = Vec<Identity>, description = "one page; `x-next-cursor` names the next")))]
async fn list_identities(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    let page = page.request("identities", &state.config.limits)?;
    let Json(all) = visible_identities(State(state.clone()), caller).await?;
    let key = |i: &Identity| i.id.clone();
    Ok(page_response("identities", page_of(&page, all, key), key))
}

/// The identities `caller` may see.
async fn visible_identities(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Identity>>> {
    let mut tx = state.store.read().await?;
    let all = tx.list_identities().await?;
    let me = &caller.identity;
    let visible = all
        .into_iter()
        .filter(|i| match me.kind {
            _ if caller.sees_everything() => true,
            IdentityKind::Human => true,
            IdentityKind::Vendor => i.id == me.id || (i.org.is_some() && i.org == me.org),
            IdentityKind::Workload => i.id == me.id,
        })
        .collect();
    Ok(Json(visible))
}

#[utoipa::path(get, path = "/api/v1/identities/{id}", params(("id" = String, Path)), responses((status = 200, body = Identity), (status = 404, body = ApiError)))]
async fn get_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Identity>> {
    let Json(all) = visible_identities(State(state), caller).await?;
    all.into_iter()
        .find(|i| i.id == id)
        .map(Json)
        .ok_or_else(|| ServerError::not_found("identity", &id))
}

#[utoipa::path(put, path = "/api/v1/identities/{id}", params(("id" = String, Path)), request_body = Identity, responses((status = 200, body = Identity)))]
async fn put_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Identity>,
) -> ApiResult<Json<Identity>> {
    caller.require_admin()?;
    same_id(&id, &body.id)?;
    let mut tx = state.store.read().await?;
    service::validate_identity_refs(&mut tx, &body).await?;
    drop(tx);
    let inv = Inventory {
        identities: vec![body.clone()],
        ..Default::default()
    };
    service::load_inventory(&state, Actor::identity(caller.id()), &inv).await?;
    Ok(Json(body))
}

#[utoipa::path(post, path = "/api/v1/identities/{id}/disable", params(("id" = String, Path)), request_body = ReasonBody, responses((status = 200, body = Identity)))]
async fn disable_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> ApiResult<Json<Identity>> {
    jitgate_core::governance::check_free_text("reason", &body.reason, true)?;
    service::set_identity_status(&state, &caller, &id, IdentityStatus::Disabled, &body.reason)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/identities/{id}/enable", params(("id" = String, Path)), responses((status = 200, body = Identity)))]
async fn enable_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Identity>> {
    service::set_identity_status(&state, &caller, &id, IdentityStatus::Active, "")
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/identities/{id}/password", params(("id" = String, Path)), request_body = PasswordBody, responses((status = 204)))]
async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    if caller.id() == id {
        return Err(ServerError::BadRequest(
            "change your own password with your current one: `jitgate password` (POST /auth/password)".into(),
        ));
    }
    let mut tx = state.store.read().await?;
    let target = tx
        .get_identity(&id)
        .await?
        .ok_or_else(|| ServerError::not_found("identity", &id))?;
    drop(tx);
    if target.kind == IdentityKind::Workload {
        return Err(ServerError::BadRequest(
            "workloads use API keys (`jitgate apikey create`), not passwords".into(),
        ));
    }
    crate::login::reset_password(&state, &caller, &id, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/assets", params(Page), responses((status = 200, body = Vec<Asset>, description = "one page; `x-next-cursor` names the next")))]
async fn list_assets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    let page = page.request("assets", &state.config.limits)?;
    let assets = state.store.read().await?.list_assets().await?;
    let all = assets.into_iter().map(|a| for_caller(&caller, a)).collect();
    let key = |a: &Asset| a.id.clone();
    Ok(page_response("assets", page_of(&page, all, key), key))
}

/// An asset as `caller` may see it: device addresses only for those with a reason to know
/// them (`jitgate_core::access::may_see_device_addresses`); others reach devices through a
/// gateway and get what they need in their grant's credential.
fn for_caller(caller: &Caller, mut a: Asset) -> Asset {
    if !jitgate_core::access::may_see_device_addresses(&caller.identity) {
        const HIDDEN: &str = "(hidden: reached through the gateway)";
        if let Some(m) = &mut a.endpoints.modbus {
            m.address = HIDDEN.into();
        }
        if let Some(d) = &mut a.endpoints.dnp3 {
            d.address = HIDDEN.into();
        }
        if let Some(s) = &mut a.endpoints.ssh {
            s.host = HIDDEN.into();
        }
    }
    a
}

#[utoipa::path(get, path = "/api/v1/assets/{id}", params(("id" = String, Path)), responses((status = 200, body = Asset), (status = 404, body = ApiError)))]
async fn get_asset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Asset>> {
    state
        .store
        .read()
        .await?
        .get_asset(&id)
        .await?
        .map(|a| Json(for_caller(&caller, a)))
        .ok_or_else(|| ServerError::not_found("asset", &id))
}

#[utoipa::path(put, path = "/api/v1/assets/{id}", params(("id" = String, Path)), request_body = Asset, responses((status = 200, body = Asset)))]
async fn put_asset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Asset>,
) -> ApiResult<Json<Asset>> {
    caller.require_admin()?;
    same_id(&id, &body.id)?;
    let mut tx = state.store.read().await?;
    let sites = tx.list_sites().await?;
    drop(tx);
    let site_map = sites.iter().map(|s| (s.id.as_str(), s)).collect();
    jitgate_core::inventory::validate_asset(&body, &site_map)?;
    let inv = Inventory {
        assets: vec![body.clone()],
        ..Default::default()
    };
    service::load_inventory(&state, Actor::identity(caller.id()), &inv).await?;
    Ok(Json(body))
}

/// PUT bodies carry their id; it must be the one in the path.
fn same_id(path: &str, body: &str) -> ApiResult<()> {
    if path == body {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format!(
            "body id {body} differs from path id {path}"
        )))
    }
}

/// Upsert a one-entry inventory (a site or an org), checked like a loaded file.
async fn upsert(state: &AppState, caller: &Caller, inv: Inventory) -> ApiResult<()> {
    inv.validate()?;
    service::load_inventory(state, Actor::identity(caller.id()), &inv).await
}

#[utoipa::path(get, path = "/api/v1/sites", params(Page), responses((status = 200, body = Vec<Site>, description = "one page; `x-next-cursor` names the next")))]
async fn list_sites(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    let page = page.request("sites", &state.config.limits)?;
    let all = state.store.read().await?.list_sites().await?;
    let key = |s: &Site| s.id.clone();
    Ok(page_response("sites", page_of(&page, all, key), key))
}

#[utoipa::path(put, path = "/api/v1/sites/{id}", params(("id" = String, Path)), request_body = Site, responses((status = 200, body = Site)))]
async fn put_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Site>,
) -> ApiResult<Json<Site>> {
    caller.require_admin()?;
    same_id(&id, &body.id)?;
    upsert(
        &state,
        &caller,
        Inventory {
            sites: vec![body.clone()],
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(body))
}

#[utoipa::path(get, path = "/api/v1/orgs", params(Page), responses((status = 200, body = Vec<Org>, description = "one page; `x-next-cursor` names the next")))]
async fn list_orgs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Response> {
    let page = page.request("orgs", &state.config.limits)?;
    let all = state.store.read().await?.list_orgs().await?;
    let me = &caller.identity;
    let visible: Vec<Org> = all
        .into_iter()
        .filter(|o| {
            caller.sees_everything()
                || me.kind == IdentityKind::Human
                || me.org.as_deref() == Some(o.id.as_str())
        })
        .collect();
    let key = |o: &Org| o.id.clone();
    Ok(page_response("orgs", page_of(&page, visible, key), key))
}

#[utoipa::path(put, path = "/api/v1/orgs/{id}", params(("id" = String, Path)), request_body = Org, responses((status = 200, body = Org)))]
async fn put_org(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Org>,
) -> ApiResult<Json<Org>> {
    caller.require_admin()?;
    same_id(&id, &body.id)?;
    upsert(
        &state,
        &caller,
        Inventory {
            orgs: vec![body.clone()],
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(body))
}

#[utoipa::path(post, path = "/api/v1/inventory", request_body = InventoryLoadBody, responses((status = 200, body = InventorySummary), (status = 422, body = ApiError)))]
async fn load_inventory(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<InventoryLoadBody>,
) -> ApiResult<Json<InventorySummary>> {
    caller.require_admin()?;
    let inv = Inventory::from_toml(&body.toml)?;
    service::load_inventory(&state, Actor::identity(caller.id()), &inv).await?;
    Ok(Json(InventorySummary {
        sites: inv.sites.len(),
        orgs: inv.orgs.len(),
        identities: inv.identities.len(),
        assets: inv.assets.len(),
    }))
}

// ---------------------------------------------------------------- requests

#[utoipa::path(post, path = "/api/v1/requests", request_body = NewRequestBody,
    responses((status = 201, body = RequestView, description = "filed; `state` is `denied` when policy said no (see `decision.reasons`)"), (status = 422, body = ApiError), (status = 404, body = ApiError)))]
async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewRequestBody>,
) -> ApiResult<(StatusCode, Json<RequestView>)> {
    check_request_limits(&state, &caller, &body).await?;
    let view = service::submit_request(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `[limits] max_scope_items` and `max_open_requests`, checked before anything is decided.
async fn check_request_limits(
    state: &AppState,
    caller: &Caller,
    body: &NewRequestBody,
) -> ApiResult<()> {
    let limits = &state.config.limits;
    let rules: usize = body
        .scope
        .iter()
        .map(|s| (s.modbus.len() + s.dnp3.len() + s.ssh.len()).max(1))
        .sum();
    jitgate_core::governance::check_scope_size(body.scope.len(), rules, limits.max_scope_items)?;
    let mut tx = state.store.read().await?;
    let open =
        crate::service::open_requests(&mut tx, caller.id(), limits.max_open_requests).await?;
    drop(tx);
    jitgate_core::governance::check_open_requests(caller.id(), open, limits.max_open_requests)?;
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/requests", params(RequestQuery), responses((status = 200, body = Vec<RequestView>, description = "one page; `x-next-cursor` names the next")))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<RequestQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request("requests", &state.config.limits)?;
    let listed = service::list_requests(&state, &caller, q, &page).await?;
    Ok(page_response("requests", listed, |r| r.request.id.clone()))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", params(("id" = String, Path)), responses((status = 200, body = RequestView), (status = 404, body = ApiError)))]
async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    service::get_request_view(&state, &caller, &id)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", params(("id" = String, Path)), request_body = ApproveBody,
    responses((status = 200, body = RequestView), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> ApiResult<Json<RequestView>> {
    service::decide(
        &state,
        &caller,
        &id,
        ApprovalVerdict::Approve,
        Some(body.scope_digest),
        body.comment,
        body.totp,
    )
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/deny", params(("id" = String, Path)), request_body = DenyBody,
    responses((status = 200, body = RequestView), (status = 403, body = ApiError)))]
async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DenyBody>,
) -> ApiResult<Json<RequestView>> {
    service::decide(
        &state,
        &caller,
        &id,
        ApprovalVerdict::Deny,
        body.scope_digest,
        body.comment,
        None,
    )
    .await
    .map(Json)
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", params(("id" = String, Path)), responses((status = 200, body = RequestView)))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    service::withdraw(&state, &caller, &id).await.map(Json)
}

// ---------------------------------------------------------------- grants

#[utoipa::path(get, path = "/api/v1/grants", params(GrantQuery), responses((status = 200, body = Vec<GrantView>, description = "one page; `x-next-cursor` names the next")))]
async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<GrantQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.take(),
    }
    .request("grants", &state.config.limits)?;
    let listed = service::list_grants(&state, &caller, q, &page).await?;
    Ok(page_response("grants", listed, |g| g.grant.id.clone()))
}

#[utoipa::path(get, path = "/api/v1/grants/{id}", params(("id" = String, Path)), responses((status = 200, body = GrantView), (status = 404, body = ApiError)))]
async fn get_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    service::get_grant_view(&state, &caller, &id)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", params(("id" = String, Path)), request_body = ReasonBody, responses((status = 200, body = GrantView), (status = 403, body = ApiError)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> ApiResult<Json<GrantView>> {
    let reason = EndReason::Revoked {
        by: caller.id().to_string(),
        reason: body.reason,
    };
    service::end_grant(&state, &caller, &id, reason)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/complete", params(("id" = String, Path)), responses((status = 200, body = GrantView), (status = 403, body = ApiError)))]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    let reason = EndReason::Completed {
        by: caller.id().to_string(),
    };
    service::end_grant(&state, &caller, &id, reason)
        .await
        .map(Json)
}

// The event log and evidence endpoints are in `super::evidence`.

// ---------------------------------------------------------------- policies

#[utoipa::path(get, path = "/api/v1/policies", responses((status = 200, body = PolicyInfo)))]
async fn policy_info(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<PolicyInfo>> {
    Ok(Json(crate::policy::info(&state.policies())))
}

#[utoipa::path(post, path = "/api/v1/policies/reload", responses((status = 200, body = PolicyInfo), (status = 422, body = ApiError)))]
async fn policy_reload(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<PolicyInfo>> {
    caller.require_admin()?;
    crate::context::reload_policies(&state, Actor::identity(caller.id()))
        .await
        .map(Json)
}
