//! The questions asked of a golden data directory (`tests/golden/`), and their answers as text.
//! Every answer is printed with `{:#?}`, after normalising what a client may receive in more than
//! one form (the timestamps of `QueryRange`, which may come as runs) and digesting long lists of
//! points, so two versions of citytel that agree on the data print the same text.

use std::fmt::Write as _;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{self, get_availability_request::Target};
use tonic::transport::Channel;

/// Start of the golden data: 2026-11-01T00:00:00Z.
pub const T0: i64 = 1_793_491_200_000;
/// One hour, in ms.
pub const HOUR: i64 = 3_600_000;
/// One day, in ms.
pub const DAY: i64 = 24 * HOUR;
/// The instant the answers are asked at (the clock of the service that opens the directory).
pub const ASKED_AT: i64 = T0 + 2 * DAY + 3 * HOUR;

/// Every device of the golden directory.
pub const DEVICES: [&str; 6] = [
    "cab-0001",
    "cab-0002",
    "cell-0001",
    "gw-0001",
    "sen-0001",
    "sen-0002",
];

fn section(out: &mut String, title: &str, answer: impl std::fmt::Debug) {
    let _ = writeln!(out, "## {title}\n{answer:#?}\n");
}

/// `ListLatest`'s answer as releases before pages gave it (the golden answers are theirs).
#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct ListLatestResponse {
    devices: Vec<v1::DeviceLatest>,
}

/// Points as their count, the first and last three, and a 64-bit FNV-1a digest of every
/// timestamp and value bit pattern, in order: an exact comparison in a few lines.
#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
pub struct PointsDigest {
    count: usize,
    first: Vec<(i64, f64)>,
    last: Vec<(i64, f64)>,
    digest: String,
}

/// The digest of `points`.
pub fn digest(points: &[(i64, f64)]) -> PointsDigest {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (t, v) in points {
        for b in t.to_le_bytes().into_iter().chain(v.to_bits().to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    PointsDigest {
        count: points.len(),
        first: points.iter().take(3).copied().collect(),
        last: points.iter().rev().take(3).rev().copied().collect(),
        digest: format!("{h:016x}"),
    }
}

fn series_digest(r: v1::QuerySeriesResponse) -> (String, Vec<(String, PointsDigest)>) {
    let series = r
        .series
        .into_iter()
        .map(|s| {
            let points: Vec<(i64, f64)> = s.times_unix_ms.into_iter().zip(s.values).collect();
            (s.device_id, digest(&points))
        })
        .collect();
    (r.resolution, series)
}

fn code(status: tonic::Status) -> String {
    format!("error {:?}: {}", status.code(), status.message())
}

/// Asks every question and returns the answers as one text.
pub async fn answers(client: &mut QueryServiceClient<Channel>) -> String {
    let mut out = String::new();
    let devices = client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .map(|r| r.into_inner())
        .map_err(code);
    section(&mut out, "ListDevices", devices);
    for device in DEVICES {
        let answer = client
            .get_device(v1::GetDeviceRequest {
                device_id: device.into(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(code);
        section(&mut out, &format!("GetDevice {device}"), answer);
        let latest = client
            .get_latest(v1::GetLatestRequest {
                device_id: device.into(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(code);
        section(&mut out, &format!("GetLatest {device}"), latest);
        let history = client
            .list_state_history(v1::ListStateHistoryRequest {
                device_id: device.into(),
                start_unix_ms: 0,
                end_unix_ms: i64::MAX,
            })
            .await
            .map(|r| r.into_inner())
            .map_err(code);
        section(&mut out, &format!("ListStateHistory {device}"), history);
        let availability = client
            .get_availability(v1::GetAvailabilityRequest {
                target: Some(Target::DeviceId(device.into())),
                start_unix_ms: T0,
                end_unix_ms: ASKED_AT,
                outage_limit: 0,
            })
            .await
            .map(|r| r.into_inner())
            .map_err(code);
        section(&mut out, &format!("GetAvailability {device}"), availability);
    }
    for (device, metric) in [
        ("cab-0001", "temperature_c"),
        ("cab-0002", "power_w"),
        ("cell-0001", "connected_ues"),
        ("sen-0001", "no2_ugm3"),
        ("sen-0002", "pm25_ugm3"),
    ] {
        for time_runs in [false, true] {
            let answer = client
                .query_range(v1::QueryRangeRequest {
                    device_id: device.into(),
                    metric: metric.into(),
                    start_unix_ms: 0,
                    end_unix_ms: i64::MAX,
                    time_runs,
                })
                .await
                .map(|r| {
                    let r = r.into_inner();
                    let times = r.times().into_owned();
                    let values = r.values;
                    digest(&times.into_iter().zip(values).collect::<Vec<(i64, f64)>>())
                })
                .map_err(code);
            section(
                &mut out,
                &format!("QueryRange {device} {metric} (points; time_runs {time_runs})"),
                answer,
            );
        }
    }
    for (kind, metric) in [("cabinet", "temperature_c"), ("sensor", "no2_ugm3")] {
        for (step, aggregation) in [
            (HOUR, v1::Aggregation::Avg),
            (5 * 60_000, v1::Aggregation::Max),
            (DAY, v1::Aggregation::Count),
        ] {
            for across in [v1::Aggregation::Unspecified, v1::Aggregation::Avg] {
                let answer = client
                    .query_series(v1::QuerySeriesRequest {
                        devices: Some(v1::DeviceSelector {
                            kind: kind.into(),
                            ..Default::default()
                        }),
                        metric: metric.into(),
                        start_unix_ms: T0,
                        end_unix_ms: ASKED_AT,
                        step_ms: step,
                        aggregation: aggregation as i32,
                        across: across as i32,
                    })
                    .await
                    .map(|r| series_digest(r.into_inner()))
                    .map_err(code);
                section(
                    &mut out,
                    &format!(
                        "QuerySeries {kind} {metric} step {step} {aggregation:?} across {across:?}"
                    ),
                    answer,
                );
            }
        }
    }
    // Every device fits the first page; shown as the release (which had no pages) answered.
    let latest = client
        .list_latest(v1::ListLatestRequest::default())
        .await
        .map(|r| {
            let page = r.into_inner();
            assert_eq!(page.next_page_token, "", "every device in one page");
            ListLatestResponse {
                devices: page.devices,
            }
        })
        .map_err(code);
    section(&mut out, "ListLatest", latest);
    let summary = client
        .get_fleet_summary(v1::GetFleetSummaryRequest::default())
        .await
        .map(|r| {
            // Protobuf maps have no order: sorted, so the text does not change from run to run.
            let r = r.into_inner();
            let sorted = |m: std::collections::HashMap<String, v1::StateCounts>| {
                m.into_iter().collect::<std::collections::BTreeMap<_, _>>()
            };
            (
                r.all,
                sorted(r.by_kind),
                sorted(r.by_site),
                sorted(r.by_district),
                r.attention,
            )
        })
        .map_err(code);
    section(&mut out, "GetFleetSummary", summary);
    for target in [Target::Site("site-a".into()), Target::Site("site-b".into())] {
        let answer = client
            .get_availability(v1::GetAvailabilityRequest {
                target: Some(target.clone()),
                start_unix_ms: T0,
                end_unix_ms: ASKED_AT,
                outage_limit: 0,
            })
            .await
            .map(|r| r.into_inner())
            .map_err(code);
        section(&mut out, &format!("GetAvailability {target:?}"), answer);
    }
    let list = client
        .list_availability(v1::ListAvailabilityRequest {
            devices: Some(v1::DeviceSelector::default()),
            windows: vec![
                v1::Window {
                    start_unix_ms: T0,
                    end_unix_ms: T0 + DAY,
                },
                v1::Window {
                    start_unix_ms: T0 + DAY,
                    end_unix_ms: ASKED_AT,
                },
            ],
        })
        .await
        .map(|r| r.into_inner())
        .map_err(code);
    section(&mut out, "ListAvailability", list);
    let maintenance = client
        .list_maintenance(v1::ListMaintenanceRequest::default())
        .await
        .map(|r| r.into_inner())
        .map_err(code);
    section(&mut out, "ListMaintenance", maintenance);
    let letters = client
        .list_dead_letters(v1::ListDeadLettersRequest::default())
        .await
        .map(|r| {
            let r = r.into_inner();
            let counts: std::collections::BTreeMap<_, _> = r.counts_by_reason.into_iter().collect();
            (r.dead_letters, counts)
        })
        .map_err(code);
    section(&mut out, "ListDeadLetters", letters);
    out
}
