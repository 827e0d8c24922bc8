//! Properties of the state machine over random event scripts.

use citytel_proto::v1::DeathReason;
use proptest::prelude::*;

use crate::{Change, DeviceMachine, DeviceState, Event, Policy, Transition};

/// A random event; with `stated`, deaths may state when they happened (as an offset back from
/// the time they arrive, see [`run`]).
fn event(stated: bool) -> impl Strategy<Value = Event> {
    let boot = 1u64..4;
    let stated_at = if stated {
        prop::option::of(0i64..120_000).boxed()
    } else {
        Just(None).boxed()
    };
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
        (boot, any::<bool>(), stated_at).prop_map(|(boot_id, via_will, at_ms)| Event::Death {
            boot_id,
            reason: DeathReason::Shutdown,
            via_will,
            at_ms,
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
/// no tick runs while the ingester is down. A death's stated time is an offset back from when it
/// arrives.
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
                let other = match other {
                    Event::Death {
                        boot_id,
                        reason,
                        via_will,
                        at_ms: Some(back),
                    } => Event::Death {
                        boot_id: *boot_id,
                        reason: *reason,
                        via_will: *via_will,
                        at_ms: Some(now - back),
                    },
                    other => other.clone(),
                };
                if ticks {
                    for offset in tick_offsets {
                        out.extend(m.handle(&Event::Tick, previous + offset % gap.max(&1)));
                    }
                }
                other
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
            (0i64..60_000, event(false), prop::collection::vec(0i64..60_000, 0..4)),
            0..40,
        )
    ) {
        let with_ticks = run(&script, true);
        let without = run(&script, false);
        prop_assert_eq!(&with_ticks, &without);
        check_chain(&with_ticks)?;
    }

    #[test]
    fn deaths_at_their_stated_time_keep_the_history_in_order(
        script in prop::collection::vec(
            (0i64..60_000, event(true), prop::collection::vec(0i64..60_000, 0..4)),
            0..40,
        )
    ) {
        // A stated time before a silence threshold a tick already applied is clamped to that
        // transition, so here ticks may change the history; its order never.
        check_chain(&run(&script, true))?;
        check_chain(&run(&script, false))?;
    }
}

/// Each transition leaves the state the previous one entered, changes it, and none is earlier
/// than the one before.
fn check_chain(transitions: &[Transition]) -> Result<(), TestCaseError> {
    {
        let mut state = DeviceState::Unknown;
        let mut at = i64::MIN;
        for t in transitions {
            prop_assert_eq!(t.from, state);
            prop_assert_ne!(t.from, t.to);
            prop_assert!(t.at_ms >= at, "transitions out of order: {:?}", transitions);
            if t.cause == crate::Cause::IngesterRestart {
                prop_assert_eq!(t.to, DeviceState::Unknown);
            }
            state = t.to;
            at = t.at_ms;
        }
    }
    Ok(())
}
