//! Device authentication and authorisation over in-memory pipes: who may connect (tokens,
//! passwords, certificates, revocation, auto-registration) and what each may publish (its own
//! topics at its place, a gateway's children, payloads that name no one else, its own Last
//! Will). A certificate is handed to the connection as the TLS handshake would.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use citytel_proto::v1::{Birth, Death, Reading, Status, TelemetryBatch, status};
use prost::Message as _;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, LastWill, Packet, Publish};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::connection::{self, Disconnect};
use super::identity::{Authority, DeviceAuth};
use super::tests::{Client, Harness, connect_packet, endpoint_config, limits};
use crate::clock::Clock;
use crate::config::CertIdentity;
use crate::decode::RejectReason;
use crate::net::tls::PeerCertificate;
use crate::pipeline::{Pipeline, Queued};
use crate::provisioning::{DeviceEntry, Provisioning, ProvisioningFile, credential};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn entry(id: &str, kind: &str) -> DeviceEntry {
    DeviceEntry {
        id: id.into(),
        kind: kind.into(),
        site: "site-01".into(),
        token_sha256: Some(credential::sha256_hex(TOKEN.as_bytes())),
        ..DeviceEntry::default()
    }
}

/// cab-0001 and cab-0002 (tokens), gw-01 (a token) with its child sen-0001, cell-01 (a
/// password), cert-01 (a certificate only), old-01 (revoked).
fn registry() -> ProvisioningFile {
    let mut file = ProvisioningFile::new();
    file.devices.push(entry("cab-0001", "cabinet"));
    file.devices.push(entry("cab-0002", "cabinet"));
    file.devices.push(entry("gw-01", "gateway"));
    file.devices.push(DeviceEntry {
        gateway: Some("gw-01".into()),
        token_sha256: None,
        ..entry("sen-0001", "sensor")
    });
    file.devices.push(DeviceEntry {
        token_sha256: None,
        password_argon2: Some(credential::hash_password(b"hunter2").unwrap()),
        ..entry("cell-01", "small_cell")
    });
    file.devices.push(DeviceEntry {
        token_sha256: None,
        ..entry("cert-01", "cabinet")
    });
    file.devices.push(DeviceEntry {
        revoked: true,
        ..entry("old-01", "cabinet")
    });
    file
}

struct AuthHarness {
    h: Harness,
    provisioning: Arc<Provisioning>,
}

fn harness(auto_register: bool) -> AuthHarness {
    let provisioning = Provisioning::fixed(registry());
    let authority = Authority::new(provisioning.clone(), auto_register, CertIdentity::Cn);
    let (pipeline, queue) =
        Pipeline::with_clock(limits(), 1 << 20, Clock::tokio(1_700_000_000_000));
    let shared = Shared::with_auth(endpoint_config(), pipeline, DeviceAuth::Required(authority));
    AuthHarness {
        h: Harness {
            shared: Arc::new(shared),
            queue,
            shutdown: CancellationToken::new(),
        },
        provisioning,
    }
}

impl AuthHarness {
    fn open(&self, cert: Option<PeerCertificate>) -> (Client, JoinHandle<Disconnect>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let task = tokio::spawn(connection::serve(
            server,
            peer,
            self.h.shared.clone(),
            self.h.shutdown.clone(),
            cert,
        ));
        let client = Client {
            stream: client,
            buf: BytesMut::new(),
        };
        (client, task)
    }

    /// Connects as `client_id` with `login`, returning the CONNACK code and the connection.
    async fn connect(
        &self,
        client_id: &str,
        login: Option<(&str, &str)>,
        cert: Option<PeerCertificate>,
    ) -> (ConnectReturnCode, Client, JoinHandle<Disconnect>) {
        let mut connect = connect_packet(client_id, 30);
        if let Some((user, password)) = login {
            connect.set_login(user, password);
        }
        let (mut c, task) = self.open(cert);
        let code = c.connect(connect).await.code;
        (code, c, task)
    }

    /// The next message queued, with its verdict's reject reason.
    async fn next_reason(&mut self) -> (String, Option<RejectReason>) {
        let e = self.h.next_envelope().await;
        let reason = e.verdict.as_ref().err().map(|r| r.reason);
        (e.inbound.topic.clone(), reason)
    }
}

fn cert(cn: &str) -> PeerCertificate {
    PeerCertificate {
        fingerprint: credential::sha256_hex(cn.as_bytes()),
        common_name: Some(cn.into()),
        sans: Vec::new(),
    }
}

fn topic(site: &str, kind: &str, device: &str, channel: &str) -> String {
    format!("citytel/v1/{site}/{kind}/{device}/{channel}")
}

fn telemetry(device: &str, gateway: Option<&str>) -> Vec<u8> {
    TelemetryBatch {
        device_id: device.into(),
        boot_id: 1,
        metric_names: vec!["temperature_c".into()],
        readings: vec![Reading {
            seq: 1,
            time_unix_ms: 1_700_000_000_000,
            values: vec![20.0],
        }],
        gateway_id: gateway.map(str::to_string),
    }
    .encode_to_vec()
}

fn status(device: &str, kind: status::Kind) -> Vec<u8> {
    Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: 0,
        gateway_id: None,
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn death(device: &str) -> Vec<u8> {
    status(
        device,
        status::Kind::Death(Death {
            reason: 2,
            at_status_time: false,
        }),
    )
}

fn publish(topic: &str, payload: Vec<u8>, pkid: u16) -> Packet {
    let mut p = Publish::from_bytes(topic, QoS::AtLeastOnce, Bytes::from(payload));
    p.pkid = pkid;
    Packet::Publish(p)
}

/// A client id, its login, its certificate, and the CONNACK it gets.
type ConnectCase<'a> = (
    &'a str,
    Option<(&'a str, &'a str)>,
    Option<PeerCertificate>,
    ConnectReturnCode,
);

#[tokio::test(start_paused = true)]
async fn credentials_certificates_and_the_registry_decide_who_connects() {
    let a = harness(false);
    use ConnectReturnCode::{BadUserNamePassword, NotAuthorized, Success};
    let cases: Vec<ConnectCase> = vec![
        ("cab-0001", Some(("cab-0001", TOKEN)), None, Success),
        (
            "cab-0001",
            Some(("cab-0001", "wrong")),
            None,
            BadUserNamePassword,
        ),
        ("cell-01", Some(("cell-01", "hunter2")), None, Success),
        (
            "cell-01",
            Some(("cell-01", "hunter3")),
            None,
            BadUserNamePassword,
        ),
        ("cab-0001", None, None, NotAuthorized),
        ("nobody", Some(("nobody", TOKEN)), None, NotAuthorized),
        ("old-01", Some(("old-01", TOKEN)), None, NotAuthorized),
        // The client id must be the device.
        ("cab-0002", Some(("cab-0001", TOKEN)), None, NotAuthorized),
        // A certificate alone; with a user name, the same device.
        ("cert-01", None, Some(cert("cert-01")), Success),
        ("", None, Some(cert("cert-01")), Success),
        (
            "cert-01",
            Some(("cab-0001", TOKEN)),
            Some(cert("cert-01")),
            NotAuthorized,
        ),
        ("stranger", None, Some(cert("stranger")), NotAuthorized),
    ];
    for (client_id, login, cert, want) in cases {
        let (code, _c, _task) = a.connect(client_id, login, cert.clone()).await;
        assert_eq!(code, want, "{client_id} {login:?} {cert:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pinned_certificate_must_be_that_certificate() {
    let a = harness(false);
    let mut file = registry();
    file.devices
        .iter_mut()
        .find(|d| d.id == "cert-01")
        .unwrap()
        .cert_sha256 = Some(cert("cert-01").fingerprint);
    a.provisioning.replace(file);
    let (code, _c, _t) = a.connect("cert-01", None, Some(cert("cert-01"))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let mut other = cert("cert-01");
    other.fingerprint = credential::sha256_hex(b"another certificate, same name");
    let (code, _c, _t) = a.connect("cert-01", None, Some(other)).await;
    assert_eq!(code, ConnectReturnCode::NotAuthorized);
}

#[tokio::test(start_paused = true)]
async fn a_last_will_must_name_the_connecting_device() {
    let a = harness(false);
    let wills = [
        (
            topic("site-01", "cabinet", "cab-0001", "status"),
            death("cab-0001"),
            true,
        ),
        (
            topic("site-01", "cabinet", "cab-0002", "status"),
            death("cab-0002"),
            false,
        ),
        (
            topic("site-01", "cabinet", "cab-0001", "status"),
            death("cab-0002"),
            false,
        ),
        (
            topic("site-02", "cabinet", "cab-0001", "status"),
            death("cab-0001"),
            false,
        ),
        (
            topic("site-01", "cabinet", "cab-0001", "telemetry"),
            death("cab-0001"),
            false,
        ),
    ];
    for (will_topic, payload, ok) in wills {
        let mut connect = connect_packet("cab-0001", 30);
        connect.set_login("cab-0001", TOKEN);
        connect.last_will = Some(LastWill::new(&will_topic, payload, QoS::AtLeastOnce, false));
        let (mut c, _task) = a.open(None);
        let code = c.connect(connect).await.code;
        let want = if ok {
            ConnectReturnCode::Success
        } else {
            ConnectReturnCode::NotAuthorized
        };
        assert_eq!(code, want, "{will_topic}");
    }
}

/// Connects cab-0001 (or gw-01) with its token, sends `packet` and returns what was queued and
/// how the connection ended.
async fn publish_as(device: &str, packet: Packet) -> (Option<RejectReason>, Option<Disconnect>) {
    let mut a = harness(false);
    let (code, mut c, task) = a.connect(device, Some((device, TOKEN)), None).await;
    assert_eq!(code, ConnectReturnCode::Success);
    c.send(packet).await;
    let (_, reason) = a.next_reason().await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(1), task)
        .await
        .ok()
        .map(|r| r.unwrap());
    (reason, ended)
}

#[tokio::test(start_paused = true)]
async fn a_device_publishes_only_on_its_own_topics_at_its_place() {
    let own = topic("site-01", "cabinet", "cab-0001", "telemetry");
    let (reason, ended) =
        publish_as("cab-0001", publish(&own, telemetry("cab-0001", None), 1)).await;
    assert_eq!((reason, ended), (None, None), "its own readings pass");

    let refused = [
        // Readings, a death and a birth for another device.
        publish(
            &topic("site-01", "cabinet", "cab-0002", "telemetry"),
            telemetry("cab-0002", None),
            1,
        ),
        publish(
            &topic("site-01", "cabinet", "cab-0002", "status"),
            death("cab-0002"),
            1,
        ),
        // Its own readings at another site, or as another kind.
        publish(
            &topic("site-02", "cabinet", "cab-0001", "telemetry"),
            telemetry("cab-0001", None),
            1,
        ),
        publish(
            &topic("site-01", "sensor", "cab-0001", "telemetry"),
            telemetry("cab-0001", None),
            1,
        ),
        // Its own topic, a payload claiming a gateway.
        publish(&own, telemetry("cab-0001", Some("gw-01")), 1),
    ];
    for packet in refused {
        let (reason, ended) = publish_as("cab-0001", packet.clone()).await;
        assert_eq!(reason, Some(RejectReason::Unauthorized), "{packet:?}");
        assert!(
            matches!(ended, Some(Disconnect::Unauthorized(_))),
            "{packet:?}: {ended:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_gateway_speaks_for_its_children_only() {
    let child = topic("site-01", "sensor", "sen-0001", "telemetry");
    let (reason, ended) = publish_as(
        "gw-01",
        publish(&child, telemetry("sen-0001", Some("gw-01")), 1),
    )
    .await;
    assert_eq!((reason, ended), (None, None));
    let child_death = topic("site-01", "sensor", "sen-0001", "status");
    let (reason, _) = publish_as("gw-01", publish(&child_death, death("sen-0001"), 1)).await;
    assert_eq!(reason, None);

    // Not its child: readings, a death, and a birth claiming it as a child.
    let (reason, _) = publish_as(
        "gw-01",
        publish(
            &topic("site-01", "cabinet", "cab-0001", "status"),
            death("cab-0001"),
            1,
        ),
    )
    .await;
    assert_eq!(reason, Some(RejectReason::Unauthorized));
    let birth = |children: Vec<&str>| {
        status(
            "gw-01",
            status::Kind::Birth(Birth {
                firmware_version: "gw 1".into(),
                reporting_interval_ms: 10_000,
                children: children.into_iter().map(str::to_string).collect(),
                ..Birth::default()
            }),
        )
    };
    let own_status = topic("site-01", "gateway", "gw-01", "status");
    let (reason, _) = publish_as("gw-01", publish(&own_status, birth(vec!["sen-0001"]), 1)).await;
    assert_eq!(reason, None);
    let (reason, _) = publish_as(
        "gw-01",
        publish(&own_status, birth(vec!["sen-0001", "cab-0001"]), 1),
    )
    .await;
    assert_eq!(reason, Some(RejectReason::Unauthorized));
    // A child's place is its own, not the gateway's.
    let (reason, _) = publish_as(
        "gw-01",
        publish(
            &topic("site-02", "sensor", "sen-0001", "telemetry"),
            telemetry("sen-0001", Some("gw-01")),
            1,
        ),
    )
    .await;
    assert_eq!(reason, Some(RejectReason::Unauthorized));
}

#[tokio::test(start_paused = true)]
async fn a_revocation_reaches_an_open_connection_at_its_next_message() {
    let mut a = harness(false);
    let (_, mut c, task) = a.connect("cab-0001", Some(("cab-0001", TOKEN)), None).await;
    let own = topic("site-01", "cabinet", "cab-0001", "telemetry");
    c.send(publish(&own, telemetry("cab-0001", None), 1)).await;
    assert_eq!(a.next_reason().await.1, None);
    let mut file = registry();
    file.devices
        .iter_mut()
        .find(|d| d.id == "cab-0001")
        .unwrap()
        .revoked = true;
    a.provisioning.replace(file);
    c.send(publish(&own, telemetry("cab-0001", None), 2)).await;
    assert_eq!(a.next_reason().await.1, Some(RejectReason::Unauthorized));
    assert!(matches!(task.await.unwrap(), Disconnect::Unauthorized(_)));
}

#[tokio::test(start_paused = true)]
async fn the_connection_of_a_provisioned_device_is_its_own_from_the_start() {
    let mut a = harness(false);
    let (_, _c, _t) = a.connect("cab-0001", Some(("cab-0001", TOKEN)), None).await;
    match a.h.next_queued().await {
        Queued::Connection { event, .. } => {
            assert_eq!(
                event.topic,
                topic("site-01", "cabinet", "cab-0001", "status")
            );
        }
        _ => panic!("expected the connection's opened event"),
    }
}

#[tokio::test(start_paused = true)]
async fn auto_registration_binds_a_device_to_its_first_place_and_children() {
    let mut a = harness(true);
    let (code, mut c, _t) = a.connect("new-01", None, None).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let first = topic("site-09", "cabinet", "new-01", "telemetry");
    c.send(publish(&first, telemetry("new-01", None), 1)).await;
    assert_eq!(a.next_reason().await.1, None);
    // A child nobody owns becomes its child.
    let child = topic("site-09", "sensor", "kid-01", "telemetry");
    c.send(publish(&child, telemetry("kid-01", Some("new-01")), 2))
        .await;
    assert_eq!(a.next_reason().await.1, None);
    // Provisioned devices stay their own; a moved site is refused.
    let (code, _c2, _t2) = a.connect("cab-0001", None, None).await;
    assert_eq!(
        code,
        ConnectReturnCode::NotAuthorized,
        "provisioned devices authenticate"
    );
    c.send(publish(
        &topic("site-10", "cabinet", "new-01", "telemetry"),
        telemetry("new-01", None),
        3,
    ))
    .await;
    assert_eq!(a.next_reason().await.1, Some(RejectReason::Unauthorized));
    // The child cannot connect as itself: it is spoken for.
    let (code, mut kid, kid_task) = a.connect("kid-01", None, None).await;
    assert_eq!(code, ConnectReturnCode::Success);
    kid.send(publish(&child, telemetry("kid-01", None), 1))
        .await;
    assert_eq!(a.next_reason().await.1, Some(RejectReason::Unauthorized));
    assert!(matches!(
        kid_task.await.unwrap(),
        Disconnect::Unauthorized(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn mqtt5_refusals_carry_reason_codes_and_reason_strings() {
    use rumqttc::v5::mqttbytes::v5::{self as v5, ConnectReturnCode as Code};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let a = harness(false);
    let cases = [
        ("cab-0001", Some(("cab-0001", TOKEN)), Code::Success),
        (
            "cab-0001",
            Some(("cab-0001", "wrong")),
            Code::BadUserNamePassword,
        ),
        ("nobody", Some(("nobody", TOKEN)), Code::NotAuthorized),
        ("cab-0001", None, Code::NotAuthorized),
    ];
    for (client_id, login, want) in cases {
        let (mut c, task) = a.open(None);
        let connect = v5::Connect {
            keep_alive: 30,
            client_id: client_id.into(),
            clean_start: true,
            properties: None,
        };
        let credentials = login.map(|(u, p)| v5::Login::new(u, p));
        let mut out = BytesMut::new();
        v5::Packet::Connect(connect, None, credentials)
            .write(&mut out, None)
            .unwrap();
        c.stream.write_all(&out).await.unwrap();
        let ack = loop {
            match v5::Packet::read(&mut c.buf, None) {
                Ok(v5::Packet::ConnAck(ack)) => break ack,
                Ok(other) => panic!("expected CONNACK, got {other:?}"),
                Err(_) => assert!(c.stream.read_buf(&mut c.buf).await.unwrap() > 0),
            }
        };
        assert_eq!(ack.code, want, "{client_id} {login:?}");
        let why = ack.properties.and_then(|p| p.reason_string);
        if want == Code::Success {
            assert_eq!(why, None);
        } else {
            assert!(why.is_some_and(|w| !w.is_empty()), "a reason string");
            assert!(matches!(task.await.unwrap(), Disconnect::Refused(_)));
        }
    }
}
