//! Request counts and latencies of the gRPC API, as a tower layer in front of every service.
//!
//! Labels are the method (a fixed set: the services' paths, with anything else folded into
//! `other`) and the gRPC status code when it is known as the response starts (`0` otherwise:
//! a call that fails later reports its status in the trailers). Latency is measured until the
//! response starts, which for a server stream means until it is open.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Request, Response};
use prost::Message;
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
                    .unwrap_or("0"),
                Err(_) => "transport",
            };
            metrics::counter!(m::GRPC_REQUESTS_TOTAL, "method" => method, "code" => code)
                .increment(1);
            metrics::histogram!(m::GRPC_REQUEST_SECONDS, "method" => method)
                .record(started.elapsed().as_secs_f64());
            response
        })
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
}
