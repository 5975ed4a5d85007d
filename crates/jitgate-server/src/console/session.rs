//! Console sign-in: a cookie holding an ordinary `jgs_` session token, and the CSRF token
//! tied to it.
//!
//! - The cookie is `HttpOnly` (page scripts never see the token), `SameSite=Strict` (no
//!   other site's page makes the browser send it) and, unless `[console] secure_cookie =
//!   false`, `Secure` with the `__Host-` prefix (HTTPS or loopback only, this host only).
//! - The CSRF token is a digest of the session token: it changes with every sign-in, needs
//!   no server-side storage (several servers on one PostgreSQL agree on it), and a page of
//!   another origin cannot learn it. Every state-changing call that authenticates with the
//!   cookie must send it in `X-CSRF-Token`, and must not come from another origin.
//! - Idle timeout: a console session is stored with a short expiry that each action of the
//!   person moves forward (never past `session_ttl` after sign-in). Background refreshes,
//!   marked `X-Jitgate-Background: 1` by the console, and the event stream do not count as
//!   activity, so a screen left open still signs out.

use crate::api::extract::ApiJson;
use crate::api::types::{ApiError, LoginBody};
use crate::auth::{self, Caller};
use crate::error::{ApiResult, ServerError};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use jitgate_core::{Identity, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Cookie name when `Secure`: the `__Host-` prefix makes browsers refuse it unless it is
/// Secure, host-only and for path `/`.
pub const COOKIE_SECURE: &str = "__Host-jitgate_session";
/// Cookie name with `secure_cookie = false` (the prefix would make browsers drop it).
pub const COOKIE_PLAIN: &str = "jitgate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Marks a request the console made on its own (a refresh after a live event or a timer):
/// it does not extend the idle timeout.
pub const BACKGROUND_HEADER: &str = "x-jitgate-background";

/// What the console knows about its session (`POST /console/login`, `GET /console/me`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleSession {
    pub identity: Identity,
    /// Send as `X-CSRF-Token` on every POST/PUT/DELETE.
    pub csrf_token: String,
    pub idle_timeout_secs: i64,
    pub totp_enrolled: bool,
    /// Roles the console uses to decide which views to offer (the API decides the rest).
    pub sees_everything: bool,
}

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.console.secure_cookie {
        COOKIE_SECURE
    } else {
        COOKIE_PLAIN
    }
}

/// The CSRF token of a session: unguessable without the session token, fixed for its life.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"jitgate-console-csrf/v1\0");
    h.update(session_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The session token in the request's console cookie, if any.
pub fn session_cookie(headers: &HeaderMap, state: &AppState) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && v.starts_with(auth::SESSION_PREFIX))
        .map(|(_, v)| v.to_string())
}

fn cookie_header(state: &AppState, value: &str, max_age: i64) -> ApiResult<HeaderValue> {
    let secure = if state.config.console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(state)
    ))
    .map_err(|e| ServerError::Internal(format!("cookie header: {e}")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `403 csrf_refused`: a state-changing call with the cookie but without proof that the
/// console itself made it.
fn csrf_refused(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(ApiError {
            code: jitgate_core::Code::CsrfRefused.as_str().into(),
            message: message.to_string(),
        }),
    )
        .into_response()
}

/// Refuse requests a browser marks as coming from another origin. Browsers send `Origin` on
/// every cross-origin request and on same-origin POSTs; its absence (non-browser clients)
/// is not proof of anything either way, the CSRF token is.
/// `Err` holds the refusal's message.
fn check_origin(headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(format!(
                "refused: the browser says this request came from another site or origin ({site}); use the console at this server's own address"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let same = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !same {
            return Err(format!(
                "refused: a page of {origin} may not act on this console; open the console at this server's own address"
            ));
        }
    }
    Ok(())
}

fn secs(state: &AppState) -> ApiResult<(i64, i64)> {
    let idle = state
        .config
        .console
        .idle_timeout_secs()
        .map_err(ServerError::Internal)?;
    let ttl = state
        .config
        .session_ttl_secs()
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok((idle, ttl))
}

/// Check the console session is still alive; when `active`, move its idle deadline forward
/// (at most once every minute or so, to keep writes rare).
pub(crate) async fn touch(state: &AppState, token: &str, active: bool) -> ApiResult<()> {
    let (idle, ttl) = secs(state)?;
    let now = state.clock.now();
    let hash = auth::token_hash(token);
    let session = state.store.read().await?.get_session(&hash).await?;
    let Some(session) = session else {
        return Err(ServerError::Unauthenticated(
            "you are signed out (signed out elsewhere, or the server forgot the session); sign in again".into(),
        ));
    };
    if session.expires_at <= now {
        return Err(ServerError::Unauthenticated(format!(
            "your console session ended after {} without activity (or {} after sign-in); sign in again",
            humantime::format_duration(std::time::Duration::from_secs(idle.unsigned_abs())),
            humantime::format_duration(std::time::Duration::from_secs(ttl.unsigned_abs())),
        )));
    }
    let slack = (idle / 4).min(60);
    if active && (session.expires_at - now).num_seconds() < idle - slack {
        let until = slide(session.created_at, now, idle, ttl);
        if until > session.expires_at {
            let mut tx = state.store.write().await?;
            tx.set_session_expiry(&hash, until).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// The next idle deadline: `idle` from now, never past the absolute lifetime.
fn slide(created_at: Timestamp, now: Timestamp, idle: i64, ttl: i64) -> Timestamp {
    (now + chrono::Duration::seconds(idle)).min(created_at + chrono::Duration::seconds(ttl))
}

/// The layer in front of `/api/v1`: a request with the console cookie (and no
/// `Authorization` header) is checked for CSRF if it changes state, keeps the session
/// alive, and reaches the handlers as if it carried the session token as a bearer.
pub async fn cookie_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let Some(token) = session_cookie(req.headers(), &state) else {
        return next.run(req).await;
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let Some(sent) = req.headers().get(CSRF_HEADER) else {
            return csrf_refused(
                "refused: this change came with the console's session cookie but without its CSRF token (X-CSRF-Token); reload the console and try again",
            );
        };
        if !constant_time_eq(sent.as_bytes(), csrf_token(&token).as_bytes()) {
            return csrf_refused(
                "refused: the CSRF token does not belong to this session; reload the console and try again",
            );
        }
        if let Err(refused) = check_origin(req.headers()) {
            return csrf_refused(&refused);
        }
    }
    let active = !req.headers().contains_key(BACKGROUND_HEADER);
    if let Err(e) = touch(&state, &token, active).await {
        return e.into_response();
    }
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        Err(_) => {
            return ServerError::Unauthenticated("malformed session cookie; sign in again".into())
                .into_response()
        }
    }
    next.run(req).await
}

async fn session_view(state: &AppState, token: &str, caller: Caller) -> ApiResult<ConsoleSession> {
    let (idle, _) = secs(state)?;
    let totp_enrolled = state
        .store
        .read()
        .await?
        .get_totp(caller.id())
        .await?
        .is_some_and(|t| t.confirmed);
    Ok(ConsoleSession {
        sees_everything: caller.sees_everything(),
        identity: caller.identity,
        csrf_token: csrf_token(token),
        idle_timeout_secs: idle,
        totp_enrolled,
    })
}

/// `POST /console/login` `{identity, password, totp?}`: the API's login, answered with the
/// session in a cookie instead of the body.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: crate::api::extract::Peer,
    body: ApiJson<LoginBody>,
) -> Response {
    if let Err(refused) = check_origin(&headers) {
        return csrf_refused(&refused);
    }
    match login_inner(&state, peer, body).await {
        Ok(resp) => crate::console::harden(resp),
        Err(e) => e.into_response(),
    }
}

async fn login_inner(
    state: &AppState,
    peer: crate::api::extract::Peer,
    body: ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let Json(logged_in) = crate::api::routes::login(State(state.clone()), peer, body).await?;
    let (idle, ttl) = secs(state)?;
    let now = state.clock.now();
    let token = logged_in.token;
    let mut tx = state.store.write().await?;
    tx.set_session_expiry(&auth::token_hash(&token), slide(now, now, idle, ttl))
        .await?;
    tx.commit().await?;
    let caller = auth::authenticate(state, &token).await?;
    let view = session_view(state, &token, caller).await?;
    let cookie = cookie_header(state, &token, ttl)?;
    Ok(([(header::SET_COOKIE, cookie)], Json(view)).into_response())
}

/// A session opened elsewhere (an SSO sign-in, `crate::sso`) becomes a console session: its
/// expiry is the console's idle deadline (never later than it was), and the cookie to set.
pub(crate) async fn start_cookie_session(state: &AppState, token: &str) -> ApiResult<HeaderValue> {
    let (idle, ttl) = secs(state)?;
    let now = state.clock.now();
    let hash = auth::token_hash(token);
    let mut tx = state.store.write().await?;
    let until = tx
        .get_session(&hash)
        .await?
        .map_or(now, |s| s.expires_at.min(slide(now, now, idle, ttl)));
    tx.set_session_expiry(&hash, until).await?;
    tx.commit().await?;
    cookie_header(state, token, ttl)
}

/// `GET /console/me`: who is signed in, and the CSRF token; `401` when nobody is.
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let token = session_cookie(&headers, &state)
            .ok_or_else(|| ServerError::Unauthenticated("not signed in".into()))?;
        touch(&state, &token, false).await?;
        let caller = auth::authenticate(&state, &token).await?;
        session_view(&state, &token, caller).await
    }
    .await;
    match result {
        Ok(view) => crate::console::harden(Json(view).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /console/logout`: ends the session in the store and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        if let Some(token) = session_cookie(&headers, &state) {
            let sent = headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or(b"");
            if !constant_time_eq(sent, csrf_token(&token).as_bytes()) {
                return Ok(csrf_refused(
                    "refused: signing out needs the console's CSRF token (X-CSRF-Token)",
                ));
            }
            if let Err(refused) = check_origin(&headers) {
                return Ok(csrf_refused(&refused));
            }
            let mut tx = state.store.write().await?;
            tx.delete_session(&auth::token_hash(&token)).await?;
            tx.commit().await?;
        }
        let clear = cookie_header(&state, "", 0)?;
        Ok::<_, ServerError>(
            (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_is_per_session_and_stable() {
        let a = auth::new_token(auth::SESSION_PREFIX);
        let b = auth::new_token(auth::SESSION_PREFIX);
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(!csrf_token(&a).contains(&a[4..]));
    }

    #[test]
    fn idle_deadline_never_passes_the_session_lifetime() {
        let t0 = chrono::Utc::now();
        assert_eq!(
            slide(t0, t0, 900, 3600),
            t0 + chrono::Duration::seconds(900)
        );
        let late = t0 + chrono::Duration::seconds(3000);
        assert_eq!(
            slide(t0, late, 900, 3600),
            t0 + chrono::Duration::seconds(3600)
        );
    }

    #[test]
    fn cross_origin_requests_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(check_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9999"),
        );
        assert!(check_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(check_origin(&h).is_err());
    }
}
