//! Request counts and latencies of the gRPC API, as a tower layer in front of every service:
//! the native gRPC server's and the dashboard's gRPC-Web service.
//!
//! Labels are the transport (`grpc-web` for a request with a gRPC-Web content type, as the
//! dashboard sends, `grpc` otherwise), the method (a fixed set: the services' paths, with
//! anything else folded into `other`) and the gRPC status code when it is known as the response
//! starts (`0` otherwise: a call that fails later reports its status in the trailers; an answer
//! that is not HTTP 200 and carries no status, such as a gRPC-Web request the translation
//! refuses, gets the code gRPC maps its HTTP status to). Latency is measured until the response
//! starts, which for a server stream means until it is open.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Request, Response, StatusCode, header};
use prost::Message;
use tonic::server::NamedService;
use tower::{Layer, Service};

use crate::telemetry::metrics as m;

/// Adds [`GrpcMetrics`] to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

/// Counts requests and records their latency (see the module documentation).
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S: NamedService> NamedService for GrpcMetrics<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<Request<B>> for GrpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let transport = transport_label(&request);
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(code_label)
                    .unwrap_or_else(|| http_code_label(r.status())),
                Err(_) => "transport",
            };
            metrics::counter!(
                m::GRPC_REQUESTS_TOTAL,
                "transport" => transport,
                "method" => method,
                "code" => code
            )
            .increment(1);
            metrics::histogram!(
                m::GRPC_REQUEST_SECONDS,
                "transport" => transport,
                "method" => method
            )
            .record(started.elapsed().as_secs_f64());
            response
        })
    }
}

/// `grpc-web` for a request with a gRPC-Web content type (`application/grpc-web`,
/// `application/grpc-web+proto`, `application/grpc-web-text`...), `grpc` for any other.
pub fn transport_label<B>(request: &Request<B>) -> &'static str {
    let grpc_web = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc-web"));
    if grpc_web { "grpc-web" } else { "grpc" }
}

/// The code of an answer without a `grpc-status`: `0` for HTTP 200 (the status follows in the
/// trailers), otherwise the gRPC code the gRPC specification maps the HTTP status to.
fn http_code_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "0",
        400 => "13",
        401 => "16",
        403 => "7",
        404 => "12",
        429 | 502 | 503 | 504 => "14",
        _ => "2",
    }
}

/// The method name of a gRPC path, or `other` for paths that are not a method of the services
/// citytel serves (so a client cannot create labels at will).
pub fn method_label(path: &str) -> &'static str {
    static METHODS: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    METHODS
        .get_or_init(known_methods)
        .get(path)
        .copied()
        .unwrap_or("other")
}

/// Every method path of the query, health and reflection services, from their descriptors.
fn known_methods() -> HashMap<String, &'static str> {
    let mut out = HashMap::new();
    for encoded in [
        citytel_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let name: &'static str = Box::leak(method.name().to_owned().into_boxed_str());
                    out.insert(format!("/{full}/{name}"), name);
                }
            }
        }
    }
    for service in [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        out.insert(
            format!("/{service}/ServerReflectionInfo"),
            "ServerReflectionInfo",
        );
    }
    out
}

/// The numeric gRPC status codes (0 to 16) as static labels.
fn code_label(code: &str) -> Option<&'static str> {
    const CODES: [&str; 17] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    CODES.iter().copied().find(|c| *c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(
            method_label("/citytel.v1.QueryService/ListDevices"),
            "ListDevices"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "Check");
        assert_eq!(
            method_label("/citytel.v1.QueryService/WatchEvents"),
            "WatchEvents"
        );
        assert_eq!(method_label("/citytel.v1.QueryService/NoSuch"), "other");
        assert_eq!(method_label("/evil.Service/ListDevices"), "other");
        assert_eq!(method_label("/"), "other");
        assert_eq!(code_label("14"), Some("14"));
        assert_eq!(code_label("99"), None);
    }

    #[test]
    fn the_transport_is_told_by_the_content_type() {
        let with = |content_type: &str| {
            Request::post("/citytel.v1.QueryService/ListDevices")
                .header(header::CONTENT_TYPE, content_type)
                .body(())
                .expect("request")
        };
        assert_eq!(transport_label(&with("application/grpc")), "grpc");
        assert_eq!(transport_label(&with("application/grpc+proto")), "grpc");
        assert_eq!(transport_label(&with("application/grpc-web")), "grpc-web");
        assert_eq!(
            transport_label(&with("application/grpc-web+proto")),
            "grpc-web"
        );
        assert_eq!(
            transport_label(&with("application/grpc-web-text")),
            "grpc-web"
        );
        let bare = Request::post("/").body(()).expect("request");
        assert_eq!(transport_label(&bare), "grpc");
    }

    #[test]
    fn answers_without_a_status_get_the_code_of_their_http_status() {
        assert_eq!(http_code_label(StatusCode::OK), "0");
        assert_eq!(http_code_label(StatusCode::BAD_REQUEST), "13");
        assert_eq!(http_code_label(StatusCode::METHOD_NOT_ALLOWED), "2");
        assert_eq!(http_code_label(StatusCode::SERVICE_UNAVAILABLE), "14");
    }
}
