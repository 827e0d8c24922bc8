//! Maintenance windows and silences hold notifications back, never the alerts themselves.

use citytel_availability::Span;

use super::{Lab, M, T0, n};
use crate::alerts::outbox::Status::{Firing, Resolved};
use crate::alerts::silence::{MatchOp, Matcher, Silence};

const OFFLINE: &str = r#"
[[rule]]
name = "offline"
kind = "state"
severity = "critical"
states = ["offline"]
"#;

#[test]
fn maintenance_suppresses_until_it_ends_then_the_alert_is_notified_if_it_still_fires() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.device("cab-2", "cabinet", "docks");
    lab.maintenance
        .push((None, Some("docks".into()), Span::new(T0, T0 + 30 * M)));
    lab.offline("cab-1", T0 + M);
    lab.offline("cab-2", T0 + 2 * M);
    lab.online("cab-2", T0 + 10 * M);
    lab.advance(T0 + 29 * M);
    assert_eq!(lab.sent(), vec![], "nothing during maintenance");
    lab.advance(T0 + 31 * M);
    assert_eq!(
        lab.sent(),
        vec![n(Firing, "offline", "cab-1", 30.0, 1.0)],
        "cab-1 still down when the window ends: notified then, as firing since 1"
    );
}

#[test]
fn a_silence_holds_matching_alerts_back_until_it_is_expired() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.device("cab-2", "cabinet", "market");
    let silence = Silence {
        id: 0,
        matchers: vec![
            Matcher::new("alertname", MatchOp::Equal, "offline").unwrap(),
            Matcher::new("site", MatchOp::Regex, "dock.*").unwrap(),
        ],
        starts_ms: T0,
        ends_ms: T0 + 120 * M,
        created_by: "ops".into(),
        comment: "works".into(),
        created_ms: T0,
    };
    let id = lab.alerts.create_silence(silence).unwrap().id;
    lab.offline("cab-1", T0 + M);
    lab.offline("cab-2", T0 + M);
    lab.advance(T0 + 5 * M);
    assert_eq!(lab.sent(), vec![n(Firing, "offline", "cab-2", 1.0, 1.0)]);
    lab.alerts.expire_silence(id, T0 + 10 * M).unwrap();
    lab.advance(T0 + 10 * M + 1);
    lab.online("cab-1", T0 + 12 * M);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "offline", "cab-2", 1.0, 1.0),
            n(Firing, "offline", "cab-1", 10.0, 1.0),
            n(Resolved, "offline", "cab-1", 12.0, 1.0),
        ]
    );
}

#[test]
fn an_alert_muted_all_along_resolves_without_a_word() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.maintenance
        .push((Some("cab-1".into()), None, Span::new(T0, T0 + 30 * M)));
    lab.offline("cab-1", T0 + M);
    lab.online("cab-1", T0 + 20 * M);
    lab.advance(T0 + 40 * M);
    assert_eq!(lab.sent(), vec![]);
    let resolved = lab.alerts.resolved().next().unwrap();
    assert!(!resolved.notified);
}
