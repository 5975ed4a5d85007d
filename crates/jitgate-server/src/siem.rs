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

use crate::state::AppState;
use jitgate_store::EventFilter;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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

/// One `[[siem]]` entry of the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// Names the sink in logs and keys its cursor; default `<format>-<address>`. Renaming a
    /// sink starts it afresh (from `start_at`).
    #[serde(default)]
    pub name: Option<String>,
    /// `ocsf` (one JSON object per line) or `syslog` (RFC 5424).
    pub format: SiemFormat,
    /// Collector `host:port`.
    pub address: String,
    /// TLS to the collector (RFC 5425 for syslog); needs `ca_file`.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA certificate(s) the collector's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name in the collector's certificate; default: the host part of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Syslog framing: `octet-counting` (RFC 6587 §3.4.1, required by RFC 5425; the
    /// default) or `lf` (one message per line). JSON lines always end in LF.
    #[serde(default)]
    pub framing: Framing,
    /// HOSTNAME of syslog messages; default: this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Events per write (1–10000, default 500).
    #[serde(default = "default_batch")]
    pub batch: i64,
    /// Where a sink without a cursor starts: `beginning` (the whole log, default) or `end`
    /// (only events from now on).
    #[serde(default)]
    pub start_at: StartAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiemFormat {
    Ocsf,
    Syslog,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    #[default]
    OctetCounting,
    Lf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

fn default_batch() -> i64 {
    500
}

impl SiemConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let f = match self.format {
                SiemFormat::Ocsf => "ocsf",
                SiemFormat::Syslog => "syslog",
            };
            format!("{f}-{}", self.address)
        })
    }

    fn cursor_key(&self) -> String {
        format!("siem/{}/cursor", self.name())
    }

    fn host(&self) -> &str {
        // `[::1]:6514`, `collector.example:6514`
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        let at = format!("[[siem]] {name}");
        if self
            .address
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("{at}: address {:?} is not host:port", self.address));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(format!("{at}: batch {} is outside 1..10000", self.batch));
        }
        if self.tls && self.ca_file.is_none() {
            return Err(format!(
                "{at}: tls = true needs ca_file (the PEM CA certificate the collector's certificate chains to)"
            ));
        }
        if !self.tls && (self.ca_file.is_some() || self.server_name.is_some()) {
            return Err(format!(
                "{at}: ca_file and server_name only apply with tls = true"
            ));
        }
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > 255 || !h.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{at}: hostname {h:?} is not 1–255 printable ASCII characters without spaces"
                ));
            }
        }
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(format!(
                "{at}: name must be 1–200 characters without control characters"
            ));
        }
        Ok(())
    }
}

/// Check a whole `[[siem]]` list: each valid, names unique (they key the cursors).
pub fn validate_all(sinks: &[SiemConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for s in sinks {
        s.validate()?;
        if !names.insert(s.name()) {
            return Err(format!(
                "two [[siem]] entries are named {:?}: give each a distinct `name`",
                s.name()
            ));
        }
    }
    Ok(())
}

/// This machine's host name as RFC 5424 allows it (printable ASCII, no spaces), or `-`.
fn system_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

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
    loop {
        if *shutdown.borrow() {
            break;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn sink(toml_text: &str) -> SiemConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn config_is_checked() {
        let ok = sink("format = \"ocsf\"\naddress = \"127.0.0.1:6514\"\n");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.name(), "ocsf-127.0.0.1:6514");
        assert_eq!(ok.framing, Framing::OctetCounting);
        let no_port = sink("format = \"syslog\"\naddress = \"collector\"\n");
        assert!(no_port.validate().unwrap_err().contains("host:port"));
        let tls = sink("format = \"syslog\"\naddress = \"c:6514\"\ntls = true\n");
        assert!(tls.validate().unwrap_err().contains("ca_file"));
        let unknown: Result<SiemConfig, _> =
            toml::from_str("format = \"ocsf\"\naddress = \"c:1\"\nport = 3\n");
        assert!(unknown.unwrap_err().to_string().contains("port"));
        let twice = vec![ok.clone(), ok];
        assert!(validate_all(&twice).unwrap_err().contains("named"));
    }

    #[test]
    fn host_of_address() {
        let s = sink("format = \"ocsf\"\naddress = \"[::1]:6514\"\n");
        assert_eq!(s.host(), "::1");
        let s = sink("format = \"ocsf\"\naddress = \"siem.example:6514\"\n");
        assert_eq!(s.host(), "siem.example");
    }
}
