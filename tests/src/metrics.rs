//! Reading citytel's Prometheus endpoint: fetch the text format and look up samples.

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One scrape: every sample line, keyed by series (`name{labels}` exactly as rendered).
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The raw text.
    pub text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// Fetches `url` (`http://HOST:PORT/metrics`) with a plain HTTP/1.0 GET.
    pub async fn fetch(url: &str) -> Scrape {
        let rest = url.strip_prefix("http://").expect("an http:// url");
        let (authority, path) = rest.split_once('/').expect("a path");
        let mut stream = TcpStream::connect(authority).await.expect("connect");
        let request = format!("GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        Scrape::parse(body)
    }

    /// Parses Prometheus' text format.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of `series` (e.g. `citytel_messages_rejected_total{reason="empty_payload"}`),
    /// or 0 when it has not been recorded yet (Prometheus counters start at 0).
    pub fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// The sum of every series of metric `name`, across labels.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                series.as_str() == name || series.starts_with(&format!("{name}{{"))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Every series name with its labels.
    pub fn series(&self) -> impl Iterator<Item = &str> {
        self.samples.keys().map(String::as_str)
    }
}
