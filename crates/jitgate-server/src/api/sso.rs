//! `/api/v1/auth/sso/...`: OIDC sign-in for people (docs/sso.md). No bearer: these start
//! and complete a sign-in. Mounted outside the console's cookie layer, so a stale console
//! cookie does not stand in the way of signing in again. The work is in [`crate::sso::flow`].

use super::extract::{ApiJson, ApiQuery, Peer};
use super::types::{ApiError, LoginResponse};
use crate::console::session as console_session;
use crate::error::{ApiResult, ServerError};
use crate::sso::flow::{self, CallbackQuery, Outcome, Start};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// The cookie that binds a console sign-in to the browser that started it. `SameSite=Lax`:
/// the provider's redirect back is a cross-site top-level navigation, which `Strict` cookies
/// do not follow.
pub const SSO_COOKIE: &str = "jitgate_sso";
const SSO_COOKIE_PATH: &str = "/api/v1/auth/sso/";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/sso/providers", get(providers))
        .route("/api/v1/auth/sso/redeem", post(redeem))
        .route("/api/v1/auth/sso/{provider}/start", get(start))
        .route("/api/v1/auth/sso/{provider}/cli", post(cli_start))
        .route("/api/v1/auth/sso/{provider}/callback", get(callback))
}

#[derive(OpenApi)]
#[openapi(
    paths(providers, start, cli_start, callback, redeem),
    components(schemas(SsoProvider, SsoCliStart, SsoCliStarted, SsoRedeem))
)]
pub struct SsoDoc;

/// A provider people may sign in with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SsoProvider {
    pub name: String,
    /// For "Sign in with <display_name>".
    pub display_name: String,
}

/// `POST /auth/sso/{provider}/cli`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoCliStart {
    /// The CLI listens on `http://127.0.0.1:<port>/callback`.
    pub port: u16,
    /// base64url SHA-256 of a random verifier the CLI keeps (PKCE S256).
    pub code_challenge: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SsoCliStarted {
    /// Open this in a browser.
    pub authorization_url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: jitgate_core::Timestamp,
}

/// `POST /auth/sso/redeem`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoRedeem {
    /// The code the server sent to the CLI's loopback address.
    pub code: String,
    /// The verifier whose challenge started the sign-in.
    pub code_verifier: String,
}

/// The providers of `[[sso.providers]]` (empty when SSO is not configured), by name, paged
/// like every list.
#[utoipa::path(get, path = "/api/v1/auth/sso/providers", security(()), params(super::limits::Page),
    responses((status = 200, body = [SsoProvider], description = "one page, by name; `x-next-cursor` names the next")))]
async fn providers(
    State(state): State<AppState>,
    super::extract::ApiQuery(page): super::extract::ApiQuery<super::limits::Page>,
) -> ApiResult<axum::response::Response> {
    let page = page.request("auth/sso/providers", &state.config.limits)?;
    let mut all: Vec<SsoProvider> = state
        .sso
        .list()
        .into_iter()
        .map(|(name, display_name)| SsoProvider { name, display_name })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut items: Vec<SsoProvider> = all
        .into_iter()
        .filter(|p| page.after.as_ref().is_none_or(|a| p.name > *a))
        .collect();
    let more = items.len() > page.limit;
    items.truncate(page.limit);
    let next = more.then(|| items.last().map(|p| p.name.clone())).flatten();
    Ok(super::limits::page_response_after(
        "auth/sso/providers",
        items,
        next,
    ))
}

fn sso_cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.config.console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SSO_COOKIE}={value}; Path={SSO_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn read_sso_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SSO_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn form(s: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Where the console shows a refused sign-in: the code and message in the fragment (never
/// sent to a server; the console shows them as text).
fn console_error(e: &ServerError) -> String {
    format!(
        "/console/#sso_error={}&message={}",
        e.code().as_str(),
        form(&e.to_string())
    )
}

/// Start a console sign-in: sets the browser-binding cookie and redirects (303) to the
/// provider. Refusals redirect to the console with `#sso_error=<code>&message=...`.
#[utoipa::path(get, path = "/api/v1/auth/sso/{provider}/start", security(()),
    params(("provider" = String, Path)),
    responses((status = 303, description = "to the provider's sign-in page, or to the console with the error")))]
async fn start(State(state): State<AppState>, Path(provider): Path<String>) -> Response {
    match flow::start(&state, &provider, Start::Console).await {
        Ok(s) => {
            let mut resp = see_other(&s.authorization_url);
            if let Some(c) = s
                .browser_cookie
                .as_deref()
                .and_then(|v| sso_cookie(&state, v, 600))
            {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => see_other(&console_error(&e)),
    }
}

/// Start a CLI sign-in (`jitgate login --sso`): the URL to open; the provider's callback
/// sends the browser to `http://127.0.0.1:<port>/callback?code=...` (or `?error=...`).
#[utoipa::path(post, path = "/api/v1/auth/sso/{provider}/cli", request_body = SsoCliStart, security(()),
    params(("provider" = String, Path)),
    responses((status = 200, body = SsoCliStarted), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 503, body = ApiError)))]
async fn cli_start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<SsoCliStart>,
) -> ApiResult<Json<SsoCliStarted>> {
    flow::check_cli_start(body.port, &body.code_challenge)?;
    let s = flow::start(
        &state,
        &provider,
        Start::Cli {
            port: body.port,
            challenge: body.code_challenge,
        },
    )
    .await?;
    Ok(Json(SsoCliStarted {
        authorization_url: s.authorization_url,
        expires_at: s.expires_at,
    }))
}

/// The provider's redirect back (register `<public URL>/api/v1/auth/sso/<provider>/callback`
/// at the provider). Console: sets the session cookie and redirects to the console. CLI:
/// redirects to the CLI's loopback address. Refusals: `auth.sso_refused` events, and a
/// redirect with the error code (`sso_state_mismatch`, `sso_provider_denied`,
/// `sso_code_rejected`, `token_malformed`, `unknown_issuer`, `wrong_audience`,
/// `token_bad_signature`, `token_expired`, `token_not_yet_valid`, `sso_nonce_mismatch`,
/// `token_replayed`, `sso_unmapped`, `identity_disabled`, `sso_unavailable`, `login_backoff`,
/// `locked_out`).
#[utoipa::path(get, path = "/api/v1/auth/sso/{provider}/callback", security(()),
    params(("provider" = String, Path), CallbackQuery),
    responses((status = 303, description = "to the console (signed in, or with the error) or to the CLI's loopback address")))]
async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    let cookie = read_sso_cookie(&headers);
    let clear = sso_cookie(&state, "", 0);
    let mut resp = match flow::callback(&state, &provider, &query, cookie.as_deref(), peer).await {
        Ok(Outcome::Cli { redirect }) => see_other(&redirect),
        Ok(Outcome::Console { session_token }) => {
            match console_session::start_cookie_session(&state, &session_token).await {
                Ok(cookie) => {
                    let mut resp = see_other("/console/");
                    resp.headers_mut().append(header::SET_COOKIE, cookie);
                    resp
                }
                Err(e) => see_other(&console_error(&e)),
            }
        }
        Err(refused) => match refused.cli_port {
            Some(port) => see_other(&format!(
                "http://127.0.0.1:{port}/callback?error={}&message={}",
                refused.error.code().as_str(),
                form(&refused.error.to_string())
            )),
            None => see_other(&console_error(&refused.error)),
        },
    };
    if let Some(c) = clear {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// Redeem a CLI sign-in: the code sent to the loopback address and the PKCE verifier, for a
/// session. `401 sso_handoff_rejected` when the code is unknown, used, expired, or the
/// verifier does not match.
#[utoipa::path(post, path = "/api/v1/auth/sso/redeem", request_body = SsoRedeem, security(()),
    responses((status = 200, body = LoginResponse), (status = 401, body = ApiError),
        (status = 429, body = ApiError)))]
async fn redeem(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<SsoRedeem>,
) -> ApiResult<Json<LoginResponse>> {
    flow::redeem(&state, &body.code, &body.code_verifier, peer)
        .await
        .map(Json)
}
