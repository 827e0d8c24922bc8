//! Devices prove who they are: `citytel serve` with its `mqtts` listener requiring a client
//! certificate from the operator's CA and a provisioning file, attacked as issue 12 describes.
//! A client without a certificate, with one from another CA, or with a common name nobody
//! provisioned is refused; every attempt of a real device to speak for another (readings,
//! deaths, heartbeats, births, site and kind moves, a gateway's deaths for devices that are not
//! its children, a Last Will naming another device, taking over another device's client id) is
//! refused and counted, and the spoofed device's state, readings and connection are untouched.
//! The spoofing attempts run over MQTT 3.1.1 and over MQTT 5, where the device is also told why:
//! PUBACK 0x87 "dead-lettered as unauthorized" and DISCONNECT 0x87 for a publish it may not
//! send, CONNACK 0x87 with a reason string for a CONNECT it may not make.

use std::time::Duration;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{
    Birth, Death, Device, DeviceState, GetDeviceRequest, Heartbeat, Status, status,
};
use citytel_testkit::metrics::Scrape;
use citytel_testkit::mqtt::MqttError;
use citytel_testkit::mqtt5::Mqtt5Error;
use citytel_tests::mtls::{self, Pki, connect_packet, device};
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{batch_payload, dead_letters, now_ms, readings_total};
use prost::Message as _;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, LastWill, Packet};
use rumqttc::v5::mqttbytes::v5;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::Channel;

/// A device's connection over TLS, in either MQTT version.
type DeviceConn = RawClient<TlsStream<TcpStream>>;

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

/// Connects as `device` (its certificate, its client id) in `version`, expecting success.
async fn connect_as(citytel: &Setup, device: &str, version: Version) -> DeviceConn {
    let cert = citytel.pki.device(device);
    let (addr, ca) = (citytel.addr(), citytel.pki.ca_pem());
    match version {
        Version::V311 => {
            let connect = connect_packet(device);
            let (_, conn) = mtls::connect(addr, &ca, Some(&cert.issued), connect)
                .await
                .unwrap_or_else(|e| panic!("{device} connecting: {e}"));
            RawClient::from_v311(conn)
        }
        Version::V5 => {
            let (_, conn) = mtls::connect5(addr, &ca, Some(&cert.issued), device, None)
                .await
                .unwrap_or_else(|e| panic!("{device} connecting over MQTT 5: {e}"));
            RawClient::from_v5(conn)
        }
    }
}

/// Publishes what `device` may not, and checks the connection is closed after the PUBACK of the
/// dead letter: in MQTT 5 PUBACK 0x87 and DISCONNECT 0x87, both saying why.
async fn publish_refused(
    citytel: &Setup,
    version: Version,
    device: &str,
    topic: &str,
    payload: Vec<u8>,
) {
    let mut conn = connect_as(citytel, device, version).await;
    conn.publish(topic, payload, 7, false).await;
    let wait = Duration::from_secs(10);
    match version {
        Version::V311 => {
            let packets = tokio::time::timeout(wait, conn.packets_until_closed()).await;
            let packets = packets
                .unwrap_or_else(|_| panic!("{device} on {topic}: the connection stayed open"));
            assert!(
                matches!(packets.as_slice(), [Packet::PubAck(ack)] if ack.pkid == 7),
                "{device} on {topic}: expected PUBACK 7 and the end, got {packets:?}"
            );
        }
        Version::V5 => {
            let packets = tokio::time::timeout(wait, conn.packets_until_closed5()).await;
            let packets = packets
                .unwrap_or_else(|_| panic!("{device} on {topic}: the connection stayed open"));
            let [v5::Packet::PubAck(ack), v5::Packet::Disconnect(disconnect)] = packets.as_slice()
            else {
                panic!("{device} on {topic}: expected PUBACK and DISCONNECT, got {packets:?}");
            };
            assert_eq!((ack.pkid, ack.reason), (7, v5::PubAckReason::NotAuthorized));
            let why = ack
                .properties
                .as_ref()
                .and_then(|p| p.reason_string.as_deref());
            assert_eq!(why, Some("dead-lettered as unauthorized"), "{ack:?}");
            assert_eq!(
                disconnect.reason_code,
                v5::DisconnectReasonCode::NotAuthorized,
                "{disconnect:?}"
            );
            let why = disconnect
                .properties
                .as_ref()
                .and_then(|p| p.reason_string.as_deref());
            assert!(why.is_some_and(|w| !w.is_empty()), "{disconnect:?}");
        }
    }
}

/// Connects with `cert_device`'s certificate as `client_id`, with `will` (topic, payload) as
/// Last Will, and checks the CONNECT is refused as not authorised (3.1.1 code 5, MQTT 5 0x87 with
/// a reason string).
async fn connect_refused(
    citytel: &Setup,
    version: Version,
    cert_device: &str,
    client_id: &str,
    will: Option<(String, Vec<u8>)>,
) {
    let cert = citytel.pki.device(cert_device);
    let (addr, ca) = (citytel.addr(), citytel.pki.ca_pem());
    match version {
        Version::V311 => {
            let mut connect = connect_packet(client_id);
            connect.last_will =
                will.map(|(topic, payload)| LastWill::new(topic, payload, QoS::AtLeastOnce, false));
            match mtls::connect(addr, &ca, Some(&cert.issued), connect).await {
                Err(MqttError::Refused(code)) => {
                    assert_eq!(code, ConnectReturnCode::NotAuthorized);
                }
                Err(other) => panic!("expected CONNACK 5, got {other}"),
                Ok(_) => panic!("the CONNECT was accepted"),
            }
        }
        Version::V5 => {
            let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
            let will =
                will.map(|(topic, payload)| v5::LastWill::new(topic, payload, qos, false, None));
            match mtls::connect5(addr, &ca, Some(&cert.issued), client_id, will).await {
                Err(Mqtt5Error::Refused(ack)) => {
                    assert_eq!(ack.code, v5::ConnectReturnCode::NotAuthorized, "{ack:?}");
                    let why = ack.properties.and_then(|p| p.reason_string);
                    assert!(why.is_some_and(|w| !w.is_empty()), "a reason string");
                }
                Err(other) => panic!("expected CONNACK 0x87, got {other}"),
                Ok(_) => panic!("the CONNECT was accepted"),
            }
        }
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
    connect_refused(&setup, Version::V311, "cab-9999", "cab-9999", None).await;
    drop(unprovisioned);

    // The provisioned device gets in and is stored.
    let mut conn = connect_as(&setup, VICTIM, Version::V311).await;
    conn.publish_acked(
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
async fn every_spoofing_attempt_is_refused_counted_and_changes_nothing_over_mqtt311() {
    every_spoofing_attempt_is_refused_counted_and_changes_nothing(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spoofing_attempt_is_refused_counted_and_changes_nothing_over_mqtt5() {
    every_spoofing_attempt_is_refused_counted_and_changes_nothing(Version::V5).await;
}

async fn every_spoofing_attempt_is_refused_counted_and_changes_nothing(version: Version) {
    let setup = Setup::start();
    let mut client = setup.citytel.client().await;
    let own = |device: &str, kind: &str, channel: &str| topic("site-01", kind, device, channel);

    // The real devices: the victim is born and reports, the gateway and its child report, and
    // the stranger (no gateway) is born on its own connection.
    let mut victim = connect_as(&setup, VICTIM, version).await;
    victim
        .publish_acked(&own(VICTIM, "cabinet", "status"), birth(VICTIM, &[]), 1)
        .await;
    victim
        .publish_acked(
            &own(VICTIM, "cabinet", "telemetry"),
            readings(VICTIM, 1..=3),
            2,
        )
        .await;
    let mut gateway = connect_as(&setup, GATEWAY, version).await;
    gateway
        .publish_acked(
            &own(GATEWAY, "gateway", "status"),
            birth(GATEWAY, &[CHILD]),
            1,
        )
        .await;
    let mut stranger = connect_as(&setup, STRANGER, version).await;
    stranger
        .publish_acked(&own(STRANGER, "sensor", "status"), birth(STRANGER, &[]), 1)
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
    let mut long_birth = Status::decode(&birth(VICTIM, &[])[..]).expect("a status");
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
        publish_refused(&setup, version, who, topic, payload.clone()).await;
    }

    // Refused at CONNECT (CONNACK 5): a Last Will naming the victim, and the victim's client id.
    let will = (own(VICTIM, "cabinet", "status"), death(VICTIM, None));
    connect_refused(&setup, version, ATTACKER, ATTACKER, Some(will)).await;
    connect_refused(&setup, version, ATTACKER, VICTIM, None).await;

    // The victim's connection was never taken over: it still publishes and is acked.
    victim
        .publish_acked(
            &own(VICTIM, "cabinet", "telemetry"),
            readings(VICTIM, 6..=6),
            3,
        )
        .await;
    // The gateway (its attempts took its own client id over, as MQTT says) still speaks for
    // its own child.
    let mut gateway = connect_as(&setup, GATEWAY, version).await;
    gateway
        .publish_acked(
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
