//! The fleet counts against a full recount: random messages, connections, silence sweeps,
//! restarts and checkpoints on a manual clock, and after each one the summary and the device
//! totals from the counts equal those of a walk over every device, and so do the devices
//! `ListDevices` lists per district.

use citytel_proto::v1::{
    self, Birth, Death, DeathReason, Location as WireLocation, Reading, Status, TelemetryBatch,
    status,
};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::*;
use crate::api::devices;
use crate::api::fleet::{summary, summary_walk};
use crate::clock::Clock;
use crate::db::Database;
use crate::journal::Connection;
use crate::query::Visible;
use crate::state::access::Scope;

/// Two squares: west (longitude 0 to 1) and east (1 to 2), latitude 0 to 1.
const MAP: &str = r#"{"type":"FeatureCollection","features":[
  {"type":"Feature","properties":{"name":"west"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
  {"type":"Feature","properties":{"name":"east"},"geometry":{"type":"Polygon","coordinates":[[[1,0],[2,0],[2,1],[1,1],[1,0]]]}}]}"#;

const KINDS: [&str; 3] = ["cabinet", "sensor", "gateway"];
const SITES: [&str; 4] = ["site-n", "site-s", "site-x", "site-y"];
/// The `ListDevices` district filters compared: none, the polygons', the sites', and one no
/// device is in.
const DISTRICTS: [&str; 6] = ["", "west", "east", "north", "south", "nowhere"];

fn open(dir: &std::path::Path) -> Arc<Database> {
    let file = dir.join("districts.geojson");
    std::fs::write(&file, MAP).unwrap();
    let text = format!(
        "[availability]\ndistricts = {{ site-n = \"north\", site-s = \"south\" }}\n\
         districts_file = {:?}\n",
        file.display().to_string()
    );
    let options = crate::config::load_str(Some(("test", &text)), &[])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(Clock::manual(1_000_000));
    Database::open(&dir.join("data"), &options).unwrap().0
}

fn status(device: &str, kind: status::Kind, gateway: Option<String>) -> Status {
    Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: 0,
        gateway_id: gateway,
        kind: Some(kind),
    }
}

/// One random step at `now`.
fn step(state: &mut State, rng: &mut StdRng, now: i64, seq: &mut u64) {
    let device = format!("dev-{:02}", rng.random_range(0..40));
    let kind = KINDS[rng.random_range(0..KINDS.len())];
    let site = SITES[rng.random_range(0..SITES.len())];
    let topic = |channel: &str| format!("citytel/v1/{site}/{kind}/{device}/{channel}");
    let message = |state: &mut State, topic: String, decoded: Decoded, payload: Vec<u8>| {
        let entry = Entry::Message {
            received_at_ms: now,
            topic: &topic,
            payload: &payload,
        };
        state.apply(&entry, Some(&decoded));
    };
    let gateway = rng
        .random_bool(0.2)
        .then(|| format!("dev-{:02}", rng.random_range(0..5)));
    match rng.random_range(0..10) {
        0..=2 => {
            *seq += 1;
            let batch = TelemetryBatch {
                device_id: device.clone(),
                boot_id: 1,
                metric_names: vec!["t".into()],
                readings: vec![Reading {
                    seq: *seq,
                    time_unix_ms: now,
                    values: vec![1.0],
                }],
                gateway_id: gateway,
            };
            let payload = batch.encode_to_vec();
            message(
                state,
                topic("telemetry"),
                Decoded::Telemetry(batch),
                payload,
            );
        }
        3 => {
            let location = rng.random_bool(0.5).then(|| WireLocation {
                latitude: 0.5,
                longitude: rng.random_range(0.1..2.5),
            });
            let birth = status::Kind::Birth(Birth {
                firmware_version: "fw".into(),
                reporting_interval_ms: rng.random_range(1..6) * 10_000,
                heartbeat_interval_ms: None,
                children: vec![],
                intermittent: None,
                location,
            });
            let s = status(&device, birth, gateway);
            let payload = s.encode_to_vec();
            message(state, topic("status"), Decoded::Status(s), payload);
        }
        4 => {
            let death = status::Kind::Death(Death {
                reason: DeathReason::ConnectionLost as i32,
                at_status_time: false,
            });
            let s = status(&device, death, None);
            let payload = s.encode_to_vec();
            message(state, topic("status"), Decoded::Status(s), payload);
        }
        5 | 6 => {
            let change =
                [Connection::Opened, Connection::Closed, Connection::Lost][rng.random_range(0..3)];
            let topic = topic("status");
            state.apply(
                &Entry::Connection {
                    received_at_ms: now,
                    change,
                    topic: &topic,
                },
                None,
            );
        }
        7 => {
            state.apply(&Entry::Tick { at_ms: now }, None);
        }
        8 => state.advance(now),
        _ => {
            if rng.random_bool(0.3) {
                state.started(now);
            } else if let Some(mut parts) = state.begin_checkpoint(0) {
                state.end_checkpoint(&mut parts.frozen, Vec::new());
            }
        }
    }
}

/// The requests and scopes compared.
fn views() -> Vec<(v1::GetFleetSummaryRequest, Scope)> {
    let req = |kind: &str, site: &str, attention_limit| v1::GetFleetSummaryRequest {
        kind: kind.into(),
        site: site.into(),
        attention_limit,
    };
    let north = Scope {
        districts: vec!["north".into(), "east".into()],
        ..Scope::default()
    };
    let sensors = Scope {
        kinds: vec!["sensor".into()],
        sites: vec!["site-n".into(), "site-x".into()],
        ..Scope::default()
    };
    vec![
        (req("", "", 0), Scope::default()),
        (req("", "", 1000), Scope::default()),
        (req("cabinet", "", 3), Scope::default()),
        (req("", "site-s", 1000), Scope::default()),
        (req("sensor", "site-x", 1000), Scope::default()),
        (req("", "", 1000), north),
        (req("", "site-n", 1000), sensors),
    ]
}

fn compare(state: &State, step: usize) {
    assert!(state.fleet_counts().is_some(), "step {step}: counts stale");
    for (req, scope) in views() {
        let visible = Visible::of(&scope, state);
        let fast = summary(state, &req, &visible);
        let walk = summary_walk(state, &req, &visible);
        assert_eq!(fast, walk, "step {step}: {req:?} {scope:?}");
        for wanted in [0, 1, 2, 3, 4, 5] {
            let list = v1::ListDevicesRequest {
                kind: req.kind.clone(),
                site: req.site.clone(),
                state: wanted,
                page_size: 10_000,
                ..v1::ListDevicesRequest::default()
            };
            let answer = devices::list(state, &list, &visible).unwrap();
            assert_eq!(
                answer.total as usize,
                answer.devices.len(),
                "step {step}: ListDevices total {list:?} {scope:?}"
            );
        }
        for district in DISTRICTS {
            let list = v1::ListDevicesRequest {
                kind: req.kind.clone(),
                site: req.site.clone(),
                district: district.into(),
                page_size: 10_000,
                ..v1::ListDevicesRequest::default()
            };
            let answer = devices::list(state, &list, &visible).unwrap();
            let walk: Vec<String> = state
                .registry()
                .iter_after(None)
                .filter(|d| visible.device(d))
                .filter(|d| list.kind.is_empty() || *d.kind == *list.kind)
                .filter(|d| list.site.is_empty() || *d.site == *list.site)
                .filter(|d| district.is_empty() || d.district.as_deref() == Some(district))
                .map(|d| d.device_id.to_string())
                .collect();
            let listed: Vec<String> = answer.devices.iter().map(|d| d.device_id.clone()).collect();
            assert_eq!(listed, walk, "step {step}: ListDevices {list:?} {scope:?}");
            assert_eq!(
                answer.total as usize,
                walk.len(),
                "step {step}: ListDevices total {list:?} {scope:?}"
            );
            assert!(
                answer
                    .devices
                    .iter()
                    .all(|d| district.is_empty() || d.district == district)
            );
            // The same devices in pages of 3.
            let (mut paged, mut token) = (Vec::new(), String::new());
            loop {
                let page = v1::ListDevicesRequest {
                    page_size: 3,
                    page_token: token,
                    ..list.clone()
                };
                let answer = devices::list(state, &page, &visible).unwrap();
                assert!(answer.devices.len() <= 3);
                paged.extend(answer.devices.into_iter().map(|d| d.device_id));
                if answer.next_page_token.is_empty() {
                    break;
                }
                token = answer.next_page_token;
            }
            assert_eq!(paged, walk, "step {step}: in pages {list:?} {scope:?}");
        }
    }
}

#[test]
fn the_fleet_counts_equal_a_full_recount_after_random_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut state = db.write();
    let mut rng = StdRng::seed_from_u64(18);
    let (mut now, mut seq) = (1_000_000, 0);
    let mut seen_states = std::collections::HashSet::new();
    for i in 0..3000 {
        now += rng.random_range(0..40_000);
        step(&mut state, &mut rng, now, &mut seq);
        compare(&state, i);
        let all = summary(
            &state,
            &Default::default(),
            &Visible::of(&Scope::default(), &state),
        )
        .all
        .unwrap_or_default();
        for (n, s) in [
            (all.unknown, "unknown"),
            (all.online, "online"),
            (all.late, "late"),
            (all.offline, "offline"),
            (all.unreachable, "unreachable"),
        ] {
            if n > 0 {
                seen_states.insert(s);
            }
        }
    }
    // The walk went through every state, so every kind of transition was counted.
    assert_eq!(seen_states.len(), 5, "{seen_states:?}");
}
