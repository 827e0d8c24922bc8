use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::db::Database;
use crate::pipeline::Pipeline;

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The value of the sample `name{labels}` (labels as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn scrapes_render_counters_and_state_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = format!("storage.data_dir={:?}", dir.path().display().to_string());
    let settings = crate::config::load_str(None, &[data_dir])
        .unwrap()
        .validate()
        .unwrap();
    let options = settings.store_options(crate::clock::Clock::System);
    let (db, _wal, _replay) = Database::open(dir.path(), &options).unwrap();
    let (pipeline, _queue) = Pipeline::new(settings.ingest.limits(), 1 << 20);
    // Installed before anything is recorded, as the service does.
    handle().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let listener = crate::net::listener::HttpListener::new(
        listener,
        "metrics",
        16,
        std::time::Duration::from_secs(60),
        None,
    );
    let server = tokio::spawn(serve(
        listener,
        Sources {
            db: Arc::clone(&db),
            in_flight: Some(pipeline.in_flight()),
        },
        None,
        stop.clone(),
    ));

    metrics::counter!(m::WAL_COMMITS_TOTAL).increment(3);
    let (status, content_type, first) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let before = sample(&first, m::WAL_COMMITS_TOTAL).expect("commit counter rendered");
    assert!(before >= 3.0, "{first}");
    assert_eq!(
        sample(
            &first,
            &format!("{}{{state=\"online\"}}", m::DEVICES_BY_STATE)
        ),
        Some(0.0),
        "{first}"
    );
    assert_eq!(sample(&first, m::IN_FLIGHT_BYTES), Some(0.0), "{first}");
    assert!(
        first.contains("# HELP citytel_wal_commits_total"),
        "{first}"
    );

    metrics::counter!(m::WAL_COMMITS_TOTAL).increment(2);
    let (_, _, second) = get(addr, "/metrics").await;
    let after = sample(&second, m::WAL_COMMITS_TOTAL).unwrap();
    assert!(after >= before + 2.0, "{before} -> {after}");

    let (status, _, _) = get(addr, "/nothing").await;
    assert_eq!(status, 404);

    stop.cancel();
    server.await.unwrap().unwrap();
}
