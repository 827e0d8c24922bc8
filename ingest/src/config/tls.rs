//! The configuration's TLS and device-authentication rules: the files each TLS listener needs,
//! the `mqtts://` broker's CA, and the rule that a device endpoint outside loopback never runs
//! without device authentication unless that is explicitly allowed (mirroring the API's rule
//! in [`Config::check_api`]).

use std::path::{Path, PathBuf};

use super::sections::{EndpointTlsConfig, ListenerTlsConfig};
use super::{Config, ConfigError};
use crate::net::tls::TlsFiles;

fn set(path: &Path) -> Option<PathBuf> {
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// Checks one listener's TLS files: a certificate and key when enabled, a client CA when client
/// certificates are required.
fn check_files(
    key: &'static str,
    enabled: bool,
    files: (&Path, &Path, &Path, bool),
) -> Result<(), ConfigError> {
    let (cert, private_key, client_ca, require) = files;
    let invalid = |message: &str| ConfigError::Invalid {
        key,
        message: message.to_string(),
    };
    if !enabled {
        return Ok(());
    }
    if cert.as_os_str().is_empty() || private_key.as_os_str().is_empty() {
        return Err(invalid("TLS is enabled: set cert_file and key_file"));
    }
    if require && client_ca.as_os_str().is_empty() {
        return Err(invalid(
            "require_client_certificate needs client_ca_file (the CA client certificates come from)",
        ));
    }
    Ok(())
}

impl ListenerTlsConfig {
    /// The listener's TLS files, when TLS is enabled.
    pub fn files(&self) -> Option<TlsFiles> {
        self.enabled.then(|| TlsFiles {
            cert: self.cert_file.clone(),
            key: self.key_file.clone(),
            client_ca: set(&self.client_ca_file),
            crl: set(&self.crl_file),
            require_client_certificate: self.require_client_certificate,
        })
    }
}

impl EndpointTlsConfig {
    /// The `mqtts` listener's TLS files, when it is enabled.
    pub fn files(&self) -> Option<TlsFiles> {
        self.enabled.then(|| TlsFiles {
            cert: self.cert_file.clone(),
            key: self.key_file.clone(),
            client_ca: set(&self.client_ca_file),
            crl: set(&self.crl_file),
            require_client_certificate: self.require_client_certificate,
        })
    }
}

impl Config {
    /// The device provisioning file (`endpoint.devices_file` in the data directory unless
    /// absolute).
    pub fn devices_file(&self) -> PathBuf {
        self.in_data_dir(&self.endpoint.devices_file)
    }

    /// `path` relative to the data directory unless absolute.
    pub(super) fn in_data_dir(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.storage.data_dir.join(path)
        }
    }

    /// The device endpoint's listeners and the refusal of an anonymous non-loopback endpoint.
    pub(super) fn check_endpoint(&self) -> Result<(), ConfigError> {
        let e = &self.endpoint;
        let t = &e.tls;
        check_files(
            "endpoint.tls",
            t.enabled,
            (
                &t.cert_file,
                &t.key_file,
                &t.client_ca_file,
                t.require_client_certificate,
            ),
        )?;
        if !e.plain && !t.enabled {
            return Err(ConfigError::Invalid {
                key: "endpoint.plain",
                message: "the plain listener is off and endpoint.tls is not enabled: devices \
                          could not connect"
                    .into(),
            });
        }
        if e.devices_file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "endpoint.devices_file",
                message: "must not be empty".into(),
            });
        }
        if e.authentication || e.allow_anonymous {
            return Ok(());
        }
        let listeners = [
            e.plain.then_some(("endpoint.listen", e.listen)),
            t.enabled.then_some(("endpoint.tls.listen", t.listen)),
        ];
        if let Some((key, addr)) = listeners
            .into_iter()
            .flatten()
            .find(|(_, addr)| !addr.ip().is_loopback())
        {
            return Err(ConfigError::Invalid {
                key,
                message: format!(
                    "{addr} is not a loopback address and endpoint.authentication is off: anyone \
                     who reaches it could publish readings, births and deaths for any device. \
                     Turn endpoint.authentication on (and provision devices with `citytel \
                     devices add`), listen on loopback, or pass --allow-anonymous-devices \
                     (endpoint.allow_anonymous) if that is really intended"
                ),
            });
        }
        Ok(())
    }

    /// The TLS files of the gRPC, dashboard and metrics listeners.
    pub(super) fn check_listener_tls(&self) -> Result<(), ConfigError> {
        for (key, tls) in [
            ("grpc.tls", &self.grpc.tls),
            ("http.tls", &self.http.tls),
            ("metrics.tls", &self.metrics.tls),
        ] {
            check_files(
                key,
                tls.enabled,
                (
                    &tls.cert_file,
                    &tls.key_file,
                    &tls.client_ca_file,
                    tls.require_client_certificate,
                ),
            )?;
        }
        Ok(())
    }

    /// An `mqtts://` broker needs a CA; a client certificate needs its key.
    pub(super) fn check_broker_tls(&self, tls: bool) -> Result<(), ConfigError> {
        let b = &self.broker;
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_string(),
        };
        if b.cert_file.as_os_str().is_empty() != b.key_file.as_os_str().is_empty() {
            return Err(invalid(
                "broker.cert_file",
                "cert_file and key_file must be set together",
            ));
        }
        if tls && b.ca_file.as_os_str().is_empty() {
            return Err(invalid(
                "broker.ca_file",
                "an mqtts:// broker needs ca_file, the CA bundle its certificate is checked against",
            ));
        }
        let tls_files_set =
            !b.ca_file.as_os_str().is_empty() || !b.cert_file.as_os_str().is_empty();
        if !tls && tls_files_set {
            return Err(invalid(
                "broker.url",
                "ca_file, cert_file and key_file are for mqtts:// brokers",
            ));
        }
        Ok(())
    }
}
