// One metric's chart: a uPlot line (raw points, or per-bucket averages with a min/max band),
// sized to its container, with a text summary beside it for people who cannot see the canvas.

import uPlot from "uplot";
import { h, replace } from "./dom";
import { formatCount, formatValue, metricUnit } from "./format";
import type { SeriesData } from "./series";

const LINE = "#58a6ff";
const BAND = "rgba(88, 166, 255, 0.22)";
const EDGE = "rgba(88, 166, 255, 0.55)";
const AXIS = "#c9d1d9";
const GRID = "#30363d";

/** A gap longer than this many expected intervals breaks the line (the device was silent). */
const GAP_FACTOR = 3;

/** A chart of one metric. */
export class MetricChart {
  /** The `<figure>` to put on the page. */
  readonly element: HTMLElement;
  private readonly plotBox: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly unit: string;
  private plot: uPlot | undefined;
  private aggregated = false;
  /** The time window shown, in seconds: the whole chosen range, even where there is no data. */
  private window: [number, number] = [0, 0];
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor(readonly metric: string) {
    this.unit = metricUnit(metric);
    this.plotBox = h("div", { class: "plot", "aria-hidden": "true" });
    this.summary = h("p", { class: "chart-summary" }, "Loading…");
    this.element = h(
      "figure",
      { class: "chart", "data-metric": metric, "data-points": 0 },
      h(
        "figcaption",
        {},
        h("h3", {}, metric, this.unit ? h("span", { class: "unit" }, ` (${this.unit})`) : null),
        this.summary,
      ),
      this.plotBox,
    );
    this.resize.observe(this.plotBox);
  }

  /** Shows `data` over the window from `from` to `to` (ms), replacing what was shown. */
  show(data: SeriesData, from: number, to: number): void {
    // A device clock running a little ahead may stamp points after `to`: keep them in view.
    this.window = [from / 1000, Math.max(to / 1000, data.times.at(-1) ?? 0)];
    const aggregated = data.step > 0;
    if (!this.plot || aggregated !== this.aggregated) {
      this.plot?.destroy();
      this.aggregated = aggregated;
      this.plot = new uPlot(this.options(), columns(data), this.plotBox);
    } else {
      this.plot.setData(columns(data));
    }
    this.describe(data);
  }

  /** Shows that loading failed. */
  fail(message: string): void {
    replace(this.summary, h("span", { class: "error-text" }, `Not available: ${message}`));
  }

  /** Releases the chart. */
  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
  }

  private describe(data: SeriesData): void {
    const n = data.times.length;
    this.element.dataset.points = String(n);
    if (n === 0) {
      replace(this.summary, "No data in this range.");
      return;
    }
    const low = Math.min(...(this.aggregated ? data.mins : data.values));
    const high = Math.max(...(this.aggregated ? data.maxs : data.values));
    const unit = this.unit ? ` ${this.unit}` : "";
    replace(
      this.summary,
      `${formatCount(n)} ${this.aggregated ? "buckets" : "points"}, `,
      `range ${formatValue(low)} to ${formatValue(high)}${unit}, `,
      `latest ${formatValue(data.values[n - 1])}${unit}`,
    );
  }

  private size(): { width: number; height: number } {
    const width = Math.max(240, this.plotBox.clientWidth || 600);
    return { width, height: Math.round(Math.min(320, Math.max(180, width * 0.32))) };
  }

  private fit(): void {
    if (this.plot && this.plotBox.clientWidth > 0) this.plot.setSize(this.size());
  }

  private options(): uPlot.Options {
    const value = (_: uPlot, v: number | null) => (v === null ? "–" : formatValue(v));
    const series: uPlot.Series[] = [
      {},
      { label: this.aggregated ? "average" : "value", stroke: LINE, width: 2, value },
    ];
    if (this.aggregated) {
      series.push(
        { label: "min", stroke: EDGE, width: 1, value },
        { label: "max", stroke: EDGE, width: 1, value },
      );
    }
    const axis: uPlot.Axis = {
      stroke: AXIS,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
      font: "13px system-ui, sans-serif",
    };
    return {
      ...this.size(),
      series,
      scales: { x: { time: true, range: () => this.window } },
      bands: this.aggregated ? [{ series: [3, 2], fill: BAND }] : [],
      axes: [
        { ...axis, space: 80 },
        { ...axis, size: 60 },
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
  }
}

/** uPlot's columns, with a null wherever the device was silent for long, to break the line. */
function columns(data: SeriesData): uPlot.AlignedData {
  const gap =
    (GAP_FACTOR * (data.step > 0 ? data.step : typicalInterval(data.times) * 1000)) / 1000;
  const times: number[] = [];
  const out: (number | null)[][] = data.step > 0 ? [[], [], []] : [[]];
  const sources = data.step > 0 ? [data.values, data.mins, data.maxs] : [data.values];
  data.times.forEach((t, i) => {
    if (i > 0 && gap > 0 && t - data.times[i - 1] > gap) {
      times.push(data.times[i - 1] + gap / GAP_FACTOR);
      for (const column of out) column.push(null);
    }
    times.push(t);
    sources.forEach((source, j) => out[j].push(source[i]));
  });
  return [times, ...out];
}

/** The median distance between points, in seconds (0 with fewer than two points). */
function typicalInterval(times: number[]): number {
  if (times.length < 2) return 0;
  const deltas = times.slice(1).map((t, i) => t - times[i]);
  deltas.sort((a, b) => a - b);
  return deltas[deltas.length >> 1];
}
