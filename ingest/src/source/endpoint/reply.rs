//! What the endpoint writes to a device, in the connection's protocol version: CONNACK,
//! publish acknowledgements, control packets and, in MQTT 5, a DISCONNECT that says why the
//! server closes the connection.
//!
//! MQTT 5 acknowledgements carry a reason code: a PUBLISH stored as a dead letter is still
//! acknowledged (it is durable, and resending it would not help), but with the code that tells
//! the device why ([`puback_reason`]) and the dead-letter reason as the reason string. Reason
//! strings are left out when the client asked for no problem information, and every property
//! is left out of a packet that would exceed the client's Maximum Packet Size.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::wire::{ClientOptions, Version};
use crate::decode::RejectReason;
use crate::pipeline::AckToken;

/// A packet to a client, other than a PUBLISH acknowledgement (see [`Encoder::ack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToClient {
    /// PUBCOMP for a PUBREL.
    PubComp(u16),
    /// PINGRESP.
    PingResp,
    /// SUBACK: per filter, whether it is granted (at QoS 0) or refused.
    SubAck(u16, Vec<bool>),
    /// A PUBLISH at QoS 0 (citytel never needs an outgoing packet id): the retained Sparkplug
    /// STATE on subscribe, a rebirth request.
    Publish {
        /// Topic name.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// The retain flag.
        retain: bool,
    },
    /// UNSUBACK, with whether a subscription existed for each filter of the UNSUBSCRIBE.
    UnsubAck(u16, Vec<bool>),
    /// MQTT 5 DISCONNECT from the server, with its reason code and reason string (nothing is
    /// written in 3.1.1, which has no server DISCONNECT).
    Disconnect(v5::DisconnectReasonCode, String),
    /// MQTT 5 PUBACK (or PUBREC at QoS 2) 0x97 "quota exceeded" for a PUBLISH refused while the
    /// intake is saturated: not stored, to be sent again (nothing is written in 3.1.1, which
    /// cannot refuse a PUBLISH).
    Busy(u16, QoS),
}

/// The reason string of a PUBLISH refused while the intake is saturated.
pub(crate) const BUSY_TEXT: &str = "citytel's intake is saturated: not stored, send it again later";

/// Writes packets for one connection: its version and what its client asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    /// The connection's protocol version.
    pub(crate) version: Version,
    /// What an MQTT 5 client asked of the server's packets.
    pub(crate) options: ClientOptions,
}

/// The MQTT 5 PUBACK (and PUBREC) reason code for a message dead-lettered for `reason`.
pub(crate) fn puback_reason(reason: RejectReason) -> v5::PubAckReason {
    use RejectReason as R;
    match reason {
        R::UnknownTopic => v5::PubAckReason::TopicNameInvalid,
        R::Unauthorized => v5::PubAckReason::NotAuthorized,
        R::TooManySeries | R::TooManyDevices | R::TooManyAttributes => {
            v5::PubAckReason::QuotaExceeded
        }
        R::SparkplugOutOfSession | R::SparkplugUnknownMetric | R::SparkplugStale => {
            v5::PubAckReason::ImplementationSpecificError
        }
        R::Malformed
        | R::EmptyPayload
        | R::DeviceMismatch
        | R::Oversize
        | R::NonFiniteValue
        | R::TimestampInFuture
        | R::TimestampTooOld
        | R::UnknownStatusType
        | R::InvalidField
        | R::SinkRejected => v5::PubAckReason::PayloadFormatInvalid,
    }
}

fn pubrec_reason(reason: v5::PubAckReason) -> v5::PubRecReason {
    match reason {
        v5::PubAckReason::Success => v5::PubRecReason::Success,
        v5::PubAckReason::NoMatchingSubscribers => v5::PubRecReason::NoMatchingSubscribers,
        v5::PubAckReason::UnspecifiedError => v5::PubRecReason::UnspecifiedError,
        v5::PubAckReason::ImplementationSpecificError => {
            v5::PubRecReason::ImplementationSpecificError
        }
        v5::PubAckReason::NotAuthorized => v5::PubRecReason::NotAuthorized,
        v5::PubAckReason::TopicNameInvalid => v5::PubRecReason::TopicNameInvalid,
        v5::PubAckReason::PacketIdentifierInUse => v5::PubRecReason::PacketIdentifierInUse,
        v5::PubAckReason::QuotaExceeded => v5::PubRecReason::QuotaExceeded,
        v5::PubAckReason::PayloadFormatInvalid => v5::PubRecReason::PayloadFormatInvalid,
    }
}

/// The reason string of an acknowledgement of a message dead-lettered for `reason`.
fn refusal_text(reason: RejectReason) -> String {
    format!("dead-lettered as {reason}")
}

impl Encoder {
    /// An encoder for a 3.1.1 connection, or a 5 one that asked for nothing special.
    #[cfg(test)]
    pub(crate) fn new(version: Version) -> Self {
        Encoder {
            version,
            options: ClientOptions::default(),
        }
    }

    /// Encodes the acknowledgement `token`: PUBACK, or PUBREC at QoS 2; in MQTT 5 with the
    /// reason code (and string) of a dead-lettered message.
    pub(crate) fn ack(&self, token: AckToken, out: &mut BytesMut) {
        let pkid = token.pkid;
        // Only small, well-formed packets are written here; encoding cannot fail.
        match (self.version, token.qos) {
            (Version::V4, QoS::ExactlyOnce) => {
                let _ = v4::Packet::PubRec(v4::PubRec::new(pkid)).write(out, usize::MAX);
            }
            (Version::V4, _) => {
                let _ = v4::Packet::PubAck(v4::PubAck::new(pkid)).write(out, usize::MAX);
            }
            (Version::V5, qos) => {
                let reason = token
                    .refused
                    .map_or(v5::PubAckReason::Success, puback_reason);
                let text = token.refused.map(refusal_text);
                let packet = |text: Option<String>| {
                    if qos == QoS::ExactlyOnce {
                        v5::Packet::PubRec(v5::PubRec {
                            pkid,
                            reason: pubrec_reason(reason),
                            properties: text.map(|reason_string| v5::PubRecProperties {
                                reason_string: Some(reason_string),
                                user_properties: Vec::new(),
                            }),
                        })
                    } else {
                        v5::Packet::PubAck(v5::PubAck {
                            pkid,
                            reason,
                            properties: text.map(|reason_string| v5::PubAckProperties {
                                reason_string: Some(reason_string),
                                user_properties: Vec::new(),
                            }),
                        })
                    }
                };
                self.write5(packet(self.reason_string(text)), Some(packet(None)), out);
            }
        }
    }

    /// Encodes `packet`.
    pub(crate) fn encode(&self, packet: &ToClient, out: &mut BytesMut) {
        match self.version {
            Version::V4 => {
                let packet = match packet {
                    ToClient::PubComp(pkid) => v4::Packet::PubComp(v4::PubComp::new(*pkid)),
                    ToClient::PingResp => v4::Packet::PingResp,
                    ToClient::SubAck(pkid, granted) => v4::Packet::SubAck(v4::SubAck::new(
                        *pkid,
                        granted
                            .iter()
                            .map(|&ok| match ok {
                                true => v4::SubscribeReasonCode::Success(QoS::AtMostOnce),
                                false => v4::SubscribeReasonCode::Failure,
                            })
                            .collect(),
                    )),
                    ToClient::Publish {
                        topic,
                        payload,
                        retain,
                    } => v4::Packet::Publish(v4::Publish {
                        dup: false,
                        qos: QoS::AtMostOnce,
                        retain: *retain,
                        topic: topic.clone(),
                        pkid: 0,
                        payload: payload.clone(),
                    }),
                    ToClient::UnsubAck(pkid, _) => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
                    // 3.1.1 has no DISCONNECT from the server: the connection just closes;
                    // nor a way to refuse a PUBLISH.
                    ToClient::Disconnect(..) | ToClient::Busy(..) => return,
                };
                let _ = packet.write(out, usize::MAX);
            }
            Version::V5 => {
                let packet = match packet {
                    ToClient::PubComp(pkid) => v5::Packet::PubComp(v5::PubComp::new(*pkid, None)),
                    ToClient::PingResp => v5::Packet::PingResp(v5::PingResp),
                    ToClient::SubAck(pkid, granted) => v5::Packet::SubAck(v5::SubAck {
                        pkid: *pkid,
                        return_codes: granted
                            .iter()
                            .map(|&ok| match ok {
                                true => v5::SubscribeReasonCode::Success(
                                    rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                                ),
                                false => v5::SubscribeReasonCode::NotAuthorized,
                            })
                            .collect(),
                        properties: None,
                    }),
                    ToClient::Publish {
                        topic,
                        payload,
                        retain,
                    } => v5::Packet::Publish(v5::Publish {
                        dup: false,
                        qos: rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                        retain: *retain,
                        topic: Bytes::copy_from_slice(topic.as_bytes()),
                        pkid: 0,
                        payload: payload.clone(),
                        properties: None,
                    }),
                    ToClient::UnsubAck(pkid, existed) => v5::Packet::UnsubAck(v5::UnsubAck {
                        pkid: *pkid,
                        reasons: existed
                            .iter()
                            .map(|&existed| match existed {
                                true => v5::UnsubAckReason::Success,
                                false => v5::UnsubAckReason::NoSubscriptionExisted,
                            })
                            .collect(),
                        properties: None,
                    }),
                    ToClient::Busy(pkid, qos) => {
                        let text = self.reason_string(Some(BUSY_TEXT.to_string()));
                        let packet = |text: Option<String>| match qos {
                            QoS::ExactlyOnce => v5::Packet::PubRec(v5::PubRec {
                                pkid: *pkid,
                                reason: v5::PubRecReason::QuotaExceeded,
                                properties: text.map(|reason_string| v5::PubRecProperties {
                                    reason_string: Some(reason_string),
                                    user_properties: Vec::new(),
                                }),
                            }),
                            _ => v5::Packet::PubAck(v5::PubAck {
                                pkid: *pkid,
                                reason: v5::PubAckReason::QuotaExceeded,
                                properties: text.map(|reason_string| v5::PubAckProperties {
                                    reason_string: Some(reason_string),
                                    user_properties: Vec::new(),
                                }),
                            }),
                        };
                        self.write5(packet(text), Some(packet(None)), out);
                        return;
                    }
                    ToClient::Disconnect(code, why) => {
                        let full = v5::Packet::Disconnect(v5::Disconnect {
                            reason_code: *code,
                            properties: Some(v5::DisconnectProperties {
                                session_expiry_interval: None,
                                reason_string: Some(why.clone()),
                                user_properties: Vec::new(),
                                server_reference: None,
                            }),
                        });
                        // DISCONNECT may carry a reason string whatever Request Problem
                        // Information said. Without properties it is written here, with an
                        // empty property length: rumqttc's codec writes one its remaining length
                        // does not count.
                        if full.write(out, self.options.max_packet).is_err() {
                            out.extend_from_slice(&[0xe0, 2, *code as u8, 0]);
                        }
                        return;
                    }
                };
                self.write5(packet, None, out);
            }
        }
    }

    /// The reason string `text`, unless the client asked for no problem information.
    fn reason_string(&self, text: Option<String>) -> Option<String> {
        text.filter(|_| self.options.problem_information)
    }

    /// Writes `packet`, or `lean` (the same without properties) when `packet` exceeds the
    /// client's Maximum Packet Size; nothing when that does too (the client may not be sent
    /// it).
    fn write5(&self, packet: v5::Packet, lean: Option<v5::Packet>, out: &mut BytesMut) {
        if packet.write(out, self.options.max_packet).is_err()
            && let Some(lean) = lean
        {
            let _ = lean.write(out, self.options.max_packet);
        }
    }
}

/// What citytel grants an accepted MQTT 5 connection, told in its CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Receive Maximum: QoS 1 and 2 publishes the client may have unacknowledged.
    pub(crate) receive_max: u16,
    /// Maximum Packet Size citytel accepts, whole packets.
    pub(crate) max_packet: u32,
    /// Topic Alias Maximum: the highest alias the client may set.
    pub(crate) topic_alias_max: u16,
    /// Server Keep Alive, when citytel holds the connection to another than it asked for.
    pub(crate) server_keep_alive: Option<u16>,
    /// Session Expiry Interval, when citytel grants another than the client asked for.
    pub(crate) session_expiry: Option<u32>,
}

/// The MQTT 5 CONNACK reason code for a 3.1.1 return code (the shared logic decides in 3.1.1
/// codes; MQTT 5 has a more precise one for each).
pub(crate) fn connack_code_v5(code: v4::ConnectReturnCode) -> v5::ConnectReturnCode {
    match code {
        v4::ConnectReturnCode::Success => v5::ConnectReturnCode::Success,
        v4::ConnectReturnCode::RefusedProtocolVersion => {
            v5::ConnectReturnCode::UnsupportedProtocolVersion
        }
        v4::ConnectReturnCode::BadClientId => v5::ConnectReturnCode::ClientIdentifierNotValid,
        v4::ConnectReturnCode::ServiceUnavailable => v5::ConnectReturnCode::ServerUnavailable,
        v4::ConnectReturnCode::BadUserNamePassword => v5::ConnectReturnCode::BadUserNamePassword,
        v4::ConnectReturnCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
    }
}

/// Encodes a CONNACK with `code` (`session_present` on success) in `version`; an MQTT 5
/// refusal carries `why` as its reason string, and an MQTT 5 success what citytel `grant`s.
pub(crate) fn encode_connack(
    version: Version,
    code: v4::ConnectReturnCode,
    session_present: bool,
    why: Option<&str>,
    grant: Option<&Grant>,
) -> BytesMut {
    let mut out = BytesMut::with_capacity(32);
    match version {
        Version::V4 => {
            let _ = v4::Packet::ConnAck(v4::ConnAck::new(code, session_present))
                .write(&mut out, usize::MAX);
        }
        Version::V5 => {
            let properties = v5::ConnAckProperties {
                session_expiry_interval: grant.and_then(|g| g.session_expiry),
                receive_max: grant.map(|g| g.receive_max),
                max_qos: None,
                // Devices only publish here: no retained messages, subscriptions or wildcards.
                retain_available: Some(0),
                max_packet_size: grant.map(|g| g.max_packet),
                assigned_client_identifier: None,
                topic_alias_max: grant.map(|g| g.topic_alias_max),
                reason_string: why.map(str::to_owned),
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(0),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: grant.and_then(|g| g.server_keep_alive),
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            };
            let connack = v5::ConnAck {
                session_present,
                code: connack_code_v5(code),
                properties: Some(properties),
            };
            let _ = v5::Packet::ConnAck(connack).write(&mut out, None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectReason;

    #[test]
    fn refusals_map_to_the_mqtt5_reason_codes() {
        let buf = encode_connack(
            Version::V5,
            v4::ConnectReturnCode::BadUserNamePassword,
            false,
            Some("no such device"),
            None,
        );
        // CONNACK, flags 0, reason 0x86, then properties holding the reason string.
        assert_eq!((buf[0], buf[2], buf[3]), (0x20, 0, 0x86));
        assert!(buf.windows(14).any(|w| w == b"no such device"));
        let buf = encode_connack(
            Version::V5,
            v4::ConnectReturnCode::NotAuthorized,
            false,
            None,
            None,
        );
        assert_eq!(buf[3], 0x87);
        let buf = encode_connack(
            Version::V4,
            v4::ConnectReturnCode::NotAuthorized,
            false,
            None,
            None,
        );
        assert_eq!(&buf[..], &[0x20, 2, 0, 5]);
    }

    fn read5(buf: &mut BytesMut) -> v5::Packet {
        v5::Packet::read(buf, None).expect("a well-formed packet")
    }

    #[test]
    fn dead_lettered_publishes_are_acknowledged_with_their_reason() {
        let v5 = Encoder::new(Version::V5);
        let mut out = BytesMut::new();
        let token = AckToken::new(7, QoS::AtLeastOnce);
        v5.ack(token, &mut out);
        v5.ack(
            AckToken {
                refused: Some(RejectReason::Malformed),
                ..token
            },
            &mut out,
        );
        let rec = AckToken {
            refused: Some(RejectReason::TooManySeries),
            ..AckToken::new(8, QoS::ExactlyOnce)
        };
        v5.ack(rec, &mut out);
        assert_eq!(&out[..4], &[0x40, 2, 0, 7], "success: the short form");
        let _ = out.split_to(4);
        let v5::Packet::PubAck(ack) = read5(&mut out) else {
            panic!("PUBACK")
        };
        assert_eq!(ack.reason, v5::PubAckReason::PayloadFormatInvalid);
        assert_eq!(
            ack.properties.and_then(|p| p.reason_string).as_deref(),
            Some("dead-lettered as malformed")
        );
        let v5::Packet::PubRec(rec) = read5(&mut out) else {
            panic!("PUBREC")
        };
        assert_eq!((rec.pkid, rec.reason), (8, v5::PubRecReason::QuotaExceeded));

        // 3.1.1 has no reason codes: the same PUBACK either way.
        let v4 = Encoder::new(Version::V4);
        let mut out = BytesMut::new();
        v4.ack(
            AckToken {
                refused: Some(RejectReason::Malformed),
                ..token
            },
            &mut out,
        );
        assert_eq!(&out[..], &[0x40, 2, 0, 7]);
    }

    #[test]
    fn reason_strings_follow_what_the_client_asked_for() {
        let refused = AckToken {
            refused: Some(RejectReason::UnknownTopic),
            ..AckToken::new(3, QoS::AtLeastOnce)
        };
        for (options, expect_text) in [
            (
                ClientOptions {
                    max_packet: None,
                    problem_information: false,
                },
                false,
            ),
            (
                ClientOptions {
                    max_packet: Some(8),
                    problem_information: true,
                },
                false,
            ),
            (
                ClientOptions {
                    max_packet: Some(200),
                    problem_information: true,
                },
                true,
            ),
        ] {
            let encoder = Encoder {
                version: Version::V5,
                options,
            };
            let mut out = BytesMut::new();
            encoder.ack(refused, &mut out);
            let v5::Packet::PubAck(ack) = read5(&mut out) else {
                panic!("PUBACK")
            };
            assert_eq!(
                ack.reason,
                v5::PubAckReason::TopicNameInvalid,
                "{options:?}"
            );
            assert_eq!(ack.properties.is_some(), expect_text, "{options:?}");
        }
        // A DISCONNECT keeps its reason string without problem information, not past the
        // size limit.
        let packet = ToClient::Disconnect(
            v5::DisconnectReasonCode::KeepAliveTimeout,
            "silent for 45 s".into(),
        );
        for (max_packet, expect_text) in [(None, true), (Some(8), false)] {
            let encoder = Encoder {
                version: Version::V5,
                options: ClientOptions {
                    max_packet,
                    problem_information: false,
                },
            };
            let mut out = BytesMut::new();
            encoder.encode(&packet, &mut out);
            let v5::Packet::Disconnect(d) = read5(&mut out) else {
                panic!("DISCONNECT")
            };
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::KeepAliveTimeout);
            assert_eq!(d.properties.is_some(), expect_text, "{max_packet:?}");
        }
        let mut out = BytesMut::new();
        Encoder::new(Version::V4).encode(&packet, &mut out);
        assert!(out.is_empty(), "3.1.1 has no server DISCONNECT");
    }
}
