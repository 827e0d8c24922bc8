//! `citytel alerts check FILE`: a rule file or a configuration file is validated offline; a
//! mistake is reported naming the rule and the key, with a failing exit status.

use std::process::Command;

use citytel_tests::process::binary;

/// Runs `citytel alerts check` on a file of `text`: (success, stdout, stderr).
fn check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, text).expect("write the rules");
    let out = Command::new(binary())
        .args(["alerts", "check"])
        .arg(&file)
        .output()
        .expect("run citytel alerts check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_rule_file_is_checked_offline_and_mistakes_name_the_rule_and_the_key() {
    let (ok, stdout, stderr) = check(
        r#"
[[rule]]
name = "cabinet-offline"
kind = "state"
severity = "critical"
states = ["offline"]
for = "5m"
"#,
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 rules, 0 receivers: ok"), "{stdout}");
    assert!(stdout.contains("cabinet-offline"), "{stdout}");

    let (ok, stdout, stderr) = check(
        r#"
[[alerts.rule]]
name = "cabinet-hot"
kind = "threshold"
severity = "major"
metric = "temperature_c"
op = "=>"
value = 60.0
"#,
    );
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains(r#"alerts.rule[0] "cabinet-hot".op"#),
        "names the rule and the key: {stderr}"
    );

    let (ok, stdout, stderr) = check(
        r#"
[[rule]]
name = "dead-sensor"
kind = "absence"
severity = "warning"
metric = "humidity"
"#,
    );
    assert!(!ok, "{stdout}{stderr}");
    assert!(stderr.contains("dead-sensor"), "{stderr}");
    assert!(stderr.contains("after"), "names the missing key: {stderr}");
}
