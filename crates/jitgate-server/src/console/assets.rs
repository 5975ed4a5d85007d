//! The console's files, embedded in the binary, and the headers each is served with.
//!
//! Two documents, two policies. The console page (`index.html`) runs under [`CSP`]: scripts
//! and styles from this server only, nothing evaluated. The session recording player,
//! asciinema-player (vendored from npm, `console/vendor/README.md`), emulates the terminal in
//! WebAssembly, and compiling WebAssembly is refused by `script-src 'self'` (it takes
//! `'wasm-unsafe-eval'`). So the player runs in a document of its own, `player.html`, which
//! the console page embeds as an iframe: only that document may compile WebAssembly
//! ([`PLAYER_CSP`]), and its policy also sandboxes it into an opaque origin, so it holds no
//! cookie, cannot call the API and cannot reach the console page — it gets the cast from the
//! console page by `postMessage`. Recordings carry what the asset wrote to the terminal, so
//! the code that parses them runs with nothing to steal. The console page's policy gains only
//! `frame-src 'self'`, to embed it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The console page's policy: everything from here, no inline script or style, no eval, no
/// framing of the console; frames only from here (the player).
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The player frame's policy: the console's, plus WebAssembly compilation, minus any network
/// access, framed only by the console, and sandboxed (scripts run, in an opaque origin).
pub(crate) const PLAYER_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'; \
     sandbox allow-scripts";

/// The asciinema-player version embedded (`console/vendor/`).
pub const ASCIINEMA_PLAYER_VERSION: &str = "3.18.0";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `/console/static/<name>`: content type and body.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../console/app.js")),
    ("app.css", CSS, include_str!("../../console/app.css")),
    (
        "recordings.js",
        JS,
        include_str!("../../console/recordings.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../console/icon.svg"),
    ),
    ("passkeys.js", JS, include_str!("../../console/passkeys.js")),
    (
        "exceptions.js",
        JS,
        include_str!("../../console/exceptions.js"),
    ),
    (
        "campaigns.js",
        JS,
        include_str!("../../console/campaigns.js"),
    ),
    ("reports.js", JS, include_str!("../../console/reports.js")),
    ("findings.js", JS, include_str!("../../console/findings.js")),
    ("player.js", JS, include_str!("../../console/player.js")),
    ("player.css", CSS, include_str!("../../console/player.css")),
    (
        "vendor/asciinema-player.min.js",
        JS,
        include_str!("../../console/vendor/asciinema-player.min.js"),
    ),
    (
        "vendor/asciinema-player.css",
        CSS,
        include_str!("../../console/vendor/asciinema-player.css"),
    ),
];

const INDEX_HTML: &str = include_str!("../../console/index.html");
const PLAYER_HTML: &str = include_str!("../../console/player.html");

/// The page, the player frame and the static files.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route("/console/", get(page))
        .route("/console/{*page}", get(page))
        .route("/console/static/player.html", get(player_page));
    for &(name, content_type, body) in FILES {
        r = r.route(
            &format!("/console/static/{name}"),
            get(move || async move { harden(file(content_type, body)) }),
        );
    }
    r
}

/// Headers every console response carries.
pub(crate) fn harden(resp: Response) -> Response {
    with_headers(resp, CSP, "DENY")
}

fn with_headers(mut resp: Response, csp: &'static str, frame_options: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static(frame_options),
    );
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

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Every page is the same document; the script shows the view the path names, so a
/// bookmark or reload of `/console/grants/<id>` lands where it was.
async fn page() -> Response {
    harden(file("text/html; charset=utf-8", INDEX_HTML))
}

/// The player frame, under its own policy (see the module's documentation).
async fn player_page() -> Response {
    with_headers(
        file("text/html; charset=utf-8", PLAYER_HTML),
        PLAYER_CSP,
        "SAMEORIGIN",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_player_frame_may_compile_webassembly_and_it_is_sandboxed() {
        for unsafe_ in ["'unsafe-inline'", "'unsafe-eval'", "wasm-unsafe-eval"] {
            assert!(!CSP.contains(unsafe_), "{CSP}");
        }
        assert!(PLAYER_CSP.contains("'wasm-unsafe-eval'"));
        assert!(PLAYER_CSP.contains("sandbox allow-scripts"));
        for unsafe_ in [
            "'unsafe-inline'",
            "'unsafe-eval'",
            "allow-same-origin",
            "connect-src",
        ] {
            assert!(!PLAYER_CSP.contains(unsafe_), "{PLAYER_CSP}");
        }
    }

    #[test]
    fn the_vendored_player_is_the_version_its_readme_names() {
        let readme = include_str!("../../console/vendor/README.md");
        assert!(
            readme.contains(&format!("Version: {ASCIINEMA_PLAYER_VERSION} ")),
            "console/vendor/README.md and ASCIINEMA_PLAYER_VERSION disagree"
        );
    }
}
