//! The dashboard server's door: every request (files and gRPC-Web alike) passes [`check`] first.
//! A `Host` that is not an allowed name is answered `421 Misdirected Request` (against DNS
//! rebinding); an `Origin` of another site `403 Forbidden` (against cross-site requests). Both are
//! counted in `citytel_http_requests_refused_total{listener="dashboard", reason}` (`host`,
//! `origin`). The rules are in [`super::hosts`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, header};
use axum::middleware::Next;

use super::hosts::AllowedHosts;
use crate::telemetry::metrics as m;

/// The host a request is addressed to: its `Host` header, or (HTTP/2) the URI's authority.
fn host_of<B>(request: &Request<B>) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(host) => host.to_str().ok(),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

/// Why a request is refused, if it is.
fn refusal<B>(hosts: &AllowedHosts, request: &Request<B>) -> Option<(StatusCode, &'static str)> {
    let host = host_of(request).unwrap_or("");
    if !hosts.host_allowed(host) {
        return Some((StatusCode::MISDIRECTED_REQUEST, "host"));
    }
    let origins = request.headers().get_all(header::ORIGIN);
    let foreign = origins
        .iter()
        .any(|o| o.to_str().map_or(true, |o| !hosts.origin_allowed(o, host)));
    foreign.then_some((StatusCode::FORBIDDEN, "origin"))
}

/// Answers a request whose `Host` or `Origin` is not allowed, and passes the others on.
pub(crate) async fn check(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request<Body>,
    next: Next,
) -> Response<Body> {
    let Some((status, reason)) = refusal(&hosts, &request) else {
        return next.run(request).await;
    };
    metrics::counter!(m::HTTP_REQUESTS_REFUSED_TOTAL, "listener" => "dashboard", "reason" => reason)
        .increment(1);
    let text = match reason {
        "host" => {
            "citytel does not answer for this host name; add it to http.allowed_hosts if it is \
             yours\n"
        }
        _ => "cross-site requests are refused: the request's Origin is not an allowed host\n",
    };
    super::assets::plain(status, text)
}
