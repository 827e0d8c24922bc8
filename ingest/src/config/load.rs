//! Layering: built-in defaults, then a config file, then `section.key=value` overrides.

use std::path::Path;

use toml::{Table, Value};

use super::{Config, ConfigError};

/// The shipped default configuration (`ingest/citytel.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../citytel.toml");

/// Loads the configuration: defaults, then `file` if given, then `overrides` in order.
///
/// Each override is `section.key=value`; the value is parsed as a TOML value and, if that fails,
/// taken as a string, so `storage.data_dir=/var/lib/citytel` and `ingest.max_payload_bytes=1024`
/// both work.
pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
    let file_text = match file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        )),
        None => None,
    };
    load_str(
        file_text.as_ref().map(|(o, t)| (o.as_str(), t.as_str())),
        overrides,
    )
}

/// Like [`load`], with the file's contents given as `(origin, text)`.
pub fn load_str(file: Option<(&str, &str)>, overrides: &[String]) -> Result<Config, ConfigError> {
    let mut merged = parse_table("defaults", DEFAULT_TOML)?;
    if let Some((origin, text)) = file {
        let table = parse_table(origin, text)?;
        merge(&mut merged, table);
    }
    for item in overrides {
        apply_override(&mut merged, item)?;
    }
    Config::deserialize_from(merged)
}

impl Config {
    fn deserialize_from(table: Table) -> Result<Config, ConfigError> {
        migrated(&table)?;
        Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                origin: "configuration".to_string(),
                message: e.message().to_string(),
            })
    }
}

/// Keys that were replaced, with what replaced them.
fn migrated(table: &Table) -> Result<(), ConfigError> {
    let endpoint = table.get("endpoint").and_then(Value::as_table);
    if let Some(key) = ["username", "password"]
        .into_iter()
        .find(|k| endpoint.is_some_and(|e| e.contains_key(*k)))
    {
        return Err(ConfigError::Invalid {
            key: if key == "username" {
                "endpoint.username"
            } else {
                "endpoint.password"
            },
            message: "the shared device user name and password were replaced by per-device \
                      credentials: remove it and provision each device with `citytel devices \
                      add ID --kind KIND --site SITE --password` (or a generated token, or a \
                      client certificate); see docs/operations.md"
                .into(),
        });
    }
    Ok(())
}

fn parse_table(origin: &str, text: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

/// Deep-merges `top` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_override(table: &mut Table, item: &str) -> Result<(), ConfigError> {
    let (path, raw) = item
        .split_once('=')
        .ok_or_else(|| ConfigError::Override(item.to_string()))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(ConfigError::Override(item.to_string()));
    }
    let value = parse_value(raw.trim());
    let (last, parents) = keys
        .split_last()
        .ok_or_else(|| ConfigError::Override(item.to_string()))?;
    let mut cursor = table;
    for key in parents {
        let entry = cursor
            .entry(key.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        cursor = match entry {
            Value::Table(t) => t,
            _ => return Err(ConfigError::Override(item.to_string())),
        };
    }
    cursor.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}
