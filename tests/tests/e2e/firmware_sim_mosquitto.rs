//! Interoperability with a real broker: a small fleet publishes to Mosquitto while a subscriber
//! decodes everything that arrives, and what arrived must be exactly what the report says was acked.
//!
//! Part of the `interop` group (needs Debian's `mosquitto`):
//! `cargo test -p citytel-tests --features interop`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig, QoS};
use citytel_proto::kind::Kind;
use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{DeathReason, Reading, Status, TelemetryBatch, status};
use citytel_testkit::mosquitto::Mosquitto;
use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A reading as it arrived, with what its batch said about it.
#[derive(Debug, Clone, PartialEq)]
struct Arrived {
    boot_id: u64,
    gateway_id: Option<String>,
    metric_names: Vec<String>,
    reading: Reading,
}

/// Everything the subscriber decoded.
#[derive(Debug, Default)]
struct Seen {
    /// (device id, seq) -> reading.
    readings: BTreeMap<(String, u64), Arrived>,
    /// device id -> births.
    births: BTreeMap<String, Vec<Status>>,
    /// device id -> deaths.
    deaths: BTreeMap<String, Vec<Status>>,
}

impl Seen {
    fn add(&mut self, topic_name: &str, payload: &[u8]) {
        let topic = topic::parse(topic_name).expect("a citytel topic");
        match topic.channel {
            Channel::Telemetry => {
                let batch = TelemetryBatch::decode(payload).expect("a TelemetryBatch");
                assert_eq!(batch.device_id, topic.device_id, "{topic_name}");
                for reading in batch.readings {
                    let key = (batch.device_id.clone(), reading.seq);
                    let entry = Arrived {
                        boot_id: batch.boot_id,
                        gateway_id: batch.gateway_id.clone(),
                        metric_names: batch.metric_names.clone(),
                        reading,
                    };
                    if let Some(previous) = self.readings.insert(key, entry.clone()) {
                        assert_eq!(previous, entry, "a redelivered reading changed");
                    }
                }
            }
            Channel::Status => {
                let status = Status::decode(payload).expect("a Status");
                assert_eq!(status.device_id, topic.device_id, "{topic_name}");
                let list = match status.kind {
                    Some(status::Kind::Birth(_)) => &mut self.births,
                    Some(status::Kind::Death(_)) => &mut self.deaths,
                    _ => return,
                };
                list.entry(status.device_id.clone())
                    .or_default()
                    .push(status);
            }
        }
    }
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_delivers_exactly_the_acked_readings() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let broker = Mosquitto::start(dir.path()).await.expect("start mosquitto");

    // Subscribe to everything before the fleet starts.
    let mut options = MqttOptions::new("interop-subscriber", "127.0.0.1", broker.port());
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (subscriber, mut eventloop) = AsyncClient::new(options, 10);
    subscriber
        .subscribe("citytel/v1/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe request");
    loop {
        match eventloop.poll().await.expect("subscriber connection") {
            Event::Incoming(Packet::SubAck(_)) => break,
            _ => continue,
        }
    }
    let (messages, mut arrivals) = mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event
                && messages.send((publish.topic, publish.payload)).is_err()
            {
                break;
            }
        }
    });

    let config = FleetConfig {
        broker: BrokerAddr::new("127.0.0.1", broker.port()),
        cabinets: 2,
        small_cells: 2,
        sensors: 2,
        gateways: 1,
        children_per_gateway: 2,
        sites: 2,
        interval: Duration::from_millis(50),
        readings: Some(5),
        record: true,
        ..FleetConfig::default()
    };
    let fleet = Fleet::new(config).expect("a valid config");
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        fleet.run(CancellationToken::new(), None),
    )
    .await
    .expect("the fleet finishes")
    .expect("the fleet runs");

    // The report: every device took and got acked 5 readings, numbered from 1.
    let ids: Vec<&str> = report
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "cab-0001",
            "cab-0002",
            "cell-0001",
            "cell-0002",
            "sen-0001",
            "sen-0002",
            "gw-0001",
            "gw-0001-s01",
            "gw-0001-s02"
        ]
    );
    for device in &report.devices {
        assert_eq!(device.readings_published, 5, "{}", device.device_id);
        assert_eq!(device.readings_acked, 5, "{}", device.device_id);
        let seqs: BTreeSet<u64> = device.acked_readings.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=5).collect(), "{}", device.device_id);
    }
    let totals = report.totals;
    assert_eq!(totals.readings_acked, 45);
    assert_eq!((totals.errors, totals.reconnects), (0, 0));
    // 45 telemetry messages, 9 births, 7 deaths.
    assert_eq!(totals.messages_published, 61);
    assert_eq!(totals.messages_acked, 61);

    // What the subscriber saw: wait until everything the report promises has arrived.
    let connections = 7;
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.readings.len() < 45 || seen.births.len() < 9 || seen.deaths.len() < connections {
        let next = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .expect("every acked message reaches the subscriber")
            .expect("the subscriber is running");
        seen.add(&next.0, &next.1);
    }
    collector.abort();

    for device in &report.devices {
        let id = &device.device_id;
        let arrived: Vec<&Reading> = seen
            .readings
            .iter()
            .filter(|((device_id, _), _)| device_id == id)
            .map(|(_, arrived)| {
                assert_eq!(arrived.boot_id, device.boot_id, "{id}");
                assert_eq!(arrived.gateway_id, device.gateway_id, "{id}");
                assert_eq!(arrived.metric_names, device.metric_names, "{id}");
                &arrived.reading
            })
            .collect();
        let mut acked: Vec<&Reading> = device.acked_readings.iter().collect();
        acked.sort_by_key(|r| r.seq);
        assert_eq!(
            arrived, acked,
            "{id}: the subscriber saw exactly the acked readings"
        );

        let births = &seen.births[id.as_str()];
        assert_eq!(births.len(), 1, "{id}");
        let birth = &births[0];
        assert_eq!(birth.boot_id, device.boot_id, "{id}");
        assert_eq!(birth.gateway_id, device.gateway_id, "{id}");
        let Some(status::Kind::Birth(content)) = &birth.kind else {
            unreachable!("sorted as a birth");
        };
        assert_eq!(content.reporting_interval_ms, 50);
        let children: &[&str] = if device.kind == Kind::Gateway {
            &["gw-0001-s01", "gw-0001-s02"]
        } else {
            &[]
        };
        assert_eq!(content.children, children, "{id}");
    }
    for child in ["gw-0001-s01", "gw-0001-s02"] {
        assert_eq!(
            report.device(child).and_then(|d| d.gateway_id.as_deref()),
            Some("gw-0001")
        );
    }
    for (id, deaths) in &seen.deaths {
        assert_eq!(deaths.len(), 1, "{id}");
        let death = &deaths[0];
        assert_eq!(death.gateway_id, None, "{id}: only connections die");
        assert_eq!(
            death.kind,
            Some(status::Kind::Death(citytel_proto::v1::Death {
                reason: DeathReason::Shutdown as i32,
                at_status_time: false
            })),
            "{id}: an orderly death, not the Last Will"
        );
    }
    drop(broker);
}
