// A list of alerts in three groups, firing first, then pending, then recently resolved (each in
// citytel's order: most severe and longest firing first, resolved newest first): severity, rule
// and summary, what it is about, since when, who acknowledged it, and the Acknowledge and
// Silence buttons. Used by the alerts page and a device's page.

import { acknowledge, actionButton, roleNote, silence } from "./alert-actions";
import {
  alertSince,
  alertStateBadge,
  alertTarget,
  severityBadge,
  stateKey,
  stateRank,
} from "./alert-look";
import { append, h, replace, table } from "./dom";
import { agoElement, formatDateTime, ms } from "./format";
import { AlertState, type Alert } from "./gen/citytel/v1/alerts_pb";
import type { AppContext } from "./router";

const GROUPS: [AlertState, string][] = [
  [AlertState.FIRING, "Firing"],
  [AlertState.PENDING, "Pending"],
  [AlertState.RESOLVED, "Recently resolved"],
];

/** Options of a table. */
export interface AlertTableOptions {
  /** Prefix of the element ids (one table per page). */
  id: string;
  /** Whether to show what each alert is about (not on a device's own page). */
  showTarget: boolean;
  /** Whether to leave out empty groups (and say "No alerts." when all are). */
  compact: boolean;
  /** Called after an alert was acknowledged or silenced here. */
  changed: () => void;
}

/** The alerts, grouped by state. */
export class AlertTable {
  /** The element to put on the page. */
  readonly element: HTMLElement;
  private readonly body = h("div", {}, h("p", {}, "Loading…"));
  private readonly noteId: string;

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: AlertTableOptions,
  ) {
    this.noteId = `${opts.id}-role-note`;
    this.element = h("div", { class: "alert-table" }, roleNote(ctx, this.noteId), this.body);
  }

  /** Shows `alerts`. */
  render(alerts: Alert[]): void {
    const groups = GROUPS.map(([state, title]) => {
      const members = alerts.filter((a) => stateRank(a.state) === stateRank(state));
      const heading = h("h3", {}, `${title} (${members.length})`);
      if (members.length === 0 && this.opts.compact) return null;
      if (members.length === 0)
        return h(
          "div",
          { "data-group": stateKey(state) },
          heading,
          h("p", { class: "muted" }, "None."),
        );
      const columns = [
        "Severity",
        "Rule",
        ...(this.opts.showTarget ? ["About"] : []),
        "State",
        "Since",
        "Acknowledged",
        "Actions",
      ];
      const { wrap, body } = table(`${title} alerts`, columns, { captionHidden: true });
      for (const alert of members) append(body, this.row(alert));
      return h("div", { "data-group": stateKey(state) }, heading, wrap);
    });
    if (alerts.length === 0 && this.opts.compact) {
      replace(this.body, h("p", { class: "muted" }, "No alerts."));
      return;
    }
    replace(this.body, groups);
  }

  /** Shows that the alerts could not be loaded. */
  failed(message: string): void {
    replace(this.body, h("p", { class: "error-text" }, `Not available: ${message}`));
  }

  private row(alert: Alert): HTMLElement {
    const summary = alert.annotations.summary;
    const open = alert.state !== AlertState.RESOLVED;
    const notes: (HTMLElement | string)[] = [];
    if (alert.silencedBy.length > 0)
      notes.push(
        h("span", { class: "tag" }, `silenced (${alert.silencedBy.map(String).join(", ")})`),
      );
    const suppressed = ms(alert.suppressedUntilUnixMs);
    if (suppressed > Date.now())
      notes.push(h("span", { class: "tag", title: formatDateTime(suppressed) }, "in maintenance"));
    const name = `${alert.rule} on ${alert.target}`;
    const actions = open
      ? [
          alert.ack
            ? null
            : actionButton(
                this.ctx,
                "Acknowledge",
                "ack",
                this.noteId,
                (button) => {
                  void acknowledge(this.ctx, alert, button, this.opts.changed);
                },
                `Acknowledge ${name}`,
              ),
          actionButton(
            this.ctx,
            "Silence",
            "silence",
            this.noteId,
            () => {
              silence(this.ctx, alert, this.opts.changed);
            },
            `Silence ${name}`,
          ),
        ]
      : [];
    return h(
      "tr",
      {
        "data-alert": String(alert.id),
        "data-state": stateKey(alert.state),
        "data-target": alert.target,
        "data-acked": alert.ack ? "true" : "false",
      },
      h("td", {}, severityBadge(alert.severity)),
      h(
        "th",
        { scope: "row" },
        alert.rule,
        summary ? h("div", { class: "summary" }, summary) : null,
      ),
      this.opts.showTarget ? h("td", {}, alertTarget(alert)) : null,
      h("td", {}, alertStateBadge(alert.state), notes.length > 0 ? [" ", ...notes] : null),
      h("td", {}, alertSince(alert)),
      h(
        "td",
        { class: "ack-cell" },
        alert.ack ? [alert.ack.by, " ", agoElement(ms(alert.ack.atUnixMs))] : "–",
      ),
      h("td", {}, h("div", { class: "actions" }, actions)),
    );
  }
}
