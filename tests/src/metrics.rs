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
    /// if the scrape has it.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// The value of `series`. Panics, naming it and the series of the same metric that the
    /// scrape does have, when it is missing: a renamed metric or label must fail a test, not
    /// read as 0.
    pub fn value(&self, series: &str) -> f64 {
        self.get(series).unwrap_or_else(|| {
            let name = metric_name(series);
            let same_name: Vec<&str> = self.series_of(name).map(|(s, _)| s.as_str()).collect();
            panic!(
                "metric {series} is not in the scrape; series of {name}: {same_name:?}\n{}",
                self.text
            )
        })
    }

    /// The sum of every series of metric `name`, across labels. Panics, naming it, when the
    /// scrape has no series of that name.
    pub fn sum(&self, name: &str) -> f64 {
        let values: Vec<f64> = self.series_of(name).map(|(_, v)| *v).collect();
        assert!(
            !values.is_empty(),
            "metric {name} is not in the scrape\n{}",
            self.text
        );
        values.iter().sum()
    }

    fn series_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a String, &'a f64)> {
        self.samples
            .iter()
            .filter(move |(series, _)| metric_name(series) == name)
    }

    /// Every series name with its labels.
    pub fn series(&self) -> impl Iterator<Item = &str> {
        self.samples.keys().map(String::as_str)
    }
}

/// The metric name of a series: what comes before its labels.
fn metric_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "# TYPE a_total counter\na_total{reason=\"x\"} 2\na_total{reason=\"y\"} 3\nb 1\n";

    #[test]
    fn series_are_read_by_name_and_labels() {
        let scrape = Scrape::parse(TEXT);
        assert_eq!(scrape.value("a_total{reason=\"y\"}"), 3.0);
        assert_eq!(scrape.value("b"), 1.0);
        assert_eq!(scrape.sum("a_total"), 5.0);
        assert_eq!(scrape.get("a_total{reason=\"z\"}"), None);
    }

    #[test]
    #[should_panic(expected = "metric a_total{reason=\"z\"} is not in the scrape")]
    fn a_missing_series_fails_naming_it() {
        Scrape::parse(TEXT).value("a_total{reason=\"z\"}");
    }

    #[test]
    #[should_panic(expected = "metric renamed_total is not in the scrape")]
    fn a_missing_metric_fails_its_sum() {
        Scrape::parse(TEXT).sum("renamed_total");
    }
}
