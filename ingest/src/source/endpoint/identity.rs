//! Who a connecting device is, decided at CONNECT from its client certificate and its
//! credentials against the provisioning registry ([`crate::provisioning`]).
//!
//! - A verified client certificate names the device: its subject's common name, or its first
//!   DNS or URI SAN (`endpoint.tls.identity`). A certificate pinned in the registry
//!   (`cert_sha256`) must be that very certificate.
//! - Credentials: the MQTT user name is the device id, the password its token (checked against
//!   the stored SHA-256 in constant time) or its password (argon2id, checked on a blocking
//!   thread). With a certificate as well, the user name must be the certificate's device.
//! - The device must be provisioned and not revoked; with `endpoint.auto_register`, a device
//!   the registry does not list is admitted as the id its certificate, user name or client id
//!   gives (trust on first use), and [`super::authorize`] binds it to the first site and kind
//!   it publishes for.
//!
//! A refusal carries the CONNACK code (4 "bad user name or password" for a wrong secret, 5 "not
//! authorised" for everything else) and a reason for the log.

use std::sync::Arc;

use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode};

use super::authorize::AutoBindings;
use crate::config::CertIdentity;
use crate::net::tls::PeerCertificate;
use crate::provisioning::{Provisioning, credential};

/// How the device endpoint treats devices.
#[derive(Debug, Clone)]
pub(crate) enum DeviceAuth {
    /// Any client may publish anything (`endpoint.authentication = false`).
    Open,
    /// Devices prove who they are and speak only for themselves.
    Required(Arc<Authority>),
}

/// What authentication and authorisation consult.
#[derive(Debug)]
pub(crate) struct Authority {
    /// The provisioned devices.
    pub(crate) provisioning: Arc<Provisioning>,
    /// Admit devices the registry does not list.
    pub(crate) auto_register: bool,
    /// Where a certificate names its device.
    pub(crate) cert_identity: CertIdentity,
    /// Sites, kinds and owners of auto-registered devices.
    pub(crate) auto: AutoBindings,
}

impl Authority {
    /// An authority over `provisioning`.
    pub(crate) fn new(
        provisioning: Arc<Provisioning>,
        auto_register: bool,
        cert_identity: CertIdentity,
    ) -> Arc<Authority> {
        Arc::new(Authority {
            provisioning,
            auto_register,
            cert_identity,
            auto: AutoBindings::default(),
        })
    }
}

/// How a device proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// A client certificate.
    Certificate,
    /// Its token.
    Token,
    /// Its password.
    Password,
    /// Not at all: admitted by `endpoint.auto_register`.
    AutoRegistered,
}

impl Method {
    /// For logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Certificate => "certificate",
            Method::Token => "token",
            Method::Password => "password",
            Method::AutoRegistered => "auto_register",
        }
    }
}

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Its device id.
    pub(crate) device_id: String,
    /// How it proved it.
    pub(crate) method: Method,
}

/// A refused CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The CONNACK code.
    pub(crate) code: ConnectReturnCode,
    /// Why, for the log.
    pub(crate) why: String,
}

fn not_authorised(why: impl Into<String>) -> Refused {
    Refused {
        code: ConnectReturnCode::NotAuthorized,
        why: why.into(),
    }
}

fn bad_secret(why: impl Into<String>) -> Refused {
    Refused {
        code: ConnectReturnCode::BadUserNamePassword,
        why: why.into(),
    }
}

/// The device a certificate names, by `mode`.
pub(crate) fn certificate_device(cert: &PeerCertificate, mode: CertIdentity) -> Option<&str> {
    match mode {
        CertIdentity::Cn => cert.common_name.as_deref(),
        CertIdentity::San => cert.sans.first().map(String::as_str),
    }
}

impl Authority {
    /// Authenticates a CONNECT that came with `cert` (a verified client certificate, if any).
    pub(crate) async fn authenticate(
        &self,
        connect: &Connect,
        cert: Option<&PeerCertificate>,
    ) -> Result<Identity, Refused> {
        let login = connect.login.as_ref();
        let claimed = match (cert, login) {
            (Some(cert), login) => {
                let Some(id) = certificate_device(cert, self.cert_identity) else {
                    return Err(not_authorised(format!(
                        "the client certificate names no device ({:?} identity)",
                        self.cert_identity
                    )));
                };
                if let Some(login) = login
                    && login.username != id
                {
                    return Err(not_authorised(format!(
                        "user name {:?} is not the certificate's device {id:?}",
                        login.username
                    )));
                }
                id.to_string()
            }
            (None, Some(login)) => login.username.clone(),
            (None, None) if self.auto_register && !connect.client_id.is_empty() => {
                connect.client_id.clone()
            }
            (None, None) => {
                return Err(not_authorised("no client certificate and no credentials"));
            }
        };
        if !citytel_proto::topic::is_valid_id(&claimed) {
            return Err(not_authorised(format!(
                "{claimed:?} is not a device id (1 to 128 characters of [A-Za-z0-9._-])"
            )));
        }
        let registry = self.provisioning.snapshot();
        let Some(entry) = registry.get(&claimed) else {
            if self.auto_register {
                return Ok(Identity {
                    device_id: claimed,
                    method: Method::AutoRegistered,
                });
            }
            return Err(not_authorised(format!(
                "device {claimed:?} is not provisioned"
            )));
        };
        if entry.revoked {
            return Err(not_authorised(format!("device {claimed:?} is revoked")));
        }
        if let Some(cert) = cert
            && let Some(pinned) = &entry.cert_sha256
            && !credential::fingerprint_matches(&cert.fingerprint, pinned)
        {
            return Err(not_authorised(format!(
                "device {claimed:?} presented a certificate other than the one provisioned"
            )));
        }
        let Some(login) = login else {
            return match cert {
                Some(_) => Ok(Identity {
                    device_id: claimed,
                    method: Method::Certificate,
                }),
                None => Err(not_authorised(format!(
                    "device {claimed:?} must present its certificate or credentials"
                ))),
            };
        };
        if entry.token_sha256.is_none() && entry.password_argon2.is_none() {
            return match cert {
                Some(_) => Ok(Identity {
                    device_id: claimed,
                    method: Method::Certificate,
                }),
                None => Err(bad_secret(format!(
                    "device {claimed:?} has no token or password provisioned"
                ))),
            };
        }
        let secret = login.password.as_bytes();
        if let Some(token) = &entry.token_sha256
            && credential::token_matches(secret, token)
        {
            return Ok(Identity {
                device_id: claimed,
                method: method_with(cert, Method::Token),
            });
        }
        if let Some(hash) = entry.password_argon2.clone() {
            let password = secret.to_vec();
            let matches =
                tokio::task::spawn_blocking(move || credential::password_matches(&password, &hash))
                    .await
                    .unwrap_or(false);
            if matches {
                return Ok(Identity {
                    device_id: claimed,
                    method: method_with(cert, Method::Password),
                });
            }
        }
        Err(bad_secret(format!(
            "wrong password or token for device {claimed:?}"
        )))
    }
}

fn method_with(cert: Option<&PeerCertificate>, secret: Method) -> Method {
    if cert.is_some() {
        Method::Certificate
    } else {
        secret
    }
}
