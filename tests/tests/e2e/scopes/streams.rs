//! WatchEvents and WatchReadings never deliver a device or metric outside the key's scope. Each
//! key watches everything it may; then every device the key does not see publishes (a reboot and
//! new readings) before every device it sees does. citytel applies messages in order and each
//! watcher gets items in that order, so once the visible devices' items have arrived, anything
//! of an invisible device would have arrived before them: nothing did.

use std::collections::BTreeSet;
use std::time::Duration;

use citytel_proto::v1::{self, fleet_event::Event};
use citytel_testkit::wait::Wait;
use citytel_tests::wire::batch_payload;
use tokio_stream::StreamExt as _;

use super::{DEVICES, Fleet, READINGS, birth, metrics_of, topic};

/// Boot id of the second birth.
const BOOT2: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_never_deliver_invisible_devices_or_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut fleet = Fleet::start(&dir.path().join("data")).await;
    for i in 0..fleet.who.len() {
        let mut client = fleet.query(i).await;
        let mut events = client
            .watch_events(v1::WatchEventsRequest::default())
            .await
            .expect("WatchEvents")
            .into_inner();
        let mut readings = client
            .watch_readings(v1::WatchReadingsRequest::default())
            .await
            .expect("WatchReadings")
            .into_inner();
        // Invisible devices first, then visible ones.
        let (visible, invisible): (Vec<&str>, Vec<&str>) = DEVICES
            .iter()
            .map(|d| d.0)
            .partition(|d| fleet.who[i].sees(d));
        let boot = BOOT2 + i as u64;
        for id in invisible.iter().chain(&visible) {
            fleet
                .publish(id, &topic(id, "status"), birth(id, boot))
                .await;
            let names = metrics_of(super::place(id).1);
            let t = fleet.start_ms + (READINGS as i64 + i as i64) * 10_000;
            let values = vec![1.5; names.len()];
            let payload = batch_payload(id, boot, &names, &[(0, t, values)]);
            fleet.publish(id, &topic(id, "telemetry"), payload).await;
        }
        let who = &fleet.who[i];
        let want: BTreeSet<String> = visible.iter().map(|d| d.to_string()).collect();

        let mut rebooted = BTreeSet::new();
        let mut wait = Wait::new(
            format!("{}: reboots of its devices", who.name),
            Duration::from_secs(20),
        );
        while rebooted != want {
            let item = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
            let Ok(Some(event)) = item else {
                wait.retry().await.expect("the events arrive");
                continue;
            };
            let device = match event.expect("an event").event.expect("event") {
                Event::Transition(t) => t.device_id,
                Event::Reboot(r) => {
                    if r.new_boot_id == boot {
                        rebooted.insert(r.device_id.clone());
                    }
                    r.device_id
                }
            };
            who.check("WatchEvents", [device.as_str()], []);
        }

        let mut heard = BTreeSet::new();
        let mut wait = Wait::new(
            format!("{}: readings of its devices", who.name),
            Duration::from_secs(20),
        );
        while heard != want {
            let item = tokio::time::timeout(Duration::from_millis(500), readings.next()).await;
            let Ok(Some(live)) = item else {
                wait.retry().await.expect("the readings arrive");
                continue;
            };
            let live = live.expect("readings");
            let metrics: Vec<&str> = live.values.iter().map(|v| v.metric.as_str()).collect();
            who.check(
                "WatchReadings",
                [live.device_id.as_str()],
                metrics.iter().copied(),
            );
            let mut sorted = metrics.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                who.metrics(&live.device_id),
                "{}: every visible metric",
                who.name
            );
            heard.insert(live.device_id.clone());
        }
    }
    fleet.citytel.stop();
}
