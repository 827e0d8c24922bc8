use crate::{Cause, DeviceState, Policy, PolicyError};

#[test]
fn names_and_codes_round_trip() {
    for (i, state) in DeviceState::ALL.iter().enumerate() {
        assert_eq!(state.as_str().parse::<DeviceState>(), Ok(*state));
        assert_eq!(DeviceState::from_code(state.code()), Some(*state));
        assert_eq!(usize::from(state.code()), i + 1);
    }
    for (i, cause) in Cause::ALL.iter().enumerate() {
        assert_eq!(cause.as_str().parse::<Cause>(), Ok(*cause));
        assert_eq!(Cause::from_code(cause.code()), Some(*cause));
        assert_eq!(usize::from(cause.code()), i + 1);
        assert_eq!(cause.to_string(), cause.as_str());
    }
    assert_eq!(DeviceState::from_code(0), None);
    assert_eq!(
        Cause::from_code(u8::try_from(Cause::ALL.len() + 1).unwrap()),
        None
    );
    let error = "sleeping".parse::<DeviceState>().unwrap_err();
    assert_eq!(error.to_string(), r#"unknown device state name "sleeping""#);
}

#[test]
fn codes_and_names_are_stable() {
    // Persisted values: changing one of these breaks stored histories.
    assert_eq!(DeviceState::Unreachable.code(), 5);
    assert_eq!(Cause::LastWill.code(), 9);
    assert_eq!(Cause::IngesterRestart.code(), 16);
    assert_eq!(Cause::HeartbeatMissed.as_str(), "heartbeat_missed");
}

#[test]
fn policy_defaults_validate_and_bad_values_do_not() {
    let policy = Policy::default();
    assert_eq!(policy.validate(), Ok(()));
    assert_eq!(policy.interval_for_kind("sensor"), 300_000);
    assert_eq!(policy.interval_for_kind("tram_stop"), 60_000);
    let timing = policy.timing("cabinet");
    assert_eq!(
        (
            timing.late_after_ms(10_000),
            timing.offline_after_ms(10_000)
        ),
        (15_000, 30_000)
    );

    let late = Policy {
        late_grace: 0.5,
        ..Policy::default()
    };
    assert!(matches!(
        late.validate(),
        Err(PolicyError::Grace {
            name: "late_grace",
            ..
        })
    ));
    let nan = Policy {
        offline_grace: f64::NAN,
        ..Policy::default()
    };
    assert!(matches!(nan.validate(), Err(PolicyError::Grace { .. })));
    let order = Policy {
        late_grace: 4.0,
        ..Policy::default()
    };
    assert!(matches!(
        order.validate(),
        Err(PolicyError::OfflineBeforeLate { .. })
    ));
    let mut zero = Policy::default();
    zero.kind_intervals_ms.insert("sensor".into(), 0);
    assert_eq!(
        zero.validate(),
        Err(PolicyError::Interval {
            scope: "sensor".into(),
            value_ms: 0
        })
    );
}
