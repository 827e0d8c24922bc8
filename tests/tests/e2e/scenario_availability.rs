//! firmware-sim scenarios end to end: the devices act out each scenario over real MQTT against
//! an in-process citytel whose clock only the test moves, and what citytel's gRPC API reports
//! for every device (availability % to 0.01 %, time per state, outage list, MTTR/MTBF,
//! completeness, state history, reboots, clock offset) must equal exactly the figures computed
//! independently from the scenario's ground truth (`citytel_tests::scenario_expect`). A second
//! test stops citytel in the middle of a scenario and starts it again on the same data directory.
//! A third (feature `interop`: needs Debian's `mosquitto`) runs every built-in through a real
//! Mosquitto that citytel consumes from, where only Last Wills tell of dropped connections.

use std::collections::BTreeMap;

use citytel_firmware_sim::scenario::{self, BUILTINS, DeviceCondition, RunOptions, ScenarioReport};
use citytel_proto::v1::get_availability_request::Target;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{
    DeviceState, GetAvailabilityRequest, GetAvailabilityResponse, GetDeviceRequest,
    ListStateHistoryRequest,
};
use citytel_tests::scenario::{ManualPacer, PlannedRestart};
use citytel_tests::scenario_expect::{Expected, Graces, Restart, State, Transport, expect_via};
use tonic::transport::Channel;

const MINUTE: i64 = 60_000;

/// Where scenario time starts: a whole minute a day ago (recent enough for every retention).
fn start_ms() -> i64 {
    let now = citytel_ingest::clock::system_now_ms();
    now - now.rem_euclid(MINUTE) - 24 * 60 * MINUTE
}

/// Runs built-in `name` against a fresh citytel; returns the ground truth and the pacer.
async fn run_builtin(
    name: &str,
    dir: &std::path::Path,
    restart: impl Fn(i64) -> Option<PlannedRestart>,
) -> (ScenarioReport, ManualPacer) {
    let scenario = scenario::builtin(name).expect("built-in scenario");
    let start = start_ms();
    let mut pacer = ManualPacer::start(dir, start, restart(start)).await;
    let report = scenario::run(&scenario, &RunOptions::starting_at(start), &mut pacer).await;
    (report, pacer)
}

fn state_of(wire: i32) -> State {
    match DeviceState::try_from(wire) {
        Ok(DeviceState::Online) => State::Online,
        Ok(DeviceState::Late) => State::Late,
        Ok(DeviceState::Offline) => State::Offline,
        Ok(DeviceState::Unreachable) => State::Unreachable,
        _ => State::Unknown,
    }
}

async fn availability(
    client: &mut QueryServiceClient<Channel>,
    device: &str,
    report: &ScenarioReport,
) -> GetAvailabilityResponse {
    client
        .get_availability(GetAvailabilityRequest {
            target: Some(Target::DeviceId(device.to_string())),
            start_unix_ms: report.start_unix_ms,
            end_unix_ms: report.end_unix_ms,
            outage_limit: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("GetAvailability {device}: {e}"))
        .into_inner()
}

/// Asserts that citytel reports exactly what the ground truth implies, device by device.
async fn assert_matches(
    client: &mut QueryServiceClient<Channel>,
    report: &ScenarioReport,
    restarts: &[Restart],
    transport: Transport,
) -> BTreeMap<String, Expected> {
    let expected = expect_via(report, Graces::default(), restarts, transport);
    for truth in &report.devices {
        let id = truth.device_id.as_str();
        let want = &expected[id];
        let ctx = format!("{} / {id}", report.scenario);

        let history = client
            .list_state_history(ListStateHistoryRequest {
                device_id: id.to_string(),
                start_unix_ms: report.start_unix_ms,
                end_unix_ms: report.end_unix_ms,
            })
            .await
            .unwrap_or_else(|e| panic!("{ctx}: ListStateHistory: {e}"))
            .into_inner();
        let got_changes: Vec<(i64, State, String)> = history
            .transitions
            .iter()
            .map(|t| {
                (
                    t.at_unix_ms - report.start_unix_ms,
                    state_of(t.to),
                    t.cause.clone(),
                )
            })
            .collect();
        let want_changes: Vec<(i64, State, String)> = want
            .changes
            .iter()
            .map(|c| (c.at_ms - report.start_unix_ms, c.to, c.cause.to_string()))
            .collect();
        assert_eq!(
            got_changes, want_changes,
            "{ctx}: state history (ms from start)"
        );
        let got_reboots: Vec<(i64, u64, u64)> = history
            .reboots
            .iter()
            .map(|r| (r.at_unix_ms, r.old_boot_id, r.new_boot_id))
            .collect();
        assert_eq!(got_reboots, want.reboots, "{ctx}: reboots");

        let got = availability(client, id, report).await;
        let d = got.durations.unwrap_or_default();
        assert_eq!(
            (
                d.online_ms,
                d.late_ms,
                d.offline_ms,
                d.unreachable_ms,
                d.unknown_ms,
                d.maintenance_ms
            ),
            (
                want.online_ms,
                want.late_ms,
                want.offline_ms,
                want.unreachable_ms,
                want.unknown_ms,
                0
            ),
            "{ctx}: time per state (online, late, offline, unreachable, unknown, maintenance)"
        );
        match (got.availability_percent, want.availability_percent()) {
            (Some(g), Some(w)) => assert!(
                (g - w).abs() < 0.005,
                "{ctx}: availability {g} %, want {w} %"
            ),
            (g, w) => assert_eq!(g, w, "{ctx}: availability"),
        }
        let mut got_outages: Vec<(i64, i64, i64, String, bool, bool)> = got
            .outages
            .iter()
            .map(|o| {
                (
                    o.start_unix_ms,
                    o.end_unix_ms,
                    o.duration_ms,
                    o.cause.clone(),
                    o.open,
                    o.began_before,
                )
            })
            .collect();
        got_outages.sort();
        let want_outages: Vec<(i64, i64, i64, String, bool, bool)> = want
            .outages
            .iter()
            .map(|o| {
                (
                    o.start_ms,
                    o.end_ms,
                    o.duration_ms,
                    o.cause.to_string(),
                    o.open,
                    o.began_before,
                )
            })
            .collect();
        assert_eq!(got_outages, want_outages, "{ctx}: outages");
        assert_eq!(
            got.outages_started as usize,
            want.outages.iter().filter(|o| !o.began_before).count(),
            "{ctx}: outages started"
        );
        assert_eq!(
            (got.mttr_ms, got.mtbf_ms),
            (want.mttr_ms(), want.mtbf_ms()),
            "{ctx}: MTTR, MTBF"
        );
        assert_eq!(
            (got.readings_received, got.readings_expected),
            (want.readings_received, want.readings_expected),
            "{ctx}: completeness (received, expected)"
        );

        let device = client
            .get_device(GetDeviceRequest {
                device_id: id.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("{ctx}: GetDevice: {e}"))
            .into_inner()
            .device
            .expect("device");
        assert_eq!(
            device.clock_offset_ms,
            Some(-truth.clock_skew_ms),
            "{ctx}: clock offset"
        );
        assert_eq!(device.gateway_id, truth.gateway_id, "{ctx}: gateway");
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_scenario_is_reported_exactly() {
    for builtin in BUILTINS {
        let dir = tempfile::tempdir().expect("temp dir");
        let (report, mut pacer) = run_builtin(builtin.name, dir.path(), |_| None).await;
        assert!(
            pacer.steps > 50,
            "{}: the scenario ran ({} steps)",
            builtin.name,
            pacer.steps
        );
        let mut client = pacer.client();
        let expected = assert_matches(&mut client, &report, &[], Transport::Endpoint).await;

        // The scenarios show what they promise, in citytel's own figures.
        let e = |id: &str| &expected[id];
        match builtin.name {
            "power-cut" => {
                let cab = e("cab-hs-01");
                assert_eq!(cab.outages.len(), 1);
                assert_eq!(cab.outages[0].duration_ms, 10 * MINUTE);
                assert_eq!(cab.outages[0].cause, "last_will");
                let pct = cab.availability_percent().expect("observed");
                assert!(
                    (pct - 60.0).abs() < 1e-9,
                    "15 of 25 observed minutes: {pct}"
                );
                assert_eq!(
                    cab.reboots.len(),
                    1,
                    "the cabinets boot again after the cut"
                );
                assert_eq!(e("cell-mkt-01").availability_percent(), Some(100.0));
            }
            "gateway-failure" => {
                let gw = e("gw-park-01");
                assert_eq!(gw.offline_ms, 10 * MINUTE);
                for sensor in ["sen-park-01", "sen-park-02", "sen-park-03"] {
                    let s = e(sensor);
                    assert_eq!(s.offline_ms, 0, "{sensor}: unreachable, not down");
                    // Unreachable from the gateway's Last Will at 6m (not 45 s after the
                    // sensor was last heard) until the gateway is back at 16m.
                    assert_eq!(s.unreachable_ms, 10 * MINUTE, "{sensor}");
                    let truth = report.device(sensor).expect("in the report");
                    assert_eq!(
                        s.unreachable_ms,
                        truth.time_in(DeviceCondition::Unreachable),
                        "{sensor}: as long as the ground truth says it was cut off"
                    );
                    let start = report.start_unix_ms;
                    assert!(
                        s.changes.iter().any(|c| c.at_ms - start == 6 * MINUTE
                            && c.to == State::Unreachable
                            && c.cause == "gateway_offline"),
                        "{sensor}: {:?}",
                        s.changes
                    );
                    assert_eq!(s.availability_percent(), Some(100.0), "{sensor}");
                }
                let lossy = e("sen-park-01");
                assert!(
                    lossy.readings_received < lossy.readings_expected,
                    "lost readings show as gaps"
                );
                let buffered = e("sen-park-03");
                assert_eq!(
                    buffered.readings_received, buffered.readings_expected,
                    "backfilled in full"
                );
            }
            "reboot-loop" => {
                let cell = e("cell-stn-07");
                assert_eq!(cell.reboots.len(), 5);
                assert_eq!(cell.outages.len(), 5);
                assert!(
                    cell.outages
                        .iter()
                        .all(|o| o.duration_ms == 30_000 && o.cause == "rebooting")
                );
                // Hung at 12m, last heard at 11m50s: late 15 s and offline 30 s after that, by
                // silence alone, until the watchdog's new boot connects at 15m (taking the hung
                // connection over: no end of connection, so no Offline from it).
                let cab = e("cab-stn-01");
                let start = report.start_unix_ms;
                let changes: Vec<(i64, State, &str)> = cab
                    .changes
                    .iter()
                    .map(|c| (c.at_ms - start, c.to, c.cause))
                    .collect();
                assert_eq!(
                    changes,
                    vec![
                        (0, State::Online, "connected"),
                        (12 * MINUTE + 5_000, State::Late, "heartbeat_missed"),
                        (12 * MINUTE + 20_000, State::Offline, "silent"),
                        (15 * MINUTE, State::Online, "connected"),
                    ]
                );
                assert_eq!(cab.late_ms, 15_000);
                assert_eq!(cab.reboots.len(), 1);
            }
            "clock-skew" => {
                assert_eq!(
                    report.device("sen-lib-01").map(|d| d.clock_skew_ms),
                    Some(-95_000)
                );
            }
            "backfill" => {
                let full = e("cab-dock-01");
                assert_eq!(full.readings_received, full.readings_expected);
                let lossy = e("cab-dock-02");
                assert_eq!(
                    lossy.readings_expected - lossy.readings_received,
                    48,
                    "8 minutes of readings lost"
                );
                assert_eq!(full.outages.len(), 1);
                assert_eq!(full.outages[0].duration_ms, 8 * MINUTE);
            }
            "flapping-link" => {
                let cell = e("cell-hill-02");
                assert_eq!(cell.outages.len(), 6);
                assert_eq!(
                    cell.readings_expected - cell.readings_received,
                    6,
                    "one reading per flap"
                );
            }
            "sleepy-sensor" => {
                let start = report.start_unix_ms;
                let changes = |id: &str| -> Vec<(i64, State, &str)> {
                    e(id)
                        .changes
                        .iter()
                        .map(|c| (c.at_ms - start, c.to, c.cause))
                        .collect()
                };
                // A session every 20 s, each ended by a clean DISCONNECT, and online throughout,
                // as the ground truth says it was up.
                let truth = report.device("sen-allot-01").expect("sen-allot-01");
                let sessions = truth
                    .deliveries
                    .iter()
                    .filter(|d| matches!(d.what, scenario::Delivered::Disconnect))
                    .count();
                assert_eq!(
                    sessions, 61,
                    "sessions of sen-allot-01: 60 in the run, and its last heartbeat's at the end"
                );
                assert_eq!(truth.time_in(DeviceCondition::Up), 20 * MINUTE);
                assert_eq!(changes("sen-allot-01"), [(0, State::Online, "connected")]);
                let awake = e("sen-allot-01");
                assert_eq!(awake.online_ms, 20 * MINUTE);
                assert_eq!(awake.availability_percent(), Some(100.0));
                // The other's battery runs flat at 8m while it sleeps, after its session at
                // 7m40s: late after 30 s, offline after 60 s of silence, back with a fresh boot.
                assert_eq!(
                    changes("sen-allot-02"),
                    [
                        (0, State::Online, "connected"),
                        (8 * MINUTE + 10_000, State::Late, "heartbeat_missed"),
                        (8 * MINUTE + 40_000, State::Offline, "silent"),
                        (14 * MINUTE, State::Online, "connected"),
                    ]
                );
                let flat = e("sen-allot-02");
                assert_eq!(flat.outages.len(), 1);
                assert_eq!(flat.outages[0].duration_ms, 5 * MINUTE + 20_000);
                assert_eq!(flat.reboots.len(), 1);
            }
            other => panic!("no expectations written for built-in {other}"),
        }
        pacer.ingester.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_scenario_keeps_history_and_figures_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (report, mut pacer) = run_builtin("power-cut", dir.path(), |start| {
        Some(PlannedRestart {
            stop_after_ms: start + 10 * MINUTE,
            start_at_ms: start + 11 * MINUTE,
        })
    })
    .await;
    let start = report.start_unix_ms;
    assert_eq!(
        pacer.restarts,
        vec![Restart {
            stopped_ms: start + 10 * MINUTE,
            started_ms: start + 11 * MINUTE
        }],
        "citytel was down from minute 10 to minute 11"
    );
    let mut client = pacer.client();
    let expected = assert_matches(&mut client, &report, &pacer.restarts, Transport::Endpoint).await;

    // While citytel was down nothing is known, not down. The cabinets, powered off since minute
    // 5, are unknown from the stop and offline again once silent for 30 s after the restart.
    let cab = &expected["cab-hs-01"];
    let spans: Vec<(i64, i64, &str)> = cab
        .outages
        .iter()
        .map(|o| (o.start_ms - start, o.end_ms - start, o.cause))
        .collect();
    assert_eq!(
        spans,
        vec![
            (5 * MINUTE, 10 * MINUTE, "last_will"),
            (11 * MINUTE + 30_000, 15 * MINUTE, "silent")
        ]
    );
    assert_eq!(cab.unknown_ms, MINUTE + 30_000);
    let cell = &expected["cell-mkt-01"];
    assert_eq!(cell.unknown_ms, MINUTE);
    assert_eq!(cell.availability_percent(), Some(100.0));
    assert_eq!(
        (cell.readings_received, cell.readings_expected),
        (145, 150),
        "the five readings taken while citytel was down are missing"
    );
    pacer.ingester.stop().await;
}

/// The built-ins through a real Mosquitto broker: the devices publish to it and citytel consumes
/// with its broker source, on the same manual clock. citytel sees no connections there, so births
/// and Last Wills alone tell when a device comes and goes; everything else must be as exact.
#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_scenario_through_mosquitto_is_reported_exactly() {
    use citytel_testkit::mosquitto::Mosquitto;
    use citytel_tests::scenario_expect::takeover_wills;
    for builtin in BUILTINS {
        // A broker of its own per scenario: citytel's persistent session starts empty.
        let broker_dir = tempfile::tempdir().expect("temp dir");
        let mosquitto = Mosquitto::start(broker_dir.path())
            .await
            .expect("start mosquitto");
        let dir = tempfile::tempdir().expect("temp dir");
        let scenario = scenario::builtin(builtin.name).expect("built-in scenario");
        let start = start_ms();
        let mut pacer = ManualPacer::start_via_broker(dir.path(), start, mosquitto.port()).await;
        let report = scenario::run(&scenario, &RunOptions::starting_at(start), &mut pacer).await;
        assert!(
            pacer.steps > 50,
            "{}: the scenario ran ({} steps)",
            builtin.name,
            pacer.steps
        );
        let mut client = pacer.client();
        let expected = assert_matches(&mut client, &report, &[], Transport::Broker).await;

        // citytel took from the broker exactly what the devices delivered (a clean DISCONNECT
        // is no message), the Last Wills of takeovers and the pacer's barrier heartbeats (one per
        // step): nothing lost, nothing extra.
        let delivered: usize = report
            .devices
            .iter()
            .flat_map(|d| &d.deliveries)
            .filter(|d| !matches!(d.what, scenario::Delivered::Disconnect))
            .count();
        let takeovers: usize = report.devices.iter().map(|d| takeover_wills(d).len()).sum();
        assert_eq!(
            pacer.ingester.broker_messages_taken(),
            Some(delivered as u64 + takeovers as u64 + pacer.steps),
            "{}: messages citytel took from Mosquitto",
            builtin.name
        );

        let e = |id: &str| &expected[id];
        match builtin.name {
            "power-cut" => {
                let cab = e("cab-hs-01");
                assert_eq!(cab.outages.len(), 1);
                assert_eq!(cab.outages[0].duration_ms, 10 * MINUTE);
                assert_eq!(cab.outages[0].cause, "last_will", "Mosquitto's Last Will");
            }
            "reboot-loop" => {
                // The watchdog's new boot takes the hung connection over at 15m and Mosquitto
                // publishes its Last Will first (offline by silence already: no change).
                let truth = report.device("cab-stn-01").expect("cab-stn-01");
                assert_eq!(
                    takeover_wills(truth),
                    vec![(start + 15 * MINUTE, truth.boots[0].boot_id)]
                );
                // As through the endpoint, but Online by the births: citytel sees no connections.
                let cab = e("cab-stn-01");
                let changes: Vec<(i64, State, &str)> = cab
                    .changes
                    .iter()
                    .map(|c| (c.at_ms - start, c.to, c.cause))
                    .collect();
                assert_eq!(
                    changes,
                    vec![
                        (0, State::Online, "birth"),
                        (12 * MINUTE + 5_000, State::Late, "heartbeat_missed"),
                        (12 * MINUTE + 20_000, State::Offline, "silent"),
                        (15 * MINUTE, State::Online, "birth"),
                    ]
                );
            }
            "sleepy-sensor" => {
                // The broker publishes nothing for a clean DISCONNECT: online throughout.
                let sleepy = e("sen-allot-01");
                let changes: Vec<(i64, State, &str)> = sleepy
                    .changes
                    .iter()
                    .map(|c| (c.at_ms - start, c.to, c.cause))
                    .collect();
                assert_eq!(changes, [(0, State::Online, "birth")]);
                assert_eq!(sleepy.availability_percent(), Some(100.0));
            }
            _ => {}
        }
        pacer.ingester.stop().await;
        drop(pacer);
        mosquitto.stop().expect("stop mosquitto");
    }
}
