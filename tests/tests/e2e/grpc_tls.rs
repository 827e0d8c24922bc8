//! The gRPC API over TLS (`[grpc.tls]`): tonic's own client, trusting the operator's CA, calls
//! the query service and the health service; a plaintext client gets nothing, and SIGHUP serves
//! a renewed certificate to new connections.

use std::time::Duration;

use citytel_proto::v1::ListDevicesRequest;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_testkit::tls;
use citytel_testkit::wait::Wait;
use citytel_tests::mtls::Pki;
use citytel_tests::process::Citytel;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn tls_channel(
    pki: &Pki,
    addr: std::net::SocketAddr,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.ca_pem()))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_over_tls_with_the_ca_reaches_the_api_and_plaintext_does_not() {
    citytel_ingest::net::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let set = |key: &str, path: &std::path::Path| format!("{key}={:?}", path.display().to_string());
    let args = [
        "--set".to_string(),
        "grpc.tls.enabled=true".to_string(),
        "--set".to_string(),
        set("grpc.tls.cert_file", &pki.server.cert),
        "--set".to_string(),
        set("grpc.tls.key_file", &pki.server.key),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let citytel = Citytel::start(dir.path(), &args);

    let channel = tls_channel(&pki, citytel.grpc).await.expect("TLS channel");
    let mut health = HealthClient::new(channel.clone());
    let mut wait = Wait::new("SERVING over TLS", Duration::from_secs(30));
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|r| r.into_inner().status);
        if matches!(status, Ok(1)) {
            break;
        }
        wait.retry().await.expect("health over TLS");
    }
    let devices = QueryServiceClient::new(channel)
        .list_devices(ListDevicesRequest::default())
        .await
        .expect("ListDevices over TLS")
        .into_inner();
    assert!(devices.devices.is_empty());

    // A plaintext HTTP/2 client does not get an answer from a TLS listener.
    let plain = Channel::from_shared(format!("http://{}", citytel.grpc))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect_lazy();
    let answer = QueryServiceClient::new(plain)
        .list_devices(ListDevicesRequest::default())
        .await;
    assert!(answer.is_err(), "plaintext got {answer:?}");

    // SIGHUP: new connections get the renewed certificate, and it is trusted the same way.
    let renewed = pki.renew_server("citytel test server (renewed)");
    kill(Pid::from_raw(citytel.pid() as i32), Signal::SIGHUP).expect("SIGHUP");
    let config = tls::client_config(&pki.ca_pem(), None).expect("client config");
    let mut wait = Wait::new("the renewed certificate on gRPC", Duration::from_secs(15))
        .every(Duration::from_millis(100));
    loop {
        let stream = tls::connect(citytel.grpc, config.clone())
            .await
            .expect("TLS");
        if tls::server_certificate(&stream).as_deref() == Some(&renewed[..]) {
            break;
        }
        wait.retry()
            .await
            .expect("SIGHUP reloaded the gRPC certificate");
    }
    tls_channel(&pki, citytel.grpc)
        .await
        .expect("TLS channel after the reload");
    assert!(citytel.stop().success());
}
