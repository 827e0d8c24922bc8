//! Building device messages by hand (topics and protobuf payloads) and reading back what citytel
//! stored, for tests that need exact control of every message.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{
    GetDeviceRequest, ListDeadLettersRequest, ListDeadLettersResponse, QueryRangeRequest, Reading,
    TelemetryBatch,
};
use prost::Message as _;
use tonic::transport::Channel;

/// Milliseconds since the Unix epoch, from the wall clock (devices stamp readings with it).
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

/// The telemetry topic of a cabinet at `site-01`.
pub fn telemetry_topic(device: &str) -> String {
    format!("citytel/v1/site-01/cabinet/{device}/telemetry")
}

/// The status topic of a cabinet at `site-01`.
pub fn status_topic(device: &str) -> String {
    format!("citytel/v1/site-01/cabinet/{device}/status")
}

/// A telemetry batch of `device` in boot `boot_id`: one reading per `(seq, time, values)`, the
/// values named `metrics`.
pub fn batch(
    device: &str,
    boot_id: u64,
    metrics: &[&str],
    readings: &[(u64, i64, Vec<f64>)],
) -> TelemetryBatch {
    TelemetryBatch {
        device_id: device.to_string(),
        boot_id,
        metric_names: metrics.iter().map(|m| (*m).to_string()).collect(),
        readings: readings
            .iter()
            .map(|(seq, time_unix_ms, values)| Reading {
                seq: *seq,
                time_unix_ms: *time_unix_ms,
                values: values.clone(),
            })
            .collect(),
        gateway_id: None,
    }
}

/// The encoded payload of [`batch`].
pub fn batch_payload(
    device: &str,
    boot_id: u64,
    metrics: &[&str],
    readings: &[(u64, i64, Vec<f64>)],
) -> Vec<u8> {
    batch(device, boot_id, metrics, readings).encode_to_vec()
}

/// Writes a telemetry batch of `device` (boot 1, `temperature_c` at 20.0, one reading per
/// sequence number in `seqs`, stamped just before now) to `{dir}/{name}.bin`, for command-line
/// clients that publish a file.
pub fn batch_file(
    dir: &std::path::Path,
    name: &str,
    device: &str,
    seqs: &[u64],
) -> std::path::PathBuf {
    let now = now_ms();
    let readings: Vec<(u64, i64, Vec<f64>)> = seqs
        .iter()
        .map(|&seq| (seq, now - 1000 + seq as i64, vec![20.0]))
        .collect();
    let path = dir.join(format!("{name}.bin"));
    std::fs::write(
        &path,
        batch_payload(device, 1, &["temperature_c"], &readings),
    )
    .expect("write payload");
    path
}

/// `readings_total` of `device`, or 0 if citytel does not know it.
pub async fn readings_total(client: &mut QueryServiceClient<Channel>, device: &str) -> u64 {
    match client
        .get_device(GetDeviceRequest {
            device_id: device.to_string(),
        })
        .await
    {
        Ok(r) => r.into_inner().device.map_or(0, |d| d.readings_total),
        Err(status) if status.code() == tonic::Code::NotFound => 0,
        Err(status) => panic!("GetDevice {device}: {status}"),
    }
}

/// Every stored point of (device, metric) as time -> value bits. Asks for the plain answer and
/// with timestamps as runs, and checks that both hold the same points.
pub async fn points(
    client: &mut QueryServiceClient<Channel>,
    device: &str,
    metric: &str,
) -> BTreeMap<i64, u64> {
    let mut answers = Vec::new();
    for time_runs in [false, true] {
        let got = client
            .clone()
            .max_decoding_message_size(256 << 20)
            .query_range(QueryRangeRequest {
                device_id: device.to_string(),
                metric: metric.to_string(),
                start_unix_ms: 0,
                end_unix_ms: i64::MAX,
                time_runs,
            })
            .await
            .unwrap_or_else(|e| panic!("QueryRange {device} {metric}: {e}"))
            .into_inner();
        if !time_runs {
            assert!(got.time_runs.is_empty(), "runs sent unasked");
        }
        let (times, values) = (got.times(), &got.values);
        assert_eq!(times.len(), values.len(), "one timestamp per value");
        let points: BTreeMap<i64, u64> = times
            .iter()
            .copied()
            .zip(values.iter().map(|v| v.to_bits()))
            .collect();
        answers.push(points);
    }
    let plain = answers.remove(0);
    assert_eq!(
        plain, answers[0],
        "{device} {metric}: the answer with time_runs disagrees with the plain one"
    );
    plain
}

/// `ListDeadLetters` filtered by `reason` ("" for all), up to 1000.
pub async fn dead_letters(
    client: &mut QueryServiceClient<Channel>,
    reason: &str,
) -> ListDeadLettersResponse {
    client
        .list_dead_letters(ListDeadLettersRequest {
            reason: reason.to_string(),
            limit: 1000,
            before_unix_ms: 0,
        })
        .await
        .expect("ListDeadLetters")
        .into_inner()
}
