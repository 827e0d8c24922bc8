//! The dashboard server over real sockets: files with their headers, gRPC-Web calls, a shutdown
//! that does not wait for an open stream, and the refusal of foreign `Host` and `Origin`
//! headers. The gRPC side is the health service, which has both a unary call and a never-ending
//! server stream.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::hosts::AllowedHosts;
use super::{serve_routes, with_grpc_web};

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), super::WebError>>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let shutdown = CancellationToken::new();
    let listener = crate::net::listener::HttpListener::new(
        listener,
        "dashboard",
        16,
        std::time::Duration::from_secs(60),
        None,
    );
    // Requests name the server "localhost" without a port, as behind a proxy.
    let hosts = AllowedHosts::new(&["localhost".into()], addr).unwrap();
    let routes = with_grpc_web(tonic::service::Routes::default(), health, &shutdown);
    let task = tokio::spawn(serve_routes(listener, routes, hosts, shutdown.clone()));
    Server {
        addr,
        shutdown,
        task,
    }
}

async fn client(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(header::HOST, "localhost")
        .body(Full::default())
        .unwrap()
}

/// A gRPC-Web request with one message frame.
fn grpc_web(path: &str, message: &[u8]) -> Request<Full<Bytes>> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    Request::post(path)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from(frame)))
        .unwrap()
}

#[tokio::test]
async fn files_are_served_with_types_and_revalidation() {
    let server = start().await;
    let mut http = client(server.addr).await;

    let index = http.send_request(get("/")).await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let html = index.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains(r#"src="app.js""#), "{html}");
    assert!(html.contains(r#"href="app.css""#), "{html}");

    let mut again = get("/index.html");
    again
        .headers_mut()
        .insert(header::IF_NONE_MATCH, headers[header::ETAG].clone());
    let cached = http.send_request(again).await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    cached.into_body().collect().await.unwrap();

    for (path, content_type) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
    ] {
        let file = http.send_request(get(path)).await.unwrap();
        assert_eq!(file.status(), StatusCode::OK, "{path}");
        assert_eq!(file.headers()[header::CONTENT_TYPE], content_type);
        let body = file.into_body().collect().await.unwrap().to_bytes();
        assert!(body.len() > 1000, "{path} is only {} bytes", body.len());
    }

    let missing = http.send_request(get("/nope.js")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    missing.into_body().collect().await.unwrap();

    let mut post = get("/");
    *post.method_mut() = Method::POST;
    let refused = http.send_request(post).await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers()[header::ALLOW], "GET, HEAD");
    refused.into_body().collect().await.unwrap();

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn grpc_web_calls_reach_the_service() {
    let server = start().await;
    let mut http = client(server.addr).await;
    // HealthCheckRequest { service: "" } encodes to nothing.
    let answer = http
        .send_request(grpc_web("/grpc.health.v1.Health/Check", &[]))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()[header::CONTENT_TYPE],
        "application/grpc-web+proto"
    );
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    // A message frame (SERVING = 1), then the trailer frame with the status.
    assert_eq!(&body[..7], &[0, 0, 0, 0, 2, 8, 1]);
    let trailers = String::from_utf8_lossy(&body[12..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable() {
    let server = start().await;
    let mut http = client(server.addr).await;
    let answer = http
        .send_request(grpc_web("/grpc.health.v1.Health/Watch", &[]))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let mut body = answer.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first[0], 0, "a message frame first");

    // The stream would stay open forever; shutdown ends it and the server stops.
    server.shutdown.cancel();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the stream ends at shutdown")
        .unwrap()
        .to_bytes();
    let trailers = String::from_utf8_lossy(&rest);
    assert!(trailers.contains("grpc-status:14"), "{trailers}");
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the server stops at once")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused() {
    let server = start().await;
    let mut http = client(server.addr).await;

    let mut rebound = get("/");
    rebound
        .headers_mut()
        .insert(header::HOST, "rebound.example:8080".parse().unwrap());
    let refused = http.send_request(rebound).await.unwrap();
    assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
    refused.into_body().collect().await.unwrap();

    let mut cross_site = grpc_web("/grpc.health.v1.Health/Check", &[]);
    cross_site
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let refused = http.send_request(cross_site).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("cross-site"));

    let mut same_origin = grpc_web("/grpc.health.v1.Health/Check", &[]);
    same_origin
        .headers_mut()
        .insert(header::ORIGIN, "http://localhost".parse().unwrap());
    let answer = http.send_request(same_origin).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.into_body().collect().await.unwrap();

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}
