//! The checks for a connection that opens with an MQTT 5 CONNECT. There is no independent MQTT 5
//! oracle of what the client's bytes mean; what holds whatever they mean is asserted:
//! - CONNACK comes first and once, and nothing else follows a refusal;
//! - the PUBACKs and PUBRECs the client got are exactly the acknowledgements the pipeline fired,
//!   in order, each a success (the harness refuses nothing);
//! - every message the pipeline took has a topic (topic aliases resolved) without wildcards;
//! - the server's DISCONNECT comes at most once and last, and a connection the server ends for a
//!   protocol error, a keep-alive timeout, a bad topic alias, the Receive Maximum, an oversize
//!   packet or its shutdown ends with one carrying that reason.

use rumqttc::v5::mqttbytes as mqttbytes5;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, DisconnectReasonCode, Packet, PubAckReason, PubRecReason,
};

use super::Intake;

/// The packets of an MQTT 5 connection's output.
pub fn parse(raw: &[u8]) -> Vec<Packet> {
    let mut buf = bytes::BytesMut::from(raw);
    let mut packets = Vec::new();
    loop {
        match Packet::read(&mut buf, None) {
            Ok(packet) => packets.push(packet),
            Err(mqttbytes5::Error::InsufficientBytes(_)) => break,
            Err(e) => panic!("the endpoint wrote a malformed MQTT 5 packet: {e}"),
        }
    }
    assert!(buf.is_empty(), "the endpoint closed mid-packet: {raw:02x?}");
    packets
}

/// The DISCONNECT reason a connection ended for `reason` (a disconnect label) must carry.
fn farewell(reason: &str) -> Option<DisconnectReasonCode> {
    Some(match reason {
        "protocol_error" => DisconnectReasonCode::ProtocolError,
        "keep_alive_expired" => DisconnectReasonCode::KeepAliveTimeout,
        "topic_alias_invalid" => DisconnectReasonCode::TopicAliasInvalid,
        "receive_maximum_exceeded" => DisconnectReasonCode::ReceiveMaximumExceeded,
        "oversize" => DisconnectReasonCode::PacketTooLarge,
        "shutdown" => DisconnectReasonCode::ServerShuttingDown,
        _ => return None,
    })
}

pub fn check(reason: &str, intake: &Intake, received: &[Packet]) {
    let connacks = received
        .iter()
        .filter(|p| matches!(p, Packet::ConnAck(_)))
        .count();
    assert!(connacks <= 1, "{connacks} CONNACKs");
    if let Some(first) = received.first() {
        assert!(
            matches!(first, Packet::ConnAck(_)),
            "first packet {first:?}"
        );
    }
    let accepted = matches!(
        received.first(),
        Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success
    );
    if !accepted {
        assert!(received.len() <= 1, "packets after a refusal: {received:?}");
        assert!(intake.events.is_empty(), "queued without a connection");
        assert!(intake.fired.is_empty());
        return;
    }

    let acks: Vec<(u16, u8)> = received
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => {
                assert_eq!(a.reason, PubAckReason::Success, "{a:?}");
                Some((a.pkid, 1))
            }
            Packet::PubRec(r) => {
                assert_eq!(r.reason, PubRecReason::Success, "{r:?}");
                Some((r.pkid, 2))
            }
            _ => None,
        })
        .collect();
    assert_eq!(acks, intake.fired, "acknowledged vs committed");

    for p in &intake.publishes {
        assert!(
            !p.topic.is_empty() && !p.topic.contains(['+', '#']),
            "taken with topic {:?}",
            p.topic
        );
    }

    let disconnects: Vec<usize> = received
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Packet::Disconnect(_)))
        .map(|(i, _)| i)
        .collect();
    assert!(
        disconnects.is_empty() || disconnects == [received.len() - 1],
        "DISCONNECT once and last: {received:?}"
    );
    if let Some(code) = farewell(reason) {
        match received.last() {
            Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, code, "{reason}"),
            last => panic!("ended as {reason} without DISCONNECT {code:?}: last {last:?}"),
        }
    }
}
