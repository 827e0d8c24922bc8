//! Test certificates, made by the tests themselves with rcgen, and TLS clients that trust them.
//!
//! [`TestCa`] is a certificate authority: [`TestCa::server`] issues a server certificate for
//! `localhost` and `127.0.0.1`, [`TestCa::client`] a client certificate whose common name is a
//! device id, [`TestCa::crl`] a revocation list. Two `TestCa`s are unrelated, so a certificate from one is refused by a server that
//! trusts the other. [`Issued::write`] puts a certificate and its key into PEM files, as an
//! operator would hand them to citytel or Mosquitto. [`client_config`] and [`connect`] make a
//! rustls client (ring provider) that trusts a CA and optionally presents a client certificate.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate and its private key, as PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
}

/// Where [`Issued::write`] put a certificate and its key.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
}

impl Issued {
    /// The certificate's DER (what a TLS peer is shown).
    pub fn cert_der(&self) -> io::Result<Vec<u8>> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map(|der| der.to_vec())
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Writes `{name}.pem` and `{name}.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> io::Result<CertFiles> {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok(CertFiles { cert, key })
    }
}

/// A test certificate authority.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn rcgen_error(e: rcgen::Error) -> io::Error {
    io::Error::other(e.to_string())
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> io::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.distinguished_name = named(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate (PEM), what clients and servers are told to trust.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `{dir}/{name}.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> io::Result<PathBuf> {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, self.cert_pem())?;
        Ok(path)
    }

    /// A server certificate for `localhost` and `127.0.0.1`, with `common_name`.
    pub fn server(&self, common_name: &str) -> io::Result<Issued> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string()]).map_err(rcgen_error)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name = named(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose subject's common name is `common_name` (a device id).
    pub fn client(&self, common_name: &str) -> io::Result<Issued> {
        self.client_with_sans(common_name, &[])
    }

    /// A client certificate with `common_name` and DNS names `sans`.
    pub fn client_with_sans(&self, common_name: &str, sans: &[&str]) -> io::Result<Issued> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(rcgen_error)?;
        params.distinguished_name = named(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// A client certificate with `common_name` and serial number `serial` (to revoke it by).
    pub fn client_with_serial(&self, common_name: &str, serial: u64) -> io::Result<Issued> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.distinguished_name = named(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from(serial));
        self.issue(params)
    }

    /// A certificate revocation list (PEM) from this CA revoking the certificates with serial
    /// numbers `serials`.
    pub fn crl(&self, serials: &[u64]) -> io::Result<String> {
        let revoked_at = rcgen::date_time_ymd(2024, 1, 1);
        let params = CertificateRevocationListParams {
            this_update: revoked_at,
            next_update: rcgen::date_time_ymd(4000, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|&serial| RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: revoked_at,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.cert, &self.key)
            .and_then(|crl| crl.pem())
            .map_err(rcgen_error)
    }

    fn issue(&self, params: CertificateParams) -> io::Result<Issued> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(rcgen_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A rustls client configuration (ring provider, TLS 1.2 and 1.3) that trusts `ca_pem` and
/// presents `client` if given.
pub fn client_config(
    ca_pem: &str,
    client: Option<&Issued>,
) -> io::Result<Arc<rustls::ClientConfig>> {
    let bad = |e: &dyn std::fmt::Display| io::Error::other(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    let provider = Arc::new(ring_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let certs = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&e))?;
            let key =
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).map_err(|e| bad(&e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| bad(&e))?
        }
    };
    Ok(Arc::new(config))
}

/// Connects to `addr` over TLS with `config`, checking the server's certificate for
/// `127.0.0.1`. A refused handshake is an error.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    // With TLS 1.3 the server's verdict on a client certificate arrives after the client's
    // handshake is done: a refusal shows as an alert on the first read.
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The DER of the leaf certificate the server presented.
pub fn server_certificate(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    let (_, conn) = stream.get_ref();
    conn.peer_certificates()?
        .first()
        .map(|c| c.as_ref().to_vec())
}

/// rustls' ring provider. rustls 0.23.48 deprecates it for its lack of post-quantum key exchange;
/// ring stays on purpose (citytel builds with ring only, no aws-lc-rs).
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
