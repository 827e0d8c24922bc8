//! InfluxDB 1.x (Debian package `influxdb`, 1.6) as a peer.
//!
//! - Server: a generated config file with every listener on loopback and a free port (HTTP API
//!   and the RPC service used by backup/restore), meta, data and WAL in the throwaway dir, the
//!   in-memory index (1.6's default), reporting, monitoring, continuous queries, retention
//!   enforcement and the query and HTTP logs off, and short cold durations
//!   (`cache-snapshot-write-cold-duration = "5s"`, `compact-full-write-cold-duration = "10s"`) so
//!   the shard is fully compacted soon after the import.
//! - Import: `POST /write?db=bench&precision=ns` in batches of 5,000 lines, 4 in flight. The import
//!   ends when every request has answered 204: the values are then in the WAL and cache and
//!   queryable.
//! - Disk: the whole throwaway dir (meta, data, WAL) once its size has not changed for 15 s
//!   (longer than both cold durations) and no compaction temporary file exists.
//! - Queries: InfluxQL over `GET /query`, timed until the whole body is received.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use citytel_testkit::http::{HttpConn, StatusCode, path_with_query};
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::process::ChildGuard;
use citytel_testkit::wait::Wait;
use serde_json::Value;

use super::write::{Batching, post_dataset};
use super::{Imported, System, check_count};
use crate::dataset::{Dataset, QUERY_DEVICE, QUERY_MEASUREMENT, QUERY_METRIC};
use crate::measure::{self, DiskUsage};
use crate::process;

const BINARY: &str = "/usr/bin/influxd";
const PACKAGE: &str = "influxdb";
const DATABASE: &str = "bench";
const BATCH_LINES: usize = 5_000;
const IN_FLIGHT: usize = 4;

/// A running InfluxDB.
pub struct InfluxDb {
    dir: PathBuf,
    conn: HttpConn,
    addr: SocketAddr,
    server: ChildGuard,
}

/// The configuration file for a server under `dir` listening on `http` and `rpc`.
fn config(dir: &Path, http: SocketAddr, rpc: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"# Written by citytel-bench: loopback only, throwaway directories.
reporting-disabled = true
bind-address = "{rpc}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false
  cache-snapshot-write-cold-duration = "5s"
  compact-full-write-cold-duration = "10s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "{http}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"#
    )
}

impl System for InfluxDb {
    const NAME: &'static str = "influxdb";

    async fn start(dir: &Path) -> Result<Self> {
        process::ensure_debian_package(Path::new(BINARY), PACKAGE)?;
        let http = loopback(free_port().context("finding a free port")?);
        let rpc = loopback(free_port().context("finding a free port")?);
        let store = dir.join("store");
        std::fs::create_dir_all(&store)?;
        let config_path = dir.join("influxdb.conf");
        std::fs::write(&config_path, config(&store, http, rpc))
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut cmd = Command::new(BINARY);
        cmd.arg("-config").arg(&config_path);
        let server = process::spawn(Self::NAME, &mut cmd, &dir.join("server.log"), false)?;
        let mut influx = InfluxDb {
            dir: store,
            conn: HttpConn::new(http),
            addr: http,
            server,
        };
        influx.wait_ping().await?;
        let create = path_with_query("/query", &[("q", &format!("CREATE DATABASE {DATABASE}"))]);
        let r = influx.conn.post(&create, Bytes::new()).await?;
        let r = r.expect(StatusCode::OK, "CREATE DATABASE")?;
        influxql_results(&r.body).context("CREATE DATABASE")?;
        Ok(influx)
    }

    async fn import(&mut self, ds: &Dataset) -> Result<Imported> {
        let batching = Batching {
            max_lines: BATCH_LINES,
            in_flight: IN_FLIGHT,
        };
        let path = path_with_query("/write", &[("db", DATABASE), ("precision", "ns")]);
        post_dataset(Self::NAME, self.addr, &path, ds, batching).await?;
        Ok(Imported::default())
    }

    async fn disk_bytes(&mut self) -> Result<DiskUsage> {
        let bytes = measure::wait_dir_stable(
            Self::NAME,
            &self.dir,
            Duration::from_secs(15),
            Duration::from_secs(900),
            compacting,
        )
        .await?;
        self.server.check_running()?;
        Ok(bytes)
    }

    async fn query_a(&mut self, ds: &Dataset) -> Result<Duration> {
        let q = format!(
            "SELECT {QUERY_METRIC} FROM {QUERY_MEASUREMENT} WHERE device_id='{QUERY_DEVICE}' \
             AND time >= {} AND time <= {}",
            ds.first_timestamp_ns, ds.last_timestamp_ns
        );
        let (results, elapsed) = self.query(&q).await?;
        let series = series_of(&results)?;
        let mut points = 0;
        for s in series {
            points += values_of(s)?.len() as u64;
        }
        let n = ds.expected_a_points;
        check_count("raw points of one series", points, n, n)?;
        Ok(elapsed)
    }

    async fn query_b(&mut self, ds: &Dataset) -> Result<Duration> {
        let bounds = format!(
            "time >= {} AND time <= {}",
            ds.first_timestamp_ns, ds.last_timestamp_ns
        );
        let q = format!(
            "SELECT mean(m) FROM (SELECT mean({QUERY_METRIC}) AS m FROM {QUERY_MEASUREMENT} \
             WHERE {bounds} GROUP BY time(5m), device_id) WHERE {bounds} GROUP BY time(5m)"
        );
        let (results, elapsed) = self.query(&q).await?;
        let series = series_of(&results)?;
        check_count(
            "series of the cross-device average",
            series.len() as u64,
            1,
            1,
        )?;
        let buckets = values_of(&series[0])?
            .iter()
            .filter(|row| row.get(1).is_some_and(|v| !v.is_null()))
            .count() as u64;
        let n = ds.expected_b_buckets;
        check_count("5-minute averages", buckets, n.saturating_sub(1), n + 1)?;
        Ok(elapsed)
    }

    async fn query_c(&mut self, ds: &Dataset) -> Result<Duration> {
        let q = "SELECT last(*) FROM cabinet, small_cell, sensor GROUP BY device_id";
        let (results, elapsed) = self.query(q).await?;
        let series = series_of(&results)?;
        check_count(
            "devices with latest values",
            series.len() as u64,
            ds.devices,
            ds.devices,
        )?;
        let mut values = 0u64;
        for s in series {
            for row in values_of(s)? {
                let row = row.as_array().context("a row is not an array")?;
                values += row.iter().skip(1).filter(|v| !v.is_null()).count() as u64;
            }
        }
        check_count("latest values", values, ds.series, ds.series)?;
        Ok(elapsed)
    }

    fn notes(&self) -> Vec<String> {
        vec![
            "index-version inmem; cache-snapshot-write-cold-duration 5s; compact-full-write-cold-duration 10s".into(),
            "import done when every /write answered 204 (values in WAL and cache, queryable)".into(),
            "query latency: request sent until the whole body is received".into(),
        ]
    }
}

impl InfluxDb {
    async fn wait_ping(&mut self) -> Result<()> {
        let mut wait = Wait::new("influxdb answering /ping", Duration::from_secs(60))
            .every(Duration::from_millis(50));
        loop {
            self.server.check_running()?;
            if let Ok(r) = self.conn.get("/ping").await
                && r.status == StatusCode::NO_CONTENT
            {
                return Ok(());
            }
            if let Err(e) = wait.retry().await {
                bail!("{e}\n{}", self.server.log_tail());
            }
        }
    }

    /// Runs one InfluxQL statement; returns its result object and the round trip.
    async fn query(&mut self, q: &str) -> Result<(Value, Duration)> {
        let path = path_with_query("/query", &[("db", DATABASE), ("epoch", "ms"), ("q", q)]);
        let t0 = Instant::now();
        let response = self.conn.get(&path).await?;
        let elapsed = t0.elapsed();
        let response = response.expect(StatusCode::OK, q)?;
        let mut results = influxql_results(&response.body)?;
        Ok((results[0].take(), elapsed))
    }
}

/// The `results` of an InfluxQL answer, failing on any error in it.
fn influxql_results(body: &[u8]) -> Result<Vec<Value>> {
    let mut v: Value = serde_json::from_slice(body).context("answer is not JSON")?;
    if let Some(e) = v.get("error") {
        bail!("influxdb: {e}");
    }
    let results = match v["results"].take() {
        Value::Array(r) if !r.is_empty() => r,
        other => bail!("answer has no results: {other}"),
    };
    for r in &results {
        if let Some(e) = r.get("error") {
            bail!("influxdb: {e}");
        }
    }
    Ok(results)
}

fn series_of(result: &Value) -> Result<&Vec<Value>> {
    result["series"]
        .as_array()
        .context("implausible answer: no series")
}

fn values_of(series: &Value) -> Result<&Vec<Value>> {
    series["values"]
        .as_array()
        .context("implausible answer: a series without values")
}

/// Whether a compaction or snapshot is writing temporary files under `dir`.
fn compacting(dir: &Path) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tmp") {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_binds_loopback_only() {
        let c = config(Path::new("/tmp/x"), loopback(18086), loopback(18088));
        assert!(c.contains("bind-address = \"127.0.0.1:18086\""));
        assert!(c.contains("bind-address = \"127.0.0.1:18088\""));
        assert!(c.contains("wal-dir = \"/tmp/x/wal\""));
    }

    #[test]
    fn reads_results_and_errors() -> Result<()> {
        let ok = br#"{"results":[{"statement_id":0,"series":[{"name":"cabinet","columns":["time","x"],"values":[[1,2]]}]}]}"#;
        let r = influxql_results(ok)?;
        assert_eq!(values_of(&series_of(&r[0])?[0])?.len(), 1);
        let err = br#"{"results":[{"statement_id":0,"error":"database not found: bench"}]}"#;
        assert!(influxql_results(err).is_err());
        Ok(())
    }
}
