// The report period of the city and district pages: the last day, week or month (30 days), or a
// custom range. Reports are read from 1-hour rollups, so a period starts and ends on whole UTC
// hours: the preset ones end at the end of the current hour (citytel cuts a period at now), a
// custom one is rounded down to the hour. Kept in the address (`period=week`, or
// `period=custom&from=...&to=...` in ISO 8601 UTC) so a link shows the same report.

import { h } from "./dom";
import { DAY, HOUR } from "./format";

/** A period as the report service takes it: `[start, end)`, ms since the epoch, whole hours. */
export interface Period {
  key: PeriodKey;
  start: number;
  end: number;
}

type PeriodKey = "day" | "week" | "month" | "custom";

const PRESETS: { key: PeriodKey; label: string; length: number }[] = [
  { key: "day", label: "Day", length: DAY },
  { key: "week", label: "Week", length: 7 * DAY },
  { key: "month", label: "Month (30 d)", length: 30 * DAY },
];

/** `at` rounded down to a whole UTC hour. */
function floorHour(at: number): number {
  return Math.floor(at / HOUR) * HOUR;
}

/** The period named by the page's parameters (a week when they name none). */
export function periodFromParams(params: URLSearchParams, now = Date.now()): Period {
  const key = params.get("period");
  if (key === "custom") {
    const start = floorHour(Date.parse(params.get("from") ?? ""));
    const end = floorHour(Date.parse(params.get("to") ?? ""));
    if (Number.isFinite(start) && Number.isFinite(end) && end > start)
      return { key: "custom", start, end };
  }
  const preset = PRESETS.find((p) => p.key === key) ?? PRESETS[1];
  const end = floorHour(now) + HOUR;
  return { key: preset.key, start: end - preset.length, end };
}

/** The page parameters that name `period`. */
export function periodParams(period: Period): Record<string, string> {
  if (period.key !== "custom") return { period: period.key };
  return {
    period: "custom",
    from: new Date(period.start).toISOString(),
    to: new Date(period.end).toISOString(),
  };
}

/** `at` as the value of a `datetime-local` input, in UTC (the page says so). */
function inputValue(at: number): string {
  return new Date(at).toISOString().slice(0, 16);
}

/** The period selector: Day, Week, Month and Custom, with the custom range's two times (UTC).
 * `onChange` hears every new period. */
export function periodPicker(initial: Period, onChange: (period: Period) => void): HTMLElement {
  const from = h("input", {
    type: "datetime-local",
    id: "period-from",
    step: 3600,
    value: inputValue(initial.start),
  });
  const to = h("input", {
    type: "datetime-local",
    id: "period-to",
    step: 3600,
    value: inputValue(initial.end),
  });
  const apply = h("button", { type: "button", id: "period-apply" }, "Show");
  const problem = h("p", { class: "error-text", role: "status" });
  const custom = h(
    "div",
    { class: "period-custom", hidden: initial.key !== "custom" },
    h("label", { for: "period-from" }, "From (UTC) "),
    from,
    h("label", { for: "period-to" }, " to (UTC) "),
    to,
    " ",
    apply,
    " ",
    problem,
  );
  const choices = [...PRESETS.map((p) => ({ key: p.key, label: p.label }))];
  choices.push({ key: "custom", label: "Custom" });
  const picker = h(
    "fieldset",
    { class: "ranges period" },
    h("legend", {}, "Period"),
    choices.map((c) =>
      h(
        "label",
        {},
        h("input", { type: "radio", name: "period", value: c.key, checked: c.key === initial.key }),
        h("span", {}, c.label),
      ),
    ),
    custom,
  );
  const applyCustom = () => {
    // The inputs are UTC: parse them as such, whole hours.
    const start = floorHour(Date.parse(`${from.value}:00Z`));
    const end = floorHour(Date.parse(`${to.value}:00Z`));
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      problem.textContent = "The end must be at least an hour after the start.";
      return;
    }
    problem.textContent = "";
    onChange({ key: "custom", start, end });
  };
  picker.addEventListener("change", (e) => {
    const input = e.target as HTMLInputElement;
    if (input.name !== "period") return;
    custom.hidden = input.value !== "custom";
    if (input.value === "custom") applyCustom();
    else onChange(periodFromParams(new URLSearchParams({ period: input.value })));
  });
  apply.addEventListener("click", applyCustom);
  return picker;
}

/** The period in words, e.g. "12 Nov 2026, 14:00 to 19 Nov 2026, 14:00 (UTC)". */
export function describePeriod(period: Period): string {
  const f = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC",
  });
  return `${f.format(period.start)} to ${f.format(period.end)} (UTC)`;
}
