//! The gateway's end of the control channel: a WebSocket to the server
//! (`/api/v1/gateway/control`, authenticated with the gateway's API key) that stays open,
//! reconnecting with backoff. The server pushes revocations (and, on every connection, the
//! list of ended grants so a gateway that was away catches up); the gateway applies each
//! (persist, cut sessions) and acknowledges with what it closed. It also pushes emergency
//! key retirements, applied at once (refuse the key, cut its sessions); on every connection
//! the gateway fetches the key list again, so a retirement it missed while away is applied
//! too.

use crate::runtime::Gateway;
use crate::server_trust::ServerIo;
use crate::wire::{ControlDown, ControlUp, Revocation};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The server pings every few seconds; silence this long means the connection is dead.
const SILENCE: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Keep a control channel open to a server node: the one the API client uses; when it cannot
/// be reached, the next configured node (docs/cluster.md).
pub async fn run(
    gw: Arc<Gateway>,
    key: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let url = match gw.api.control_url() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "control channel: no usable server URL");
                return;
            }
        };
        match connect(&url, &key, tls.clone()).await {
            Ok(ws) => {
                backoff = BACKOFF_MIN;
                gw.control_connected.store(true, Ordering::SeqCst);
                gw.touch();
                tracing::info!(server = %gw.api.server(), "control channel to the server is up");
                let why = serve(&gw, ws, &mut stop).await;
                gw.control_connected.store(false, Ordering::SeqCst);
                if *stop.borrow() {
                    return;
                }
                tracing::warn!(reason = %why, "control channel lost; reconnecting");
            }
            Err(e) => {
                tracing::warn!(server = %gw.api.server(), error = %e, "control channel: cannot connect; trying the next server node");
                gw.api.fail_over();
            }
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
        tokio::select! {
            _ = tokio::time::sleep(backoff + jitter) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<Box<dyn ServerIo>>;

/// Open the WebSocket: `wss://` over TLS pinned like the API calls (`tls`), or `ws://`. The
/// API key is sent only once the server's certificate has been verified.
async fn connect(
    url: &str,
    key: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Ws, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let auth = format!("Bearer {key}")
        .parse()
        .map_err(|_| "the API key is not a valid header value".to_string())?;
    req.headers_mut().insert("authorization", auth);
    let uri = req.uri().clone();
    let secure = uri.scheme_str() == Some("wss");
    if secure != tls.is_some() {
        return Err(format!(
            "{url}: wss:// needs the server's pin and ws:// must not have one"
        ));
    }
    let host = uri.host().ok_or_else(|| format!("{url} has no host"))?;
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let open = async {
        let stream = crate::server_trust::connect(host, port, tls).await?;
        tokio_tungstenite::client_async(req, stream)
            .await
            .map_err(|e| e.to_string())
    };
    let (ws, _) = tokio::time::timeout(Duration::from_secs(5), open)
        .await
        .map_err(|_| "timed out".to_string())??;
    Ok(ws)
}

/// Serve one connection until it drops or the gateway stops; returns why it ended.
async fn serve(gw: &Arc<Gateway>, ws: Ws, stop: &mut watch::Receiver<bool>) -> String {
    let (mut sink, mut stream) = ws.split();
    let (up_tx, mut up_rx) = mpsc::unbounded_channel::<ControlUp>();
    loop {
        tokio::select! {
            msg = tokio::time::timeout(SILENCE, stream.next()) => {
                let msg = match msg {
                    Err(_) => return "no message or ping from the server for 30 s".into(),
                    Ok(None) => return "closed by the server".into(),
                    Ok(Some(Err(e))) => return e.to_string(),
                    Ok(Some(Ok(m))) => m,
                };
                // Any message or ping: a server node is alive and speaking to us.
                gw.touch();
                match msg {
                    Message::Text(text) => match serde_json::from_str::<ControlDown>(&text) {
                        Ok(ControlDown::Revoke(r)) => spawn_apply(gw, r, &up_tx),
                        Ok(ControlDown::Sync { revoked }) => {
                            for r in revoked {
                                spawn_apply(gw, r, &up_tx);
                            }
                            // Keys retired while the channel was down: the list the server
                            // serves now no longer verifies them.
                            let gw = gw.clone();
                            tokio::spawn(async move {
                                if let Err(e) = gw.refresh_now().await {
                                    tracing::warn!(error = %e, "cannot refresh the token keys after reconnecting");
                                }
                            });
                        }
                        Ok(ControlDown::RetireKey { kid }) => {
                            gw.retire_key(&kid);
                        }
                        Err(e) => tracing::warn!(error = %e, "control channel: unknown message ignored"),
                    },
                    Message::Close(_) => return "closed by the server".into(),
                    _ => {} // pings are answered by the WebSocket layer
                }
            }
            Some(up) = up_rx.recv() => {
                let text = match serde_json::to_string(&up) {
                    Ok(t) => t,
                    Err(e) => { tracing::error!(error = %e, "cannot encode an acknowledgement"); continue; }
                };
                if let Err(e) = sink.send(Message::Text(text.into())).await {
                    return e.to_string();
                }
            }
            _ = stop.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                return "gateway stopping".into();
            }
        }
    }
}

/// Apply a revocation off the read loop (cutting sessions must not wait for another
/// revocation's acknowledgement) and queue its acknowledgement.
fn spawn_apply(gw: &Arc<Gateway>, r: Revocation, up: &mpsc::UnboundedSender<ControlUp>) {
    let gw = gw.clone();
    let up = up.clone();
    tokio::spawn(async move {
        match gw.apply_revocation(&r).await {
            Ok(ack) => {
                let _ = up.send(ControlUp::Ack(ack));
            }
            // Not acknowledged: the server's teardown stays failed and retries.
            Err(e) => {
                tracing::error!(grant = %r.grant_id, error = %e, "cannot record a revocation")
            }
        }
    });
}
