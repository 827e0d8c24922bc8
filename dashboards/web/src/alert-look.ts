// How alerts are shown: severity and state as icon and text (never colour alone), what an alert
// is about (a link to the device, or the site's device list), and since when it stands.

import { h } from "./dom";
import { agoElement, ms } from "./format";
import { AlertSeverity, AlertState, type Alert } from "./gen/citytel/v1/alerts_pb";
import { href } from "./router";

interface Look {
  key: string;
  label: string;
  icon: string;
}

const SEVERITIES = new Map<AlertSeverity, Look>([
  [AlertSeverity.CRITICAL, { key: "critical", label: "Critical", icon: "‼" }],
  [AlertSeverity.MAJOR, { key: "major", label: "Major", icon: "!" }],
  [AlertSeverity.MINOR, { key: "minor", label: "Minor", icon: "▲" }],
  [AlertSeverity.WARNING, { key: "warning", label: "Warning", icon: "△" }],
]);

const STATES = new Map<AlertState, Look>([
  [AlertState.FIRING, { key: "firing", label: "Firing", icon: "◉" }],
  [AlertState.PENDING, { key: "pending", label: "Pending", icon: "◔" }],
  [AlertState.RESOLVED, { key: "resolved", label: "Resolved", icon: "✓" }],
]);

const UNKNOWN: Look = { key: "unknown", label: "Unknown", icon: "?" };

/** The order alerts are listed in: firing, pending, resolved. */
export function stateRank(state: AlertState): number {
  return state === AlertState.FIRING ? 0 : state === AlertState.PENDING ? 1 : 2;
}

/** The key of `state` ("firing", "pending", "resolved"), as rows carry it. */
export function stateKey(state: AlertState): string {
  return (STATES.get(state) ?? UNKNOWN).key;
}

function badge(prefix: string, look: Look): HTMLElement {
  return h(
    "span",
    { class: `${prefix} ${prefix}-${look.key}` },
    h("span", { "aria-hidden": "true" }, look.icon),
    ` ${look.label}`,
  );
}

/** The severity, e.g. "‼ Critical". */
export function severityBadge(severity: AlertSeverity): HTMLElement {
  return badge("severity", SEVERITIES.get(severity) ?? UNKNOWN);
}

/** The state, e.g. "◉ Firing". */
export function alertStateBadge(state: AlertState): HTMLElement {
  return badge("alert-state", STATES.get(state) ?? UNKNOWN);
}

/** What the alert is about: its device (a link to its page, and its site), or a site or
 * district. */
export function alertTarget(alert: Alert): HTMLElement {
  switch (alert.targetKind) {
    case "device":
      return h(
        "span",
        {},
        h("a", { href: href(["devices", alert.target]) }, alert.target),
        alert.site ? h("span", { class: "muted" }, ` at ${alert.site}`) : null,
      );
    case "site":
      return h(
        "span",
        {},
        "site ",
        h("a", { href: href(["devices"], { site: alert.target }) }, alert.target),
      );
    default:
      return h("span", {}, `${alert.targetKind} ${alert.target}`);
  }
}

/** Since when the alert stands in its state (fired, went pending, or resolved), as "… ago" with
 * the exact time as its tooltip. */
export function alertSince(alert: Alert): HTMLElement {
  switch (alert.state) {
    case AlertState.FIRING:
      return agoElement(ms(alert.firingSinceUnixMs));
    case AlertState.PENDING:
      return agoElement(ms(alert.pendingSinceUnixMs));
    default:
      return agoElement(ms(alert.resolvedUnixMs));
  }
}

/** The labels of `alert` as `name="value"` text, sorted by name. */
export function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}="${value}"`)
    .join(", ");
}
