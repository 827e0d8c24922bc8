//! Devices prove who they are: `citytel serve` with its `mqtts` listener requiring a client
//! certificate from the operator's CA and a provisioning file, attacked as issue 12 describes.
//! A client without a certificate, with one from another CA, or with a common name nobody
//! provisioned is refused; every attempt of a real device to speak for another (readings,
//! deaths, heartbeats, births, site and kind moves, a gateway's deaths for devices that are not
//! its children, a Last Will naming another device, taking over another device's client id) is
//! refused and counted, and the spoofed device's state, readings and connection are untouched.

use std::time::Duration;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{
    Birth, Death, Device, DeviceState, GetDeviceRequest, Heartbeat, Status, status,
};
use citytel_testkit::metrics::Scrape;
use citytel_testkit::mqtt::MqttError;
use citytel_tests::mtls::{self, Pki, TlsConn, connect_packet, device};
use citytel_tests::raw_mqtt::publish;
use citytel_tests::wire::{batch_payload, dead_letters, now_ms, readings_total};
use prost::Message as _;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, LastWill, Packet};
use tonic::transport::Channel;

const VICTIM: &str = "cab-0001";
const ATTACKER: &str = "cab-0002";
const GATEWAY: &str = "gw-01";
const CHILD: &str = "sen-0001";
const STRANGER: &str = "sen-0002";

fn topic(site: &str, kind: &str, device: &str, channel: &str) -> String {
    format!("citytel/v1/{site}/{kind}/{device}/{channel}")
}

fn status_payload(device: &str, gateway: Option<&str>, kind: status::Kind) -> Vec<u8> {
    Status {
        device_id: device.to_string(),
        boot_id: 1,
        time_unix_ms: now_ms(),
        gateway_id: gateway.map(str::to_string),
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn birth(device: &str, children: &[&str]) -> Vec<u8> {
    status_payload(
        device,
        None,
        status::Kind::Birth(Birth {
            firmware_version: "1.0.0".into(),
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: Some(30_000),
            children: children.iter().map(|c| c.to_string()).collect(),
            ..Birth::default()
        }),
    )
}

fn death(device: &str, gateway: Option<&str>) -> Vec<u8> {
    status_payload(
        device,
        gateway,
        status::Kind::Death(Death {
            reason: 2,
            at_status_time: false,
        }),
    )
}

fn readings(device: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let now = now_ms();
    let readings: Vec<(u64, i64, Vec<f64>)> = seqs
        .map(|seq| (seq, now - 1000 + seq as i64, vec![20.0 + seq as f64]))
        .collect();
    batch_payload(device, 1, &["temperature_c"], &readings)
}

/// Connects as `device` (its certificate) with `connect`, expecting success.
async fn connect_as(citytel: &Setup, device: &str) -> TlsConn {
    let cert = citytel.pki.device(device);
    let (_, conn) = mtls::connect(
        citytel.addr(),
        &citytel.pki.ca_pem(),
        Some(&cert.issued),
        connect_packet(device),
    )
    .await
    .unwrap_or_else(|e| panic!("{device} connecting: {e}"));
    conn
}

/// Publishes at QoS 1 and waits for its PUBACK.
async fn publish_acked(conn: &mut TlsConn, topic: &str, payload: Vec<u8>, pkid: u16) {
    citytel_testkit::mqtt::write_packet(conn.get_mut(), publish(topic, payload, pkid, false))
        .await
        .expect("publish");
    match conn.read().await.expect("read") {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.pkid, pkid),
        other => panic!("expected PUBACK {pkid}, got {other:?}"),
    }
}

/// Publishes what `device` may not, and checks the connection is closed (after, at most, the
/// PUBACK of the dead letter).
async fn publish_refused(citytel: &Setup, device: &str, topic: &str, payload: Vec<u8>) {
    let mut conn = connect_as(citytel, device).await;
    citytel_testkit::mqtt::write_packet(conn.get_mut(), publish(topic, payload, 7, false))
        .await
        .expect("publish");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match conn.read().await {
                Ok(Some(Packet::PubAck(_))) => continue,
                Ok(None) | Err(_) => return,
                Ok(Some(other)) => panic!("{device} on {topic}: unexpected {other:?}"),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{device} publishing on {topic}: the connection stayed open"
    );
}

/// Sends `connect` with `device`'s certificate and returns the refusal code.
async fn connect_refused(citytel: &Setup, device: &str, connect: rumqttc::mqttbytes::v4::Connect) {
    let cert = citytel.pki.device(device);
    let result = mtls::connect(
        citytel.addr(),
        &citytel.pki.ca_pem(),
        Some(&cert.issued),
        connect,
    )
    .await;
    match result {
        Err(MqttError::Refused(code)) => assert_eq!(code, ConnectReturnCode::NotAuthorized),
        Err(other) => panic!("expected CONNACK 5, got {other}"),
        Ok(_) => panic!("the CONNECT was accepted"),
    }
}

async fn get_device(client: &mut QueryServiceClient<Channel>, id: &str) -> Device {
    client
        .get_device(GetDeviceRequest {
            device_id: id.to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("GetDevice {id}: {e}"))
        .into_inner()
        .device
        .unwrap_or_else(|| panic!("{id} is known"))
}

/// What a spoofing attempt could change about a device.
fn observable(d: &Device) -> (String, String, i32, u64, Option<u32>, Option<String>) {
    (
        d.site.clone(),
        d.kind.clone(),
        d.state,
        d.readings_total,
        d.reporting_interval_ms,
        d.gateway_id.clone(),
    )
}

struct Setup {
    pki: Pki,
    citytel: citytel_tests::process::Citytel,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().expect("data dir");
        let pki = Pki::new("citytel operator CA");
        mtls::provision(
            dir.path(),
            vec![
                device(VICTIM, "cabinet", None),
                device(ATTACKER, "cabinet", None),
                device(GATEWAY, "gateway", None),
                device(CHILD, "sensor", Some(GATEWAY)),
                device(STRANGER, "sensor", None),
            ],
        );
        let citytel = mtls::start(dir.path(), &pki, &[]);
        Setup {
            pki,
            citytel,
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.citytel.mqtts.expect("mqtts endpoint")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_valid_certificate_or_provisioned_identity_are_refused() {
    let setup = Setup::start();
    let other_ca = Pki::new("someone else's CA");
    let stranger_cert = other_ca.device(VICTIM);
    let unprovisioned = setup.pki.device("cab-9999");
    let ca = setup.pki.ca_pem();

    // No client certificate: the handshake is refused (with TLS 1.3, at the first read).
    let no_cert = mtls::connect(setup.addr(), &ca, None, connect_packet(VICTIM)).await;
    assert!(
        matches!(no_cert, Err(MqttError::Io(_)) | Err(MqttError::Closed(_))),
        "{:?}",
        no_cert.map(|(ack, _)| ack)
    );
    // A certificate naming a provisioned device, from another CA: refused the same way.
    let foreign = mtls::connect(
        setup.addr(),
        &ca,
        Some(&stranger_cert.issued),
        connect_packet(VICTIM),
    )
    .await;
    assert!(
        matches!(foreign, Err(MqttError::Io(_)) | Err(MqttError::Closed(_))),
        "{:?}",
        foreign.map(|(ack, _)| ack)
    );
    // A valid certificate whose common name nobody provisioned: CONNACK 5.
    connect_refused(&setup, "cab-9999", connect_packet("cab-9999")).await;
    drop(unprovisioned);

    // The provisioned device gets in and is stored.
    let mut conn = connect_as(&setup, VICTIM).await;
    publish_acked(
        &mut conn,
        &topic("site-01", "cabinet", VICTIM, "telemetry"),
        readings(VICTIM, 1..=2),
        1,
    )
    .await;
    let mut client = setup.citytel.client().await;
    assert_eq!(readings_total(&mut client, VICTIM).await, 2);
    assert_eq!(readings_total(&mut client, "cab-9999").await, 0);

    let scrape = Scrape::fetch(setup.citytel.metrics.as_deref().expect("metrics")).await;
    assert!(
        scrape.value("citytel_endpoint_disconnects_total{reason=\"tls_handshake\"}") >= 2.0,
        "both bad handshakes are counted"
    );
    assert_eq!(
        scrape.value("citytel_endpoint_refused_total{reason=\"not_authorized\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spoofing_attempt_is_refused_counted_and_changes_nothing() {
    let setup = Setup::start();
    let mut client = setup.citytel.client().await;
    let own = |device: &str, kind: &str, channel: &str| topic("site-01", kind, device, channel);

    // The real devices: the victim is born and reports, the gateway and its child report, and
    // the stranger (no gateway) is born on its own connection.
    let mut victim = connect_as(&setup, VICTIM).await;
    publish_acked(
        &mut victim,
        &own(VICTIM, "cabinet", "status"),
        birth(VICTIM, &[]),
        1,
    )
    .await;
    publish_acked(
        &mut victim,
        &own(VICTIM, "cabinet", "telemetry"),
        readings(VICTIM, 1..=3),
        2,
    )
    .await;
    let mut gateway = connect_as(&setup, GATEWAY).await;
    publish_acked(
        &mut gateway,
        &own(GATEWAY, "gateway", "status"),
        birth(GATEWAY, &[CHILD]),
        1,
    )
    .await;
    let mut stranger = connect_as(&setup, STRANGER).await;
    publish_acked(
        &mut stranger,
        &own(STRANGER, "sensor", "status"),
        birth(STRANGER, &[]),
        1,
    )
    .await;
    let before_victim = observable(&get_device(&mut client, VICTIM).await);
    let before_stranger = observable(&get_device(&mut client, STRANGER).await);
    assert_eq!(
        before_victim.2,
        DeviceState::Online as i32,
        "{before_victim:?}"
    );
    assert_eq!(before_victim.3, 3);
    assert_eq!(before_stranger.2, DeviceState::Online as i32);

    let forty_nine_days_ms = 49 * 24 * 3600 * 1000;
    let mut long_birth = Status::decode(&birth(VICTIM, &[])[..]).unwrap();
    if let Some(status::Kind::Birth(b)) = &mut long_birth.kind {
        b.heartbeat_interval_ms = Some(forty_nine_days_ms);
    }
    // (who, topic, payload): each is dead-lettered as `unauthorized` and closes its connection.
    let attempts: Vec<(&str, String, Vec<u8>)> = vec![
        // Readings, a death, a heartbeat and a birth for another device.
        (
            ATTACKER,
            own(VICTIM, "cabinet", "telemetry"),
            readings(VICTIM, 4..=4),
        ),
        (
            ATTACKER,
            own(VICTIM, "cabinet", "status"),
            death(VICTIM, None),
        ),
        (
            ATTACKER,
            own(VICTIM, "cabinet", "status"),
            status_payload(
                VICTIM,
                None,
                status::Kind::Heartbeat(Heartbeat {
                    last_seq: Some(0),
                    uptime_s: Some(1),
                }),
            ),
        ),
        (
            ATTACKER,
            own(VICTIM, "cabinet", "status"),
            long_birth.encode_to_vec(),
        ),
        // Moving the victim to another site, and the attacker itself to another kind.
        (
            ATTACKER,
            topic("site-99", "cabinet", VICTIM, "telemetry"),
            readings(VICTIM, 5..=5),
        ),
        (
            ATTACKER,
            topic("site-01", "small_cell", ATTACKER, "telemetry"),
            readings(ATTACKER, 1..=1),
        ),
        // A gateway's death for a device that is not its child, and a birth claiming it.
        (
            GATEWAY,
            own(STRANGER, "sensor", "status"),
            death(STRANGER, Some(GATEWAY)),
        ),
        (
            GATEWAY,
            own(GATEWAY, "gateway", "status"),
            birth(GATEWAY, &[CHILD, STRANGER]),
        ),
        // A payload naming a gateway that is not the connection.
        (
            ATTACKER,
            own(ATTACKER, "cabinet", "status"),
            death(ATTACKER, Some(GATEWAY)),
        ),
    ];
    for (who, topic, payload) in &attempts {
        publish_refused(&setup, who, topic, payload.clone()).await;
    }

    // Refused at CONNECT (CONNACK 5): a Last Will naming the victim, and the victim's client id.
    let mut with_will = connect_packet(ATTACKER);
    with_will.last_will = Some(LastWill::new(
        own(VICTIM, "cabinet", "status"),
        death(VICTIM, None),
        QoS::AtLeastOnce,
        false,
    ));
    connect_refused(&setup, ATTACKER, with_will).await;
    connect_refused(&setup, ATTACKER, connect_packet(VICTIM)).await;

    // The victim's connection was never taken over: it still publishes and is acked.
    publish_acked(
        &mut victim,
        &own(VICTIM, "cabinet", "telemetry"),
        readings(VICTIM, 6..=6),
        3,
    )
    .await;
    // The gateway (its attempts took its own client id over, as MQTT says) still speaks for
    // its own child.
    let mut gateway = connect_as(&setup, GATEWAY).await;
    publish_acked(
        &mut gateway,
        &own(CHILD, "sensor", "telemetry"),
        batch_payload(CHILD, 1, &["pm25_ugm3"], &[(1, now_ms(), vec![3.0])]),
        1,
    )
    .await;

    let after_victim = observable(&get_device(&mut client, VICTIM).await);
    let after_stranger = observable(&get_device(&mut client, STRANGER).await);
    let mut expected_victim = before_victim.clone();
    expected_victim.3 += 1;
    assert_eq!(
        after_victim, expected_victim,
        "only the victim's own reading counts"
    );
    assert_eq!(after_stranger, before_stranger);
    assert_eq!(get_device(&mut client, ATTACKER).await.kind, "cabinet");
    assert_eq!(readings_total(&mut client, CHILD).await, 1);

    let refused = attempts.len();
    let letters = dead_letters(&mut client, "unauthorized").await;
    assert_eq!(letters.dead_letters.len(), refused, "{letters:?}");
    assert_eq!(
        letters.counts_by_reason.get("unauthorized").copied(),
        Some(refused as u64)
    );
    let scrape = Scrape::fetch(setup.citytel.metrics.as_deref().expect("metrics")).await;
    assert_eq!(
        scrape.value("citytel_messages_rejected_total{reason=\"unauthorized\"}"),
        refused as f64
    );
    assert_eq!(
        scrape.value("citytel_endpoint_disconnects_total{reason=\"unauthorized\"}"),
        refused as f64
    );
    assert_eq!(
        scrape.value("citytel_endpoint_refused_total{reason=\"not_authorized\"}"),
        2.0
    );
    drop((victim, gateway, stranger));
    assert!(setup.citytel.stop().success());
}
