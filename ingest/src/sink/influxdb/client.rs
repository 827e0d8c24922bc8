//! Sending one request: gzip the lines, post them with the `influxdb2` client, classify the
//! outcome.
//!
//! The client comes from `influxdb2::ClientBuilder::with_builder`, given a `reqwest` builder with
//! the timeouts and a `Content-Encoding: gzip` default header; bodies are compressed here, at
//! flate2's fast level, and posted with `Client::write_line_protocol_with_precision`. (The
//! crate's own gzip path compresses a `DataPoint` stream at the best, slowest level and is only
//! reachable through `Client::write`.) Its `RequestError::Http` carries the status code, which is
//! all the classification needs.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use influxdb2::RequestError;
use influxdb2::api::write::TimestampPrecision;

use super::config::InfluxDbConfig;
use crate::sink::stats::ErrorClass;

/// A failed request: its class and a message for logs and dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What kind of failure.
    pub class: ErrorClass,
    /// Status and server message, or the transport error.
    pub message: String,
}

/// A client of one server, org and bucket.
pub struct Client {
    inner: influxdb2::Client,
    bucket: String,
}

impl Client {
    /// A client for `config` with `token` (empty: no Authorization header).
    pub fn new(config: &InfluxDbConfig, token: &str) -> Result<Client, String> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        let http = reqwest::ClientBuilder::new()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .default_headers(headers);
        let inner =
            influxdb2::ClientBuilder::with_builder(http, config.url.clone(), &config.org, token)
                .build()
                .map_err(|e| format!("cannot build the InfluxDB client: {e}"))?;
        Ok(Client {
            inner,
            bucket: config.bucket.clone(),
        })
    }

    /// Posts lines already compressed with [`gzip`].
    pub async fn send_gzipped(&self, body: bytes::Bytes) -> Result<(), SendError> {
        self.inner
            .write_line_protocol_with_precision(
                &self.inner.org,
                &self.bucket,
                body,
                TimestampPrecision::Nanoseconds,
            )
            .await
            .map_err(classify)
    }
}

/// Compresses `lines` with gzip at the fast level.
pub fn gzip(lines: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(lines.len() / 4 + 64),
        Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(lines);
    encoder.finish().unwrap_or_default()
}

/// The class of a failed request.
pub fn classify(error: RequestError) -> SendError {
    match error {
        RequestError::Http { status, text } => SendError {
            class: class_of_status(status.as_u16()),
            message: format!("HTTP {}: {}", status.as_u16(), text.trim()),
        },
        RequestError::ReqwestProcessing { source } => SendError {
            class: if source.is_timeout() {
                ErrorClass::Timeout
            } else {
                ErrorClass::Network
            },
            message: source.to_string(),
        },
        other => SendError {
            class: ErrorClass::Network,
            message: other.to_string(),
        },
    }
}

/// The class of an HTTP status other than 204.
pub fn class_of_status(status: u16) -> ErrorClass {
    match status {
        400 | 413 => ErrorClass::BadRequest,
        401 | 403 => ErrorClass::Auth,
        408 => ErrorClass::Timeout,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Server,
        _ => ErrorClass::Other,
    }
}
