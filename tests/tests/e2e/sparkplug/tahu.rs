//! A second, independent Sparkplug B implementation: an edge node on Eclipse Tahu's npm
//! `sparkplug-client` (`tahu/edge.js`, its packages installed by `npm ci` in `tahu/`),
//! connected straight to `citytel serve`'s device endpoint, and through a real Mosquitto to
//! citytel's broker source. The client's own births, bdSeq and seq, node and device data, a
//! rebirth asked for by citytel after a device that was never born speaks and answered by the
//! client's NCMD subscription, a DDEATH, and the Will's NDEATH.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citytel_proto::v1::DeviceState;
use citytel_testkit::wait::Wait;
use serde_json::{Value, json};

use super::driver::{lines, now_ms};
use super::{Rig, dead_letters, device, series, serve_on_endpoint};

const NODE: &str = "plant.edge2";
const METER: &str = "plant.edge2.meter";

/// The Tahu edge node process, killed when dropped.
struct TahuEdge {
    child: Child,
    stdin: ChildStdin,
    out: mpsc::Receiver<String>,
}

impl TahuEdge {
    /// Starts `tahu/edge.js` against the MQTT server on `port`.
    fn start(port: u16) -> TahuEdge {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/sparkplug/tahu");
        assert!(
            dir.join("node_modules/sparkplug-client").exists(),
            "run `npm ci` in {} (the CI script does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .current_dir(&dir)
            .args([
                "edge.js",
                &format!("mqtt://127.0.0.1:{port}"),
                "plant",
                "edge2",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (Debian: nodejs)");
        let stdin = child.stdin.take().expect("piped stdin");
        let out = lines(&mut child);
        TahuEdge { child, stdin, out }
    }

    /// The next line the script prints that starts with `prefix`, within 20 s; the lines
    /// before it are returned too.
    fn wait_line(&mut self, prefix: &str) -> (String, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut before = Vec::new();
        loop {
            let line = self
                .out
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!("no {prefix:?} from the Tahu edge node; saw {before:?}")
                });
            if line.starts_with(prefix) {
                return (line, before);
            }
            before.push(line);
        }
    }

    /// Sends one command and waits for its `ok`.
    fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").expect("the script reads its commands");
        self.stdin.flush().expect("flush");
        if command["op"] == "kill" {
            let _ = self.child.wait();
        } else {
            self.wait_line("ok");
        }
    }
}

impl Drop for TahuEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Node.js and `npm ci` in tests/e2e/sparkplug/tahu: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tahu_sparkplug_client_edge_node_on_the_endpoint() {
    let dir = tempfile::tempdir().expect("data directory");
    let citytel = serve_on_endpoint(dir.path(), &[]).await;
    let (_, port) = citytel.mqtt_host_port();
    tahu_edge_node(citytel, port).await;
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Mosquitto, Node.js and `npm ci` in tests/e2e/sparkplug/tahu: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tahu_sparkplug_client_edge_node_through_mosquitto() {
    let rig = Rig::new().await;
    let citytel = rig.serve(&[]).await;
    tahu_edge_node(citytel, rig.mosquitto.port()).await;
}

/// The Tahu edge node's session against `citytel`, the client connecting to the MQTT server on
/// `port` (citytel's endpoint, or the broker citytel reads).
async fn tahu_edge_node(citytel: citytel_tests::process::Citytel, port: u16) {
    let mut client = citytel.client().await;

    // The client connects, subscribes to its commands and asks for births: NBIRTH with its
    // bdSeq, DBIRTH of the meter, each metric stored at its timestamp.
    let mut edge = TahuEdge::start(port);
    edge.wait_line("births");
    eventually!(
        "the births stored",
        series(&mut client, NODE, "temperature_c").await.len() == 1
            && series(&mut client, METER, "power_w").await.len() == 1
    );
    for id in [NODE, METER] {
        assert_eq!(
            device(&mut client, id)
                .await
                .expect("the device is known")
                .state(),
            DeviceState::Online,
            "{id}"
        );
    }

    // Node and device data, numbered by the client.
    let t0 = now_ms() - 60_000;
    for i in 0..3_i64 {
        let ts = t0 + i * 1_000;
        edge.send(json!({"op": "ndata", "ts": ts, "temperature_c": 22.0 + i as f64}));
        edge.send(json!({"op": "ddata", "device": "meter", "ts": ts, "power_w": 200.0 + i as f64}));
    }
    eventually!(
        "the data stored",
        series(&mut client, METER, "power_w").await.len() == 4,
        series(&mut client, METER, "power_w").await
    );
    let power = series(&mut client, METER, "power_w").await;
    assert_eq!(
        &power[..3],
        &[(t0, 200.0), (t0 + 1_000, 201.0), (t0 + 2_000, 202.0)],
        "DDATA at the metrics' timestamps"
    );
    let temperature = series(&mut client, NODE, "temperature_c").await;
    assert_eq!(
        &temperature[..3],
        &[(t0, 22.0), (t0 + 1_000, 23.0), (t0 + 2_000, 24.0)]
    );

    // A device that was never born speaks: refused, and after the reorder timeout citytel asks
    // the node for a rebirth on its own connection; the client hears it through its NCMD
    // subscription and publishes new births.
    edge.send(json!({"op": "ddata", "device": "ghost", "ts": now_ms(), "power_w": 1.0}));
    let (ncmd, _) = edge.wait_line("ncmd ");
    let ncmd: Value = serde_json::from_str(&ncmd["ncmd ".len()..]).expect("ncmd json");
    let rebirth = &ncmd["metrics"][0];
    assert_eq!(
        (rebirth["name"].as_str(), rebirth["value"].as_bool()),
        (Some("Node Control/Rebirth"), Some(true)),
        "{ncmd}"
    );
    edge.wait_line("births");
    assert!(dead_letters(&mut client, "sparkplug_out_of_session").await >= 1);
    eventually!(
        "the new births stored",
        series(&mut client, METER, "power_w").await.len() == 5
    );

    // DDEATH: the meter offline, the node still online.
    edge.send(json!({"op": "ddeath", "device": "meter", "ts": now_ms()}));
    eventually!(
        "the meter offline after its DDEATH",
        device(&mut client, METER)
            .await
            .expect("the device is known")
            .state()
            == DeviceState::Offline
    );
    assert_eq!(
        device(&mut client, NODE)
            .await
            .expect("the device is known")
            .state(),
        DeviceState::Online
    );

    // The process dies: citytel fires the client's Will, an NDEATH with the birth's bdSeq.
    edge.send(json!({"op": "kill"}));
    eventually!(
        "the node offline after its Will",
        device(&mut client, NODE)
            .await
            .expect("the device is known")
            .state()
            == DeviceState::Offline
    );
    assert!(citytel.stop().success());
}
