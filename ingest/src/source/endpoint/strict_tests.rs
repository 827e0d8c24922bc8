//! The endpoint under clients that break the rules or push against its limits: protocol
//! strictness, client ids, keep-alive 0, oversize packets read past, clients that do not read,
//! and per-address admission over TCP. Over in-memory pipes with a paused clock, like
//! [`super::tests`], whose harness they share.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Endpoint;
use super::connection::Disconnect;
use super::tests::{Client, connect_packet, endpoint_config, harness, limits, publish, publish_to};
use crate::decode::RejectReason;
use crate::pipeline::Pipeline;

const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";

/// A CONNECT with protocol "MQTT" level 4, `flags`, keep-alive 30 and client id "a", plus
/// `extra` payload bytes.
fn raw_connect(flags: u8, extra: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x1e];
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    body.extend_from_slice(extra);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[tokio::test(start_paused = true)]
async fn a_connect_with_the_reserved_flag_or_a_password_without_user_is_dropped() {
    let h = harness(endpoint_config());
    // Reserved flag; then password flag without user name flag (with a password field).
    for bytes in [
        raw_connect(0x03, &[]),
        raw_connect(0x42, &[0x00, 0x01, b'p']),
    ] {
        let (mut c, task) = h.connect_pipe();
        c.send_raw(&bytes).await;
        let reason = task.await.unwrap();
        assert!(matches!(reason, Disconnect::BadConnect(_)), "{reason:?}");
        assert!(reason.is_failed_connect());
        assert_eq!(c.recv().await, None, "closed without CONNACK");
    }
    // The same CONNECT with well-formed flags is accepted.
    let (mut c, _task) = h.connect_pipe();
    c.send_raw(&raw_connect(0x02, &[])).await;
    assert!(
        matches!(c.recv().await, Some(Packet::ConnAck(a)) if a.code == ConnectReturnCode::Success)
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_fixed_header_flags_close_the_connection() {
    // PINGREQ with a flag, DISCONNECT with a flag, PUBLISH with DUP at QoS 0, SUBSCRIBE
    // without its fixed flags.
    for bytes in [
        vec![0xc1, 0x00],
        vec![0xe2, 0x00],
        vec![0x38, 0x05, 0x00, 0x01, b'a', b'x', b'y'],
        vec![0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01],
    ] {
        let h = harness(endpoint_config());
        let (mut c, task) = h.connect_pipe();
        c.connect(connect_packet("cab-0001", 30)).await;
        c.send_raw(&bytes).await;
        let reason = task.await.unwrap();
        assert!(
            matches!(reason, Disconnect::ProtocolError(_)),
            "{bytes:02x?}: {reason:?}"
        );
    }
    // Before CONNECT too: a CONNECT with fixed-header flags is no CONNECT.
    let h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut bytes = raw_connect(0x02, &[]);
    bytes[0] = 0x12;
    c.send_raw(&bytes).await;
    assert!(matches!(task.await.unwrap(), Disconnect::BadConnect(_)));
}

#[tokio::test(start_paused = true)]
async fn a_wildcard_in_a_topic_name_closes_the_connection() {
    for topic in ["citytel/v1/+/cabinet/cab-0001/telemetry", "citytel/#"] {
        let mut h = harness(endpoint_config());
        let (mut c, task) = h.connect_pipe();
        c.connect(connect_packet("cab-0001", 30)).await;
        c.send(publish_to(topic, b"x")).await;
        let reason = task.await.unwrap();
        assert!(matches!(reason, Disconnect::ProtocolError(_)), "{reason:?}");
        assert!(h.queued_now().is_empty(), "{topic}: nothing queued");
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_id_longer_than_the_limit_is_refused() {
    let mut config = endpoint_config();
    config.max_client_id_bytes = 16;
    let h = harness(config);
    let (mut c, task) = h.connect_pipe();
    let ack = c.connect(connect_packet(&"x".repeat(17), 30)).await;
    assert_eq!(ack.code, ConnectReturnCode::BadClientId);
    assert_eq!(
        task.await.unwrap(),
        Disconnect::Refused(ConnectReturnCode::BadClientId)
    );
    let (mut c, _task) = h.connect_pipe();
    let ack = c.connect(connect_packet(&"x".repeat(16), 30)).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_zero_gets_the_server_maximum_unless_allowed() {
    let mut config = endpoint_config();
    config.max_keep_alive = Duration::from_secs(600);
    let h = harness(config.clone());
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 0)).await;
    let started = Instant::now();
    assert_eq!(task.await.unwrap(), Disconnect::KeepAliveExpired);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(900),
        "1.5 x max_keep_alive"
    );

    // A keep-alive above the maximum is capped too.
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0002", 3600)).await;
    let started = Instant::now();
    assert_eq!(task.await.unwrap(), Disconnect::KeepAliveExpired);
    assert_eq!(started.elapsed(), Duration::from_secs(900));

    config.allow_keep_alive_zero = true;
    let h = harness(config);
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0003", 0)).await;
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert!(!task.is_finished(), "never expires when allowed");
}

#[tokio::test(start_paused = true)]
async fn an_oversize_publish_is_read_past_dead_lettered_and_acknowledged() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 30)).await;
    // 100 KB, far above max_packet_bytes (4096): the first 64 KiB are kept.
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    c.send(publish(7, QoS::AtLeastOnce, &payload)).await;
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.topic, TOPIC);
    assert_eq!(
        &envelope.inbound.payload[..],
        &payload[..crate::journal::DEAD_LETTER_PAYLOAD_CAP]
    );
    let rejection = envelope.verdict.as_ref().unwrap_err();
    assert_eq!(rejection.reason, RejectReason::Oversize);
    assert!(rejection.detail.contains("100"), "{}", rejection.detail);
    // Acknowledged once durable, like any rejected message; the connection goes on.
    c.expect_silence(Duration::from_secs(1)).await;
    envelope.inbound.ack.expect("qos 1").send();
    assert!(matches!(c.recv().await, Some(Packet::PubAck(a)) if a.pkid == 7));
    c.send(publish(8, QoS::AtLeastOnce, b"small")).await;
    let next = h.next_envelope().await;
    assert_eq!(&next.inbound.payload[..], b"small");
    assert!(!task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_from_a_client_that_does_not_read_is_disconnected() {
    let h = harness(endpoint_config());
    let (client, server) = tokio::io::duplex(4096);
    let task = tokio::spawn(super::connection::serve(
        server,
        "127.0.0.1:40000".parse().unwrap(),
        h.shared.clone(),
        h.shutdown.clone(),
        None,
    ));
    let mut c = Client {
        stream: client,
        buf: BytesMut::new(),
    };
    c.connect(connect_packet("flooder", 30)).await;
    // PINGREQs, and never a read: the replies back up and the connection is closed.
    // The flood ends when the server closes the connection; a server that only stopped
    // reading would leave it blocked (and the test would time out).
    let pings = [0xc0u8, 0x00].repeat(512);
    while c.stream.write_all(&pings).await.is_ok() {}
    assert_eq!(task.await.unwrap(), Disconnect::SlowReader);
}

#[tokio::test]
async fn connections_beyond_the_per_address_limit_are_refused_over_tcp() {
    let mut config = endpoint_config();
    config.max_connections_per_ip = 2;
    let (pipeline, _queue) = Pipeline::new(limits(), 1 << 20);
    let endpoint = Endpoint::bind(config, pipeline, super::identity::DeviceAuth::Open, None)
        .await
        .unwrap();
    let addr = endpoint.local_addrs().unwrap().plain.unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(endpoint.run(shutdown.clone()));

    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut answer = BytesMut::new();
    loop {
        use tokio::io::AsyncReadExt;
        if third.read_buf(&mut answer).await.unwrap() == 0 {
            break;
        }
    }
    match Packet::read(&mut answer, 1024) {
        Ok(Packet::ConnAck(a)) => assert_eq!(a.code, ConnectReturnCode::ServiceUnavailable),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    drop(open);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("endpoint stops")
        .unwrap();
}
