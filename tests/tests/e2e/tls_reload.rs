//! Certificates reloaded on SIGHUP without a restart: after the operator replaces the server's
//! certificate and key files and sends SIGHUP, new connections get the new certificate while a
//! device connected before keeps publishing on its open connection.

use std::time::Duration;

use citytel_testkit::mqtt::{self, PacketReader};
use citytel_testkit::tls;
use citytel_testkit::wait::Wait;
use citytel_tests::mtls::{self, Pki, connect_packet, device};
use citytel_tests::raw_mqtt::publish;
use citytel_tests::wire::{batch_payload, now_ms, readings_total};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rumqttc::mqttbytes::v4::Packet;

const DEVICE: &str = "cab-0001";

/// The certificate (DER) a new connection is shown.
async fn served_certificate(pki: &Pki, addr: std::net::SocketAddr) -> Vec<u8> {
    let cert = pki.device(DEVICE);
    let config = tls::client_config(&pki.ca_pem(), Some(&cert.issued)).expect("client config");
    let stream = tls::connect(addr, config).await.expect("TLS handshake");
    tls::server_certificate(&stream).expect("a server certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_new_certificate_to_new_connections_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    mtls::provision(dir.path(), vec![device(DEVICE, "cabinet", None)]);
    let citytel = mtls::start(dir.path(), &pki, &[]);
    let addr = citytel.mqtts.expect("mqtts");
    let before = served_certificate(&pki, addr).await;

    let cert = pki.device(DEVICE);
    let (_, mut open) = mtls::connect(
        addr,
        &pki.ca_pem(),
        Some(&cert.issued),
        connect_packet(DEVICE),
    )
    .await
    .expect("connect");

    // The operator renews the server certificate in place and sends SIGHUP.
    let renewed = pki.renew_server("citytel test server (renewed)");
    assert_ne!(renewed, before);
    kill(Pid::from_raw(citytel.pid() as i32), Signal::SIGHUP).expect("SIGHUP");
    let mut wait = Wait::new("the renewed certificate served", Duration::from_secs(15))
        .every(Duration::from_millis(100));
    while served_certificate(&pki, addr).await != renewed {
        wait.retry().await.expect("SIGHUP reloaded the certificate");
    }

    // The connection opened before the reload still works.
    let payload = batch_payload(DEVICE, 1, &["temperature_c"], &[(1, now_ms(), vec![1.0])]);
    let topic = format!("citytel/v1/site-01/cabinet/{DEVICE}/telemetry");
    mqtt::write_packet(open.get_mut(), publish(&topic, payload, 1, false))
        .await
        .expect("publish");
    assert!(matches!(
        PacketReader::read(&mut open).await,
        Ok(Some(Packet::PubAck(_)))
    ));
    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, 1);
    assert!(citytel.stop().success());
}
