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
//! - [`assets`]  — the page, the script, style and vendored recording player, embedded, and
//!   the security headers (two policies: the console page's, and the sandboxed player frame's).
//! - this file   — `[console]` configuration, the routes.
//!
//! The console has no handlers of its own for the lifecycle: every list and every action is
//! a call to `/api/v1` (with the cookie instead of a bearer header), so the console can do
//! nothing the API would refuse, and says what the API says when it refuses.

pub mod assets;
pub mod session;
pub mod stream;

pub use crate::config::console::ConsoleConfig;
use crate::state::AppState;
pub(crate) use assets::harden;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

/// The console's routes (pages, files, session, stream), outside `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .merge(assets::router())
        .route("/console/login", post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/me", get(session::me))
        .route("/console/stream", get(stream::stream))
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
