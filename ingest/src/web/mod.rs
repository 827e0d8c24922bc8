//! The operator dashboard over HTTP: the web app embedded from `dashboards/web/dist`, and the
//! query, session, alert and report services (`citytel.v1.QueryService`,
//! `citytel.v1.SessionService`, `citytel.v1.AlertService`, `citytel.v1.ReportService`) through
//! gRPC-Web (tonic-web), on one origin, so a browser needs no proxy and no CORS.
//!
//! Every request first passes the [`guard`]: a `Host` that is not an allowed name, or an `Origin`
//! of another site, is refused. Requests under those services' paths then go to the gRPC-Web
//! translation in front of the service (HTTP/1.1, as browsers speak it over plain http; plain
//! gRPC over HTTP/2 works too), counted by the gRPC metrics layer ([`crate::telemetry::grpc`],
//! `transport="grpc-web"`); every other request is answered from the embedded files.
//!
//! - [`assets`]: the embedded files, their content types and caching headers.
//! - [`hosts`]: which `Host` and `Origin` values are allowed; [`guard`]: the check itself.
//!
//! Open server streams (a browser's live updates) end when the server shuts down
//! ([`crate::api::drain`]), so a graceful shutdown does not wait for browsers to go away.

pub(crate) mod assets;
pub(crate) mod guard;
pub(crate) mod hosts;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body as AxumBody;
use axum::http::{Request, Response};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::{Layer, Service};

use crate::api::Api;
use crate::net::listener::HttpListener;
use crate::telemetry::grpc::GrpcMetricsLayer;
use hosts::AllowedHosts;

/// Errors of the dashboard's HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The server failed.
    #[error("dashboard HTTP server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An entry of `http.allowed_hosts` is not a host name.
    #[error("invalid http.allowed_hosts: {0}")]
    Hosts(String),
}

/// Serves the dashboard and `api` (through gRPC-Web) on `listener` for the host names in `hosts`
/// until `shutdown` is cancelled; then ends open streams, finishes in-flight requests and
/// returns.
pub(crate) async fn serve(
    listener: HttpListener,
    api: Api,
    hosts: AllowedHosts,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let routes = with_grpc_web(Routes::default(), api.query_server(), &shutdown);
    let routes = with_grpc_web(routes, api.session_server(), &shutdown);
    let routes = with_grpc_web(routes, api.alerts_server(), &shutdown);
    let routes = with_grpc_web(routes, api.report_server(), &shutdown);
    serve_routes(listener, routes, hosts, shutdown).await
}

/// `routes` with the gRPC `service` added through gRPC-Web, counted, its open streams ending at
/// `shutdown` (the query, session, alert and report services in production; tests use a
/// smaller one).
pub(crate) fn with_grpc_web<S, R>(
    routes: Routes,
    service: S,
    shutdown: &CancellationToken,
) -> Routes
where
    S: Service<Request<Body>, Response = Response<R>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    // Counted in front of the translation, where the request still says it is gRPC-Web.
    routes.add_service(GrpcMetricsLayer.layer(GrpcWebLayer::new().layer(
        crate::api::stream_end::EndStreams::on_shutdown(service, shutdown.clone()),
    )))
}

/// Serves `routes` and the embedded files on `listener`, behind the [`guard`], until
/// `shutdown` is cancelled.
pub(crate) async fn serve_routes(
    listener: HttpListener,
    routes: Routes,
    hosts: AllowedHosts,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let router = routes
        .into_axum_router()
        .fallback(|request: Request<AxumBody>| async move { assets::respond(&request) })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            guard::check,
        ));
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
