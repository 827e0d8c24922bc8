//! Writes the seed corpora into `fuzz/corpus/<target>/`: small, valid inputs for each target,
//! made with the codecs citytel talks to (rumqttc's MQTT codec, prost for the wire contract,
//! the WAL itself), so that fuzzing starts from inputs that reach deep into the code.
//!
//! Run from the workspace root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use citytel_proto::v1::{self, status};
use citytel_storage::wal::{FsyncPolicy, Wal, WalOptions};
use prost::Message;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Connect, LastWill, Login, Packet, PubRel, Publish, Subscribe, Unsubscribe,
};

const TELEMETRY: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";
const STATUS: &str = "citytel/v1/site-01/cabinet/cab-0001/status";
/// A receive time the seeds' readings are close to.
const NOW_MS: i64 = 1_700_000_000_000;

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(name), bytes).expect("write a seed");
}

fn telemetry(device: &str, readings: usize) -> Vec<u8> {
    v1::TelemetryBatch {
        device_id: device.into(),
        boot_id: 7,
        metric_names: vec!["temp_c".into(), "door_open".into()],
        readings: (0..readings)
            .map(|i| v1::Reading {
                seq: i as u64 + 1,
                time_unix_ms: NOW_MS - 1000 * i as i64,
                values: vec![21.5 + i as f64, 0.0],
            })
            .collect(),
        gateway_id: None,
    }
    .encode_to_vec()
}

fn status(device: &str, kind: status::Kind) -> Vec<u8> {
    v1::Status {
        device_id: device.into(),
        boot_id: 7,
        time_unix_ms: NOW_MS,
        gateway_id: None,
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn birth() -> status::Kind {
    status::Kind::Birth(v1::Birth {
        firmware_version: "1.4.2".into(),
        reporting_interval_ms: 10_000,
        heartbeat_interval_ms: Some(60_000),
        children: vec![],
        intermittent: None,
        location: None,
    })
}

fn packets(packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for packet in packets {
        packet.write(&mut out, usize::MAX).expect("encode a packet");
    }
    out.to_vec()
}

fn connect(client_id: &str, keep_alive: u16, will: bool) -> Packet {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = keep_alive;
    if will {
        connect.last_will = Some(LastWill::new(
            STATUS,
            status(
                "cab-0001",
                status::Kind::Death(v1::Death {
                    reason: v1::DeathReason::ConnectionLost.into(),
                    at_status_time: false,
                }),
            ),
            QoS::AtLeastOnce,
            false,
        ));
    }
    Packet::Connect(connect)
}

fn publish(topic: &str, qos: QoS, pkid: u16, payload: Vec<u8>) -> Packet {
    let mut publish = Publish::from_bytes(topic, qos, Bytes::from(payload));
    publish.pkid = pkid;
    Packet::Publish(publish)
}

/// `[flags][chunk seed]` and the packets (see the target for the flags).
fn connection(name: &str, flags: u8, bytes: &[u8]) {
    let mut input = vec![flags, 0x5a];
    input.extend_from_slice(bytes);
    write("endpoint_connection", name, &input);
}

fn endpoint_connection() {
    let session = packets(&[
        connect("cab-0001", 30, true),
        publish(STATUS, QoS::AtLeastOnce, 1, status("cab-0001", birth())),
        publish(TELEMETRY, QoS::AtMostOnce, 0, telemetry("cab-0001", 1)),
        publish(TELEMETRY, QoS::AtLeastOnce, 2, telemetry("cab-0001", 3)),
        publish(TELEMETRY, QoS::ExactlyOnce, 3, telemetry("cab-0001", 2)),
        Packet::PubRel(PubRel::new(3)),
        Packet::PingReq,
        Packet::Disconnect,
    ]);
    // Acked at once, written whole, closed after.
    connection("session-qos012", 0x00, &session);
    // Held then acked, one byte per read.
    connection("session-bytewise-held", 0x41, &session);
    // Every other ack dropped, small reads, a small in-flight budget.
    connection("session-alternate-small-budget", 0xa2, &session);

    let mut with_login = Connect::new("cab-0002");
    with_login.keep_alive = 10;
    with_login.login = Some(Login::new("device", "s3cret"));
    let unclean = {
        let mut c = Connect::new("");
        c.clean_session = false;
        c
    };
    connection(
        "login-then-idle",
        0x14,
        &packets(&[
            Packet::Connect(with_login),
            publish(TELEMETRY, QoS::AtLeastOnce, 9, telemetry("cab-0001", 1)),
        ]),
    );
    connection(
        "empty-client-id-unclean",
        0x00,
        &packets(&[Packet::Connect(unclean)]),
    );
    let mut subscribe = Subscribe::new("citytel/#", QoS::AtLeastOnce);
    subscribe.pkid = 4;
    let mut unsubscribe = Unsubscribe::new("citytel/#");
    unsubscribe.pkid = 5;
    connection(
        "subscribe-then-shutdown",
        0x08,
        &packets(&[
            connect("", 0, false),
            Packet::Subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe),
            publish(TELEMETRY, QoS::ExactlyOnce, 6, telemetry("cab-0001", 1)),
        ]),
    );
    // A gateway without a will, publishing for itself and a child.
    connection(
        "gateway-and-child",
        0xc3,
        &packets(&[
            connect("gw-01", 60, false),
            publish(
                "citytel/v1/site-01/gateway/gw-01/telemetry",
                QoS::AtLeastOnce,
                1,
                telemetry("gw-01", 1),
            ),
            publish(
                "citytel/v1/site-01/sensor/gw-01-s01/telemetry",
                QoS::AtLeastOnce,
                2,
                telemetry("gw-01-s01", 1),
            ),
        ]),
    );
    // MQTT 5 CONNECT, refused with the protocol version code.
    connection(
        "mqtt5-connect",
        0x00,
        &[
            0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e, 0x00, 0x00,
            0x01, b'a',
        ],
    );
    // A PUBLISH at QoS 3 after a good CONNECT, with a will that fires.
    let mut bad_qos = packets(&[connect("cab-0001", 30, true)]);
    bad_qos.extend_from_slice(&[0x36, 0x03, 0x00, 0x01, b'a']);
    connection("publish-qos3", 0x00, &bad_qos);
}

/// `[flags][topic length][topic][receive time][payload]`.
fn decode(name: &str, topic: &str, payload: &[u8]) {
    let mut input = vec![0, u8::try_from(topic.len()).expect("a short topic")];
    input.extend_from_slice(topic.as_bytes());
    input.extend_from_slice(&NOW_MS.to_le_bytes());
    input.extend_from_slice(payload);
    write("decode", name, &input);
}

fn decode_seeds() {
    decode("telemetry", TELEMETRY, &telemetry("cab-0001", 3));
    decode("birth", STATUS, &status("cab-0001", birth()));
    decode(
        "heartbeat",
        STATUS,
        &status(
            "cab-0001",
            status::Kind::Heartbeat(v1::Heartbeat {
                last_seq: Some(42),
                uptime_s: Some(3600),
            }),
        ),
    );
    let mut from_gateway = v1::TelemetryBatch::decode(&telemetry("gw-01-s01", 2)[..])
        .expect("decodes what it encoded");
    from_gateway.gateway_id = Some("gw-01".into());
    decode(
        "gateway-child",
        "citytel/v1/site-01/sensor/gw-01-s01/telemetry",
        &from_gateway.encode_to_vec(),
    );
    decode("device-mismatch", TELEMETRY, &telemetry("cab-0002", 1));
}

fn lineproto_seeds() {
    let seeds: [(&str, &str); 5] = [
        (
            "typed-fields",
            "cabinet,device_id=cab-1,site=s1 t=21.5,n=3i,u=4u,door=true,off=F,note=\"hi\" 1700000000123456789\n",
        ),
        (
            "several-devices",
            "m,device_id=a x=1,y=2 1000000\nm,device_id=a y=3,x=4 2000000\n\
             telemetry,kind=sensor,device_id=sen-9 pm25=3 1000000\n# a comment\n\n\
             m,device_id=a s=\"text\",x=8 4000000\n",
        ),
        (
            "escapes",
            "cpu,host=a\\,b\\=c,x=y\\\\,device_id=d f\\=k\\,2=1 5\n\
             m,device_id=d s=\"with, commas and spaces= \",n=-1.5e-3,e=1E6,d=.5,x=-0 6\n",
        ),
        (
            "bad-lines",
            "m,device_id=d f=1\nm,host=d f=1 1\nm,device_id=d/1 f=1 1\n\
             m,device_id=d ok=1,big=1e999 1\nm,device_id=d f=1 9223372036854775807\n\
             m,t=a=b f=1\n,t=v f=1\nsensor,device_id=sen-7 pm25=\n",
        ),
        (
            "crlf",
            "m,device_id=a f=1 1000000\r\n\r\nm,device_id=b f=2 2000000",
        ),
    ];
    for (i, (name, text)) in seeds.iter().enumerate() {
        // Flags: precision and chunk size vary between seeds.
        let mut input = vec![(i as u8) * 0x15];
        input.extend_from_slice(text.as_bytes());
        write("lineproto_import", name, &input);
    }
}

fn wal_seeds() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = WalOptions {
        segment_bytes: 256,
        fsync: FsyncPolicy::Never,
    };
    let (mut wal, _) = Wal::open(dir.path(), options, 0, |_, _| {}).expect("open a new wal");
    for i in 0..6u8 {
        let payload = [b'r', i, 0xff, i.wrapping_mul(37)];
        wal.append(&payload.repeat(usize::from(i) * 8 + 1))
            .expect("append");
        wal.commit().expect("commit");
    }
    drop(wal);
    let segment = |seq| {
        std::fs::read(citytel_storage::wal::segment_path(dir.path(), seq)).expect("a segment")
    };
    let (first, second) = (segment(1), segment(2));

    // One intact segment, as written.
    let mut one = vec![0x00];
    one.extend_from_slice(&first);
    write("wal_recovery", "one-segment", &one);
    // Two segments, the second torn mid-record.
    let mut two = vec![0x01];
    two.extend_from_slice(&u16::try_from(first.len()).expect("small").to_le_bytes());
    two.extend_from_slice(&first);
    two.extend_from_slice(&second[..second.len() - 3]);
    write("wal_recovery", "torn-second-segment", &two);
    // Records only (the target adds the header), a flipped bit in the last.
    let mut records = vec![0x08];
    records.extend_from_slice(&first[8..]);
    if let Some(last) = records.last_mut() {
        *last ^= 1;
    }
    write("wal_recovery", "corrupt-last-record", &records);
}

fn main() {
    endpoint_connection();
    decode_seeds();
    lineproto_seeds();
    wal_seeds();
}
