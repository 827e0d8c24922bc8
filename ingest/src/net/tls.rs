//! TLS for citytel's listeners (the device endpoint's `mqtts` listener, gRPC, the dashboard and
//! metrics): rustls with the ring provider, TLS 1.2 and 1.3, a certificate and key from PEM
//! files, optional client certificates checked against a CA bundle (and an optional CRL).
//!
//! [`ServerTls`] owns one listener's TLS settings. Its certificate is served through
//! [`SwappableCert`], a `ResolvesServerCert` whose certified key [`ServerTls::reload`] replaces:
//! handshakes that start afterwards present the new certificate, connections already open keep
//! theirs. A reload also rebuilds the client-certificate verifier (a new CA bundle or CRL) and
//! swaps the whole `ServerConfig` new handshakes use. A reload that fails (a missing file, a key
//! that does not match its certificate) keeps what was loaded before and says why.
//!
//! [`MaybeTls`] is an accepted connection, plain or TLS, as the servers read and write it;
//! [`PeerCertificate`] is what a verified client certificate says (its SHA-256 fingerprint, its
//! subject's common name, its DNS and URI SANs).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::RwLock;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// ALPN of the gRPC listener (HTTP/2 only).
pub(crate) const ALPN_H2: &[&[u8]] = &[b"h2"];
/// ALPN of the dashboard (HTTP/2 for gRPC clients, HTTP/1.1 for browsers' gRPC-Web and pages).
pub(crate) const ALPN_H2_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the metrics endpoint (HTTP/1.1).
pub(crate) const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];
/// ALPN of the device endpoint: none, so a client's offer (MQTT clients rarely send one) is
/// ignored rather than refused.
pub(crate) const ALPN_MQTT: &[&[u8]] = &[];

/// Installs ring as the process's rustls provider, once; a provider installed before (by
/// another start in the same process) is kept. citytel's own configurations name ring
/// explicitly, so two providers in the tree can never make rustls panic over which to use.
pub fn install_crypto_provider() {
    let _ = ring_provider().install_default();
}

/// The ring provider every citytel TLS configuration is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring_provider())
}

// rustls 0.23.48 deprecates `ring::default_provider` because ring has no post-quantum key
// exchange; ring stays the provider on purpose (aws-lc-rs needs a C toolchain and cmake), and
// this is the one place that names it.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Why TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the settings (a key that does not match its certificate, a bad CA).
    #[error("{0}")]
    Rustls(String),
}

/// Where one listener's TLS material lives, and whether clients must present a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle client certificates are checked against (PEM); `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
    /// Revoked client certificates (PEM CRLs), checked with `client_ca`.
    pub crl: Option<PathBuf>,
    /// Refuse the handshake of a client without a valid certificate (needs `client_ca`).
    pub require_client_certificate: bool,
}

/// The certificate new handshakes present, replaced by a reload.
#[derive(Debug)]
pub(crate) struct SwappableCert(RwLock<Arc<CertifiedKey>>);

impl SwappableCert {
    fn swap(&self, key: Arc<CertifiedKey>) {
        *self.0.write() = key;
    }

    /// The certificate presented now.
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        self.0.read().clone()
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// One listener's TLS: its files, the certificate it presents and the configuration new
/// handshakes use.
#[derive(Debug)]
pub struct ServerTls {
    name: &'static str,
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    cert: Arc<SwappableCert>,
    config: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Loads `files` for the listener `name`, offering `alpn`.
    pub fn load(
        name: &'static str,
        files: TlsFiles,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerTls>, TlsError> {
        let cert = Arc::new(SwappableCert(RwLock::new(load_certified_key(&files)?)));
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let config = build_config(&files, &alpn, cert.clone())?;
        Ok(Arc::new(ServerTls {
            name,
            files,
            alpn,
            cert,
            config: RwLock::new(config),
        }))
    }

    /// The listener's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether clients may present certificates (a client CA is configured).
    pub fn verifies_clients(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// Reads the files again: new handshakes present the new certificate (and check client
    /// certificates against the new CA bundle and CRL); open connections are not touched. On
    /// error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.files)?;
        // Both are built before anything is swapped, so a bad CA keeps the old key too.
        let config = build_config(&self.files, &self.alpn, self.cert.clone())?;
        self.cert.swap(key);
        *self.config.write() = config;
        Ok(())
    }

    /// An acceptor with the configuration in force now.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.read().clone())
    }

    /// SHA-256 of the leaf certificate presented now, as hex (for logs and tests).
    pub fn fingerprint(&self) -> String {
        let key = self.cert.current();
        key.cert
            .first()
            .map(|c| hex::encode(Sha256::digest(c.as_ref())))
            .unwrap_or_default()
    }
}

fn file_error<'a>(what: &'static str, path: &'a Path) -> impl Fn(String) -> TlsError + 'a {
    move |message| TlsError::File {
        what,
        path: path.to_path_buf(),
        message,
    }
}

/// Every certificate in the PEM file at `path`; at least one.
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = file_error(what, path);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

fn load_certified_key(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = read_certs("certificate file", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error("key file", &files.key)(e.to_string()))?;
    let key = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        TlsError::Rustls(format!(
            "{} and {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    Ok(Arc::new(key))
}

fn build_config(
    files: &TlsFiles,
    alpn: &[Vec<u8>],
    cert: Arc<SwappableCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let rustls_error = |e: rustls::Error| TlsError::Rustls(e.to_string());
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("client CA file", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("client CA file", ca)(e.to_string()))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if let Some(crl) = &files.crl {
                let bad = file_error("CRL file", crl);
                let crls = CertificateRevocationListDer::pem_file_iter(crl)
                    .map_err(|e| bad(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                verifier = verifier.with_crls(crls);
            }
            if !files.require_client_certificate {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = alpn.to_vec();
    Ok(Arc::new(config))
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerCertificate {
    /// SHA-256 of the leaf certificate's DER, as lowercase hex.
    pub(crate) fingerprint: String,
    /// The subject's common name, if it has one.
    pub(crate) common_name: Option<String>,
    /// The DNS names and URIs among its subject alternative names, in order.
    pub(crate) sans: Vec<String>,
}

impl PeerCertificate {
    /// The leaf certificate of a verified TLS connection, if the client presented one.
    pub(crate) fn of(conn: &ServerConnection) -> Option<PeerCertificate> {
        let leaf = conn.peer_certificates()?.first()?;
        Some(Self::parse(leaf.as_ref()))
    }

    /// Reads a DER certificate (already verified by rustls; an unparsable one yields only its
    /// fingerprint).
    pub(crate) fn parse(der: &[u8]) -> PeerCertificate {
        use x509_parser::extensions::GeneralName;
        let fingerprint = hex::encode(Sha256::digest(der));
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return PeerCertificate {
                fingerprint,
                common_name: None,
                sans: Vec::new(),
            };
        };
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(n) | GeneralName::URI(n) => sans.push((*n).to_string()),
                    _ => {}
                }
            }
        }
        PeerCertificate {
            fingerprint,
            common_name,
            sans,
        }
    }
}

/// An accepted connection, plain or TLS.
#[derive(Debug)]
pub(crate) enum MaybeTls<S> {
    /// Plain TCP.
    Plain(S),
    /// TLS over TCP, after a completed handshake.
    Tls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S> MaybeTls<S> {
    /// The TCP connection under it.
    pub(crate) fn tcp(&self) -> &S {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(s) => s.get_ref().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests;
