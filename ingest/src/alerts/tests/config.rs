//! The `[alerts]` section: errors name the rule and the key, and the rules written to the WAL
//! read back as they were.

use crate::alerts::config::{AlertsConfig, parse_rules, rules_source};
use crate::alerts::rule::{Condition, Op, TargetKind};

fn section(rules: &str) -> Result<crate::alerts::config::AlertSettings, String> {
    let mut config: crate::config::Config =
        crate::config::load_str(Some(("test.toml", rules)), &[]).map_err(|e| e.to_string())?;
    config.alerts.external_url = String::new();
    config.alerts.validate().map_err(|e| e.to_string())
}

#[test]
fn every_kind_validates_and_reads_back_from_its_source() {
    let text = r#"
[[alerts.rule]]
name = "offline"
kind = "state"
severity = "critical"
devices = { kinds = ["cabinet"], sites = ["docks"] }
states = ["offline", "unreachable"]
for = "5m"
labels = { team = "fibre" }
annotations = { summary = "{{ device }} is down", runbook_url = "https://wiki/x", dashboard = "{{ site }}" }

[[alerts.rule]]
name = "hot"
kind = "threshold"
severity = "minor"
metric = "temperature_c"
op = ">="
value = 60
clear = 55.5
keep_firing_for = "10m"

[[alerts.rule]]
name = "no2"
kind = "absence"
severity = "warning"
metric = "no2_ugm3"
after = "15m"

[[alerts.rule]]
name = "slo"
kind = "availability"
severity = "major"
target = 99.5
window = "24h"
per = "district"

[[alerts.rule]]
name = "complete"
kind = "completeness"
severity = "warning"
target = 95
window = "1h"
interval = "5m"

[[alerts.webhook]]
name = "oncall"
url = "http://127.0.0.1:9/hook"
"#;
    let settings = section(text).unwrap();
    assert_eq!(settings.rules.len(), 5);
    assert_eq!(settings.receivers.len(), 1);
    let hot = &settings.rules[1];
    assert_eq!(
        hot.condition,
        Condition::Threshold {
            metric: "temperature_c".into(),
            op: Op::Ge,
            value: 60.0,
            clear: Some(55.5),
        }
    );
    assert_eq!(hot.keep_firing_for_ms, 600_000);
    assert_eq!(settings.rules[3].per, TargetKind::District);
    assert_eq!(settings.rules[3].condition.interval_ms(), Some(60_000));
    let (configs, rules) = parse_rules(&settings.rules_source).unwrap();
    assert_eq!(
        rules, settings.rules,
        "the WAL's form reads back as the same rules"
    );
    assert_eq!(rules_source(&configs), settings.rules_source);
}

#[test]
fn errors_name_the_rule_and_the_key() {
    let cases = [
        (
            "[[alerts.rule]]\nname = \"a\"\nkind = \"state\"\nseverity = \"critical\"\nstates = [\"down\"]\n",
            "alerts.rule[0] \"a\".states: \"down\" must be offline, late or unreachable",
        ),
        (
            "[[alerts.rule]]\nname = \"b\"\nkind = \"threshold\"\nseverity = \"minor\"\nmetric = \"t\"\nop = \">\"\nvalue = 5\nclear = 6\n",
            "alerts.rule[0] \"b\".clear: must lie on the side of value where the alert does not fire (value 5 >)",
        ),
        (
            "[[alerts.rule]]\nname = \"c\"\nkind = \"absence\"\nseverity = \"minor\"\nmetric = \"t\"\nafter = \"ten minutes\"\n",
            "alerts.rule[0] \"c\".after: \"ten minutes\" is not a duration",
        ),
        (
            "[[alerts.rule]]\nname = \"d\"\nkind = \"state\"\nseverity = \"urgent\"\nstates = [\"offline\"]\n",
            "alerts.rule[0] \"d\".severity: \"urgent\" must be critical, major, minor or warning",
        ),
        (
            "[[alerts.rule]]\nname = \"e\"\nkind = \"state\"\nseverity = \"minor\"\nstates = [\"offline\"]\nmetric = \"t\"\n",
            "alerts.rule[0] \"e\".metric: does not apply to kind \"state\"",
        ),
        (
            "[[alerts.rule]]\nname = \"f\"\nkind = \"availability\"\nseverity = \"minor\"\ntarget = 99\nwindow = \"90s\"\n",
            "alerts.rule[0] \"f\".window: must be a whole multiple of interval",
        ),
        (
            "[[alerts.rule]]\nname = \"g\"\nkind = \"state\"\nseverity = \"minor\"\nstates = [\"late\"]\nannotations = { summary = \"{{ devise }}\" }\n",
            "alerts.rule[0] \"g\".annotations.summary: unknown variable {{ devise }}",
        ),
        (
            "[[alerts.rule]]\nname = \"h\"\nkind = \"state\"\nseverity = \"minor\"\nstates = [\"late\"]\nlabels = { site = \"x\" }\n",
            "alerts.rule[0] \"h\".labels: \"site\" is set by citytel itself",
        ),
        (
            "[[alerts.rule]]\nname = \"i\"\nkind = \"state\"\nseverity = \"minor\"\nstates = [\"late\"]\n[[alerts.rule]]\nname = \"i\"\nkind = \"state\"\nseverity = \"minor\"\nstates = [\"late\"]\n",
            "alerts.rule[1] \"i\".name: another rule has this name",
        ),
        (
            "[[alerts.webhook]]\nname = \"Hook\"\nurl = \"http://x\"\n",
            "alerts.webhook[0] \"Hook\".name: must be 1 to 64 characters of [a-z0-9_-]",
        ),
        (
            "[[alerts.alertmanager]]\nname = \"am\"\nurl = \"127.0.0.1:9093\"\n",
            "alerts.alertmanager[0] \"am\".url: \"127.0.0.1:9093\" must start with http:// or https://",
        ),
    ];
    for (text, want) in cases {
        let got = section(text).unwrap_err();
        assert!(got.starts_with(want), "{got}\n  wanted: {want}");
    }
    let unknown = section("[[alerts.rule]]\nname = \"j\"\nkind = \"state\"\nseverity = \"minor\"\nstate = [\"late\"]\n")
        .unwrap_err();
    assert!(unknown.contains("unknown field `state`"), "{unknown}");
}

#[test]
fn the_shipped_section_has_no_rules_and_no_receivers() {
    let config: AlertsConfig = crate::config::load_str(None, &[]).unwrap().alerts;
    let settings = config.validate().unwrap();
    assert!(settings.rules.is_empty() && settings.receivers.is_empty());
    assert_eq!(settings.rules_source, rules_source(&[]));
}
