//! Reading citytel's Prometheus endpoint: fetch the text format and look up samples.

use std::collections::BTreeMap;

use citytel_testkit::http::{self, StatusCode};

/// One scrape: every sample line, keyed by series (`name{labels}` exactly as rendered).
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The raw text.
    pub text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// Fetches `url` (`http://HOST:PORT/metrics`).
    pub async fn fetch(url: &str) -> Scrape {
        let response = http::get(url)
            .await
            .and_then(|r| r.expect(StatusCode::OK, url))
            .unwrap_or_else(|e| panic!("{e}"));
        Scrape::parse(&String::from_utf8_lossy(&response.body))
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
