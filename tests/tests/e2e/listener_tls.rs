//! TLS on the service's other listeners, as their clients meet them: the gRPC API with mutual TLS
//! (`[grpc.tls]` with a client CA and `require_client_certificate`) answers a tonic client that
//! presents a certificate from that CA (and still asks it for its API key) and refuses the
//! handshake of one without a certificate or with one from another CA; the dashboard over TLS
//! (`[http.tls]`) serves its page and gRPC-Web to a client trusting the operator's CA; the
//! metrics endpoint over TLS (`[metrics.tls]`) answers a scrape carrying its bearer token. A
//! plaintext request to a TLS listener gets no answer, and each refused handshake is counted in
//! `citytel_tls_handshake_failures_total{listener}`. With a client CA and a CRL, the dashboard and
//! metrics listeners take a client certificate from that CA and refuse one without, one from
//! another CA and a revoked one.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{ListDevicesRequest, ListDevicesResponse};
use citytel_testkit::grpc_web;
use citytel_testkit::http::{HttpConn, Method, StatusCode};
use citytel_testkit::metrics::Scrape;
use citytel_testkit::tls::{self, Issued, TestCa};
use citytel_testkit::wait::Wait;
use citytel_tests::keys::{self, Bearer};
use citytel_tests::mtls::Pki;
use citytel_tests::process::Citytel;
use prost::Message as _;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const LIST_DEVICES: &str = "/citytel.v1.QueryService/ListDevices";
const TOKEN: &str = "scrape-me-over-tls-41c2";

/// `--set key="path"`.
fn set_path(key: &str, path: &Path) -> [String; 2] {
    [
        "--set".to_string(),
        format!("{key}={:?}", path.display().to_string()),
    ]
}

fn start(data_dir: &Path, args: &[String]) -> Citytel {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Citytel::start(data_dir, &args)
}

/// `http(s)://HOST:PORT/...` as `HOST:PORT`.
fn addr_of(url: &str) -> SocketAddr {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{url} is not http(s)://HOST:PORT/..."))
}

/// Waits until the (plain) metrics endpoint at `url` counts `expected` failed TLS handshakes
/// on `listener`: the count moves just after the client saw its handshake refused.
async fn wait_handshake_failures(url: &str, listener: &str, expected: f64) {
    let series = format!("citytel_tls_handshake_failures_total{{listener=\"{listener}\"}}");
    let mut wait = Wait::new(format!("{series} = {expected}"), Duration::from_secs(10))
        .every(Duration::from_millis(50));
    loop {
        let seen = Scrape::fetch(url).await.get(&series).unwrap_or(0.0);
        if seen == expected {
            return;
        }
        if let Err(timed_out) = wait.retry().await {
            panic!("{timed_out}: last seen {seen}");
        }
    }
}

/// Waits until the (plain) metrics endpoint at `url` counts at least `expected` failed TLS
/// handshakes on `listener`; the count seen.
async fn wait_handshake_failures_at_least(url: &str, listener: &str, expected: f64) -> f64 {
    let series = format!("citytel_tls_handshake_failures_total{{listener=\"{listener}\"}}");
    let mut wait = Wait::new(format!("{series} >= {expected}"), Duration::from_secs(10))
        .every(Duration::from_millis(50));
    loop {
        let seen = Scrape::fetch(url).await.get(&series).unwrap_or(0.0);
        if seen >= expected {
            return seen;
        }
        if let Err(timed_out) = wait.retry().await {
            panic!("{timed_out}: last seen {seen}");
        }
    }
}

/// A tonic channel to `addr` over TLS trusting `pki`'s CA and presenting `client`, if given.
async fn grpc_channel(
    pki: &Pki,
    addr: SocketAddr,
    client: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.ca_pem()))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// ListDevices over mTLS presenting `client` with `key`: the answer, or why there is none.
async fn list_devices(
    pki: &Pki,
    addr: SocketAddr,
    client: Option<&Issued>,
    key: &str,
) -> Result<ListDevicesResponse, String> {
    let channel = grpc_channel(pki, addr, client)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    QueryServiceClient::with_interceptor(channel, Bearer(Some(key.to_string())))
        .list_devices(ListDevicesRequest::default())
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| format!("ListDevices: {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_with_mtls_answers_a_certificate_from_the_client_ca_and_refuses_others() {
    citytel_ingest::net::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let mut args = pki.listener_args("grpc");
    args.extend(set_path("grpc.tls.client_ca_file", &pki.ca_file));
    args.extend(
        [
            "--set",
            "grpc.tls.require_client_certificate=true",
            "--set",
            "api.authentication=true",
        ]
        .map(str::to_string),
    );
    let citytel = start(dir.path(), &args);
    let metrics = citytel.metrics.clone().expect("the metrics URL is printed");
    let ours = pki.device("citytel-reporting").issued;
    let foreign = TestCa::new("another CA")
        .and_then(|ca| ca.client("citytel-reporting"))
        .expect("a certificate from another CA");

    let channel = grpc_channel(&pki, citytel.grpc, Some(&ours))
        .await
        .expect("mTLS channel with a certificate from the client CA");
    let mut health = HealthClient::new(channel.clone());
    let mut wait = Wait::new("SERVING over mTLS", Duration::from_secs(30));
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
        wait.retry().await.expect("health over mTLS");
    }
    let key = keys::admin_key(dir.path());
    let devices = list_devices(&pki, citytel.grpc, Some(&ours), &key)
        .await
        .expect("ListDevices with the CA's client certificate and the admin key");
    assert!(devices.devices.is_empty(), "{devices:?}");
    // The certificate lets the client through TLS, not past the API's keys.
    let anonymous = QueryServiceClient::new(channel)
        .list_devices(ListDevicesRequest::default())
        .await
        .map(|_| ())
        .map_err(|status| status.code());
    assert_eq!(anonymous, Err(Code::Unauthenticated));
    wait_handshake_failures(&metrics, "grpc", 0.0).await;

    // Without a certificate, or with one from another CA, the handshake is refused, even with
    // a valid key. (tonic may try to reconnect a refused channel before it is dropped, so each
    // case counts at least one failure.)
    for (what, client) in [
        ("no client certificate", None),
        ("a certificate from another CA", Some(&foreign)),
    ] {
        let answer = list_devices(&pki, citytel.grpc, client, &key).await;
        assert!(answer.is_err(), "{what}: answered {answer:?}");
    }
    let failures = wait_handshake_failures_at_least(&metrics, "grpc", 2.0).await;
    // The same refusal seen by a bare TLS client: the handshake (TLS 1.3: the server's alert
    // read just after it) fails.
    let bare = tls::client_config(&pki.ca_pem(), None).expect("client config");
    let refused = async {
        use tokio::io::AsyncReadExt as _;
        let mut stream = tls::connect(citytel.grpc, bare).await?;
        let mut byte = [0u8; 1];
        stream.read(&mut byte).await
    }
    .await;
    assert!(refused.is_err(), "read {refused:?} without a certificate");
    wait_handshake_failures_at_least(&metrics, "grpc", failures + 1.0).await;
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_over_tls_serves_its_page_and_grpc_web_and_plaintext_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let citytel = start(dir.path(), &pki.listener_args("http"));
    let url = citytel
        .dashboard
        .clone()
        .expect("the dashboard URL is printed");
    assert!(url.starts_with("https://"), "the banner shows {url}");
    let metrics = citytel.metrics.clone().expect("the metrics URL is printed");
    let addr = citytel.dashboard_addr();
    let config = tls::client_config(&pki.ca_pem(), None).expect("client config");

    let page = HttpConn::with_tls(addr, config.clone())
        .get("/")
        .await
        .and_then(|r| r.expect(StatusCode::OK, "the dashboard page over TLS"))
        .unwrap_or_else(|e| panic!("{e}"));
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<title>citytel</title>"), "{}", page.text());

    let call = grpc_web::call_tls(
        addr,
        config,
        LIST_DEVICES,
        &ListDevicesRequest::default().encode_to_vec(),
        &[],
    )
    .await
    .expect("gRPC-Web ListDevices over TLS");
    assert_eq!(call.status, StatusCode::OK);
    let (messages, status) = call.finish().await.expect("the answer ends");
    assert_eq!((messages.len(), status.as_deref()), (1, Some("0")));
    let devices = ListDevicesResponse::decode(messages[0].clone()).expect("a ListDevicesResponse");
    assert!(devices.devices.is_empty(), "{devices:?}");
    wait_handshake_failures(&metrics, "dashboard", 0.0).await;

    // Plaintext, the page or gRPC-Web, gets no HTTP answer from the TLS listener.
    let plain = HttpConn::new(addr).get("/").await.map(|r| r.status);
    assert!(plain.is_err(), "plaintext GET / answered {plain:?}");
    let plain = grpc_web::call(
        addr,
        LIST_DEVICES,
        &ListDevicesRequest::default().encode_to_vec(),
    )
    .await
    .map(|call| call.status);
    assert!(plain.is_err(), "plaintext gRPC-Web answered {plain:?}");
    // A client that trusts another CA refuses the server's certificate.
    let stranger = TestCa::new("another CA").expect("CA");
    let config = tls::client_config(&stranger.cert_pem(), None).expect("client config");
    let refused = HttpConn::with_tls(addr, config)
        .get("/")
        .await
        .map(|r| r.status);
    assert!(refused.is_err(), "a client of another CA got {refused:?}");
    wait_handshake_failures(&metrics, "dashboard", 3.0).await;
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

/// `GET /metrics` on `https` with `authorization: {bearer}`, answered 200.
async fn scrape_with_token(https: &mut HttpConn, bearer: &str) -> Scrape {
    https
        .request_with(
            Method::GET,
            "/metrics",
            &[("authorization", bearer)],
            Default::default(),
        )
        .await
        .and_then(|r| r.expect(StatusCode::OK, "/metrics over TLS with the token"))
        .map(|r| Scrape::parse(&String::from_utf8_lossy(&r.body)))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_tls_answer_a_scrape_with_the_token_and_plaintext_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token");
    let mut args = pki.listener_args("metrics");
    args.extend(set_path("metrics.bearer_token_file", &token_file));
    let citytel = start(&dir.path().join("data"), &args);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    assert!(url.starts_with("https://"), "the banner shows {url}");
    let addr = addr_of(&url);
    let config = tls::client_config(&pki.ca_pem(), None).expect("client config");
    let mut https = HttpConn::with_tls(addr, config);

    let bearer = format!("Bearer {TOKEN}");
    let first = scrape_with_token(&mut https, &bearer).await;
    assert_eq!(
        first
            .get("citytel_tls_handshake_failures_total{listener=\"metrics\"}")
            .unwrap_or(0.0),
        0.0
    );
    let refused = https.get("/metrics").await.expect("GET /metrics over TLS");
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "without the token"
    );

    // Plaintext, even with the token, gets no HTTP answer.
    let plain = HttpConn::new(addr)
        .request_with(
            Method::GET,
            "/metrics",
            &[("authorization", bearer.as_str())],
            Default::default(),
        )
        .await
        .map(|r| r.status);
    assert!(plain.is_err(), "plaintext /metrics answered {plain:?}");
    let series = "citytel_tls_handshake_failures_total{listener=\"metrics\"}";
    let mut wait = Wait::new(format!("{series} = 1"), Duration::from_secs(10))
        .every(Duration::from_millis(50));
    let last = loop {
        let last = scrape_with_token(&mut https, &bearer).await;
        if last.get(series) == Some(1.0) {
            break last;
        }
        wait.retry().await.expect("the plaintext request counted");
    };
    assert_eq!(
        last.value("citytel_http_requests_refused_total{listener=\"metrics\",reason=\"no_token\"}"),
        1.0
    );
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

/// `GET path` over TLS with `config`: the status, or the error of a refused handshake.
async fn get_over_tls(
    addr: SocketAddr,
    config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    path: &str,
) -> Result<StatusCode, String> {
    HttpConn::with_tls(addr, config)
        .get(path)
        .await
        .map(|r| r.status)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_metrics_with_mtls_take_the_ca_s_clients_and_refuse_others_and_revoked() {
    const REVOKED: u64 = 666;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let crl = pki.write_crl(&[REVOKED]);
    let mut args = Vec::new();
    for section in ["http", "metrics"] {
        args.extend(pki.listener_args(section));
        args.extend(set_path(
            &format!("{section}.tls.client_ca_file"),
            &pki.ca_file,
        ));
        args.extend(set_path(&format!("{section}.tls.crl_file"), &crl));
        args.extend([
            "--set".to_string(),
            format!("{section}.tls.require_client_certificate=true"),
        ]);
    }
    let citytel = start(dir.path(), &args);
    let dashboard = citytel.dashboard_addr();
    let metrics = addr_of(&citytel.metrics.clone().expect("the metrics URL is printed"));
    let ours = pki.device("grafana-scraper").issued;
    let revoked = pki.client_with_serial("old-scraper", REVOKED);
    let foreign = TestCa::new("another CA")
        .and_then(|ca| ca.client("grafana-scraper"))
        .expect("a certificate from another CA");
    let with = |client: Option<&Issued>| tls::client_config(&pki.ca_pem(), client).expect("config");

    assert_eq!(
        get_over_tls(dashboard, with(Some(&ours)), "/").await,
        Ok(StatusCode::OK),
        "the dashboard to a certificate from the client CA"
    );
    assert_eq!(
        get_over_tls(metrics, with(Some(&ours)), "/metrics").await,
        Ok(StatusCode::OK),
        "/metrics to a certificate from the client CA"
    );
    for (what, client) in [
        ("no client certificate", None),
        ("a certificate from another CA", Some(&foreign)),
        ("a revoked certificate", Some(&revoked)),
    ] {
        for (addr, path) in [(dashboard, "/"), (metrics, "/metrics")] {
            let answer = get_over_tls(addr, with(client), path).await;
            assert!(answer.is_err(), "{path} with {what}: answered {answer:?}");
        }
    }
    // Each refusal is counted on its own listener: three each.
    let mut wait = Wait::new(
        "three refused handshakes per listener",
        Duration::from_secs(10),
    )
    .every(Duration::from_millis(50));
    loop {
        let scrape = HttpConn::with_tls(metrics, with(Some(&ours)))
            .get("/metrics")
            .await
            .and_then(|r| r.expect(StatusCode::OK, "/metrics with the CA's certificate"))
            .map(|r| Scrape::parse(&String::from_utf8_lossy(&r.body)))
            .unwrap_or_else(|e| panic!("{e}"));
        let failures = |listener: &str| {
            scrape
                .get(&format!(
                    "citytel_tls_handshake_failures_total{{listener=\"{listener}\"}}"
                ))
                .unwrap_or(0.0)
        };
        if (failures("dashboard"), failures("metrics")) == (3.0, 3.0) {
            break;
        }
        wait.retry().await.unwrap_or_else(|e| {
            panic!(
                "{e}: dashboard {}, metrics {}",
                failures("dashboard"),
                failures("metrics")
            )
        });
    }
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
