//! `citytel devices show ID`: one device as a running service sees it (GetDevice, with the
//! caller's key: only what its scope sees), its state, what it said about itself and its
//! attributes (latest text values, such as Sparkplug String metrics).

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use citytel_proto::v1::{self, GetDeviceRequest, query_service_client::QueryServiceClient};

use super::remote::ServiceArgs;
use super::runtime;

/// Prints device `id` from the service `service` reaches.
pub(crate) fn run(id: &str, service: &ServiceArgs) -> anyhow::Result<()> {
    let device = runtime()?.block_on(async {
        let mut client = QueryServiceClient::new(service.connect().await?);
        let answer = client
            .get_device(GetDeviceRequest {
                device_id: id.to_string(),
            })
            .await
            .with_context(|| format!("GetDevice {id}"))?;
        answer
            .into_inner()
            .device
            .context("the service answered no device")
    })?;
    print!("{}", format(&device));
    Ok(())
}

/// An RFC 3339 UTC time, to the millisecond; `-` for zero.
fn time(ms: i64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn or_dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

/// The device as lines of `label value`, then its attributes one per line.
pub(crate) fn format(d: &v1::Device) -> String {
    let state = v1::DeviceState::try_from(d.state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("DEVICE_STATE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| d.state.to_string());
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = if value.is_empty() {
            writeln!(out, "{label}")
        } else {
            writeln!(out, "{label:<12} {value}")
        };
    };
    line("device", &d.device_id);
    line("kind", &d.kind);
    line("site", &d.site);
    line("district", or_dash(Some(&d.district)));
    line("gateway", or_dash(d.gateway_id.as_deref()));
    line(
        "state",
        &format!(
            "{state} since {} ({})",
            time(d.state_since_unix_ms),
            or_dash(Some(&d.state_cause))
        ),
    );
    line("firmware", or_dash(d.firmware_version.as_deref()));
    line("last seen", &time(d.last_seen_unix_ms));
    line("readings", &d.readings_total.to_string());
    line("metrics", or_dash(Some(&d.metrics.join(", "))));
    if d.attributes.is_empty() {
        line("attributes", "-");
    } else {
        line("attributes", "");
        let width = d.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for a in &d.attributes {
            let datatype = or_dash(Some(&a.datatype));
            let _ = writeln!(
                out,
                "  {:<width$}  {}  ({datatype}, {})",
                a.name,
                a.value,
                time(a.time_unix_ms)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_prints_its_attributes_one_per_line() {
        let device = v1::Device {
            device_id: "plant.edge1.pump".into(),
            kind: "sensor".into(),
            site: "plant".into(),
            gateway_id: Some("plant.edge1".into()),
            state: v1::DeviceState::Online as i32,
            state_since_unix_ms: 1_700_000_000_000,
            state_cause: "birth".into(),
            metrics: vec!["rpm".into(), "running".into()],
            attributes: vec![
                v1::Attribute {
                    name: "mode".into(),
                    value: "manual".into(),
                    datatype: "String".into(),
                    time_unix_ms: 1_700_000_000_500,
                },
                v1::Attribute {
                    name: "serial_no".into(),
                    value: "X-1".into(),
                    datatype: String::new(),
                    time_unix_ms: 1_700_000_000_000,
                },
            ],
            ..v1::Device::default()
        };
        let text = format(&device);
        assert!(
            text.contains("state        online since 2023-11-14T22:13:20.000Z (birth)"),
            "{text}"
        );
        assert!(text.contains("gateway      plant.edge1\n"), "{text}");
        assert!(text.contains("metrics      rpm, running\n"), "{text}");
        assert!(
            text.ends_with(
                "attributes\n  mode       manual  (String, 2023-11-14T22:13:20.500Z)\n  serial_no  X-1  (-, 2023-11-14T22:13:20.000Z)\n"
            ),
            "{text}"
        );
        let bare = format(&v1::Device::default());
        assert!(bare.contains("attributes   -\n"), "{bare}");
    }
}
