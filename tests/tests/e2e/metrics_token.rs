//! The metrics endpoint's bearer token, as Prometheus and an operator meet it: with
//! `metrics.bearer_token_file` set, `/metrics` answers only a request carrying the token (401
//! with `WWW-Authenticate` otherwise, counted by reason), the token shows in neither the banner
//! nor the printed configuration; without it the endpoint is open; and a non-loopback metrics
//! address without a token refuses to start unless `--allow-anonymous-metrics` says so.

use std::process::Command;

use citytel_testkit::http::{self, HttpConn, Method, StatusCode};
use citytel_testkit::metrics::Scrape;
use citytel_tests::process::{Citytel, binary};

const TOKEN: &str = "scrape-me-7f3a9c";

async fn scrape(http: &mut HttpConn, authorization: Option<&str>) -> http::Response {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    http.request_with(Method::GET, "/metrics", &headers, Default::default())
        .await
        .expect("GET /metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_when_one_is_configured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token");
    let setting = format!(
        "metrics.bearer_token_file={:?}",
        token_file.display().to_string()
    );
    let citytel = Citytel::start(&dir.path().join("data"), &["--set", &setting]);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .expect("http://HOST:PORT/metrics");
    let mut http = HttpConn::new(addr);

    let refused = scrape(&mut http, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers["www-authenticate"]
            .to_str()
            .is_ok_and(|v| v.starts_with("Bearer")),
        "{:?}",
        refused.headers
    );
    let wrong = scrape(&mut http, Some("Bearer scrape-me")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {TOKEN}");
    let answer = scrape(&mut http, Some(&bearer))
        .await
        .expect(StatusCode::OK, "/metrics with the token")
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = Scrape::parse(&String::from_utf8_lossy(&answer.body));
    let refused = |reason: &str| {
        metrics.value(&format!(
            "citytel_http_requests_refused_total{{listener=\"metrics\",reason=\"{reason}\"}}"
        ))
    };
    assert_eq!((refused("no_token"), refused("wrong_token")), (1.0, 1.0));

    let printed = citytel.stdout_lines().join("\n");
    assert!(
        !printed.contains(TOKEN),
        "the banner shows the token: {printed}"
    );
    let config = Command::new(binary())
        .args(["config", "--set", &setting])
        .output()
        .expect("citytel config");
    let config = String::from_utf8_lossy(&config.stdout);
    assert!(config.contains("bearer_token_file"), "{config}");
    assert!(
        !config.contains(TOKEN),
        "the printed configuration shows the token"
    );
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_open_without_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let citytel = Citytel::start(dir.path(), &[]);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    http::get(&url)
        .await
        .and_then(|r| r.expect(StatusCode::OK, &url))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[test]
fn a_non_loopback_metrics_endpoint_without_a_token_refuses_to_start_unless_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |extra: &[&str]| {
        Command::new(binary())
            .args(["config", "--data-dir"])
            .arg(dir.path())
            .args(["--set", "metrics.listen=0.0.0.0:0"])
            .args(extra)
            .output()
            .expect("run citytel config")
    };
    let refused = config(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused");
    assert!(err.contains("--allow-anonymous-metrics"), "{err}");
    let allowed = config(&["--allow-anonymous-metrics"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let with_token = config(&[
        "--set",
        "metrics.bearer_token_file=\"/etc/citytel/metrics.token\"",
    ]);
    assert!(
        with_token.status.success(),
        "{}",
        String::from_utf8_lossy(&with_token.stderr)
    );
}
