//! The web console: one HTML page and its script and style, embedded in the binary, on top
//! of the same `/api/v1` handlers the CLI uses.
//!
//! ## Layout
//! - [`session`] — sign-in and sign-out with an HttpOnly, SameSite=Strict cookie that holds
//!   an ordinary `jgs_` session token; the CSRF token derived from it; the layer in front of
//!   `/api/v1` that turns the cookie into the bearer the handlers expect (after checking the
//!   CSRF token on every state-changing call) and slides the idle timeout.
//! - [`stream`]  — `GET /console/stream`: Server-Sent Events, one per new event of the log
//!   the signed-in person may see, so open pages refresh without reloading.
//! - this file   — `[console]` configuration, the page and asset routes, security headers.
//!
//! The console has no handlers of its own for the lifecycle: every list and every action is
//! a call to `/api/v1` (with the cookie instead of a bearer header), so the console can do
//! nothing the API would refuse, and says what the API says when it refuses.

pub mod session;
pub mod stream;

pub use crate::config::console::ConsoleConfig;
use crate::state::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const APP_CSS: &str = include_str!("../../console/app.css");
const ICON_SVG: &str = include_str!("../../console/icon.svg");

/// Everything is served from here: no inline script or style, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (pages, assets, session, stream), outside `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(page))
        .route("/console/{*page}", get(page))
        .route("/console/static/app.js", get(app_js))
        .route("/console/static/app.css", get(app_css))
        .route("/console/static/icon.svg", get(icon_svg))
        .route("/console/login", post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/me", get(session::me))
        .route("/console/stream", get(stream::stream))
}

/// Headers every console response carries.
pub(crate) fn harden(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    harden(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response(),
    )
}

/// Every page is the same document; the script shows the view the path names, so a
/// bookmark or reload of `/console/grants/<id>` lands where it was.
async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn icon_svg() -> Response {
    asset("image/svg+xml", ICON_SVG)
}

#[cfg(test)]
mod tests {
    use crate::config::ServerConfig;

    #[test]
    fn console_settings_come_from_the_environment_and_are_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let cfg = ServerConfig::load(
            None,
            env(&[
                ("JITGATE_CONSOLE_SECURE_COOKIE", "false"),
                ("JITGATE_CONSOLE_IDLE_TIMEOUT", "5m"),
            ]),
        )
        .unwrap();
        assert!(!cfg.console.secure_cookie);
        assert_eq!(cfg.console.idle_timeout_secs(), Ok(300));
        assert!(
            ServerConfig::load(None, env(&[]))
                .unwrap()
                .console
                .secure_cookie
        );
        for bad in [
            &[("JITGATE_CONSOLE_SECURE_COOKIE", "maybe")][..],
            &[("JITGATE_CONSOLE_IDLE_TIMEOUT", "10s")][..],
            &[("JITGATE_CONSOLE_IDLE_TIMEOUT", "soon")][..],
        ] {
            let err = ServerConfig::load(None, env(bad)).unwrap_err().to_string();
            assert!(
                err.contains("CONSOLE") || err.contains("[console]"),
                "{err}"
            );
        }
    }
}
