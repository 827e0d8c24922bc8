//! VictoriaMetrics (single node, Debian package `victoria-metrics`) as a peer.
//!
//! - Server: loopback on a free port, a throwaway `-storageDataPath`, `-retentionPeriod 100y`,
//!   `-search.disableCache` (repeated queries measure the work, not a response cache),
//!   `-search.latencyOffset=0s` and a large `-search.maxPointsPerTimeseries`.
//! - Import: the line protocol POSTed to `/write` in ~16 MB requests cut at line boundaries, 4 in
//!   flight. The import ends when every response has returned *and* `vm_rows_added_to_storage_total`
//!   in `/metrics` has reached the dataset's value count: VictoriaMetrics holds every value in
//!   its storage. Making them searchable (`/internal/force_flush`) is not timed.
//! - Disk: `/internal/force_flush`, `/internal/force_merge`, then the data dir's size once it has
//!   not changed for 10 s.
//! - Queries over HTTP: (a) `/api/v1/export` of the one series (raw points), (b) `/api/v1/query_range`
//!   of `avg(avg_over_time(..[5m]))` with a 5 m step, (c) `/api/v1/query` of
//!   `last_over_time({__name__=~"..."}[1d])` at the window's end. Each round trip is timed until
//!   the body has been received; parsing and checking the answer are not timed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use citytel_testkit::http::{HttpConn, StatusCode, path_with_query};
use citytel_testkit::metrics::Scrape;
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::process::ChildGuard;
use citytel_testkit::wait::Wait;
use serde_json::Value;

use super::write::{Batching, post_dataset};
use super::{Imported, System, check_count};
use crate::dataset::{Dataset, QUERY_DEVICE, QUERY_MEASUREMENT, QUERY_METRIC, QUERY_STEP};
use crate::measure::{self, DiskUsage};
use crate::process;

const BINARY: &str = "/usr/bin/victoria-metrics";
const PACKAGE: &str = "victoria-metrics";
const IN_FLIGHT: usize = 4;
const ROWS_ADDED: &str = "vm_rows_added_to_storage_total";
/// How long the values may take to reach storage after the last write.
const STORED_LIMIT: Duration = Duration::from_secs(300);

/// A running VictoriaMetrics.
pub struct VictoriaMetrics {
    data: PathBuf,
    conn: HttpConn,
    addr: SocketAddr,
    server: ChildGuard,
}

impl System for VictoriaMetrics {
    const NAME: &'static str = "victoriametrics";

    async fn start(dir: &Path) -> Result<Self> {
        process::ensure_debian_package(Path::new(BINARY), PACKAGE)?;
        let data = dir.join("data");
        let addr = loopback(free_port().context("finding a free port")?);
        let mut cmd = Command::new(BINARY);
        cmd.arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr={addr}"))
            .args([
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-search.latencyOffset=0s",
                "-search.maxPointsPerTimeseries=1000000",
                "-loggerLevel=WARN",
            ]);
        let server = process::spawn(Self::NAME, &mut cmd, &dir.join("server.log"), false)?;
        let mut vm = VictoriaMetrics {
            data,
            conn: HttpConn::new(addr),
            addr,
            server,
        };
        vm.wait_healthy().await?;
        Ok(vm)
    }

    async fn import(&mut self, ds: &Dataset) -> Result<Imported> {
        let batching = Batching {
            max_lines: usize::MAX,
            in_flight: IN_FLIGHT,
        };
        post_dataset(Self::NAME, self.addr, "/write", ds, batching).await?;
        let mut wait = Wait::new(format!("{ROWS_ADDED} reaching {}", ds.values), STORED_LIMIT)
            .every(Duration::from_millis(20));
        loop {
            let added = self.rows_added().await?;
            if added >= ds.values {
                return Ok(Imported::default());
            }
            self.server.check_running()?;
            wait.retry()
                .await
                .with_context(|| format!("{ROWS_ADDED} is {added} after the last write"))?;
        }
    }

    async fn disk_bytes(&mut self) -> Result<DiskUsage> {
        for path in ["/internal/force_flush", "/internal/force_merge"] {
            self.conn.get(path).await?.expect(StatusCode::OK, path)?;
        }
        measure::wait_dir_stable(
            Self::NAME,
            &self.data,
            Duration::from_secs(10),
            Duration::from_secs(600),
            |_| false,
        )
        .await
    }

    async fn query_a(&mut self, ds: &Dataset) -> Result<Duration> {
        let selector =
            format!("{QUERY_MEASUREMENT}_{QUERY_METRIC}{{device_id=\"{QUERY_DEVICE}\"}}");
        let path = path_with_query(
            "/api/v1/export",
            &[
                ("match[]", &selector),
                ("start", &seconds(ds.start_ms())),
                ("end", &seconds(ds.last_ms())),
            ],
        );
        let (body, elapsed) = self.timed_get(&path).await?;
        let mut points = 0u64;
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let block: Value = serde_json::from_slice(line).context("export line is not JSON")?;
            let device = &block["metric"]["device_id"];
            if device != QUERY_DEVICE {
                bail!("export returned a series of {device}");
            }
            points += array_len(&block["values"], "values")?;
        }
        let n = ds.expected_a_points;
        check_count("raw points of one series", points, n, n)?;
        Ok(elapsed)
    }

    async fn query_b(&mut self, ds: &Dataset) -> Result<Duration> {
        let query = format!("avg(avg_over_time({QUERY_MEASUREMENT}_{QUERY_METRIC}[5m]))");
        let path = path_with_query(
            "/api/v1/query_range",
            &[
                ("query", &query),
                ("start", &seconds(ds.start_ms())),
                ("end", &seconds(ds.last_ms())),
                ("step", &QUERY_STEP.as_secs().to_string()),
            ],
        );
        let (body, elapsed) = self.timed_get(&path).await?;
        let result = prom_result(&body)?;
        let series = array_len(&result, "result")?;
        check_count("series of the cross-device average", series, 1, 1)?;
        let points = array_len(&result[0]["values"], "values")?;
        let n = ds.expected_b_buckets;
        check_count("5-minute averages", points, n.saturating_sub(1), n + 1)?;
        Ok(elapsed)
    }

    async fn query_c(&mut self, ds: &Dataset) -> Result<Duration> {
        let query = r#"last_over_time({__name__=~"(cabinet|small_cell|sensor)_.+"}[1d])"#;
        let path = path_with_query(
            "/api/v1/query",
            &[("query", query), ("time", &seconds(ds.last_ms()))],
        );
        let (body, elapsed) = self.timed_get(&path).await?;
        let series = array_len(&prom_result(&body)?, "result")?;
        check_count("latest values", series, ds.series, ds.series)?;
        Ok(elapsed)
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "-search.disableCache: no response cache, repeated queries do the work".into(),
            "import done when every /write returned and vm_rows_added_to_storage_total reached the value count".into(),
            "query latency: request sent until the whole body is received".into(),
        ]
    }
}

impl VictoriaMetrics {
    async fn wait_healthy(&mut self) -> Result<()> {
        let mut wait = Wait::new("victoriametrics healthy", Duration::from_secs(60))
            .every(Duration::from_millis(50));
        loop {
            self.server.check_running()?;
            if let Ok(r) = self.conn.get("/health").await
                && r.status == StatusCode::OK
            {
                return Ok(());
            }
            if let Err(e) = wait.retry().await {
                bail!("{e}\n{}", self.server.log_tail());
            }
        }
    }

    /// Its HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (for its memory use in /proc).
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// `http://{addr}`, for clients such as citytel's InfluxDB sink.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `vm_rows_added_to_storage_total`: values held in its storage.
    pub async fn rows_added(&mut self) -> Result<u64> {
        let r = self.conn.get("/metrics").await?;
        let r = r.expect(StatusCode::OK, "/metrics")?;
        let value = Scrape::parse(&String::from_utf8_lossy(&r.body))
            .get(ROWS_ADDED)
            .with_context(|| format!("/metrics has no {ROWS_ADDED}"))?;
        Ok(value as u64)
    }

    async fn timed_get(&mut self, path: &str) -> Result<(bytes::Bytes, Duration)> {
        let t0 = Instant::now();
        let response = self.conn.get(path).await?;
        let elapsed = t0.elapsed();
        let response = response.expect(StatusCode::OK, path)?;
        Ok((response.body, elapsed))
    }
}

/// ms since the epoch as Prometheus API seconds.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `data.result` of a Prometheus API answer, after checking `status`.
fn prom_result(body: &[u8]) -> Result<Value> {
    let mut v: Value = serde_json::from_slice(body).context("answer is not JSON")?;
    if v["status"] != "success" {
        bail!("query failed: {v}");
    }
    Ok(v["data"]["result"].take())
}

fn array_len(v: &Value, what: &str) -> Result<u64> {
    v.as_array()
        .map(|a| a.len() as u64)
        .with_context(|| format!("answer has no `{what}` array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_seconds() {
        assert_eq!(seconds(1_795_564_800_000), "1795564800.000");
        assert_eq!(seconds(1_795_651_190_123), "1795651190.123");
    }
}
