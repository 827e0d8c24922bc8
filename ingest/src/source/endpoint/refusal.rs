//! Connections refused at accept, before they hold a connection slot: the connection cap, the
//! per-address limits. Each is answered with a CONNACK in the client's own protocol version:
//! a short task reads the start of its CONNECT (at most [`PEEK_BYTES`], for at most
//! [`PEEK_TIME`]) for the protocol level, then answers MQTT 5 clients with 0x97 "quota
//! exceeded" (a connection limit) or 0x89 "server busy" (a rate limit) and a reason string,
//! and everyone else with the 3.1.1 CONNACK "server unavailable". At most [`LANE`] such tasks
//! run at once; beyond that, and on the TLS listener (no handshake is spent on a refusal), the
//! 3.1.1 answer is written without waiting, or the connection is just closed.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet};
use rumqttc::v5::mqttbytes::v5;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::telemetry::metrics as m;

/// Refused connections read and answered at once.
pub(crate) const LANE: usize = 32;
/// How long a refused connection has to send the start of its CONNECT.
pub(crate) const PEEK_TIME: Duration = Duration::from_secs(1);
/// Bytes of a CONNECT read for its protocol level (fixed header, name, level).
pub(crate) const PEEK_BYTES: usize = 16;

/// Answers connections refused at accept.
#[derive(Debug, Clone)]
pub(crate) struct Refusals {
    lane: Arc<Semaphore>,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals {
            lane: Arc::new(Semaphore::new(LANE)),
        }
    }
}

impl Refusals {
    /// Refuses `stream`, counted under `reason` (a `citytel_endpoint_refused_total` label);
    /// `plain` is false on the TLS listener.
    pub(crate) fn refuse(&self, stream: TcpStream, plain: bool, reason: &'static str) {
        metrics::counter!(m::ENDPOINT_REFUSED_TOTAL, "reason" => reason).increment(1);
        if !plain {
            return;
        }
        match self.lane.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    answer(stream, reason).await;
                    drop(permit);
                });
            }
            Err(_) => {
                let _ = stream.try_write(&connack_v4());
            }
        }
    }
}

/// Reads the protocol level of `stream`'s CONNECT and answers it in that version.
async fn answer(mut stream: TcpStream, reason: &'static str) {
    let mut head = BytesMut::with_capacity(PEEK_BYTES);
    let level = tokio::time::timeout(PEEK_TIME, async {
        loop {
            if let Some(level) = protocol_level(&head) {
                return Some(level);
            }
            if head.len() >= PEEK_BYTES {
                return None;
            }
            match stream.read_buf(&mut head).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .flatten();
    let out = match level {
        Some(5) => connack_v5(reason),
        _ => connack_v4(),
    };
    let _ = tokio::time::timeout(PEEK_TIME, stream.write_all(&out)).await;
    let _ = stream.shutdown().await;
}

/// The protocol level of the CONNECT `head` starts with, once enough of it is there.
pub(crate) fn protocol_level(head: &[u8]) -> Option<u8> {
    if *head.first()? != 0x10 {
        return None;
    }
    // Remaining length: 1 to 4 bytes, each with a continuation bit.
    let len_bytes = head[1..].iter().take(4).position(|b| b & 0x80 == 0)? + 1;
    // Protocol name: a two-byte length, then the name; then the level.
    let name = 1 + len_bytes;
    let name_len = usize::from(u16::from_be_bytes([*head.get(name)?, *head.get(name + 1)?]));
    head.get(name + 2 + name_len).copied()
}

fn connack_v4() -> Vec<u8> {
    let mut out = BytesMut::with_capacity(4);
    let _ = Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServiceUnavailable, false))
        .write(&mut out, usize::MAX);
    out.to_vec()
}

/// The MQTT 5 CONNACK of a refusal for `reason`.
fn connack_v5(reason: &'static str) -> Vec<u8> {
    let (code, why) = match reason {
        "connection_limit" => (
            v5::ConnectReturnCode::QuotaExceeded,
            "citytel holds as many device connections as it allows (endpoint.max_connections)",
        ),
        "ip_connection_limit" => (
            v5::ConnectReturnCode::QuotaExceeded,
            "too many connections from this address (endpoint.max_connections_per_ip)",
        ),
        _ => (
            v5::ConnectReturnCode::ServerBusy,
            "too many connects from this address; try again later",
        ),
    };
    let properties = v5::ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_max: None,
        reason_string: Some(why.to_string()),
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    };
    let connack = v5::ConnAck {
        session_present: false,
        code,
        properties: Some(properties),
    };
    let mut out = BytesMut::with_capacity(128);
    let _ = v5::Packet::ConnAck(connack).write(&mut out, None);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_level_is_read_from_the_start_of_a_connect() {
        // CONNECT, remaining length 16, "MQTT", level 5.
        let v5 = [0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 30];
        assert_eq!(protocol_level(&v5), Some(5));
        // A two-byte remaining length.
        let long = [0x10, 0x80, 0x01, 0, 4, b'M', b'Q', b'T', b'T', 4];
        assert_eq!(protocol_level(&long), Some(4));
        // MQTT 3.1's "MQIsdp".
        let v3 = [0x10, 20, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3];
        assert_eq!(protocol_level(&v3), Some(3));
        // Not yet, or not a CONNECT.
        assert_eq!(protocol_level(&v5[..8]), None);
        assert_eq!(protocol_level(&[0x30, 2, 0, 0]), None);
        assert_eq!(protocol_level(&[]), None);
    }

    #[test]
    fn mqtt5_refusals_say_quota_or_busy() {
        for (reason, code) in [
            ("connection_limit", v5::ConnectReturnCode::QuotaExceeded),
            ("ip_connection_limit", v5::ConnectReturnCode::QuotaExceeded),
            ("connect_rate", v5::ConnectReturnCode::ServerBusy),
            ("failed_connects", v5::ConnectReturnCode::ServerBusy),
        ] {
            let mut out = BytesMut::from(&connack_v5(reason)[..]);
            let Ok(v5::Packet::ConnAck(ack)) = v5::Packet::read(&mut out, None) else {
                panic!("a CONNACK");
            };
            assert_eq!(ack.code, code, "{reason}");
            assert!(ack.properties.and_then(|p| p.reason_string).is_some());
        }
    }
}
