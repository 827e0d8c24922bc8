//! MQTT 5 with other people's clients on citytel's device endpoint: paho-mqtt's MQTT 5 client
//! reads what CONNACK grants and publishes through a topic alias; `mosquitto_pub -V 5` hears
//! why a message was dead-lettered (the PUBACK reason code) while a 3.1.1 `mosquitto_pub`
//! publishes beside it; paho finds its session kept for as long as citytel granted. Part of the `interop` group (Debian's `mosquitto-clients`, paho-mqtt):
//! `cargo test -p citytel-tests --features interop`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use citytel_tests::process::Citytel;
use citytel_tests::wire::{batch_file, readings_total};

const DEVICE: &str = "cab-0001";
const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";

/// paho-mqtt's MQTT 5 client: prints what CONNACK granted, then publishes `first` with topic
/// alias 1 set and `second` through the alias alone (empty topic), at QoS 1.
const PAHO_V5: &str = r#"
import json, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
host, port, topic, first, second = sys.argv[1:6]
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cab-0001", protocol=mqtt.MQTTv5)
except AttributeError:
    client = mqtt.Client(client_id="cab-0001", protocol=mqtt.MQTTv5)
granted = {}
connected = threading.Event()
def on_connect(client, userdata, flags, reason_code, properties=None):
    if properties is not None:
        granted.update(properties.json())
    connected.set()
client.on_connect = on_connect
client.connect(host, int(port), keepalive=30)
client.loop_start()
if not connected.wait(10):
    sys.exit("no CONNACK")
alias = Properties(PacketTypes.PUBLISH)
alias.TopicAlias = 1
sent = client.publish(topic, open(first, "rb").read(), qos=1, properties=alias)
sent.wait_for_publish(10)
aliased = client.publish("", open(second, "rb").read(), qos=1, properties=alias)
aliased.wait_for_publish(10)
client.disconnect()
client.loop_stop()
print(json.dumps({"granted": granted, "acked": [sent.is_published(), aliased.is_published()]}))
"#;

/// paho-mqtt's MQTT 5 client asking for an hour of session expiry with clean start 0, three
/// times: at once, 0.3 s later and 3 s later; prints each CONNACK's session present flag and
/// the session expiry it granted.
const PAHO_SESSION: &str = r#"
import json, sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
host, port = sys.argv[1:3]
seen = []
for pause in [0, 0.3, 3]:
    time.sleep(pause)
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cab-0002", protocol=mqtt.MQTTv5)
    except AttributeError:
        client = mqtt.Client(client_id="cab-0002", protocol=mqtt.MQTTv5)
    connected = threading.Event()
    def on_connect(client, userdata, flags, reason_code, properties=None):
        present = getattr(flags, "session_present", None)
        if present is None:
            present = bool(flags.get("session present"))
        granted = getattr(properties, "SessionExpiryInterval", None)
        seen.append([bool(present), granted])
        connected.set()
    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(host, int(port), keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("no CONNACK")
    client.disconnect()
    client.loop_stop()
print(json.dumps(seen))
"#;

/// `mosquitto_pub -V {version} -d` at QoS 1 of `payload` to `topic`.
fn mosquitto_pub(
    addr: SocketAddr,
    version: &str,
    client_id: &str,
    topic: &str,
    payload: &Path,
) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args([
            "-V", version, "-d", "-q", "1", "-i", client_id, "-t", topic, "-f",
        ])
        .arg(payload)
        .output()
        .expect("run mosquitto_pub (Debian: mosquitto-clients)")
}

/// The reason code of the PUBACK `mosquitto_pub -d` reports receiving.
fn puback_code(out: &Output) -> Option<u8> {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("received PUBACK"))?;
    let rc = line.split("RC:").nth(1)?;
    rc.trim_end_matches(')').trim().parse().ok()
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_and_mosquitto_pub_speak_mqtt5_and_hear_reason_codes() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(
        dir.path(),
        &[
            "--set",
            "endpoint.receive_maximum=100",
            "--set",
            "endpoint.topic_alias_maximum=4",
        ],
    );
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let mut client = citytel.client().await;

    // paho: CONNACK's grants, then a topic alias set and used.
    let first = batch_file(files.path(), "first", DEVICE, &[1, 2]);
    let second = batch_file(files.path(), "second", DEVICE, &[3]);
    let out = Command::new("python3")
        .args([
            "-c",
            PAHO_V5,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            TOPIC,
        ])
        .arg(&first)
        .arg(&second)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "paho-mqtt (pip install paho-mqtt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(answer["acked"], serde_json::json!([true, true]), "{answer}");
    assert_eq!(answer["granted"]["ReceiveMaximum"], 100, "{answer}");
    assert_eq!(answer["granted"]["TopicAliasMaximum"], 4, "{answer}");
    assert_eq!(
        answer["granted"]["MaximumPacketSize"], 16_777_216,
        "{answer}"
    );
    assert_eq!(
        readings_total(&mut client, DEVICE).await,
        3,
        "both publishes stored"
    );

    // mosquitto_pub over MQTT 5: a good batch is acknowledged with success, an undecodable one
    // and one on a topic that is not citytel's with why; over 3.1.1 the same bad payload gets
    // a plain PUBACK.
    let good = batch_file(files.path(), "good", DEVICE, &[4]);
    let garbage = files.path().join("garbage.bin");
    std::fs::write(&garbage, b"\xff\xfe not protobuf").unwrap();
    for (version, client_id, topic, payload, expected) in [
        ("5", "pub-v5-good", TOPIC, &good, 0x00),
        ("5", "pub-v5-garbage", TOPIC, &garbage, 0x99),
        (
            "5",
            "pub-v5-topic",
            "factory/line-1/temperature",
            &good,
            0x90,
        ),
        ("311", "pub-v311-garbage", TOPIC, &garbage, 0x00),
    ] {
        let out = mosquitto_pub(addr, version, client_id, topic, payload);
        let code = puback_code(&out);
        assert_eq!(
            code,
            Some(expected),
            "mosquitto_pub -V {version} {topic}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(readings_total(&mut client, DEVICE).await, 4);
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs paho-mqtt: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_finds_its_session_while_it_lasts_and_is_told_the_granted_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(dir.path(), &["--set", "endpoint.max_session_expiry=2s"]);
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let out = Command::new("python3")
        .args([
            "-c",
            PAHO_SESSION,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "paho-mqtt (pip install paho-mqtt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    // First: no session yet; 0.3 s later: present; 3 s later: expired (2 s granted, not 3600).
    assert_eq!(
        seen,
        serde_json::json!([[false, 2], [true, 2], [false, 2]]),
        "[session present, granted expiry] per CONNACK"
    );
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_sim_load_over_mqtt5_keeps_to_the_receive_maximum() {
    use citytel_firmware_sim::broker::BrokerAddr;
    use citytel_firmware_sim::load::{self, LoadConfig, MqttVersion};

    let dir = tempfile::tempdir().unwrap();
    // A window of 50 asked, 10 granted: past the grant the endpoint would disconnect (0x93).
    let citytel = Citytel::start(dir.path(), &["--set", "endpoint.receive_maximum=10"]);
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let config = LoadConfig {
        broker: BrokerAddr::new(addr.ip().to_string(), addr.port()),
        connections: 4,
        devices: 20,
        inflight: 50,
        mqtt_version: MqttVersion::V5,
        messages: Some(2000),
        warmup: std::time::Duration::ZERO,
        ..LoadConfig::default()
    };
    let report = load::run(config, tokio_util::sync::CancellationToken::new(), None)
        .await
        .expect("the load runs");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.acked, report.unacked), (2000, 0));
    let mut client = citytel.client().await;
    let stored: u64 = citytel_tests::truth::list_all_devices(&mut client)
        .await
        .iter()
        .map(|d| d.readings_total)
        .sum();
    assert_eq!(stored, 2000, "one reading per acknowledged message");
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
