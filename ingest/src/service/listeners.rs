//! Binding the service's listeners, with errors that say which listener failed.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::ServiceError;
use crate::config::Settings;

/// A bound listener and the address it got (port 0 picks one).
pub(super) type Bound = (TcpListener, SocketAddr);

/// The HTTP/2 and HTTP listeners of the service (the device endpoint binds its own).
pub(super) struct Listeners {
    /// The gRPC API.
    pub(super) grpc: Bound,
    /// The dashboard, when enabled.
    pub(super) http: Option<Bound>,
    /// The metrics endpoint, when enabled.
    pub(super) metrics: Option<Bound>,
}

/// Binds every listener `settings` asks for.
pub(super) async fn bind_all(settings: &Settings) -> Result<Listeners, ServiceError> {
    Ok(Listeners {
        grpc: bind(settings.grpc.listen, "gRPC").await?,
        http: match settings.http_listen {
            Some(addr) => Some(bind(addr, "the web dashboard").await?),
            None => None,
        },
        metrics: match settings.metrics_listen {
            Some(addr) => Some(bind(addr, "the metrics endpoint").await?),
            None => None,
        },
    })
}

/// Binds `addr` for `what`.
async fn bind(addr: SocketAddr, what: &'static str) -> Result<Bound, ServiceError> {
    let bind_error = |source| ServiceError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
