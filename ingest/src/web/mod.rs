//! The operator dashboard over HTTP: the web app embedded from `dashboards/web/dist`, and the
//! services `citytel.v1.QueryService` and `citytel.v1.AlertService` through gRPC-Web
//! (tonic-web), on one origin, so a browser needs no proxy and no CORS.
//!
//! Requests under `/citytel.v1.QueryService/` and `/citytel.v1.AlertService/` go to the
//! gRPC-Web translation in front of each service (HTTP/1.1, as browsers speak it over plain
//! http; plain gRPC over HTTP/2 works too), counted by the gRPC metrics layer
//! ([`crate::telemetry::grpc`], `transport="grpc-web"`); every other request is answered from
//! the embedded files.
//!
//! - [`assets`]: the embedded files, their content types and caching headers.
//!
//! Open server streams (a browser's live updates) end when the server shuts down
//! ([`crate::api::drain`]), so a graceful shutdown does not wait for browsers to go away.

pub(crate) mod assets;

use axum::body::Body as AxumBody;
use axum::http::Request;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::Layer;

use crate::api::Api;
use crate::net::listener::HttpListener;
use crate::telemetry::grpc::{GrpcMetrics, GrpcMetricsLayer};

/// Errors of the dashboard's HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The server failed.
    #[error("dashboard HTTP server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the dashboard and `api`'s query and alert services (through gRPC-Web) on `listener`
/// until `shutdown` is cancelled; then ends open streams, finishes in-flight requests and
/// returns.
pub(crate) async fn serve(
    listener: HttpListener,
    api: Api,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let routes = Routes::new(grpc_web(api.query_server(), &shutdown))
        .add_service(grpc_web(api.alerts_server(), &shutdown));
    serve_routes(listener, routes, shutdown).await
}

/// Serves the dashboard and any gRPC `service` through gRPC-Web (tests use a smaller service
/// than the query service).
#[cfg(test)]
pub(crate) async fn serve_grpc_web<S, R>(
    listener: HttpListener,
    service: S,
    shutdown: CancellationToken,
) -> Result<(), WebError>
where
    S: tower::Service<
            Request<tonic::body::Body>,
            Response = axum::http::Response<R>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    let routes = Routes::new(grpc_web(service, &shutdown));
    serve_routes(listener, routes, shutdown).await
}

/// `service` behind the gRPC-Web translation, counted in front of it (where the request still
/// says it is gRPC-Web), its streams ending at shutdown.
fn grpc_web<S>(
    service: S,
    shutdown: &CancellationToken,
) -> GrpcMetrics<tonic_web::GrpcWebService<crate::api::drain::EndStreamsOnShutdown<S>>> {
    GrpcMetricsLayer.layer(
        GrpcWebLayer::new().layer(crate::api::drain::EndStreamsOnShutdown::new(
            service,
            shutdown.clone(),
        )),
    )
}

/// Serves `routes`, every other path from the embedded files.
async fn serve_routes(
    listener: HttpListener,
    routes: Routes,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let router = routes
        .into_axum_router()
        .fallback(|request: Request<AxumBody>| async move { assets::respond(&request) });
    tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(crate::api::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::api::KEEPALIVE_TIMEOUT))
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(
            listener.into_incoming(shutdown.clone()),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
