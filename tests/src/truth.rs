//! Comparing what citytel answers over gRPC with a fleet's ground truth.

use std::collections::{BTreeMap, BTreeSet};

use citytel_firmware_sim::FleetReport;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{ListDevicesRequest, QueryRangeRequest};
use tonic::transport::Channel;

/// Every device of a listing, following pages.
pub async fn list_all_devices(
    client: &mut QueryServiceClient<Channel>,
) -> Vec<citytel_proto::v1::Device> {
    let mut devices = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_devices(ListDevicesRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListDevices")
            .into_inner();
        devices.extend(page.devices);
        if page.next_page_token.is_empty() {
            return devices;
        }
        page_token = page.next_page_token;
    }
}

/// Asserts that citytel knows exactly the fleet's devices and that, for every device and metric,
/// `QueryRange` returns exactly the readings the fleet saw acknowledged: same count, timestamps
/// and bit-identical values.
pub async fn assert_matches(client: &mut QueryServiceClient<Channel>, report: &FleetReport) {
    let listed = list_all_devices(client).await;
    let listed_ids: BTreeSet<&str> = listed.iter().map(|d| d.device_id.as_str()).collect();
    let fleet_ids: BTreeSet<&str> = report
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    assert_eq!(
        listed_ids, fleet_ids,
        "ListDevices lists exactly the fleet's devices"
    );

    for device in &report.devices {
        let listed = listed
            .iter()
            .find(|d| d.device_id == device.device_id)
            .expect("listed");
        assert_eq!(listed.site, device.site, "{}: site", device.device_id);
        assert_eq!(
            listed.kind,
            device.kind.as_str(),
            "{}: kind",
            device.device_id
        );
        assert_eq!(
            listed.readings_total,
            device.acked_readings.len() as u64,
            "{}: readings_total",
            device.device_id
        );
        if device.acked_readings.is_empty() {
            continue;
        }
        let start = device
            .acked_readings
            .iter()
            .map(|r| r.time_unix_ms)
            .min()
            .unwrap_or(0);
        let end = device
            .acked_readings
            .iter()
            .map(|r| r.time_unix_ms)
            .max()
            .unwrap_or(0)
            + 1;
        for (i, metric) in device.metric_names.iter().enumerate() {
            let expected: BTreeMap<i64, f64> = device
                .acked_readings
                .iter()
                .map(|r| (r.time_unix_ms, r.values[i]))
                .collect();
            let got = client
                .query_range(QueryRangeRequest {
                    device_id: device.device_id.clone(),
                    metric: (*metric).to_string(),
                    start_unix_ms: start,
                    end_unix_ms: end,
                    // The compact answer, checked against what the devices sent.
                    time_runs: true,
                })
                .await
                .unwrap_or_else(|e| panic!("QueryRange {} {metric}: {e}", device.device_id))
                .into_inner();
            let want_times: Vec<i64> = expected.keys().copied().collect();
            let want_bits: Vec<u64> = expected.values().map(|v| v.to_bits()).collect();
            let got_bits: Vec<u64> = got.values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                got.times().as_ref(),
                want_times.as_slice(),
                "{} {metric}: timestamps",
                device.device_id
            );
            assert_eq!(got_bits, want_bits, "{} {metric}: values", device.device_id);
        }
    }
}
