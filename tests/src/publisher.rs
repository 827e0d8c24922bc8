//! A crash-tolerant QoS 1 publisher with exact acknowledgement tracking, for fault tests.
//!
//! Each connection owns a few devices and publishes their readings (one per message, unique
//! (device, boot, seq), timestamps one millisecond apart so no two readings of a device share a
//! point) with a window of unacknowledged PUBLISHes. When the connection breaks it reconnects with
//! a persistent session (`clean_session = false`) and resends every unacknowledged PUBLISH with
//! the DUP flag and its packet id, as a device must, whether or not its session was kept (an
//! MQTT 5 session kept by citytel does not outlive citytel's restart). It speaks MQTT 3.1.1 or
//! MQTT 5 ([`Version`]). A reading counts as acknowledged only when the
//! PUBACK for its packet id arrived, so [`Published::acked`] is exactly what the server confirmed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_testkit::wait::Wait;
use tonic::transport::Channel;

use crate::raw_mqtt::encode_publish;
use crate::wire::{batch_payload, points, readings_total, telemetry_topic};
use conn::Conn;
pub use conn::Version;

mod conn;

/// The metrics every device reports.
pub const METRICS: [&str; 2] = ["temperature_c", "power_w"];
/// Boot id of every device.
const BOOT_ID: u64 = 3;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    /// The server (citytel's endpoint or a broker).
    pub addr: SocketAddr,
    /// Connections; each owns `devices_per_connection` devices.
    pub connections: u32,
    /// Devices per connection.
    pub devices_per_connection: u32,
    /// Readings per device, one per message.
    pub readings_per_device: u64,
    /// Most unacknowledged PUBLISHes per connection.
    pub window: usize,
    /// Device timestamps start here, one millisecond per seq.
    pub start_ms: i64,
    /// How long a connection keeps trying to reconnect before the run fails.
    pub reconnect_limit: Duration,
    /// The MQTT version spoken.
    pub version: Version,
}

impl PublishPlan {
    /// Readings the plan publishes in all.
    pub fn total(&self) -> u64 {
        u64::from(self.connections * self.devices_per_connection) * self.readings_per_device
    }
}

/// Device id of device `d` of connection `c`.
pub fn device_id(c: u32, d: u32) -> String {
    format!("cab-{c:03}-{d:03}")
}

/// The values of reading `seq` of device number `device`.
fn values(device: u32, seq: u64) -> Vec<f64> {
    vec![seq as f64 * 0.5 + f64::from(device), -(seq as f64)]
}

/// One message: which device and reading, and its encoded PUBLISH parts.
struct Message {
    device: String,
    seq: u64,
    topic: String,
    payload: Bytes,
}

/// What a run published: every acknowledged reading, per device, and the connection count.
#[derive(Debug, Default)]
pub struct Published {
    /// Device -> acknowledged seqs.
    pub acked: BTreeMap<String, BTreeSet<u64>>,
    /// Connections made after the first ones (reconnects).
    pub reconnects: u64,
    /// PUBLISHes resent with DUP after a reconnect.
    pub resent: u64,
}

/// Acknowledged readings so far, over all connections, for choosing fault points.
#[derive(Debug, Default)]
pub struct Progress {
    /// Readings acknowledged.
    pub acked: AtomicU64,
}

/// Runs the plan to the end: every reading published and acknowledged (reconnecting as often as
/// needed), updating `progress` on the way.
pub async fn run(plan: &PublishPlan, progress: Arc<Progress>) -> Published {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..plan.connections {
        let plan = plan.clone();
        let progress = progress.clone();
        tasks.spawn(async move { run_connection(&plan, c, &progress).await });
    }
    let mut published = Published::default();
    while let Some(result) = tasks.join_next().await {
        let (acked, reconnects, resent) = result.expect("publisher connection");
        for (device, seq) in acked {
            let fresh = published.acked.entry(device).or_default().insert(seq);
            assert!(fresh, "a reading was acknowledged twice");
        }
        published.reconnects += reconnects;
        published.resent += resent;
    }
    published
}

fn messages(plan: &PublishPlan, c: u32) -> Vec<Message> {
    let mut out = Vec::new();
    for seq in 1..=plan.readings_per_device {
        for d in 0..plan.devices_per_connection {
            let device = device_id(c, d);
            let time = plan.start_ms + seq as i64;
            let payload = batch_payload(
                &device,
                BOOT_ID,
                &METRICS,
                &[(seq, time, values(c * 1000 + d, seq))],
            );
            out.push(Message {
                topic: telemetry_topic(&device),
                device,
                seq,
                payload: payload.into(),
            });
        }
    }
    out
}

type ConnectionResult = (Vec<(String, u64)>, u64, u64);

async fn run_connection(plan: &PublishPlan, c: u32, progress: &Progress) -> ConnectionResult {
    let messages = messages(plan, c);
    let client_id = format!("fault-publisher-{c}");
    // pkid -> message index, in send order.
    let mut in_flight: BTreeMap<u16, usize> = BTreeMap::new();
    let mut order: std::collections::VecDeque<u16> = std::collections::VecDeque::new();
    let mut acked = Vec::with_capacity(messages.len());
    let mut next = 0usize;
    let mut next_pkid: u16 = 1;
    let (mut reconnects, mut resent) = (0u64, 0u64);
    let mut first = true;
    while acked.len() < messages.len() {
        let Some(mut conn) = connect(plan, &client_id).await else {
            panic!(
                "{client_id}: cannot reconnect within {:?}",
                plan.reconnect_limit
            );
        };
        if !first {
            reconnects += 1;
        }
        first = false;
        // Resend what is unacknowledged, in the original order, with DUP.
        let mut out = BytesMut::new();
        for pkid in &order {
            let m = &messages[in_flight[pkid]];
            encode(plan.version, &mut out, m, *pkid, true);
            resent += 1;
        }
        let mut broken = conn.write(&out).await.is_err();
        while !broken && acked.len() < messages.len() {
            let mut out = BytesMut::new();
            while order.len() < plan.window && next < messages.len() {
                let pkid = next_pkid;
                next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                encode(plan.version, &mut out, &messages[next], pkid, false);
                in_flight.insert(pkid, next);
                order.push_back(pkid);
                next += 1;
            }
            if !out.is_empty() && conn.write(&out).await.is_err() {
                broken = true;
                break;
            }
            // Read at least one packet, then whatever else is already there.
            match conn.acks().await {
                Some(pkids) => {
                    for pkid in pkids {
                        let Some(index) = in_flight.remove(&pkid) else {
                            panic!("{client_id}: PUBACK for {pkid} not in flight");
                        };
                        order.retain(|p| *p != pkid);
                        let m = &messages[index];
                        acked.push((m.device.clone(), m.seq));
                        progress.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => broken = true,
            }
        }
    }
    (acked, reconnects, resent)
}

fn encode(version: Version, out: &mut BytesMut, m: &Message, pkid: u16, dup: bool) {
    encode_publish(version, out, &m.topic, m.payload.clone(), pkid, dup);
}

/// Connects with a persistent session, retrying until `reconnect_limit`.
async fn connect(plan: &PublishPlan, client_id: &str) -> Option<Conn> {
    let mut wait = Wait::new(format!("{client_id} reconnecting"), plan.reconnect_limit)
        .every(Duration::from_millis(50));
    loop {
        if let Some(conn) = Conn::open(plan.addr, client_id, plan.version).await {
            return Some(conn);
        }
        wait.retry().await.ok()?;
    }
}

/// Asserts that citytel stores exactly the acknowledged readings of every device of `plan`: the
/// count (so no duplicates and no loss) and every metric's points, time and value.
pub async fn assert_stored_exactly(
    client: &mut QueryServiceClient<Channel>,
    plan: &PublishPlan,
    published: &Published,
) {
    for c in 0..plan.connections {
        for d in 0..plan.devices_per_connection {
            let device = device_id(c, d);
            let acked = published.acked.get(&device).cloned().unwrap_or_default();
            assert_eq!(
                readings_total(client, &device).await,
                acked.len() as u64,
                "{device}: stored readings (a difference is a loss or a duplicate)"
            );
            for (i, metric) in METRICS.iter().enumerate() {
                let want: BTreeMap<i64, u64> = acked
                    .iter()
                    .map(|seq| {
                        (
                            plan.start_ms + *seq as i64,
                            values(c * 1000 + d, *seq)[i].to_bits(),
                        )
                    })
                    .collect();
                assert_eq!(
                    points(client, &device, metric).await,
                    want,
                    "{device} {metric}: stored points"
                );
            }
        }
    }
}

/// Readings citytel stores over the devices of `plan`.
pub async fn stored_total(client: &mut QueryServiceClient<Channel>, plan: &PublishPlan) -> u64 {
    let mut total = 0;
    for c in 0..plan.connections {
        for d in 0..plan.devices_per_connection {
            total += readings_total(client, &device_id(c, d)).await;
        }
    }
    total
}
