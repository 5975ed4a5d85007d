//! TLS for the API, the web console and the gateways' control channel.
//!
//! - `[tls] cert_file` / `key_file`: a certificate chain and key from PEM files (the plant's
//!   own PKI).
//! - `[tls] enabled = true` without files: a CA and a server certificate signed by it are
//!   generated on first start in `<data_dir>/tls/` (directory 0700, every file 0600) and
//!   reused afterwards. Clients pin the server certificate's SHA-256 fingerprint (printed at
//!   start) or the CA (`tls/ca-cert.pem`).
//! - Plain HTTP is served only on a loopback address, unless the operator sets
//!   `insecure_plain_http_on_trusted_network = true`: passwords, session tokens and gateway
//!   API keys would otherwise cross the network in clear.
//!
//! With TLS on, every response carries `Strict-Transport-Security`. Handshakes run off the
//! accept loop, at most [`MAX_HANDSHAKES`] at a time and for at most [`HANDSHAKE_TIMEOUT`]
//! each, so a client that opens a connection and says nothing holds up no one else.

use crate::config::ServerConfig;
use crate::files::{private_dir, write_private};
use crate::gateway_ca::GatewayCa;
use axum::http::{header, HeaderValue};
use axum::Router;
use jitgate_core::gateway_enrolment::PresentedCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once; further connections are closed at once.
pub const MAX_HANDSHAKES: usize = 256;
/// `Strict-Transport-Security` sent with every response over TLS (one year).
pub const HSTS: &str = "max-age=31536000";

pub use crate::config::tls::{check_plain_http, TlsConfig, TLS_DIR};

/// What clients need to know to trust the server; printed by `serve` and `up`.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// SHA-256 fingerprint of the server certificate, `sha256:<hex>`.
    pub fingerprint: String,
    /// The server certificate (PEM).
    pub cert_file: PathBuf,
    /// The CA that signed it, when generated here (`data_dir/tls/ca-cert.pem`).
    pub ca_file: Option<PathBuf>,
    /// Generated in this start (not found on disk).
    pub generated: bool,
}

/// The server's TLS material, ready to serve.
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub info: TlsInfo,
    /// The CA of gateways' client certificates (`data_dir/tls/gateway-ca-*.pem`).
    pub gateway_ca: Arc<GatewayCa>,
}

/// Check the plain-HTTP rule, then load or generate the certificate (`None`: plain HTTP).
pub fn prepare(config: &ServerConfig) -> Result<Option<ServerTls>, String> {
    check_plain_http(config)?;
    if !config.tls.is_on() {
        return Ok(None);
    }
    config.tls.validate()?;
    let (certs, key, info) = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(c), Some(k)) => {
            let (certs, key) =
                jitgate_gateway::tls::load_pem(c, k).map_err(|e| format!("[tls] {e}"))?;
            let fingerprint = jitgate_gateway::tls::fingerprint(&certs[0]);
            let info = TlsInfo {
                fingerprint,
                cert_file: c.clone(),
                ca_file: None,
                generated: false,
            };
            (certs, key, info)
        }
        _ => load_or_generate(config)?,
    };
    let gateway_ca = GatewayCa::load_or_generate(&config.data_dir.join(TLS_DIR))?;
    // Client certificates are asked for and, when sent, must chain to the gateway CA; a
    // client without one (a person, the console) still connects: which callers must present
    // one is decided per request (`jitgate_core::gateway_enrolment`).
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(gateway_ca.cert.clone())
        .map_err(|e| format!("[tls] gateway CA certificate: {e}"))?;
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        jitgate_gateway::tls::provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("[tls] gateway CA: {e}"))?;
    let mut server = rustls::ServerConfig::builder_with_provider(jitgate_gateway::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("[tls] {e}"))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("[tls] the certificate and key do not go together: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(ServerTls {
        config: Arc::new(server),
        info,
        gateway_ca: Arc::new(gateway_ca),
    }))
}

type Material = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    TlsInfo,
);

/// `data_dir/tls/{ca-cert,ca-key,server-cert,server-key}.pem`: reuse them, or create them.
/// A missing server certificate is issued again by the existing CA (so CA-pinned clients
/// keep trusting the server); delete both to start a new CA.
fn load_or_generate(config: &ServerConfig) -> Result<Material, String> {
    let dir = config.data_dir.join(TLS_DIR);
    let ca_cert = dir.join("ca-cert.pem");
    let ca_key = dir.join("ca-key.pem");
    let cert = dir.join("server-cert.pem");
    let key = dir.join("server-key.pem");
    let fail = |what: &str, e: String| format!("[tls] {what} in {}: {e}", dir.display());
    if cert.exists() && key.exists() {
        let (certs, k) = jitgate_gateway::tls::load_pem(&cert, &key)
            .map_err(|e| fail("server certificate", e.to_string()))?;
        let info = TlsInfo {
            fingerprint: jitgate_gateway::tls::fingerprint(&certs[0]),
            cert_file: cert,
            ca_file: ca_cert.exists().then_some(ca_cert),
            generated: false,
        };
        return Ok((certs, k, info));
    }
    private_dir(&dir).map_err(|e| fail("cannot create the directory", e.to_string()))?;
    let ca_pair = if ca_key.exists() && ca_cert.exists() {
        let pem =
            std::fs::read_to_string(&ca_key).map_err(|e| fail("ca-key.pem", e.to_string()))?;
        rcgen::KeyPair::from_pem(&pem).map_err(|e| fail("ca-key.pem", e.to_string()))?
    } else {
        let pair = rcgen::KeyPair::generate().map_err(|e| fail("CA key", e.to_string()))?;
        let ca = crate::gateway_ca::ca_params("jitgate server CA")
            .self_signed(&pair)
            .map_err(|e| fail("CA certificate", e.to_string()))?;
        write_private(&ca_key, pair.serialize_pem().as_bytes())
            .map_err(|e| fail("ca-key.pem", e.to_string()))?;
        write_private(&ca_cert, ca.pem().as_bytes())
            .map_err(|e| fail("ca-cert.pem", e.to_string()))?;
        pair
    };
    // The issuer: the CA certificate rebuilt from its fixed parameters and its key (same
    // name, same key, so certificates it signs chain to the stored ca-cert.pem).
    let issuer = crate::gateway_ca::ca_params("jitgate server CA")
        .self_signed(&ca_pair)
        .map_err(|e| fail("CA certificate", e.to_string()))?;
    let server_pair = rcgen::KeyPair::generate().map_err(|e| fail("server key", e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(server_names(config))
        .map_err(|e| fail("server certificate names", e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jitgate server");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    // Ten years from the start of this year: a pinned certificate that expires quietly
    // would stop every gateway at once.
    let year = {
        use chrono::Datelike;
        chrono::Utc::now().year()
    };
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let server = params
        .signed_by(&server_pair, &issuer, &ca_pair)
        .map_err(|e| fail("server certificate", e.to_string()))?;
    write_private(&key, server_pair.serialize_pem().as_bytes())
        .map_err(|e| fail("server-key.pem", e.to_string()))?;
    write_private(&cert, server.pem().as_bytes())
        .map_err(|e| fail("server-cert.pem", e.to_string()))?;
    let der = server.der().clone();
    let info = TlsInfo {
        fingerprint: jitgate_gateway::tls::fingerprint(&der),
        cert_file: cert,
        ca_file: Some(ca_cert),
        generated: true,
    };
    let k = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_pair.serialize_der()));
    Ok((vec![der], k, info))
}

/// Names a generated server certificate carries.
fn server_names(config: &ServerConfig) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let ip = config.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    names.extend(config.tls.names.iter().map(|n| n.trim().to_string()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Serve `app` on `listener` until `shutdown` changes: over TLS (with HSTS) when `tls` is
/// given, plain HTTP otherwise.
pub fn spawn_server(
    listener: TcpListener,
    app: Router,
    tls: Option<&ServerTls>,
    limits: crate::api::limits::ConnLimits,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // Connection cap, header-read and idle timeouts: `[limits]`, see `api::limits`.
    match tls {
        None => tokio::spawn(crate::api::limits::serve(
            listener,
            app,
            limits,
            shutdown,
            |peer: &SocketAddr| ClientAddr {
                addr: *peer,
                client_cert: None,
            },
        )),
        Some(tls) => {
            let app = app.layer(axum::middleware::map_response(add_hsts));
            let listener = TlsListener::new(listener, tls.config.clone());
            tokio::spawn(crate::api::limits::serve(
                listener,
                app,
                limits,
                shutdown,
                |peer: &TlsPeer| ClientAddr {
                    addr: peer.addr,
                    client_cert: peer.client_cert.clone(),
                },
            ))
        }
    }
}

async fn add_hsts(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    resp
}

type TlsConn = tokio_rustls::server::TlsStream<TcpStream>;

/// The client's address, and the gateway certificate it presented over TLS, kept with every
/// request (read by `api::extract::Peer`: failed sign-ins are also counted per source; and by
/// the `Caller` extractor: gateways must present their enrolled certificate).
#[derive(Debug, Clone)]
pub struct ClientAddr {
    pub addr: SocketAddr,
    /// A client certificate that chained to the gateway CA in the handshake.
    pub client_cert: Option<PresentedCert>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        ClientAddr {
            addr: *stream.remote_addr(),
            client_cert: None,
        }
    }
}

/// A TLS connection's peer: its address and the verified client certificate, if any.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub addr: SocketAddr,
    pub client_cert: Option<PresentedCert>,
}

/// The gateway a verified client certificate names. A certificate that chains to the gateway
/// CA but names no single gateway is treated as absent (it cannot vouch for anyone).
fn presented_cert(conn: &TlsConn) -> Option<PresentedCert> {
    let cert = conn.get_ref().1.peer_certificates()?.first()?;
    Some(PresentedCert {
        gateway: jitgate_gateway::enrolment::certificate_gateway(cert)?,
        fingerprint: jitgate_gateway::tls::fingerprint(cert),
    })
}

/// A listener that yields connections whose TLS handshake has completed. Handshakes run in
/// their own tasks (bounded in number and time); the accept task ends when the listener is
/// dropped (the server stopped).
pub struct TlsListener {
    local: std::io::Result<SocketAddr>,
    ready: mpsc::Receiver<(TlsConn, TlsPeer)>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many TLS handshakes in progress; connection closed");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(conn)) => {
                            let client_cert = presented_cert(&conn);
                            let _ = tx
                                .send((
                                    conn,
                                    TlsPeer {
                                        addr: peer,
                                        client_cert,
                                    },
                                ))
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { local, ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConn;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(a) => Ok(TlsPeer {
                addr: *a,
                client_cert: None,
            }),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}
