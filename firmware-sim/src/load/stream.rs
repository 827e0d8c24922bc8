//! The load generator's connections: plain TCP, or TLS over TCP (`--tls-ca`, with a client
//! certificate for servers that ask for one), on rustls with the ring provider.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::error::LoadError;

/// TLS settings of a load run: the CA the server's certificate is checked against, and a
/// client certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTls {
    /// CA bundle (PEM).
    pub ca_file: PathBuf,
    /// Client certificate and key (PEM), for servers that require one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A TLS client configuration made from [`LoadTls`].
#[derive(Clone)]
pub(crate) struct TlsClient(tokio_rustls::TlsConnector);

impl TlsClient {
    /// Loads the files of `tls`.
    pub(crate) fn new(tls: &LoadTls) -> Result<TlsClient, LoadError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| LoadError::Config(format!("{what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&tls.ca_file).map_err(|e| bad("--tls-ca", &e))?;
        for cert in certs {
            roots
                .add(cert.map_err(|e| bad("--tls-ca", &e))?)
                .map_err(|e| bad("--tls-ca", &e))?;
        }
        let provider = Arc::new(ring_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_root_certificates(roots);
        let config = match &tls.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| bad("--tls-cert", &e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad("--tls-cert", &e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("--tls-cert", &e))?
            }
        };
        Ok(TlsClient(tokio_rustls::TlsConnector::from(Arc::new(
            config,
        ))))
    }

    /// Completes the TLS handshake on `tcp`, checking the certificate for `host`.
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<LoadStream> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(LoadStream::Tls(Box::new(self.0.connect(name, tcp).await?)))
    }
}

/// A connection, plain or TLS.
pub(crate) enum LoadStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for LoadStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LoadStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            LoadStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LoadStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LoadStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            LoadStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LoadStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            LoadStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LoadStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            LoadStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// rustls' ring provider. rustls 0.23.48 deprecates it for its lack of post-quantum key exchange;
/// ring stays on purpose (citytel builds with ring only, no aws-lc-rs).
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
