//! The gRPC API: `citytel.v1.QueryService`, plus gRPC health and reflection (v1 and v1alpha, so
//! grpcurl and other tools can explore it).
//!
//! - [`query`]: the service implementation, reading the shared [`crate::store::Database`].
//! - [`convert`]: the one place where storage types become wire types.
//! - [`error`]: the one place where errors become `tonic::Status`.

pub mod convert;
pub mod error;
pub mod query;

use std::sync::Arc;

use citytel_proto::v1::query_service_server::QueryServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::store::Database;

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

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes in-flight calls.
/// `health` is the health service whose reporter the caller keeps.
pub async fn serve(
    listener: TcpListener,
    db: Arc<Database>,
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
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(QueryServiceServer::new(query::QueryApi::new(db)))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY, small responses wait ~40 ms for the peer's delayed ACK.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}
