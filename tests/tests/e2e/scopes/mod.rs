//! Scoped API keys, as a council, a network operator and a university meet them: every RPC's
//! answer, aggregate, stream and export holds only the devices and metrics the key's scope
//! shows, and a device outside it does not exist for the key.
//!
//! One fleet ([`Fleet`]) on the real binary: cabinets, small cells and sensors at sites in the
//! districts north, east and south, and at a site without a district. Three keys:
//!
//! - the council's admin key (the one `citytel serve` wrote), whose scope is everything;
//! - a network operator's operator key scoped to cabinets;
//! - a university's viewer key scoped to sensors in north and east, metrics `no2_ugm3` and
//!   `pm25_ugm3`.
//!
//! What each key should see is worked out here from the layout ([`Who::sees`]), independently
//! of citytel's own scope code; expected values come from what the test published ([`Truth`]).
//!
//! - [`rpcs`]: the table over every unary RPC, aggregates and availability rollups included.
//! - [`streams`]: WatchEvents and WatchReadings never deliver what a key does not see.
//! - [`export`]: ExportSeries and `citytel export` in CSV, and Parquet read back by pyarrow.
//! - [`reports`]: district reports list only the districts a key sees and rest on its devices.

mod export;
mod reports;
mod rpcs;
mod streams;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use citytel_proto::catalog;
use citytel_proto::kind::Kind;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{self, Birth, Status, status};
use citytel_tests::keys::{self, Bearer};
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{batch_payload, now_ms};
use prost::Message as _;
use tonic::transport::Channel;

/// The devices: (id, site, kind).
pub(super) const DEVICES: [(&str, &str, &str); 9] = [
    ("cab-n1", "site-n1", "cabinet"),
    ("cab-s1", "site-s1", "cabinet"),
    ("cab-x", "site-x", "cabinet"),
    ("cell-n1", "site-n1", "small_cell"),
    ("sen-e1", "site-e1", "sensor"),
    ("sen-n1", "site-n1", "sensor"),
    ("sen-n2", "site-n2", "sensor"),
    ("sen-s1", "site-s1", "sensor"),
    ("sen-x", "site-x", "sensor"),
];

/// Site to district (site-x has none).
pub(super) const DISTRICTS: [(&str, &str); 4] = [
    ("site-n1", "north"),
    ("site-n2", "north"),
    ("site-e1", "east"),
    ("site-s1", "south"),
];

/// Readings per device, 10 s apart.
pub(super) const READINGS: u64 = 30;
/// Boot id of the first birth.
const BOOT: u64 = 1;

/// The district of a site, from [`DISTRICTS`].
pub(super) fn district(site: &str) -> Option<&'static str> {
    DISTRICTS.iter().find(|(s, _)| *s == site).map(|(_, d)| *d)
}

/// The site and kind of a device of [`DEVICES`].
pub(super) fn place(device: &str) -> (&'static str, &'static str) {
    let (_, site, kind) = DEVICES
        .iter()
        .find(|(id, _, _)| *id == device)
        .expect("a device of the layout");
    (site, kind)
}

/// The catalogue's metrics of a kind.
pub(super) fn metrics_of(kind: &str) -> Vec<&'static str> {
    catalog::metric_names(kind.parse::<Kind>().expect("a known kind")).to_vec()
}

/// A query client with a key.
pub(super) use citytel_tests::keys::Query;

/// One of the three callers, with what it should see.
pub(super) struct Who {
    /// For failure messages.
    pub(super) name: &'static str,
    /// Its key.
    pub(super) key: String,
    /// Its role.
    pub(super) role: &'static str,
    /// Device kinds it sees (empty: any).
    kinds: Vec<&'static str>,
    /// Districts it sees (empty: any).
    districts: Vec<&'static str>,
    /// Metrics it sees (`None`: every one).
    metrics: Option<Vec<&'static str>>,
}

impl Who {
    /// Whether it sees a device of the layout (no one sees a device that is not in it).
    pub(super) fn sees(&self, device: &str) -> bool {
        if !DEVICES.iter().any(|(id, _, _)| *id == device) {
            return false;
        }
        let (site, kind) = place(device);
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.districts.is_empty()
                || district(site).is_some_and(|d| self.districts.contains(&d)))
    }

    /// Whether it sees a metric (of a device it sees).
    pub(super) fn sees_metric(&self, metric: &str) -> bool {
        self.metrics.as_ref().is_none_or(|m| m.contains(&metric))
    }

    /// The devices it sees, ordered by id.
    pub(super) fn devices(&self) -> Vec<&'static str> {
        DEVICES
            .iter()
            .map(|(id, _, _)| *id)
            .filter(|id| self.sees(id))
            .collect()
    }

    /// The metrics of `device` it sees, sorted.
    pub(super) fn metrics(&self, device: &str) -> Vec<&'static str> {
        let mut m: Vec<_> = metrics_of(place(device).1)
            .into_iter()
            .filter(|m| self.sees_metric(m))
            .collect();
        m.sort_unstable();
        m
    }

    /// Fails unless every device and metric named in an answer is one it sees: the property
    /// every RPC's answer must have.
    pub(super) fn check<'a>(
        &self,
        what: &str,
        devices: impl IntoIterator<Item = &'a str>,
        metrics: impl IntoIterator<Item = &'a str>,
    ) {
        for d in devices {
            assert!(
                DEVICES.iter().any(|(id, _, _)| *id == d) && self.sees(d),
                "{}: {what} names device {d:?}, outside its scope",
                self.name
            );
        }
        for m in metrics {
            assert!(
                self.sees_metric(m),
                "{}: {what} names metric {m:?}, outside its scope",
                self.name
            );
        }
    }
}

/// What the test published: (device, metric) -> (time, value), oldest first.
pub(super) type Truth = BTreeMap<(String, String), Vec<(i64, f64)>>;

/// The running fleet and its three callers.
pub(super) struct Fleet {
    /// citytel.
    pub(super) citytel: Citytel,
    /// The council's admin, the operator, the university.
    pub(super) who: [Who; 3],
    /// Every reading published.
    pub(super) truth: Truth,
    /// Device time of the first reading.
    pub(super) start_ms: i64,
    /// One open connection per device, kept so no device goes offline during the test.
    pub(super) connections: BTreeMap<String, RawClient>,
    /// The next packet id per device.
    packet_ids: BTreeMap<String, u16>,
}

/// The telemetry or status topic of a device.
pub(super) fn topic(device: &str, channel: &str) -> String {
    let (site, kind) = place(device);
    format!("citytel/v1/{site}/{kind}/{device}/{channel}")
}

/// A birth of `device` in `boot`, reporting hourly (so nobody turns late during a test).
pub(super) fn birth(device: &str, boot: u64) -> Vec<u8> {
    Status {
        device_id: device.to_string(),
        boot_id: boot,
        time_unix_ms: now_ms(),
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "fw 1".into(),
            reporting_interval_ms: 3_600_000,
            heartbeat_interval_ms: Some(3_600_000),
            children: Vec::new(),
            intermittent: None,
            location: None,
        })),
    }
    .encode_to_vec()
}

/// The value of reading `i` of metric `m` (index in the catalogue) of device `d` (index in
/// [`DEVICES`]): distinct per series, multiples of 0.5.
fn value(d: usize, m: usize, i: u64) -> f64 {
    (d * 100 + m * 10) as f64 + (i % 7) as f64 * 0.5
}

impl Fleet {
    /// Starts citytel with the districts, creates the organisations and keys, and publishes a
    /// birth and [`READINGS`] readings of every catalogue metric for every device.
    pub(super) async fn start(data: &Path) -> Fleet {
        let mut args: Vec<String> = vec!["--set".into(), "api.authentication=true".into()];
        for (site, d) in DISTRICTS {
            args.push("--set".into());
            args.push(format!("availability.districts.{site}={d:?}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let citytel = Citytel::start(data, &args);
        let admin = keys::admin_key(data);
        let mut admin_api = keys::admin(&citytel, &admin).await;
        let operator = create(
            &mut admin_api,
            ("fibreco", "FibreCo", "FibreCo internal use only"),
            "operator",
            v1::Scope {
                kinds: vec!["cabinet".into()],
                ..v1::Scope::default()
            },
        )
        .await;
        let university = create(
            &mut admin_api,
            (
                "university",
                "City University",
                "CC BY 4.0, City University",
            ),
            "viewer",
            v1::Scope {
                districts: vec!["north".into(), "east".into()],
                kinds: vec!["sensor".into()],
                metrics: vec!["no2_ugm3".into(), "pm25_ugm3".into()],
                restrict_metrics: true,
                ..v1::Scope::default()
            },
        )
        .await;
        let who = [
            Who {
                name: "council admin",
                key: admin,
                role: "admin",
                kinds: vec![],
                districts: vec![],
                metrics: None,
            },
            Who {
                name: "network operator",
                key: operator,
                role: "operator",
                kinds: vec!["cabinet"],
                districts: vec![],
                metrics: None,
            },
            Who {
                name: "university",
                key: university,
                role: "viewer",
                kinds: vec!["sensor"],
                districts: vec!["north", "east"],
                metrics: Some(vec!["no2_ugm3", "pm25_ugm3"]),
            },
        ];
        // Ten minutes ago, on a whole minute, so step buckets are easy to reason about.
        let start_ms = (now_ms() - 600_000) / 60_000 * 60_000;
        let mqtt = citytel.mqtt.expect("the device endpoint runs");
        let mut fleet = Fleet {
            citytel,
            who,
            truth: Truth::new(),
            start_ms,
            connections: BTreeMap::new(),
            packet_ids: BTreeMap::new(),
        };
        for (d, (id, _, kind)) in DEVICES.iter().enumerate() {
            let client = RawClient::connect(mqtt, id).await;
            fleet.connections.insert(id.to_string(), client);
            fleet
                .publish(id, &topic(id, "status"), birth(id, BOOT))
                .await;
            let names = metrics_of(kind);
            let readings: Vec<(u64, i64, Vec<f64>)> = (0..READINGS)
                .map(|i| {
                    let t = start_ms + i as i64 * 10_000;
                    (i, t, (0..names.len()).map(|m| value(d, m, i)).collect())
                })
                .collect();
            for (m, name) in names.iter().enumerate() {
                fleet.truth.insert(
                    (id.to_string(), name.to_string()),
                    readings.iter().map(|(_, t, v)| (*t, v[m])).collect(),
                );
            }
            let payload = batch_payload(id, BOOT, &names, &readings);
            fleet.publish(id, &topic(id, "telemetry"), payload).await;
        }
        fleet
    }

    /// Publishes at QoS 1 on `device`'s connection and waits for the PUBACK (sent once the
    /// message is stored).
    pub(super) async fn publish(&mut self, device: &str, topic: &str, payload: Vec<u8>) {
        let pkid = self.packet_ids.entry(device.to_string()).or_insert(0);
        *pkid += 1;
        let pkid = *pkid;
        let client = self.connections.get_mut(device).expect("connected");
        client.publish_acked(topic, payload, pkid).await;
    }

    /// A query client with the key of caller `i`.
    pub(super) async fn query(&self, i: usize) -> Query {
        QueryServiceClient::with_interceptor(
            channel(self.citytel.grpc).await,
            Bearer(Some(self.who[i].key.clone())),
        )
        .max_decoding_message_size(64 << 20)
    }
}

/// A channel to citytel's gRPC API.
pub(super) async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("gRPC connects")
}

/// Creates organisation `(id, name, licence)` and a key of `role` with `scope` in it.
async fn create(
    admin: &mut keys::Admin,
    (id, name, licence): (&str, &str, &str),
    role: &str,
    scope: v1::Scope,
) -> String {
    admin
        .create_organisation(v1::CreateOrganisationRequest {
            organisation: Some(v1::Organisation {
                id: id.into(),
                name: name.into(),
                licence: licence.into(),
                created_unix_ms: 0,
            }),
        })
        .await
        .expect("CreateOrganisation");
    admin
        .create_api_key(v1::CreateApiKeyRequest {
            organisation: id.into(),
            role: role.into(),
            scope: Some(scope),
            name: format!("{id} {role}"),
            expires_unix_ms: 0,
        })
        .await
        .expect("CreateApiKey")
        .into_inner()
        .secret
}
