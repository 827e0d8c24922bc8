//! Protocol tests of the device endpoint that run over MQTT 3.1.1 and over MQTT 5 with one body
//! each: what both versions must do alike, and what MQTT 5 adds on top (reason codes, the
//! server's DISCONNECT).

use std::time::Duration;

use bytes::Bytes;
use rumqttc::mqttbytes::{QoS, v4};
use rumqttc::v5::mqttbytes::v5;

use super::connection::Disconnect;
use super::tests::{Client, connect_packet, endpoint_config, harness, publish};
use super::wire::Version;

const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";

impl Client {
    /// Connects as `id` in `version` (clean session, 30 s keep-alive), expecting success.
    async fn connect_in(&mut self, version: Version, id: &str) {
        match version {
            Version::V4 => {
                let ack = self.connect(connect_packet(id, 30)).await;
                assert_eq!(ack.code, v4::ConnectReturnCode::Success);
            }
            Version::V5 => {
                let connect = v5::Connect {
                    keep_alive: 30,
                    client_id: id.into(),
                    clean_start: true,
                    properties: None,
                };
                let ack = self.connect5(connect, None).await;
                assert_eq!(ack.code, v5::ConnectReturnCode::Success);
            }
        }
    }

    /// Sends a QoS 1 PUBLISH with packet id `pkid` in `version`.
    async fn publish_in(&mut self, version: Version, pkid: u16) {
        match version {
            Version::V4 => self.send(publish(pkid, QoS::AtLeastOnce, b"x")).await,
            Version::V5 => {
                let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
                let mut p = v5::Publish::new(TOPIC, qos, Bytes::from_static(b"x"), None);
                p.pkid = pkid;
                self.send5(v5::Packet::Publish(p)).await;
            }
        }
    }

    /// The packet id of the next packet, which must be a PUBACK (in MQTT 5 a successful one).
    async fn puback_in(&mut self, version: Version) -> u16 {
        match version {
            Version::V4 => match self.recv().await {
                Some(v4::Packet::PubAck(ack)) => ack.pkid,
                other => panic!("expected PUBACK, got {other:?}"),
            },
            Version::V5 => match self.recv5().await {
                Some(v5::Packet::PubAck(ack)) => {
                    assert_eq!(ack.reason, v5::PubAckReason::Success, "{ack:?}");
                    ack.pkid
                }
                other => panic!("expected PUBACK, got {other:?}"),
            },
        }
    }
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_follow_arrival_order_over_mqtt311() {
    acknowledgements_follow_arrival_order(Version::V4).await;
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_follow_arrival_order_over_mqtt5() {
    acknowledgements_follow_arrival_order(Version::V5).await;
}

async fn acknowledgements_follow_arrival_order(version: Version) {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect_in(version, "cab-0001").await;
    for pkid in 1..=20 {
        c.publish_in(version, pkid).await;
    }
    for _ in 1..=20 {
        h.next_envelope().await.inbound.ack.expect("QoS 1").send();
    }
    for pkid in 1..=20 {
        assert_eq!(c.puback_in(version).await, pkid);
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_outstanding_acknowledgements_over_mqtt311() {
    shutdown_flushes_outstanding_acknowledgements(Version::V4).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_outstanding_acknowledgements_over_mqtt5() {
    shutdown_flushes_outstanding_acknowledgements(Version::V5).await;
}

/// The PUBACK still due goes out before the connection closes; in MQTT 5 the server then says
/// why it closes: DISCONNECT 0x8B server shutting down.
async fn shutdown_flushes_outstanding_acknowledgements(version: Version) {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect_in(version, "cab-0001").await;
    c.publish_in(version, 4).await;
    let envelope = h.next_envelope().await;
    h.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    envelope.inbound.ack.expect("QoS 1").send();
    assert_eq!(c.puback_in(version).await, 4);
    assert_eq!(task.await.expect("connection task"), Disconnect::Shutdown);
    match version {
        Version::V4 => assert_eq!(c.recv().await, None),
        Version::V5 => {
            match c.recv5().await {
                Some(v5::Packet::Disconnect(d)) => {
                    assert_eq!(d.reason_code, v5::DisconnectReasonCode::ServerShuttingDown);
                }
                other => panic!("expected DISCONNECT, got {other:?}"),
            }
            assert_eq!(c.recv5().await, None, "closed after DISCONNECT");
        }
    }
}
