//! A real VictoriaMetrics (Debian package `victoria-metrics`) on a free loopback port: it accepts
//! InfluxDB's `/api/v2/write` requests, so citytel's InfluxDB sink can be tested against it, and
//! answers `/api/v1/export` with every raw value it stores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use citytel_testkit::http::{HttpConn, HttpError, Response, StatusCode, path_with_query};
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::process::{ChildGuard, SpawnOptions};
use citytel_testkit::wait::Wait;
use nix::sys::signal::Signal;

/// Where Debian installs VictoriaMetrics.
pub const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// One exported series: its labels (`__name__` included) and its raw points, as exported
/// (a timestamp stored twice appears twice).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// (timestamp in ms, value).
    pub points: Vec<(i64, f64)>,
}

/// A running VictoriaMetrics, killed on drop.
pub struct VictoriaMetrics {
    child: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
    data: PathBuf,
}

impl VictoriaMetrics {
    /// Starts VictoriaMetrics on a free port with its storage in `dir`. Writes of the same
    /// series and timestamp are deduplicated (`-dedup.minScrapeInterval=1ms`), as InfluxDB
    /// overwrites them. Panics with a clear message if the package is not installed.
    pub async fn start(dir: &Path) -> VictoriaMetrics {
        Self::start_on(dir, free_port().expect("a free port")).await
    }

    /// Starts VictoriaMetrics on `port` (e.g. to restart it where it was).
    pub async fn start_on(dir: &Path, port: u16) -> VictoriaMetrics {
        assert!(
            Path::new(VICTORIA_METRICS).exists(),
            "interop tests need VictoriaMetrics: install it with \
             `apt-get install -y victoria-metrics` (Debian package), or run the tests without \
             `--features interop`"
        );
        let data = dir.join("victoria-metrics");
        let mut cmd = Command::new(VICTORIA_METRICS);
        cmd.arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .args([
                "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn("victoria-metrics", &mut cmd, SpawnOptions::default())
            .expect("start victoria-metrics");
        let vm = VictoriaMetrics { child, port, data };
        let mut wait = Wait::new(
            format!("victoria-metrics answering /health on {port}"),
            Duration::from_secs(30),
        )
        .every(Duration::from_millis(20));
        while !vm
            .get("/health")
            .await
            .is_ok_and(|r| r.status == StatusCode::OK)
        {
            if let Err(e) = wait.retry().await {
                panic!("{e}");
            }
        }
        vm
    }

    /// `http://127.0.0.1:{port}`, the base URL for the sink.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its storage directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stops it gracefully (SIGINT: it writes what it holds in memory) and waits; after 30 s it
    /// is killed.
    pub fn stop(mut self) {
        if let Err(e) = self
            .child
            .stop_with(Signal::SIGINT, Duration::from_secs(30))
        {
            eprintln!("stopping victoria-metrics: {e}");
        }
    }

    /// Every series whose name matches the regular expression `name_re`, raw points included,
    /// after making recent writes searchable.
    pub async fn export(&self, name_re: &str) -> Vec<Series> {
        let flush = "/internal/force_flush";
        self.get(flush)
            .await
            .and_then(|r| r.expect(StatusCode::OK, flush))
            .unwrap_or_else(|e| panic!("{e}"));
        let selector = format!("{{__name__=~\"{name_re}\"}}");
        let path = path_with_query("/api/v1/export", &[("match[]", &selector)]);
        let response = self
            .get(&path)
            .await
            .and_then(|r| r.expect(StatusCode::OK, "export"))
            .unwrap_or_else(|e| panic!("{e}"));
        response
            .body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse_series)
            .collect()
    }

    /// A GET on a connection of its own.
    async fn get(&self, path: &str) -> Result<Response, HttpError> {
        HttpConn::new(loopback(self.port)).get(path).await
    }
}

fn parse_series(line: &[u8]) -> Series {
    let v: serde_json::Value = serde_json::from_slice(line).expect("export line is JSON");
    let labels = v["metric"]
        .as_object()
        .expect("metric labels")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let values = v["values"].as_array().expect("values");
    let times = v["timestamps"].as_array().expect("timestamps");
    assert_eq!(values.len(), times.len());
    let points = times
        .iter()
        .zip(values)
        .map(|(t, v)| {
            (
                t.as_i64().expect("ms timestamp"),
                v.as_f64().expect("number"),
            )
        })
        .collect();
    Series { labels, points }
}
