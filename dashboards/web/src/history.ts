// A device's state over the chosen range: availability figures and outages (GetAvailability),
// and its state changes and reboots (ListStateHistory) with a timeline strip above them.

import { describeError, isCancel } from "./api";
import { append, h, replace, section, table } from "./dom";
import { formatDuration, formatPercent, ms, timeElement } from "./format";
import type {
  GetAvailabilityResponse,
  ListStateHistoryResponse,
  StateTransition,
} from "./gen/citytel/v1/fleet_pb";
import type { AppContext } from "./router";
import type { RangeOption } from "./series";
import { stateBadge, stateLook } from "./state";

/** Availability, outages and state history of one device. */
export class HistoryView {
  /** The sections to put on the page. */
  readonly availabilitySection: HTMLElement;
  readonly historySection: HTMLElement;
  private readonly figures = h("div", {}, h("p", {}, "Loading…"));
  private readonly outages = h("div");
  private readonly timeline = h("div");
  private readonly changes = h("div", {}, h("p", {}, "Loading…"));
  private loading = new AbortController();

  constructor(
    private readonly ctx: AppContext,
    private readonly device: string,
  ) {
    this.availabilitySection = section(
      "availability",
      "Availability and outages",
      this.figures,
      h("h3", {}, "Outages"),
      this.outages,
    );
    this.historySection = section("history", "State history", this.timeline, this.changes);
  }

  /** Loads both over `range`, ending now. */
  async load(range: RangeOption): Promise<void> {
    this.loading.abort();
    this.loading = new AbortController();
    const signal = this.loading.signal;
    const end = Date.now();
    const start = end - range.span;
    const window = { startUnixMs: BigInt(start), endUnixMs: BigInt(end) };
    await Promise.all([
      this.ctx.client
        .getAvailability(
          { target: { case: "deviceId", value: this.device }, ...window },
          { signal },
        )
        .then(
          (answer) => {
            this.ctx.banner.clear("Availability");
            this.renderAvailability(answer, range);
          },
          (err: unknown) => this.failed("Availability", err, [this.figures, this.outages]),
        ),
      this.ctx.client.listStateHistory({ deviceId: this.device, ...window }, { signal }).then(
        (answer) => {
          this.ctx.banner.clear("State history");
          this.renderHistory(answer, start, end);
        },
        (err: unknown) => this.failed("State history", err, [this.timeline, this.changes]),
      ),
    ]);
  }

  /** Stops loading. */
  destroy(): void {
    this.loading.abort();
  }

  private failed(source: string, err: unknown, parts: HTMLElement[]): void {
    if (isCancel(err)) return;
    const message = describeError(err);
    this.ctx.banner.show(source, message);
    for (const part of parts)
      replace(part, h("p", { class: "error-text" }, `Not available: ${message}`));
  }

  private renderAvailability(a: GetAvailabilityResponse, range: RangeOption): void {
    const optionalDuration = (v: bigint | undefined) =>
      v === undefined ? "–" : formatDuration(ms(v));
    const d = a.durations;
    replace(
      this.figures,
      h(
        "dl",
        { class: "facts figures" },
        fact(`Availability (${range.label})`, formatPercent(a.availabilityPercent), "big"),
        fact("Outages started", String(a.outagesStarted)),
        fact("Mean time to repair", optionalDuration(a.mttrMs)),
        fact("Mean time between failures", optionalDuration(a.mtbfMs)),
        fact("Data completeness", formatPercent(a.completenessPercent)),
        d ? fact("Online", formatDuration(ms(d.onlineMs))) : null,
        d ? fact("Late", formatDuration(ms(d.lateMs))) : null,
        d ? fact("Offline", formatDuration(ms(d.offlineMs))) : null,
        d ? fact("Unreachable", formatDuration(ms(d.unreachableMs))) : null,
        d && d.maintenanceMs > 0n
          ? fact("In maintenance", formatDuration(ms(d.maintenanceMs)))
          : null,
      ),
    );
    if (a.outages.length === 0) {
      replace(this.outages, h("p", {}, "No outages in this range."));
      return;
    }
    const { wrap, body } = table("Outages, longest first", ["Start", "End", "Duration", "Cause"], {
      numeric: [2],
    });
    for (const o of a.outages) {
      append(
        body,
        h(
          "tr",
          {},
          h("td", {}, timeElement(ms(o.startUnixMs)), o.beganBefore ? " (or earlier)" : ""),
          h("td", {}, o.open ? h("strong", {}, "still offline") : timeElement(ms(o.endUnixMs))),
          h("td", { class: "num" }, formatDuration(ms(o.durationMs))),
          h("td", {}, o.cause || "–"),
        ),
      );
    }
    replace(this.outages, wrap);
  }

  private renderHistory(answer: ListStateHistoryResponse, start: number, end: number): void {
    replace(this.timeline, timelineStrip(answer.transitions, start, end));
    if (answer.transitions.length === 0 && answer.reboots.length === 0) {
      replace(this.changes, h("p", {}, "No state changes in this range."));
      return;
    }
    const { wrap, body } = table("State changes and reboots, newest first", [
      "Time",
      "Change",
      "Cause",
    ]);
    const rows: [number, HTMLElement][] = [
      ...answer.transitions.map((t): [number, HTMLElement] => [
        ms(t.atUnixMs),
        h(
          "tr",
          {},
          h("td", {}, timeElement(ms(t.atUnixMs))),
          h("td", {}, stateBadge(t.from), h("span", { class: "arrow" }, " → "), stateBadge(t.to)),
          h("td", {}, t.cause || "–"),
        ),
      ]),
      ...answer.reboots.map((r): [number, HTMLElement] => [
        ms(r.atUnixMs),
        h(
          "tr",
          {},
          h("td", {}, timeElement(ms(r.atUnixMs))),
          h("td", {}, "Rebooted"),
          h("td", {}, `boot ${r.oldBootId} → ${r.newBootId}`),
        ),
      ]),
    ];
    rows.sort((a, b) => b[0] - a[0]);
    append(
      body,
      rows.map(([, row]) => row),
    );
    replace(this.changes, wrap);
  }
}

function fact(term: string, value: string, size = ""): HTMLElement {
  return h("div", { class: size }, h("dt", {}, term), h("dd", {}, value));
}

/** A strip of the states over [start, end], widths in proportion to time (decorative: the table
 * below it lists the same changes). */
function timelineStrip(transitions: StateTransition[], start: number, end: number): HTMLElement {
  const strip = h("div", { class: "timeline", "aria-hidden": "true" });
  const span = end - start;
  transitions.forEach((t, i) => {
    const from = Math.max(start, ms(t.atUnixMs));
    const to = i + 1 < transitions.length ? Math.min(end, ms(transitions[i + 1].atUnixMs)) : end;
    if (to <= from) return;
    const look = stateLook(t.to);
    const part = h("span", {
      class: `share-${look.key}`,
      title: `${look.label}: ${formatDuration(to - from)}`,
    });
    part.style.flexGrow = String((to - from) / span);
    strip.append(part);
  });
  const lead = transitions.length > 0 ? Math.max(start, ms(transitions[0].atUnixMs)) - start : span;
  if (lead > 0) {
    const unknown = h("span", { class: "share-none" });
    unknown.style.flexGrow = String(lead / span);
    strip.prepend(unknown);
  }
  return strip;
}
