//! `citytel devices` and the rule against anonymous devices, as an operator uses them: a token
//! printed once by `devices add` lets its device in (a wrong one does not), a device added while
//! the service runs gets in without a restart, `devices revoke` shuts a device out, also on the
//! connection it has open, and `citytel serve` refuses to listen beyond loopback without device
//! authentication unless `--allow-anonymous-devices` is given. The tokens are tried over MQTT
//! 3.1.1 and over MQTT 5, where a wrong token hears CONNACK 0x86 and a revoked device's open
//! connection PUBACK and DISCONNECT 0x87, each with why.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use citytel_testkit::wait::Wait;
use citytel_tests::process::{Citytel, binary};
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::{ConnectFailure, RawClient};
use citytel_tests::wire::{batch_payload, now_ms, readings_total, telemetry_topic};
use rumqttc::mqttbytes::v4::Packet;
use rumqttc::v5::mqttbytes::v5;

/// `citytel devices ARGS --data-dir DATA_DIR`, whatever its outcome.
pub(super) fn run_devices(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("devices")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run citytel devices")
}

/// `citytel devices ARGS`, which must succeed.
pub(super) fn devices(data_dir: &Path, args: &[&str]) -> Output {
    let out = run_devices(data_dir, args);
    assert!(
        out.status.success(),
        "citytel devices {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `devices add ID --kind cabinet --site site-01`, returning the token it printed.
pub(super) fn add(data_dir: &Path, id: &str) -> String {
    let out = devices(
        data_dir,
        &["add", id, "--kind", "cabinet", "--site", "site-01"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let token = stdout.lines().last().unwrap_or_default().trim().to_string();
    assert_eq!(token.len(), 64, "a 256-bit token in hex: {stdout}");
    assert!(
        !std::fs::read_to_string(data_dir.join("devices.toml"))
            .expect("read the provisioning file")
            .contains(&token),
        "the file keeps only the token's hash"
    );
    token
}

/// Connects in `version` as `id` with user name `id` and `password`.
pub(super) async fn connect(
    addr: SocketAddr,
    version: Version,
    id: &str,
    password: &str,
) -> Result<RawClient, ConnectFailure> {
    RawClient::try_connect_as(addr, version, id, Some((id, password))).await
}

/// Publishes reading `seq` of `id` with packet id `seq`.
async fn publish_reading(conn: &mut RawClient, id: &str, seq: u64) {
    let payload = batch_payload(id, 1, &["temperature_c"], &[(seq, now_ms(), vec![1.0])]);
    conn.publish(&telemetry_topic(id), payload, seq as u16, false)
        .await;
}

/// Checks that the open connection of a revoked device is closed at its next message (packet id
/// `seq`), after the PUBACK of the dead letter: in MQTT 5 PUBACK 0x87 and DISCONNECT 0x87, both
/// saying why.
async fn closed_as_revoked(device: &mut RawClient, seq: u16) {
    let wait = Duration::from_secs(10);
    match device.version() {
        Version::V311 => {
            let packets = tokio::time::timeout(wait, device.packets_until_closed())
                .await
                .expect("the revoked device's open connection is closed");
            assert!(
                matches!(packets.as_slice(), [Packet::PubAck(ack)] if ack.pkid == seq),
                "expected PUBACK {seq} and the end, got {packets:?}"
            );
        }
        Version::V5 => {
            let packets = tokio::time::timeout(wait, device.packets_until_closed5())
                .await
                .expect("the revoked device's open connection is closed");
            let [v5::Packet::PubAck(ack), v5::Packet::Disconnect(disconnect)] = packets.as_slice()
            else {
                panic!("expected PUBACK and DISCONNECT, got {packets:?}");
            };
            assert_eq!(
                (ack.pkid, ack.reason),
                (seq, v5::PubAckReason::NotAuthorized)
            );
            let why = ack
                .properties
                .as_ref()
                .and_then(|p| p.reason_string.as_deref());
            assert_eq!(why, Some("dead-lettered as unauthorized"), "{ack:?}");
            assert_eq!(
                disconnect.reason_code,
                v5::DisconnectReasonCode::NotAuthorized
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out_over_mqtt311() {
    tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out_over_mqtt5() {
    tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out(Version::V5).await;
}

async fn tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token = add(dir.path(), "cab-0001");
    let list = devices(dir.path(), &["list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("cab-0001") && list.contains("token"),
        "{list}"
    );

    let citytel = Citytel::start(
        dir.path(),
        &[
            "--set",
            "endpoint.authentication=true",
            // The test polls with refused connects on purpose.
            "--set",
            "endpoint.failed_connects_per_ip=100000",
        ],
    );
    let addr = citytel.mqtt.expect("endpoint");
    let mut client = citytel.client().await;

    let mut device = connect(addr, version, "cab-0001", &token)
        .await
        .expect("token accepted");
    publish_reading(&mut device, "cab-0001", 1).await;
    device.expect_puback(1).await;
    // A wrong token: 3.1.1's code 4, MQTT 5's 0x86, both "bad user name or password".
    match connect(addr, version, "cab-0001", &"0".repeat(64)).await {
        Err(ConnectFailure::Refused {
            code,
            reason_string,
        }) => {
            assert_eq!(code, "BadUserNamePassword");
            assert_eq!(reason_string.is_some(), version == Version::V5);
        }
        Err(ConnectFailure::Failed(e)) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a wrong token was accepted"),
    }

    // Added while the service runs: in within the file's reload.
    let second = add(dir.path(), "cab-0002");
    let mut wait = Wait::new("cab-0002 let in after devices add", Duration::from_secs(15))
        .every(Duration::from_millis(200));
    while connect(addr, version, "cab-0002", &second).await.is_err() {
        wait.retry().await.expect("the provisioning file reloaded");
    }

    // Revoked: new connections are refused, and the open one at its next message. cab-0002 is
    // revoked after cab-0001 and polled for: once it is refused, the reloaded file has both
    // (polling as cab-0001 would take the device's open connection over while it succeeds).
    devices(dir.path(), &["revoke", "cab-0001"]);
    devices(dir.path(), &["revoke", "cab-0002"]);
    let mut wait = Wait::new("cab-0002 refused after revoke", Duration::from_secs(15))
        .every(Duration::from_millis(200));
    loop {
        match connect(addr, version, "cab-0002", &second).await {
            Err(ConnectFailure::Refused { .. }) => break,
            Ok(_) => wait.retry().await.expect("the revocation reloaded"),
            Err(ConnectFailure::Failed(e)) => panic!("unexpected {e}"),
        }
    }
    match connect(addr, version, "cab-0001", &token).await {
        Err(ConnectFailure::Refused { code, .. }) => assert_eq!(code, "NotAuthorized"),
        Err(ConnectFailure::Failed(e)) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a revoked device was let in"),
    }
    // Neither the wrong token nor the refused connects took the open connection over.
    publish_reading(&mut device, "cab-0001", 2).await;
    closed_as_revoked(&mut device, 2).await;
    assert_eq!(readings_total(&mut client, "cab-0001").await, 1);
    assert!(citytel.stop().success());
}

#[test]
fn an_anonymous_endpoint_beyond_loopback_needs_allow_anonymous_devices() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--mqtt-listen", "0.0.0.0:0", "--grpc-listen", "127.0.0.1:0"])
        .args(["--set", "endpoint.authentication=false"])
        .output()
        .expect("run citytel serve");
    assert!(!out.status.success(), "serve started anonymous on 0.0.0.0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-anonymous-devices"), "{stderr}");

    let citytel = Citytel::start(
        dir.path(),
        &[
            "--set",
            "endpoint.listen=\"0.0.0.0:0\"",
            "--allow-anonymous-devices",
        ],
    );
    assert!(citytel.mqtt.is_some());
    assert!(citytel.stop().success());
}
