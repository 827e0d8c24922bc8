//! Why a load run fails: [`LoadError`].

use std::time::Duration;

use super::template::TemplateError;

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting is out of range.
    #[error("invalid load configuration: {0}")]
    Config(String),
    /// A payload template could not be built or patched.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The TCP connection failed.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// CONNACK did not arrive in time.
    #[error("no CONNACK from {broker} within {}", humantime::format_duration(*.waited))]
    ConnectTimeout {
        /// The server.
        broker: String,
        /// How long the connection waited.
        waited: Duration,
    },
    /// The server refused the connection.
    #[error("the server refused the connection: {0}")]
    Refused(String),
    /// The server broke the protocol or closed the connection.
    #[error("{0}")]
    Protocol(String),
    /// A socket error.
    #[error("socket error: {0}")]
    Io(String),
}

impl LoadError {
    /// A socket error, from the I/O error.
    pub(super) fn io(e: std::io::Error) -> Self {
        LoadError::Io(e.to_string())
    }
}
