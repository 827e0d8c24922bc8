//! `SessionService.WhoAmI` and open streams, as the dashboard meets them: any working key may ask
//! who it is (organisation, role, scope), over gRPC and over gRPC-Web on the dashboard's port; no
//! key is UNAUTHENTICATED; without authentication the answer is an anonymous admin; and a live
//! stream opened with a key ends with UNAUTHENTICATED soon after the key is revoked.

use std::time::Duration;

use citytel_proto::v1::{self, Scope};
use citytel_testkit::grpc_web;
use citytel_tests::keys::{self, key_id};
use citytel_tests::process::Citytel;
use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic::Code;

/// How soon an open stream must end once its key is revoked: the streams check every 2 s.
const REVOKED_STREAM_ENDS: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_answers_any_key_and_streams_end_when_it_is_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let citytel = Citytel::start(&data, &["--set", "api.authentication=true"]);
    let admin_key = keys::admin_key(&data);
    let mut admin = keys::admin(&citytel, &admin_key).await;
    keys::create_org(&mut admin, "university", "City University").await;
    let scope = Scope {
        kinds: vec!["cabinet".into()],
        ..Scope::default()
    };
    let viewer = keys::create_key(&mut admin, "university", "viewer", Some(scope), 0).await;

    let refused = keys::session(&citytel, None)
        .await
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect_err("no key");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    let me = keys::session(&citytel, Some(&viewer))
        .await
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect("a viewer may ask who it is")
        .into_inner();
    assert!(me.authentication);
    assert_eq!(me.role, "viewer");
    let org = me.organisation.expect("its organisation");
    assert_eq!(
        (org.id.as_str(), org.name.as_str()),
        ("university", "City University")
    );
    let key = me.key.expect("its key");
    assert_eq!(key.id, key_id(&viewer));
    assert_eq!(key.scope.expect("its scope").kinds, ["cabinet"]);

    // The dashboard's way: gRPC-Web on the HTTP port, with the key as bearer.
    let bearer = format!("Bearer {viewer}");
    let answer = grpc_web::call_with(
        citytel.dashboard_addr(),
        "/citytel.v1.SessionService/WhoAmI",
        &v1::WhoAmIRequest {}.encode_to_vec(),
        &[("authorization", &bearer)],
    )
    .await
    .expect("gRPC-Web WhoAmI");
    let (messages, status) = answer.finish().await.expect("the answer ends");
    assert_eq!(status.as_deref(), Some("0"));
    let me = v1::WhoAmIResponse::decode(messages[0].clone()).expect("a WhoAmIResponse");
    assert_eq!(me.role, "viewer");

    // A live stream of the viewer's ends once the key is revoked.
    let mut events = keys::query(&citytel, Some(&viewer))
        .await
        .watch_events(v1::WatchEventsRequest::default())
        .await
        .expect("WatchEvents")
        .into_inner();
    keys::revoke(&mut admin, &viewer).await;
    let end = tokio::time::timeout(REVOKED_STREAM_ENDS, events.next())
        .await
        .expect("the stream ends after the revocation");
    let status = match end {
        Some(Err(status)) => status,
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    // The admin's own calls go on.
    keys::query(&citytel, Some(&admin_key))
        .await
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .expect("the admin key still works");
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_who_am_i_is_an_anonymous_admin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let citytel = Citytel::start(dir.path(), &[]);
    let me = keys::session(&citytel, None)
        .await
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .expect("WhoAmI without a key")
        .into_inner();
    assert!(!me.authentication);
    assert_eq!(me.role, "admin");
    assert!(me.organisation.is_none() && me.key.is_none(), "{me:?}");
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
