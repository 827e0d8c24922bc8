use std::time::Duration;

use super::*;
use citytel_storage::wal::FsyncPolicy;

fn defaults() -> Config {
    load_str(None, &[]).expect("shipped defaults parse")
}

#[test]
fn shipped_defaults_parse_and_validate() {
    let config = defaults();
    assert_eq!(config.endpoint.listen.port(), 1883);
    assert_eq!(config.grpc.listen.port(), 50051);
    assert_eq!(config.storage.fsync, FsyncPolicy::Always);
    let settings = config.validate().expect("defaults validate");
    assert!(matches!(settings.source, SourceSettings::Endpoint(_)));
}

#[test]
fn every_key_is_documented_in_the_shipped_file() {
    let mut config = defaults();
    config.broker.username = Some("u".into());
    config.broker.password = Some("p".into());
    config.sink.influxdb.token_file = Some("/t".into());
    config.metrics.bearer_token_file = Some("/t".into());
    let table: toml::Table = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    let mut sections: Vec<(String, &toml::Table)> = table
        .iter()
        .map(|(name, value)| (name.clone(), value.as_table().unwrap()))
        .collect();
    while let Some((section, keys)) = sections.pop() {
        assert!(
            DEFAULT_TOML.contains(&format!("[{section}]"))
                || DEFAULT_TOML.contains(&format!("[{section}.")),
            "[{section}] missing"
        );
        for (key, value) in keys {
            // A nested section such as [sink.influxdb] is checked as a section of its own.
            if let toml::Value::Table(nested) = value
                && DEFAULT_TOML.contains(&format!("[{section}.{key}]"))
            {
                sections.push((format!("{section}.{key}"), nested));
                continue;
            }
            let documented = DEFAULT_TOML
                .lines()
                .map(|l| l.trim_start_matches('#').trim_start())
                .any(|l| l.starts_with(&format!("{key} =")));
            assert!(documented, "{section}.{key} is not in citytel.toml");
        }
    }
}

#[test]
fn file_values_override_defaults_and_keep_the_rest() {
    let config = load_str(
        Some((
            "test.toml",
            "[storage]\ndata_dir = \"/tmp/x\"\n[ingest]\nmax_future = \"1m\"\n",
        )),
        &[],
    )
    .unwrap();
    assert_eq!(config.storage.data_dir.to_str(), Some("/tmp/x"));
    assert_eq!(config.ingest.max_future, Duration::from_secs(60));
    assert_eq!(config.storage.fsync, FsyncPolicy::Always);
}

#[test]
fn overrides_apply_after_the_file() {
    let config = load_str(
        Some(("test.toml", "[storage]\ndata_dir = \"/tmp/x\"\n")),
        &[
            "storage.data_dir=/var/lib/citytel".to_string(),
            "ingest.max_payload_bytes=4096".to_string(),
            "storage.fsync=\"never\"".to_string(),
        ],
    )
    .unwrap();
    assert_eq!(config.storage.data_dir.to_str(), Some("/var/lib/citytel"));
    assert_eq!(config.ingest.max_payload_bytes, 4096);
    assert_eq!(config.storage.fsync, FsyncPolicy::Never);
}

#[test]
fn unknown_keys_are_errors() {
    let err = load_str(Some(("test.toml", "[storage]\ndata_dri = \"x\"\n")), &[]).unwrap_err();
    assert!(err.to_string().contains("data_dri"), "{err}");
    let err = load_str(None, &["nosuch.key=1".to_string()]).unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
}

#[test]
fn malformed_overrides_are_errors() {
    for bad in ["storage.data_dir", "=x", "storage..x=1"] {
        assert!(
            matches!(
                load_str(None, &[bad.to_string()]),
                Err(ConfigError::Override(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn broker_url_selects_the_broker_source() {
    let config = load_str(None, &["broker.url=mqtt://broker.local:1884".to_string()]).unwrap();
    match config.validate().unwrap().source {
        SourceSettings::Broker(b) => {
            assert_eq!((b.host.as_str(), b.port), ("broker.local", 1884));
        }
        other => panic!("expected broker source, got {other:?}"),
    }
}

#[test]
fn mqtt_urls_parse_with_clear_errors() {
    assert_eq!(parse_mqtt_url("mqtt://h").unwrap(), ("h".to_string(), 1883));
    assert_eq!(
        parse_mqtt_url("mqtt://h:42/").unwrap(),
        ("h".to_string(), 42)
    );
    assert_eq!(
        parse_mqtt_url("mqtt://[::1]:42").unwrap(),
        ("::1".to_string(), 42)
    );
    assert!(parse_mqtt_url("http://h").unwrap_err().contains("mqtt://"));
    assert!(
        parse_mqtt_url("mqtt://h:port")
            .unwrap_err()
            .contains("port")
    );
    assert!(parse_mqtt_url("mqtt://").is_err());
    assert!(parse_mqtt_url("mqtt://h/topic").is_err());
}

#[test]
fn validation_rejects_inconsistent_values() {
    let cases = [
        ("endpoint.tls.enabled=true", "endpoint.tls"),
        ("endpoint.plain=false", "endpoint.plain"),
        ("grpc.tls.enabled=true", "grpc.tls"),
        ("broker.url=\"mqtts://b\"", "broker.ca_file"),
        ("ingest.max_devices=0", "ingest.max_devices"),
        (
            "ingest.max_attributes_per_device=0",
            "ingest.max_attributes_per_device",
        ),
        (
            "ingest.max_attribute_bytes_per_device=0",
            "ingest.max_attribute_bytes_per_device",
        ),
        (
            "storage.dead_letter_payload_bytes=70000",
            "storage.dead_letter_payload_bytes",
        ),
        (
            "storage.dead_letter_bytes=1000",
            "storage.dead_letter_bytes",
        ),
        (
            "ingest.max_in_flight_bytes=10",
            "ingest.max_in_flight_bytes",
        ),
        ("endpoint.enabled=false", "endpoint.enabled"),
        ("broker.url=\"http://x\"", "broker.url"),
        (
            "storage.retention_minute=\"1d\"",
            "storage.retention_minute",
        ),
        ("storage.retention_hour=\"60d\"", "storage.retention_hour"),
        ("storage.head_max_points=5", "storage.head_max_points"),
        (
            "availability.intermittent_kinds=[\"sensor\",\"sensor\"]",
            "availability.intermittent_kinds",
        ),
        (
            "availability.intermittent_kinds=[\"battery sensor\"]",
            "availability.intermittent_kinds",
        ),
    ];
    for (set, key) in cases {
        let err = load_str(None, &[set.to_string()])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains(key), "{set}: {err}");
    }
}

#[test]
fn retention_accepts_durations_and_forever() {
    let config = load_str(
        None,
        &[
            "storage.retention_raw=\"forever\"".to_string(),
            "storage.retention_minute=\"forever\"".to_string(),
        ],
    )
    .unwrap();
    assert_eq!(config.storage.retention_raw, None);
    config.validate().unwrap();
    let err = load_str(None, &["storage.retention_raw=\"soon\"".to_string()]).unwrap_err();
    assert!(err.to_string().contains("forever"), "{err}");
}

#[test]
fn redacted_output_hides_passwords() {
    let config = load_str(
        None,
        &[
            "broker.username=\"dev\"".to_string(),
            "broker.password=\"hunter2\"".to_string(),
        ],
    )
    .unwrap();
    let shown = config.to_redacted_toml();
    assert!(!shown.contains("hunter2"));
    assert!(shown.contains("<redacted>"));
    let reparsed = load_str(Some(("shown", &shown)), &[]).unwrap();
    assert_eq!(reparsed.broker.username.as_deref(), Some("dev"));
}

#[test]
fn intermittent_kinds_reach_the_availability_policy() {
    let settings = defaults().validate().expect("defaults validate");
    assert!(
        settings.availability.policy.intermittent_kinds.is_empty(),
        "no kind is intermittent by default"
    );
    let settings = load_str(
        None,
        &["availability.intermittent_kinds=[\"sensor\"]".to_string()],
    )
    .unwrap()
    .validate()
    .expect("valid");
    let policy = &settings.availability.policy;
    assert!(policy.timing("sensor").intermittent);
    assert!(!policy.timing("cabinet").intermittent);
}

#[test]
fn the_old_shared_device_credentials_are_refused_with_a_migration_note() {
    for key in ["endpoint.username=\"u\"", "endpoint.password=\"p\""] {
        let err = load_str(None, &[key.to_string()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("citytel devices add"), "{text}");
    }
}

#[test]
fn an_anonymous_device_endpoint_outside_loopback_needs_to_be_allowed() {
    let load = |extra: &[&str]| {
        let mut overrides = vec!["endpoint.authentication=false".to_string()];
        overrides.extend(extra.iter().map(|s| s.to_string()));
        load_str(None, &overrides).unwrap().validate()
    };
    assert!(load(&[]).is_ok(), "loopback may stay open");
    let err = load(&["endpoint.listen=\"0.0.0.0:1883\""]).unwrap_err();
    assert!(
        err.to_string().contains("--allow-anonymous-devices"),
        "{err}"
    );
    assert!(err.to_string().contains("endpoint.listen"), "{err}");
    assert!(
        load(&[
            "endpoint.listen=\"0.0.0.0:1883\"",
            "endpoint.allow_anonymous=true"
        ])
        .is_ok()
    );
    let err = load(&[
        "endpoint.tls.enabled=true",
        "endpoint.tls.listen=\"0.0.0.0:8883\"",
        "endpoint.tls.cert_file=\"/c.pem\"",
        "endpoint.tls.key_file=\"/c.key\"",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("endpoint.tls.listen"), "{err}");
    let authenticated = load_str(None, &["endpoint.listen=\"0.0.0.0:1883\"".to_string()])
        .unwrap()
        .validate();
    assert!(
        authenticated.is_ok(),
        "authenticated devices may listen anywhere"
    );
}

#[test]
fn the_devices_file_is_in_the_data_dir_unless_absolute() {
    let settings = load_str(None, &["storage.data_dir=\"/var/lib/ct\"".to_string()])
        .unwrap()
        .validate()
        .unwrap();
    match settings.source {
        SourceSettings::Endpoint(e) => {
            assert_eq!(
                e.devices_file,
                std::path::Path::new("/var/lib/ct/devices.toml")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mqtts_broker_urls_default_to_8883() {
    assert_eq!(
        parse_broker_url("mqtts://b").unwrap(),
        ("b".to_string(), 8883, true)
    );
    assert_eq!(
        parse_broker_url("mqtt://b").unwrap(),
        ("b".to_string(), 1883, false)
    );
    let settings = load_str(
        None,
        &[
            "broker.url=\"mqtts://b:9883\"".to_string(),
            "broker.ca_file=\"/ca.pem\"".to_string(),
        ],
    )
    .unwrap()
    .validate()
    .unwrap();
    match settings.source {
        SourceSettings::Broker(b) => assert_eq!((b.port, b.tls), (9883, true)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sparkplug_without_a_broker_runs_on_the_device_endpoint() {
    let overrides = [
        "sparkplug.enabled=true".to_string(),
        "sparkplug.host_id=\"citytel\"".to_string(),
    ];
    let settings = load_str(None, &overrides).unwrap().validate().unwrap();
    match settings.source {
        SourceSettings::Endpoint(e) => {
            let sparkplug = e.sparkplug.expect("the endpoint's Sparkplug host");
            assert_eq!(sparkplug.host_id.as_deref(), Some("citytel"));
        }
        other => panic!("expected the endpoint, got {other:?}"),
    }
    let off = defaults().validate().unwrap();
    assert!(matches!(off.source, SourceSettings::Endpoint(e) if e.sparkplug.is_none()));
}
