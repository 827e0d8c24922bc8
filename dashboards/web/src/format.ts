// Formatting of times, durations, percentages and values for display, always in local time.
// Protobuf int64 fields arrive as bigint (milliseconds since the Unix epoch); they are turned into
// numbers here, which is exact for any date this dashboard shows.

import { h } from "./dom";

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** Milliseconds as a number. */
export function ms(value: bigint): number {
  return Number(value);
}

/** A date and time, e.g. "26 Nov 2025, 18:45:12". */
export function formatDateTime(at: number): string {
  return dateTime.format(at);
}

/** A time of day, e.g. "18:45:12". */
export function formatClock(at: number): string {
  return clock.format(at);
}

/** How long ago, coarse: "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
function formatAgo(at: number, now = Date.now()): string {
  const age = now - at;
  if (age < 2 * SECOND) return "just now";
  return `${formatDuration(age, 1)} ago`;
}

/** A duration with its `parts` largest units, e.g. "1 d 2 h", "3 min 12 s". */
export function formatDuration(duration: number, parts = 2): string {
  const units: [number, string][] = [
    [DAY, "d"],
    [HOUR, "h"],
    [MINUTE, "min"],
    [SECOND, "s"],
  ];
  const out: string[] = [];
  let rest = Math.max(0, Math.round(duration));
  for (const [size, name] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (out.length === 0 && size === SECOND)) {
      out.push(`${n} ${name}`);
      rest -= n * size;
    }
    if (out.length === parts) break;
  }
  return out.length > 0 ? out.join(" ") : `${rest} ms`;
}

/** A percentage with two decimals, or an en dash when unknown (absent or NaN). */
export function formatPercent(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "–" : `${value.toFixed(2)} %`;
}

/** A metric value: up to two decimals. */
export function formatValue(value: number): string {
  return decimal.format(value);
}

const significant = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

/** A measured quantity: up to two decimals, or three significant digits below 1 (a district's
 * energy over an hour may be a few Wh), e.g. "12.5", "0.00273". */
export function formatMeasure(value: number): string {
  return value !== 0 && Math.abs(value) < 1 ? significant.format(value) : decimal.format(value);
}

/** A whole number with grouping, e.g. "12,345". */
export function formatCount(value: number | bigint): string {
  return integer.format(value);
}

/** A `<time>` showing how long ago `at` was, with the exact local time as its tooltip. It is kept
 * current by {@link refreshAgo}. */
export function agoElement(at: number): HTMLTimeElement {
  if (at <= 0) return h("time", {}, "never");
  return h(
    "time",
    { datetime: new Date(at).toISOString(), title: formatDateTime(at), "data-ago": at },
    formatAgo(at),
  );
}

/** Updates the text of every {@link agoElement} under `root`. */
export function refreshAgo(root: ParentNode): void {
  const now = Date.now();
  for (const el of root.querySelectorAll<HTMLTimeElement>("time[data-ago]")) {
    el.textContent = formatAgo(Number(el.dataset.ago), now);
  }
}

/** A `<time>` showing a local date and time. */
export function timeElement(at: number): HTMLTimeElement {
  return h("time", { datetime: new Date(at).toISOString() }, formatDateTime(at));
}

/** The unit of a metric, from the suffix naming convention of the device contract. */
export function metricUnit(metric: string): string {
  const suffixes: [string, string][] = [
    ["_c", "°C"],
    ["_pct", "%"],
    ["_dbm", "dBm"],
    ["_db", "dB"],
    ["_w", "W"],
    ["_mbps", "Mbit/s"],
    ["_ugm3", "µg/m³"],
  ];
  return suffixes.find(([suffix]) => metric.endsWith(suffix))?.[1] ?? "";
}
