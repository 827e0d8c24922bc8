//! Abuse: more idle connections than citytel has file descriptors. citytel runs with an
//! open-file limit of 256 (set with `prlimit`), which leaves 96 MQTT and 16 gRPC connections
//! after the descriptors it keeps for storage. 600 TCP connections that never send CONNECT, or
//! 600 gRPC connections that send only the HTTP/2 preface, must not bring it down: it keeps
//! acknowledging (and storing) a device that was connected before, refuses the extra
//! connections, stays SERVING, and takes new connections again once the idle ones close. The
//! idle-MQTT case runs with devices on MQTT 3.1.1 and on MQTT 5, where the refused newcomer hears
//! CONNACK 0x97 quota exceeded, with why.

use std::net::SocketAddr;
use std::time::Duration;

use citytel_testkit::metrics::Scrape;
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::{ConnectFailure, RawClient};
use citytel_tests::wire::{batch_payload, now_ms, readings_total, telemetry_topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The open-file limit citytel runs with.
const NOFILE: u64 = 256;
/// Idle connections opened: far more than the limit.
const IDLE: usize = 600;
const DEVICE: &str = "cab-0001";
const METRICS: [&str; 1] = ["temperature_c"];
/// Readings published while descriptors are exhausted: enough WAL to need new segments.
const READINGS_UNDER_EXHAUSTION: u64 = 1000;

/// Raises this test process's own soft open-file limit, so it can hold its side of the idle
/// connections.
/// The tests here each hold hundreds of sockets of this process: one at a time, so none runs
/// short of descriptors because another holds them.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn raise_own_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        soft >= 2 * IDLE as u64,
        "this test needs {} open files, the limit is {soft}",
        2 * IDLE
    );
}

fn start(dir: &std::path::Path) -> Citytel {
    let args = [
        // One host opens them all: the per-address limits are not what is tested here.
        "--set",
        "endpoint.max_connections_per_ip=100000",
        "--set",
        "endpoint.connect_rate_per_ip=100000.0",
        "--set",
        "endpoint.connect_burst_per_ip=100000",
        // Idle connections stay until the test closes them.
        "--set",
        "endpoint.connect_timeout=\"10m\"",
    ];
    Citytel::start_with_open_files(dir, &args, NOFILE)
}

/// Publishes reading `seq` and waits for its PUBACK.
async fn publish(device: &mut RawClient, seq: u64) {
    let payload = batch_payload(
        DEVICE,
        1,
        &METRICS,
        &[(seq, now_ms() - 1000 + seq as i64, vec![seq as f64])],
    );
    tokio::time::timeout(
        Duration::from_secs(30),
        device.publish_acked(&telemetry_topic(DEVICE), payload, seq as u16),
    )
    .await
    .unwrap_or_else(|_| panic!("no PUBACK for reading {seq} within 30 s"));
}

/// Opens up to `n` connections to `addr`, each sending `hello` (if any) and then nothing; stops
/// early when a connect does not complete within 5 s (the listen queue of a server that
/// cannot accept is full). Generous: on a loaded machine a connect may take a while to complete.
async fn open_idle(addr: SocketAddr, n: usize, hello: &[u8]) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(connected) =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await
        else {
            break;
        };
        let mut conn = connected.expect("TCP connect");
        if !hello.is_empty() {
            // A connection citytel already closed may refuse the write: that is the point.
            let _ = conn.write_all(hello).await;
        }
        conns.push(conn);
    }
    conns
}

/// How many of `conns` citytel closes, waiting until at least `expected` are closed or 30 s
/// have passed. Refusals reach the sockets late on a loaded machine (connections queue in the
/// backlog while descriptors are short), so the sockets are polled in rounds, not once each.
async fn closed_by_citytel(conns: &mut [TcpStream], expected: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut open = vec![true; conns.len()];
    let mut closed = 0;
    loop {
        for (conn, open) in conns.iter_mut().zip(open.iter_mut()).filter(|(_, o)| **o) {
            let mut buf = [0u8; 256];
            loop {
                match tokio::time::timeout(Duration::from_millis(20), conn.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        closed += 1;
                        *open = false;
                        break;
                    }
                    // A CONNACK or the server's HTTP/2 settings: read on.
                    Ok(Ok(_)) => continue,
                    Err(_) => break,
                }
            }
        }
        if closed >= expected || tokio::time::Instant::now() >= deadline {
            return closed;
        }
    }
}

async fn scrape(citytel: &Citytel) -> Scrape {
    Scrape::fetch(citytel.metrics.as_deref().expect("metrics endpoint")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_mqtt_connections_beyond_the_descriptors_neither_crash_nor_block_devices_over_mqtt311()
{
    idle_mqtt_connections_beyond_the_descriptors_neither_crash_nor_block_devices(Version::V311)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_mqtt_connections_beyond_the_descriptors_neither_crash_nor_block_devices_over_mqtt5() {
    idle_mqtt_connections_beyond_the_descriptors_neither_crash_nor_block_devices(Version::V5).await;
}

async fn idle_mqtt_connections_beyond_the_descriptors_neither_crash_nor_block_devices(
    version: Version,
) {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_limit();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut citytel = start(dir.path());
    let addr = citytel.mqtt.expect("endpoint");
    citytel.wait_serving().await;
    let mut device = RawClient::connect_version(addr, "device", version).await;
    publish(&mut device, 1).await;
    let fds_before = citytel.open_fds();

    let mut idle = open_idle(addr, IDLE, &[]).await;
    let closed = closed_by_citytel(&mut idle, IDLE - 96).await;
    citytel.assert_running();
    let fds_during = citytel.open_fds();
    println!(
        "{IDLE} idle MQTT connections: {closed} closed by citytel, descriptors {fds_before} -> {fds_during} of {NOFILE}"
    );
    assert!(closed >= IDLE - 96, "only {closed} of {IDLE} refused");
    assert!(fds_during < NOFILE as usize);

    // The device connected before keeps being acknowledged, and what it sends is stored.
    for seq in 2..=20 {
        publish(&mut device, seq).await;
    }
    citytel.wait_serving().await;
    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, 20);
    let refused = scrape(&citytel).await;
    assert!(
        refused.value("citytel_endpoint_refused_total{reason=\"connection_limit\"}") > 0.0,
        "refusals are counted"
    );
    // A new device is refused while the slots are taken (in MQTT 5 with 0x97 and why)...
    match RawClient::try_connect_as(addr, version, "newcomer", None).await {
        Err(ConnectFailure::Refused {
            code,
            reason_string,
        }) => {
            let expected = match version {
                Version::V311 => "ServiceUnavailable",
                Version::V5 => "QuotaExceeded",
            };
            assert_eq!(code, expected);
            assert_eq!(reason_string.is_some(), version == Version::V5);
        }
        Err(ConnectFailure::Failed(e)) => panic!("expected a CONNACK refusing, got {e}"),
        Ok(_) => panic!("a newcomer got in while the slots were taken"),
    }

    // ...and gets in once the idle connections are gone.
    drop(idle);
    let mut wait = Wait::new("a new device connecting", Duration::from_secs(30))
        .every(Duration::from_millis(100));
    let mut newcomer = loop {
        match RawClient::try_connect_as(addr, version, "newcomer", None).await {
            Ok(client) => break client,
            Err(e) => wait.retry().await.unwrap_or_else(|t| panic!("{t}: {e:?}")),
        }
    };
    let payload = batch_payload("cab-0002", 1, &METRICS, &[(1, now_ms(), vec![1.0])]);
    newcomer
        .publish_acked(&telemetry_topic("cab-0002"), payload, 1)
        .await;
    drop((device, newcomer));
    assert!(citytel.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_that_send_only_the_preface_neither_crash_nor_block_ingest() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_limit();
    let dir = tempfile::tempdir().unwrap();
    let mut citytel = start(dir.path());
    let addr = citytel.mqtt.expect("endpoint");
    citytel.wait_serving().await;
    let mut device = RawClient::connect(addr, "device").await;
    publish(&mut device, 1).await;

    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut idle = open_idle(citytel.grpc, IDLE, preface).await;
    let closed = closed_by_citytel(&mut idle, IDLE - 16).await;
    citytel.assert_running();
    println!(
        "{IDLE} preface-only gRPC connections: {closed} closed by citytel, descriptors {} of {NOFILE}",
        citytel.open_fds()
    );
    assert!(closed >= IDLE - 16, "only {closed} of {IDLE} refused");

    for seq in 2..=20 {
        publish(&mut device, seq).await;
    }
    let refused = scrape(&citytel).await;
    assert!(
        refused.value(
            "citytel_connections_refused_total{listener=\"grpc\",reason=\"connection_limit\"}"
        ) > 0.0
    );

    // Once they close, gRPC answers again: health, and the readings stored during the attack.
    drop(idle);
    citytel.wait_serving().await;
    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, 20);
    drop(device);
    assert!(citytel.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_is_waited_out_not_fatal() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_own_limit();
    let dir = tempfile::tempdir().unwrap();
    // Caps set far above what 256 descriptors allow, so accept and the WAL do run out; small
    // WAL segments, so rollovers need new files meanwhile.
    let args = [
        "--set",
        "endpoint.max_connections=5000",
        "--set",
        "endpoint.max_connections_per_ip=100000",
        "--set",
        "endpoint.connect_rate_per_ip=100000.0",
        "--set",
        "endpoint.connect_burst_per_ip=100000",
        "--set",
        "endpoint.connect_timeout=\"10m\"",
        "--set",
        "storage.wal_segment_bytes=65536",
    ];
    let mut citytel = Citytel::start_with_open_files(dir.path(), &args, NOFILE);
    let addr = citytel.mqtt.expect("endpoint");
    citytel.wait_serving().await;
    let mut device = RawClient::connect(addr, "device").await;
    publish(&mut device, 1).await;

    let idle = open_idle(addr, IDLE, &[]).await;
    println!("{} idle connections opened", idle.len());
    // Descriptors are exhausted now; the device keeps publishing (WAL segments roll over
    // meanwhile, or wait for a descriptor) and every reading is acknowledged once durable.
    let mut wait = Wait::new("citytel using up its descriptors", Duration::from_secs(30));
    while citytel.open_fds() + 8 < NOFILE as usize {
        wait.retry().await.unwrap();
    }
    for seq in 2..=READINGS_UNDER_EXHAUSTION {
        publish(&mut device, seq).await;
    }
    citytel.assert_running();
    println!(
        "descriptors in use with {IDLE} idle connections: {} of {NOFILE}",
        citytel.open_fds()
    );

    drop(idle);
    citytel.wait_serving().await;
    let scrape = scrape(&citytel).await;
    assert!(
        scrape.value("citytel_accept_errors_total{listener=\"mqtt\",error=\"descriptors\"}") > 0.0,
        "accept ran out of descriptors"
    );
    let mut client = citytel.client().await;
    assert_eq!(
        readings_total(&mut client, DEVICE).await,
        READINGS_UNDER_EXHAUSTION
    );
    drop(device);
    assert!(citytel.stop().success());
}
