//! Binding the service's listeners, with errors that say which listener failed.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::ServiceError;
use crate::config::Settings;
use crate::net::fds::ConnectionCaps;
use crate::net::listener::HttpListener;

/// A bound listener and the address it got (port 0 picks one).
pub(super) type Bound = (HttpListener, SocketAddr);

/// The HTTP/2 and HTTP listeners of the service (the device endpoint binds its own).
pub(super) struct Listeners {
    /// The gRPC API.
    pub(super) grpc: Bound,
    /// The dashboard, when enabled.
    pub(super) http: Option<Bound>,
    /// The metrics endpoint, when enabled.
    pub(super) metrics: Option<Bound>,
}

/// Binds every listener `settings` asks for, each with its cap from `caps` and its idle
/// timeout.
pub(super) async fn bind_all(
    settings: &Settings,
    caps: &ConnectionCaps,
) -> Result<Listeners, ServiceError> {
    let grpc = bind(settings.grpc.listen, "gRPC").await?;
    let grpc = guard(grpc, "grpc", caps.grpc, settings.grpc.idle_timeout);
    let http = match settings.http_listen {
        Some(addr) => {
            let bound = bind(addr, "the web dashboard").await?;
            Some(guard(
                bound,
                "dashboard",
                caps.dashboard,
                settings.http.idle_timeout,
            ))
        }
        None => None,
    };
    let metrics = match settings.metrics_listen {
        Some(addr) => {
            let bound = bind(addr, "the metrics endpoint").await?;
            Some(guard(
                bound,
                "metrics",
                caps.metrics,
                settings.metrics.idle_timeout,
            ))
        }
        None => None,
    };
    Ok(Listeners {
        grpc,
        http,
        metrics,
    })
}

fn guard(
    (listener, addr): (TcpListener, SocketAddr),
    name: &'static str,
    cap: usize,
    idle: std::time::Duration,
) -> Bound {
    (HttpListener::new(listener, name, cap, idle), addr)
}

/// Binds `addr` for `what`.
async fn bind(
    addr: SocketAddr,
    what: &'static str,
) -> Result<(TcpListener, SocketAddr), ServiceError> {
    let bind_error = |source| ServiceError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
