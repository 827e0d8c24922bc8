// Chart data of one metric of one device: the ranges the detail page offers, the QuerySeries
// calls behind each (raw points up to 6 h, rollup-backed averages with min/max bands beyond), and
// folding live readings into the columns so the chart moves without reloading.

import type { QueryClient } from "./api";
import { DAY, HOUR, MINUTE } from "./format";
import { Aggregation } from "./gen/citytel/v1/query_pb";

/** A time range the detail page offers. */
export interface RangeOption {
  /** URL parameter value, e.g. "24h". */
  key: string;
  /** Label, e.g. "24 hours". */
  label: string;
  /** Length in ms, ending now. */
  span: number;
  /** Bucket width in ms; 0 for raw points. Whole minutes and hours are served from rollups. */
  step: number;
}

export const RANGES: RangeOption[] = [
  { key: "1h", label: "1 hour", span: HOUR, step: 0 },
  { key: "6h", label: "6 hours", span: 6 * HOUR, step: 0 },
  { key: "24h", label: "24 hours", span: DAY, step: 5 * MINUTE },
  { key: "7d", label: "7 days", span: 7 * DAY, step: HOUR },
  { key: "30d", label: "30 days", span: 30 * DAY, step: HOUR },
];

/** The range for a URL parameter, 6 hours by default. */
export function rangeByKey(key: string | null): RangeOption {
  return RANGES.find((r) => r.key === key) ?? RANGES[1];
}

/** Device clocks may run ahead a little: ranges end this far after now, so the newest points
 * are not cut off. */
const CLOCK_SLACK = MINUTE;

/** Columns of a chart, oldest first: times in seconds (as uPlot wants them), the values (raw, or
 * the average per bucket), and per-bucket minimum and maximum when aggregated. */
export interface SeriesData {
  step: number;
  times: number[];
  values: number[];
  mins: number[];
  maxs: number[];
  /** Points folded into each bucket live; 0 for buckets as the server computed them. */
  liveCounts: number[];
}

/** Loads `metric` of `device` over `range` ending at `now`. */
export async function loadSeries(
  client: QueryClient,
  device: string,
  metric: string,
  range: RangeOption,
  now: number,
  signal: AbortSignal,
): Promise<SeriesData> {
  const base = {
    devices: { deviceIds: [device] },
    metric,
    startUnixMs: BigInt(now - range.span),
    endUnixMs: BigInt(now + CLOCK_SLACK),
    stepMs: BigInt(range.step),
  };
  const data: SeriesData = {
    step: range.step,
    times: [],
    values: [],
    mins: [],
    maxs: [],
    liveCounts: [],
  };
  if (range.step === 0) {
    const answer = await client.querySeries(base, { signal });
    const series = answer.series[0];
    if (series) {
      data.times = series.timesUnixMs.map((t) => Number(t) / 1000);
      data.values = series.values;
      data.liveCounts = data.times.map(() => 0);
    }
    return data;
  }
  const aggregations = [Aggregation.AVG, Aggregation.MIN, Aggregation.MAX];
  const [avg, min, max] = await Promise.all(
    aggregations.map((aggregation) => client.querySeries({ ...base, aggregation }, { signal })),
  );
  const byTime = (answer: typeof avg) => {
    const map = new Map<bigint, number>();
    const series = answer.series[0];
    series?.timesUnixMs.forEach((t, i) => map.set(t, series.values[i]));
    return map;
  };
  const mins = byTime(min);
  const maxs = byTime(max);
  const series = avg.series[0];
  series?.timesUnixMs.forEach((t, i) => {
    const value = series.values[i];
    data.times.push(Number(t) / 1000);
    data.values.push(value);
    data.mins.push(mins.get(t) ?? value);
    data.maxs.push(maxs.get(t) ?? value);
    data.liveCounts.push(0);
  });
  return data;
}

/** Adds a live reading at `at` (ms) and drops what fell out of the window starting at `from`. */
export function foldLive(data: SeriesData, at: number, value: number, from: number): void {
  const time = (data.step === 0 ? at : Math.floor(at / data.step) * data.step) / 1000;
  const i = upperBound(data.times, time);
  const last = i - 1;
  if (last >= 0 && data.times[last] === time) {
    if (data.step === 0) return; // the same reading again
    // A bucket the live stream has been filling keeps an exact average; one the server computed
    // keeps its average (its count is unknown) and only widens its band.
    const n = data.liveCounts[last];
    if (n > 0) {
      data.values[last] += (value - data.values[last]) / (n + 1);
      data.liveCounts[last] = n + 1;
    }
    data.mins[last] = Math.min(data.mins[last], value);
    data.maxs[last] = Math.max(data.maxs[last], value);
  } else {
    data.times.splice(i, 0, time);
    data.values.splice(i, 0, value);
    data.liveCounts.splice(i, 0, 1);
    if (data.step > 0) {
      data.mins.splice(i, 0, value);
      data.maxs.splice(i, 0, value);
    }
  }
  const drop = lowerBound(data.times, from / 1000);
  if (drop > 0) {
    for (const column of [data.times, data.values, data.mins, data.maxs, data.liveCounts]) {
      column.splice(0, drop);
    }
  }
}

/** First index whose time is greater than `time`. */
function upperBound(times: number[], time: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose time is not less than `time`. */
function lowerBound(times: number[], time: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
