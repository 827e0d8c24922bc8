//! What goes over the wire: Alertmanager's v2 API body (`POST /api/v2/alerts`, a list of
//! postable alerts) and Alertmanager's webhook payload (version 4), which existing webhook
//! tooling already parses. Times are RFC 3339 in UTC with milliseconds.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::alerts::labels;
use crate::alerts::outbox::{AlertInfo, Notification, Status};

/// Alertmanager's "no end" time, as its webhook payload writes it for firing alerts.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let time = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_millis(time).to_string()
}

/// A link to the alert in citytel's dashboard, when a base URL is configured.
fn generator_url(external_url: &str, alert: &AlertInfo) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    format!(
        "{}/#/alerts/{}",
        external_url.trim_end_matches('/'),
        alert.id
    )
}

/// One alert in Alertmanager's v2 API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity.
    pub labels: BTreeMap<String, String>,
    /// Text.
    pub annotations: BTreeMap<String, String>,
    /// When it fired.
    pub starts_at: String,
    /// When it ends: the resolution time, or (firing) when Alertmanager should consider it
    /// resolved unless it is sent again.
    pub ends_at: String,
    /// Link to the alert.
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

impl PostableAlert {
    /// A firing alert valid until `valid_until_ms`.
    pub fn firing(alert: &AlertInfo, valid_until_ms: i64, external_url: &str) -> PostableAlert {
        PostableAlert {
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: rfc3339(alert.starts_at_ms),
            ends_at: rfc3339(valid_until_ms),
            generator_url: generator_url(external_url, alert),
        }
    }

    /// The alert a notification is about, as Alertmanager is told it: firing until
    /// `valid_until_ms`, or resolved at its resolution time.
    pub fn of(n: &Notification, valid_until_ms: i64, external_url: &str) -> PostableAlert {
        let mut alert = Self::firing(&n.alert, valid_until_ms, external_url);
        if let Some(end) = n.ends_at_ms() {
            alert.ends_at = rfc3339(end);
        }
        alert
    }
}

/// One alert in the webhook payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Identity.
    pub labels: BTreeMap<String, String>,
    /// Text.
    pub annotations: BTreeMap<String, String>,
    /// When it fired.
    pub starts_at: String,
    /// When it resolved (`0001-01-01T00:00:00Z` while firing).
    pub ends_at: String,
    /// Link to the alert.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// Alertmanager's webhook payload, version 4, for one notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// `"4"`.
    pub version: &'static str,
    /// Identifies the group: here the alert's rule and fingerprint.
    pub group_key: String,
    /// Alerts left out (never any).
    pub truncated_alerts: u64,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// The receiver's name.
    pub receiver: String,
    /// The labels the group is made by.
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert has (here: the alert's).
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert has (here: the alert's).
    pub common_annotations: BTreeMap<String, String>,
    /// citytel's dashboard.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// The alert.
    pub alerts: Vec<WebhookAlert>,
}

impl WebhookMessage {
    /// The payload of notification `n` for receiver `receiver`.
    pub fn of(n: &Notification, receiver: &str, external_url: &str) -> WebhookMessage {
        let a = &n.alert;
        let status = n.status.as_str();
        let fingerprint = labels::hex(a.fingerprint);
        WebhookMessage {
            version: "4",
            group_key: format!(
                "{{}}:{{alertname={:?}, fingerprint={fingerprint:?}}}",
                &*a.rule
            ),
            truncated_alerts: 0,
            status,
            receiver: receiver.to_string(),
            group_labels: [("alertname".to_string(), a.rule.to_string())].into(),
            common_labels: a.labels.clone(),
            common_annotations: a.annotations.clone(),
            external_url: external_url.to_string(),
            alerts: vec![WebhookAlert {
                status,
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_at_ms),
                ends_at: match n.status {
                    Status::Firing => ZERO_TIME.to_string(),
                    Status::Resolved => rfc3339(n.at_ms),
                },
                generator_url: generator_url(external_url, a),
                fingerprint,
            }],
        }
    }
}

/// The idempotency key of notification `n`: the alert's fingerprint and the sequence number.
pub fn idempotency_key(n: &Notification) -> String {
    format!("{}-{}", labels::hex(n.alert.fingerprint), n.seq)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alerts::rule::Severity;

    #[test]
    fn the_webhook_payload_is_alertmanagers_version_4() {
        let alert = Arc::new(AlertInfo {
            id: 7,
            rule: "cabinet-offline".into(),
            severity: Severity::Critical,
            labels: [("alertname", "cabinet-offline"), ("device", "cab-1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fingerprint: 0xabc,
            annotations: [("summary".to_string(), "cab-1 is offline".to_string())].into(),
            starts_at_ms: 1_700_000_000_000,
        });
        let n = Notification {
            seq: 3,
            status: Status::Resolved,
            at_ms: 1_700_000_060_500,
            alert,
        };
        let json: serde_json::Value =
            serde_json::to_value(WebhookMessage::of(&n, "oncall", "http://citytel:8080")).unwrap();
        assert_eq!(json["version"], "4");
        assert_eq!(json["status"], "resolved");
        assert_eq!(json["receiver"], "oncall");
        assert_eq!(json["alerts"][0]["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(json["alerts"][0]["endsAt"], "2023-11-14T22:14:20.500Z");
        assert_eq!(json["alerts"][0]["fingerprint"], "0000000000000abc");
        assert_eq!(
            json["alerts"][0]["generatorURL"],
            "http://citytel:8080/#/alerts/7"
        );
        assert_eq!(json["commonLabels"]["device"], "cab-1");
        assert_eq!(idempotency_key(&n), "0000000000000abc-3");
        let am = serde_json::to_value(PostableAlert::of(&n, 0, "")).unwrap();
        assert_eq!(am["endsAt"], "2023-11-14T22:14:20.500Z");
        assert!(am.get("generatorURL").is_none());
    }
}
