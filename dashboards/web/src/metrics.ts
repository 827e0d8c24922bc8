// The measurements of one device: its latest value per metric and a chart per metric over the
// chosen range, both kept current by one WatchReadings stream for the device.

import { describeError, isCancel } from "./api";
import { MetricChart } from "./chart";
import { append, h, replace, section, table } from "./dom";
import { agoElement, formatValue, metricUnit, ms, refreshAgo } from "./format";
import type { LiveReadings } from "./gen/citytel/v1/fleet_pb";
import { runStream, type LiveStatus } from "./live";
import type { AppContext } from "./router";
import { foldLive, loadSeries, type RangeOption, type SeriesData } from "./series";

interface Latest {
  row: HTMLElement;
  value: HTMLElement;
  time: HTMLElement;
  at: number;
}

/** Latest values and charts of one device. */
export class MetricsView {
  /** The sections to put on the page. */
  readonly latestSection: HTMLElement;
  readonly chartsSection: HTMLElement;
  private readonly latestBody: HTMLTableSectionElement;
  private readonly chartGrid = h("div", { class: "charts" });
  private readonly liveNote = h("p", { class: "live-note", "aria-live": "polite" });
  private readonly latest = new Map<string, Latest>();
  private readonly charts = new Map<string, MetricChart>();
  private readonly data = new Map<string, SeriesData>();
  private readonly abort = new AbortController();
  private loading = new AbortController();
  private range: RangeOption | undefined;
  private metrics: string[] = [];
  /** The stream was live, then interrupted: readings may have been missed. */
  private missed = false;
  private wasLive = false;
  private readonly ticker = setInterval(() => refreshAgo(this.latestSection), 15_000);

  constructor(
    private readonly ctx: AppContext,
    private readonly device: string,
  ) {
    const { wrap, body } = table("Latest value of each metric", ["Metric", "Value", "Measured"], {
      numeric: [1],
      captionHidden: true,
    });
    this.latestBody = body;
    this.latestSection = section("latest", "Latest values", wrap);
    this.chartsSection = section("charts", "Measurements", this.liveNote, this.chartGrid);
  }

  /** Loads the latest values, and keeps them and the charts current from now on. */
  start(): void {
    void this.loadLatest();
    void runStream(
      (options) =>
        this.ctx.client.watchReadings({ devices: { deviceIds: [this.device] } }, options),
      (readings) => this.onReadings(readings),
      (status) => this.onStatus(status),
      this.abort.signal,
    );
  }

  /** Shows `metrics` over `range` (reloading every chart). */
  show(metrics: string[], range: RangeOption): void {
    this.metrics = metrics;
    this.range = range;
    this.loading.abort();
    this.loading = new AbortController();
    const signal = this.loading.signal;
    for (const metric of metrics) {
      if (!this.charts.has(metric)) {
        const chart = new MetricChart(metric);
        this.charts.set(metric, chart);
        this.chartGrid.append(chart.element);
      }
    }
    if (metrics.length === 0)
      replace(this.chartGrid, h("p", {}, "The device has reported no metrics yet."));
    const now = Date.now();
    this.data.clear();
    for (const metric of metrics) {
      loadSeries(this.ctx.client, this.device, metric, range, now, signal).then(
        (data) => {
          this.data.set(metric, data);
          this.charts.get(metric)?.show(data, now - range.span, now);
          this.ctx.banner.clear(`Chart ${metric}`);
        },
        (err: unknown) => {
          if (isCancel(err)) return;
          this.charts.get(metric)?.fail(describeError(err));
          this.ctx.banner.show(`Chart ${metric}`, describeError(err));
        },
      );
    }
  }

  /** Stops the stream and releases the charts. */
  destroy(): void {
    this.abort.abort();
    this.loading.abort();
    clearInterval(this.ticker);
    for (const chart of this.charts.values()) chart.destroy();
  }

  private async loadLatest(): Promise<void> {
    try {
      const answer = await this.ctx.client.getLatest(
        { deviceId: this.device },
        { signal: this.abort.signal },
      );
      for (const v of answer.values) this.setLatest(v.metric, ms(v.timeUnixMs), v.value);
      if (answer.values.length === 0) {
        append(this.latestBody, h("tr", {}, h("td", { colspan: 3 }, "No readings yet.")));
      }
      this.ctx.banner.clear("Latest values");
    } catch (err) {
      if (isCancel(err)) return;
      this.ctx.banner.show("Latest values", describeError(err));
    }
  }

  private setLatest(metric: string, at: number, value: number): void {
    let row = this.latest.get(metric);
    if (!row) {
      const cells = { value: h("td", { class: "num" }), time: h("td") };
      row = {
        ...cells,
        row: h("tr", {}, h("th", { scope: "row" }, metric), cells.value, cells.time),
        at: 0,
      };
      this.latest.set(metric, row);
      const sorted = [...this.latest].sort(([a], [b]) => a.localeCompare(b));
      this.latestBody.replaceChildren(...sorted.map(([, r]) => r.row));
    }
    if (at < row.at) return;
    row.at = at;
    const unit = metricUnit(metric);
    row.value.textContent = `${formatValue(value)}${unit ? ` ${unit}` : ""}`;
    replace(row.time, agoElement(at));
  }

  private onReadings(readings: LiveReadings): void {
    const touched = new Set<string>();
    const now = Date.now();
    const from = this.range ? now - this.range.span : 0;
    for (const v of readings.values) {
      const at = ms(v.timeUnixMs);
      this.setLatest(v.metric, at, v.value);
      const data = this.data.get(v.metric);
      if (data) {
        foldLive(data, at, v.value, from);
        touched.add(v.metric);
      }
    }
    for (const metric of touched) {
      const data = this.data.get(metric);
      if (data) this.charts.get(metric)?.show(data, from, now);
    }
  }

  private onStatus(status: LiveStatus): void {
    const source = "Live readings";
    switch (status.kind) {
      case "live":
        this.liveNote.textContent = "Live: new readings are added as they arrive.";
        this.ctx.banner.clear(source);
        if (this.missed && this.range) this.show(this.metrics, this.range);
        this.wasLive = true;
        this.missed = false;
        return;
      case "connecting":
        this.liveNote.textContent = "Connecting to live readings…";
        break;
      case "paused":
        this.liveNote.textContent = "Live readings are paused while the tab is hidden.";
        break;
      case "retrying": {
        const seconds = Math.ceil(status.inMs / 1000);
        this.liveNote.textContent = `Live readings interrupted; retrying in ${seconds} s.`;
        this.ctx.banner.show(source, status.reason);
        break;
      }
    }
    if (this.wasLive) this.missed = true;
  }
}
