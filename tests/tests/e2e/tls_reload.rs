//! Certificates reloaded on SIGHUP without a restart: after the operator replaces the server's
//! certificate and key files and sends SIGHUP, new connections get the new certificate while a
//! device connected before keeps publishing on its open connection; the dashboard and metrics
//! listeners serve the renewed certificate too, and a connection opened before still answers.

use std::net::SocketAddr;
use std::time::Duration;

use citytel_testkit::mqtt::{self, PacketReader};
use citytel_testkit::tls;
use citytel_testkit::wait::Wait;
use citytel_tests::mtls::{self, Pki, connect_packet, device};
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::publish;
use citytel_tests::wire::{batch_payload, now_ms, readings_total};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DEVICE: &str = "cab-0001";

/// The certificate (DER) a new connection is shown.
async fn served_certificate(pki: &Pki, addr: SocketAddr) -> Vec<u8> {
    let cert = pki.device(DEVICE);
    served_to(pki, addr, Some(&cert.issued)).await
}

/// The certificate (DER) a new connection presenting `client` (if any) is shown.
async fn served_to(pki: &Pki, addr: SocketAddr, client: Option<&tls::Issued>) -> Vec<u8> {
    let config = tls::client_config(&pki.ca_pem(), client).expect("client config");
    let stream = tls::connect(addr, config).await.expect("TLS handshake");
    tls::server_certificate(&stream).expect("a server certificate")
}

/// `http(s)://HOST:PORT/...` as `HOST:PORT`.
fn addr_of(url: &str) -> SocketAddr {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{url} is not http(s)://HOST:PORT/..."))
}

/// Waits until a new connection to `addr` is shown `expected`.
async fn wait_served(pki: &Pki, addr: SocketAddr, expected: &[u8], listener: &str) {
    let mut wait = Wait::new(
        format!("the renewed certificate on the {listener} listener"),
        Duration::from_secs(15),
    )
    .every(Duration::from_millis(100));
    while served_to(pki, addr, None).await != expected {
        wait.retry().await.expect("SIGHUP reloaded the certificate");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_renews_the_dashboard_and_metrics_certificates_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let mut args = pki.listener_args("http");
    args.extend(pki.listener_args("metrics"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let citytel = Citytel::start(dir.path(), &args);
    let dashboard = citytel.dashboard_addr();
    let metrics_url = citytel.metrics.clone().expect("the metrics URL is printed");
    assert!(metrics_url.starts_with("https://"), "{metrics_url}");
    let metrics = addr_of(&metrics_url);
    let before = served_to(&pki, dashboard, None).await;
    assert_eq!(served_to(&pki, metrics, None).await, before);

    // TLS connections opened before the reload, with no request sent yet.
    let config = tls::client_config(&pki.ca_pem(), None).expect("client config");
    let mut open_page = tls::connect(dashboard, config.clone()).await.expect("TLS");
    let mut open_scrape = tls::connect(metrics, config).await.expect("TLS");

    let renewed = pki.renew_server("citytel test server (renewed)");
    assert_ne!(renewed, before);
    kill(Pid::from_raw(citytel.pid() as i32), Signal::SIGHUP).expect("SIGHUP");
    wait_served(&pki, dashboard, &renewed, "dashboard").await;
    wait_served(&pki, metrics, &renewed, "metrics").await;

    // The connections opened before the reload still answer, over their old session.
    assert_eq!(
        tls::server_certificate(&open_page).as_deref(),
        Some(&before[..])
    );
    for (stream, addr, path) in [
        (&mut open_page, dashboard, "/"),
        (&mut open_scrape, metrics, "/metrics"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        // What arrived counts, whether the server ends with close_notify or just closes.
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{path} after the reload: {answer:.200}"
        );
    }
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
