//! VictoriaMetrics as the peer at one fleet size: the same N devices x 5 series through its
//! import API, then the same steady load, and its memory.
//!
//! VictoriaMetrics runs as in `peers` ([`VictoriaMetrics`]). The devices are the generator's
//! (`cab-00001`, `cell-00001`, `sen-00001`, ... over 10 sites), one line-protocol line of 5
//! fields per device and reading (VictoriaMetrics makes each field a series, e.g.
//! `cabinet_m1{device_id="cab-00001",site="site-01"}`), without timestamps, so it stamps them on
//! arrival as citytel does.
//!
//! 1. **Registration**: one line per device, POSTed to `/write` in requests of 10,000 lines,
//!    4 in flight, as fast as it answers; done when every request returned 204 and
//!    `vm_rows_added_to_storage_total` reached N x 5. Import rate = N / that time (lines/s,
//!    comparable to citytel's messages/s); peak RSS (`VmHWM`) right after.
//! 2. **Steady load**: one line per device per minute, N/60 lines/s, posted every 100 ms, for
//!    the same time as citytel's; RSS right after.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use citytel_testkit::http::{HttpConn, StatusCode};
use citytel_testkit::wait::Wait;
use serde::Serialize;
use tokio::task::JoinSet;

use super::figures::{self, Memory};
use crate::peers::System as _;
use crate::peers::victoriametrics::VictoriaMetrics;

/// Lines per request during the registration.
const BATCH_LINES: u64 = 10_000;
/// Requests in flight during the registration.
const IN_FLIGHT: u64 = 4;
/// How often the steady load posts what is due.
const STEADY_TICK: Duration = Duration::from_millis(100);
/// How long the values may take to reach storage after the last write.
const STORED_LIMIT: Duration = Duration::from_secs(300);
/// Sites the devices are spread over (as `firmware-sim load` does by default).
const SITES: u64 = 10;

/// VictoriaMetrics' figures at one size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PeerFigures {
    /// Registration: lines (one per device, 5 values each) per second.
    pub import_lines_per_s: Option<f64>,
    /// Registration: values per second.
    pub import_values_per_s: Option<f64>,
    /// `VmHWM` right after the registration, bytes.
    pub peak_rss_registration_bytes: Option<u64>,
    /// Steady load: lines per second sent.
    pub steady_lines_per_s: Option<f64>,
    /// RSS after the steady load, bytes.
    pub rss_after_bytes: Option<u64>,
    /// `rss_after_bytes` per series.
    pub bytes_per_series: Option<f64>,
    /// Why the run stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measures VictoriaMetrics with `devices` devices for a steady load of `steady`, its data under
/// `dir`.
pub async fn measure(devices: u32, steady: Duration, dir: &Path) -> PeerFigures {
    let mut f = PeerFigures::default();
    if let Err(e) = measure_into(&mut f, u64::from(devices), steady, dir).await {
        eprintln!("victoriametrics {devices}: error: {e:#}");
        f.error = Some(format!("{e:#}"));
    }
    f
}

async fn measure_into(f: &mut PeerFigures, n: u64, steady: Duration, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut vm = VictoriaMetrics::start(dir).await?;
    let pid = vm.pid();
    let values = figures::series(n);

    eprintln!("victoriametrics {n}: importing {n} devices x 5 series...");
    let t0 = Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let addr = vm.addr();
        workers.spawn(async move {
            let mut conn = HttpConn::new(addr);
            let mut from = worker * BATCH_LINES;
            while from < n {
                let count = BATCH_LINES.min(n - from);
                post(&mut conn, lines(from, count)).await?;
                from += IN_FLIGHT * BATCH_LINES;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("import worker panicked")??;
    }
    wait_stored(&mut vm, values).await?;
    let secs = t0.elapsed().as_secs_f64();
    f.import_lines_per_s = Some(n as f64 / secs);
    f.import_values_per_s = Some(values as f64 / secs);
    f.peak_rss_registration_bytes = Some(Memory::of(pid)?.peak_bytes);
    eprintln!(
        "victoriametrics {n}: imported in {secs:.1} s: {:.0} lines/s, peak RSS {}",
        n as f64 / secs,
        super::citytel::mib(f.peak_rss_registration_bytes)
    );

    let rate = figures::steady_rate(n);
    let mut conn = HttpConn::new(vm.addr());
    let mut sent = 0u64;
    let t0 = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(STEADY_TICK);
    while t0.elapsed() < steady {
        tick.tick().await;
        let due = (t0.elapsed().min(steady).as_secs_f64() * rate).floor() as u64;
        if due > sent {
            let from = sent % n;
            let count = (due - sent).min(n - from);
            post(&mut conn, lines(from, count)).await?;
            sent += count;
        }
    }
    wait_stored(&mut vm, values + figures::series(sent)).await?;
    f.steady_lines_per_s = Some(sent as f64 / steady.as_secs_f64());
    let memory = Memory::of(pid)?;
    f.rss_after_bytes = Some(memory.rss_bytes);
    f.bytes_per_series = figures::bytes_per(memory.rss_bytes, values);
    eprintln!(
        "victoriametrics {n}: steady {sent} lines; RSS {}",
        super::citytel::mib(f.rss_after_bytes)
    );
    Ok(())
}

async fn post(conn: &mut HttpConn, body: Bytes) -> Result<()> {
    conn.post("/write", body)
        .await?
        .expect(StatusCode::NO_CONTENT, "/write")?;
    Ok(())
}

/// Waits until VictoriaMetrics holds `values` values.
async fn wait_stored(vm: &mut VictoriaMetrics, values: u64) -> Result<()> {
    let mut wait = Wait::new(
        format!("victoriametrics holding {values} values"),
        STORED_LIMIT,
    )
    .every(Duration::from_millis(20));
    loop {
        let added = vm.rows_added().await?;
        if added >= values {
            return Ok(());
        }
        wait.retry()
            .await
            .with_context(|| format!("it holds {added} values after the last write"))?;
    }
}

/// Line protocol for devices `from .. from + count`: one line of 5 fields each.
fn lines(from: u64, count: u64) -> Bytes {
    const KINDS: [(&str, &str); 3] = [
        ("cabinet", "cab"),
        ("small_cell", "cell"),
        ("sensor", "sen"),
    ];
    let mut text = String::with_capacity(count as usize * 90);
    for i in from..from + count {
        let (measurement, prefix) = KINDS[(i % 3) as usize];
        let number = i / 3 + 1;
        let site = i % SITES + 1;
        let v = (i % 1000) as f64 / 10.0;
        let _ = writeln!(
            text,
            "{measurement},device_id={prefix}-{number:05},site=site-{site:02} \
             m1={v},m2={},m3={},m4={},m5={}",
            v + 1.0,
            v + 2.0,
            v + 3.0,
            v + 4.0
        );
    }
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_device_gets_one_line_of_five_fields() {
        let text = lines(0, 7);
        let text = std::str::from_utf8(&text).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 7);
        assert_eq!(
            rows[0],
            "cabinet,device_id=cab-00001,site=site-01 m1=0,m2=1,m3=2,m4=3,m5=4"
        );
        assert!(rows[1].starts_with("small_cell,device_id=cell-00001,site=site-02 "));
        assert!(rows[3].starts_with("cabinet,device_id=cab-00002,site=site-04 "));
        let ids: HashSet<&str> = rows.iter().map(|r| r.split(' ').next().unwrap()).collect();
        assert_eq!(ids.len(), 7);
        assert!(rows.iter().all(|r| r.matches('=').count() == 2 + 5));
    }

    #[test]
    fn batches_continue_where_the_last_one_ended() {
        let all = lines(0, 30);
        let mut parts = lines(0, 10).to_vec();
        parts.extend_from_slice(&lines(10, 20));
        assert_eq!(all.to_vec(), parts);
    }
}
