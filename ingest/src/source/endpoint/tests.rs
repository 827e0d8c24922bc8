//! Protocol tests of the device endpoint over in-memory pipes, with a paused clock, and of the
//! connection limit over real TCP. Connection events are checked against the pipeline's clock,
//! which follows the paused tokio time from [`START_MS`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PubRel, Publish, Subscribe,
    SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Disconnect};
use super::{Endpoint, Shared};
use crate::clock::Clock;
use crate::config::{self, EndpointConfig};
use crate::decode::Limits;
use crate::journal::Connection;
use crate::pipeline::{Envelope, Origin, Pipeline, Queued};

const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";
/// The pipeline clock's reading when a test starts.
const START_MS: i64 = 1_700_000_000_000;

pub(super) fn endpoint_config() -> EndpointConfig {
    let mut c = config::load_str(None, &[]).unwrap().endpoint;
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.max_packet_bytes = 4096;
    c.authentication = false;
    c
}

pub(super) fn limits() -> Limits {
    Limits {
        max_payload_bytes: 2048,
        max_readings_per_message: 100,
        max_future_ms: i64::MAX / 2,
        max_past_ms: i64::MAX / 2,
    }
}

pub(super) struct Harness {
    pub(super) shared: Arc<Shared>,
    pub(super) queue: mpsc::UnboundedReceiver<Queued>,
    pub(super) shutdown: CancellationToken,
}

pub(super) fn harness(config: EndpointConfig) -> Harness {
    harness_with_budget(config, 1 << 20)
}

pub(super) fn harness_with_budget(config: EndpointConfig, budget_bytes: u64) -> Harness {
    let (pipeline, queue) = Pipeline::with_clock(limits(), budget_bytes, Clock::tokio(START_MS));
    Harness {
        shared: Arc::new(Shared::new(config, pipeline)),
        queue,
        shutdown: CancellationToken::new(),
    }
}

impl Harness {
    pub(super) fn connect_pipe(&self) -> (Client, JoinHandle<Disconnect>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let task = tokio::spawn(connection::serve(
            server,
            peer,
            self.shared.clone(),
            self.shutdown.clone(),
            None,
        ));
        (
            Client {
                stream: client,
                buf: BytesMut::new(),
            },
            task,
        )
    }

    /// The next message, skipping connection events.
    pub(super) async fn next_envelope(&mut self) -> Envelope {
        loop {
            if let Queued::Message(envelope) = self.next_queued().await {
                return envelope;
            }
        }
    }

    pub(super) async fn next_queued(&mut self) -> Queued {
        tokio::time::timeout(Duration::from_secs(5), self.queue.recv())
            .await
            .expect("something queued within 5 s")
            .expect("pipeline open")
    }

    /// Everything queued so far, described.
    pub(super) fn queued_now(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.queue.try_recv().ok())
            .map(|q| describe(&q))
            .collect()
    }
}

/// `"opened cab-0001 +0"` for a connection event (device, ms after [`START_MS`]), `"message
/// {topic}"` or `"will {topic}"` for a message.
fn describe(queued: &Queued) -> String {
    match queued {
        Queued::Message(e) => {
            let what = match e.inbound.origin {
                Origin::Will => "will",
                _ => "message",
            };
            format!("{what} {}", e.inbound.topic)
        }
        Queued::Connection { event, .. } => {
            let change = match event.change {
                Connection::Opened => "opened",
                Connection::Closed => "closed",
                Connection::Lost => "lost",
            };
            let device = citytel_proto::topic::parse(&event.topic)
                .expect("a device topic")
                .device_id;
            assert!(event.topic.ends_with("/status"), "{}", event.topic);
            format!("{change} {device} +{}", event.received_at_ms - START_MS)
        }
        Queued::Command(_) => unreachable!("the endpoint submits no commands"),
    }
}

pub(super) struct Client {
    pub(super) stream: DuplexStream,
    pub(super) buf: BytesMut,
}

impl Client {
    pub(super) async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, usize::MAX).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub(super) async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next packet, or `None` when the server closed the connection.
    pub(super) async fn recv(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buf, usize::MAX) {
                Ok(p) => return Some(p),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("server sent garbage: {e}"),
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Asserts nothing arrives within `wait` (of paused time).
    pub(super) async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(p) = tokio::time::timeout(wait, self.recv()).await {
            panic!("expected silence, got {p:?}");
        }
    }

    pub(super) async fn connect(&mut self, connect: Connect) -> ConnAck {
        self.send(Packet::Connect(connect)).await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

pub(super) fn connect_packet(id: &str, keep_alive: u16) -> Connect {
    let mut c = Connect::new(id);
    c.keep_alive = keep_alive;
    c
}

pub(super) fn publish(pkid: u16, qos: QoS, payload: &[u8]) -> Packet {
    let mut p = Publish::from_bytes(TOPIC, qos, Bytes::copy_from_slice(payload));
    p.pkid = pkid;
    Packet::Publish(p)
}

pub(super) fn will() -> LastWill {
    LastWill::new(
        "citytel/v1/site-01/cabinet/cab-0001/status",
        b"will-payload".to_vec(),
        QoS::AtLeastOnce,
        false,
    )
}

#[tokio::test(start_paused = true)]
async fn publish_at_qos1_is_acknowledged_only_after_the_commit() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    let ack = c.connect(connect_packet("cab-0001", 30)).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(!ack.session_present, "clean session");

    c.send(publish(7, QoS::AtLeastOnce, b"payload")).await;
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.topic, TOPIC);
    assert_eq!(&envelope.inbound.payload[..], b"payload");
    assert_eq!(envelope.inbound.origin, Origin::Endpoint);
    c.expect_silence(Duration::from_secs(3)).await;

    envelope.inbound.ack.expect("qos 1 carries an ack").send();
    match c.recv().await {
        Some(Packet::PubAck(a)) => assert_eq!(a.pkid, 7),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn qos0_is_not_acknowledged_and_qos2_completes_the_handshake() {
    let mut h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 30)).await;
    c.send(publish(0, QoS::AtMostOnce, b"fire and forget"))
        .await;
    assert!(h.next_envelope().await.inbound.ack.is_none());

    c.send(publish(9, QoS::ExactlyOnce, b"exactly once")).await;
    h.next_envelope().await.inbound.ack.unwrap().send();
    match c.recv().await {
        Some(Packet::PubRec(r)) => assert_eq!(r.pkid, 9),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    c.send(Packet::PubRel(PubRel::new(9))).await;
    match c.recv().await {
        Some(Packet::PubComp(r)) => assert_eq!(r.pkid, 9),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn persistent_sessions_are_reported_present() {
    let h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 30);
    connect.clean_session = false;
    let ack = c.connect(connect).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(ack.session_present);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_expiry_at_one_and_a_half_times_fires_the_last_will() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 10);
    connect.last_will = Some(will());
    c.connect(connect).await;
    let started = Instant::now();

    let reason = task.await.unwrap();
    assert_eq!(reason, Disconnect::KeepAliveExpired);
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    let envelope = h.next_envelope().await;
    assert_eq!(envelope.inbound.origin, Origin::Will);
    assert_eq!(&envelope.inbound.payload[..], b"will-payload");
    assert!(envelope.inbound.ack.is_none());
    assert_eq!(c.recv().await, None, "connection closed");
}

#[tokio::test(start_paused = true)]
async fn pings_keep_a_connection_alive() {
    let h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 10)).await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        c.send(Packet::PingReq).await;
        assert_eq!(c.recv().await, Some(Packet::PingResp));
    }
    assert!(!task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn disconnect_discards_the_will() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 10);
    connect.last_will = Some(will());
    c.connect(connect).await;
    c.send(Packet::Disconnect).await;
    assert_eq!(task.await.unwrap(), Disconnect::ByClient);
    assert_eq!(
        h.queued_now(),
        ["opened cab-0001 +0", "closed cab-0001 +0"],
        "no will after DISCONNECT"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_socket_fires_the_will() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 0);
    connect.last_will = Some(will());
    c.connect(connect).await;
    drop(c);
    assert_eq!(task.await.unwrap(), Disconnect::Closed);
    assert_eq!(h.next_envelope().await.inbound.origin, Origin::Will);
}

#[tokio::test(start_paused = true)]
async fn a_second_connection_with_the_same_client_id_takes_over() {
    let mut h = harness(endpoint_config());
    let (mut first, first_task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 30);
    connect.last_will = Some(will());
    first.connect(connect.clone()).await;
    let (mut second, second_task) = h.connect_pipe();
    second.connect(connect).await;

    assert_eq!(first_task.await.unwrap(), Disconnect::TakenOver);
    assert_eq!(first.recv().await, None);
    assert_eq!(
        h.queued_now(),
        ["opened cab-0001 +0", "opened cab-0001 +0"],
        "a takeover neither fires the will nor ends the device's connection"
    );
    second
        .send(publish(1, QoS::AtLeastOnce, b"still here"))
        .await;
    h.next_envelope().await.inbound.ack.unwrap().send();
    assert!(matches!(second.recv().await, Some(Packet::PubAck(_))));
    assert!(!second_task.is_finished());
    assert_eq!(h.shared.sessions.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_packet_beyond_the_discard_ceiling_closes_the_connection() {
    let mut config = endpoint_config();
    config.max_discard_bytes = 4800;
    let h = harness(config);
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 30)).await;
    c.send(publish(1, QoS::AtLeastOnce, &[0u8; 5000])).await;
    assert!(matches!(task.await.unwrap(), Disconnect::Oversize(n) if n > 4800));
}

#[tokio::test(start_paused = true)]
async fn a_malformed_packet_closes_only_that_connection() {
    let mut h = harness(endpoint_config());
    let (mut bad, bad_task) = h.connect_pipe();
    let (mut good, good_task) = h.connect_pipe();
    bad.connect(connect_packet("bad", 30)).await;
    good.connect(connect_packet("good", 30)).await;

    // A PUBLISH at QoS 3 does not exist.
    bad.send_raw(&[0x36, 0x03, 0x00, 0x01, b'a']).await;
    assert!(matches!(
        bad_task.await.unwrap(),
        Disconnect::ProtocolError(_)
    ));

    good.send(publish(5, QoS::AtLeastOnce, b"fine")).await;
    h.next_envelope().await.inbound.ack.unwrap().send();
    assert!(matches!(good.recv().await, Some(Packet::PubAck(a)) if a.pkid == 5));
    assert!(!good_task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn subscriptions_are_refused() {
    let h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 30)).await;
    let mut sub = Subscribe::new("citytel/#", QoS::AtLeastOnce);
    sub.pkid = 3;
    c.send(Packet::Subscribe(sub)).await;
    match c.recv().await {
        Some(Packet::SubAck(s)) => {
            assert_eq!(s.pkid, 3);
            assert_eq!(s.return_codes, vec![SubscribeReasonCode::Failure]);
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_unknown_protocol_level_is_refused_with_the_protocol_version_code() {
    let h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    // CONNECT, protocol "MQTT" level 6, clean start, keep-alive 30, no properties, client id "a".
    c.send_raw(&[
        0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x1e, 0x00, 0x00, 0x01,
        b'a',
    ])
    .await;
    match c.recv().await {
        Some(Packet::ConnAck(a)) => assert_eq!(a.code, ConnectReturnCode::RefusedProtocolVersion),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(
        task.await.unwrap(),
        Disconnect::Refused(ConnectReturnCode::RefusedProtocolVersion)
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_connect_timeout() {
    let h = harness(endpoint_config());
    let (_c, task) = h.connect_pipe();
    let started = Instant::now();
    assert_eq!(task.await.unwrap(), Disconnect::ConnectTimeout);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_over_tcp() {
    let mut config = endpoint_config();
    config.max_connections = 1;
    let (pipeline, _queue) = Pipeline::new(limits(), 1 << 20);
    let endpoint = Endpoint::bind(config, pipeline, super::identity::DeviceAuth::Open, None)
        .await
        .unwrap();
    let addr = endpoint.local_addrs().unwrap().plain.unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(endpoint.run(shutdown.clone()));

    let tcp = |s: tokio::net::TcpStream| Client {
        stream: {
            // Bridge the TCP stream into the same client type through a duplex pipe.
            let (a, b) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let (mut s, mut b) = (s, b);
                let _ = tokio::io::copy_bidirectional(&mut s, &mut b).await;
            });
            a
        },
        buf: BytesMut::new(),
    };
    let mut first = tcp(tokio::net::TcpStream::connect(addr).await.unwrap());
    assert_eq!(
        first.connect(connect_packet("one", 30)).await.code,
        ConnectReturnCode::Success
    );
    let mut second = tcp(tokio::net::TcpStream::connect(addr).await.unwrap());
    assert_eq!(
        second.connect(connect_packet("two", 30)).await.code,
        ConnectReturnCode::ServiceUnavailable
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("endpoint stops")
        .unwrap();
}

pub(super) fn publish_to(topic: &str, payload: &[u8]) -> Packet {
    Packet::Publish(Publish::from_bytes(
        topic,
        QoS::AtMostOnce,
        Bytes::copy_from_slice(payload),
    ))
}

#[tokio::test(start_paused = true)]
async fn the_last_will_names_the_device_whose_connection_opens_before_its_first_message() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("any-client-id", 30);
    connect.last_will = Some(will());
    c.connect(connect).await;
    assert_eq!(describe(&h.next_queued().await), "opened cab-0001 +0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.send(publish_to(TOPIC, b"x")).await;
    assert_eq!(describe(&h.next_queued().await), format!("message {TOPIC}"));
    c.send(Packet::Disconnect).await;
    assert_eq!(task.await.unwrap(), Disconnect::ByClient);
    assert_eq!(h.queued_now(), ["closed cab-0001 +2000"]);
}

#[tokio::test(start_paused = true)]
async fn without_a_will_the_first_device_topic_names_the_connection_and_children_do_not() {
    // A gateway without a Last Will: its own telemetry comes first, then a child's.
    let gateway = "citytel/v1/site-01/gateway/gw-01/telemetry";
    let child = "citytel/v1/site-01/sensor/gw-01-s01/telemetry";
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("gw-01", 0)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.send(publish_to("not/a/device/topic", b"x")).await;
    c.send(publish_to(gateway, b"x")).await;
    c.send(publish_to(child, b"x")).await;
    c.send(publish_to(gateway, b"x")).await;
    drop(c);
    assert_eq!(task.await.unwrap(), Disconnect::Closed);
    assert_eq!(
        h.queued_now(),
        [
            "message not/a/device/topic".to_string(),
            "opened gw-01 +1000".into(),
            format!("message {gateway}"),
            format!("message {child}"),
            format!("message {gateway}"),
            "lost gw-01 +1000".into(),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_expiry_queues_the_will_then_the_lost_connection() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 10);
    connect.last_will = Some(will());
    c.connect(connect).await;
    assert_eq!(task.await.unwrap(), Disconnect::KeepAliveExpired);
    assert_eq!(
        h.queued_now(),
        [
            "opened cab-0001 +0",
            "will citytel/v1/site-01/cabinet/cab-0001/status",
            "lost cab-0001 +15000",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_names_its_device_queues_no_connection_event() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("cab-0001", 30)).await;
    c.send(Packet::Disconnect).await;
    assert_eq!(task.await.unwrap(), Disconnect::ByClient);
    assert!(h.queued_now().is_empty());
}

#[tokio::test(start_paused = true)]
async fn citytels_own_shutdown_does_not_end_the_devices_connection() {
    let mut h = harness(endpoint_config());
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 30);
    connect.last_will = Some(will());
    c.connect(connect).await;
    h.shutdown.cancel();
    assert_eq!(task.await.unwrap(), Disconnect::Shutdown);
    assert_eq!(h.queued_now(), ["opened cab-0001 +0"]);
}

#[tokio::test(start_paused = true)]
async fn a_takeover_waits_until_the_replaced_connection_has_queued_its_end() {
    // The first connection drops while the in-flight budget is used up, so its Last Will and
    // its end wait; the same client connecting again meanwhile must not get ahead of them.
    let mut h = harness_with_budget(endpoint_config(), 400);
    let (mut first, first_task) = h.connect_pipe();
    let mut connect = connect_packet("cab-0001", 30);
    connect.last_will = Some(will());
    first.connect(connect.clone()).await;
    assert_eq!(describe(&h.next_queued().await), "opened cab-0001 +0");
    first.send(publish_to(TOPIC, &[0u8; 200])).await;
    let held = h.next_queued().await;
    drop(first);

    let (mut second, _second_task) = h.connect_pipe();
    second.send(Packet::Connect(connect)).await;
    second.expect_silence(Duration::from_secs(3)).await;
    assert!(h.queued_now().is_empty(), "nothing fits in the budget");

    drop(held);
    assert_eq!(
        describe(&h.next_queued().await),
        "will citytel/v1/site-01/cabinet/cab-0001/status"
    );
    assert_eq!(describe(&h.next_queued().await), "lost cab-0001 +3000");
    assert_eq!(first_task.await.unwrap(), Disconnect::Closed);
    assert!(matches!(second.recv().await, Some(Packet::ConnAck(_))));
    assert_eq!(describe(&h.next_queued().await), "opened cab-0001 +3000");
}
