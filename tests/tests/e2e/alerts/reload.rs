//! `citytel serve` puts the configuration's alert rules in force again on SIGHUP.

use std::time::Duration;

use citytel_proto::v1;
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use citytel_tests::keys::{Alerts, alerts};

use super::{RULE, config_file};

/// Waits until the rules in force are `names`.
async fn wait_rules(client: &mut Alerts, names: &[&str]) {
    let mut wait = Wait::new(format!("rules {names:?} in force"), Duration::from_secs(30))
        .every(Duration::from_millis(50));
    loop {
        let rules = client
            .list_alert_rules(v1::ListAlertRulesRequest {})
            .await
            .expect("ListAlertRules")
            .into_inner()
            .rules;
        let got: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        if got == names {
            return;
        }
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}: {got:?}"));
    }
}

fn hangup(citytel: &Citytel) {
    let pid = i32::try_from(citytel.pid()).expect("pid fits");
    kill(Pid::from_raw(pid), Signal::SIGHUP).expect("send SIGHUP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_reloaded_on_sighup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(dir.path(), "");
    let config_arg = config.display().to_string();
    let citytel = Citytel::start(&dir.path().join("data"), &["--config", &config_arg]);
    let mut client = alerts(&citytel, None).await;
    wait_rules(&mut client, &[]).await;

    config_file(dir.path(), RULE);
    hangup(&citytel);
    wait_rules(&mut client, &["cabinet-offline"]).await;

    let second = RULE.replace("cabinet-offline", "cabinet-down");
    config_file(dir.path(), &format!("{RULE}{second}"));
    hangup(&citytel);
    wait_rules(&mut client, &["cabinet-offline", "cabinet-down"]).await;
    assert!(citytel.stop().success(), "citytel stops cleanly");
}
