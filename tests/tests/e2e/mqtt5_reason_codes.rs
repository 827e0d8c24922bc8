//! Every reason code the device endpoint gives an MQTT 5 client, heard by other people's
//! clients: `mosquitto_pub -V 5 -d` (Debian's `mosquitto-clients`) for CONNACK and PUBACK, and
//! paho-mqtt's MQTT 5 client for the server's DISCONNECT. Part of the `interop` group:
//! `cargo test -p citytel-tests --features interop -- mqtt5_reason_codes`.
//!
//! DISCONNECT 0x95 (packet too large) is the one code no compliant client can provoke: both
//! refuse to send a packet above the Maximum Packet Size CONNACK granted. citytel's own raw
//! MQTT 5 client provokes it in `abuse_memory` and the endpoint's unit tests.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use citytel_tests::process::Citytel;
use citytel_tests::wire::{batch_file, batch_payload};

use super::devices_cli::add;

/// `mosquitto_pub -V 5 -d` at QoS 1 of `payload` to `topic` as `id`, with `extra` arguments.
fn mosquitto_pub(
    addr: SocketAddr,
    id: &str,
    topic: &str,
    payload: &Path,
    extra: &[&str],
) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-V", "5", "-d", "-q", "1", "-i", id, "-t", topic, "-f"])
        .arg(payload)
        .args(extra)
        .output()
        .expect("run mosquitto_pub (Debian: mosquitto-clients)")
}

/// The number in the first line of `mosquitto_pub -d`'s output containing `what` ("received
/// CONNACK (134)", "received PUBACK (Mid: 1, RC:151)").
fn code(out: &Output, what: &str) -> Option<u8> {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains(what))?;
    let tail = line.rsplit(['(', ':']).next()?;
    tail.trim_end_matches(')').trim().parse().ok()
}

fn topic(device: &str, channel: &str) -> String {
    format!("citytel/v1/site-01/cabinet/{device}/{channel}")
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[test]
fn mosquitto_pub_hears_why_a_connect_or_a_publish_is_refused() {
    let dir = tempfile::tempdir().expect("data directory");
    let files = tempfile::tempdir().expect("payload directory");
    let token = add(dir.path(), "cab-0001");
    add(dir.path(), "cab-0002");
    let citytel = Citytel::start(
        dir.path(),
        &[
            "--set",
            "endpoint.authentication=true",
            "--set",
            "ingest.max_series=1",
            "--set",
            "endpoint.failed_connects_per_ip=3",
        ],
    );
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let login = ["-u", "cab-0001", "-P", token.as_str()];
    let own = topic("cab-0001", "telemetry");

    // Stored: success. Then a second metric, beyond ingest.max_series: 0x97 quota exceeded.
    let one = batch_file(files.path(), "one", "cab-0001", &[1]);
    let out = mosquitto_pub(addr, "cab-0001", &own, &one, &login);
    assert_eq!(code(&out, "received PUBACK"), Some(0x00), "{out:?}");
    let now = citytel_tests::wire::now_ms();
    let two = files.path().join("two.bin");
    let payload = batch_payload(
        "cab-0001",
        1,
        &["temperature_c", "humidity_pct"],
        &[(2, now - 500, vec![20.0, 50.0])],
    );
    std::fs::write(&two, payload).expect("write payload");
    let out = mosquitto_pub(addr, "cab-0001", &own, &two, &login);
    assert_eq!(code(&out, "received PUBACK"), Some(0x97), "{out:?}");

    // A wrong token: CONNACK 0x86 bad user name or password.
    let wrong = ["-u", "cab-0001", "-P", "not-the-token"];
    let out = mosquitto_pub(addr, "cab-0001", &own, &one, &wrong);
    assert_eq!(code(&out, "received CONNACK"), Some(0x86), "{out:?}");

    // A Last Will speaking for another device: CONNACK 0x87 not authorised.
    let will = topic("cab-0002", "status");
    let foreign = [&login[..], &["--will-topic", &will, "--will-payload", "x"]].concat();
    let out = mosquitto_pub(addr, "cab-0001", &own, &one, &foreign);
    assert_eq!(code(&out, "received CONNACK"), Some(0x87), "{out:?}");

    // Publishing for another device: PUBACK 0x87. (The server's DISCONNECT 0x87 follows, but
    // mosquitto_pub leaves as soon as its PUBACK is in and does not always read it;
    // `device_identity` checks it with citytel's raw MQTT 5 client.)
    let other = topic("cab-0002", "telemetry");
    let out = mosquitto_pub(addr, "cab-0001", &other, &one, &login);
    assert_eq!(code(&out, "received PUBACK"), Some(0x87), "{out:?}");

    // Three refusals from this address within the minute: CONNECTs hear 0x89 server busy, even
    // with the right token, once the last refused connection has ended (it is counted then).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = mosquitto_pub(addr, "cab-0001", &own, &one, &login);
        match code(&out, "received CONNACK") {
            Some(0x89) => break,
            Some(0x00) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => panic!("expected CONNACK 0x89 within 10 s: {out:?}"),
        }
    }
    assert!(citytel.stop().success());
}

/// paho-mqtt's MQTT 5 client (1.x or 2.x): `cab-0003` and `cab-0004` connect and hold the
/// endpoint's two connection slots; after "go" on stdin `cab-0004` leaves and a second
/// `cab-0003` with a keep-alive of 1 s takes over, then stays silent for 3 s. Prints the
/// reason code of each DISCONNECT the server sent, as JSON.
const PAHO: &str = r#"
import json, sys, threading, time
import paho.mqtt.client as mqtt
host, port = sys.argv[1], int(sys.argv[2])
def client(cid):
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    except AttributeError:
        c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
    c.seen = {"connected": threading.Event(), "gone": threading.Event(), "reason": None}
    def on_connect(cl, ud, flags, rc, props=None):
        c.seen["connected"].set()
    def on_disconnect(cl, ud, *args):
        # 1.x: (reason, properties); 2.x: (flags, reason, properties).
        rc = args[-2]
        c.seen["reason"] = getattr(rc, "value", rc)
        c.seen["gone"].set()
    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    # loop_start's thread reconnects a client the server disconnected; not within the test.
    c.reconnect_delay_set(min_delay=3600, max_delay=3600)
    return c
first, second = client("cab-0003"), client("cab-0004")
for c in (first, second):
    c.connect(host, port, keepalive=60)
    c.loop_start()
    if not c.seen["connected"].wait(10):
        sys.exit("no CONNACK")
print("ready", flush=True)
sys.stdin.readline()
second.disconnect()
second.loop_stop()
time.sleep(0.5)
silent = client("cab-0003")
silent.connect(host, port, keepalive=1)
deadline = time.time() + 10
while not silent.seen["connected"].is_set() and time.time() < deadline:
    silent.loop(0.1)
if not first.seen["gone"].wait(10):
    sys.exit("the first cab-0003 was not told it was taken over")
time.sleep(3)
deadline = time.time() + 10
while not silent.seen["gone"].is_set() and time.time() < deadline:
    silent.loop(0.1)
first.loop_stop()
print(json.dumps({"taken_over": first.seen["reason"], "silent": silent.seen["reason"]}))
"#;

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages and paho-mqtt: cargo test -p citytel-tests --features interop"
)]
#[test]
fn paho_and_mosquitto_pub_hear_the_connection_cap_a_takeover_and_a_keep_alive_timeout() {
    let dir = tempfile::tempdir().expect("data directory");
    let files = tempfile::tempdir().expect("payload directory");
    let citytel = Citytel::start(dir.path(), &["--set", "endpoint.max_connections=2"]);
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let mut paho = Command::new("python3")
        .args(["-c", PAHO, &addr.ip().to_string(), &addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3 (pip install paho-mqtt)");
    let mut lines = BufReader::new(paho.stdout.take().expect("piped stdout")).lines();
    let ready = lines.next().and_then(Result::ok);
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "paho's two clients connected"
    );

    // Both slots held: a third connection hears CONNACK 0x97 quota exceeded.
    let one = batch_file(files.path(), "one", "cab-0005", &[1]);
    let out = mosquitto_pub(addr, "cab-0005", &topic("cab-0005", "telemetry"), &one, &[]);
    assert_eq!(code(&out, "received CONNACK"), Some(0x97), "{out:?}");

    // The takeover (0x8E to the first cab-0003) and the silent one's keep-alive (0x8D).
    let mut stdin = paho.stdin.take().expect("piped stdin");
    writeln!(stdin, "go").expect("paho reads its stdin");
    let answer = lines
        .next()
        .and_then(Result::ok)
        .expect("paho prints what it heard");
    let status = paho.wait().expect("paho ends");
    assert!(status.success(), "paho: {status}");
    let heard: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(heard["taken_over"], 0x8E, "{heard}");
    assert_eq!(heard["silent"], 0x8D, "{heard}");
    assert!(citytel.stop().success());
}
