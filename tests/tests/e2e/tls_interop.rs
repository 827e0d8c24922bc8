//! TLS with other people's MQTT clients and brokers: Mosquitto's `mosquitto_pub` and Python's
//! paho-mqtt publish over mutual TLS to citytel's `mqtts` listener (and are refused without a
//! certificate, with one from another CA, or with a name nobody provisioned), and citytel's
//! broker source consumes from Mosquitto's TLS listener with `require_certificate true`. Part of
//! the `interop` group (Debian's `mosquitto` and `mosquitto-clients`, `python3-paho-mqtt` or
//! `pip install paho-mqtt`): `cargo test -p citytel-tests --features interop`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use citytel_testkit::mosquitto::{Listener, ListenerTls, Mosquitto, MosquittoConfig};
use citytel_testkit::wait::Wait;
use citytel_tests::mtls::{self, Pki, device};
use citytel_tests::process::Citytel;
use citytel_tests::wire::{batch_file, readings_total};

const DEVICE: &str = "cab-0001";

fn telemetry_topic(device: &str) -> String {
    format!("citytel/v1/site-01/cabinet/{device}/telemetry")
}

/// `mosquitto_pub` at QoS 1 to `localhost:port` over TLS trusting `ca`, presenting `cert` (a
/// certificate and key) if given.
fn mosquitto_pub(
    port: u16,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    client_id: &str,
    topic: &str,
    payload: &Path,
) -> Output {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "localhost", "-p", &port.to_string(), "-q", "1"])
        .arg("--cafile")
        .arg(ca)
        .args(["-i", client_id, "-t", topic, "-f"])
        .arg(payload);
    if let Some((cert, key)) = cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    cmd.output()
        .expect("run mosquitto_pub (Debian: mosquitto-clients)")
}

/// paho-mqtt publishing one message at QoS 1 over TLS; exits 0 once it is acknowledged.
const PAHO: &str = r#"
import sys
import paho.mqtt.client as mqtt
host, port, ca, cert, key, client_id, topic, payload = sys.argv[1:9]
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
except AttributeError:
    client = mqtt.Client(client_id=client_id)
client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
client.connect(host, int(port), keepalive=30)
client.loop_start()
info = client.publish(topic, open(payload, "rb").read(), qos=1)
info.wait_for_publish(timeout=10)
client.disconnect()
client.loop_stop()
sys.exit(0 if info.is_published() else 1)
"#;

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_and_paho_publish_over_mutual_tls_and_bad_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let other_ca = Pki::new("someone else's CA");
    mtls::provision(dir.path(), vec![device(DEVICE, "cabinet", None)]);
    let citytel = mtls::start(dir.path(), &pki, &[]);
    let port = citytel.mqtts.expect("mqtts").port();
    let cert = pki.device(DEVICE);
    let topic = telemetry_topic(DEVICE);

    let first = batch_file(pki.dir(), "first", DEVICE, &[1, 2]);
    let out = mosquitto_pub(
        port,
        &pki.ca_file,
        Some((&cert.files.cert, &cert.files.key)),
        DEVICE,
        &topic,
        &first,
    );
    assert!(out.status.success(), "mosquitto_pub: {out:?}");

    let second = batch_file(pki.dir(), "second", DEVICE, &[3, 4]);
    let out = Command::new("python3")
        .args(["-c", PAHO, "localhost", &port.to_string()])
        .arg(&pki.ca_file)
        .arg(&cert.files.cert)
        .arg(&cert.files.key)
        .args([DEVICE, &topic])
        .arg(&second)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "paho-mqtt (pip install paho-mqtt): {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, 4);

    // Refused: no certificate, a certificate from another CA, a name nobody provisioned.
    let foreign = other_ca.device(DEVICE);
    let unprovisioned = pki.device("cab-9999");
    let third = batch_file(pki.dir(), "third", DEVICE, &[5]);
    let stray = batch_file(pki.dir(), "stray", "cab-9999", &[1]);
    let refused = [
        (
            "no certificate",
            None,
            DEVICE,
            &third,
            telemetry_topic(DEVICE),
        ),
        (
            "another CA",
            Some((&foreign.files.cert, &foreign.files.key)),
            DEVICE,
            &third,
            telemetry_topic(DEVICE),
        ),
        (
            "unprovisioned",
            Some((&unprovisioned.files.cert, &unprovisioned.files.key)),
            "cab-9999",
            &stray,
            telemetry_topic("cab-9999"),
        ),
    ];
    for (case, cert, client_id, payload, topic) in refused {
        let cert = cert.map(|(c, k)| (c.as_path(), k.as_path()));
        let out = mosquitto_pub(port, &pki.ca_file, cert, client_id, &topic, payload);
        assert!(!out.status.success(), "{case}: mosquitto_pub succeeded");
    }
    assert_eq!(readings_total(&mut client, DEVICE).await, 4);
    assert_eq!(readings_total(&mut client, "cab-9999").await, 0);
    assert!(citytel.stop().success());
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_source_consumes_from_mosquitto_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("citytel operator CA");
    let listener = Listener::free_tls(ListenerTls {
        cafile: pki.ca_file.clone(),
        certfile: pki.server.cert.clone(),
        keyfile: pki.server.key.clone(),
        require_certificate: true,
    })
    .expect("free port");
    let mosquitto = Mosquitto::launch(&MosquittoConfig::new(broker_dir.path()).listener(listener))
        .await
        .expect("start mosquitto");
    assert!(
        mosquitto.url().starts_with("mqtts://"),
        "{}",
        mosquitto.url()
    );

    let ingest = pki.device("citytel-ingest");
    let set = |key: &str, path: &Path| format!("{key}={:?}", path.display().to_string());
    let args = [
        "--broker-url".to_string(),
        mosquitto.url(),
        "--set".to_string(),
        set("broker.ca_file", &pki.ca_file),
        "--set".to_string(),
        set("broker.cert_file", &ingest.files.cert),
        "--set".to_string(),
        set("broker.key_file", &ingest.files.key),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let citytel = Citytel::start(dir.path(), &args);
    citytel.wait_serving().await;

    // A device publishes to Mosquitto over TLS with its own certificate.
    let cert = pki.device(DEVICE);
    let payload = batch_file(pki.dir(), "batch", DEVICE, &[1, 2, 3]);
    let out = mosquitto_pub(
        mosquitto.port(),
        &pki.ca_file,
        Some((&cert.files.cert, &cert.files.key)),
        DEVICE,
        &telemetry_topic(DEVICE),
        &payload,
    );
    assert!(out.status.success(), "mosquitto_pub: {out:?}");

    let mut client = citytel.client().await;
    let mut wait = Wait::new("citytel storing the readings", Duration::from_secs(30))
        .every(Duration::from_millis(100));
    while readings_total(&mut client, DEVICE).await != 3 {
        wait.retry()
            .await
            .expect("readings through mosquitto over TLS");
    }
    assert!(citytel.stop().success());
}
