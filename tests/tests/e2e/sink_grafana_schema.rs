//! The Grafana dashboards (`dashboards/grafana/dashboards/*.json`) read exactly what the InfluxDB
//! sink writes: every InfluxQL query (panels and template variables) is parsed and each
//! measurement, tag and field name it uses is checked against the sink's schema
//! (`citytel_ingest::sink::schema`), so the two cannot drift apart.

use std::path::{Path, PathBuf};

use citytel_ingest::sink::schema;
use serde_json::Value;

/// The datasource the provisioning file defines; every panel and variable must use it.
const DATASOURCE_UID: &str = "citytel-influxdb";

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/grafana")
}

/// Every dashboard file with its parsed JSON.
fn dashboards() -> Vec<(String, Value)> {
    let dir = grafana_dir().join("dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("dashboards directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (
                p.file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned(),
                json,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every InfluxQL query of a dashboard: panel targets (rows included) and query variables, each
/// with where it is and its datasource uid.
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?} target {}", panel["title"], target["refId"]),
                target["query"]
                    .as_str()
                    .expect("raw InfluxQL query")
                    .to_string(),
                panel["datasource"]["uid"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            out.push((
                format!("variable {}", var["name"]),
                var["query"].as_str().expect("variable query").to_string(),
                var["datasource"]["uid"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A double-quoted identifier.
    Ident(String),
    /// A bare word (keyword, function, Grafana macro or variable, number).
    Word(String),
    /// A regular expression `/.../`.
    Regex,
    /// Punctuation or an operator.
    Symbol(String),
    /// A single-quoted string literal.
    Literal,
}

fn tokenize(query: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => tokens.push(Token::Ident(
                chars.by_ref().take_while(|&c| c != '"').collect(),
            )),
            '\'' => {
                chars.by_ref().take_while(|&c| c != '\'').for_each(drop);
                tokens.push(Token::Literal);
            }
            '/' => {
                chars.by_ref().take_while(|&c| c != '/').for_each(drop);
                tokens.push(Token::Regex);
            }
            c if c.is_alphanumeric() || c == '$' || c == '_' => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '$' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                while let Some(&n) = chars.peek() {
                    if matches!(n, '=' | '~' | '>') {
                        op.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Symbol(op));
            }
            c => tokens.push(Token::Symbol(c.to_string())),
        }
    }
    tokens
}

/// Bare words a query may contain: InfluxQL keywords and functions, Grafana macros.
const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "GROUP",
    "BY",
    "time",
    "fill",
    "none",
    "AS",
    "SHOW",
    "TAG",
    "VALUES",
    "WITH",
    "KEY",
    "mean",
    "max",
    "min",
    "sum",
    "count",
    "last",
    "first",
    "$timeFilter",
    "$__interval",
];

/// Checks one query's names against the schema; returns what is wrong.
///
/// Each quoted identifier is judged by the clause it is in (tracked per parenthesis depth, so
/// subqueries and function calls are followed): after FROM a measurement, in WHERE, GROUP BY
/// and WITH KEY a tag, in SELECT a field of the query's measurements (or an alias made with AS).
fn check(query: &str) -> Vec<String> {
    let tokens = tokenize(query);
    let mut problems = Vec::new();
    let known: Vec<&str> = schema::measurements().iter().map(|m| m.name).collect();
    let mut measurements = Vec::new();
    let mut aliases = Vec::new();
    for pair in tokens.windows(2) {
        match pair {
            [Token::Word(w), Token::Ident(m)] if w == "FROM" => {
                if m == "$kind" {
                    // The kind variable: any measurement.
                    measurements.extend(known.iter().map(|k| k.to_string()));
                } else if known.contains(&m.as_str()) {
                    measurements.push(m.clone());
                } else {
                    problems.push(format!("unknown measurement {m:?}"));
                }
            }
            [Token::Word(w), Token::Ident(a)] if w == "AS" => aliases.push(a.clone()),
            _ => {}
        }
    }
    if measurements.is_empty() && !query.starts_with("SHOW TAG VALUES WITH KEY") {
        problems.push("no measurement".to_string());
    }
    let mut clauses = vec!["SELECT"];
    let mut previous: Option<&Token> = None;
    for token in &tokens {
        let clause = *clauses.last().unwrap_or(&"SELECT");
        match token {
            Token::Symbol(s) if s == "(" => clauses.push(clause),
            Token::Symbol(s) if s == ")" => {
                clauses.pop();
            }
            Token::Word(w) => {
                let number = w.starts_with(|c: char| c.is_ascii_digit())
                    && w.chars().all(|c| c.is_ascii_alphanumeric());
                if !WORDS.contains(&w.as_str()) && !number {
                    problems.push(format!("unquoted or unknown word {w:?}"));
                }
                let next = match w.as_str() {
                    "SELECT" => Some("SELECT"),
                    "FROM" => Some("FROM"),
                    "WHERE" => Some("WHERE"),
                    "BY" => Some("GROUP"),
                    "KEY" => Some("KEY"),
                    _ => None,
                };
                if let (Some(next), Some(top)) = (next, clauses.last_mut()) {
                    *top = next;
                }
            }
            Token::Ident(name) => {
                let after_as = matches!(previous, Some(Token::Word(w)) if w == "AS");
                match clause {
                    "FROM" => {}
                    "WHERE" | "GROUP" | "KEY" => {
                        if !schema::is_tag(name) {
                            problems.push(format!(
                                "{name:?} is used as a tag but the sink writes no such tag"
                            ));
                        }
                    }
                    _ if after_as || aliases.contains(name) => {}
                    _ => {
                        if !measurements.iter().any(|m| schema::has_field(m, name)) {
                            problems
                                .push(format!("field {name:?} is not written to {measurements:?}"));
                        }
                    }
                }
            }
            Token::Regex | Token::Symbol(_) | Token::Literal => {}
        }
        previous = Some(token);
    }
    problems
}

#[test]
fn every_dashboard_query_uses_the_sinks_names() {
    let dashboards = dashboards();
    let names: Vec<&str> = dashboards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "availability.json",
            "device-detail.json",
            "fleet-overview.json"
        ]
    );
    let mut checked = 0;
    for (file, dashboard) in &dashboards {
        assert!(
            dashboard["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("citytel-")),
            "{file}: uid"
        );
        for (place, query, datasource) in queries(dashboard) {
            assert_eq!(datasource, DATASOURCE_UID, "{file} {place}: datasource");
            let problems = check(&query);
            assert!(
                problems.is_empty(),
                "{file} {place}: {query}\n{problems:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} queries found");
}

#[test]
fn every_metric_of_every_kind_is_on_the_device_detail_dashboard() {
    let (_, detail) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "device-detail.json")
        .expect("device detail dashboard");
    let all: Vec<String> = queries(&detail).into_iter().map(|(_, q, _)| q).collect();
    for m in schema::measurements() {
        for field in m.fields {
            let wanted = format!("\"{field}\") FROM \"{}\"", m.name);
            assert!(
                all.iter().any(|q| q.contains(&wanted)),
                "{} {field} has no panel",
                m.name
            );
        }
    }
}

#[test]
fn the_checker_catches_drift() {
    assert!(check(r#"SELECT mean("temperature_c") FROM "cabinet" WHERE "site" =~ /^$site$/ AND $timeFilter GROUP BY time($__interval), "device_id""#).is_empty());
    assert!(
        !check(r#"SELECT mean("temperature") FROM "cabinet" WHERE $timeFilter"#).is_empty(),
        "unknown field"
    );
    assert!(
        !check(r#"SELECT mean("rsrp_dbm") FROM "cabinet" WHERE $timeFilter"#).is_empty(),
        "field of another kind"
    );
    assert!(
        !check(r#"SELECT mean("temperature_c") FROM "cabinets" WHERE $timeFilter"#).is_empty(),
        "unknown measurement"
    );
    assert!(
        !check(r#"SELECT mean("temperature_c") FROM "cabinet" WHERE "device" =~ /x/"#).is_empty(),
        "unknown tag"
    );
    assert!(
        !check(r#"SELECT mean("temperature_c") FROM "cabinet" GROUP BY "district""#).is_empty(),
        "unknown group tag"
    );
    assert!(
        !check(r#"SELECT mean(temperature_c) FROM "cabinet""#).is_empty(),
        "unquoted name"
    );
    assert!(
        check(r#"SHOW TAG VALUES FROM "$kind" WITH KEY = "device_id" WHERE "site" =~ /^$site$/"#)
            .is_empty()
    );
    assert!(
        !check(r#"SHOW TAG VALUES WITH KEY = "district""#).is_empty(),
        "unknown key"
    );
}

#[test]
fn provisioning_names_the_datasource_the_dashboards_use() {
    let dir = grafana_dir().join("provisioning");
    let datasource =
        std::fs::read_to_string(dir.join("datasources/citytel-influxdb.yaml")).unwrap();
    assert!(datasource.contains(&format!("uid: {DATASOURCE_UID}")));
    assert!(datasource.contains("version: InfluxQL"));
    for var in [
        "${CITYTEL_INFLUXDB_URL}",
        "${CITYTEL_INFLUXDB_DB}",
        "${CITYTEL_INFLUXDB_TOKEN}",
    ] {
        assert!(datasource.contains(var), "{var}");
    }
    let provider = std::fs::read_to_string(dir.join("dashboards/citytel.yaml")).unwrap();
    assert!(provider.contains("type: file"));
}
