//! Reading a Prometheus endpoint (citytel's, VictoriaMetrics' own): fetch the text format and
//! look up samples by series.
//!
//! For tests, [`Scrape::value`] and [`Scrape::sum`] fail, naming the metric, when it is missing:
//! a renamed metric must fail its test, not read as 0. [`Scrape::get`] is the lookup for callers
//! that decide themselves what an absent series means.

use std::collections::BTreeMap;

use crate::http::{self, StatusCode};

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

    /// Parses Prometheus' text format: every sample line, with label values that may hold
    /// spaces and an optional timestamp after the value.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(sample)
            .map(|(series, value)| (series.to_string(), value))
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

/// One sample line as (series, value).
fn sample(line: &str) -> Option<(&str, f64)> {
    let line = line.trim();
    let end = match line.find('{') {
        Some(open) => open + labels_len(&line[open..])?,
        None => line.find(char::is_whitespace)?,
    };
    let (series, rest) = line.split_at(end);
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((series, value))
}

/// The length of the label set at the start of `labels` (`{...}`), quoted values and their
/// escapes included.
fn labels_len(labels: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
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
    fn label_values_may_hold_spaces_braces_and_quotes_and_a_timestamp_may_follow() {
        let text = "info{v=\"a b} \\\"c\\\"\"} 1\nc_total 7 1700000000000\nd NaN\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.get(r#"info{v="a b} \"c\""}"#), Some(1.0));
        assert_eq!(scrape.get("c_total"), Some(7.0));
        assert!(scrape.get("d").is_some_and(f64::is_nan));
        assert_eq!(scrape.series().count(), 3);
    }

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
