//! Workloads' API keys (`/api-keys`): mint, list, revoke.
//!
//! A key stands on the person who minted it: it records its minter, expires (default
//! [`DEFAULT_LIFETIME_DAYS`], at most [`MAX_LIFETIME_DAYS`]), and stops working when its
//! workload or its minter is disabled. The minter never approves a request filed with it
//! (`jitgate_core::governance::conflict_of_interest`). Minting and revoking are events;
//! revoking re-decides every open request (those filed with the key lapse).

use super::extract::{ApiJson, ApiQuery};
use super::limits::{page_response, Page};
use super::types::{ApiError, ApiKeyCreateBody, ApiKeyCreated};
use crate::auth::{self, AuthVia, Caller};
use crate::error::{ApiResult, ServerError};
use crate::paging::{self, Collector};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use jitgate_core::event::Actor;
use jitgate_core::server_payload::{AuthEnrolled, AuthRevoked, Factor};
use jitgate_core::{Event, IdentityKind, Timestamp};
use jitgate_store::{ApiKeyRecord, Tx};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// Lifetime of a key minted without `expires_in`.
pub const DEFAULT_LIFETIME_DAYS: i64 = 90;
/// Longest lifetime a key may be minted with.
pub const MAX_LIFETIME_DAYS: i64 = 365;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", post(create_api_key).get(list_api_keys))
        .route("/api-keys/{id}/revoke", post(revoke_api_key))
}

#[derive(OpenApi)]
#[openapi(
    paths(create_api_key, list_api_keys, revoke_api_key),
    components(schemas(ApiKeyView, RevokeApiKeyBody, ApiKeyCreateBody, ApiKeyCreated))
)]
pub struct ApiKeysDoc;

/// A key as listed: never its secret nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    /// The workload it authenticates.
    pub identity: String,
    pub name: String,
    /// `None` for keys minted before minters were recorded.
    pub minted_by: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// `None` for keys minted before expiries existed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// `active`, `revoked`, `expired`, or `minter_disabled`.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKeyBody {
    /// Why (recorded in the evidence log).
    #[schema(max_length = 2000)]
    pub reason: String,
}

#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyQuery {
    /// Only keys of this workload.
    pub identity: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

fn view_of(k: ApiKeyRecord, status: &str) -> ApiKeyView {
    ApiKeyView {
        id: k.id,
        identity: k.identity,
        name: k.name,
        minted_by: k.minted_by,
        created_at: k.created_at,
        expires_at: k.expires_at,
        status: status.to_string(),
    }
}

async fn status_of(tx: &mut Tx, k: &ApiKeyRecord, now: Timestamp) -> ApiResult<&'static str> {
    Ok(if k.revoked {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else if !crate::context::key_record_usable(tx, k, now).await? {
        "minter_disabled"
    } else {
        "active"
    })
}

#[utoipa::path(post, path = "/api/v1/api-keys", request_body = ApiKeyCreateBody,
    responses((status = 200, body = ApiKeyCreated), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApiKeyCreateBody>,
) -> ApiResult<Json<ApiKeyCreated>> {
    let now = state.clock.now();
    if caller.via != AuthVia::Session || caller.identity.kind != IdentityKind::Human {
        // A key minting keys would let a leaked key outlive its revocation.
        return Err(ServerError::Forbidden(
            "API keys are minted by people signed in with `jitgate login`, not with an API key"
                .into(),
        ));
    }
    let lifetime = match &body.expires_in {
        None => chrono::Duration::days(DEFAULT_LIFETIME_DAYS),
        Some(text) => {
            let secs = crate::config::parse_duration_secs(text).map_err(|m| {
                ServerError::BadRequest(format!("expires_in {text:?}: {m}; e.g. 30d"))
            })?;
            if secs <= 0 || secs > MAX_LIFETIME_DAYS * 86_400 {
                return Err(ServerError::BadRequest(format!(
                    "expires_in must be between 1s and {MAX_LIFETIME_DAYS}d: a key that never expires is a standing credential"
                )));
            }
            chrono::Duration::seconds(secs)
        }
    };
    jitgate_core::governance::check_free_text("name", &body.name, false)?;
    let mut tx = state.store.write().await?;
    let target = tx
        .get_identity(&body.identity)
        .await?
        .ok_or_else(|| ServerError::not_found("identity", &body.identity))?;
    if target.kind != IdentityKind::Workload {
        return Err(ServerError::BadRequest(format!(
            "{} is a {}; API keys are for workloads — people log in with a password and TOTP",
            target.id,
            target.kind.as_str()
        )));
    }
    if !jitgate_core::access::may_manage_workload_keys(&caller.identity, &target) {
        return Err(ServerError::Forbidden(format!(
            "only an owner of {} ({}) or an admin can create its API keys",
            target.id,
            target.owners.join(", ")
        )));
    }
    if body.name.trim().is_empty() {
        return Err(ServerError::BadRequest(
            "name the key (e.g. where it is deployed)".into(),
        ));
    }
    let key = auth::new_token(auth::API_KEY_PREFIX);
    let id = crate::ids::new_id("key");
    let expires_at = now + lifetime;
    tx.insert_api_key(&ApiKeyRecord {
        id: id.clone(),
        identity: target.id.clone(),
        name: body.name.clone(),
        key_hash: auth::token_hash(&key),
        created_at: now,
        revoked: false,
        minted_by: Some(caller.id().to_string()),
        expires_at: Some(expires_at),
    })
    .await?;
    let enrolled = AuthEnrolled {
        factor: Factor::ApiKey,
        identity: Some(target.id.clone()),
        key_id: Some(id.clone()),
        name: Some(body.name.clone()),
        minted_by: Some(caller.id().to_string()),
        expires_at: Some(expires_at),
        fingerprint: None,
        enrolment: None,
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &enrolled,
    )?])
    .await?;
    tx.commit().await?;
    Ok(Json(ApiKeyCreated {
        id,
        key,
        expires_at: Some(expires_at),
    }))
}

#[utoipa::path(get, path = "/api/v1/api-keys", params(ApiKeyQuery),
    responses((status = 200, body = Vec<ApiKeyView>, description = "one page, oldest first; `x-next-cursor` names the next")))]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ApiKeyQuery>,
) -> ApiResult<Response> {
    let page = Page {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request("api-keys", &state.config.limits)?;
    let now = state.clock.now();
    let mut tx = state.store.read().await?;
    if let Some(after) = &page.after {
        // A cursor names a key the caller was shown; any other is refused like a garbled
        // one, so cursors cannot probe for keys the caller may not see.
        let shown = match tx.get_api_key(after).await? {
            Some(k) => visible_to(&mut tx, &caller, &k).await?,
            None => false,
        };
        if !shown {
            return Err(paging::invalid_cursor("api-keys"));
        }
    }
    let mut out = Collector::new(&page);
    let mut after = page.after.clone();
    loop {
        let keys = tx
            .list_api_keys_after(q.identity.as_deref(), after.as_deref(), page.batch())
            .await?;
        let end = (keys.len() as i64) < page.batch();
        for k in keys {
            if out.is_full() {
                break;
            }
            after = Some(k.id.clone());
            if visible_to(&mut tx, &caller, &k).await? {
                let status = status_of(&mut tx, &k, now).await?;
                out.push(view_of(k, status));
            }
        }
        if end || out.is_full() {
            break;
        }
    }
    Ok(page_response("api-keys", out.finish(), |k| k.id.clone()))
}

async fn visible_to(tx: &mut Tx, caller: &Caller, k: &ApiKeyRecord) -> ApiResult<bool> {
    let workload = tx.get_identity(&k.identity).await?;
    Ok(jitgate_core::access::may_see_api_key(
        &caller.identity,
        workload.as_ref(),
        k.minted_by.as_deref(),
    ))
}

#[utoipa::path(post, path = "/api/v1/api-keys/{id}/revoke", params(("id" = String, Path)), request_body = RevokeApiKeyBody,
    responses((status = 200, body = ApiKeyView), (status = 404, body = ApiError)))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeApiKeyBody>,
) -> ApiResult<Json<ApiKeyView>> {
    let now = state.clock.now();
    if body.reason.trim().is_empty() {
        return Err(ServerError::BadRequest(
            "revoking a key needs a reason (--reason)".into(),
        ));
    }
    jitgate_core::governance::check_free_text("reason", &body.reason, true)?;
    let mut tx = state.store.write().await?;
    let Some(k) = tx.get_api_key(&id).await? else {
        return Err(ServerError::not_found("API key", &id));
    };
    let workload = tx.get_identity(&k.identity).await?;
    let may = jitgate_core::access::may_revoke_api_key(
        &caller.identity,
        workload.as_ref(),
        k.minted_by.as_deref(),
    );
    if !may {
        // Same answer as for a key that does not exist: do not reveal which keys exist.
        return Err(ServerError::not_found("API key", &id));
    }
    let actor = Actor::identity(caller.id());
    let mut ended = Vec::new();
    if !k.revoked {
        tx.revoke_api_key(&id).await?;
        let revoked = AuthRevoked {
            factor: Factor::ApiKey,
            identity: k.identity.clone(),
            key_id: id.clone(),
            reason: body.reason.clone(),
        };
        tx.append_events(&[Event::with_payload(actor.clone(), now, &revoked)?])
            .await?;
        // Requests filed with the key stop standing; grants issued from them end.
        ended = crate::context::reconsider_open(&mut tx, &state, &actor).await?;
    }
    let k = tx
        .get_api_key(&id)
        .await?
        .ok_or_else(|| ServerError::not_found("API key", &id))?;
    let status = status_of(&mut tx, &k, now).await?;
    tx.commit().await?;
    crate::revocations::push_revocations(&state, &ended).await;
    Ok(Json(view_of(k, status)))
}
