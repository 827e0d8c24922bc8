//! citytel's readiness as its clients see it: the standard gRPC health service reports the query
//! service SERVING once citytel is ready (with a broker source: connected and subscribed).
//!
//! [`probe`] asks once; [`wait_serving`] polls until SERVING. A caller that must also watch a
//! child process polls [`probe`] itself in a [`Wait`](crate::wait::Wait) loop.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::wait::{TimedOut, Wait};

/// The service whose health means "citytel is ready".
pub const QUERY_SERVICE: &str = "citytel.v1.QueryService";

/// What one health check found.
#[derive(Debug)]
pub enum Probe {
    /// SERVING, with the connected channel (to reuse for the API).
    Serving(Channel),
    /// Not (yet): what was seen instead (a status, or why the check failed).
    NotYet(String),
}

/// Connects to `endpoint` and checks [`QUERY_SERVICE`] once.
pub async fn probe(endpoint: &Endpoint) -> Probe {
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(e) => return Probe::NotYet(format!("connect: {e}")),
    };
    let request = HealthCheckRequest {
        service: QUERY_SERVICE.into(),
    };
    match HealthClient::new(channel.clone()).check(request).await {
        Ok(r) if r.get_ref().status() == ServingStatus::Serving => Probe::Serving(channel),
        Ok(r) => Probe::NotYet(format!("{:?}", r.get_ref().status())),
        Err(status) => Probe::NotYet(status.to_string()),
    }
}

/// Polls `endpoint` until the query service is SERVING, for up to `limit`; returns the channel.
/// The error says what the last check saw.
pub async fn wait_serving(endpoint: &Endpoint, limit: Duration) -> Result<Channel, TimedOut> {
    let mut wait = Wait::new(format!("{} SERVING", endpoint.uri()), limit);
    loop {
        match probe(endpoint).await {
            Probe::Serving(channel) => return Ok(channel),
            Probe::NotYet(seen) => {
                if let Err(mut e) = wait.retry().await {
                    e.what = format!("{} (last: {seen})", e.what);
                    return Err(e);
                }
            }
        }
    }
}
