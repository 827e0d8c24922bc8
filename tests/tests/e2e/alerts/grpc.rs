//! The alert service and the API key roles: a viewer lists and watches alerts and lists silences;
//! an operator also acknowledges, creates and expires silences; no key, no answer. A key whose
//! scope is restricted sees, acknowledges and silences only the alerts of its devices.

use citytel_proto::v1;
use citytel_tests::keys::{admin, admin_key, alerts, create_key, create_org};
use citytel_tests::process::Citytel;
use citytel_tests::wire::now_ms;
use tonic::Code;

use super::{RULE, SHORT_MS, birth, config_file, wait_alert};

/// Creates organisation "works" and a key of each of `roles` (with its scope) in it.
async fn keys(
    citytel: &Citytel,
    admin_key: &str,
    roles: &[(&str, Option<v1::Scope>)],
) -> Vec<String> {
    let mut admin = admin(citytel, admin_key).await;
    create_org(&mut admin, "works", "Public works").await;
    let mut out = Vec::new();
    for (role, scope) in roles {
        out.push(create_key(&mut admin, "works", role, scope.clone(), 0).await);
    }
    out
}

fn device_matcher(device: &str) -> v1::Matcher {
    v1::Matcher {
        name: "device".into(),
        value: device.into(),
        op: v1::MatchOperator::Equal as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_list_operators_acknowledge_and_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (citytel, admin_key) = start_with_keys(dir.path());
    let [viewer, operator] = <[String; 2]>::try_from(
        keys(
            &citytel,
            &admin_key,
            &[("viewer", None), ("operator", None)],
        )
        .await,
    )
    .expect("two keys");

    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let _device = birth(mqtt, "cab-1", SHORT_MS).await;
    let mut as_viewer = alerts(&citytel, Some(&viewer)).await;
    let mut as_operator = alerts(&citytel, Some(&operator)).await;

    let mut events = as_viewer
        .watch_alerts(v1::WatchAlertsRequest {
            filter: Some(v1::AlertFilter {
                device_id: "cab-1".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("WatchAlerts")
        .into_inner();

    // Silent for three intervals, offline; a second later, firing, with no message in between.
    let firing = wait_alert(&mut as_viewer, "cab-1", v1::AlertState::Firing).await;
    // The watcher saw it go pending, then fire.
    let mut kinds = Vec::new();
    while kinds.last() != Some(&v1::AlertEventKind::Firing) {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.message())
            .await
            .expect("an event within 10 s")
            .expect("the stream")
            .expect("an event");
        assert_eq!(event.alert.as_ref().map(|a| a.id), Some(firing.id));
        kinds.push(event.kind());
    }
    assert_eq!(
        kinds,
        [v1::AlertEventKind::Pending, v1::AlertEventKind::Firing]
    );
    assert_eq!(firing.rule, "cabinet-offline");
    assert_eq!(firing.severity, v1::AlertSeverity::Critical as i32);
    assert_eq!(firing.target_kind, "device");
    assert_eq!(firing.site, "site-01");
    assert_eq!(
        firing.firing_since_unix_ms - firing.pending_since_unix_ms,
        1_000,
        "fires exactly `for` after the device went offline: {firing:?}"
    );
    assert_eq!(
        firing.annotations.get("summary").map(String::as_str),
        Some("cab-1 at site-01 is offline")
    );
    assert!(firing.notified, "no silence, no maintenance: {firing:?}");

    // No key: nothing.
    let status = alerts(&citytel, None)
        .await
        .list_alerts(v1::ListAlertsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A viewer reads but neither acknowledges nor silences.
    let denied = as_viewer
        .ack_alert(v1::AckAlertRequest {
            id: firing.id,
            by: "viewer".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let silence_request = v1::CreateSilenceRequest {
        matchers: vec![device_matcher("cab-1")],
        starts_unix_ms: 0,
        ends_unix_ms: now_ms() + 3_600_000,
        comment: "cabinet replaced tomorrow".into(),
        created_by: "jo".into(),
    };
    let denied = as_viewer
        .create_silence(silence_request.clone())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // An operator acknowledges: who and when, kept with the alert.
    let acked = as_operator
        .ack_alert(v1::AckAlertRequest {
            id: firing.id,
            by: "jo".into(),
        })
        .await
        .expect("AckAlert")
        .into_inner()
        .alert
        .expect("the alert");
    let ack = acked.ack.expect("acknowledged");
    assert!(ack.by.contains("jo"), "{ack:?}");
    assert!(ack.at_unix_ms >= firing.firing_since_unix_ms, "{ack:?}");
    let unknown = as_operator
        .ack_alert(v1::AckAlertRequest {
            id: firing.id + 1000,
            by: "jo".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // An operator silences; the viewer sees the silence and the alert it covers.
    let silence = as_operator
        .create_silence(silence_request)
        .await
        .expect("CreateSilence")
        .into_inner()
        .silence
        .expect("the silence");
    assert!(silence.active, "{silence:?}");
    let listed = as_viewer
        .list_silences(v1::ListSilencesRequest::default())
        .await
        .expect("ListSilences")
        .into_inner()
        .silences;
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [silence.id]
    );
    let covered = wait_alert(&mut as_viewer, "cab-1", v1::AlertState::Firing).await;
    assert_eq!(covered.silenced_by, [silence.id], "{covered:?}");
    assert!(covered.ack.is_some(), "{covered:?}");

    // Only an operator expires it; then it is listed only with the expired ones.
    let denied = as_viewer
        .expire_silence(v1::ExpireSilenceRequest { id: silence.id })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let expired = as_operator
        .expire_silence(v1::ExpireSilenceRequest { id: silence.id })
        .await
        .expect("ExpireSilence")
        .into_inner()
        .silence
        .expect("the silence");
    assert!(!expired.active, "{expired:?}");
    let active = as_viewer
        .list_silences(v1::ListSilencesRequest::default())
        .await
        .expect("ListSilences")
        .into_inner()
        .silences;
    assert!(active.is_empty(), "{active:?}");
    let all = as_viewer
        .list_silences(v1::ListSilencesRequest {
            include_expired: true,
        })
        .await
        .expect("ListSilences")
        .into_inner()
        .silences;
    assert_eq!(all.iter().map(|s| s.id).collect::<Vec<_>>(), [silence.id]);
    let uncovered = wait_alert(&mut as_viewer, "cab-1", v1::AlertState::Firing).await;
    assert!(uncovered.silenced_by.is_empty(), "{uncovered:?}");
    citytel.stop();
}

/// Starts citytel with keys required and the rule; returns it and the admin key.
fn start_with_keys(dir: &std::path::Path) -> (Citytel, String) {
    let config = config_file(dir, RULE);
    let data = dir.join("data");
    let config_arg = config.display().to_string();
    let citytel = Citytel::start(
        &data,
        &["--config", &config_arg, "--set", "api.authentication=true"],
    );
    let key = admin_key(&data);
    (citytel, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_key_sees_acknowledges_and_silences_only_its_devices_alerts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (citytel, admin_key) = start_with_keys(dir.path());
    let scope = v1::Scope {
        devices: vec!["cab-1".into()],
        ..Default::default()
    };
    let [scoped] =
        <[String; 1]>::try_from(keys(&citytel, &admin_key, &[("operator", Some(scope))]).await)
            .expect("one key");
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let _one = birth(mqtt, "cab-1", SHORT_MS).await;
    let _two = birth(mqtt, "cab-2", SHORT_MS).await;
    let mut as_admin = alerts(&citytel, Some(&admin_key)).await;
    let mut as_scoped = alerts(&citytel, Some(&scoped)).await;
    wait_alert(&mut as_admin, "cab-1", v1::AlertState::Firing).await;
    let other = wait_alert(&mut as_admin, "cab-2", v1::AlertState::Firing).await;

    // Only cab-1's alert, and only it counted.
    let listed = as_scoped
        .list_alerts(v1::ListAlertsRequest::default())
        .await
        .expect("ListAlerts")
        .into_inner();
    let devices: Vec<&str> = listed.alerts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(devices, ["cab-1"], "{listed:?}");
    assert_eq!(listed.firing, 1);

    // cab-2's alert does not exist for it.
    let unknown = as_scoped
        .ack_alert(v1::AckAlertRequest {
            id: other.id,
            by: "jo".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // A silence must pin one of its devices.
    let silence = |matcher: v1::Matcher| v1::CreateSilenceRequest {
        matchers: vec![matcher],
        starts_unix_ms: 0,
        ends_unix_ms: now_ms() + 3_600_000,
        comment: "works".into(),
        created_by: "jo".into(),
    };
    let site = v1::Matcher {
        name: "site".into(),
        value: "site-01".into(),
        op: v1::MatchOperator::Equal as i32,
    };
    for matcher in [site.clone(), device_matcher("cab-2")] {
        let denied = as_scoped
            .create_silence(silence(matcher.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            denied.code(),
            Code::PermissionDenied,
            "{matcher:?}: {denied:?}"
        );
    }
    let own = as_scoped
        .create_silence(silence(device_matcher("cab-1")))
        .await
        .expect("CreateSilence")
        .into_inner()
        .silence
        .expect("the silence");

    // The admin's silence of the whole site is not the scoped key's to see or end.
    let wide = as_admin
        .create_silence(silence(site))
        .await
        .expect("CreateSilence")
        .into_inner()
        .silence
        .expect("the silence");
    let listed = as_scoped
        .list_silences(v1::ListSilencesRequest::default())
        .await
        .expect("ListSilences")
        .into_inner()
        .silences;
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [own.id]);
    let unknown = as_scoped
        .expire_silence(v1::ExpireSilenceRequest { id: wide.id })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    citytel.stop();
}
