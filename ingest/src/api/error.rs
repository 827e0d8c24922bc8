//! API errors and their mapping to gRPC status codes, in one place.

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is malformed; the message says which field and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// The device is unknown.
    #[error("device {0:?} not found")]
    DeviceNotFound(String),
    /// The request ran past its deadline.
    #[error(
        "the request ran past its deadline (grpc.request_timeout or the client's grpc-timeout)"
    )]
    DeadlineExceeded,
    /// The state does not allow the change (e.g. the maintenance window limit is reached).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something else than a device is not there (e.g. a maintenance window).
    #[error("{0}")]
    NotFound(String),
    /// The caller's key may not do this (outside its role or its scope).
    #[error("{0}")]
    PermissionDenied(String),
    /// citytel is shutting down or cannot store anything now.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed that the caller cannot fix (e.g. encoding an export).
    #[error("{0}")]
    Internal(String),
    /// Stored data could not be read.
    #[error(transparent)]
    Storage(#[from] citytel_storage::series::ReadError),
    /// The device exists but has no such metric.
    #[error("device {device:?} has no metric {metric:?}")]
    MetricNotFound {
        /// The device.
        device: String,
        /// The metric.
        metric: String,
    },
}

impl From<crate::query::QueryError> for ApiError {
    fn from(e: crate::query::QueryError) -> Self {
        match e {
            crate::query::QueryError::Invalid(m) => ApiError::InvalidArgument(m),
            crate::query::QueryError::UnknownDevice(d) => ApiError::DeviceNotFound(d),
        }
    }
}

impl From<crate::reports::ReportError> for ApiError {
    fn from(e: crate::reports::ReportError) -> Self {
        use crate::reports::ReportError as E;
        match e {
            E::Invalid(m) => ApiError::InvalidArgument(m),
            E::NoDistrict(_) => ApiError::NotFound(e.to_string()),
            E::Expired => ApiError::DeadlineExceeded,
            E::Read(r) => ApiError::Storage(r),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            ApiError::DeviceNotFound(_)
            | ApiError::MetricNotFound { .. }
            | ApiError::NotFound(_) => tonic::Status::not_found(message),
            ApiError::Storage(_) | ApiError::Internal(_) => tonic::Status::internal(message),
            ApiError::DeadlineExceeded => tonic::Status::deadline_exceeded(message),
            ApiError::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            ApiError::Unavailable(_) => tonic::Status::unavailable(message),
            ApiError::PermissionDenied(_) => {
                metrics::counter!(
                    crate::telemetry::metrics::API_REQUESTS_REFUSED_TOTAL,
                    "reason" => "permission"
                )
                .increment(1);
                tonic::Status::permission_denied(message)
            }
        }
    }
}
