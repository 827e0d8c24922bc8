//! The same pysparkplug edge node connected straight to `citytel serve`'s device endpoint, with
//! no broker: citytel's retained STATE on subscribe, births and data, a seq gap answered by a
//! rebirth request on the node's own connection, the node killed (its Will's NDEATH takes it
//! offline), and citytel's offline STATE at shutdown.

use std::time::Duration;

use citytel_proto::v1::DeviceState;
use citytel_testkit::wait::Wait;
use serde_json::json;

use super::driver::{Edge, now_ms};
use super::{NODE, PUMP, device, series, serve_on_endpoint};

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_edge_node_straight_on_the_endpoint() {
    let dir = tempfile::tempdir().expect("data directory");
    let started = now_ms();
    let citytel = serve_on_endpoint(dir.path(), &["--set", "sparkplug.host_id=\"citytel\""]).await;
    let mut client = citytel.client().await;
    let (_, port) = citytel.mqtt_host_port();

    // Subscribed to citytel's STATE: the retained online STATE, stamped when citytel started.
    let t0 = now_ms() - 10_000;
    let mut edge = Edge::start(port);
    edge.send(json!({"op": "connect", "bd_seq": 1, "ts": t0}));
    edge.send(json!({"op": "state", "host_id": "citytel"}));
    let states = edge.wait_states(1, Duration::from_secs(10));
    assert_eq!(states[0]["online"], true, "{states:?}");
    assert_eq!(states[0]["retain"], true, "{states:?}");
    let since = states[0]["timestamp"].as_i64().unwrap();
    assert!(since >= started && since <= now_ms(), "{states:?}");

    // Births and data, acknowledged once durable, stored as through a broker.
    edge.send(json!({"op": "nbirth", "seq": 0, "bd_seq": 1, "ts": t0, "voltage": 230.5}));
    edge.send(json!({"op": "dbirth", "seq": 1, "ts": t0, "rpm": 1000}));
    edge.send(json!({"op": "ddata", "seq": 2, "ts": t0 + 1_000, "rpm": 1100}));
    eventually!(
        "the rpm stored",
        series(&mut client, PUMP, "rpm").await == [(t0, 1000.0), (t0 + 1_000, 1100.0)],
        series(&mut client, PUMP, "rpm").await
    );
    assert_eq!(
        device(&mut client, NODE).await.unwrap().state(),
        DeviceState::Online
    );

    // seq 3 never comes: one rebirth request, on this connection, after the reorder timeout.
    let gap_at = now_ms();
    edge.send(json!({"op": "ddata", "seq": 4, "ts": t0 + 3_000, "rpm": 1300}));
    let requests = edge.wait_rebirth_requests(1, Duration::from_secs(10));
    assert_eq!(requests[0]["metrics"][0]["name"], "Node Control/Rebirth");
    assert_eq!(requests[0]["metrics"][0]["value"], true);
    let asked_at = requests[0]["timestamp"].as_i64().unwrap();
    assert!(
        asked_at - gap_at >= 1_000,
        "asked {} ms after the gap",
        asked_at - gap_at
    );
    assert_eq!(series(&mut client, PUMP, "rpm").await.len(), 3);

    // Killed: citytel fires the Will, an NDEATH of bdSeq 1; the node and its pump go offline.
    edge.send(json!({"op": "kill"}));
    eventually!(
        "the node offline after its Will",
        device(&mut client, NODE).await.unwrap().state() == DeviceState::Offline
    );
    assert_eq!(
        device(&mut client, PUMP).await.unwrap().state(),
        DeviceState::Offline
    );

    // Shut down: a connection subscribed to citytel's STATE is told it is offline, with the
    // timestamp of its online STATE, before citytel closes it.
    let mut watcher = Edge::start(port);
    watcher.send(json!({"op": "connect", "bd_seq": 2, "ts": now_ms(), "client_id": "watcher"}));
    watcher.send(json!({"op": "state", "host_id": "citytel"}));
    watcher.wait_states(1, Duration::from_secs(10));
    assert!(citytel.stop().success());
    let states = watcher.wait_states(2, Duration::from_secs(10));
    assert_eq!(
        states[1],
        json!({"online": false, "timestamp": since, "retain": true}),
        "{states:?}"
    );
}
