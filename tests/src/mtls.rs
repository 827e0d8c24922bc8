//! A citytel whose devices prove who they are over mutual TLS, for the tests of device identity.
//!
//! [`Pki`] is a test CA (the testkit's, rcgen) that issues the server's certificate and each
//! device's client certificate (its common name is its device id), written to PEM files in a
//! directory other users can read (Mosquitto reads them after dropping root). [`provision`]
//! writes a provisioning file in a data directory, as `citytel devices add` would. [`start`]
//! runs `citytel serve` with only its `mqtts` listener, requiring a client certificate from the
//! CA, device authentication on. [`connect`] opens an MQTT connection over TLS as a device,
//! [`connect5`] an MQTT 5 one.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use citytel_ingest::provisioning::{DeviceEntry, ProvisioningFile};
use citytel_testkit::mqtt::{self, MqttError, PacketReader};
use citytel_testkit::mqtt5::{self, Mqtt5Error};
use citytel_testkit::tls::{self, CertFiles, Issued, TestCa};
use rumqttc::mqttbytes::v4::{ConnAck, Connect};
use rumqttc::v5::mqttbytes::v5;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::process::Citytel;

/// An MQTT connection over TLS, read packet by packet.
pub type TlsConn = PacketReader<TlsStream<TcpStream>>;
/// An MQTT 5 connection over TLS, read packet by packet.
pub type TlsConn5 = mqtt5::PacketReader<TlsStream<TcpStream>>;

/// A test CA and the certificates it issued, as files.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: TestCa,
    /// The CA certificate (PEM).
    pub ca_file: PathBuf,
    /// The server certificate (for `localhost` and 127.0.0.1) and its key.
    pub server: CertFiles,
}

/// A device's client certificate, as PEM and as files.
pub struct DeviceCert {
    /// The certificate and key.
    pub issued: Issued,
    /// Where they were written.
    pub files: CertFiles,
}

impl Pki {
    /// A new CA named `name` with a server certificate, in a fresh world-readable directory.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("citytel-pki-")
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .expect("pki dir");
        let ca = TestCa::new(name).expect("test CA");
        let ca_file = ca.write(dir.path(), "ca").expect("write CA");
        let server = ca
            .server("citytel test server")
            .expect("server certificate")
            .write(dir.path(), "server")
            .expect("write server certificate");
        let pki = Pki {
            dir,
            ca,
            ca_file,
            server,
        };
        pki.readable();
        pki
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// A client certificate whose common name is `device`, written as `{device}.pem|.key`.
    pub fn device(&self, device: &str) -> DeviceCert {
        let issued = self.ca.client(device).expect("client certificate");
        let files = issued.write(self.dir(), device).expect("write certificate");
        self.readable();
        DeviceCert { issued, files }
    }

    /// A client certificate whose common name is `name` and serial number `serial`.
    pub fn client_with_serial(&self, name: &str, serial: u64) -> Issued {
        self.ca
            .client_with_serial(name, serial)
            .expect("client certificate")
    }

    /// Writes a CRL revoking the certificates with serial numbers `serials` as `clients.crl`.
    pub fn write_crl(&self, serials: &[u64]) -> PathBuf {
        let path = self.dir().join("clients.crl");
        std::fs::write(&path, self.ca.crl(serials).expect("CRL")).expect("write the CRL");
        self.readable();
        path
    }

    /// The `citytel serve` arguments that turn TLS on for the `[{section}.tls]` listener with
    /// the server's certificate and key files.
    pub fn listener_args(&self, section: &str) -> Vec<String> {
        let mut args = vec!["--set".to_string(), format!("{section}.tls.enabled=true")];
        for (key, path) in [
            ("cert_file", &self.server.cert),
            ("key_file", &self.server.key),
        ] {
            args.push("--set".to_string());
            args.push(format!(
                "{section}.tls.{key}={:?}",
                path.display().to_string()
            ));
        }
        args
    }

    /// Issues a new server certificate named `common_name` over the server's certificate and
    /// key files (as an operator renews one in place); returns its DER.
    pub fn renew_server(&self, common_name: &str) -> Vec<u8> {
        let issued = self.ca.server(common_name).expect("server certificate");
        let tmp = issued.write(self.dir(), "server-renewed").expect("write");
        std::fs::rename(&tmp.key, &self.server.key).expect("replace key");
        std::fs::rename(&tmp.cert, &self.server.cert).expect("replace certificate");
        self.readable();
        issued.cert_der().expect("PEM")
    }

    fn readable(&self) {
        for entry in std::fs::read_dir(self.dir()).expect("read pki dir") {
            let path = entry.expect("pki entry").path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// A device of the provisioning file: id, kind, site at `site-01`, and its gateway.
pub fn device(id: &str, kind: &str, gateway: Option<&str>) -> DeviceEntry {
    DeviceEntry {
        id: id.to_string(),
        kind: kind.to_string(),
        site: "site-01".to_string(),
        gateway: gateway.map(str::to_string),
        ..DeviceEntry::default()
    }
}

/// Writes the provisioning file of `data_dir` (`devices.toml`) with `devices`.
pub fn provision(data_dir: &Path, devices: Vec<DeviceEntry>) {
    let mut file = ProvisioningFile::new();
    file.devices = devices;
    file.write(&data_dir.join("devices.toml"))
        .expect("write the provisioning file");
}

/// `--set key="path"`.
fn set_path(key: &str, path: &Path) -> [String; 2] {
    [
        "--set".to_string(),
        format!("{key}={:?}", path.display().to_string()),
    ]
}

/// The arguments that turn on device authentication and the `mqtts` listener (only it),
/// requiring a client certificate from `pki`'s CA.
pub fn mtls_args(pki: &Pki) -> Vec<String> {
    let mut args: Vec<String> = [
        "--set",
        "endpoint.authentication=true",
        "--set",
        "endpoint.plain=false",
        "--set",
        "endpoint.tls.enabled=true",
        "--set",
        "endpoint.tls.require_client_certificate=true",
        // The tests refuse many connects from 127.0.0.1 on purpose.
        "--set",
        "endpoint.failed_connects_per_ip=100000",
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(set_path("endpoint.tls.cert_file", &pki.server.cert));
    args.extend(set_path("endpoint.tls.key_file", &pki.server.key));
    args.extend(set_path("endpoint.tls.client_ca_file", &pki.ca_file));
    args
}

/// Starts citytel on `data_dir` with [`mtls_args`] and `extra`.
pub fn start(data_dir: &Path, pki: &Pki, extra: &[&str]) -> Citytel {
    let mut args = mtls_args(pki);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let citytel = Citytel::start(data_dir, &args);
    assert!(citytel.mqtt.is_none(), "the plain listener is off");
    assert!(
        citytel.mqtts.is_some(),
        "citytel printed its mqtts endpoint"
    );
    citytel
}

/// Opens a TLS connection to `addr` trusting `ca_pem`, presenting `client`, and sends
/// `connect`. A refused handshake, a refused CONNECT or a closed connection is an error.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Issued>,
    connect: Connect,
) -> Result<(ConnAck, TlsConn), MqttError> {
    let config = tls::client_config(ca_pem, client)?;
    let stream = tls::connect(addr, config).await?;
    let mut conn = PacketReader::new(stream);
    let ack = mqtt::connect(&mut conn, connect).await?;
    Ok((ack, conn))
}

/// Like [`connect`] over MQTT 5: connects as `client_id` with clean start, a 2-minute
/// keep-alive and `will`, if any. A refused CONNECT comes back with its CONNACK.
pub async fn connect5(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Issued>,
    client_id: &str,
    will: Option<v5::LastWill>,
) -> Result<(v5::ConnAck, TlsConn5), Mqtt5Error> {
    let config = tls::client_config(ca_pem, client)?;
    let stream = tls::connect(addr, config).await?;
    let mut conn = mqtt5::PacketReader::new(stream);
    let connect = v5::Connect {
        keep_alive: 120,
        client_id: client_id.to_string(),
        clean_start: true,
        properties: None,
    };
    let ack = mqtt5::connect(&mut conn, connect, will, None).await?;
    Ok((ack, conn))
}

/// A clean-session CONNECT as `client_id` with a 2-minute keep-alive.
pub fn connect_packet(client_id: &str) -> Connect {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 120;
    connect.clean_session = true;
    connect
}
