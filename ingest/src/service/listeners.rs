//! Binding the service's listeners, with errors that say which listener failed, and their TLS
//! (`[grpc.tls]`, `[http.tls]`, `[metrics.tls]`) loaded.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::ServiceError;
use crate::config::{ListenerTlsConfig, Settings};
use crate::net::fds::ConnectionCaps;
use crate::net::listener::HttpListener;
use crate::net::tls::{self, ServerTls};

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
    /// The TLS of those that speak it, for reloads.
    pub(super) tls: Vec<Arc<ServerTls>>,
}

/// Binds every listener `settings` asks for, each with its cap from `caps` and its idle
/// timeout.
pub(super) async fn bind_all(
    settings: &Settings,
    caps: &ConnectionCaps,
) -> Result<Listeners, ServiceError> {
    let mut loaded = Vec::new();
    let grpc_tls = load(
        &settings.grpc.tls,
        "grpc",
        "gRPC",
        tls::ALPN_H2,
        &mut loaded,
    )?;
    let grpc = bind(settings.grpc.listen, "gRPC").await?;
    let grpc = guard(
        grpc,
        "grpc",
        caps.grpc,
        settings.grpc.idle_timeout,
        grpc_tls,
    );
    let http = match settings.http_listen {
        Some(addr) => {
            let what = "the web dashboard";
            let tls = load(
                &settings.http.tls,
                "dashboard",
                what,
                tls::ALPN_H2_HTTP1,
                &mut loaded,
            )?;
            let bound = bind(addr, what).await?;
            Some(guard(
                bound,
                "dashboard",
                caps.dashboard,
                settings.http.idle_timeout,
                tls,
            ))
        }
        None => None,
    };
    let metrics = match settings.metrics_listen {
        Some(addr) => {
            let what = "the metrics endpoint";
            let tls = load(
                &settings.metrics.tls,
                "metrics",
                what,
                tls::ALPN_HTTP1,
                &mut loaded,
            )?;
            let bound = bind(addr, what).await?;
            Some(guard(
                bound,
                "metrics",
                caps.metrics,
                settings.metrics.idle_timeout,
                tls,
            ))
        }
        None => None,
    };
    Ok(Listeners {
        grpc,
        http,
        metrics,
        tls: loaded,
    })
}

/// Loads a listener's TLS when it is enabled, and notes it in `loaded`.
fn load(
    config: &ListenerTlsConfig,
    name: &'static str,
    what: &'static str,
    alpn: &[&[u8]],
    loaded: &mut Vec<Arc<ServerTls>>,
) -> Result<Option<Arc<ServerTls>>, ServiceError> {
    let Some(files) = config.files() else {
        return Ok(None);
    };
    let tls =
        ServerTls::load(name, files, alpn).map_err(|source| ServiceError::Tls { what, source })?;
    loaded.push(tls.clone());
    Ok(Some(tls))
}

fn guard(
    (listener, addr): (TcpListener, SocketAddr),
    name: &'static str,
    cap: usize,
    idle: std::time::Duration,
    tls: Option<Arc<ServerTls>>,
) -> Bound {
    (HttpListener::new(listener, name, cap, idle, tls), addr)
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
