//! Who a reporting device is: id, kind, site, gateway, and its per-boot boot id and clock skew.

use citytel_proto::kind::Kind;
use citytel_proto::topic::{self, Channel};
use rand::Rng;

use crate::seed::{Purpose, device_rng};

/// The identity a device (or gateway child) reports under during one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The device id.
    pub(crate) device_id: String,
    /// The device kind.
    pub(crate) kind: Kind,
    /// The site.
    pub(crate) site: String,
    /// For a gateway child, the gateway that publishes for it.
    pub(crate) gateway_id: Option<String>,
    /// The boot id: non-zero, drawn from the device's seeded stream and mixed with the fleet's
    /// boot epoch.
    pub(crate) boot_id: u64,
    /// How far the device's clock is off the wall clock, in milliseconds.
    pub(crate) clock_skew_ms: i64,
}

impl Identity {
    /// The identity of `device_id` in a fleet seeded with `seed` and booted at `boot_epoch`, with
    /// a clock skew drawn from `-max_clock_skew_ms..=max_clock_skew_ms`.
    pub(crate) fn new(
        device_id: String,
        kind: Kind,
        site: String,
        gateway_id: Option<String>,
        (seed, boot_epoch): (u64, u64),
        max_clock_skew_ms: u32,
    ) -> Self {
        let mut rng = device_rng(seed, &device_id, Purpose::Identity);
        let boot_id = loop {
            let id = mix(rng.random::<u64>() ^ boot_epoch);
            if id != 0 {
                break id;
            }
        };
        let max_skew = i64::from(max_clock_skew_ms);
        let clock_skew_ms = if max_skew == 0 {
            0
        } else {
            rng.random_range(-max_skew..=max_skew)
        };
        Identity {
            device_id,
            kind,
            site,
            gateway_id,
            boot_id,
            clock_skew_ms,
        }
    }

    /// The topic this device's `channel` messages go to.
    pub(crate) fn topic(&self, channel: Channel) -> String {
        topic::build(&self.site, self.kind.as_str(), &self.device_id, channel)
    }
}

/// The splitmix64 finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str, seed: u64, skew: u32) -> Identity {
        Identity::new(
            id.into(),
            Kind::Sensor,
            "site-02".into(),
            None,
            (seed, 0),
            skew,
        )
    }

    #[test]
    fn boot_ids_are_seeded_non_zero_and_per_device() {
        let a = identity("sen-0001", 42, 0);
        assert_ne!(a.boot_id, 0);
        assert_eq!(a.boot_id, identity("sen-0001", 42, 0).boot_id);
        assert_ne!(a.boot_id, identity("sen-0002", 42, 0).boot_id);
        assert_ne!(a.boot_id, identity("sen-0001", 43, 0).boot_id);
        assert_eq!(a.clock_skew_ms, 0);
    }

    #[test]
    fn another_boot_epoch_gives_other_boot_ids() {
        let at = |epoch| {
            Identity::new(
                "sen-0001".into(),
                Kind::Sensor,
                "s".into(),
                None,
                (42, epoch),
                0,
            )
            .boot_id
        };
        assert_eq!(at(1_700_000_000_000), at(1_700_000_000_000));
        assert_ne!(at(1_700_000_000_000), at(1_700_000_000_001));
    }

    #[test]
    fn clock_skew_stays_within_its_bound() {
        for n in 0..100 {
            let skew = identity(&format!("sen-{n:04}"), 1, 250).clock_skew_ms;
            assert!((-250..=250).contains(&skew));
        }
    }

    #[test]
    fn topics_follow_the_scheme() {
        let child = Identity::new(
            "gw-0003-s02".into(),
            Kind::Sensor,
            "site-04".into(),
            Some("gw-0003".into()),
            (1, 0),
            0,
        );
        assert_eq!(
            child.topic(Channel::Telemetry),
            "citytel/v1/site-04/sensor/gw-0003-s02/telemetry"
        );
        let parsed_topic = child.topic(Channel::Status);
        let parsed = topic::parse(&parsed_topic).unwrap();
        assert_eq!(
            (parsed.site, parsed.kind, parsed.device_id, parsed.channel),
            ("site-04", "sensor", "gw-0003-s02", Channel::Status)
        );
    }
}
