//! Timing `GetFleetSummary` with a tonic client, and the devices it counts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use citytel_proto::v1::GetFleetSummaryRequest;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::measure::{self, Timings};

/// Answers of a whole fleet's summary can be large (the attention list): no limit on decoding.
const MAX_MESSAGE: usize = 64 << 20;

/// A query client on citytel's gRPC API at `url`.
pub async fn client(url: &str) -> Result<QueryServiceClient<Channel>> {
    let channel = Endpoint::from_shared(url.to_string())
        .context("bad gRPC address")?
        .tcp_nodelay(true)
        .connect()
        .await
        .context("connecting to citytel's gRPC API")?;
    Ok(QueryServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE))
}

/// The devices the fleet summary counts (every state).
pub async fn devices(client: &mut QueryServiceClient<Channel>) -> Result<u64> {
    let summary = client
        .get_fleet_summary(GetFleetSummaryRequest::default())
        .await
        .context("GetFleetSummary")?
        .into_inner();
    Ok(summary.all.map_or(0, |c| u64::from(c.total)))
}

/// Times `GetFleetSummary` of the whole fleet: one warm-up, then `runs` calls; each answer must
/// count `expected` devices.
pub async fn time_summary(
    client: &mut QueryServiceClient<Channel>,
    runs: usize,
    expected: u64,
) -> Result<Timings> {
    measure::repeat(runs, async || {
        let t0 = Instant::now();
        let summary = client
            .get_fleet_summary(GetFleetSummaryRequest::default())
            .await?
            .into_inner();
        let elapsed: Duration = t0.elapsed();
        let total = summary.all.map_or(0, |c| u64::from(c.total));
        crate::peers::check_count("devices in the fleet summary", total, expected, expected)?;
        Ok(elapsed)
    })
    .await
}
