//! API keys, as an operator and a partner meet them: `citytel serve` creates the first admin key
//! and writes it to a file only its user can read; every call needs a working key; roles limit
//! what a key may do; revoked and expired keys stop working at once and for good (also after a
//! restart); changes are in the audit log; the command line manages keys with the service stopped
//! and running; and a non-loopback API never runs without keys unless explicitly allowed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use citytel_proto::v1::{self, maintenance_window::Target};
use citytel_testkit::wait::Wait;
use citytel_tests::keys::{self, Admin, Query, admin, key_id, query};
use citytel_tests::process::{Citytel, binary};
use citytel_tests::wire::now_ms;
use tonic::{Code, Status};

fn start(data: &Path) -> Citytel {
    Citytel::start(data, &["--set", "api.authentication=true"])
}

/// The rest of the start-up banner, up to its last line.
async fn read_banner(citytel: &Citytel) -> String {
    let mut lines = Vec::new();
    let mut wait = Wait::new("the end of the banner", Duration::from_secs(20));
    while !lines.iter().any(|l: &String| l.starts_with("Press Ctrl-C")) {
        lines.extend(citytel.stdout_lines());
        if !lines.iter().any(|l| l.starts_with("Press Ctrl-C")) {
            wait.retry().await.expect("the banner ends");
        }
    }
    lines.join("\n")
}

async fn list_devices(client: &mut Query) -> Result<(), Status> {
    client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .map(|_| ())
}

async fn create_key(admin: &mut Admin, org: &str, role: &str, expires: i64) -> String {
    keys::create_key(admin, org, role, None, expires).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_required_roles_hold_and_revocation_is_final() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let citytel = start(&data);

    // The first admin key, in a file only citytel's user can read.
    let key_file = data.join("admin.key");
    let mode = std::fs::metadata(&key_file)
        .expect("admin key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the admin key file is private");
    let admin_key = std::fs::read_to_string(&key_file)
        .expect("admin key")
        .trim()
        .to_string();
    assert!(admin_key.starts_with("citytel_"));
    let banner = read_banner(&citytel).await;
    assert!(banner.contains("admin key"), "{banner}");
    assert!(!banner.contains(&admin_key), "the secret is not printed");

    // No key, a malformed one, an unknown one: UNAUTHENTICATED.
    let forged = format!("citytel_{}_{}", key_id(&admin_key), "0".repeat(64));
    for key in [None, Some("hello"), Some(forged.as_str())] {
        let status = list_devices(&mut query(&citytel, key).await)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{key:?}: {status:?}");
    }
    list_devices(&mut query(&citytel, Some(&admin_key)).await)
        .await
        .expect("the admin key works");

    // A partner's viewer key reads but may not write or see dead letters.
    let mut admin_client = admin(&citytel, &admin_key).await;
    admin_client
        .create_organisation(v1::CreateOrganisationRequest {
            organisation: Some(v1::Organisation {
                id: "university".into(),
                name: "City University".into(),
                licence: "CC BY 4.0".into(),
                created_unix_ms: 0,
            }),
        })
        .await
        .expect("CreateOrganisation");
    let viewer = create_key(&mut admin_client, "university", "viewer", 0).await;
    let mut as_viewer = query(&citytel, Some(&viewer)).await;
    list_devices(&mut as_viewer).await.expect("a viewer reads");
    let window = v1::MaintenanceWindow {
        id: 0,
        target: Some(Target::Site("site-1".into())),
        start_unix_ms: now_ms(),
        end_unix_ms: now_ms() + 3_600_000,
        reason: "works".into(),
    };
    let denied = as_viewer
        .set_maintenance(v1::SetMaintenanceRequest {
            window: Some(window),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = as_viewer
        .list_dead_letters(v1::ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = admin(&citytel, &viewer)
        .await
        .list_api_keys(v1::ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // Revoked: refused at once.
    admin_client
        .revoke_api_key(v1::RevokeApiKeyRequest {
            id: key_id(&viewer),
        })
        .await
        .expect("RevokeApiKey");
    let status = list_devices(&mut as_viewer).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{status:?}");

    // Expired: refused once its time has come.
    let short = create_key(&mut admin_client, "university", "viewer", now_ms() + 1_500).await;
    let mut as_short = query(&citytel, Some(&short)).await;
    list_devices(&mut as_short)
        .await
        .expect("works until it expires");
    let mut wait = Wait::new("the short key to expire", Duration::from_secs(20));
    loop {
        match list_devices(&mut as_short).await {
            Err(s) if s.code() == Code::Unauthenticated => {
                assert!(s.message().contains("expired"), "{s:?}");
                break;
            }
            _ => wait.retry().await.expect("the key expires"),
        }
    }

    // Restart: keys survive, the revoked one stays revoked, no second admin key is made.
    citytel.stop();
    let citytel = start(&data);
    let banner = read_banner(&citytel).await;
    assert!(!banner.contains("admin key       created"), "{banner}");
    assert!(banner.contains("api keys        required"), "{banner}");
    list_devices(&mut query(&citytel, Some(&admin_key)).await)
        .await
        .expect("the admin key still works");
    let status = list_devices(&mut query(&citytel, Some(&viewer)).await)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "still revoked");

    // The audit log says who changed what.
    let records = admin(&citytel, &admin_key)
        .await
        .list_audit_log(v1::ListAuditLogRequest::default())
        .await
        .expect("ListAuditLog")
        .into_inner()
        .records;
    let methods: Vec<(&str, &str)> = records
        .iter()
        .rev()
        .map(|r| (r.method.as_str(), r.organisation.as_str()))
        .collect();
    assert_eq!(
        methods,
        [
            ("CreateOrganisation", ""),
            ("CreateKey", ""),
            ("CreateOrganisation", "city"),
            ("CreateKey", "city"),
            ("RevokeKey", "city"),
            ("CreateKey", "city"),
        ],
        "{records:#?}"
    );
    assert!(records.iter().all(|r| r.result == "ok"));
    assert_eq!(records[1].target, format!("key {}", key_id(&viewer)));
    citytel.stop();
}

fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .args(["--grpc-listen", "127.0.0.1:0"])
        .output()
        .expect("run the command line");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_keys_with_the_service_stopped_and_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");

    // Stopped: straight into the data directory, through its WAL.
    let (ok, _, err) = cli(
        &data,
        &["orgs", "create", "operator-a", "--name", "Fibre Co"],
    );
    assert!(ok, "{err}");
    let (ok, key, err) = cli(
        &data,
        &[
            "keys",
            "create",
            "--org",
            "operator-a",
            "--role",
            "operator",
            "--kind",
            "cabinet",
        ],
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    assert!(key.starts_with("citytel_"), "{key}");
    let (ok, listed, err) = cli(&data, &["keys", "list"]);
    assert!(ok, "{err}");
    assert!(
        listed.contains(&key_id(&key)) && listed.contains("kind=cabinet"),
        "{listed}"
    );
    let (ok, _, err) = cli(
        &data,
        &["keys", "create", "--org", "nobody", "--role", "viewer"],
    );
    assert!(!ok && err.contains("organisation"), "{err}");

    // Running: the key made offline works; the command line goes through the admin API.
    let citytel = start(&data);
    list_devices(&mut query(&citytel, Some(&key)).await)
        .await
        .expect("a key made with the service stopped works");
    let grpc = citytel.grpc.to_string();
    let out = Command::new(binary())
        .args(["keys", "revoke", &key_id(&key), "--data-dir"])
        .arg(&data)
        .args(["--grpc-listen", &grpc])
        .output()
        .expect("revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = list_devices(&mut query(&citytel, Some(&key)).await)
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "revoked through the running service"
    );
    citytel.stop();
}

#[test]
fn a_non_loopback_api_without_keys_refuses_to_start_unless_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = Command::new(binary())
        .args(["config", "--data-dir"])
        .arg(&data)
        .args([
            "--grpc-listen",
            "0.0.0.0:0",
            "--set",
            "api.authentication=false",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(err.contains("--allow-anonymous-api"), "{err}");
    let out = Command::new(binary())
        .args(["config", "--data-dir"])
        .arg(&data)
        .args([
            "--grpc-listen",
            "0.0.0.0:0",
            "--set",
            "api.authentication=false",
        ])
        .arg("--allow-anonymous-api")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
