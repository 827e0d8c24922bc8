//! Binding the service's listeners, with errors that say which listener failed.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::ServiceError;

/// Binds `addr` for `what`; returns the listener with the address it got (port 0 picks one).
pub(super) async fn bind(
    addr: SocketAddr,
    what: &'static str,
) -> Result<(TcpListener, SocketAddr), ServiceError> {
    let bind_error = |source| ServiceError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
