//! `citytel devices` and the rule against anonymous devices, as an operator uses them: a token
//! printed once by `devices add` lets its device in (a wrong one does not), a device added while
//! the service runs gets in without a restart, `devices revoke` shuts a device out, also on the
//! connection it has open, and `citytel serve` refuses to listen beyond loopback without device
//! authentication unless `--allow-anonymous-devices` is given.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use citytel_testkit::mqtt::{self, MqttError, PacketReader};
use citytel_testkit::wait::Wait;
use citytel_tests::process::{Citytel, binary};
use citytel_tests::raw_mqtt::publish;
use citytel_tests::wire::{batch_payload, now_ms, readings_total, telemetry_topic};
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet};
use tokio::net::TcpStream;

pub(super) fn devices(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(binary())
        .arg("devices")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run citytel devices");
    assert!(
        out.status.success(),
        "citytel devices {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `devices add ID --kind cabinet --site site-01`, returning the token it printed.
fn add(data_dir: &Path, id: &str) -> String {
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

pub(super) async fn connect(
    addr: SocketAddr,
    id: &str,
    password: &str,
) -> Result<PacketReader<TcpStream>, MqttError> {
    let mut conn = PacketReader::new(TcpStream::connect(addr).await?);
    let mut connect = Connect::new(id);
    connect.keep_alive = 120;
    connect.set_login(id, password);
    mqtt::connect(&mut conn, connect).await?;
    Ok(conn)
}

async fn publish_reading(conn: &mut PacketReader<TcpStream>, id: &str, seq: u64) -> Option<Packet> {
    let payload = batch_payload(id, 1, &["temperature_c"], &[(seq, now_ms(), vec![1.0])]);
    let packet = publish(&telemetry_topic(id), payload, seq as u16, false);
    mqtt::write_packet(conn.get_mut(), packet)
        .await
        .expect("publish");
    conn.read().await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_devices_add_let_devices_in_and_revoke_shuts_them_out() {
    let dir = tempfile::tempdir().unwrap();
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

    let mut device = connect(addr, "cab-0001", &token)
        .await
        .expect("token accepted");
    assert!(matches!(
        publish_reading(&mut device, "cab-0001", 1).await,
        Some(Packet::PubAck(_))
    ));
    assert!(matches!(
        connect(addr, "cab-0001", &"0".repeat(64)).await,
        Err(MqttError::Refused(ConnectReturnCode::BadUserNamePassword))
    ));

    // Added while the service runs: in within the file's reload.
    let second = add(dir.path(), "cab-0002");
    let mut wait = Wait::new("cab-0002 let in after devices add", Duration::from_secs(15))
        .every(Duration::from_millis(200));
    while connect(addr, "cab-0002", &second).await.is_err() {
        wait.retry().await.expect("the provisioning file reloaded");
    }

    // Revoked: new connections are refused, and the open one at its next message.
    devices(dir.path(), &["revoke", "cab-0001"]);
    let mut wait = Wait::new("cab-0001 refused after revoke", Duration::from_secs(15))
        .every(Duration::from_millis(200));
    loop {
        match connect(addr, "cab-0001", &token).await {
            Err(MqttError::Refused(_)) => break,
            Ok(_) => wait.retry().await.expect("the revocation reloaded"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let mut closed = false;
    for _ in 0..3 {
        match publish_reading(&mut device, "cab-0001", 2).await {
            Some(Packet::PubAck(_)) => continue,
            _ => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the revoked device's open connection is closed");
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
