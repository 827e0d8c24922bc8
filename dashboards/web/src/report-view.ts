// A district report on the page: connectivity, energy and carbon, and air quality, each figure
// with its basis (the devices and the share of expected readings it rests on), small-cell demand
// against the configured capacity (or a note that none is configured), the worst devices
// and sensors, the limits, and simple charts (bars for availability and for energy against the
// previous period; the daily means of NO2 and PM2.5 as line charts). Every shown figure carries
// `data-figure` and its exact `data-value`, so a test can compare them with the API's.

import { MetricChart } from "./chart";
import { append, h, section, table } from "./dom";
import {
  formatCount,
  formatDuration,
  formatMeasure,
  formatPercent,
  formatValue,
  ms,
} from "./format";
import type {
  Basis,
  DistrictReport,
  KindAvailability,
  MetricFigure,
  Pollutant,
  SmallCellCapacity,
} from "./gen/citytel/v1/report_pb";
import { href } from "./router";

/** What a figure rests on, in words. */
function basisText(b: Basis | undefined): string {
  if (!b) return "no basis";
  const devices = `${formatCount(b.devices)} ${b.devices === 1 ? "device" : "devices"}`;
  const readings = `${formatCount(b.readings)} of ${formatCount(b.readingsExpected)} expected readings`;
  return `${devices}, ${readings} (${formatPercent(b.sharePercent)})`;
}

/** One figure: its name, its value (exact in `data-value`) and its basis. */
function fact(
  key: string,
  label: string,
  value: number | undefined,
  text: string,
  basis?: Basis,
): HTMLElement[] {
  return [
    h("dt", {}, label),
    h(
      "dd",
      { "data-figure": key, "data-value": value ?? "" },
      text,
      basis
        ? h(
            "span",
            { class: "basis", "data-basis-readings": String(basis.readings) },
            ` · ${basisText(basis)}`,
          )
        : null,
    ),
  ];
}

function unitText(value: number | undefined, unit: string): string {
  return value === undefined ? "–" : `${formatMeasure(value)} ${unit}`;
}

function metricFact(key: string, label: string, f: MetricFigure | undefined, unit: string) {
  return fact(key, label, f?.value, unitText(f?.value, unit), f?.basis);
}

/** A horizontal bar: `value` of `max`, with its text (the bar is decorative). */
function bar(label: string, value: number | undefined, max: number, text: string): HTMLElement {
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${value === undefined || max <= 0 ? 0 : Math.min(100, (value / max) * 100)}%`;
  return h(
    "li",
    { class: "bar-row" },
    h("span", { class: "bar-label" }, label),
    h("span", { class: "bar", "aria-hidden": "true" }, fill),
    h("span", { class: "bar-text" }, text),
  );
}

function kindFacts(key: string, label: string, k: KindAvailability | undefined): HTMLElement[] {
  const mttr = k?.mttrMs === undefined ? "–" : formatDuration(ms(k.mttrMs));
  return [
    ...fact(
      `${key}-availability`,
      `${label}: availability`,
      k?.availabilityPercent,
      formatPercent(k?.availabilityPercent),
      k?.basis,
    ),
    ...fact(
      `${key}-outages`,
      `${label}: outages`,
      k?.outages,
      `${k?.outages ?? 0}, ${formatValue(k?.outageMinutes ?? 0)} min offline, MTTR ${mttr}`,
    ),
  ];
}

/** A percentage of one cell's rating, with the rating it is of. */
function ratedText(value: number | undefined, rated: number, unit: string): string {
  if (rated <= 0) return `no ${unit} rating configured`;
  return `${formatPercent(value)} of ${formatMeasure(rated)} ${unit}`;
}

/** Small-cell demand against one cell's rated capacity (`reports.small_cell_capacity`), or a
 * note that none is configured. */
function capacityFacts(cap: SmallCellCapacity | undefined): HTMLElement {
  if (!cap) {
    return h(
      "p",
      { id: "capacity-none" },
      "Small-cell capacity not configured: set reports.small_cell_capacity to see demand as a share of a cell's rating.",
    );
  }
  const busy =
    cap.connectedUes > 0
      ? `${formatCount(cap.busyCellHours)} of ${formatCount(cap.cellHours)} cell-hours at ${formatValue(cap.busyPercent)} % of the rated users or more`
      : "no user rating configured";
  return h(
    "dl",
    { class: "facts", id: "capacity" },
    fact(
      "capacity-peak-ues",
      "Peak connected UEs against capacity",
      cap.peakUesPercent,
      ratedText(cap.peakUesPercent, cap.connectedUes, "UEs"),
    ),
    fact(
      "capacity-p95-ues",
      "95th percentile UEs against capacity",
      cap.p95UesPercent,
      ratedText(cap.p95UesPercent, cap.connectedUes, "UEs"),
    ),
    fact(
      "capacity-p95-throughput",
      "95th percentile throughput against capacity",
      cap.p95ThroughputPercent,
      ratedText(cap.p95ThroughputPercent, cap.throughputMbps, "Mbit/s"),
    ),
    fact(
      "busy-cell-hours",
      "Busy cell-hours",
      cap.connectedUes > 0 ? Number(cap.busyCellHours) : undefined,
      busy,
    ),
  );
}

/** Connectivity: availability per kind (with bars), outages, rank, demand against capacity,
 * worst devices. */
export function connectivitySection(
  r: DistrictReport,
  period: Record<string, string>,
): HTMLElement {
  const c = r.connectivity;
  const rank = c ? `${c.rank} of ${c.districtsRanked}` : "–";
  const bars = h(
    "ul",
    { class: "bars", "aria-hidden": "true" },
    bar("All", c?.all?.availabilityPercent, 100, formatPercent(c?.all?.availabilityPercent)),
    bar(
      "Cabinets",
      c?.cabinets?.availabilityPercent,
      100,
      formatPercent(c?.cabinets?.availabilityPercent),
    ),
    bar(
      "Small cells",
      c?.smallCells?.availabilityPercent,
      100,
      formatPercent(c?.smallCells?.availabilityPercent),
    ),
  );
  const facts = h(
    "dl",
    { class: "facts" },
    fact("rank", "Rank by availability", c?.rank, rank),
    kindFacts("all", "Cabinets and small cells", c?.all),
    kindFacts("cabinets", "Cabinets", c?.cabinets),
    kindFacts("small-cells", "Small cells", c?.smallCells),
    metricFact("peak-ues", "Peak connected UEs", c?.peakConnectedUes, "UEs"),
    metricFact("p95-ues", "95th percentile of hourly mean UEs", c?.p95ConnectedUes, "UEs"),
    metricFact(
      "p95-throughput",
      "95th percentile of hourly mean throughput",
      c?.p95ThroughputMbps,
      "Mbit/s",
    ),
  );
  const worst = table(
    "Worst connected devices",
    ["Device", "Kind", "Availability", "Outages", "Offline (min)"],
    {
      numeric: [2, 3, 4],
    },
  );
  for (const d of c?.worstDevices ?? []) {
    append(
      worst.body,
      h(
        "tr",
        {},
        h(
          "th",
          { scope: "row" },
          h(
            "a",
            {
              href: href(["devices", d.deviceId], {
                range: period.period === "day" ? "24h" : "7d",
              }),
            },
            d.deviceId,
          ),
        ),
        h("td", {}, d.kind),
        h("td", { class: "num" }, formatPercent(d.availabilityPercent)),
        h("td", { class: "num" }, d.outages),
        h("td", { class: "num" }, formatValue(d.outageMinutes)),
      ),
    );
  }
  return section(
    "connectivity",
    "Connectivity (inclusive growth)",
    bars,
    facts,
    h("h3", {}, "Small-cell capacity"),
    capacityFacts(c?.capacity),
    worst.wrap,
  );
}

/** Energy and carbon, with this period's energy against the previous one's. */
export function energySection(r: DistrictReport): HTMLElement {
  const e = r.energy;
  const most = Math.max(e?.energyKwh ?? 0, e?.previousEnergyKwh ?? 0);
  const trend =
    e?.trendPercent === undefined
      ? "no previous use"
      : `${e.trendPercent > 0 ? "+" : ""}${formatValue(e.trendPercent)} %`;
  return section(
    "energy",
    "Energy and carbon (route to zero)",
    h(
      "ul",
      { class: "bars", "aria-hidden": "true" },
      bar("This period", e?.energyKwh, most, unitText(e?.energyKwh, "kWh")),
      bar("Previous period", e?.previousEnergyKwh, most, unitText(e?.previousEnergyKwh, "kWh")),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("energy", "Energy", e?.energyKwh, unitText(e?.energyKwh, "kWh"), e?.basis),
      fact(
        "covered",
        "Covered share of the period",
        e?.coveredPercent,
        formatPercent(e?.coveredPercent),
      ),
      fact(
        "carbon",
        "Carbon",
        e?.carbonKg,
        `${unitText(e?.carbonKg, "kgCO2e")} at ${formatValue(e?.effectiveIntensityKgPerKwh ?? e?.gridIntensityKgPerKwh ?? 0)} kgCO2e/kWh on average (${e?.gridIntensitySource || "constant"})`,
      ),
      fact(
        "previous-energy",
        "Previous period",
        e?.previousEnergyKwh,
        `${unitText(e?.previousEnergyKwh, "kWh")} (covered ${formatPercent(e?.previousCoveredPercent)})`,
      ),
      fact("trend", "Change", e?.trendPercent, trend),
    ),
  );
}

/** A pollutant's daily means as a line chart. */
function dailyChart(
  p: Pollutant | undefined,
  charts: MetricChart[],
  from: number,
  to: number,
): HTMLElement | null {
  if (!p) return null;
  const chart = new MetricChart(p.metric);
  charts.push(chart);
  const times = p.dailyMeans.map((d) => ms(d.dayUnixMs) / 1000);
  const values = p.dailyMeans.map((d) => d.meanUgm3);
  // Shown once attached, so uPlot can measure its box.
  queueMicrotask(() =>
    chart.show({ step: 0, times, values, mins: values, maxs: values, liveCounts: [] }, from, to),
  );
  return chart.element;
}

/** Air quality: period means with their bases, daily means, limits and worst sensors. */
export function airSection(r: DistrictReport, charts: MetricChart[]): HTMLElement {
  const a = r.airQuality;
  const [from, to] = [ms(r.startUnixMs), ms(r.endUnixMs)];
  const limits = table("Limits", ["Limit", "Averaging", "Limit (µg/m³)", "Exceeded", "Evaluated"], {
    numeric: [2, 3, 4],
  });
  for (const l of a?.limits ?? []) {
    append(
      limits.body,
      h(
        "tr",
        { "data-limit": l.name },
        h("th", { scope: "row" }, l.name),
        h("td", {}, l.averaging),
        h("td", { class: "num" }, formatValue(l.limitUgm3)),
        h("td", { class: "num" }, l.exceeded),
        h("td", { class: "num" }, l.evaluated),
      ),
    );
  }
  const sensors = table(
    "Sensors with the highest NO2 mean",
    ["Sensor", "NO2 mean (µg/m³)", "Readings"],
    { numeric: [1] },
  );
  for (const s of a?.no2?.worstSensors ?? []) {
    append(
      sensors.body,
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: href(["devices", s.deviceId]) }, s.deviceId)),
        h("td", { class: "num" }, formatValue(s.meanUgm3)),
        h("td", {}, basisText(s.basis)),
      ),
    );
  }
  return section(
    "air",
    "Air quality (route to zero)",
    h(
      "dl",
      { class: "facts" },
      metricFact("no2", "NO2 period mean", a?.no2?.periodMeanUgm3, "µg/m³"),
      metricFact("pm25", "PM2.5 period mean", a?.pm25?.periodMeanUgm3, "µg/m³"),
    ),
    h(
      "div",
      { class: "charts" },
      dailyChart(a?.no2, charts, from, to),
      dailyChart(a?.pm25, charts, from, to),
    ),
    limits.wrap,
    sensors.wrap,
  );
}
