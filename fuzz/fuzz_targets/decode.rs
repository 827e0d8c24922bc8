//! Protobuf decoding and validation of a received message: arbitrary topic, payload and
//! receive time, through the decoder the pipeline runs on every PUBLISH.
//!
//! The input is `[flags][topic length][topic bytes][receive time, 8 bytes LE][payload...]`;
//! `flags` picks the default `[ingest]` limits or tight ones. Asserted, besides never
//! panicking:
//! - an empty payload is rejected as empty, one over the limit as oversize;
//! - what is accepted is also accepted, identically, by the trusted decoder WAL replay uses;
//! - an accepted message obeys every rule: the topic's channel and device match the payload,
//!   telemetry has 1 to `max_readings_per_message` readings with one finite value per metric
//!   name, unique valid metric names, times within the limits around the receive time, and a
//!   status carries a kind;
//! - re-encoding an accepted message and decoding it again gives the same encoding.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use citytel_ingest::config::{self, IngestConfig};
use citytel_ingest::decode::RejectReason;
use citytel_ingest::fuzz::{self, Accepted};
use citytel_proto::topic::{self, Channel};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn limits(tight: bool) -> &'static IngestConfig {
    static DEFAULT: OnceLock<IngestConfig> = OnceLock::new();
    static TIGHT: OnceLock<IngestConfig> = OnceLock::new();
    let default = || {
        config::load_str(None, &[])
            .expect("the default configuration loads")
            .ingest
    };
    if tight {
        TIGHT.get_or_init(|| {
            let mut c = default();
            c.max_payload_bytes = 64;
            c.max_readings_per_message = 2;
            c.max_future = Duration::ZERO;
            c.max_past = Duration::from_millis(1);
            c
        })
    } else {
        DEFAULT.get_or_init(default)
    }
}

fn encode(accepted: &Accepted) -> Vec<u8> {
    match accepted {
        Accepted::Telemetry(batch) => batch.encode_to_vec(),
        Accepted::Status(status) => status.encode_to_vec(),
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn check(topic: &str, payload: &[u8], received_at_ms: i64, ingest: &IngestConfig) {
    let verdict = fuzz::decode(topic, payload, received_at_ms, ingest);
    let accepted = match verdict {
        Err(rejection) => {
            // The detail is what the dead-letter store keeps: it must render.
            assert!(!rejection.to_string().is_empty());
            if payload.is_empty() {
                assert_eq!(rejection.reason, RejectReason::EmptyPayload);
            } else if payload.len() > ingest.max_payload_bytes {
                assert_eq!(rejection.reason, RejectReason::Oversize);
            }
            return;
        }
        Ok(accepted) => accepted,
    };
    assert!(!payload.is_empty() && payload.len() <= ingest.max_payload_bytes);
    let trusted = fuzz::decode_trusted(topic, payload).expect("accepted, so trusted decodes");
    assert_eq!(encode(&trusted), encode(&accepted));

    let parsed = topic::parse(topic).expect("accepted, so the topic parses");
    match &accepted {
        Accepted::Telemetry(batch) => {
            assert_eq!(parsed.channel, Channel::Telemetry);
            assert_eq!(batch.device_id, parsed.device_id);
            assert!(!batch.readings.is_empty());
            assert!(batch.readings.len() <= ingest.max_readings_per_message);
            assert!(!batch.metric_names.is_empty());
            let mut names = batch.metric_names.clone();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), batch.metric_names.len(), "unique metric names");
            for name in &batch.metric_names {
                assert!(topic::is_valid_id(name) && name.len() <= 64, "{name:?}");
            }
            if let Some(gw) = &batch.gateway_id {
                assert!(topic::is_valid_id(gw), "{gw:?}");
            }
            let earliest = received_at_ms.saturating_sub(ms(ingest.max_past));
            let latest = received_at_ms.saturating_add(ms(ingest.max_future));
            for reading in &batch.readings {
                assert_eq!(reading.values.len(), batch.metric_names.len());
                assert!(reading.values.iter().all(|v| v.is_finite()));
                assert!((earliest..=latest).contains(&reading.time_unix_ms));
            }
        }
        Accepted::Status(status) => {
            assert_eq!(parsed.channel, Channel::Status);
            assert_eq!(status.device_id, parsed.device_id);
            assert!(status.kind.is_some());
            if let Some(gw) = &status.gateway_id {
                assert!(topic::is_valid_id(gw), "{gw:?}");
            }
        }
    }

    let again = encode(&accepted);
    let redecoded = fuzz::decode(topic, &again, received_at_ms, ingest);
    if again.len() <= ingest.max_payload_bytes && !again.is_empty() {
        let redecoded = redecoded.expect("a re-encoded accepted message is accepted");
        assert_eq!(encode(&redecoded), again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&topic_len, rest)) = rest.split_first() else {
        return;
    };
    let topic_len = usize::from(topic_len).min(rest.len());
    let (topic, rest) = rest.split_at(topic_len);
    let topic = String::from_utf8_lossy(topic);
    let Some((time, payload)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let received_at_ms = i64::from_le_bytes(*time);
    check(&topic, payload, received_at_ms, limits(flags & 1 != 0));
});
