//! Timing the fleet-wide queries of a running citytel: `GetFleetSummary`, `ListDevices` pages at
//! the start, middle and end of the device list, and `ListLatest` of every device, page by page.
//!
//! [`time_queries`] is the entry point other benchmarks call (the scale benchmark runs it at each
//! fleet size). It first walks every `ListDevices` page once, uncounted, to learn the device ids
//! (so a page at any offset can be asked for with the token of the device before it) and checks
//! that the pages hold every device exactly once, in order. Every timed answer is checked too, so
//! a broken answer cannot look fast.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{GetFleetSummaryRequest, ListDevicesRequest, ListLatestRequest};
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::bearer::Bearer;
use crate::measure::{Timings, repeat};

/// HTTP/2 flow-control window of the client (stream and connection): large pages need no
/// window updates half-way.
const WINDOW_BYTES: u32 = 8 << 20;
/// Largest answer the client decodes: far above gRPC's 4 MiB default, so a server that answers
/// in one oversized message is measured (and its message size reported) rather than refused.
const MAX_DECODE_BYTES: usize = 1 << 30;
/// The `ListDevices` page that is timed, as the dashboard asks for it.
pub const DEVICE_PAGE: u32 = 1000;
/// The page of the uncounted walk over every device (the largest the server allows).
const WALK_PAGE: u32 = 10_000;

/// A query client of a running citytel, with its API key if any.
pub type Client = QueryServiceClient<InterceptedService<Channel, Bearer>>;

/// How [`time_queries`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOptions {
    /// Counted runs of each query (after one uncounted warm-up run); medians are reported.
    pub runs: usize,
    /// Devices per `ListLatest` page; 0 for the server's default.
    pub latest_page_size: u32,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            runs: 5,
            latest_page_size: 10_000,
        }
    }
}

/// What [`time_queries`] measured.
#[derive(Debug, Clone)]
pub struct QueryTimings {
    /// Devices the uncounted walk over `ListDevices` found.
    pub devices: u64,
    /// `GetFleetSummary` (every device, default attention list).
    pub fleet_summary: Timings,
    /// `ListDevices`, the first page of [`DEVICE_PAGE`] devices.
    pub devices_start: Timings,
    /// `ListDevices`, the page starting at the middle of the device list.
    pub devices_middle: Timings,
    /// `ListDevices`, the last page.
    pub devices_end: Timings,
    /// `ListLatest` of every device, every page (the sum of the pages' round trips).
    pub latest_all: Timings,
    /// Pages the last run of `ListLatest` took.
    pub latest_pages: u64,
    /// Latest values (series) the last run of `ListLatest` returned.
    pub latest_values: u64,
    /// The largest `ListLatest` answer of the last run, encoded, in bytes.
    pub latest_largest_bytes: usize,
}

/// A client of the citytel serving gRPC at `addr` (`host:port` or a URL), sending `key` as a
/// bearer token when given.
pub async fn connect(addr: &str, key: Option<&str>) -> Result<Client> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let channel = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad gRPC address {addr:?}"))?
        .initial_stream_window_size(WINDOW_BYTES)
        .initial_connection_window_size(WINDOW_BYTES)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let bearer = match key {
        None => None,
        Some(key) => Some(format!("Bearer {key}").parse().context("key text")?),
    };
    Ok(
        QueryServiceClient::with_interceptor(channel, Bearer::new(bearer))
            .max_decoding_message_size(MAX_DECODE_BYTES),
    )
}

/// Times the fleet-wide queries against the citytel serving gRPC at `addr` (see the module
/// documentation). Fails when an answer is implausible (a page out of order, a device twice,
/// fewer devices than the walk found).
pub async fn time_queries(
    addr: &str,
    key: Option<&str>,
    options: &QueryOptions,
) -> Result<QueryTimings> {
    let mut client = connect(addr, key).await?;
    let ids = walk_devices(&mut client).await?;
    ensure!(!ids.is_empty(), "citytel lists no devices");
    let n = ids.len();
    let runs = options.runs.max(1);

    let fleet_summary = repeat(runs, async || {
        let t0 = Instant::now();
        let answer = client
            .get_fleet_summary(GetFleetSummaryRequest::default())
            .await?
            .into_inner();
        let elapsed = t0.elapsed();
        let total = answer.all.map_or(0, |c| c.total);
        ensure!(
            u64::from(total) >= n as u64,
            "the fleet summary counts {total} devices; ListDevices listed {n}"
        );
        Ok(elapsed)
    })
    .await
    .context("GetFleetSummary")?;

    let devices_start = time_page(&mut client, &ids, 0, runs).await?;
    let devices_middle = time_page(&mut client, &ids, n / 2, runs).await?;
    let end = n.saturating_sub(DEVICE_PAGE as usize);
    let devices_end = time_page(&mut client, &ids, end, runs).await?;

    let mut last = LatestRun::default();
    let latest_all = repeat(runs, async || {
        last = latest_run(&mut client, options.latest_page_size).await?;
        ensure!(
            last.devices >= n as u64,
            "ListLatest returned {} devices over {} pages; ListDevices listed {n}",
            last.devices,
            last.pages
        );
        Ok(last.elapsed)
    })
    .await
    .context("ListLatest")?;

    Ok(QueryTimings {
        devices: n as u64,
        fleet_summary,
        devices_start,
        devices_middle,
        devices_end,
        latest_all,
        latest_pages: last.pages,
        latest_values: last.values,
        latest_largest_bytes: last.largest_bytes,
    })
}

/// Times the `ListDevices` page of [`DEVICE_PAGE`] devices from position `offset` of `ids` (asked
/// for with the token of the device before it).
async fn time_page(
    client: &mut Client,
    ids: &[String],
    offset: usize,
    runs: usize,
) -> Result<Timings> {
    let token = offset.checked_sub(1).map_or("", |i| &*ids[i]).to_string();
    let want = (ids.len() - offset).min(DEVICE_PAGE as usize);
    repeat(runs, async || {
        let request = ListDevicesRequest {
            page_size: DEVICE_PAGE,
            page_token: token.clone(),
            ..ListDevicesRequest::default()
        };
        let t0 = Instant::now();
        let answer = client.list_devices(request).await?.into_inner();
        let elapsed = t0.elapsed();
        ensure!(
            answer.devices.len() >= want,
            "a page at offset {offset} holds {} devices, not {want}",
            answer.devices.len()
        );
        ensure!(
            answer.devices[0].device_id.as_str() > token.as_str(),
            "a page after {token:?} starts at {:?}",
            answer.devices[0].device_id
        );
        Ok(elapsed)
    })
    .await
    .with_context(|| format!("ListDevices at offset {offset}"))
}

/// Every device id, from `ListDevices` pages (checked: strictly increasing, so none twice).
async fn walk_devices(client: &mut Client) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    let mut token = String::new();
    loop {
        let answer = client
            .list_devices(ListDevicesRequest {
                page_size: WALK_PAGE,
                page_token: token.clone(),
                ..ListDevicesRequest::default()
            })
            .await
            .context("ListDevices")?
            .into_inner();
        for d in answer.devices {
            if let Some(prev) = ids.last() {
                ensure!(
                    d.device_id > *prev,
                    "ListDevices pages list {:?} after {prev:?}",
                    d.device_id
                );
            }
            ids.push(d.device_id);
        }
        if answer.next_page_token.is_empty() {
            return Ok(ids);
        }
        token = answer.next_page_token;
    }
}

/// One full `ListLatest` walk.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LatestRun {
    /// The pages' round trips, summed.
    pub(crate) elapsed: Duration,
    /// Pages.
    pub(crate) pages: u64,
    /// Devices, over every page.
    pub(crate) devices: u64,
    /// Latest values, over every page.
    pub(crate) values: u64,
    /// The largest page, encoded, in bytes.
    pub(crate) largest_bytes: usize,
}

/// Every page of `ListLatest`; only the round trips are timed. Checks that the devices come in
/// order, each once.
pub(crate) async fn latest_run(client: &mut Client, page_size: u32) -> Result<LatestRun> {
    let mut run = LatestRun::default();
    let mut token = String::new();
    let mut last_id = String::new();
    loop {
        let request = ListLatestRequest {
            page_size,
            page_token: token.clone(),
            ..ListLatestRequest::default()
        };
        let t0 = Instant::now();
        let answer = client.list_latest(request).await?.into_inner();
        run.elapsed += t0.elapsed();
        run.pages += 1;
        run.largest_bytes = run.largest_bytes.max(answer.encoded_len());
        for d in &answer.devices {
            ensure!(
                d.device_id > last_id,
                "ListLatest lists {:?} after {last_id:?}",
                d.device_id
            );
            last_id.clone_from(&d.device_id);
            run.devices += 1;
            run.values += d.values.len() as u64;
        }
        if answer.next_page_token.is_empty() {
            return Ok(run);
        }
        token = answer.next_page_token;
    }
}
