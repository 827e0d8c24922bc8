//! The dashboard's port refuses what a browser could be tricked into sending: a request whose
//! `Host` is not one of citytel's names (DNS rebinding) gets 421, a gRPC-Web call whose `Origin`
//! is another site (a cross-site request) 403, and both are counted by reason; the dashboard's
//! own same-origin calls, and names added in `http.allowed_hosts`, are answered.

use citytel_proto::v1::ListDevicesRequest;
use citytel_testkit::grpc_web;
use citytel_testkit::http::{HttpConn, Method, StatusCode};
use citytel_testkit::metrics::Scrape;
use citytel_tests::process::Citytel;
use prost::Message as _;

const LIST_DEVICES: &str = "/citytel.v1.QueryService/ListDevices";

/// Calls ListDevices through gRPC-Web with `headers`; the HTTP status, and the gRPC status when
/// the call was answered (a refusal is plain text, not gRPC-Web frames).
async fn list_devices(citytel: &Citytel, headers: &[(&str, &str)]) -> (StatusCode, Option<String>) {
    let call = grpc_web::call_with(
        citytel.dashboard_addr(),
        LIST_DEVICES,
        &ListDevicesRequest::default().encode_to_vec(),
        headers,
    )
    .await
    .expect("gRPC-Web ListDevices");
    let status = call.status;
    if status != StatusCode::OK {
        return (status, None);
    }
    let (_, grpc) = call.finish().await.expect("the answer ends");
    (status, grpc)
}

/// `GET /` with `host` as the `Host` header; the status.
async fn get(http: &mut HttpConn, host: &str) -> StatusCode {
    http.request_with(Method::GET, "/", &[("host", host)], Default::default())
        .await
        .expect("GET /")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_and_cross_site_origins_are_refused_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let citytel = Citytel::start(
        dir.path(),
        &["--set", "http.allowed_hosts=[\"citytel.test\"]"],
    );
    let addr = citytel.dashboard_addr();
    let port = addr.port();
    let mut http = HttpConn::new(addr);

    // The page, by the names citytel answers for.
    for host in [
        addr.to_string(),
        format!("localhost:{port}"),
        "citytel.test".to_string(),
        format!("citytel.test:{port}"),
    ] {
        assert_eq!(get(&mut http, &host).await, StatusCode::OK, "{host}");
    }
    // DNS rebinding: a foreign name that resolves to this machine.
    for host in [format!("rebound.example:{port}"), "localhost:1".to_string()] {
        assert_eq!(
            get(&mut http, &host).await,
            StatusCode::MISDIRECTED_REQUEST,
            "{host}"
        );
    }

    // The dashboard's own calls carry its origin; another site's page carries its own.
    let own = format!("http://{addr}");
    assert_eq!(
        list_devices(&citytel, &[("origin", &own)]).await,
        (StatusCode::OK, Some("0".into()))
    );
    assert_eq!(
        list_devices(&citytel, &[]).await,
        (StatusCode::OK, Some("0".into())),
        "clients that are not browsers send no Origin"
    );
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, _) = list_devices(&citytel, &[("origin", origin)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
    }

    let metrics = Scrape::fetch(citytel.metrics.as_deref().expect("metrics URL")).await;
    let refused = |reason: &str| {
        metrics.value(&format!(
            "citytel_http_requests_refused_total{{listener=\"dashboard\",reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(refused("host"), 2.0);
    assert_eq!(refused("origin"), 3.0);
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
