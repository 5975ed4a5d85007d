//! Limits of the HTTP layer (`[limits]`, docs/configuration.md "Limits"):
//!
//! - [`serve`]: the accept loop of the API listener (plain or TLS). At most
//!   `max_connections` connections at once (one more is answered
//!   `503 too_many_connections` and closed); a request head must arrive within
//!   `header_read_timeout`, and a connection silent in both directions for `idle_timeout`
//!   (a half-sent body included) is answered `408 request_timeout` and closed. Upgraded
//!   connections (the gateways' WebSocket control channel) are exempt from both timeouts.
//! - [`json_errors`]: every error answer is the JSON `{code, message}` body, including the
//!   ones axum and tower make themselves (405, 413 from the body limit, a bad path).
//! - [`Page`] / [`page_response`]: `limit` and `cursor` on every list; the next page's
//!   cursor is in the `x-next-cursor` response header (keyset pages: [`crate::paging`]);
//!   [`declare_pages`] declares both and the header in `/openapi.json`.

use crate::error::ServerError;
use crate::paging::{self, PageRequest, Paged};
use crate::views::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jitgate_core::codes::Code;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};

/// The answer to a body above `[limits] max_body_bytes`.
pub fn payload_too_large() -> ServerError {
    ServerError::Limit {
        code: Code::PayloadTooLarge,
        message: "the request body is larger than the server accepts ([limits] max_body_bytes); \
                  send a smaller body"
            .into(),
    }
}

/// Give every error answer the JSON `{code, message}` body. Errors of the handlers already
/// have it; this covers what the router and layers answer on their own.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let err = match status {
        StatusCode::METHOD_NOT_ALLOWED => ServerError::Limit {
            code: Code::MethodNotAllowed,
            message: "this path does not take this method; /openapi.json lists the methods of \
                      each path"
                .into(),
        },
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::NOT_FOUND => ServerError::NotFound {
            what: "route",
            id: "at this path".into(),
            hint: "/openapi.json lists the API",
        },
        StatusCode::UNAUTHORIZED => ServerError::Unauthenticated(text),
        s if s.is_server_error() => ServerError::Internal(text),
        _ if text.is_empty() => ServerError::BadRequest(format!(
            "the request was refused ({status}); /openapi.json describes the API"
        )),
        _ => ServerError::BadRequest(format!("the request was refused: {text}")),
    };
    let mut out = err.into_response();
    // Keep what tells the client how to go on (`Allow` of a 405, `Retry-After`).
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

// ---------------------------------------------------------------- pagination

/// `limit` and `cursor` of a list. The cursor is opaque to clients: send back the
/// `x-next-cursor` header of the previous page; no header = the last page.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page (default `[limits] default_page_size`, 100; at most `max_page_size`,
    /// 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// From the previous page's `x-next-cursor` response header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// The response header carrying the next page's cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

impl Page {
    /// The page asked of the list `list` (the path after `/api/v1/`), within `[limits]`.
    pub fn request(
        &self,
        list: &str,
        limits: &crate::config::limits::LimitsConfig,
    ) -> Result<PageRequest, ServerError> {
        let limit = page_limit(self.limit, limits)?;
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(paging::decode_cursor(list, c)?),
        };
        Ok(PageRequest { after, limit })
    }
}

/// `limit` checked against `[limits]`: the default when absent, `400 bad_request` outside
/// 1..=`max_page_size`.
pub fn page_limit(
    limit: Option<i64>,
    limits: &crate::config::limits::LimitsConfig,
) -> Result<usize, ServerError> {
    match limit {
        None => Ok(limits.default_page_size.max(1)),
        Some(n) if n >= 1 && (n as u64) <= limits.max_page_size as u64 => Ok(n as usize),
        Some(n) => Err(ServerError::BadRequest(format!(
            "limit={n}: a page holds 1..={} items ([limits] max_page_size); follow \
             `x-next-cursor` for more",
            limits.max_page_size
        ))),
    }
}

/// A page as a JSON array, with the next page's cursor (naming the page's last item by
/// `key`) in [`NEXT_CURSOR`] when there is a next page.
pub fn page_response<T: serde::Serialize>(
    list: &str,
    page: Paged<T>,
    key: impl Fn(&T) -> String,
) -> Response {
    let next = page.more.then(|| page.items.last().map(&key)).flatten();
    page_response_after(list, page.items, next)
}

/// A page as a JSON array; `next_after` is the key of the item the next page starts after
/// (`None`: this is the last page).
pub fn page_response_after<T: serde::Serialize>(
    list: &str,
    items: Vec<T>,
    next_after: Option<String>,
) -> Response {
    let next = next_after.map(|k| paging::encode_cursor(list, &k));
    let mut resp = axum::Json(items).into_response();
    if let Some(n) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        resp.headers_mut().insert(NEXT_CURSOR, n);
    }
    resp
}

// ---------------------------------------------------------------- connections

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnLimits {
    pub fn from_config(c: &crate::config::limits::LimitsConfig) -> Self {
        ConnLimits {
            max_connections: c.max_connections,
            header_read_timeout: c.header_read_timeout(),
            idle_timeout: c.idle_timeout(),
        }
    }
}

/// Serve `app` on `listener` within `limits` until `shutdown` flips, then finish the
/// requests in flight. Each request carries `ConnectInfo(conn_info(peer address))`.
pub async fn serve<L, F, T>(
    mut listener: L,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
    conn_info: F,
) where
    L: axum::serve::Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(&L::Addr) -> T,
    T: Clone + Send + Sync + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Stop: `signal_tx` is dropped, each connection finishes its request in flight; the
    // connections' `close_rx` clones are gone once all have ended.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (io, peer) = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(io, too_many_connections(limits.max_connections)));
            continue;
        };
        let io = TokioIo::new(Guarded::new(io, limits));
        let info = conn_info(&peer);
        let service = app
            .clone()
            .map_request(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(info.clone()));
                req
            });
        let mut signal_rx = signal_rx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(io, TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = signal_rx.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
            drop(close_rx);
        });
    }
    drop(listener);
    drop(signal_tx);
    drop(close_rx);
    close_tx.closed().await;
}

fn too_many_connections(max: usize) -> Vec<u8> {
    canned(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::TooManyConnections,
        &format!(
            "the server already holds {max} connections ([limits] max_connections); retry shortly"
        ),
    )
}

fn timed_out(what: &str) -> Vec<u8> {
    canned(
        StatusCode::REQUEST_TIMEOUT,
        Code::RequestTimeout,
        &format!("{what}; the connection is closed, send the request again at once"),
    )
}

/// A whole HTTP/1.1 error answer with the JSON body, written outside hyper (the connection
/// is refused or timed out and closes after it).
fn canned(status: StatusCode, code: Code, message: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&ApiError {
        code: code.as_str().to_string(),
        message: message.to_string(),
    })
    .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

async fn refuse<I: AsyncWrite + Unpin>(mut io: I, answer: Vec<u8>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        io.write_all(&answer).await?;
        io.shutdown().await
    })
    .await;
}

/// A connection under the header-read and idle timeouts.
struct Guarded<I> {
    inner: I,
    limits: ConnLimits,
    idle: Pin<Box<Sleep>>,
    /// Armed while a request head is awaited.
    head: Option<Pin<Box<Sleep>>>,
    /// The last bytes read, to find the end of a head across reads.
    tail: [u8; 3],
    /// Something was written since the last head: the next bytes read start a new one.
    answered: bool,
    /// Switched protocols (WebSocket): no timeouts any more.
    upgraded: bool,
    /// The timeout answer being written before the connection closes.
    closing: Option<(Vec<u8>, usize)>,
}

impl<I> Guarded<I> {
    fn new(inner: I, limits: ConnLimits) -> Self {
        Guarded {
            inner,
            limits,
            idle: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            head: Some(Box::pin(tokio::time::sleep(limits.header_read_timeout))),
            tail: [0; 3],
            answered: false,
            upgraded: false,
            closing: None,
        }
    }

    fn saw_read(&mut self, bytes: &[u8]) {
        self.idle
            .as_mut()
            .reset(Instant::now() + self.limits.idle_timeout);
        if self.upgraded {
            return;
        }
        if self.head.is_none() && self.answered {
            self.head = Some(Box::pin(tokio::time::sleep(
                self.limits.header_read_timeout,
            )));
            self.answered = false;
            self.tail = [0; 3];
        }
        if self.head.is_some() {
            let mut window = self.tail.to_vec();
            window.extend_from_slice(bytes);
            if window.windows(4).any(|w| w == b"\r\n\r\n") {
                self.head = None;
            }
            let keep = &window[window.len().saturating_sub(3)..];
            self.tail = [0; 3];
            self.tail[3 - keep.len()..].copy_from_slice(keep);
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some((answer, written)) = &mut this.closing {
            // Write the timeout answer, then end the connection.
            while *written < answer.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Pending => return Poll::Pending,
                }
            }
            // Send FIN after the answer, so the client reads all of it before the close.
            if Pin::new(&mut this.inner).poll_shutdown(cx).is_pending() {
                return Poll::Pending;
            }
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request timeout",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled()[before..].to_vec();
                if !got.is_empty() {
                    this.saw_read(&got);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.upgraded {
                    return Poll::Pending;
                }
                let head_expired = this
                    .head
                    .as_mut()
                    .is_some_and(|h| h.as_mut().poll(cx).is_ready());
                let idle_expired = this.idle.as_mut().poll(cx).is_ready();
                if head_expired || idle_expired {
                    let what = if head_expired {
                        format!(
                            "the request head did not arrive within {:?} ([limits] header_read_timeout)",
                            this.limits.header_read_timeout
                        )
                    } else {
                        format!(
                            "nothing was sent for {:?} ([limits] idle_timeout)",
                            this.limits.idle_timeout
                        )
                    };
                    this.closing = Some((timed_out(&what), 0));
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            if *n > 0 {
                this.idle
                    .as_mut()
                    .reset(Instant::now() + this.limits.idle_timeout);
                if data.starts_with(b"HTTP/1.1 101 ") {
                    this.upgraded = true;
                    this.head = None;
                }
                if this.head.is_none() {
                    this.answered = true;
                }
            }
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------- OpenAPI

/// Declare in `/openapi.json` the error answers every operation can give besides its own:
/// each with the `ApiError` body. Bodies bring 409, 413 and 422; any call may meet a bad
/// parameter (400), missing credentials (401), roles (403), an unknown id (404), a limit
/// (408, 429, 503) or a server failure (500).
pub fn declare_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::HttpMethod;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(format!(
                "{what}; the body is `{{code, message}}` (docs/api.md, Errors)"
            ))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ApiError")))
                    .build(),
            )
            .build()
    };
    let common: &[(&str, &str)] = &[
        ("400", "a bad parameter or query"),
        ("401", "no, unknown or expired credentials"),
        ("403", "the caller may not do this"),
        ("404", "unknown or invisible id"),
        ("408", "the request did not arrive in time ([limits])"),
        ("429", "a limit ([limits]) or sign-in backoff"),
        ("500", "a server failure"),
        ("503", "too many connections or a busy server ([limits])"),
    ];
    let with_body: &[(&str, &str)] = &[
        ("409", "the state does not allow this"),
        ("413", "the body is larger than [limits] max_body_bytes"),
        ("422", "the body is invalid"),
    ];
    for (_path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let writes = !matches!(method, HttpMethod::Get);
            let extra = if writes { with_body } else { &[] };
            for (status, what) in common.iter().chain(extra) {
                if !op.responses.responses.contains_key(*status) {
                    op.responses
                        .responses
                        .insert(status.to_string(), error(what).into());
                }
            }
        }
    }
}

/// Declare in `/openapi.json`, on every list (a GET taking `cursor`), the `x-next-cursor`
/// header of its answers.
pub fn declare_pages(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{Object, Type};
    use utoipa::openapi::RefOr;
    for (_path, item) in doc.paths.paths.iter_mut() {
        let Some(op) = item.get.as_mut() else {
            continue;
        };
        let pages = op.parameters.iter().flatten().any(|p| p.name == "cursor");
        if !pages {
            continue;
        }
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.headers.insert(
                NEXT_CURSOR.to_string(),
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::String))
                    .description(Some(
                        "the cursor of the next page (send it back as `cursor`); absent on \
                         the last page",
                    ))
                    .build(),
            );
        }
    }
}
