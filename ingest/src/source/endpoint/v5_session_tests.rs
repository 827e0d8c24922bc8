//! MQTT 5 session expiry and Will delay on the device endpoint, over in-memory pipes with a
//! paused clock: what a client finds when it comes back, and when its Last Will is published.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Connect, ConnectProperties, Disconnect as DisconnectPacket, DisconnectProperties,
    DisconnectReasonCode, LastWill, LastWillProperties, Packet,
};

use super::connection::Disconnect;
use super::tests::{Harness, endpoint_config, harness};
use crate::pipeline::Origin;

const STATUS: &str = "citytel/v1/site-01/cabinet/cab-0001/status";

/// A CONNECT of `cab-0001` asking for `expiry_s` of session expiry (`None`: the property
/// absent, which means 0).
fn connect(clean_start: bool, expiry_s: Option<u32>) -> Connect {
    let properties = expiry_s.map(|s| ConnectProperties {
        session_expiry_interval: Some(s),
        ..ConnectProperties::new()
    });
    Connect {
        keep_alive: 30,
        client_id: "cab-0001".into(),
        clean_start,
        properties,
    }
}

/// A Last Will on the device's status topic, delayed by `delay_s`.
fn will(delay_s: u32) -> LastWill {
    let properties = LastWillProperties {
        delay_interval: Some(delay_s),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    LastWill::new(
        STATUS,
        Bytes::from_static(b"offline"),
        QoS::AtLeastOnce,
        false,
        Some(properties),
    )
}

/// Connects, checks the session present flag, and drops the connection (no DISCONNECT).
async fn visit(h: &Harness, c: Connect, w: Option<LastWill>, present: bool) {
    let (mut client, task) = h.connect_pipe();
    let ack = client.connect5(c, w).await;
    assert_eq!(ack.session_present, present);
    drop(client);
    assert_eq!(task.await.unwrap(), Disconnect::Closed);
}

/// The wills queued so far, with the ms after the start each was received at.
fn wills(h: &mut Harness) -> Vec<String> {
    h.queued_now()
        .into_iter()
        .filter(|q| q.starts_with("will"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_session_is_present_while_its_expiry_lasts() {
    let h = harness(endpoint_config());
    visit(&h, connect(false, Some(60)), None, false).await;
    tokio::time::sleep(Duration::from_secs(59)).await;
    visit(&h, connect(false, Some(60)), None, true).await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    visit(&h, connect(false, Some(60)), None, false).await;
    // Clean start ends the session kept.
    visit(&h, connect(true, Some(60)), None, false).await;
    // No expiry (the default): the session ended with the connection before.
    visit(&h, connect(false, None), None, true).await;
    visit(&h, connect(false, None), None, false).await;
}

#[tokio::test(start_paused = true)]
async fn an_expiry_beyond_the_maximum_is_cut_and_the_client_told() {
    let mut config = endpoint_config();
    config.max_session_expiry = Duration::from_secs(100);
    let h = harness(config);
    for (asked, told) in [(Some(u32::MAX), Some(100)), (Some(500), Some(100))] {
        let (mut c, _task) = h.connect_pipe();
        let ack = c.connect5(connect(true, asked), None).await;
        let told_back = ack.properties.and_then(|p| p.session_expiry_interval);
        assert_eq!(told_back, told, "asked for {asked:?}");
    }
    for asked in [None, Some(0), Some(50), Some(100)] {
        let (mut c, _task) = h.connect_pipe();
        let ack = c.connect5(connect(true, asked), None).await;
        let told_back = ack.properties.and_then(|p| p.session_expiry_interval);
        assert_eq!(told_back, None, "granted as asked: {asked:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_delayed_will_is_published_after_its_delay_or_when_the_session_ends() {
    let mut h = harness(endpoint_config());
    // Delay 30 s, session 60 s: published at 30 s.
    visit(&h, connect(true, Some(60)), Some(will(30)), false).await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(wills(&mut h), Vec::<String>::new(), "not before its delay");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(wills(&mut h), [format!("will {STATUS}")]);

    // Delay 30 s, session 10 s: published when the session ends, at 10 s.
    visit(&h, connect(true, Some(10)), Some(will(30)), false).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(wills(&mut h).is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(wills(&mut h).len(), 1, "at the session's end");

    // No session expiry: published at once.
    visit(&h, connect(true, None), Some(will(30)), false).await;
    tokio::task::yield_now().await;
    assert_eq!(wills(&mut h).len(), 1, "at once");
}

#[tokio::test(start_paused = true)]
async fn a_client_back_in_time_cancels_its_will_and_a_clean_start_publishes_it_first() {
    let mut h = harness(endpoint_config());
    visit(&h, connect(true, Some(60)), Some(will(30)), false).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    // Back to the session within the delay: the Will is never published.
    let (mut c, _task) = h.connect_pipe();
    assert!(
        c.connect5(connect(false, Some(60)), None)
            .await
            .session_present
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(wills(&mut h).is_empty(), "cancelled");
    drop(c);

    // A clean start ends the session: its Will is queued before the new connection's events.
    let mut h = harness(endpoint_config());
    visit(&h, connect(true, Some(60)), Some(will(30)), false).await;
    let _ = h.queued_now();
    let (mut c, _task) = h.connect_pipe();
    assert!(
        !c.connect5(connect(true, Some(60)), Some(will(30)))
            .await
            .session_present
    );
    tokio::task::yield_now().await;
    let queued = h.queued_now();
    assert_eq!(
        queued,
        [format!("will {STATUS}"), "opened cab-0001 +0".to_string()],
        "the old session's Will first"
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_may_change_the_expiry_but_not_from_zero() {
    let mut h = harness(endpoint_config());
    // Expiry 60 s at CONNECT, 0 at DISCONNECT: nothing kept.
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect(false, Some(60)), None).await;
    let properties = DisconnectProperties {
        session_expiry_interval: Some(0),
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: None,
    };
    let bye = DisconnectPacket {
        reason_code: DisconnectReasonCode::NormalDisconnection,
        properties: Some(properties.clone()),
    };
    c.send5(Packet::Disconnect(bye)).await;
    assert_eq!(task.await.unwrap(), Disconnect::ByClient);
    visit(&h, connect(false, Some(60)), None, false).await;

    // Expiry 0 at CONNECT, 60 s at DISCONNECT: a protocol error (MQTT 5, 3.14.2.2.2).
    let (mut c, task) = h.connect_pipe();
    c.connect5(connect(true, None), Some(will(0))).await;
    let bye = DisconnectPacket {
        reason_code: DisconnectReasonCode::NormalDisconnection,
        properties: Some(DisconnectProperties {
            session_expiry_interval: Some(60),
            ..properties
        }),
    };
    c.send5(Packet::Disconnect(bye)).await;
    match c.recv5().await {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason_code, DisconnectReasonCode::ProtocolError)
        }
        other => panic!("expected DISCONNECT 0x82, got {other:?}"),
    }
    assert!(matches!(task.await.unwrap(), Disconnect::ProtocolError(_)));
    let fired: Vec<Origin> = std::iter::from_fn(|| h.queue.try_recv().ok())
        .filter_map(|q| match q {
            crate::pipeline::Queued::Message(e) => Some(e.inbound.origin),
            _ => None,
        })
        .collect();
    assert_eq!(fired, [Origin::Will], "a protocol error fires the Will");
}
