//! MQTT 5 reason codes and grants of the device endpoint, over in-memory pipes with a paused
//! clock: what CONNACK grants, PUBACK and PUBREC codes of dead-lettered messages, the server's
//! DISCONNECT before it closes a connection, topic aliases and the Receive Maximum.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Connect, ConnectProperties, ConnectReturnCode, DisconnectReasonCode, Packet, PubAckReason,
    PubRecReason, Publish, PublishProperties,
};

use super::connection::Disconnect;
use super::tests::{Client, endpoint_config, harness};
use crate::decode::RejectReason;

const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";

fn connect5(id: &str) -> Connect {
    Connect {
        keep_alive: 10,
        client_id: id.into(),
        clean_start: true,
        properties: None,
    }
}

fn publish(pkid: u16, topic: &str, alias: Option<u16>) -> Packet {
    let qos = if pkid == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut p = Publish::new(topic, qos, Bytes::from_static(b"reading"), None);
    p.pkid = pkid;
    p.properties = alias.map(|a| PublishProperties {
        topic_alias: Some(a),
        ..Default::default()
    });
    Packet::Publish(p)
}

/// The server's DISCONNECT, then the end of the connection.
async fn farewell(c: &mut Client) -> (DisconnectReasonCode, Option<String>) {
    let packet = c.recv5().await;
    let Some(Packet::Disconnect(d)) = packet else {
        panic!("expected DISCONNECT, got {packet:?}");
    };
    assert!(c.recv5().await.is_none(), "closed after DISCONNECT");
    (d.reason_code, d.properties.and_then(|p| p.reason_string))
}

#[tokio::test(start_paused = true)]
async fn connack_grants_receive_maximum_packet_size_and_topic_aliases() {
    let mut config = endpoint_config();
    config.receive_maximum = 20;
    config.topic_alias_maximum = 5;
    config.max_discard_bytes = 100_000;
    let h = harness(config);
    let (mut c, _task) = h.connect_pipe();
    let props = c.connect5(connect5("cab-0001"), None).await.properties;
    let props = props.expect("CONNACK properties");
    assert_eq!(props.receive_max, Some(20));
    assert_eq!(props.topic_alias_max, Some(5));
    assert_eq!(props.max_packet_size, Some(100_000));
}

#[tokio::test(start_paused = true)]
async fn dead_lettered_publishes_are_acknowledged_with_why() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect5(connect5("cab-0001"), None).await;
    for (pkid, reason, expected) in [
        (
            1,
            RejectReason::Malformed,
            PubAckReason::PayloadFormatInvalid,
        ),
        (
            2,
            RejectReason::UnknownTopic,
            PubAckReason::TopicNameInvalid,
        ),
        (3, RejectReason::TooManySeries, PubAckReason::QuotaExceeded),
        (4, RejectReason::Unauthorized, PubAckReason::NotAuthorized),
    ] {
        c.send5(publish(pkid, TOPIC, None)).await;
        let ack = h.next_envelope().await.inbound.ack.expect("QoS 1");
        ack.refused(reason).send();
        match c.recv5().await {
            Some(Packet::PubAck(a)) => {
                assert_eq!((a.pkid, a.reason), (pkid, expected));
                let text = a.properties.and_then(|p| p.reason_string);
                assert_eq!(text, Some(format!("dead-lettered as {reason}")));
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    // QoS 2: a refusing PUBREC ends the delivery.
    let mut p = Publish::new(TOPIC, QoS::ExactlyOnce, Bytes::from_static(b"x"), None);
    p.pkid = 5;
    c.send5(Packet::Publish(p)).await;
    let ack = h.next_envelope().await.inbound.ack.expect("QoS 2");
    ack.refused(RejectReason::NonFiniteValue).send();
    match c.recv5().await {
        Some(Packet::PubRec(r)) => {
            assert_eq!((r.pkid, r.reason), (5, PubRecReason::PayloadFormatInvalid));
        }
        other => panic!("expected PUBREC, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_server_says_why_it_closes_a_connection() {
    // Keep-alive expiry: 1.5 times 10 s of silence.
    let h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0001"), None).await;
    assert_eq!(
        farewell(&mut c).await.0,
        DisconnectReasonCode::KeepAliveTimeout
    );
    assert_eq!(task.await.unwrap(), Disconnect::KeepAliveExpired);

    // Takeover by a connection with the same client id.
    let (mut old, old_task) = h.connect_pipe();
    old.connect5(connect5("cab-0002"), None).await;
    let (mut new, _new_task) = h.connect_pipe();
    new.connect5(connect5("cab-0002"), None).await;
    assert_eq!(
        farewell(&mut old).await.0,
        DisconnectReasonCode::SessionTakenOver
    );
    assert_eq!(old_task.await.unwrap(), Disconnect::TakenOver);

    // A protocol error, with what it was.
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0003"), None).await;
    c.send5(Packet::Connect(connect5("cab-0003"), None, None))
        .await;
    assert_eq!(
        farewell(&mut c).await,
        (
            DisconnectReasonCode::ProtocolError,
            Some("second CONNECT".into())
        )
    );
    assert!(matches!(task.await.unwrap(), Disconnect::ProtocolError(_)));
}

#[tokio::test(start_paused = true)]
async fn topic_aliases_name_topics_up_to_the_granted_maximum() {
    let mut config = endpoint_config();
    config.topic_alias_maximum = 2;
    let mut h = harness(config);
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0001"), None).await;
    c.send5(publish(0, TOPIC, Some(2))).await;
    c.send5(publish(0, "", Some(2))).await;
    for _ in 0..2 {
        assert_eq!(h.next_envelope().await.inbound.topic, TOPIC);
    }
    c.send5(publish(0, TOPIC, Some(3))).await;
    let (code, why) = farewell(&mut c).await;
    assert_eq!(code, DisconnectReasonCode::TopicAliasInvalid);
    assert!(why.unwrap_or_default().contains("1..=2"));
    assert!(matches!(
        task.await.unwrap(),
        Disconnect::TopicAliasInvalid(_)
    ));

    // An alias never set.
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0002"), None).await;
    c.send5(publish(0, "", Some(1))).await;
    assert_eq!(
        farewell(&mut c).await.0,
        DisconnectReasonCode::ProtocolError
    );
    assert!(matches!(task.await.unwrap(), Disconnect::ProtocolError(_)));
}

#[tokio::test(start_paused = true)]
async fn one_publish_past_the_receive_maximum_closes_the_connection() {
    let mut config = endpoint_config();
    config.receive_maximum = 2;
    let mut h = harness(config);
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect5("cab-0001"), None).await;
    // Two in flight; one acknowledged makes room for a third.
    c.send5(publish(1, TOPIC, None)).await;
    c.send5(publish(2, TOPIC, None)).await;
    let first = h.next_envelope().await;
    let second = h.next_envelope().await;
    first.inbound.ack.expect("QoS 1").send();
    assert!(matches!(c.recv5().await, Some(Packet::PubAck(a)) if a.pkid == 1));
    c.send5(publish(3, TOPIC, None)).await;
    let third = h.next_envelope().await;
    // QoS 0 does not count.
    c.send5(publish(0, TOPIC, None)).await;
    h.next_envelope().await;
    c.send5(publish(4, TOPIC, None)).await;
    // Let the read half take it; what was accepted is still acknowledged, then DISCONNECT.
    tokio::time::sleep(Duration::from_millis(10)).await;
    second.inbound.ack.expect("QoS 1").send();
    third.inbound.ack.expect("QoS 1").send();
    for pkid in [2, 3] {
        assert!(matches!(c.recv5().await, Some(Packet::PubAck(a)) if a.pkid == pkid));
    }
    assert_eq!(
        farewell(&mut c).await.0,
        DisconnectReasonCode::ReceiveMaximumExceeded
    );
    assert_eq!(task.await.unwrap(), Disconnect::ReceiveMaximumExceeded);
}

#[tokio::test]
async fn an_mqtt5_client_past_the_connection_cap_hears_quota_exceeded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut config = endpoint_config();
    config.max_connections = 1;
    let (pipeline, _queue) = crate::pipeline::Pipeline::new(super::tests::limits(), 1 << 20);
    let endpoint = super::Endpoint::bind(config, pipeline, super::identity::DeviceAuth::Open, None)
        .await
        .unwrap();
    let addr = endpoint.local_addrs().unwrap().plain.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(endpoint.run(shutdown.clone()));

    let _held = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = bytes::BytesMut::new();
    Packet::Connect(connect5("cab-0002"), None, None)
        .write(&mut out, None)
        .unwrap();
    refused.write_all(&out).await.unwrap();
    let mut answer = bytes::BytesMut::new();
    while refused.read_buf(&mut answer).await.unwrap() > 0 {}
    match Packet::read(&mut answer, None) {
        Ok(Packet::ConnAck(a)) => {
            assert_eq!(a.code, ConnectReturnCode::QuotaExceeded);
            let why = a.properties.and_then(|p| p.reason_string);
            assert!(why.unwrap_or_default().contains("endpoint.max_connections"));
        }
        other => panic!("expected an MQTT 5 CONNACK, got {other:?}"),
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("endpoint stops")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn user_properties_are_kept_with_a_dead_letter() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect5(connect5("cab-0001"), None).await;
    let mut p = Publish::new(
        TOPIC,
        QoS::AtLeastOnce,
        Bytes::from_static(b"\xff not protobuf"),
        None,
    );
    p.pkid = 1;
    p.properties = Some(PublishProperties {
        user_properties: vec![("firmware".into(), "2.4.1".into())],
        ..Default::default()
    });
    c.send5(Packet::Publish(p)).await;
    let envelope = h.next_envelope().await;
    let rejection = envelope.verdict.expect_err("not protobuf");
    assert_eq!(rejection.reason, RejectReason::Malformed);
    assert!(
        rejection
            .detail
            .ends_with(r#"; MQTT 5 user properties: "firmware"="2.4.1""#),
        "{}",
        rejection.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_asking_for_the_will_publishes_it_and_closes_cleanly() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let will = rumqttc::v5::mqttbytes::v5::LastWill::new(
        "citytel/v1/site-01/cabinet/cab-0001/status",
        b"going down".to_vec(),
        QoS::AtLeastOnce,
        false,
        None,
    );
    c.connect5(connect5("cab-0001"), Some(will)).await;
    c.send5(Packet::Disconnect(
        rumqttc::v5::mqttbytes::v5::Disconnect::new(
            DisconnectReasonCode::DisconnectWithWillMessage,
        ),
    ))
    .await;
    assert_eq!(task.await.unwrap(), Disconnect::ByClientWithWill);
    let queued = h.queued_now();
    assert!(
        queued.iter().any(|q| q.starts_with("will")),
        "the will is published: {queued:?}"
    );
    assert_eq!(
        queued.last().map(String::as_str),
        Some("closed cab-0001 +0"),
        "and the device closed, not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_too_small_for_its_connack_is_refused_and_one_that_fits_gets_its_pubacks() {
    let with_max = |max: u32| Connect {
        properties: Some(ConnectProperties {
            max_packet_size: Some(max),
            ..ConnectProperties::new()
        }),
        ..connect5("cab-0001")
    };
    let mut h = harness(endpoint_config());

    // Three bytes: not even a PUBACK (four) fits, let alone the CONNACK.
    let (mut c, task) = h.connect_pipe();
    c.send5(Packet::Connect(with_max(3), None, None)).await;
    assert!(c.recv5().await.is_none(), "closed without CONNACK");
    match task.await.unwrap() {
        Disconnect::BadConnect(why) => {
            assert!(why.contains("Maximum Packet Size of 3 bytes"), "{why}");
        }
        other => panic!("expected bad_connect, got {other:?}"),
    }

    // Room for the CONNACK and lean acknowledgements: every PUBACK arrives.
    let (mut c, _task) = h.connect_pipe();
    c.send5(Packet::Connect(with_max(64), None, None)).await;
    let Some(Packet::ConnAck(ack)) = c.recv5().await else {
        panic!("expected CONNACK");
    };
    assert_eq!(ack.code, ConnectReturnCode::Success);
    c.send5(publish(7, TOPIC, None)).await;
    let ack = h.next_envelope().await.inbound.ack.expect("QoS 1");
    ack.refused(RejectReason::Malformed).send();
    match c.recv5().await {
        Some(Packet::PubAck(a)) => {
            assert_eq!((a.pkid, a.reason), (7, PubAckReason::PayloadFormatInvalid));
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
}
