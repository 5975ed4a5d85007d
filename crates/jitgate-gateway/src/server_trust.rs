//! Verifying the jitgate **server** over TLS, for the gateway (HTTPS API calls and the
//! `wss://` control channel) and for the CLI.
//!
//! No public CA is involved unless the operator says so. A client trusts the server by one
//! of two pins:
//!
//! - **fingerprint** — the SHA-256 of the server's certificate (`sha256:<64 hex>`, as
//!   `jitgate serve` prints it): exactly that certificate is accepted, whatever its names or
//!   validity dates; the server must still prove it holds the certificate's key.
//! - **CA file** — PEM certificate(s) the server's certificate must chain to (the CA that
//!   `jitgate serve` generates in its data directory, or the plant's own); the server's
//!   certificate must also name the host in the URL.
//!
//! A server presenting any other certificate is refused during the handshake, before a
//! byte of the request (password, token, API key) is sent.

use crate::tls::{fingerprint, provider, TlsError};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How a client recognises the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// The server's certificate has this SHA-256 fingerprint (`sha256:<hex>`).
    Fingerprint(String),
    /// The server's certificate chains to a certificate in this PEM file.
    CaFile(PathBuf),
}

/// Normalise a fingerprint as people write it: `sha256:ab12…`, `SHA256:AB:12:…` (OpenSSL
/// style) or the bare 64 hex digits → `sha256:<64 lowercase hex>`.
pub fn parse_fingerprint(text: &str) -> Result<String, String> {
    let t = text.trim();
    let body = match t.split_once(':') {
        Some((algo, rest)) if algo.eq_ignore_ascii_case("sha256") => rest,
        _ => t,
    };
    let hex: String = body
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not a SHA-256 certificate fingerprint; write it as sha256: followed by \
             64 hex digits, as `jitgate serve` prints it"
        ));
    }
    Ok(format!("sha256:{hex}"))
}

/// Read every PEM certificate of a CA file.
pub fn load_ca(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok) {
        roots.add(cert).map_err(|e| {
            TlsError::Config(format!("{}: unusable CA certificate: {e}", path.display()))
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoPem {
            path: path.display().to_string(),
            what: "CA certificate",
        });
    }
    Ok(roots)
}

/// A TLS client configuration that accepts only the server `trust` names.
pub fn client_config(trust: &ServerTrust) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_with_identity(trust, None)
}

/// As [`client_config`], presenting `identity` (a gateway's enrolled client certificate)
/// when the server asks for one.
pub fn client_config_with_identity(
    trust: &ServerTrust,
    identity: Option<&crate::enrolment::ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match trust {
        ServerTrust::Fingerprint(fp) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedServer {
                    fingerprint: fp.clone(),
                    provider,
                }))
        }
        ServerTrust::CaFile(path) => builder.with_root_certificates(load_ca(path)?),
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(id.certs.clone(), id.key()?)
            .map_err(|e| {
                TlsError::Config(format!(
                    "the client certificate and key in the state directory do not go \
                     together ({e}); reset the enrolment (`jitgate gateways reset-enrolment`) \
                     and delete {} and {}",
                    crate::enrolment::CERT_FILE,
                    crate::enrolment::KEY_FILE
                ))
            })?,
    };
    // The server speaks HTTP/1.1 (the control channel's WebSocket upgrade needs it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts exactly one certificate, by fingerprint; the handshake signature is still checked,
/// so the server must hold that certificate's private key.
#[derive(Debug)]
struct PinnedServer {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(mismatch_message(
                &got,
                &self.fingerprint,
            )))
        }
    }

    crate::tls::signature_checks!();
}

/// The words of a pin mismatch; [`is_pin_mismatch`] recognises them in an error chain.
fn mismatch_message(got: &str, pinned: &str) -> String {
    format!(
        "server certificate mismatch: the server presented {got}, but {pinned} is pinned; this \
         is not the server you pinned (or its certificate was replaced): check with its \
         operator before trusting the new fingerprint"
    )
}

/// Does this error text come from a refused server certificate (pin or CA)?
pub fn is_certificate_error(text: &str) -> bool {
    text.contains("server certificate mismatch")
        || text.contains("invalid peer certificate")
        || text.contains("UnknownIssuer")
        || text.contains("NotValidForName")
}

/// Every message of an error's source chain, joined: reqwest and tungstenite hide the
/// TLS reason (the pin mismatch) a few sources deep.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A byte stream to the server: plain TCP or TLS over it.
pub trait ServerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ServerIo for T {}

/// Open a connection to `host:port`, with TLS under `tls` when given (the name checked
/// against a CA-issued certificate is `host`).
pub async fn connect(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn ServerIo>, String> {
    let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = server_name(host)?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            format!(
                "TLS handshake with {host}:{port} failed: {}",
                error_chain(&e)
            )
        })?;
    Ok(Box::new(stream))
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| format!("{host:?} is not a valid server name: {e}"))
}

/// The certificate a TLS server presents at `host:port`, accepted without judgement so that
/// a person can be shown its fingerprint (`jitgate login` on first contact). Nothing is
/// sent over the connection: it is closed right after the handshake.
pub async fn peer_fingerprint(host: &str, port: u16) -> Result<String, String> {
    let seen = Arc::new(Mutex::new(None));
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder {
            seen: seen.clone(),
            provider,
        }))
        .with_no_client_auth();
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port)),
    )
    .await
    .map_err(|_| format!("cannot connect to {host}:{port}: timed out"))?
    .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name(host)?, tcp),
    )
    .await
    .map_err(|_| format!("TLS handshake with {host}:{port} timed out"))?
    .map_err(|e| {
        format!(
            "TLS handshake with {host}:{port} failed: {}",
            error_chain(&e)
        )
    })?;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    let fp = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    fp.ok_or_else(|| format!("{host}:{port} presented no certificate"))
}

/// Records the presented certificate's fingerprint (and checks the handshake signature, so
/// the peer holds its key).
#[derive(Debug)]
struct Recorder {
    seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint(end_entity));
        Ok(ServerCertVerified::assertion())
    }

    crate::tls::signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised() {
        let hex = "ab".repeat(32);
        let want = format!("sha256:{hex}");
        assert_eq!(parse_fingerprint(&want).as_deref(), Ok(want.as_str()));
        assert_eq!(parse_fingerprint(&hex).as_deref(), Ok(want.as_str()));
        let openssl = format!("SHA256:{}", vec!["AB"; 32].join(":"));
        assert_eq!(parse_fingerprint(&openssl).as_deref(), Ok(want.as_str()));
        assert!(parse_fingerprint("sha256:abc").is_err());
        assert!(parse_fingerprint(&format!("md5:{hex}")).is_err());
    }
}
