//! [`run`] against a minimal in-process MQTT server on port 0 that acknowledges what it is told
//! to: the counts must be exact, and every reading unique and well formed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use citytel_proto::v1::TelemetryBatch;
use prost::Message as _;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet, PubAck};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the fake server saw: (device, boot, seq) of every reading, and PUBLISHes received.
#[derive(Debug, Default)]
struct Seen {
    readings: HashSet<(String, u64, u64)>,
    duplicates: u64,
    publishes: u64,
}

/// How the fake server answers.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Never acknowledge the PUBLISH with this number (counted from 1) on each connection.
    withhold: Option<u64>,
    /// Send a PUBACK for a packet id nobody used before the first real one.
    bogus_ack: bool,
}

async fn serve(listener: TcpListener, seen: Arc<Mutex<Seen>>, behaviour: Behaviour) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_connection(stream, seen.clone(), behaviour));
    }
}

async fn serve_connection(mut stream: TcpStream, seen: Arc<Mutex<Seen>>, behaviour: Behaviour) {
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut n = 0;
    loop {
        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let packet = match Packet::read(&mut buf, 1 << 20) {
                Ok(p) => p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => panic!("bad packet from the generator: {e}"),
            };
            match packet {
                Packet::Connect(_) => {
                    let ack = ConnAck {
                        session_present: false,
                        code: ConnectReturnCode::Success,
                    };
                    Packet::ConnAck(ack).write(&mut out, 16).unwrap();
                    if behaviour.bogus_ack {
                        Packet::PubAck(PubAck::new(4321))
                            .write(&mut out, 16)
                            .unwrap();
                    }
                }
                Packet::Publish(publish) => {
                    n += 1;
                    let batch = TelemetryBatch::decode(publish.payload).unwrap();
                    let mut seen = seen.lock().unwrap();
                    seen.publishes += 1;
                    for r in &batch.readings {
                        assert_eq!(r.values.len(), 5);
                        if !seen
                            .readings
                            .insert((batch.device_id.clone(), batch.boot_id, r.seq))
                        {
                            seen.duplicates += 1;
                        }
                    }
                    if behaviour.withhold != Some(n) {
                        Packet::PubAck(PubAck::new(publish.pkid))
                            .write(&mut out, 16)
                            .unwrap();
                    }
                }
                Packet::Disconnect => return,
                other => panic!("unexpected {other:?}"),
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

async fn start(behaviour: Behaviour) -> (BrokerAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(serve(listener, seen.clone(), behaviour));
    (BrokerAddr::new("127.0.0.1", port), seen)
}

fn config(broker: BrokerAddr) -> LoadConfig {
    LoadConfig {
        broker,
        connections: 3,
        devices: 7,
        inflight: 50,
        batch: 4,
        messages: Some(2_000),
        warmup: Duration::from_millis(50),
        drain_timeout: Duration::from_millis(300),
        ..LoadConfig::default()
    }
}

#[tokio::test]
async fn every_message_is_counted_once_and_acknowledged_by_its_own_puback() {
    let (broker, seen) = start(Behaviour {
        withhold: None,
        bogus_ack: true,
    })
    .await;
    let report = run(config(broker), CancellationToken::new(), None)
        .await
        .unwrap();
    assert!(report.is_complete(), "{}", report.summary());
    assert_eq!(report.window_messages, 2_000);
    assert!(report.published >= 2_000);
    assert_eq!(report.acked, report.published);
    assert_eq!(report.readings_acked, report.published * 4);
    assert_eq!(report.unexpected_acks, 3, "one bogus PUBACK per connection");
    assert_eq!(report.latency_ms.count, 2_000);
    assert!(report.messages_per_s > 0.0);
    assert!(
        report
            .timeline
            .last()
            .is_some_and(|s| s.acked == report.acked)
    );

    let seen = seen.lock().unwrap();
    assert_eq!(seen.publishes, report.published);
    assert_eq!(seen.duplicates, 0);
    assert_eq!(seen.readings.len() as u64, report.published * 4);
}

#[tokio::test]
async fn a_withheld_puback_is_reported_as_unacknowledged() {
    let (broker, _) = start(Behaviour {
        withhold: Some(3),
        bogus_ack: false,
    })
    .await;
    let report = run(config(broker), CancellationToken::new(), None)
        .await
        .unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.unacked, 3, "one per connection");
    assert_eq!(report.acked + 3, report.published);
    assert_eq!(report.errors.len(), 3);
    assert!(report.errors[0].contains("PUBACKs still missing"));
}

#[tokio::test]
async fn a_timed_run_stops_publishing_at_its_end() {
    let (broker, seen) = start(Behaviour {
        withhold: None,
        bogus_ack: false,
    })
    .await;
    let config = LoadConfig {
        messages: None,
        duration: Duration::from_millis(300),
        ..config(broker)
    };
    let report = run(config, CancellationToken::new(), None).await.unwrap();
    assert!(report.is_complete(), "{}", report.summary());
    assert!((report.window.seconds - 0.3).abs() < 1e-6);
    assert!(report.window_messages > 0 && report.window_messages <= report.acked);
    assert_eq!(seen.lock().unwrap().publishes, report.published);
}

#[tokio::test]
async fn a_paced_run_keeps_to_its_rate() {
    let (broker, seen) = start(Behaviour {
        withhold: None,
        bogus_ack: false,
    })
    .await;
    // 100 messages/s over 2 connections: each sends its 20th message 19 x 20 ms after the start.
    let config = LoadConfig {
        connections: 2,
        messages: Some(40),
        rate: Some(100.0),
        warmup: Duration::ZERO,
        ..config(broker)
    };
    let report = run(config, CancellationToken::new(), None).await.unwrap();
    assert!(report.is_complete(), "{}", report.summary());
    assert_eq!(report.window_messages, 40);
    assert_eq!(seen.lock().unwrap().publishes, 40);
    assert!(
        report.window.seconds >= 0.38,
        "40 messages at 100/s took only {} s",
        report.window.seconds
    );
}

#[tokio::test]
async fn a_refused_connection_fails_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = BytesMut::new();
            let _ = stream.read_buf(&mut buf).await;
            let ack = ConnAck {
                session_present: false,
                code: ConnectReturnCode::BadUserNamePassword,
            };
            let mut out = BytesMut::new();
            Packet::ConnAck(ack).write(&mut out, 16).unwrap();
            let _ = stream.write_all(&out).await;
        }
    });
    let error = run(
        config(BrokerAddr::new("127.0.0.1", port)),
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("BadUserNamePassword"), "{error}");
}

#[test]
fn the_defaults_are_valid_and_bad_ranges_are_explained() {
    assert!(LoadConfig::default().validate().is_ok());
    let err = |c: LoadConfig| c.validate().unwrap_err().to_string();
    assert!(
        err(LoadConfig {
            devices: 10,
            ..LoadConfig::default()
        })
        .contains("--devices (10) must be at least --connections (50)")
    );
    assert!(
        err(LoadConfig {
            batch: 0,
            ..LoadConfig::default()
        })
        .contains("--batch")
    );
    assert!(
        err(LoadConfig {
            messages: Some(3),
            ..LoadConfig::default()
        })
        .contains("--messages")
    );
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            err(LoadConfig {
                rate: Some(rate),
                ..LoadConfig::default()
            })
            .contains("--rate")
        );
    }
}
