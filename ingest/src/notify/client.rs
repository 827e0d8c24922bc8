//! One HTTP request to a receiver, and what its answer means: confirmed (2xx), to be retried
//! (the connection failed, no answer in time, 408, 429 or 5xx), or refused (any other answer:
//! the receiver will not take this body, and sending it again changes nothing).

use serde::Serialize;

/// How a request ended, when not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying.
    Retry(String),
    /// Refused for good.
    Refused(String),
}

/// A client of receivers, with the configured timeout.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// A client whose requests take at most `timeout`.
    pub fn new(timeout: std::time::Duration) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("citytel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client { http })
    }

    /// Posts `body` as JSON to `url`, with an `Idempotency-Key` header when one is given.
    pub async fn post(
        &self,
        url: &str,
        body: &impl Serialize,
        idempotency_key: Option<&str>,
    ) -> Result<(), Failure> {
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::Refused(e.to_string()))?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|e| {
            Failure::Retry(if e.is_timeout() {
                format!("no answer in time: {e}")
            } else {
                format!("cannot reach it: {e}")
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let message = format!("HTTP {}: {}", status.as_u16(), text.trim());
        match status.as_u16() {
            408 | 429 | 500..=599 => Err(Failure::Retry(message)),
            _ => Err(Failure::Refused(message)),
        }
    }
}
