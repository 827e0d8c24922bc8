//! The gRPC API: `citytel.v1.QueryService`, `citytel.v1.AdminService` and
//! `citytel.v1.SessionService` and `citytel.v1.AlertService` ([`alerts`]), plus gRPC health and
//! reflection (v1 and v1alpha, so grpcurl and other tools can explore it).
//!
//! - [`query`]: the service, one method per RPC, delegating to [`devices`], [`series`],
//!   [`fleet`], [`deadletters`], [`watch`] and [`export`]; each answers only what the caller's
//!   key sees (`crate::query::Visible`).
//! - [`report`]: `citytel.v1.ReportService`, district reports ([`crate::reports`]).
//! - [`admin`]: organisations, keys and the audit log; [`session`]: who the caller's key is.
//! - [`auth`]: who the caller is, and what its role allows.
//! - [`convert`]: the one place where storage types become wire types.
//! - [`error`]: the one place where errors become `tonic::Status`.
//! - [`reads`]: the bounded pool heavy reads run in, with deadlines.
//! - [`stream_end`]: open server streams end once their key is revoked or expires
//!   (UNAUTHENTICATED), and when the server shuts down (UNAVAILABLE), on this server and on the
//!   dashboard's gRPC-Web one.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod auth;
pub(crate) mod convert;
pub(crate) mod deadletters;
pub(crate) mod devices;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod fleet;
pub(crate) mod query;
pub(crate) mod reads;
pub(crate) mod report;
pub(crate) mod series;
pub(crate) mod session;
pub(crate) mod stream_end;
pub(crate) mod watch;

use std::time::Duration;

use citytel_proto::v1::admin_service_server::AdminServiceServer;
use citytel_proto::v1::alert_service_server::AlertServiceServer;
use citytel_proto::v1::query_service_server::QueryServiceServer;
use citytel_proto::v1::report_service_server::ReportServiceServer;
use citytel_proto::v1::session_service_server::SessionServiceServer;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::net::listener::HttpListener;

use crate::telemetry::grpc::GrpcMetricsLayer;

/// Errors starting the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ApiServeError {
    /// Reflection could not be built from the descriptors.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How often the server pings an HTTP/2 connection, and how long it waits for the answer before
/// it closes the connection (clients that stopped reading, half-open connections).
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest request a client may send, in bytes (requests are small; answers may be large).
const MAX_REQUEST_BYTES: usize = 64 << 10;

/// The services behind the gRPC and gRPC-Web servers, with the authenticator in front of them.
#[derive(Clone)]
pub(crate) struct Api {
    /// The query service.
    pub(crate) query: query::QueryApi,
    /// The admin service.
    pub(crate) admin: admin::AdminApi,
    /// The session service.
    pub(crate) session: session::SessionApi,
    /// The alert service.
    pub(crate) alerts: alerts::AlertApi,
    /// The district report service.
    pub(crate) reports: report::ReportApi,
    /// Who may call them.
    pub(crate) auth: auth::Authenticator,
}

impl Api {
    /// The query service behind the authenticator; its streams end once their key stops
    /// working.
    pub(crate) fn query_server(
        &self,
    ) -> InterceptedService<
        stream_end::EndStreams<QueryServiceServer<query::QueryApi>, stream_end::OnRevokedKey>,
        auth::Authenticator,
    > {
        InterceptedService::new(
            stream_end::EndStreams::on_revoked_key(
                QueryServiceServer::new(self.query.clone())
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                self.auth.clone(),
            ),
            self.auth.clone(),
        )
    }

    /// The session service behind the authenticator.
    pub(crate) fn session_server(
        &self,
    ) -> InterceptedService<SessionServiceServer<session::SessionApi>, auth::Authenticator> {
        InterceptedService::new(
            SessionServiceServer::new(self.session.clone())
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            self.auth.clone(),
        )
    }

    /// The report service behind the authenticator.
    pub(crate) fn report_server(
        &self,
    ) -> InterceptedService<ReportServiceServer<report::ReportApi>, auth::Authenticator> {
        InterceptedService::new(
            ReportServiceServer::new(self.reports.clone())
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            self.auth.clone(),
        )
    }

    /// The alert service behind the authenticator; its streams (WatchAlerts) end once their
    /// key stops working.
    pub(crate) fn alerts_server(
        &self,
    ) -> InterceptedService<
        stream_end::EndStreams<AlertServiceServer<alerts::AlertApi>, stream_end::OnRevokedKey>,
        auth::Authenticator,
    > {
        InterceptedService::new(
            stream_end::EndStreams::on_revoked_key(
                AlertServiceServer::new(self.alerts.clone())
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                self.auth.clone(),
            ),
            self.auth.clone(),
        )
    }

    /// The admin service behind the authenticator.
    pub(crate) fn admin_server(
        &self,
    ) -> InterceptedService<AdminServiceServer<admin::AdminApi>, auth::Authenticator> {
        InterceptedService::new(
            AdminServiceServer::new(self.admin.clone())
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            self.auth.clone(),
        )
    }
}

/// Serves `api` on `listener` until `shutdown` is cancelled, then ends open streams (with
/// UNAVAILABLE) and finishes in-flight calls.
/// `health` is the health service whose reporter the caller keeps.
pub(crate) async fn serve(
    listener: HttpListener,
    api: Api,
    health: HealthServer<impl Health>,
    shutdown: CancellationToken,
) -> Result<(), ApiServeError> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(citytel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(citytel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(GrpcMetricsLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(stream_end::EndStreams::on_shutdown(
            api.query_server(),
            shutdown.clone(),
        ))
        .add_service(api.admin_server())
        .add_service(api.session_server())
        .add_service(api.report_server())
        .add_service(stream_end::EndStreams::on_shutdown(
            api.alerts_server(),
            shutdown.clone(),
        ))
        .serve_with_incoming_shutdown(
            // Capped, with idle timeouts and TCP_NODELAY (without it, small responses wait
            // ~40 ms for the peer's delayed ACK).
            listener.into_incoming(shutdown.clone()),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}
