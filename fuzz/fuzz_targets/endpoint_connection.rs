//! One device connection of the MQTT endpoint, driven by arbitrary client bytes.
//!
//! The input is `[flags][chunk seed][bytes the client writes...]`. The bytes go through an
//! in-memory pipe, in chunks of sizes drawn from the seed, into the real connection code
//! (`citytel_ingest::fuzz::Endpoint::serve`), on a paused tokio clock so keep-alives and
//! timeouts take no real time. The harness plays the pipeline's writer: it acknowledges every
//! queued message at once, after a delay, or never (dropping it, as a commit that never
//! happened), and records which acknowledgements it fired. The client's side reads everything
//! the endpoint writes until the endpoint closes the pipe.
//!
//! An independent oracle parses the same bytes with rumqttc's codec and says what a correct
//! endpoint does with them. Asserted, besides never panicking and never hanging:
//! - the messages the pipeline took are the client's PUBLISHes, in order, with the right packet
//!   id and QoS (all of them when the connection ends by the client's bytes alone);
//! - the PUBACKs and PUBRECs the client got are exactly the acknowledgements the pipeline
//!   fired, in order: nothing is acknowledged that the pipeline did not take and commit;
//! - CONNACK comes first and once; PUBCOMP, PINGRESP, SUBACK and UNSUBACK answer the client's
//!   PUBREL, PINGREQ, SUBSCRIBE and UNSUBSCRIBE in order;
//! - the Last Will is queued exactly when the connection was accepted, had a will, and ended
//!   without DISCONNECT (and not by shutdown), after the connection's last message;
//! - the device's connection events: one "opened" before its first message, one end ("closed"
//!   after DISCONNECT, "lost" otherwise) after everything, none if the device was never named;
//! - with the client closing after its bytes, the reason the connection ended is the one the
//!   oracle predicts.
//!
//! A connection that opens with an MQTT 5 CONNECT takes the endpoint's v5 path; the oracle
//! parses 3.1.1, so [`v5`] checks what holds whatever the bytes mean.

#![no_main]

#[path = "endpoint_connection/v5.rs"]
mod v5;

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citytel_ingest::clock::Clock;
use citytel_ingest::config::{self, Config};
use citytel_ingest::fuzz::{self, Message, Taken};
use citytel_proto::topic::{self, Channel};
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4::{Connect, Packet};
use rumqttc::mqttbytes::{self, Protocol, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;

/// The pipeline clock's reading when an input starts.
const START_MS: i64 = 1_700_000_000_000;
/// Largest packet the endpoint accepts in this harness (the configuration's minimum).
// Above the largest input: oversize PUBLISHes are read past, acknowledged and dead-lettered by
// the endpoint, which its own tests cover; this target keeps to packets that are read whole.
const MAX_PACKET: usize = 8192;
/// Capacity of each direction of the in-memory pipe: small, so reads and writes are partial.
const PIPE_BYTES: usize = 512;
/// Virtual time after which an input counts as hung.
const HANG: Duration = Duration::from_secs(24 * 3600);
/// How long a held message waits before the harness acknowledges or drops it.
const HOLD: Duration = Duration::from_secs(1);
/// How long the client stays silent before closing, in the "idle" ending.
const IDLE: Duration = Duration::from_secs(100);

fn base_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| config::load_str(None, &[]).expect("the default configuration loads"))
}

/// What the harness's pipeline does with each queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckPolicy {
    /// Acknowledge at once.
    Now,
    /// Hold, then acknowledge (backpressure on a small budget).
    Later,
    /// Acknowledge every other message, drop the rest unacknowledged.
    Alternate,
    /// Hold, then drop without acknowledging.
    Never,
}

/// How the client ends after writing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Close its write half at once.
    Close,
    /// Stay silent for [`IDLE`], then close.
    Idle,
    /// citytel shuts down, then the client closes after [`IDLE`].
    Shutdown,
}

struct Input<'a> {
    policy: AckPolicy,
    ending: Ending,
    small_budget: bool,
    chunk_mode: u8,
    chunk_seed: u8,
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let (&chunk_seed, bytes) = rest.split_first()?;
        Some(Input {
            policy: match flags & 3 {
                0 => AckPolicy::Now,
                1 => AckPolicy::Later,
                2 => AckPolicy::Alternate,
                _ => AckPolicy::Never,
            },
            ending: match (flags >> 2) & 3 {
                0 | 3 => Ending::Close,
                1 => Ending::Idle,
                _ => Ending::Shutdown,
            },
            small_budget: flags & 0x20 != 0,
            chunk_mode: flags >> 6,
            chunk_seed,
            bytes,
        })
    }

    /// The sizes the client writes its bytes in.
    fn chunks(&self) -> Vec<usize> {
        let max = match self.chunk_mode {
            0 => return vec![self.bytes.len()],
            1 => 1,
            2 => 7,
            _ => 97,
        };
        let mut state = u32::from(self.chunk_seed) | 0x100;
        let mut left = self.bytes.len();
        let mut sizes = Vec::new();
        while left > 0 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let size = ((state >> 16) as usize % max + 1).min(left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }
}

/// A PUBLISH as the pipeline should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Publish {
    topic: String,
    payload: Bytes,
    ack_for: Option<(u16, u8)>,
}

/// How the oracle expects the client's bytes to end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The bytes ran out (possibly mid-packet).
    OutOfBytes,
    /// A packet that ends the connection: its reason's label.
    Packet(&'static str),
    /// The first packet's bytes were malformed: refused or a protocol error.
    BadFirstPacket,
}

/// What a correct endpoint does with the client's bytes.
#[derive(Debug)]
struct Oracle {
    /// The CONNECT, when the endpoint accepts it.
    connect: Option<Connect>,
    /// Whether the first packet was a CONNECT that must be refused.
    refused: bool,
    publishes: Vec<Publish>,
    /// The control packets the endpoint answers, in order.
    control: Vec<Packet>,
    stop: Stop,
}

fn qos_number(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn error_label(e: &mqttbytes::Error) -> &'static str {
    match e {
        mqttbytes::Error::PayloadSizeLimitExceeded(_) => "oversize",
        _ => "protocol_error",
    }
}

/// Whether the fixed header at the start of `buf` is complete and breaks MQTT 3.1.1's rules
/// (MQTT-2.2.2-1 and -2, MQTT-3.3.1-2 and -4, a remaining length of more than four bytes), which
/// the endpoint refuses as soon as the header is in, before the rest of the packet.
fn header_refused(buf: &[u8]) -> bool {
    let Some(&byte1) = buf.first() else {
        return false;
    };
    let mut complete = false;
    for i in 0..4 {
        match buf.get(1 + i) {
            None => return false,
            Some(b) if b & 0x80 == 0 => {
                complete = true;
                break;
            }
            Some(_) => {}
        }
    }
    if !complete {
        return true;
    }
    let flags = byte1 & 0x0f;
    match byte1 >> 4 {
        3 => (flags >> 1) & 3 == 3 || ((flags >> 1) & 3 == 0 && flags & 0b1000 != 0),
        6 | 8 | 10 => flags != 0b0010,
        _ => flags != 0,
    }
}

/// What the endpoint does with a packet at the start of `buf` whose fixed header claims more
/// than [`MAX_PACKET`] bytes, once that header is in: `None` when it claims no more. A PUBLISH
/// within `endpoint.max_discard_bytes` is read past (its headers checked) and, as no input is
/// that long, never ends before the client's bytes do; anything else ends the connection as
/// `oversize`.
fn claimed_oversize(buf: &[u8]) -> Option<Stop> {
    let byte1 = *buf.first()?;
    let mut remaining = 0usize;
    let mut header_len = 0;
    for i in 0..4 {
        let b = *buf.get(1 + i)?;
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            header_len = 2 + i;
            break;
        }
    }
    if header_len == 0 || remaining <= MAX_PACKET {
        return None;
    }
    if byte1 >> 4 != 3 || header_len + remaining > base_config().endpoint.max_discard_bytes {
        return Some(Stop::Packet("oversize"));
    }
    let pkid_len = if (byte1 >> 1) & 3 == 0 { 0 } else { 2 };
    let topic_len = match (buf.get(header_len), buf.get(header_len + 1)) {
        (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Some(Stop::OutOfBytes),
    };
    if 2 + topic_len + pkid_len > remaining {
        return Some(Stop::Packet("protocol_error"));
    }
    Some(Stop::OutOfBytes)
}

/// The connect flags of a CONNECT at the start of `bytes`, if they are there: after the fixed
/// header, the protocol name (with its length, whatever it says) and the level.
fn connect_flags(bytes: &[u8]) -> Option<u8> {
    let mut i = 1;
    while bytes.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*bytes.get(i + 1)?, *bytes.get(i + 2)?]));
    bytes.get(i + 3 + name_len + 1).copied()
}

/// The protocol level of a CONNECT at the start of `bytes`, if it is there.
fn connect_level(bytes: &[u8]) -> Option<u8> {
    let mut i = 1;
    while bytes.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*bytes.get(i + 1)?, *bytes.get(i + 2)?]));
    bytes.get(i + 3 + name_len).copied()
}

/// Whether the bytes open with an MQTT 5 CONNECT (the endpoint's v5 path).
fn opens_with_mqtt5(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b >> 4 == 1) && connect_level(bytes) == Some(5)
}

/// Whether the first packet is refused as soon as its first bytes are in, whether or not the
/// rest follows: a fixed header breaking the flag rules (MQTT-2.2.2-2) or a malformed remaining
/// length, or a CONNECT whose flags set the reserved bit (MQTT-3.1.2-3) or a password without a
/// user name (MQTT-3.1.2-22).
fn first_packet_refused(bytes: &[u8]) -> bool {
    if header_refused(bytes) {
        return true;
    }
    bytes.first().is_some_and(|b| b >> 4 == 1)
        && connect_flags(bytes).is_some_and(|f| f & 0x01 != 0 || (f & 0xC0) == 0x40)
}

impl Oracle {
    fn new(bytes: &[u8]) -> Oracle {
        let mut buf = BytesMut::from(bytes);
        let mut oracle = Oracle {
            connect: None,
            refused: false,
            publishes: Vec::new(),
            control: Vec::new(),
            stop: Stop::OutOfBytes,
        };
        if first_packet_refused(bytes) {
            oracle.stop = Stop::BadFirstPacket;
            return oracle;
        }
        let connect = match Packet::read(&mut buf, MAX_PACKET) {
            Ok(Packet::Connect(connect)) => connect,
            Ok(_) => {
                oracle.stop = Stop::Packet("protocol_error");
                return oracle;
            }
            Err(mqttbytes::Error::InsufficientBytes(_)) => return oracle,
            Err(e @ mqttbytes::Error::PayloadSizeLimitExceeded(_)) => {
                oracle.stop = Stop::Packet(error_label(&e));
                return oracle;
            }
            Err(_) => {
                oracle.stop = Stop::BadFirstPacket;
                return oracle;
            }
        };
        if connect.protocol != Protocol::V4
            || connect.client_id.len() > base_config().endpoint.max_client_id_bytes
            || (connect.client_id.is_empty() && !connect.clean_session)
        {
            oracle.refused = true;
            oracle.stop = Stop::Packet("refused");
            return oracle;
        }
        oracle.connect = Some(connect);
        loop {
            if header_refused(&buf) {
                oracle.stop = Stop::Packet("protocol_error");
                return oracle;
            }
            if let Some(stop) = claimed_oversize(&buf) {
                oracle.stop = stop;
                return oracle;
            }
            let packet = match Packet::read(&mut buf, MAX_PACKET) {
                Ok(packet) => packet,
                Err(mqttbytes::Error::InsufficientBytes(_)) => return oracle,
                Err(e) => {
                    oracle.stop = Stop::Packet(error_label(&e));
                    return oracle;
                }
            };
            match packet {
                Packet::Publish(p) if p.topic.contains(['+', '#']) => {
                    oracle.stop = Stop::Packet("protocol_error");
                    return oracle;
                }
                Packet::Publish(p) => oracle.publishes.push(Publish {
                    ack_for: (p.qos != QoS::AtMostOnce).then(|| (p.pkid, qos_number(p.qos))),
                    topic: p.topic,
                    payload: p.payload,
                }),
                Packet::PubRel(_)
                | Packet::PingReq
                | Packet::Subscribe(_)
                | Packet::Unsubscribe(_) => oracle.control.push(packet),
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
                Packet::Disconnect => {
                    oracle.stop = Stop::Packet("client_disconnect");
                    return oracle;
                }
                _ => {
                    oracle.stop = Stop::Packet("protocol_error");
                    return oracle;
                }
            }
        }
    }

    /// Whether `answer` (from the endpoint) answers `request` (from the client).
    fn answers(request: &Packet, answer: &Packet) -> bool {
        match (request, answer) {
            (Packet::PubRel(rel), Packet::PubComp(comp)) => rel.pkid == comp.pkid,
            (Packet::PingReq, Packet::PingResp) => true,
            (Packet::Subscribe(sub), Packet::SubAck(ack)) => {
                sub.pkid == ack.pkid && ack.return_codes.len() == sub.filters.len()
            }
            (Packet::Unsubscribe(unsub), Packet::UnsubAck(ack)) => unsub.pkid == ack.pkid,
            _ => false,
        }
    }
}

/// What the harness's pipeline saw and did.
#[derive(Debug, Default)]
struct Intake {
    /// Connection events and messages, in queue order: `("opened", topic)`, `("message", ..)`,
    /// `("will", ..)`.
    events: Vec<(&'static str, String)>,
    publishes: Vec<Publish>,
    wills: Vec<(String, Bytes)>,
    /// Acknowledgements fired, in order.
    fired: Vec<(u16, u8)>,
}

async fn run_pipeline(mut intake: fuzz::Intake, policy: AckPolicy) -> Intake {
    let mut seen = Intake::default();
    let mut held: VecDeque<(tokio::time::Instant, Message, bool)> = VecDeque::new();
    let mut open = true;
    let mut count = 0usize;
    while open || !held.is_empty() {
        let next_release = held.front().map(|(at, _, _)| *at);
        tokio::select! {
            taken = intake.take(), if open => match taken {
                None => open = false,
                Some(Taken::Connection { topic, change }) => seen.events.push((change, topic)),
                Some(Taken::Message(message)) => {
                    let message = *message;
                    if message.will {
                        seen.events.push(("will", message.topic.clone()));
                        seen.wills.push((message.topic.clone(), message.payload.clone()));
                    } else {
                        seen.events.push(("message", message.topic.clone()));
                        seen.publishes.push(Publish {
                            topic: message.topic.clone(),
                            payload: message.payload.clone(),
                            ack_for: message.ack_for,
                        });
                    }
                    count += 1;
                    let ack = match policy {
                        AckPolicy::Now | AckPolicy::Later => true,
                        AckPolicy::Alternate => count % 2 == 1,
                        AckPolicy::Never => false,
                    };
                    match policy {
                        AckPolicy::Later | AckPolicy::Never => {
                            held.push_back((tokio::time::Instant::now() + HOLD, message, ack));
                        }
                        AckPolicy::Now | AckPolicy::Alternate => {
                            release(message, ack, &mut seen.fired);
                        }
                    }
                }
            },
            _ = tokio::time::sleep_until(next_release.unwrap_or_else(tokio::time::Instant::now)),
                if next_release.is_some() =>
            {
                if let Some((_, message, ack)) = held.pop_front() {
                    release(message, ack, &mut seen.fired);
                }
            }
        }
    }
    seen
}

/// Acknowledges `message` (noting it in `fired`) or drops it unacknowledged.
fn release(message: Message, ack: bool, fired: &mut Vec<(u16, u8)>) {
    if ack && let Some(token) = message.ack_for {
        fired.push(token);
        message.ack();
    }
}

async fn run_client(
    mut wr: WriteHalf<DuplexStream>,
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    ending: Ending,
    shutdown: CancellationToken,
) {
    let mut at = 0;
    for size in chunks {
        if wr.write_all(&bytes[at..at + size]).await.is_err() {
            return;
        }
        at += size;
        tokio::task::yield_now().await;
    }
    match ending {
        Ending::Close => {}
        Ending::Idle => tokio::time::sleep(IDLE).await,
        Ending::Shutdown => {
            shutdown.cancel();
            tokio::time::sleep(IDLE).await;
        }
    }
    let _ = wr.shutdown().await;
}

/// Everything the endpoint wrote, until it closed the pipe.
async fn read_server(mut rd: ReadHalf<DuplexStream>) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = rd.read_to_end(&mut buf).await;
    buf
}

/// The packets of a 3.1.1 connection's output.
fn parse_v4(raw: &[u8]) -> Vec<Packet> {
    let mut buf = BytesMut::from(raw);
    let mut packets = Vec::new();
    loop {
        match Packet::read(&mut buf, usize::MAX) {
            Ok(packet) => packets.push(packet),
            Err(mqttbytes::Error::InsufficientBytes(_)) => break,
            Err(e) => panic!("the endpoint wrote a malformed packet: {e}"),
        }
    }
    assert!(buf.is_empty(), "the endpoint closed mid-packet");
    packets
}

/// The status topic of the device `topic` names, as the endpoint derives it.
fn device_of(topic: &str) -> Option<String> {
    let parsed = topic::parse(topic).ok()?;
    Some(topic::build(
        parsed.site,
        parsed.kind,
        parsed.device_id,
        Channel::Status,
    ))
}

fn fires_will(reason: &str) -> bool {
    matches!(
        reason,
        "closed" | "keep_alive_expired" | "protocol_error" | "oversize" | "io_error"
    )
}

async fn session(input: &Input<'_>) {
    let base = base_config();
    let mut endpoint_config = base.endpoint.clone();
    endpoint_config.max_packet_bytes = MAX_PACKET;
    let budget = if input.small_budget { 600 } else { 1 << 20 };
    let (endpoint, intake) = fuzz::endpoint(
        endpoint_config,
        &base.ingest,
        budget,
        Clock::tokio(START_MS),
    );
    let (client, server) = tokio::io::duplex(PIPE_BYTES);
    let shutdown = CancellationToken::new();
    let serve = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { endpoint.serve(server, shutdown).await })
    };
    let pipeline = tokio::spawn(run_pipeline(intake, input.policy));
    let (rd, wr) = tokio::io::split(client);
    let reader = tokio::spawn(read_server(rd));
    let writer = tokio::spawn(run_client(
        wr,
        input.bytes.to_vec(),
        input.chunks(),
        input.ending,
        shutdown,
    ));

    let reason = serve.await.expect("the connection task does not panic");
    let intake = pipeline
        .await
        .expect("the harness's pipeline does not panic");
    let received = reader.await.expect("the client's reader does not panic");
    writer.await.expect("the client's writer does not panic");
    if opens_with_mqtt5(input.bytes) {
        v5::check(reason, &intake, &v5::parse(&received));
    } else {
        check(input, reason, &intake, &parse_v4(&received));
    }
}

fn check(input: &Input<'_>, reason: &str, intake: &Intake, received: &[Packet]) {
    let oracle = Oracle::new(input.bytes);

    // CONNACK first and once; the rest only on an accepted connection.
    let connacks = received
        .iter()
        .filter(|p| matches!(p, Packet::ConnAck(_)))
        .count();
    assert!(connacks <= 1, "{connacks} CONNACKs");
    if let Some(first) = received.first() {
        assert!(
            matches!(first, Packet::ConnAck(_)),
            "first packet {first:?}"
        );
    }
    let accepted = matches!(
        received.first(),
        Some(Packet::ConnAck(ack)) if ack.code == mqttbytes::v4::ConnectReturnCode::Success
    );
    // The client's bytes alone decide, unless citytel's shutdown overtook them.
    let by_bytes = input.ending != Ending::Shutdown;
    if oracle.connect.is_none() {
        assert!(!accepted, "accepted a bad CONNECT: {oracle:?}");
    } else if by_bytes {
        assert!(
            accepted,
            "refused a good CONNECT: {oracle:?}, reason {reason}"
        );
    }
    // citytel checks a first packet's fixed header as soon as it arrives (strict flags, a size
    // limit of its own), so it may refuse one the oracle has not read whole: refused, never
    // accepted, is all that can be said of it.
    let refused_first = reason == "bad_connect" && oracle.connect.is_none();
    if by_bytes && !refused_first {
        match oracle.stop {
            Stop::Packet(label) => assert_eq!(reason, label, "{oracle:?}"),
            Stop::BadFirstPacket => assert!(
                matches!(reason, "refused" | "bad_connect" | "protocol_error"),
                "{reason} after a malformed first packet"
            ),
            Stop::OutOfBytes if input.ending == Ending::Close => {
                assert_eq!(reason, "closed", "{oracle:?}");
            }
            Stop::OutOfBytes => {}
        }
    }
    if !accepted {
        assert!(received.len() <= 1, "packets after a refusal: {received:?}");
        assert!(intake.events.is_empty(), "queued without a connection");
        assert!(intake.fired.is_empty());
        return;
    }
    let connect = oracle
        .connect
        .as_ref()
        .expect("accepted only a good CONNECT");

    // Messages: the client's PUBLISHes, in order.
    assert!(
        intake.publishes.len() <= oracle.publishes.len()
            && intake.publishes[..] == oracle.publishes[..intake.publishes.len()],
        "taken {:?}\nsent {:?}",
        intake.publishes,
        oracle.publishes
    );

    // Acknowledgements: exactly those fired, in order.
    let acks: Vec<(u16, u8)> = received
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some((a.pkid, 1)),
            Packet::PubRec(r) => Some((r.pkid, 2)),
            _ => None,
        })
        .collect();
    assert_eq!(acks, intake.fired, "acknowledged vs committed");

    // Control answers: in order, each to a request the client made.
    let answers: Vec<&Packet> = received
        .iter()
        .skip(1)
        .filter(|p| !matches!(p, Packet::PubAck(_) | Packet::PubRec(_)))
        .collect();
    assert!(answers.len() <= oracle.control.len(), "{answers:?}");
    for (answer, request) in answers.iter().zip(&oracle.control) {
        assert!(
            Oracle::answers(request, answer),
            "{answer:?} does not answer {request:?}"
        );
    }

    // Without citytel's shutdown, every PUBLISH and request before the end is handled.
    if by_bytes {
        assert_eq!(intake.publishes, oracle.publishes, "every PUBLISH taken");
        assert_eq!(
            answers.len(),
            oracle.control.len(),
            "every request answered"
        );
    }

    // The Last Will.
    let will_expected = fires_will(reason) && connect.last_will.is_some();
    match (&connect.last_will, &intake.wills[..]) {
        (Some(will), [(topic, payload)]) if will_expected => {
            assert_eq!((topic, payload), (&will.topic, &will.message));
        }
        (_, []) if !will_expected => {}
        (_, wills) => panic!("wills {wills:?}, expected: {will_expected}, reason {reason}"),
    }

    // Connection events: whose, and in what order.
    let device = connect
        .last_will
        .as_ref()
        .and_then(|will| device_of(&will.topic))
        .or_else(|| oracle.publishes.iter().find_map(|p| device_of(&p.topic)));
    let opened: Vec<usize> = positions(&intake.events, "opened");
    let ends: Vec<usize> = [
        positions(&intake.events, "closed"),
        positions(&intake.events, "lost"),
    ]
    .concat();
    assert!(opened.len() <= 1 && ends.len() <= 1, "{:?}", intake.events);
    for &i in opened.iter().chain(&ends) {
        assert_eq!(
            Some(&intake.events[i].1),
            device.as_ref(),
            "{:?}",
            intake.events
        );
    }
    let will_names_it = connect
        .last_will
        .as_ref()
        .is_some_and(|will| device_of(&will.topic).is_some());
    if will_names_it
        || intake
            .publishes
            .iter()
            .any(|p| device_of(&p.topic).is_some())
    {
        assert_eq!(
            opened.len(),
            1,
            "the device's connection opens: {:?}",
            intake.events
        );
    }
    if let Some(&open) = opened.first() {
        let first_device_message = intake
            .events
            .iter()
            .position(|(what, topic)| *what == "message" && device_of(topic).is_some());
        if will_names_it {
            assert_eq!(open, 0, "opened before everything: {:?}", intake.events);
        } else {
            assert_eq!(Some(open + 1), first_device_message, "{:?}", intake.events);
        }
    }
    let end_expected = match reason {
        "client_disconnect" => Some("closed"),
        r if fires_will(r) => Some("lost"),
        _ => None,
    };
    match (ends.first(), end_expected) {
        (Some(&i), Some(change)) => {
            assert!(!opened.is_empty(), "an end without an opening");
            assert_eq!(intake.events[i].0, change, "{reason}");
            assert_eq!(i, intake.events.len() - 1, "the end comes last");
        }
        (Some(_), None) => panic!("an end event after {reason}: {:?}", intake.events),
        (None, Some(_)) => assert!(opened.is_empty(), "no end after {reason}"),
        (None, None) => {}
    }
    if let Some(i) = intake.events.iter().position(|(what, _)| *what == "will") {
        let after = &intake.events[i + 1..];
        assert!(
            after.iter().all(|(what, _)| *what == "lost"),
            "the will comes after the last message: {:?}",
            intake.events
        );
    }
}

fn positions(events: &[(&'static str, String)], what: &str) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, (w, _))| *w == what)
        .map(|(i, _)| i)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // Longer inputs could complete an oversize PUBLISH, which the oracle does not model.
    if data.len() >= MAX_PACKET {
        return;
    }
    let Some(input) = Input::parse(data) else {
        return;
    };
    // One runtime for every input: each input's tasks have all ended when `session` returns.
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
    });
    runtime.block_on(async {
        tokio::time::timeout(HANG, session(&input))
            .await
            .expect("the connection ends within a day of virtual time");
    });
});
