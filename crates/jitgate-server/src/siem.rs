//! SIEM export: every event of the log, in order, to each configured collector — OCSF-style
//! JSON lines or RFC 5424 syslog — over TCP, optionally TLS.
//!
//! Delivery is **at least once**, with a cursor per sink in the settings table
//! (`siem/<name>/cursor`, the last seq delivered). A batch is read after the cursor, written
//! and flushed, and only then is the cursor moved; a crash in between sends that batch again
//! (never more than one batch), a restart resumes after the cursor (no re-flood), and a
//! collector that is down is retried with backoff while events wait in the log.
//!
//! TCP has no application-level acknowledgement: "delivered" means written to a connection
//! that was open. Before each batch the connection is checked for an orderly close by the
//! collector (a restarted collector is noticed and the batch goes to the new connection), but
//! a collector that dies with unread data in its socket buffers loses that data. Lower the
//! cursor to replay (see docs/configuration.md).

use crate::config::siem::system_hostname;
pub use crate::config::siem::{Framing, SiemConfig, SiemFormat, StartAt};
use crate::state::AppState;
use jitgate_store::EventFilter;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// How long an idle sink waits before looking for new events.
const POLL: Duration = Duration::from_millis(500);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connecting (TCP and TLS handshake) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A batch must be written within this time, or the connection is dropped and retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Start one delivery task per sink.
pub fn spawn(
    state: &AppState,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .config
        .siem
        .iter()
        .map(|cfg| {
            tokio::spawn(run_sink(
                state.clone(),
                Arc::new(cfg.clone()),
                shutdown.clone(),
            ))
        })
        .collect()
}

trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// How long a node's hold on a collector's delivery lasts without renewal (renewed before
/// every batch): the gap in delivery when that node dies.
const SIEM_LEASE: Duration = Duration::from_secs(30);

/// Deliver events to one collector until shutdown.
pub async fn run_sink(state: AppState, cfg: Arc<SiemConfig>, mut shutdown: watch::Receiver<bool>) {
    let name = cfg.name();
    let hostname = cfg.hostname.clone().unwrap_or_else(system_hostname);
    let tls = match cfg.tls.then(|| tls_connector(&cfg)).transpose() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(sink = %name, error = %e, "SIEM sink disabled");
            return;
        }
    };
    let mut conn: Option<Box<dyn Conn>> = None;
    let mut backoff = Duration::from_secs(1);
    let mut last_error: Option<String> = None;
    let job = format!("siem:{name}");
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Several nodes: one delivers to each collector at a time (the others would send
        // the same events again); another takes over when it stops renewing.
        if !crate::cluster::take_lease(&state, &job, SIEM_LEASE).await {
            conn = None;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => continue,
                _ = shutdown.changed() => break,
            }
        }
        let result = step(&state, &cfg, &hostname, tls.as_ref(), &mut conn).await;
        let wait = match result {
            Ok(0) => POLL,
            Ok(n) => {
                tracing::debug!(sink = %name, events = n, "SIEM batch delivered");
                if last_error.take().is_some() {
                    tracing::info!(sink = %name, "SIEM delivery resumed");
                }
                backoff = Duration::from_secs(1);
                continue;
            }
            Err(e) => {
                conn = None;
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(sink = %name, address = %cfg.address, error = %e, "SIEM delivery failed; retrying");
                    last_error = Some(e);
                }
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(mut c) = conn {
        let _ = c.shutdown().await;
    }
    crate::cluster::release_lease(&state, &job).await;
}

/// One batch: read after the cursor, write, flush, move the cursor. Returns how many events
/// were delivered (0: nothing new).
async fn step(
    state: &AppState,
    cfg: &SiemConfig,
    hostname: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    conn: &mut Option<Box<dyn Conn>>,
) -> Result<usize, String> {
    let key = cfg.cursor_key();
    let mut tx = state.store.read().await.map_err(|e| e.to_string())?;
    let cursor = match tx.get_setting(&key).await.map_err(|e| e.to_string())? {
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| format!("setting {key} = {v:?} is not a sequence number"))?,
        None => {
            let start = match cfg.start_at {
                StartAt::Beginning => 0,
                StartAt::End => tx.chain_tip().await.map_err(|e| e.to_string())?.0,
            };
            drop(tx);
            let mut w = state.store.write().await.map_err(|e| e.to_string())?;
            w.set_setting(&key, &start.to_string())
                .await
                .map_err(|e| e.to_string())?;
            w.commit().await.map_err(|e| e.to_string())?;
            return Ok(0);
        }
    };
    let events = tx
        .list_events(&EventFilter {
            after_seq: Some(cursor),
            limit: cfg.batch,
            ..EventFilter::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    drop(tx);
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let mut payload = Vec::with_capacity(events.len() * 700);
    for e in &events {
        match cfg.format {
            SiemFormat::Ocsf => {
                let line = jitgate_evidence::to_ocsf_json(e.seq, &e.event);
                serde_json::to_writer(&mut payload, &line).map_err(|e| e.to_string())?;
                payload.push(b'\n');
            }
            SiemFormat::Syslog => {
                let msg = jitgate_evidence::to_syslog_5424(e.seq, &e.event, hostname, "jitgate");
                match cfg.framing {
                    Framing::OctetCounting => {
                        payload.extend_from_slice(format!("{} ", msg.len()).as_bytes());
                        payload.extend_from_slice(msg.as_bytes());
                    }
                    Framing::Lf => {
                        payload.extend_from_slice(msg.as_bytes());
                        payload.push(b'\n');
                    }
                }
            }
        }
    }
    if let Some(c) = conn.as_mut() {
        if closed_by_peer(c.as_mut()).await {
            *conn = None;
        }
    }
    if conn.is_none() {
        *conn = Some(connect(cfg, tls).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        c.write_all(&payload).await?;
        c.flush().await
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("writing to {}: {e}", cfg.address)),
        Err(_) => {
            return Err(format!(
                "writing to {}: no progress within {}s",
                cfg.address,
                WRITE_TIMEOUT.as_secs()
            ))
        }
    }
    let mut w = state.store.write().await.map_err(|e| e.to_string())?;
    w.set_setting(&key, &last.to_string())
        .await
        .map_err(|e| e.to_string())?;
    w.commit().await.map_err(|e| e.to_string())?;
    Ok(events.len())
}

/// Has the collector closed the connection (or reset it)? Collectors send nothing, so any
/// readable end-of-stream means the connection is gone; data it does send is ignored.
async fn closed_by_peer(c: &mut dyn Conn) -> bool {
    let mut buf = [0u8; 512];
    loop {
        // `timeout` polls the read once before looking at the (zero) deadline.
        match tokio::time::timeout(Duration::ZERO, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn connect(
    cfg: &SiemConfig,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<Box<dyn Conn>, String> {
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect(&cfg.address)
            .await
            .map_err(|e| format!("connecting to {}: {e}", cfg.address))?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Box::new(tcp) as Box<dyn Conn>),
            Some(connector) => {
                let name = cfg.server_name.as_deref().unwrap_or_else(|| cfg.host());
                let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
                    .map_err(|e| format!("server name {name:?}: {e}"))?;
                let stream = connector
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", cfg.address))?;
                Ok(Box::new(stream) as Box<dyn Conn>)
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            format!(
                "connecting to {}: no answer within {}s",
                cfg.address,
                CONNECT_TIMEOUT.as_secs()
            )
        })?
}

fn tls_connector(cfg: &SiemConfig) -> Result<tokio_rustls::TlsConnector, String> {
    let path = cfg
        .ca_file
        .as_ref()
        .ok_or_else(|| "tls = true needs ca_file".to_string())?;
    let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut found = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        found += 1;
    }
    if found == 0 {
        return Err(format!(
            "ca_file {} holds no PEM certificate",
            path.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
