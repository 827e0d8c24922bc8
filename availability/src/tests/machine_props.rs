//! Properties of the state machine over random event scripts.

use citytel_proto::v1::DeathReason;
use proptest::prelude::*;

use crate::{Change, DeviceMachine, DeviceState, Event, Policy, Transition};

fn event() -> impl Strategy<Value = Event> {
    let boot = 1u64..4;
    prop_oneof![
        (boot.clone(), any::<Option<bool>>()).prop_map(|(boot_id, intermittent)| {
            Event::Birth {
                boot_id,
                reporting_interval_ms: 10_000,
                heartbeat_interval_ms: None,
                intermittent,
            }
        }),
        boot.clone()
            .prop_map(|boot_id| Event::Heartbeat { boot_id }),
        boot.clone().prop_map(|boot_id| Event::Reading { boot_id }),
        (boot, any::<bool>()).prop_map(|(boot_id, via_will)| Event::Death {
            boot_id,
            reason: DeathReason::Shutdown,
            via_will,
        }),
        Just(Event::ConnectionOpened),
        any::<bool>().prop_map(|clean| Event::ConnectionClosed { clean }),
        Just(Event::GatewayOffline),
        Just(Event::GatewayOnline),
        (0i64..60_000).prop_map(|stopped_at_ms| Event::IngesterStarted { stopped_at_ms }),
    ]
}

/// Runs `script` (gaps between events, events, ticks between events) and returns the transitions.
/// An `IngesterStarted` in the script carries the stop time as an offset from the previous event;
/// no tick runs while the ingester is down.
fn run(script: &[(i64, Event, Vec<i64>)], ticks: bool) -> Vec<Transition> {
    let mut m = DeviceMachine::new(&Policy::default(), "cabinet");
    let mut now = 0;
    let mut out = Vec::new();
    for (gap, event, tick_offsets) in script {
        let previous = now;
        now += gap;
        let event = match event {
            Event::IngesterStarted { stopped_at_ms } => Event::IngesterStarted {
                stopped_at_ms: (previous + stopped_at_ms).min(now),
            },
            other => {
                if ticks {
                    for offset in tick_offsets {
                        out.extend(m.handle(&Event::Tick, previous + offset % gap.max(&1)));
                    }
                }
                other.clone()
            }
        };
        out.extend(m.handle(&event, now));
    }
    out.into_iter()
        .filter_map(|c| match c {
            Change::Transition(t) => Some(t),
            Change::Reboot(_) => None,
        })
        .collect()
}

proptest! {
    #[test]
    fn history_does_not_depend_on_how_often_ticks_run(
        script in prop::collection::vec(
            (0i64..60_000, event(), prop::collection::vec(0i64..60_000, 0..4)),
            0..40,
        )
    ) {
        let with_ticks = run(&script, true);
        let without = run(&script, false);
        prop_assert_eq!(&with_ticks, &without);

        let mut state = DeviceState::Unknown;
        let mut at = i64::MIN;
        for t in &with_ticks {
            prop_assert_eq!(t.from, state);
            prop_assert_ne!(t.from, t.to);
            prop_assert!(t.at_ms >= at, "transitions out of order: {:?}", with_ticks);
            if t.cause == crate::Cause::IngesterRestart {
                prop_assert_eq!(t.to, DeviceState::Unknown);
            }
            state = t.to;
            at = t.at_ms;
        }
    }
}
