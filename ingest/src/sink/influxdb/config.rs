//! `[sink.influxdb]`: where and how the InfluxDB sink writes. The token itself is never part of
//! the configuration (only where to find it), so printing the configuration cannot leak it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a sink does when its backlog passes `max_backlog_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BacklogPolicy {
    /// Stop acknowledging (MQTT backpressure) until the backlog is back under the limit.
    Backpressure,
    /// Keep ingesting; the sink skips its oldest WAL segments (counted as dropped).
    DropOldest,
}

impl BacklogPolicy {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            BacklogPolicy::Backpressure => "backpressure",
            BacklogPolicy::DropOldest => "drop_oldest",
        }
    }
}

/// `[sink.influxdb]`: the InfluxDB v2 sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbConfig {
    /// Whether the sink runs.
    pub enabled: bool,
    /// Base URL of the server (`http://host:8086`); `/api/v2/write` is appended.
    pub url: String,
    /// Organization.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// Environment variable holding the API token (used when `token_file` is not set).
    pub token_env: String,
    /// File holding the API token (trimmed); read again after a 401/403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Most points per request.
    pub batch_size: usize,
    /// Requests sent at the same time (the cursor still only moves past batches confirmed in
    /// order).
    pub max_in_flight: usize,
    /// How long a request waits for more points before it is sent with fewer than `batch_size`.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Time for a whole request (connect, send, answer).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time to establish a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// First wait before a retry; doubles per failure up to `retry_max`, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest wait between retries (also the pace of a held sink).
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// WAL bytes kept for the sink before `backlog_policy` applies.
    pub max_backlog_bytes: u64,
    /// What happens past `max_backlog_bytes`: "backpressure" or "drop_oldest".
    pub backlog_policy: BacklogPolicy,
    /// The receive time is written as a field when it differs from the reading's time by more.
    #[serde(with = "humantime_serde")]
    pub receive_time_threshold: Duration,
    /// At shutdown, how long the sink may keep sending its backlog.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

/// An invalid `[sink.influxdb]` value: the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, e.g. `sink.influxdb.url`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl InfluxDbConfig {
    /// Checks the values of an enabled sink.
    pub fn check(&self, wal_segment_bytes: u64) -> Result<(), Invalid> {
        if !self.enabled {
            return Ok(());
        }
        let invalid = |key, message: &str| {
            Err(Invalid {
                key,
                message: message.to_string(),
            })
        };
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            || reqwest::Url::parse(&self.url).is_err()
        {
            return invalid("sink.influxdb.url", "must be an http:// or https:// URL");
        }
        if self.org.is_empty() {
            return invalid("sink.influxdb.org", "must not be empty");
        }
        if self.bucket.is_empty() {
            return invalid("sink.influxdb.bucket", "must not be empty");
        }
        if self.token_file.is_none() && self.token_env.is_empty() {
            return invalid(
                "sink.influxdb.token_env",
                "must name a variable when no token_file is set",
            );
        }
        if self.batch_size == 0 {
            return invalid("sink.influxdb.batch_size", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return invalid("sink.influxdb.max_in_flight", "must be at least 1");
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return invalid("sink.influxdb.request_timeout", "timeouts must be above 0");
        }
        if self.retry_initial.is_zero() || self.retry_initial > self.retry_max {
            return invalid(
                "sink.influxdb.retry_initial",
                "must be above 0 and at most retry_max",
            );
        }
        if self.max_backlog_bytes < wal_segment_bytes {
            return invalid(
                "sink.influxdb.max_backlog_bytes",
                "must be at least storage.wal_segment_bytes",
            );
        }
        Ok(())
    }

    /// Reads the token from `token_file`, else from the variable `token_env` (empty if unset:
    /// servers without authentication, such as VictoriaMetrics, need none).
    pub fn token(&self) -> std::io::Result<String> {
        match &self.token_file {
            Some(path) => Ok(std::fs::read_to_string(path)?.trim().to_string()),
            None => Ok(std::env::var(&self.token_env).unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> InfluxDbConfig {
        let mut config = crate::config::load_str(None, &[])
            .expect("defaults")
            .sink
            .influxdb;
        config.enabled = true;
        config
    }

    #[test]
    fn the_shipped_section_is_off_and_valid_when_enabled() {
        let shipped = crate::config::load_str(None, &[]).unwrap().sink.influxdb;
        assert!(!shipped.enabled);
        assert_eq!(shipped.backlog_policy, BacklogPolicy::Backpressure);
        assert_eq!(enabled().check(64 << 20), Ok(()));
    }

    #[test]
    fn invalid_values_name_their_key() {
        type Change = fn(&mut InfluxDbConfig);
        let cases: [(Change, &str); 7] = [
            (|c| c.url = "influx:8086".into(), "sink.influxdb.url"),
            (|c| c.org.clear(), "sink.influxdb.org"),
            (|c| c.bucket.clear(), "sink.influxdb.bucket"),
            (|c| c.batch_size = 0, "sink.influxdb.batch_size"),
            (|c| c.max_in_flight = 0, "sink.influxdb.max_in_flight"),
            (
                |c| c.retry_initial = Duration::from_secs(60),
                "sink.influxdb.retry_initial",
            ),
            (
                |c| c.max_backlog_bytes = 1,
                "sink.influxdb.max_backlog_bytes",
            ),
        ];
        for (change, key) in cases {
            let mut config = enabled();
            change(&mut config);
            assert_eq!(config.check(64 << 20).map_err(|e| e.key), Err(key));
            config.enabled = false;
            assert_eq!(
                config.check(64 << 20),
                Ok(()),
                "a disabled sink is not checked"
            );
        }
    }

    #[test]
    fn the_token_comes_from_the_file_and_is_not_in_the_printed_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let config = crate::config::load_str(
            None,
            &[
                "sink.influxdb.enabled=true".into(),
                format!("sink.influxdb.token_file=\"{}\"", path.display()),
            ],
        )
        .unwrap();
        assert_eq!(config.sink.influxdb.token().unwrap(), "s3cret-token");
        assert!(!config.to_redacted_toml().contains("s3cret"));
        assert!(!format!("{:?}", config.validate().unwrap()).contains("s3cret"));
    }
}
