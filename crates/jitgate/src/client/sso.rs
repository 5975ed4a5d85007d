//! `jitgate login --sso`: sign in through the server's OpenID provider (docs/sso.md).
//!
//! The CLI listens on `127.0.0.1:<ephemeral port>`, makes a PKCE verifier and sends its
//! S256 challenge with the port; the server answers with the provider's sign-in URL, which
//! the person opens in a browser (the CLI prints it and opens nothing itself). After the
//! sign-in, the server's callback sends the browser to the CLI's loopback address with a
//! one-time code, which the CLI redeems with its verifier for a session. Someone who sees
//! the code without the verifier (another process, a browser history) cannot use it.

use super::http::{CliError, Client};
use base64::Engine;
use jitgate_server::api::sso::{SsoCliStart, SsoCliStarted, SsoProvider, SsoRedeem};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the CLI waits for the browser.
const WAIT: std::time::Duration = std::time::Duration::from_secs(600);
/// Longest request line and headers read from the browser.
const MAX_REQUEST: usize = 16 * 1024;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The provider to use: the one named, or the server's only one.
async fn pick_provider(http: &Client, named: Option<String>) -> Result<String, CliError> {
    let raw = http.get(&["auth", "sso", "providers"], &[]).await?;
    let providers: Vec<SsoProvider> = super::http::decode(raw)?;
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    match named {
        Some(n) if names.contains(&n.as_str()) => Ok(n),
        Some(n) => Err(CliError::Usage(format!(
            "the server has no SSO provider {n:?}; it has: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))),
        None => match names.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(CliError::Usage(
                "this server has no SSO provider ([[sso.providers]]); sign in with --identity \
                 and a password"
                    .into(),
            )),
            many => Err(CliError::Usage(format!(
                "this server has several SSO providers; pass --provider NAME, one of: {}",
                many.join(", ")
            ))),
        },
    }
}

/// Sign in through the provider; the server's answer (a session, as for a password).
pub async fn login(http: &Client, provider: Option<String>) -> Result<serde_json::Value, CliError> {
    let provider = pick_provider(http, provider).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on 127.0.0.1 for the sign-in: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("loopback listener: {e}")))?
        .port();
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let verifier = b64(&secret);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let raw = http
        .post(
            &["auth", "sso", &provider, "cli"],
            &SsoCliStart {
                port,
                code_challenge: challenge,
            },
        )
        .await?;
    let started: SsoCliStarted = super::http::decode(raw)?;
    eprintln!(
        "Open this URL in a browser on this machine to sign in with {provider}:\n\n  {}\n\n\
         Waiting for the browser to come back to http://127.0.0.1:{port}/ (up to 10 minutes)...",
        started.authorization_url
    );
    let code = tokio::time::timeout(WAIT, wait_for_callback(&listener))
        .await
        .map_err(|_| {
            CliError::Usage(
                "no sign-in came back within 10 minutes; run `jitgate login --sso` again".into(),
            )
        })??;
    http.post(
        &["auth", "sso", "redeem"],
        &SsoRedeem {
            code,
            code_verifier: verifier,
        },
    )
    .await
}

/// Serve the loopback address until the browser arrives at `/callback` with a code (or the
/// server's error).
async fn wait_for_callback(listener: &tokio::net::TcpListener) -> Result<String, CliError> {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let target = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok();
        let Some(url) = url.filter(|u| u.path() == "/callback") else {
            let _ = conn
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        };
        let (page, result) = match (param("code"), param("error")) {
            (Some(code), None) => (
                "Signed in to jitgate. You can close this tab and go back to the terminal."
                    .to_string(),
                Ok(code),
            ),
            (_, error) => {
                let code = error.unwrap_or_else(|| "sso_state_mismatch".into());
                let message = param("message").unwrap_or_else(|| "the sign-in was refused".into());
                (
                    format!("jitgate refused the sign-in ({code}). See the terminal."),
                    Err(CliError::Api {
                        status: 401,
                        code,
                        message,
                        hint: Some("run `jitgate login --sso` again".into()),
                    }),
                )
            }
        };
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>jitgate</title><p>{}</p>",
            page.replace('<', "&lt;")
        );
        let _ = conn
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Security-Policy: default-src 'none'\r\nCache-Control: no-store\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = conn.shutdown().await;
        return result;
    }
}
