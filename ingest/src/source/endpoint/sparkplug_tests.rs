//! Sparkplug B edge nodes on the device endpoint, over in-memory pipes with a paused clock:
//! the subscription rules, citytel's retained STATE, messages through the host, the Will's
//! NDEATH and rebirth requests routed to the node's own connection.

use std::time::Duration;

use bytes::Bytes;
use citytel_proto::sparkplug::pb::Payload;
use citytel_proto::sparkplug::pb::payload::Metric;
use citytel_proto::sparkplug::pb::payload::metric::Value;
use prost::Message as _;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{LastWill, Packet, Publish, Subscribe, SubscribeFilter};
use rumqttc::mqttbytes::v4::{SubscribeReasonCode, Unsubscribe};

use super::sparkplug::{self as sp, EndpointSparkplug, SubscribeRefusal, Wanted};
use super::tests::{Client, Harness, connect_packet, endpoint_config, harness};
use crate::sparkplug::{HostSettings, SparkplugSettings};

/// The pipeline clock's reading when a test starts (see `super::tests`).
const START_MS: i64 = 1_700_000_000_000;
const NCMD: &str = "spBv1.0/plant/NCMD/edge1";
const STATE: &str = "spBv1.0/STATE/citytel";

fn settings() -> SparkplugSettings {
    SparkplugSettings {
        host: HostSettings {
            reorder_timeout_ms: 1_000,
            ..HostSettings::default()
        },
        host_id: Some("citytel".into()),
    }
}

fn sparkplug_harness() -> Harness {
    let mut config = endpoint_config();
    config.sparkplug = Some(settings());
    harness(config)
}

fn payload(seq: Option<u64>, bd_seq: Option<u64>, ts: i64) -> Vec<u8> {
    let mut metrics = Vec::new();
    if let Some(bd_seq) = bd_seq {
        metrics.push(Metric {
            name: Some("bdSeq".into()),
            datatype: Some(8),
            value: Some(Value::LongValue(bd_seq)),
            ..Metric::default()
        });
    }
    metrics.push(Metric {
        name: Some("temp".into()),
        alias: Some(1),
        datatype: Some(10),
        value: Some(Value::DoubleValue(20.5)),
        ..Metric::default()
    });
    Payload {
        timestamp: Some(ts as u64),
        seq,
        metrics,
        ..Payload::default()
    }
    .encode_to_vec()
}

fn sp_publish(pkid: u16, topic: &str, payload: Vec<u8>) -> Packet {
    let mut p = Publish::from_bytes(topic, QoS::AtLeastOnce, Bytes::from(payload));
    p.pkid = pkid;
    Packet::Publish(p)
}

fn subscribe(pkid: u16, filters: &[&str]) -> Packet {
    let mut sub = Subscribe::new_many(
        filters
            .iter()
            .map(|f| SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce)),
    );
    sub.pkid = pkid;
    Packet::Subscribe(sub)
}

async fn suback(c: &mut Client) -> Vec<SubscribeReasonCode> {
    match c.recv().await {
        Some(Packet::SubAck(s)) => s.return_codes,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Publishes `topic` and acknowledges what the pipeline got of it, as the writer would once
/// it is durable; returns the topics queued.
async fn publish_durably(h: &mut Harness, c: &mut Client, pkid: u16, topic: &str, p: Vec<u8>) {
    c.send(sp_publish(pkid, topic, p)).await;
    loop {
        let envelope = h.next_envelope().await;
        if let Some(ack) = envelope.inbound.ack {
            ack.send();
            break;
        }
    }
    assert!(matches!(c.recv().await, Some(Packet::PubAck(a)) if a.pkid == pkid));
}

const GRANTED: SubscribeReasonCode = SubscribeReasonCode::Success(QoS::AtMostOnce);

#[tokio::test(start_paused = true)]
async fn an_edge_node_may_subscribe_to_its_own_commands_and_the_hosts_state_only() {
    let h = sparkplug_harness();
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    c.send(subscribe(
        3,
        &[
            NCMD,
            "spBv1.0/plant/DCMD/edge1/#",
            "spBv1.0/plant/DCMD/edge1/pump",
            STATE,
            "citytel/#",
            "spBv1.0/#",
            "spBv1.0/plant/NCMD/edge2",
            "spBv1.0/STATE/other-host",
            "spBv1.0/plant/NDATA/edge1",
        ],
    ))
    .await;
    let failure = SubscribeReasonCode::Failure;
    assert_eq!(
        suback(&mut c).await,
        [
            GRANTED, GRANTED, GRANTED, GRANTED, failure, failure, failure, failure, failure
        ]
    );
    // The retained STATE follows the SUBACK: QoS 0, retain set, online since citytel started.
    match c.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.topic, STATE);
            assert_eq!((p.qos, p.retain, p.pkid), (QoS::AtMostOnce, true, 0));
            assert_eq!(
                p.payload,
                format!("{{\"online\":true,\"timestamp\":{START_MS}}}")
            );
        }
        other => panic!("expected the STATE, got {other:?}"),
    }
    c.expect_silence(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn an_nbirth_binds_the_connection_to_its_node() {
    let mut h = sparkplug_harness();
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    let birth = payload(Some(0), Some(1), START_MS);
    publish_durably(&mut h, &mut c, 1, "spBv1.0/plant/NBIRTH/edge1", birth).await;
    c.send(subscribe(2, &["spBv1.0/plant/NCMD/edge2", NCMD]))
        .await;
    assert_eq!(
        suback(&mut c).await,
        [SubscribeReasonCode::Failure, GRANTED]
    );
}

#[tokio::test(start_paused = true)]
async fn without_sparkplug_every_subscription_is_still_refused() {
    let h = harness(endpoint_config());
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    c.send(subscribe(2, &[NCMD, STATE])).await;
    assert_eq!(suback(&mut c).await, [SubscribeReasonCode::Failure; 2]);
}

#[tokio::test(start_paused = true)]
async fn a_seq_gap_brings_a_rebirth_request_on_the_nodes_own_connection() {
    let mut h = sparkplug_harness();
    let sparkplug = h.shared.sparkplug.clone().unwrap();
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    c.send(subscribe(1, &[NCMD])).await;
    assert_eq!(suback(&mut c).await, [GRANTED]);
    // Another node's connection, which must get nothing.
    let (mut other, _other_task) = h.connect_pipe();
    other.connect(connect_packet("edge2", 30)).await;
    other
        .send(subscribe(1, &["spBv1.0/plant/NCMD/edge2"]))
        .await;
    assert_eq!(suback(&mut other).await, [GRANTED]);

    let birth = payload(Some(0), Some(1), START_MS);
    publish_durably(&mut h, &mut c, 2, "spBv1.0/plant/NBIRTH/edge1", birth).await;
    // seq 1 never comes.
    let data = payload(Some(2), None, START_MS + 10);
    publish_durably(&mut h, &mut c, 3, "spBv1.0/plant/NDATA/edge1", data).await;

    // Not before the reorder timeout.
    sp::request_rebirths(&sparkplug, START_MS + 999);
    c.expect_silence(Duration::from_millis(10)).await;
    sp::request_rebirths(&sparkplug, START_MS + 1_000);
    match c.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.topic, NCMD);
            assert_eq!((p.qos, p.retain), (QoS::AtMostOnce, false));
            let request = Payload::decode(&p.payload[..]).unwrap();
            assert_eq!(
                request.metrics[0].name.as_deref(),
                Some("Node Control/Rebirth")
            );
            assert_eq!(request.metrics[0].value, Some(Value::BooleanValue(true)));
        }
        other => panic!("expected a rebirth request, got {other:?}"),
    }
    // Once per session.
    sp::request_rebirths(&sparkplug, START_MS + 10_000);
    c.expect_silence(Duration::from_secs(1)).await;
    other.expect_silence(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn no_rebirth_request_goes_anywhere_for_a_node_that_is_not_connected() {
    let mut h = sparkplug_harness();
    let sparkplug = h.shared.sparkplug.clone().unwrap();
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    let birth = payload(Some(0), Some(1), START_MS);
    publish_durably(&mut h, &mut c, 1, "spBv1.0/plant/NBIRTH/edge1", birth).await;
    let data = payload(Some(5), None, START_MS + 10);
    publish_durably(&mut h, &mut c, 2, "spBv1.0/plant/NDATA/edge1", data).await;
    c.send(Packet::Disconnect).await;
    task.await.unwrap();
    // Its route left with it; a connection of another node receives nothing.
    let (mut other, _other_task) = h.connect_pipe();
    other.connect(connect_packet("edge2", 30)).await;
    other
        .send(subscribe(1, &["spBv1.0/plant/NCMD/edge2"]))
        .await;
    assert_eq!(suback(&mut other).await, [GRANTED]);
    assert!(!sparkplug.routes.send(
        &("plant".into(), "edge1".into()),
        super::reply::ToClient::PingResp
    ));
    sp::request_rebirths(&sparkplug, START_MS + 5_000);
    other.expect_silence(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_nodes_will_is_its_ndeath_through_the_host() {
    let mut h = sparkplug_harness();
    let (mut c, task) = h.connect_pipe();
    let mut connect = connect_packet("edge1", 30);
    connect.last_will = Some(LastWill::new(
        "spBv1.0/plant/NDEATH/edge1",
        payload(None, Some(1), START_MS),
        QoS::AtLeastOnce,
        false,
    ));
    c.connect(connect).await;
    let birth = payload(Some(0), Some(1), START_MS);
    publish_durably(&mut h, &mut c, 1, "spBv1.0/plant/NBIRTH/edge1", birth).await;
    drop(c);
    task.await.unwrap();
    let death = h.next_envelope().await;
    assert_eq!(
        death.inbound.topic,
        "citytel/v1/plant/gateway/plant.edge1/status"
    );
    assert_eq!(death.inbound.origin, crate::pipeline::Origin::Will);
    assert!(death.verdict.is_ok(), "{:?}", death.verdict);
}

#[tokio::test(start_paused = true)]
async fn at_shutdown_state_subscribers_are_told_citytel_is_offline() {
    let h = sparkplug_harness();
    let (mut c, task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    // A subscriber that unsubscribed is told nothing.
    let (mut gone, gone_task) = h.connect_pipe();
    gone.connect(connect_packet("edge2", 30)).await;
    for client in [&mut c, &mut gone] {
        client.send(subscribe(1, &[STATE])).await;
        assert_eq!(suback(client).await, [GRANTED]);
        assert!(matches!(client.recv().await, Some(Packet::Publish(_))));
    }
    gone.send(Packet::Unsubscribe(Unsubscribe::new(STATE)))
        .await;
    assert!(matches!(gone.recv().await, Some(Packet::UnsubAck(_))));
    h.shutdown.cancel();
    match c.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.topic, STATE);
            assert!(p.retain);
            assert_eq!(
                p.payload,
                format!("{{\"online\":false,\"timestamp\":{START_MS}}}")
            );
        }
        other => panic!("expected the STATE offline, got {other:?}"),
    }
    assert_eq!(c.recv().await, None);
    assert_eq!(gone.recv().await, None);
    task.await.unwrap();
    gone_task.await.unwrap();
}

#[test]
fn with_device_authentication_the_identity_decides_the_own_node() {
    let sparkplug = EndpointSparkplug::new(settings(), START_MS);
    let own = ("plant".to_string(), "edge1".to_string());
    assert_eq!(
        sp::decide(&sparkplug, NCMD, None, Some("plant.edge1")),
        Ok(Wanted::Commands(own.clone()))
    );
    assert_eq!(
        sp::decide(&sparkplug, NCMD, None, Some("plant.edge2")),
        Err(SubscribeRefusal::NotOwnNode)
    );
    // Without authentication, the bound node decides; before one is bound, any node binds.
    let other = ("plant".to_string(), "edge2".to_string());
    assert_eq!(
        sp::decide(&sparkplug, NCMD, Some(&other), None),
        Err(SubscribeRefusal::NotOwnNode)
    );
    assert_eq!(
        sp::decide(&sparkplug, NCMD, None, None),
        Ok(Wanted::Commands(own))
    );
    for bad in [
        "spBv1.0/plant/NCMD/+",
        "spBv1.0/+/NCMD/edge1",
        "spBv1.0/plant/DCMD/edge1",
        "spBv1.0/plant/DCMD/edge1/a/b",
        "spBv1.0/STATE/#",
        "$share/g/spBv1.0/plant/NCMD/edge1",
    ] {
        assert_eq!(
            sp::decide(&sparkplug, bad, None, None),
            Err(SubscribeRefusal::Filter),
            "{bad}"
        );
    }
}

/// An endpoint with device authentication where `plant.edge1` (a gateway at site `plant`) is
/// provisioned with a token.
fn authenticated_harness() -> Harness {
    use super::identity::{Authority, DeviceAuth};
    use crate::config::CertIdentity;
    use crate::provisioning::{DeviceEntry, Provisioning, ProvisioningFile, credential};

    let mut file = ProvisioningFile::new();
    file.devices.push(DeviceEntry {
        id: "plant.edge1".into(),
        kind: "gateway".into(),
        site: "plant".into(),
        token_sha256: Some(credential::sha256_hex(TOKEN.as_bytes())),
        ..DeviceEntry::default()
    });
    let authority = Authority::new(Provisioning::fixed(file), false, CertIdentity::Cn);
    let mut config = endpoint_config();
    config.sparkplug = Some(settings());
    let (pipeline, queue) = crate::pipeline::Pipeline::with_clock(
        super::tests::limits(),
        1 << 20,
        crate::clock::Clock::tokio(START_MS),
    );
    Harness {
        shared: std::sync::Arc::new(super::Shared::with_auth(
            config,
            pipeline,
            DeviceAuth::Required(authority),
        )),
        queue,
        shutdown: tokio_util::sync::CancellationToken::new(),
    }
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn authenticated_connect(will_topic: &str) -> rumqttc::mqttbytes::v4::Connect {
    let mut connect = connect_packet("plant.edge1", 30);
    connect.set_login("plant.edge1", TOKEN);
    connect.last_will = Some(LastWill::new(
        will_topic,
        payload(None, Some(1), START_MS),
        QoS::AtLeastOnce,
        false,
    ));
    connect
}

#[tokio::test(start_paused = true)]
async fn an_authenticated_node_speaks_and_subscribes_for_itself_only() {
    use rumqttc::mqttbytes::v4::ConnectReturnCode;

    let mut h = authenticated_harness();
    // Its Will may be its own NDEATH, not another node's.
    let (mut c, _task) = h.connect_pipe();
    let refused = c
        .connect(authenticated_connect("spBv1.0/plant/NDEATH/edge2"))
        .await;
    assert_eq!(refused.code, ConnectReturnCode::NotAuthorized);
    let (mut c, task) = h.connect_pipe();
    let accepted = c
        .connect(authenticated_connect("spBv1.0/plant/NDEATH/edge1"))
        .await;
    assert_eq!(accepted.code, ConnectReturnCode::Success);

    // Only its own commands, even as its first subscription.
    c.send(subscribe(1, &["spBv1.0/plant/NCMD/edge2", NCMD]))
        .await;
    assert_eq!(
        suback(&mut c).await,
        [SubscribeReasonCode::Failure, GRANTED]
    );
    let birth = payload(Some(0), Some(1), START_MS);
    publish_durably(&mut h, &mut c, 2, "spBv1.0/plant/NBIRTH/edge1", birth).await;

    // Another node's message is dead-lettered as unauthorised and closes the connection.
    let birth = payload(Some(0), Some(1), START_MS);
    c.send(sp_publish(3, "spBv1.0/plant/NBIRTH/edge2", birth))
        .await;
    let refused = h.next_envelope().await;
    assert_eq!(refused.inbound.topic, "spBv1.0/plant/NBIRTH/edge2");
    assert_eq!(
        refused.verdict.unwrap_err().reason,
        crate::decode::RejectReason::Unauthorized
    );
    assert!(matches!(
        task.await.unwrap(),
        super::connection::Disconnect::Unauthorized(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn mqtt5_subscriptions_are_granted_at_qos0_or_refused_and_unsubscribes_say_which_existed() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::{
        Connect, Filter, Packet as Packet5, Subscribe as Subscribe5, SubscribeReasonCode as Code5,
        UnsubAckReason::{NoSubscriptionExisted, Success},
        Unsubscribe as Unsubscribe5,
    };

    let h = sparkplug_harness();
    let (mut c, _task) = h.connect_pipe();
    let connect = Connect {
        keep_alive: 30,
        client_id: "edge1".into(),
        clean_start: true,
        properties: None,
    };
    c.connect5(connect, None).await;
    let mut sub = Subscribe5::new_many(
        [NCMD, "citytel/#", STATE].map(|f| Filter::new(f, QoS5::AtLeastOnce)),
        None,
    );
    sub.pkid = 4;
    c.send5(Packet5::Subscribe(sub)).await;
    match c.recv5().await {
        Some(Packet5::SubAck(a)) => {
            assert_eq!(a.pkid, 4);
            assert_eq!(
                a.return_codes,
                [
                    Code5::Success(QoS5::AtMostOnce),
                    Code5::NotAuthorized,
                    Code5::Success(QoS5::AtMostOnce)
                ]
            );
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
    match c.recv5().await {
        Some(Packet5::Publish(p)) => {
            assert_eq!(p.topic, STATE.as_bytes());
            assert_eq!((p.qos, p.retain), (QoS5::AtMostOnce, true));
            assert_eq!(
                p.payload,
                format!("{{\"online\":true,\"timestamp\":{START_MS}}}")
            );
        }
        other => panic!("expected the STATE, got {other:?}"),
    }
    // UNSUBACK says, per filter, whether the subscription existed: the refused one never did,
    // and the second time none does.
    for (pkid, expected) in [
        (5, [Success, NoSubscriptionExisted, Success]),
        (6, [NoSubscriptionExisted; 3]),
    ] {
        let mut unsub = Unsubscribe5::new(NCMD, None);
        unsub.filters = vec![NCMD.into(), "citytel/#".into(), STATE.into()];
        unsub.pkid = pkid;
        c.send5(Packet5::Unsubscribe(unsub)).await;
        match c.recv5().await {
            Some(Packet5::UnsubAck(a)) => {
                assert_eq!((a.pkid, a.reasons), (pkid, expected.to_vec()))
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn commands_and_state_published_to_the_endpoint_are_dead_letters() {
    let mut h = sparkplug_harness();
    let (mut c, _task) = h.connect_pipe();
    c.connect(connect_packet("edge1", 30)).await;
    for (pkid, topic) in [(1, NCMD), (2, STATE)] {
        c.send(sp_publish(pkid, topic, b"{}".to_vec())).await;
        let envelope = h.next_envelope().await;
        assert_eq!(envelope.inbound.topic, topic);
        assert_eq!(
            envelope.verdict.as_ref().unwrap_err().reason,
            crate::decode::RejectReason::UnknownTopic
        );
        envelope.inbound.ack.unwrap().send();
        assert!(matches!(c.recv().await, Some(Packet::PubAck(a)) if a.pkid == pkid));
    }
}

#[tokio::test(start_paused = true)]
async fn an_mqtt5_session_kept_keeps_its_subscriptions() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::{
        Connect, ConnectProperties, Filter, Packet as Packet5, Subscribe as Subscribe5,
        UnsubAckReason, Unsubscribe as Unsubscribe5,
    };

    let h = sparkplug_harness();
    let connect = |clean_start| Connect {
        keep_alive: 30,
        client_id: "edge1".into(),
        clean_start,
        properties: Some(ConnectProperties {
            session_expiry_interval: Some(60),
            ..ConnectProperties::new()
        }),
    };
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect(true), None).await;
    let sub = Subscribe5::new_many(
        [NCMD, STATE].map(|f| Filter::new(f, QoS5::AtMostOnce)),
        None,
    );
    c.send5(Packet5::Subscribe(sub)).await;
    assert!(matches!(c.recv5().await, Some(Packet5::SubAck(_))));
    assert!(matches!(c.recv5().await, Some(Packet5::Publish(_))));
    drop(c);
    task.await.unwrap();

    let (mut c, _task) = h.connect_pipe();
    assert!(c.connect5(connect(false), None).await.session_present);
    let mut unsub = Unsubscribe5::new(NCMD, None);
    unsub.filters.push(STATE.into());
    unsub.pkid = 2;
    c.send5(Packet5::Unsubscribe(unsub)).await;
    match c.recv5().await {
        Some(Packet5::UnsubAck(a)) => assert_eq!(a.reasons, [UnsubAckReason::Success; 2]),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}
