//! Sparkplug B host application through a real Mosquitto, against an independent Sparkplug
//! implementation: an edge node and device built on PyPI's `pysparkplug` client (`edge.py`),
//! scripted message by message. Part of the `interop` group (needs Mosquitto, Python and
//! pysparkplug: `cargo test -p citytel-tests --features interop -- sparkplug`).

mod driver;

use std::time::Duration;

use citytel_proto::v1::{DeviceState, GetDeviceRequest, ListDeadLettersRequest, QueryRangeRequest};
use citytel_testkit::mosquitto::Mosquitto;
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use serde_json::json;
use tonic::transport::Channel;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use driver::{Edge, StateWatch, now_ms};

const NODE: &str = "plant.edge1";
const PUMP: &str = "plant.edge1.pump";

fn args<'a>(mosquitto: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--broker-url",
        mosquitto,
        "--set",
        "sparkplug.enabled=true",
        "--set",
        "sparkplug.reorder_timeout=\"1s\"",
    ];
    a.extend_from_slice(extra);
    a
}

/// citytel with Sparkplug on its own device endpoint (no broker), serving, plus `extra`
/// arguments.
async fn serve_on_endpoint(dir: &std::path::Path, extra: &[&str]) -> Citytel {
    let mut args = vec![
        "--set",
        "sparkplug.enabled=true",
        "--set",
        "sparkplug.reorder_timeout=\"1s\"",
    ];
    args.extend_from_slice(extra);
    let citytel = Citytel::start(dir, &args);
    citytel.wait_serving().await;
    citytel
}

/// A Mosquitto of its own and a data directory for citytel, removed when dropped.
struct Rig {
    dir: tempfile::TempDir,
    mosquitto: Mosquitto,
    url: String,
    _broker_dir: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().expect("data directory");
        let broker_dir = tempfile::tempdir().expect("broker directory");
        let mosquitto = Mosquitto::start(broker_dir.path())
            .await
            .expect("start mosquitto");
        let url = mosquitto.url();
        Rig {
            dir,
            mosquitto,
            url,
            _broker_dir: broker_dir,
        }
    }

    /// citytel serving from the broker with Sparkplug on, plus `extra` arguments.
    async fn serve(&self, extra: &[&str]) -> Citytel {
        let citytel = Citytel::start(self.dir.path(), &args(&self.url, extra));
        citytel.wait_serving().await;
        citytel
    }
}

async fn device(
    client: &mut QueryServiceClient<Channel>,
    id: &str,
) -> Option<citytel_proto::v1::Device> {
    client
        .get_device(GetDeviceRequest {
            device_id: id.into(),
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().device)
}

async fn series(
    client: &mut QueryServiceClient<Channel>,
    id: &str,
    metric: &str,
) -> Vec<(i64, f64)> {
    let r = client
        .query_range(QueryRangeRequest {
            device_id: id.into(),
            metric: metric.into(),
            start_unix_ms: 0,
            end_unix_ms: i64::MAX,
            ..QueryRangeRequest::default()
        })
        .await
        .map(|r| r.into_inner())
        .unwrap_or_default();
    r.times_unix_ms.into_iter().zip(r.values).collect()
}

async fn dead_letters(client: &mut QueryServiceClient<Channel>, reason: &str) -> u64 {
    client
        .list_dead_letters(ListDeadLettersRequest {
            reason: reason.into(),
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("ListDeadLetters answers")
        .into_inner()
        .counts_by_reason
        .get(reason)
        .copied()
        .unwrap_or(0)
}

/// Waits until `check` holds, polling citytel.
macro_rules! eventually {
    ($what:expr, $check:expr) => {
        eventually!($what, $check, "")
    };
    ($what:expr, $check:expr, $seen:expr) => {{
        let mut wait = Wait::new($what, Duration::from_secs(30)).every(Duration::from_millis(100));
        loop {
            if $check {
                break;
            }
            if let Err(e) = wait.retry().await {
                panic!("{e}; seen {:?}", $seen);
            }
        }
    }};
}

mod endpoint;
mod tahu;

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_session_deaths_and_backfill_through_mosquitto() {
    let rig = Rig::new().await;
    let mosquitto = &rig.mosquitto;
    let citytel = rig.serve(&[]).await;
    let mut client = citytel.client().await;

    // A normal session: births, then data by alias with the metrics' own timestamps.
    let t0 = now_ms() - 60_000;
    let mut edge = Edge::start(mosquitto.port());
    edge.send(json!({"op": "connect", "bd_seq": 1, "ts": t0}));
    edge.send(json!({"op": "nbirth", "seq": 0, "bd_seq": 1, "ts": t0, "voltage": 230.5}));
    edge.send(json!({"op": "dbirth", "seq": 1, "ts": t0, "rpm": 1000}));
    let mut sent = vec![(t0, 1000.0)];
    for i in 0..5i64 {
        let ts = t0 + 1_000 * (i + 1);
        let rpm = 1_100 + 10 * i;
        edge.send(json!({"op": "ddata", "seq": 2 + i, "ts": ts, "rpm": rpm}));
        sent.push((ts, rpm as f64));
    }
    edge.send(json!({"op": "ndata", "seq": 7, "ts": t0 + 6_000, "voltage": 229.0}));
    eventually!(
        "every rpm stored",
        series(&mut client, PUMP, "rpm").await == sent,
        (
            series(&mut client, PUMP, "rpm").await,
            device(&mut client, PUMP).await
        )
    );
    eventually!(
        "the node's voltage stored",
        series(&mut client, NODE, "Supply.Voltage").await == [(t0, 230.5), (t0 + 6_000, 229.0)]
    );
    assert_eq!(series(&mut client, PUMP, "running").await, [(t0, 1.0)]);
    let pump = device(&mut client, PUMP).await.unwrap();
    assert_eq!(pump.gateway_id.as_deref(), Some(NODE));
    assert_eq!(pump.kind, "sensor");
    assert_eq!(pump.site, "plant");
    assert_eq!(pump.state(), DeviceState::Online);
    let node = device(&mut client, NODE).await.unwrap();
    assert_eq!(
        (node.kind.as_str(), node.state()),
        ("gateway", DeviceState::Online)
    );

    // Backfill: stored, the latest value stays the newest.
    let old = t0 - 3_600_000;
    edge.send(json!({"op": "ddata", "seq": 8, "ts": old, "sent": t0 + 7_000, "rpm": 7, "historical": true}));
    eventually!(
        "the historical value stored",
        series(&mut client, PUMP, "rpm").await.first() == Some(&(old, 7.0))
    );
    let latest = client
        .get_latest(citytel_proto::v1::GetLatestRequest {
            device_id: PUMP.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let rpm = latest.values.iter().find(|v| v.metric == "rpm").unwrap();
    assert_eq!((rpm.time_unix_ms, rpm.value), (t0 + 5_000, 1_140.0));

    // An unknown alias is dead-lettered.
    edge.send(json!({"op": "ddata", "seq": 9, "ts": t0 + 8_000, "rpm": 1, "alias": 99}));
    eventually!(
        "the unknown alias dead-lettered",
        dead_letters(&mut client, "sparkplug_unknown_metric").await == 1
    );

    // A DDEATH takes the pump offline at its payload's timestamp (the state history records
    // the transition then): stamped after everything citytel heard from the pump (stored
    // above), before it is sent.
    let died = now_ms() + 100;
    while now_ms() <= died {
        std::thread::sleep(Duration::from_millis(10));
    }
    edge.send(json!({"op": "ddeath", "seq": 10, "ts": died}));
    eventually!(
        "the pump offline",
        device(&mut client, PUMP).await.unwrap().state() == DeviceState::Offline
    );
    let pump = device(&mut client, PUMP).await.unwrap();
    assert_eq!(
        (pump.state_since_unix_ms, pump.state_cause.as_str()),
        (died, "death"),
        "{pump:?}"
    );

    // Killed: the broker publishes the Will (NDEATH), the node goes offline at citytel's time.
    edge.send(json!({"op": "kill"}));
    let killed_at = now_ms();
    eventually!(
        "the node offline after its Will",
        device(&mut client, NODE).await.unwrap().state() == DeviceState::Offline
    );
    let node = device(&mut client, NODE).await.unwrap();
    assert!(node.state_since_unix_ms >= killed_at - 1_000, "{node:?}");

    // Reborn with bdSeq 2; then the Will of the old session (bdSeq 1) arrives late: ignored.
    let t1 = now_ms();
    let mut edge = Edge::start(mosquitto.port());
    edge.send(json!({"op": "connect", "bd_seq": 2, "ts": t1}));
    edge.send(json!({"op": "nbirth", "seq": 0, "bd_seq": 2, "ts": t1, "voltage": 231.0}));
    edge.send(json!({"op": "dbirth", "seq": 1, "ts": t1, "rpm": 900}));
    eventually!(
        "the node online again",
        device(&mut client, NODE).await.unwrap().state() == DeviceState::Online
    );
    edge.send(json!({"op": "ndeath", "bd_seq": 1, "ts": t1}));
    eventually!(
        "the stale NDEATH dead-lettered",
        dead_letters(&mut client, "sparkplug_stale").await == 1
    );
    assert_eq!(
        device(&mut client, NODE).await.unwrap().state(),
        DeviceState::Online
    );
    assert_eq!(
        device(&mut client, PUMP).await.unwrap().state(),
        DeviceState::Online
    );
    assert!(
        edge.rebirth_requests().is_empty(),
        "{:?}",
        edge.rebirth_requests()
    );

    // Attributes: the DBIRTH's String metric "mode", changed by a DDATA, and the node's
    // "Firmware", answered with the devices; kept by a restart from the WAL (killed) and from
    // the snapshot (stopped).
    edge.send(json!({"op": "ddata", "seq": 2, "ts": t1 + 1_000, "rpm": 950, "mode": "manual"}));
    let want_pump = vec![attribute("mode", "manual", "String", t1 + 1_000)];
    let want_node = vec![attribute("Firmware", "2.1", "String", t1)];
    eventually!(
        "the pump's mode changed",
        attributes(&mut client, PUMP).await == want_pump,
        attributes(&mut client, PUMP).await
    );
    assert_eq!(attributes(&mut client, NODE).await, want_node);
    edge.send(json!({"op": "disconnect"}));
    citytel.kill9();
    let citytel = rig.serve(&[]).await;
    let mut client = citytel.client().await;
    assert_eq!(
        attributes(&mut client, PUMP).await,
        want_pump,
        "after a WAL replay"
    );
    assert_eq!(
        attributes(&mut client, NODE).await,
        want_node,
        "after a WAL replay"
    );
    assert!(citytel.stop().success());
    let citytel = rig.serve(&[]).await;
    let mut client = citytel.client().await;
    assert_eq!(
        attributes(&mut client, PUMP).await,
        want_pump,
        "from the snapshot"
    );
    assert_eq!(
        attributes(&mut client, NODE).await,
        want_node,
        "from the snapshot"
    );
    assert!(citytel.stop().success());
}

/// (name, value, datatype, time) of an attribute.
type Attr = (String, String, String, i64);

fn attribute(name: &str, value: &str, datatype: &str, time_ms: i64) -> Attr {
    (name.into(), value.into(), datatype.into(), time_ms)
}

/// The attributes of device `id`, as GetDevice answers them.
async fn attributes(client: &mut QueryServiceClient<Channel>, id: &str) -> Vec<Attr> {
    device(client, id)
        .await
        .map(|d| {
            d.attributes
                .into_iter()
                .map(|a| (a.name, a.value, a.datatype, a.time_unix_ms))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_reordered_data_waits_and_a_seq_gap_requests_one_rebirth_after_the_timeout() {
    let rig = Rig::new().await;
    let mosquitto = &rig.mosquitto;
    let citytel = rig.serve(&[]).await;
    let mut client = citytel.client().await;

    let t0 = now_ms() - 10_000;
    let mut edge = Edge::start(mosquitto.port());
    edge.send(json!({"op": "connect", "bd_seq": 0, "ts": t0}));
    edge.send(json!({"op": "nbirth", "seq": 0, "bd_seq": 0, "ts": t0, "voltage": 1.0}));
    edge.send(json!({"op": "dbirth", "seq": 1, "ts": t0, "rpm": 1}));
    // Delivered out of order, seq 3 before seq 2, within the reorder timeout (1 s): both
    // stored, and nothing asked once the timeout has passed.
    edge.send(json!({"op": "ddata", "seq": 3, "ts": t0 + 3, "rpm": 3}));
    edge.send(json!({"op": "ddata", "seq": 2, "ts": t0 + 2, "rpm": 2}));
    eventually!(
        "the reordered messages stored",
        series(&mut client, PUMP, "rpm").await == [(t0, 1.0), (t0 + 2, 2.0), (t0 + 3, 3.0)]
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        edge.rebirth_requests().is_empty(),
        "{:?}",
        edge.rebirth_requests()
    );
    // seq 4 never comes.
    let gap_at = now_ms();
    edge.send(json!({"op": "ddata", "seq": 5, "ts": t0 + 5, "rpm": 5}));
    eventually!(
        "the message after the gap stored",
        series(&mut client, PUMP, "rpm").await.len() == 4
    );
    let requests = edge.wait_rebirth_requests(1, Duration::from_secs(10));
    let request = &requests[0];
    assert_eq!(request["metrics"][0]["name"], "Node Control/Rebirth");
    assert_eq!(request["metrics"][0]["value"], true);
    // Stamped when it was sent: not before the reorder timeout (1 s) ran out.
    let asked_at = request["timestamp"].as_i64().unwrap();
    assert!(
        asked_at - gap_at >= 1_000,
        "asked {} ms after the gap",
        asked_at - gap_at
    );
    // Once: another gap in the same session asks for nothing more.
    edge.send(json!({"op": "ddata", "seq": 9, "ts": t0 + 9, "rpm": 9}));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(edge.rebirth_requests().len(), 1);
    edge.send(json!({"op": "disconnect"}));
    assert!(citytel.stop().success());
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_host_restart_publishes_state_offline_then_online() {
    let rig = Rig::new().await;
    let mosquitto = &rig.mosquitto;
    let extra = ["--set", "sparkplug.host_id=\"citytel\""];
    let mut watch = StateWatch::start(mosquitto.port(), "citytel");

    let citytel = rig.serve(&extra).await;
    let first = watch.next_with(true, Duration::from_secs(10));
    assert_eq!(first["online"], true, "{first}");
    let t1 = first["timestamp"].as_i64().unwrap();
    assert!(citytel.stop().success());
    let offline = watch.next_with(false, Duration::from_secs(10));
    assert_eq!(offline, json!({"online": false, "timestamp": t1}));

    let citytel = rig.serve(&extra).await;
    let again = watch.next_with(true, Duration::from_secs(10));
    assert_eq!(again["online"], true, "{again}");
    assert!(again["timestamp"].as_i64().unwrap() > t1);

    // Killed: the broker publishes citytel's Will, with the timestamp of that connection.
    let t2 = again["timestamp"].as_i64().unwrap();
    citytel.kill9();
    let will = watch.next_with(false, Duration::from_secs(10));
    assert_eq!(will, json!({"online": false, "timestamp": t2}));
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_enabled_on_an_existing_broker_session_subscribes() {
    let rig = Rig::new().await;
    let (mosquitto, url) = (&rig.mosquitto, rig.url.clone());
    // The broker keeps citytel's session, made without Sparkplug.
    let citytel = Citytel::start(rig.dir.path(), &["--broker-url", &url]);
    citytel.wait_serving().await;
    assert!(citytel.stop().success());

    let citytel = rig.serve(&[]).await;
    let mut client = citytel.client().await;
    let t0 = now_ms();
    let mut edge = Edge::start(mosquitto.port());
    edge.send(json!({"op": "connect", "bd_seq": 0, "ts": t0}));
    edge.send(json!({"op": "nbirth", "seq": 0, "bd_seq": 0, "ts": t0, "voltage": 5.0}));
    eventually!(
        "the node's birth stored",
        series(&mut client, NODE, "Supply.Voltage").await == [(t0, 5.0)]
    );
    edge.send(json!({"op": "disconnect"}));
    assert!(citytel.stop().success());
}
