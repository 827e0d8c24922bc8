//! Every unary RPC, for each of the three keys: what it answers, what it refuses, and that no
//! answer names a device or metric outside the key's scope. Aggregates across devices are
//! compared with values computed here from what was published; site and district availability
//! with the rollup of the admin's per-device answers over the devices the key sees.

use std::collections::BTreeMap;

use citytel_proto::v1::maintenance_window::Target;
use citytel_proto::v1::{self, get_availability_request::Target as AvTarget};
use citytel_tests::wire::now_ms;
use tonic::Code;

use super::{DEVICES, Fleet, Query, Who, district, place};

/// The RPCs of the table.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    ListDevices,
    GetDevice,
    GetLatest,
    ListLatest,
    QueryRange,
    QuerySeries,
    GetFleetSummary,
    ListStateHistory,
    GetAvailability,
    ListAvailability,
    ListMaintenance,
    SetMaintenance,
    DeleteMaintenance,
    ListDeadLetters,
}

const RPCS: [Rpc; 14] = [
    Rpc::ListDevices,
    Rpc::GetDevice,
    Rpc::GetLatest,
    Rpc::ListLatest,
    Rpc::QueryRange,
    Rpc::QuerySeries,
    Rpc::GetFleetSummary,
    Rpc::ListStateHistory,
    Rpc::GetAvailability,
    Rpc::ListAvailability,
    Rpc::ListMaintenance,
    Rpc::SetMaintenance,
    Rpc::DeleteMaintenance,
    Rpc::ListDeadLetters,
];

/// What every check needs.
struct Ctx<'a> {
    fleet: &'a Fleet,
    who: &'a Who,
    client: Query,
    admin: Query,
    /// A window of availability in the past (so answers do not move).
    window: (i64, i64),
    /// The maintenance windows the admin set: (target, id).
    windows: Vec<(Target, u64)>,
}

/// The code and message of a refusal.
fn refused<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("refused");
    (s.code(), s.message().to_string())
}

/// A device outside the key's scope is refused exactly like an unknown one.
fn not_found_like_unknown(ctx: &Ctx<'_>, rpc: Rpc, id: &str, got: (Code, String)) {
    assert_eq!(
        got,
        (Code::NotFound, format!("device {id:?} not found")),
        "{}: {rpc:?} of {id}",
        ctx.who.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_only_what_each_key_sees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = Fleet::start(&dir.path().join("data")).await;
    let mut admin = fleet.query(0).await;
    let mut windows = Vec::new();
    for target in [
        Target::DeviceId("cab-n1".into()),
        Target::DeviceId("sen-e1".into()),
        Target::Site("site-s1".into()),
        Target::Site("site-x".into()),
    ] {
        let w = admin
            .set_maintenance(v1::SetMaintenanceRequest {
                window: Some(maintenance(target.clone())),
            })
            .await
            .expect("the admin sets any window")
            .into_inner()
            .window
            .expect("the window");
        windows.push((target, w.id));
    }
    let window = (fleet.start_ms - 3_600_000, now_ms() - 1_000);
    for (i, who) in fleet.who.iter().enumerate() {
        let ctx = Ctx {
            fleet: &fleet,
            who,
            client: fleet.query(i).await,
            admin: admin.clone(),
            window,
            windows: windows.clone(),
        };
        for rpc in RPCS {
            check(rpc, &ctx).await;
        }
    }
    fleet.citytel.stop();
}

fn maintenance(target: Target) -> v1::MaintenanceWindow {
    v1::MaintenanceWindow {
        id: 0,
        target: Some(target),
        start_unix_ms: now_ms() + 86_400_000,
        end_unix_ms: now_ms() + 2 * 86_400_000,
        reason: "works".into(),
    }
}

async fn check(rpc: Rpc, ctx: &Ctx<'_>) {
    let who = ctx.who;
    let mut c = ctx.client.clone();
    match rpc {
        Rpc::ListDevices => {
            let a = c
                .list_devices(v1::ListDevicesRequest::default())
                .await
                .expect("ListDevices")
                .into_inner();
            let ids: Vec<&str> = a.devices.iter().map(|d| d.device_id.as_str()).collect();
            assert_eq!(ids, who.devices(), "{}", who.name);
            assert_eq!(a.total as usize, ids.len(), "{}: total", who.name);
            for d in &a.devices {
                assert_eq!(d.metrics, who.metrics(&d.device_id), "{}", who.name);
                who.check(
                    "ListDevices",
                    [d.device_id.as_str()],
                    d.metrics.iter().map(String::as_str),
                );
            }
        }
        Rpc::GetDevice | Rpc::GetLatest | Rpc::ListStateHistory => {
            for id in DEVICES.iter().map(|d| d.0).chain(["nowhere-1"]) {
                let answer = one_device(rpc, &mut c, ctx, id).await;
                match answer {
                    Ok((devices, metrics)) => {
                        assert!(who.sees(id), "{}: {rpc:?} of {id} answered", who.name);
                        who.check(
                            "one device",
                            devices.iter().map(String::as_str),
                            metrics.iter().map(String::as_str),
                        );
                    }
                    Err(got) => {
                        assert!(
                            id == "nowhere-1" || !who.sees(id),
                            "{}: {rpc:?} {id}: {got:?}",
                            who.name
                        );
                        not_found_like_unknown(ctx, rpc, id, got);
                    }
                }
            }
        }
        Rpc::ListLatest => {
            let a = c
                .list_latest(v1::ListLatestRequest::default())
                .await
                .expect("ListLatest")
                .into_inner();
            let ids: Vec<&str> = a.devices.iter().map(|d| d.device_id.as_str()).collect();
            assert_eq!(ids, who.devices(), "{}", who.name);
            for d in &a.devices {
                let metrics: Vec<&str> = d.values.iter().map(|v| v.metric.as_str()).collect();
                assert_eq!(metrics, who.metrics(&d.device_id), "{}", who.name);
                for v in &d.values {
                    let last = ctx.fleet.truth[&(d.device_id.clone(), v.metric.clone())]
                        .last()
                        .copied();
                    assert_eq!(Some((v.time_unix_ms, v.value)), last);
                }
            }
            for id in ["sen-s1", "cab-x", "nowhere-1"]
                .into_iter()
                .filter(|id| !who.sees(id))
            {
                let got = refused(
                    c.list_latest(v1::ListLatestRequest {
                        devices: Some(v1::DeviceSelector {
                            device_ids: vec![id.into()],
                            ..v1::DeviceSelector::default()
                        }),
                        ..v1::ListLatestRequest::default()
                    })
                    .await,
                );
                not_found_like_unknown(ctx, rpc, id, got);
            }
        }
        Rpc::QueryRange => {
            for ((device, metric), points) in &ctx.fleet.truth {
                let got = c
                    .query_range(v1::QueryRangeRequest {
                        device_id: device.clone(),
                        metric: metric.clone(),
                        start_unix_ms: 0,
                        end_unix_ms: i64::MAX,
                        time_runs: false,
                    })
                    .await;
                match (who.sees(device), who.sees_metric(metric)) {
                    (true, true) => {
                        let got = got.expect("QueryRange").into_inner();
                        let got: Vec<(i64, f64)> =
                            got.times_unix_ms.iter().copied().zip(got.values).collect();
                        assert_eq!(&got, points, "{}: {device} {metric}", who.name);
                    }
                    (true, false) => {
                        // Exactly like a metric the device never reported.
                        let unknown = refused(
                            c.query_range(v1::QueryRangeRequest {
                                device_id: device.clone(),
                                metric: "never_reported".into(),
                                start_unix_ms: 0,
                                end_unix_ms: i64::MAX,
                                time_runs: false,
                            })
                            .await,
                        );
                        let got = refused(got);
                        assert_eq!(got.0, Code::NotFound);
                        assert_eq!(got.1, unknown.1.replace("never_reported", metric));
                    }
                    (false, _) => not_found_like_unknown(ctx, rpc, device, refused(got)),
                }
            }
        }
        Rpc::QuerySeries => query_series(ctx, &mut c).await,
        Rpc::GetFleetSummary => {
            let a = c
                .get_fleet_summary(v1::GetFleetSummaryRequest::default())
                .await
                .expect("GetFleetSummary")
                .into_inner();
            let visible = who.devices();
            assert_eq!(
                a.all.expect("all").total as usize,
                visible.len(),
                "{}",
                who.name
            );
            let count = |key: fn(&str) -> Option<&'static str>| {
                let mut m: BTreeMap<String, u32> = BTreeMap::new();
                for d in &visible {
                    if let Some(k) = key(d) {
                        *m.entry(k.to_string()).or_default() += 1;
                    }
                }
                m
            };
            let totals = |m: &std::collections::HashMap<String, v1::StateCounts>| {
                m.iter()
                    .map(|(k, c)| (k.clone(), c.total))
                    .collect::<BTreeMap<_, _>>()
            };
            assert_eq!(
                totals(&a.by_kind),
                count(|d| Some(place(d).1)),
                "{}",
                who.name
            );
            assert_eq!(
                totals(&a.by_site),
                count(|d| Some(place(d).0)),
                "{}",
                who.name
            );
            assert_eq!(
                totals(&a.by_district),
                count(|d| district(place(d).0)),
                "{}",
                who.name
            );
            who.check(
                "GetFleetSummary attention",
                a.attention.iter().map(String::as_str),
                [],
            );
        }
        Rpc::GetAvailability => availability(ctx, &mut c).await,
        Rpc::ListAvailability => {
            let a = c
                .list_availability(v1::ListAvailabilityRequest {
                    devices: None,
                    windows: vec![v1::Window {
                        start_unix_ms: ctx.window.0,
                        end_unix_ms: ctx.window.1,
                    }],
                })
                .await
                .expect("ListAvailability")
                .into_inner();
            let ids: Vec<&str> = a.devices.iter().map(|d| d.device_id.as_str()).collect();
            assert_eq!(ids, who.devices(), "{}", who.name);
        }
        Rpc::ListMaintenance => {
            let a = c
                .list_maintenance(v1::ListMaintenanceRequest {})
                .await
                .expect("ListMaintenance")
                .into_inner();
            let got: Vec<u64> = a.windows.iter().map(|w| w.id).collect();
            // Windows of devices it sees, and of sites where it sees at least one device.
            let want: Vec<u64> = ctx
                .windows
                .iter()
                .filter(|(t, _)| match t {
                    Target::DeviceId(d) => who.sees(d),
                    Target::Site(s) => DEVICES.iter().any(|(d, site, _)| site == s && who.sees(d)),
                })
                .map(|(_, id)| *id)
                .collect();
            assert_eq!(got, want, "{}", who.name);
        }
        Rpc::SetMaintenance | Rpc::DeleteMaintenance => change_maintenance(rpc, ctx, &mut c).await,
        Rpc::ListDeadLetters => {
            let got = c
                .list_dead_letters(v1::ListDeadLettersRequest::default())
                .await;
            match who.role {
                "admin" => drop(got.expect("an admin reads dead letters")),
                _ => assert_eq!(refused(got).0, Code::PermissionDenied, "{}", who.name),
            }
        }
    }
}

/// The devices and metrics named by GetDevice, GetLatest or ListStateHistory of `id`, or the
/// refusal.
async fn one_device(
    rpc: Rpc,
    c: &mut Query,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<(Vec<String>, Vec<String>), (Code, String)> {
    let fail = |s: tonic::Status| (s.code(), s.message().to_string());
    match rpc {
        Rpc::GetDevice => {
            let d = c
                .get_device(v1::GetDeviceRequest {
                    device_id: id.into(),
                })
                .await
                .map_err(fail)?
                .into_inner()
                .device
                .expect("device");
            assert_eq!(d.metrics, ctx.who.metrics(id), "{}", ctx.who.name);
            assert_eq!(d.district, district(place(id).0).unwrap_or(""));
            Ok((vec![d.device_id], d.metrics))
        }
        Rpc::GetLatest => {
            let a = c
                .get_latest(v1::GetLatestRequest {
                    device_id: id.into(),
                })
                .await
                .map_err(fail)?
                .into_inner();
            let metrics: Vec<String> = a.values.iter().map(|v| v.metric.clone()).collect();
            assert_eq!(metrics, ctx.who.metrics(id), "{}", ctx.who.name);
            Ok((vec![a.device_id], metrics))
        }
        _ => {
            let a = c
                .list_state_history(v1::ListStateHistoryRequest {
                    device_id: id.into(),
                    start_unix_ms: 0,
                    end_unix_ms: i64::MAX,
                })
                .await
                .map_err(fail)?
                .into_inner();
            assert!(!a.transitions.is_empty(), "{id} has come online");
            let devices = a.transitions.into_iter().map(|t| t.device_id).collect();
            Ok((devices, Vec::new()))
        }
    }
}

/// QuerySeries: selection among visible devices only, so the cross-device average is the one
/// of the visible devices; computed here from what was published.
async fn query_series(ctx: &Ctx<'_>, c: &mut Query) {
    let who = ctx.who;
    let step = 60_000;
    for (kind, metric) in [
        ("sensor", "no2_ugm3"),
        ("sensor", "temperature_c"),
        ("cabinet", "temperature_c"),
    ] {
        let request = |across: v1::Aggregation| v1::QuerySeriesRequest {
            devices: Some(v1::DeviceSelector {
                kind: kind.into(),
                ..v1::DeviceSelector::default()
            }),
            metric: metric.into(),
            start_unix_ms: ctx.fleet.start_ms,
            end_unix_ms: ctx.fleet.start_ms + 3_600_000,
            step_ms: step,
            aggregation: v1::Aggregation::Avg as i32,
            across: across as i32,
        };
        let visible: Vec<&str> = who
            .devices()
            .into_iter()
            .filter(|d| place(d).1 == kind && who.sees_metric(metric))
            .collect();
        let per_device = c
            .query_series(request(v1::Aggregation::Unspecified))
            .await
            .expect("QuerySeries")
            .into_inner();
        let ids: Vec<&str> = per_device
            .series
            .iter()
            .map(|s| s.device_id.as_str())
            .collect();
        assert_eq!(ids, visible, "{}: {kind} {metric}", who.name);
        who.check(
            "QuerySeries",
            ids,
            [metric].into_iter().filter(|_| !visible.is_empty()),
        );
        let across = c
            .query_series(request(v1::Aggregation::Avg))
            .await
            .expect("QuerySeries across")
            .into_inner();
        // Per bucket: the mean over the visible devices of each device's mean.
        let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for d in &visible {
            let mut mine: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (t, v) in &ctx.fleet.truth[&(d.to_string(), metric.to_string())] {
                mine.entry(t - t.rem_euclid(step)).or_default().push(*v);
            }
            for (b, vs) in mine {
                buckets
                    .entry(b)
                    .or_default()
                    .push(vs.iter().sum::<f64>() / vs.len() as f64);
            }
        }
        let want: Vec<(i64, f64)> = buckets
            .into_iter()
            .map(|(b, means)| (b, means.iter().sum::<f64>() / means.len() as f64))
            .collect();
        match across.series.as_slice() {
            [] => assert!(
                want.is_empty(),
                "{}: {kind} {metric}: no aggregate",
                who.name
            ),
            [s] => {
                let got: Vec<(i64, f64)> = s
                    .times_unix_ms
                    .iter()
                    .copied()
                    .zip(s.values.iter().copied())
                    .collect();
                assert_eq!(got.len(), want.len(), "{}: {kind} {metric}", who.name);
                for ((gt, gv), (wt, wv)) in got.iter().zip(&want) {
                    assert_eq!(gt, wt);
                    assert!(
                        (gv - wv).abs() < 1e-9,
                        "{}: {kind} {metric} at {gt}: {gv} vs {wv}",
                        who.name
                    );
                }
            }
            more => panic!("one aggregate series, got {}", more.len()),
        }
    }
    // An explicit id of a device it does not see is an unknown device.
    for id in DEVICES.iter().map(|d| d.0).filter(|d| !who.sees(d)) {
        let got = refused(
            c.query_series(v1::QuerySeriesRequest {
                devices: Some(v1::DeviceSelector {
                    device_ids: vec![id.into()],
                    ..v1::DeviceSelector::default()
                }),
                metric: "temperature_c".into(),
                start_unix_ms: 0,
                end_unix_ms: i64::MAX,
                ..v1::QuerySeriesRequest::default()
            })
            .await,
        );
        not_found_like_unknown(ctx, Rpc::QuerySeries, id, got);
    }
}

/// Site and district availability: the rollup over the visible devices only, equal to the sum of
/// the admin's answers for each of them; a site or district where the key sees no device is
/// refused like one that does not exist.
async fn availability(ctx: &Ctx<'_>, c: &mut Query) {
    let who = ctx.who;
    let request = |target: AvTarget| v1::GetAvailabilityRequest {
        target: Some(target),
        start_unix_ms: ctx.window.0,
        end_unix_ms: ctx.window.1,
        outage_limit: 0,
    };
    let unknown = refused(
        c.get_availability(request(AvTarget::Site("site-nowhere".into())))
            .await,
    );
    for target in [
        AvTarget::Site("site-n1".into()),
        AvTarget::Site("site-s1".into()),
        AvTarget::Site("site-x".into()),
        AvTarget::District("north".into()),
        AvTarget::District("south".into()),
    ] {
        let members: Vec<&str> = who
            .devices()
            .into_iter()
            .filter(|d| match &target {
                AvTarget::Site(s) => place(d).0 == s,
                AvTarget::District(x) => district(place(d).0) == Some(x.as_str()),
                AvTarget::DeviceId(_) => false,
            })
            .collect();
        let got = c.get_availability(request(target.clone())).await;
        if members.is_empty() {
            assert_eq!(refused(got), unknown, "{}: {target:?}", who.name);
            continue;
        }
        let got = got.expect("GetAvailability").into_inner();
        assert_eq!(
            got.devices as usize,
            members.len(),
            "{}: {target:?}",
            who.name
        );
        who.check(
            "GetAvailability outages",
            got.outages.iter().map(|o| o.device_id.as_str()),
            [],
        );
        let mut want = v1::StateDurations::default();
        for d in &members {
            let one = ctx
                .admin
                .clone()
                .get_availability(request(AvTarget::DeviceId(d.to_string())))
                .await
                .expect("the admin's answer for one device")
                .into_inner()
                .durations
                .expect("durations");
            want.online_ms += one.online_ms;
            want.late_ms += one.late_ms;
            want.offline_ms += one.offline_ms;
            want.unreachable_ms += one.unreachable_ms;
            want.unknown_ms += one.unknown_ms;
            want.maintenance_ms += one.maintenance_ms;
        }
        assert_eq!(got.durations, Some(want), "{}: {target:?}", who.name);
    }
    for id in DEVICES.iter().map(|d| d.0).filter(|d| !who.sees(d)) {
        let got = refused(
            c.get_availability(request(AvTarget::DeviceId(id.into())))
                .await,
        );
        not_found_like_unknown(ctx, Rpc::GetAvailability, id, got);
    }
}

/// SetMaintenance and DeleteMaintenance: a viewer may not; an operator only on devices it sees
/// (others are unknown to it) and not on sites it sees only part of; an admin anywhere.
async fn change_maintenance(rpc: Rpc, ctx: &Ctx<'_>, c: &mut Query) {
    let who = ctx.who;
    let set = |target: Target| v1::SetMaintenanceRequest {
        window: Some(maintenance(target)),
    };
    let delete = |id: u64| v1::DeleteMaintenanceRequest { id };
    match (rpc, who.role) {
        (_, "viewer") => {
            let got = match rpc {
                Rpc::SetMaintenance => refused(
                    c.set_maintenance(set(Target::DeviceId("sen-n1".into())))
                        .await,
                ),
                _ => refused(c.delete_maintenance(delete(ctx.windows[1].1)).await),
            };
            assert_eq!(got.0, Code::PermissionDenied, "{}: {got:?}", who.name);
        }
        (Rpc::SetMaintenance, _) => {
            for (id, _, _) in DEVICES {
                let got = c.set_maintenance(set(Target::DeviceId(id.into()))).await;
                if who.sees(id) {
                    let w = got
                        .expect("a window on a device it sees")
                        .into_inner()
                        .window
                        .expect("window");
                    c.delete_maintenance(delete(w.id))
                        .await
                        .expect("and it deletes it");
                } else {
                    not_found_like_unknown(ctx, rpc, id, refused(got));
                }
            }
            let got = refused(
                c.set_maintenance(set(Target::Site("site-nowhere".into())))
                    .await,
            );
            assert_eq!(got.0, Code::NotFound);
            if who.role == "operator" {
                // It sees the site's cabinet, not its sensors and small cell.
                let got = refused(c.set_maintenance(set(Target::Site("site-n1".into()))).await);
                assert_eq!(got.0, Code::PermissionDenied, "{got:?}");
            } else {
                let w = c
                    .set_maintenance(set(Target::Site("site-n1".into())))
                    .await
                    .expect("admin")
                    .into_inner();
                c.delete_maintenance(delete(w.window.expect("window").id))
                    .await
                    .expect("admin deletes");
            }
        }
        (_, "operator") => {
            let nonexistent = refused(c.delete_maintenance(delete(u64::MAX)).await);
            for (target, id) in &ctx.windows {
                match target {
                    // Its own device's window stays for the other keys' ListMaintenance.
                    Target::DeviceId(d) if who.sees(d) => {}
                    Target::DeviceId(_) => {
                        let got = refused(c.delete_maintenance(delete(*id)).await);
                        let like = nonexistent
                            .1
                            .replace(&u64::MAX.to_string(), &id.to_string());
                        assert_eq!(got, (Code::NotFound, like), "{target:?}");
                    }
                    Target::Site(_) => {
                        let got = refused(c.delete_maintenance(delete(*id)).await);
                        assert_eq!(got.0, Code::PermissionDenied, "{target:?}: {got:?}");
                    }
                }
            }
        }
        _ => {
            // The admin's windows stay for the other keys' ListMaintenance.
            let got = refused(c.delete_maintenance(delete(u64::MAX)).await);
            assert_eq!(got.0, Code::NotFound);
        }
    }
}
