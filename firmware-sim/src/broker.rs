//! Where simulated devices connect, a broker or citytel's device endpoint: `mqtt://host:port`,
//! parsed and printed, and the MQTT version they speak there. The fleet, the load generator and
//! scenarios all take a [`BrokerAddr`].

use std::fmt;
use std::str::FromStr;

/// The MQTT version a load (or a fleet, [`crate::FleetConfig::mqtt_version`]) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[default]
    V311,
    /// MQTT 5: PUBLISH with an empty property list, and a window of at most the server's
    /// Receive Maximum.
    V5,
}

/// Port used when a broker address has none.
pub const DEFAULT_PORT: u16 = 1883;

/// A plain-TCP MQTT broker address, written `mqtt://host:port` (`tcp://` is accepted too; the port
/// defaults to 1883; IPv6 hosts go in brackets, `mqtt://[::1]:1883`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    /// Host name or IP address (an IPv6 address keeps its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a broker address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerAddrError {
    /// No `scheme://`.
    #[error("broker address {0:?} has no scheme; expected mqtt://host:port")]
    MissingScheme(String),
    /// A scheme other than `mqtt://` or `tcp://`.
    #[error("broker scheme {0:?} is not supported; use mqtt://host:port (plain TCP)")]
    UnsupportedScheme(String),
    /// Nothing (or an unbracketed IPv6 address) between the scheme and the port.
    #[error(
        "broker address {0:?} has no valid host (IPv6 addresses go in brackets: mqtt://[::1]:1883)"
    )]
    MissingHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("broker address {0:?} has an invalid port; expected 1 to 65535")]
    InvalidPort(String),
    /// User info, a path, a query or a fragment.
    #[error("broker address {0:?} must be just mqtt://host:port (no user, path or query)")]
    UnexpectedParts(String),
}

impl BrokerAddr {
    /// The address `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BrokerAddr {
            host: host.into(),
            port,
        }
    }
}

impl Default for BrokerAddr {
    /// `mqtt://127.0.0.1:1883`.
    fn default() -> Self {
        BrokerAddr::new("127.0.0.1", DEFAULT_PORT)
    }
}

impl FromStr for BrokerAddr {
    type Err = BrokerAddrError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BrokerAddrError::MissingScheme(url.to_string()))?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "mqtt" | "tcp") {
            return Err(BrokerAddrError::UnsupportedScheme(scheme.to_string()));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(BrokerAddrError::UnexpectedParts(url.to_string()));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| BrokerAddrError::MissingHost(url.to_string()))?;
                if ip.is_empty() {
                    return Err(BrokerAddrError::MissingHost(url.to_string()));
                }
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').unwrap_or(after)),
                };
                (format!("[{ip}]"), port)
            }
            None => match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(BrokerAddrError::MissingHost(url.to_string()));
                }
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (authority.to_string(), None),
            },
        };
        if host.is_empty() {
            return Err(BrokerAddrError::MissingHost(url.to_string()));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| BrokerAddrError::InvalidPort(url.to_string()))?,
        };
        Ok(BrokerAddr { host, port })
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(url: &str) -> Result<BrokerAddr, BrokerAddrError> {
        url.parse()
    }

    #[test]
    fn parses_host_and_port() {
        assert_eq!(
            parse("mqtt://127.0.0.1:1883"),
            Ok(BrokerAddr::new("127.0.0.1", 1883))
        );
        assert_eq!(
            parse("mqtt://broker.local:8883/"),
            Ok(BrokerAddr::new("broker.local", 8883))
        );
        assert_eq!(parse("tcp://emqx:1884"), Ok(BrokerAddr::new("emqx", 1884)));
        assert_eq!(
            parse("MQTT://emqx"),
            Ok(BrokerAddr::new("emqx", DEFAULT_PORT))
        );
        assert_eq!(
            parse("mqtt://[::1]:1999"),
            Ok(BrokerAddr::new("[::1]", 1999))
        );
        assert_eq!(
            parse("mqtt://[::1]"),
            Ok(BrokerAddr::new("[::1]", DEFAULT_PORT))
        );
    }

    #[test]
    fn rejects_bad_addresses_with_the_reason() {
        type Expected = fn(String) -> BrokerAddrError;
        let cases: [(&str, Expected); 12] = [
            ("127.0.0.1:1883", BrokerAddrError::MissingScheme),
            ("mqtts://host:8883", |_| {
                BrokerAddrError::UnsupportedScheme("mqtts".into())
            }),
            ("ws://host:80", |_| {
                BrokerAddrError::UnsupportedScheme("ws".into())
            }),
            ("mqtt://", BrokerAddrError::MissingHost),
            ("mqtt://:1883", BrokerAddrError::MissingHost),
            ("mqtt://[]:1883", BrokerAddrError::MissingHost),
            ("mqtt://::1:1883", BrokerAddrError::MissingHost),
            ("mqtt://host:", BrokerAddrError::InvalidPort),
            ("mqtt://host:0", BrokerAddrError::InvalidPort),
            ("mqtt://host:65536", BrokerAddrError::InvalidPort),
            ("mqtt://user@host:1883", BrokerAddrError::UnexpectedParts),
            ("mqtt://host:1883/topic", BrokerAddrError::UnexpectedParts),
        ];
        for (url, error) in cases {
            assert_eq!(parse(url), Err(error(url.to_string())), "{url}");
        }
        assert!(
            parse("mqtt://host:abc")
                .unwrap_err()
                .to_string()
                .contains("invalid port")
        );
    }

    proptest! {
        #[test]
        fn display_parses_back(host in "[a-z0-9][a-z0-9.-]{0,30}", port in 1u16..) {
            let addr = BrokerAddr::new(host, port);
            prop_assert_eq!(addr.to_string().parse::<BrokerAddr>(), Ok(addr));
        }
    }
}
