//! MQTT 5 protocol tests of the device endpoint over in-memory pipes, with a paused clock: the
//! same session rules as 3.1.1 ([`super::tests`]), spoken with rumqttc's v5 codec.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes as mqttbytes5;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, Connect, ConnectReturnCode, Disconnect as DisconnectPacket, DisconnectReasonCode,
    LastWill, Login, Packet, PingReq, PubRel, Publish, Subscribe, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::connection::Disconnect;
use super::tests::{Client, endpoint_config, harness};
use crate::pipeline::Origin;

const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";
const STATUS: &str = "citytel/v1/site-01/cabinet/cab-0001/status";

impl Client {
    pub(super) async fn send5(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, None).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next MQTT 5 packet, or `None` when the server closed the connection.
    pub(super) async fn recv5(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buf, None) {
                Ok(p) => return Some(p),
                Err(mqttbytes5::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("server sent garbage: {e}"),
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    pub(super) async fn connect5(&mut self, connect: Connect, will: Option<LastWill>) -> ConnAck {
        self.send5(Packet::Connect(connect, will, None)).await;
        match self.recv5().await {
            Some(Packet::ConnAck(ack)) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

fn connect5(id: &str, keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        client_id: id.into(),
        clean_start: true,
        properties: None,
    }
}

fn publish5(pkid: u16, qos: QoS, payload: &'static [u8]) -> Packet {
    let mut p = Publish::new(TOPIC, qos, Bytes::from_static(payload), None);
    p.pkid = pkid;
    Packet::Publish(p)
}

fn will5() -> LastWill {
    LastWill::new(
        STATUS,
        b"will-payload".to_vec(),
        QoS::AtLeastOnce,
        false,
        None,
    )
}

#[tokio::test(start_paused = true)]
async fn mqtt5_publish_at_qos1_is_acknowledged_only_after_the_commit() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    let ack = c.connect5(connect5("cab-0001", 30), None).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(!ack.session_present, "clean start");

    c.send5(publish5(7, QoS::AtLeastOnce, b"payload")).await;
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.topic, TOPIC);
    assert_eq!(&envelope.inbound.payload[..], b"payload");
    assert_eq!(envelope.inbound.origin, Origin::Endpoint);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), c.recv5())
            .await
            .is_err(),
        "no PUBACK before the commit"
    );
    envelope.inbound.ack.expect("qos 1 carries an ack").send();
    match c.recv5().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.pkid, 7),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn mqtt5_qos0_is_not_acknowledged_and_qos2_completes_the_handshake() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect5(connect5("cab-0001", 30), None).await;
    c.send5(publish5(0, QoS::AtMostOnce, b"fire and forget"))
        .await;
    assert!(h.next_envelope().await.inbound.ack.is_none());

    c.send5(publish5(9, QoS::ExactlyOnce, b"exactly once"))
        .await;
    h.next_envelope().await.inbound.ack.unwrap().send();
    match c.recv5().await {
        Some(Packet::PubRec(r)) => assert_eq!(r.pkid, 9),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    c.send5(Packet::PubRel(PubRel::new(9, None))).await;
    match c.recv5().await {
        Some(Packet::PubComp(r)) => assert_eq!(r.pkid, 9),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn mqtt5_pings_are_answered_and_keep_alive_expiry_fires_the_will() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0001", 10), Some(will5())).await;
    c.send5(Packet::PingReq(PingReq)).await;
    assert!(matches!(c.recv5().await, Some(Packet::PingResp(_))));
    let pinged = Instant::now();

    assert_eq!(task.await.unwrap(), Disconnect::KeepAliveExpired);
    assert_eq!(pinged.elapsed(), Duration::from_secs(15));
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.origin, Origin::Will);
    assert_eq!(envelope.inbound.topic, STATUS);
    assert_eq!(&envelope.inbound.payload[..], b"will-payload");
}

#[tokio::test(start_paused = true)]
async fn mqtt5_disconnect_with_or_without_a_reason_discards_the_will() {
    for bare in [true, false] {
        let mut h = harness(endpoint_config());
        let (mut c, task) = h.connect_pipe();
        c.connect5(connect5("cab-0001", 30), Some(will5())).await;
        if bare {
            c.send_raw(&[0xe0, 0x00]).await;
        } else {
            c.send5(Packet::Disconnect(DisconnectPacket::new(
                DisconnectReasonCode::NormalDisconnection,
            )))
            .await;
        }
        assert_eq!(task.await.unwrap(), Disconnect::ByClient, "bare {bare}");
        let queued = h.queued_now();
        assert!(
            queued.iter().all(|q| !q.starts_with("will")),
            "no will: {queued:?}"
        );
        assert_eq!(
            queued.last().map(String::as_str),
            Some("closed cab-0001 +0")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn mqtt5_subscriptions_are_refused_as_not_authorised() {
    let h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect5(connect5("cab-0001", 30), None).await;
    let mut sub = Subscribe::new(
        rumqttc::v5::mqttbytes::v5::Filter::new("citytel/#", QoS::AtLeastOnce),
        None,
    );
    sub.pkid = 3;
    c.send5(Packet::Subscribe(sub)).await;
    match c.recv5().await {
        Some(Packet::SubAck(a)) => {
            assert_eq!(a.pkid, 3);
            assert_eq!(a.return_codes, vec![SubscribeReasonCode::NotAuthorized]);
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn mqtt5_strict_checks_close_the_connection() {
    // A wildcard in a topic name.
    let h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0001", 30), None).await;
    let p = Publish::new("citytel/v1/+/x", QoS::AtMostOnce, Bytes::new(), None);
    c.send5(Packet::Publish(p)).await;
    assert!(matches!(
        task.await.unwrap(),
        Disconnect::ProtocolError(why) if why.contains("wildcard")
    ));

    // QoS 3 in the fixed header.
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0002", 30), None).await;
    c.send_raw(&[0x36, 0x04, 0x00, 0x01, b't', 0x00]).await;
    assert!(matches!(task.await.unwrap(), Disconnect::ProtocolError(_)));

    // A second CONNECT.
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0003", 30), None).await;
    c.send5(Packet::Connect(connect5("cab-0003", 30), None, None))
        .await;
    assert_eq!(
        task.await.unwrap(),
        Disconnect::ProtocolError("second CONNECT".into())
    );
}

#[tokio::test(start_paused = true)]
async fn mqtt5_oversize_publishes_are_dead_lettered_and_acknowledged() {
    let mut config = endpoint_config();
    config.max_packet_bytes = 256;
    let mut h = harness(config);
    let (mut c, _task) = h.connect_pipe();
    c.connect5(connect5("cab-0001", 30), None).await;
    let mut p = Publish::new(TOPIC, QoS::AtLeastOnce, vec![b'x'; 1000], None);
    p.pkid = 4;
    p.properties = Some(rumqttc::v5::mqttbytes::v5::PublishProperties {
        user_properties: vec![("k".into(), "v".into())],
        ..Default::default()
    });
    c.send5(Packet::Publish(p)).await;
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.topic, TOPIC);
    assert!(
        envelope.inbound.payload.iter().all(|&b| b == b'x'),
        "the kept bytes are payload, not properties"
    );
    envelope.inbound.ack.unwrap().send();
    match c.recv5().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.pkid, 4),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn mqtt5_is_told_the_server_keep_alive_when_it_asks_for_more() {
    let mut config = endpoint_config();
    config.max_keep_alive = Duration::from_secs(60);
    let h = harness(config);
    let (mut c, _task) = h.connect_pipe();
    let ack = c.connect5(connect5("cab-0001", 600), None).await;
    let props = ack.properties.expect("CONNACK properties");
    assert_eq!(props.server_keep_alive, Some(60));
    assert_eq!(props.retain_available, Some(0));

    let (mut c, _task) = h.connect_pipe();
    let ack = c.connect5(connect5("cab-0002", 30), None).await;
    assert_eq!(ack.properties.unwrap().server_keep_alive, None, "as asked");
}

#[tokio::test(start_paused = true)]
async fn mqtt5_and_mqtt311_devices_share_the_endpoint_and_a_takeover() {
    let mut h = harness(endpoint_config());
    let (mut old, old_task) = h.connect_pipe();
    old.connect(super::tests::connect_packet("cab-0001", 30))
        .await;
    let (mut new, _task) = h.connect_pipe();
    let ack = new.connect5(connect5("cab-0001", 30), None).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert_eq!(old_task.await.unwrap(), Disconnect::TakenOver);
    assert_eq!(old.recv().await, None, "the 3.1.1 connection is closed");
    new.send5(publish5(1, QoS::AtLeastOnce, b"after")).await;
    let envelope = h.next_envelope().await;
    assert_eq!(&envelope.inbound.payload[..], b"after");
}

#[tokio::test(start_paused = true)]
async fn mqtt5_password_without_user_name_reaches_authentication() {
    // MQTT 5 allows it (3.1.1 does not); with authentication off the connection is accepted.
    let h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.send5(Packet::Connect(
        connect5("cab-0001", 30),
        None,
        Some(Login::new("", "secret")),
    ))
    .await;
    match c.recv5().await {
        Some(Packet::ConnAck(a)) => assert_eq!(a.code, ConnectReturnCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}
