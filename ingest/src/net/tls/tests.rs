//! TLS listeners over real loopback sockets with certificates made by the test: a reload swaps
//! the certificate of new handshakes and leaves open connections alone; a key that does not
//! match is refused and the previous certificate stays; client certificates are checked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use citytel_testkit::tls::{self, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn files(dir: &Path, ca: Option<&Path>, require: bool) -> TlsFiles {
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: ca.map(Path::to_path_buf),
        crl: None,
        require_client_certificate: require,
    }
}

/// An echo server on `tls`: every connection echoes what it reads. Returns its address.
async fn echo_server(tls: Arc<ServerTls>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tls.acceptor();
            tokio::spawn(async move {
                let Ok(mut conn) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn echo(
    conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> std::io::Result<()> {
    conn.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_only() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("citytel test CA").unwrap();
    ca.server("first")
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let tls = ServerTls::load("test", files(dir.path(), None, false), ALPN_HTTP1).unwrap();
    let first = tls.fingerprint();
    let addr = echo_server(tls.clone()).await;
    let config = tls::client_config(&ca.cert_pem(), None).unwrap();
    let mut old = tls::connect(addr, config.clone()).await.unwrap();
    echo(&mut old).await.unwrap();
    let seen = |c: &tokio_rustls::client::TlsStream<_>| {
        credential_hex(&tls::server_certificate(c).unwrap())
    };
    assert_eq!(seen(&old), first);

    ca.server("second")
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    tls.reload().unwrap();
    assert_ne!(tls.fingerprint(), first);
    let new = tls::connect(addr, config).await.unwrap();
    assert_eq!(
        seen(&new),
        tls.fingerprint(),
        "new handshakes get the new certificate"
    );
    echo(&mut old)
        .await
        .expect("the open connection survives the reload");
}

fn credential_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[tokio::test]
async fn a_key_that_does_not_match_is_refused_and_the_old_certificate_stays() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("citytel test CA").unwrap();
    ca.server("first")
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let tls = ServerTls::load("test", files(dir.path(), None, false), ALPN_HTTP1).unwrap();
    let before = tls.fingerprint();
    let other = ca.server("other").unwrap();
    std::fs::write(dir.path().join("server.key"), other.key_pem).unwrap();
    let err = tls.reload().unwrap_err();
    assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    assert_eq!(tls.fingerprint(), before);
    std::fs::remove_file(dir.path().join("server.pem")).unwrap();
    assert!(matches!(tls.reload(), Err(TlsError::File { .. })));
}

#[tokio::test]
async fn client_certificates_are_checked_against_the_client_ca() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("citytel test CA").unwrap();
    let stranger_ca = TestCa::new("another CA").unwrap();
    ca.server("server")
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let ca_file = ca.write(dir.path(), "ca").unwrap();
    let tls = ServerTls::load("test", files(dir.path(), Some(&ca_file), true), ALPN_MQTT).unwrap();
    assert!(tls.verifies_clients());
    let addr = echo_server(tls).await;
    let try_with = async |client: Option<&tls::Issued>| {
        let config = tls::client_config(&ca.cert_pem(), client).unwrap();
        let mut conn = tls::connect(addr, config).await?;
        echo(&mut conn).await
    };
    let good = ca.client("cab-0001").unwrap();
    try_with(Some(&good))
        .await
        .expect("a certificate from the CA");
    assert!(try_with(None).await.is_err(), "no certificate");
    let foreign = stranger_ca.client("cab-0001").unwrap();
    assert!(
        try_with(Some(&foreign)).await.is_err(),
        "another CA's certificate"
    );
}

#[test]
fn a_peer_certificate_gives_its_common_name_and_sans() {
    let ca = TestCa::new("citytel test CA").unwrap();
    let issued = ca
        .client_with_sans("cab-0001", &["cab-0001.devices.example"])
        .unwrap();
    let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
    let peer = PeerCertificate::parse(der.as_ref());
    assert_eq!(peer.common_name.as_deref(), Some("cab-0001"));
    assert_eq!(peer.sans, ["cab-0001.devices.example"]);
    assert_eq!(peer.fingerprint, credential_hex(der.as_ref()));
}

/// A client configuration trusting `ca_pem` that speaks only `version`, presenting `client`.
fn client_speaking(
    ca_pem: &str,
    client: &tls::Issued,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn tls_1_2_and_1_3_work_and_a_revoked_client_certificate_is_refused() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("citytel test CA").unwrap();
    ca.server("server")
        .unwrap()
        .write(dir.path(), "server")
        .unwrap();
    let ca_file = ca.write(dir.path(), "ca").unwrap();
    let crl_file = dir.path().join("devices.crl");
    std::fs::write(&crl_file, ca.crl(&[666]).unwrap()).unwrap();
    let mut files = files(dir.path(), Some(&ca_file), true);
    files.crl = Some(crl_file);
    let tls = ServerTls::load("test", files, ALPN_MQTT).unwrap();
    let addr = echo_server(tls).await;

    let good = ca.client_with_serial("cab-0001", 1).unwrap();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = client_speaking(&ca.cert_pem(), &good, version);
        let mut conn = tls::connect(addr, config).await.unwrap();
        echo(&mut conn).await.unwrap();
        assert_eq!(conn.get_ref().1.protocol_version(), Some(version.version));
    }
    let revoked = ca.client_with_serial("cab-0002", 666).unwrap();
    let config = tls::client_config(&ca.cert_pem(), Some(&revoked)).unwrap();
    let refused = async {
        let mut conn = tls::connect(addr, config).await?;
        echo(&mut conn).await
    };
    assert!(refused.await.is_err(), "a revoked certificate");
}
