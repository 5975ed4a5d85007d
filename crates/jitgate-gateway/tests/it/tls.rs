//! TLS between client and gateway: the pinned fingerprint is enforced, and a second tunnel
//! to the same gateway resumes the session (no second certificate signature).

use jitgate_gateway::tls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn handshake(
    addr: std::net::SocketAddr,
    fingerprint: &str,
) -> Result<rustls::HandshakeKind, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let config = tls::pinned_client_config(fingerprint).unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // One byte each way, so the server's session tickets have arrived before we close.
    stream.write_all(b"x").await?;
    let mut b = [0u8; 1];
    stream.read_exact(&mut b).await?;
    Ok(stream.get_ref().1.handshake_kind().unwrap())
}

#[tokio::test]
async fn pinned_tunnels_resume_and_a_wrong_pin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, key) =
        tls::load_or_create_self_signed(dir.path(), vec!["localhost".into()]).unwrap();
    let fingerprint = tls::fingerprint(&certs[0]);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(certs, key).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut s) = acceptor.accept(tcp).await {
                    let mut b = [0u8; 1];
                    if s.read_exact(&mut b).await.is_ok() {
                        let _ = s.write_all(&b).await;
                    }
                }
            });
        }
    });
    assert_eq!(
        handshake(addr, &fingerprint).await.unwrap(),
        rustls::HandshakeKind::Full
    );
    assert_eq!(
        handshake(addr, &fingerprint).await.unwrap(),
        rustls::HandshakeKind::Resumed
    );
    let wrong = format!("sha256:{}", "0".repeat(64));
    assert!(
        handshake(addr, &wrong).await.is_err(),
        "a wrong pin must fail"
    );
}
