//! The one place the CLI talks HTTP: building `/api/v1` URLs, sending the bearer token, and
//! turning every failure into a [`CliError`] that knows its exit code.
//!
//! Responses are returned as raw JSON [`Value`]s so that `--json` can print exactly what the
//! server said; [`decode`] then turns them into the shared API types.

use jitgate_gateway::server_trust::ServerTrust;
use jitgate_server::api::types::ApiError;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// How long one HTTP exchange may take before the server counts as unreachable.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Exit codes of the CLI (documented in docs/cli.md).
pub mod exit {
    /// The server refused (API error), a request was denied, a check failed.
    pub const FAILURE: u8 = 1;
    /// The command line or local configuration is wrong.
    pub const USAGE: u8 = 2;
    /// No server answered at the configured URL.
    pub const UNREACHABLE: u8 = 3;
    /// A witness found the evidence log forked or rolled back, and stopped.
    pub const ALARM: u8 = 4;
}

/// Every way a client verb can fail, each with its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or local configuration (exit 2).
    Usage(String),
    /// The server answered with an `ApiError` (exit 1).
    Api {
        status: u16,
        code: String,
        message: String,
        /// What to do next, when the CLI knows better than the server (e.g. log in again).
        hint: Option<String>,
    },
    /// Nothing answered at the server URL (exit 3).
    Unreachable { url: String, detail: String },
    /// The server answered something that is not the documented shape (exit 1).
    BadResponse(String),
    /// The server's TLS certificate is not the pinned one, or nothing pins an `https://`
    /// server (exit 1): nothing was sent to it.
    Untrusted(String),
    /// The verb has already told the user what went wrong (e.g. a denied request); exit 1
    /// without printing anything more.
    Reported,
    /// A witness's alarm: the evidence log forked or rolled back (exit 4).
    Alarm(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Unreachable { .. } => exit::UNREACHABLE,
            CliError::Alarm(_) => exit::ALARM,
            CliError::Api { .. }
            | CliError::BadResponse(_)
            | CliError::Untrusted(_)
            | CliError::Reported => exit::FAILURE,
        }
    }

    /// The stable API error code, if the server refused.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            CliError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn with_hint(self, text: impl Into<String>) -> Self {
        match self {
            CliError::Api {
                status,
                code,
                message,
                ..
            } => CliError::Api {
                status,
                code,
                message,
                hint: Some(text.into()),
            },
            other => other,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Api { code, message, .. } => write!(f, "{message} ({code})"),
            CliError::Unreachable { url, detail } => write!(
                f,
                "cannot reach the jitgate server at {url} ({detail}); start one with `jitgate up` \
                 (quickstart) or `jitgate serve`, or point the CLI at a running server with \
                 --server URL or JITGATE_SERVER"
            ),
            CliError::BadResponse(m) => write!(f, "unexpected response from the server: {m}"),
            CliError::Untrusted(m) => write!(f, "{m}"),
            CliError::Reported => write!(f, "failed"),
            CliError::Alarm(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CliError {}

/// Turn a non-success HTTP answer into a [`CliError::Api`]. Bodies that are not an
/// `ApiError` (a proxy's HTML page, an empty 502) still give a readable message.
pub fn api_error(status: u16, body: &[u8]) -> CliError {
    if let Ok(e) = serde_json::from_slice::<ApiError>(body) {
        return CliError::Api {
            status,
            code: e.code,
            message: e.message,
            hint: None,
        };
    }
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet: String = snippet.chars().take(200).collect();
    let message = if snippet.is_empty() {
        format!("server answered HTTP {status} {reason}")
    } else {
        format!("server answered HTTP {status} {reason}: {snippet}")
    };
    CliError::Api {
        status,
        code: format!("http_{status}"),
        message,
        hint: None,
    }
}

/// Decode a raw response into one of the API types.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(|e| {
        CliError::BadResponse(format!(
            "{e}; is the server the same jitgate version as this CLI ({})?",
            env!("CARGO_PKG_VERSION")
        ))
    })
}

/// Check and normalise a server URL: `http(s)://host[:port][/prefix]`, no trailing `/api/v1`.
pub fn normalise_server(text: &str) -> Result<Url, CliError> {
    let usage = |why: String| {
        CliError::Usage(format!(
            "server URL {text:?} {why}; use e.g. --server http://127.0.0.1:8080"
        ))
    };
    let mut url = Url::parse(text.trim()).map_err(|e| usage(format!("is invalid ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(usage("must start with http:// or https://".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(usage("has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage("must not have a query or fragment".into()));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/v1").unwrap_or(path).to_string();
    url.set_path(if path.is_empty() { "/" } else { &path });
    Ok(url)
}

/// HTTP client for one server and (optionally) one bearer token.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// Set when the server is `https://` and no fingerprint pins it: every call is refused
    /// with this message before anything is sent.
    unpinned: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    #[cfg(test)]
    pub fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        Self::with_trust(server, token, None)
    }

    /// A client that accepts an `https://` server only under `trust`: its certificate's
    /// fingerprint, or a CA file it must chain to. Without one, an `https://` client refuses
    /// every call (saying how to pin); a plain `http://` server takes no pin.
    pub fn with_trust(
        server: &str,
        token: Option<String>,
        trust: Option<ServerTrust>,
    ) -> Result<Self, CliError> {
        let base = normalise_server(server)?;
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("jitgate-cli/", env!("CARGO_PKG_VERSION")));
        let mut unpinned = None;
        match (base.scheme(), trust) {
            ("https", Some(trust)) => {
                let config = jitgate_gateway::server_trust::client_config(&trust)
                    .map_err(|e| CliError::Usage(format!("cannot set up TLS: {e}")))?;
                builder = builder
                    .use_preconfigured_tls((*config).clone())
                    .https_only(true);
            }
            ("https", None) => {
                unpinned = Some(format!(
                    "the server {} is https:// but nothing pins its certificate, so nothing is \
                     sent to it: run `jitgate login` (it shows the server's fingerprint and \
                     saves it in the profile), or pass --server-fingerprint sha256:… (the \
                     fingerprint `jitgate serve` printed; env JITGATE_SERVER_FINGERPRINT) or \
                     --server-ca-file PATH (the CA that issued the server's certificate; env \
                     JITGATE_SERVER_CA_FILE)",
                    base.as_str().trim_end_matches('/')
                ));
            }
            (_, Some(_)) => {
                return Err(CliError::Usage(format!(
                    "--server-fingerprint / --server-ca-file pin a TLS server, but {} is plain \
                     http://; use the server's https:// URL",
                    base.as_str().trim_end_matches('/')
                )))
            }
            _ => {}
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base,
            token,
            unpinned,
        })
    }

    /// The server's base URL as shown to people (no trailing slash).
    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// `<base>/api/v1/<segments...>?<query>`; segments are percent-encoded, so an id can
    /// never climb out of its path position.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, CliError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| CliError::Usage(format!("server URL {} cannot hold a path", self.base)))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// GET. A list comes in pages (the server's `x-next-cursor` header names the next
    /// one): every page is fetched and the items joined, unless the caller asked for one
    /// page with `limit`.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        let (first, mut next) = self
            .send_paged(Method::GET, segments, query, None::<&()>)
            .await?;
        let Value::Array(mut items) = first else {
            return Ok(first);
        };
        if query.iter().any(|(k, _)| *k == "limit") {
            return Ok(Value::Array(items));
        }
        while let Some(cursor) = next.take() {
            let mut q = query.to_vec();
            q.push(("cursor", cursor));
            let (page, more) = self
                .send_paged(Method::GET, segments, &q, None::<&()>)
                .await?;
            match page {
                Value::Array(more_items) => items.extend(more_items),
                other => {
                    return Err(CliError::BadResponse(format!(
                        "a further page of a list is not a list: {other}"
                    )))
                }
            }
            next = more;
        }
        Ok(Value::Array(items))
    }

    /// GET one page of a list: the items and the next page's cursor, if any.
    pub async fn get_page(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<(Value, Option<String>), CliError> {
        self.send_paged(Method::GET, segments, query, None::<&()>)
            .await
    }

    /// POST with a JSON body.
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<Value, CliError> {
        self.send(Method::POST, segments, &[], Some(body)).await
    }

    /// POST without a body (logout, withdraw, enable, complete, reload, ...).
    pub async fn post_empty(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(Method::POST, segments, &[], None::<&()>).await
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Value, CliError> {
        Ok(self.send_paged(method, segments, query, body).await?.0)
    }

    /// Send; the answer and the next page's cursor, if the answer is a page of a list.
    async fn send_paged<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<(Value, Option<String>), CliError> {
        if let Some(m) = &self.unpinned {
            return Err(CliError::Untrusted(m.clone()));
        }
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let next = resp
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            let err = api_error(status.as_u16(), &bytes);
            // Only a missing or dead token earns the "log in" hint: a wrong TOTP code or
            // a failed login is also a 401, and the server's message says what to do.
            let token_problem = matches!(err.api_code(), Some("unauthenticated" | "http_401"));
            if token_problem && segments != ["auth", "login"] {
                return Err(err.with_hint(if self.token.is_some() {
                    "your session may have expired or the key been revoked: log in again with \
                     `jitgate login`, or pass a valid --token / JITGATE_TOKEN"
                } else {
                    "not logged in: run `jitgate login --identity NAME`, or pass --token / set \
                     JITGATE_TOKEN (a session token or a workload API key)"
                }));
            }
            return Err(err);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((Value::Null, next));
        }
        serde_json::from_slice(&bytes)
            .map(|v| (v, next))
            .map_err(|e| {
                CliError::BadResponse(format!("HTTP {status} with a body that is not JSON: {e}"))
            })
    }

    /// GET a body that is not JSON (a recording): its bytes and headers.
    pub async fn get_bytes(
        &self,
        segments: &[&str],
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), CliError> {
        self.send_raw(Method::GET, segments, &[], None).await
    }

    /// GET a text body (a witness's checkpoint).
    pub async fn get_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<String, CliError> {
        let (bytes, _) = self.send_raw(Method::GET, segments, query, None).await?;
        String::from_utf8(bytes)
            .map_err(|_| CliError::BadResponse("a text answer that is not UTF-8".into()))
    }

    /// POST a text body (a cosigned checkpoint note); the answer is JSON.
    pub async fn post_text(&self, segments: &[&str], body: String) -> Result<Value, CliError> {
        let (bytes, _) = self
            .send_raw(Method::POST, segments, &[], Some(body.into_bytes()))
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CliError::BadResponse(format!("a body that is not JSON: {e}")))
    }

    async fn send_raw(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        text: Option<Vec<u8>>,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), CliError> {
        if let Some(m) = &self.unpinned {
            return Err(CliError::Untrusted(m.clone()));
        }
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(text) = text {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(text);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        Ok((bytes.to_vec(), headers))
    }

    fn transport_error(&self, e: &reqwest::Error) -> CliError {
        let chain = jitgate_gateway::server_trust::error_chain(e);
        if jitgate_gateway::server_trust::is_certificate_error(&chain) {
            let reason = chain
                .split_once("server certificate mismatch: ")
                .map(|(_, r)| r.to_string())
                .unwrap_or(chain);
            return CliError::Untrusted(format!(
                "refusing the server at {}: its TLS certificate is not the pinned one \
                 (or does not chain to the pinned CA file) ({reason}); nothing was sent. If \
                 its operator confirms a new certificate, log in again with \
                 --server-fingerprint set to the new fingerprint (or --server-ca-file)",
                self.server()
            ));
        }
        // The innermost cause is the useful part ("Connection refused (os error 111)").
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        if e.is_timeout() {
            detail = format!("no answer within {}s", TIMEOUT.as_secs());
        }
        if e.is_connect() || e.is_timeout() {
            CliError::Unreachable {
                url: self.server(),
                detail,
            }
        } else {
            CliError::BadResponse(detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn api_errors_keep_code_and_message() {
        let body =
            br#"{"code":"separation_of_duties","message":"you cannot approve your own request"}"#;
        let e = api_error(403, body);
        assert_eq!(
            e.to_string(),
            "you cannot approve your own request (separation_of_duties)"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.api_code(), Some("separation_of_duties"));
    }

    #[test]
    fn non_api_bodies_still_read_well() {
        let e = api_error(502, b"<html>\n<body>Bad   gateway</body></html>");
        assert_eq!(e.api_code(), Some("http_502"));
        assert!(
            e.to_string()
                .contains("HTTP 502 Bad Gateway: <html> <body>Bad gateway"),
            "{e}"
        );
        let e = api_error(500, b"");
        assert_eq!(
            e.to_string(),
            "server answered HTTP 500 Internal Server Error (http_500)"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            CliError::Unreachable {
                url: "u".into(),
                detail: "d".into()
            }
            .exit_code(),
            3
        );
        assert_eq!(CliError::BadResponse("x".into()).exit_code(), 1);
        assert_eq!(CliError::Reported.exit_code(), 1);
    }

    #[test]
    fn unreachable_message_names_url_and_remedies() {
        let e = CliError::Unreachable {
            url: "http://127.0.0.1:9".into(),
            detail: "refused".into(),
        };
        let text = e.to_string();
        for needle in [
            "http://127.0.0.1:9",
            "jitgate up",
            "jitgate serve",
            "--server",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn server_urls_are_normalised() {
        let n = |s: &str| normalise_server(s).map(|u| u.to_string());
        assert_eq!(
            n("http://127.0.0.1:8080").ok().as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(n("http://h:1/api/v1/").ok().as_deref(), Some("http://h:1/"));
        assert_eq!(n("https://h/jit/").ok().as_deref(), Some("https://h/jit"));
        for bad in [
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http://h/?a=b",
            "nonsense",
        ] {
            let e = normalise_server(bad).err();
            assert_eq!(e.map(|e| e.exit_code()), Some(2), "{bad}");
        }
    }

    #[test]
    fn ids_are_encoded_as_one_segment() -> Result<(), CliError> {
        let c = Client::new("http://h:1/prefix", None)?;
        let u = c.url(
            &["requests", "../admin?x", "approve"],
            &[("state", "pending".into())],
        )?;
        assert_eq!(
            u.as_str(),
            "http://h:1/prefix/api/v1/requests/..%2Fadmin%3Fx/approve?state=pending"
        );
        Ok(())
    }

    #[tokio::test]
    async fn closed_port_is_unreachable_exit_3() -> Result<(), Box<dyn std::error::Error>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None)?;
        let err = c.get(&["auth", "whoami"], &[]).await.err();
        assert_eq!(err.as_ref().map(CliError::exit_code), Some(3), "{err:?}");
        assert!(err
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains(&port.to_string()));
        Ok(())
    }

    /// Serve one canned HTTP answer on a loopback port; return the port and the request text.
    async fn one_shot(
        status: &'static str,
        body: &'static str,
    ) -> std::io::Result<(u16, tokio::task::JoinHandle<String>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let Ok((mut sock, _)) = listener.accept().await else {
                return String::new();
            };
            let request = read_request(&mut sock).await;
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            request
        });
        Ok((port, task))
    }

    /// Read one HTTP/1.1 request: headers, then `content-length` bytes of body.
    async fn read_request(sock: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return text;
                }
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    #[tokio::test]
    async fn api_error_from_a_live_answer_and_401_hint() -> Result<(), Box<dyn std::error::Error>> {
        let (port, seen) = one_shot(
            "401 Unauthorized",
            r#"{"code":"unauthenticated","message":"no session"}"#,
        )
        .await?;
        let c = Client::new(&format!("http://127.0.0.1:{port}"), Some("tok-123".into()))?;
        let err = c.get(&["requests"], &[("mine", "true".into())]).await.err();
        let request = seen.await?;
        assert!(
            request.starts_with("GET /api/v1/requests?mine=true "),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer tok-123"),
            "{request}"
        );
        match err {
            Some(CliError::Api {
                status: 401,
                code,
                hint: Some(hint),
                ..
            }) => {
                assert_eq!(code, "unauthenticated");
                assert!(hint.contains("jitgate login"), "{hint}");
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
        Ok(())
    }

    #[tokio::test]
    async fn no_content_is_null_and_json_is_passed_through(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (port, seen) = one_shot("204 No Content", "").await?;
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None)?;
        let v = c
            .post(
                &["auth", "totp", "confirm"],
                &serde_json::json!({"code": "123456"}),
            )
            .await?;
        assert_eq!(v, Value::Null);
        let request = seen.await?;
        assert!(
            request.starts_with("POST /api/v1/auth/totp/confirm "),
            "{request}"
        );
        assert!(request.ends_with(r#"{"code":"123456"}"#), "{request}");

        let (port, _seen) = one_shot(
            "200 OK",
            r#"{"hash":"sha256:ab","policies":[],"source":"builtin"}"#,
        )
        .await?;
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None)?;
        let v = c.get(&["policies"], &[]).await?;
        let info: jitgate_server::api::types::PolicyInfo = decode(v)?;
        assert_eq!(info.source, "builtin");
        Ok(())
    }
}
