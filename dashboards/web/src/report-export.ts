// The district reports as the files `citytel report --format csv|json` writes
// (cli/src/report_format.rs), so a report downloaded from the dashboard and one written on the
// command line hold the same: CSV (RFC 4180, quoted only where needed, `\n` line ends) with one
// row per district, the same 38 columns and then two per air-quality limit, its numbers written
// as Rust writes them (`f64`'s `Display`: never an exponent), byte for byte; JSON with every
// figure under the same names, absent figures as null and times as RFC 3339 UTC, the same values
// (JavaScript writes a whole double as `1`, Rust as `1.0`). tests/tests/e2e/dashboard_export.rs
// checks both against the command line's own code.

import type {
  Basis,
  DistrictReport,
  KindAvailability,
  MetricFigure,
  Pollutant,
} from "./gen/citytel/v1/report_pb";

/** The fixed columns of the CSV, before the limits' (report_format.rs's `COLUMNS`). */
export const COLUMNS = [
  "district",
  "start",
  "end",
  "rank",
  "districts_ranked",
  "availability_pct",
  "cabinet_availability_pct",
  "small_cell_availability_pct",
  "outage_minutes",
  "outages",
  "mttr_minutes",
  "connectivity_devices",
  "peak_connected_ues",
  "p95_connected_ues",
  "p95_throughput_mbps",
  "small_cell_readings_pct",
  "peak_ues_capacity_pct",
  "p95_ues_capacity_pct",
  "p95_throughput_capacity_pct",
  "busy_cell_hours",
  "energy_kwh",
  "energy_covered_pct",
  "carbon_kgco2e",
  "grid_intensity_kg_per_kwh",
  "grid_intensity_source",
  "grid_intensity_measured_pct",
  "effective_intensity_kg_per_kwh",
  "previous_energy_kwh",
  "energy_trend_pct",
  "energy_devices",
  "energy_readings_pct",
  "no2_mean_ugm3",
  "no2_devices",
  "no2_readings_pct",
  "pm25_mean_ugm3",
  "pm25_devices",
  "pm25_readings_pct",
  "sensor_days",
] as const;

/** A number as Rust's `Display` for `f64` writes it: the shortest digits that read back, in
 * positional notation (1e21 is "1000000000000000000000", 1e-7 is "0.0000001"). */
export function rustFloat(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Object.is(v, -0)) return "-0";
  const text = String(v);
  const e = text.indexOf("e");
  if (e < 0) return text;
  const sign = text.startsWith("-") ? "-" : "";
  const mantissa = text.slice(sign.length, e);
  const digits = mantissa.replace(".", "");
  // The decimal point goes after the mantissa's first digit, moved by the exponent.
  const point = 1 + Number(text.slice(e + 1));
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** An RFC 3339 UTC time, to the second (times before 1970 are the epoch, as in Rust). */
function time(ms: bigint): string {
  const at = ms < 0n ? 0 : Number(ms);
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function opt(v: number | undefined): string {
  return v === undefined ? "" : rustFloat(v);
}

function basisShare(b: Basis | undefined): string {
  return opt(b?.sharePercent);
}

function basisDevices(b: Basis | undefined): string {
  return b === undefined ? "" : String(b.devices);
}

/** A CSV field, quoted when it holds a comma, a quote or a line break (quotes doubled). */
function field(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV row of one report; `limits` are the names of the limit columns. */
function row(r: DistrictReport, limits: string[]): string[] {
  const c = r.connectivity;
  const all = c?.all;
  const e = r.energy;
  const air = r.airQuality;
  const no2 = air?.no2;
  const pm25 = air?.pm25;
  const ues = c?.peakConnectedUes;
  const cap = c?.capacity;
  const mttr = all?.mttrMs;
  const cells = [
    r.district,
    time(r.startUnixMs),
    time(r.endUnixMs),
    String(c?.rank ?? 0),
    String(c?.districtsRanked ?? 0),
    opt(all?.availabilityPercent),
    opt(c?.cabinets?.availabilityPercent),
    opt(c?.smallCells?.availabilityPercent),
    rustFloat(all?.outageMinutes ?? 0),
    String(all?.outages ?? 0),
    opt(mttr === undefined ? undefined : Number(mttr) / 60_000),
    basisDevices(all?.basis),
    opt(ues?.value),
    opt(c?.p95ConnectedUes?.value),
    opt(c?.p95ThroughputMbps?.value),
    basisShare(ues?.basis),
    opt(cap?.peakUesPercent),
    opt(cap?.p95UesPercent),
    opt(cap?.p95ThroughputPercent),
    cap === undefined ? "" : String(cap.busyCellHours),
    rustFloat(e?.energyKwh ?? 0),
    opt(e?.coveredPercent),
    rustFloat(e?.carbonKg ?? 0),
    rustFloat(e?.gridIntensityKgPerKwh ?? 0),
    e?.gridIntensitySource ?? "",
    opt(e?.gridIntensityMeasuredPercent),
    opt(e?.effectiveIntensityKgPerKwh),
    rustFloat(e?.previousEnergyKwh ?? 0),
    opt(e?.trendPercent),
    basisDevices(e?.basis),
    basisShare(e?.basis),
    opt(no2?.periodMeanUgm3?.value),
    basisDevices(no2?.periodMeanUgm3?.basis),
    basisShare(no2?.periodMeanUgm3?.basis),
    opt(pm25?.periodMeanUgm3?.value),
    basisDevices(pm25?.periodMeanUgm3?.basis),
    basisShare(pm25?.periodMeanUgm3?.basis),
    String(Math.max(no2?.dailyMeans.length ?? 0, pm25?.dailyMeans.length ?? 0)),
  ];
  for (const name of limits) {
    const l = air?.limits.find((l) => l.name === name);
    cells.push(l === undefined ? "" : String(l.exceeded));
    cells.push(l === undefined ? "" : String(l.evaluated));
  }
  return cells;
}

/** The CSV file of `reports`: a header, then one row per report, in the given order. The limit
 * columns are the first report's limits. */
export function reportsCsv(reports: DistrictReport[]): string {
  const limits = reports[0]?.airQuality?.limits.map((l) => l.name) ?? [];
  const header: string[] = [...COLUMNS];
  for (const name of limits) header.push(`${name}: exceeded`, `${name}: evaluated`);
  const lines = [header, ...reports.map((r) => row(r, limits))];
  return lines.map((cells) => `${cells.map(field).join(",")}\n`).join("");
}

/** A JSON value (the report's numbers are safe integers or doubles). */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function num(v: bigint | number | undefined): Json {
  return v === undefined ? null : Number(v);
}

function basisJson(b: Basis | undefined): Json {
  if (!b) return null;
  return {
    devices: b.devices,
    readings: num(b.readings),
    readings_expected: num(b.readingsExpected),
    share_percent: num(b.sharePercent),
  };
}

function figureJson(f: MetricFigure | undefined): Json {
  return f ? { value: num(f.value), basis: basisJson(f.basis) } : null;
}

function kindJson(k: KindAvailability | undefined): Json {
  if (!k) return null;
  return {
    availability_percent: num(k.availabilityPercent),
    outage_minutes: k.outageMinutes,
    outages: k.outages,
    mttr_ms: num(k.mttrMs),
    basis: basisJson(k.basis),
  };
}

function pollutantJson(p: Pollutant | undefined): Json {
  if (!p) return null;
  return {
    metric: p.metric,
    period_mean_ugm3: figureJson(p.periodMeanUgm3),
    daily_means: p.dailyMeans.map((d) => ({
      day: time(d.dayUnixMs),
      mean_ugm3: d.meanUgm3,
      readings: num(d.readings),
    })),
    worst_sensors: p.worstSensors.map((s) => ({
      device_id: s.deviceId,
      mean_ugm3: s.meanUgm3,
      basis: basisJson(s.basis),
    })),
  };
}

/** The JSON of one report. */
export function reportJson(r: DistrictReport): Json {
  const c = r.connectivity;
  const e = r.energy;
  const a = r.airQuality;
  const cap = c?.capacity;
  return {
    district: r.district,
    start: time(r.startUnixMs),
    end: time(r.endUnixMs),
    connectivity: c
      ? {
          rank: c.rank,
          districts_ranked: c.districtsRanked,
          all: kindJson(c.all),
          cabinets: kindJson(c.cabinets),
          small_cells: kindJson(c.smallCells),
          worst_devices: c.worstDevices.map((d) => ({
            device_id: d.deviceId,
            kind: d.kind,
            availability_percent: num(d.availabilityPercent),
            outage_minutes: d.outageMinutes,
            outages: d.outages,
          })),
          peak_connected_ues: figureJson(c.peakConnectedUes),
          p95_connected_ues: figureJson(c.p95ConnectedUes),
          p95_throughput_mbps: figureJson(c.p95ThroughputMbps),
          capacity: cap
            ? {
                connected_ues: cap.connectedUes,
                throughput_mbps: cap.throughputMbps,
                peak_ues_percent: num(cap.peakUesPercent),
                p95_ues_percent: num(cap.p95UesPercent),
                p95_throughput_percent: num(cap.p95ThroughputPercent),
                busy_cell_hours: num(cap.busyCellHours),
                cell_hours: num(cap.cellHours),
                busy_percent: cap.busyPercent,
              }
            : null,
        }
      : null,
    energy: e
      ? {
          energy_kwh: e.energyKwh,
          covered_percent: num(e.coveredPercent),
          carbon_kg: e.carbonKg,
          grid_intensity_kg_per_kwh: e.gridIntensityKgPerKwh,
          grid_intensity_source: e.gridIntensitySource,
          grid_intensity_measured_percent: num(e.gridIntensityMeasuredPercent),
          effective_intensity_kg_per_kwh: num(e.effectiveIntensityKgPerKwh),
          previous_energy_kwh: e.previousEnergyKwh,
          previous_covered_percent: num(e.previousCoveredPercent),
          trend_percent: num(e.trendPercent),
          basis: basisJson(e.basis),
        }
      : null,
    air_quality: a
      ? {
          no2: pollutantJson(a.no2),
          pm25: pollutantJson(a.pm25),
          limits: a.limits.map((l) => ({
            name: l.name,
            metric: l.metric,
            averaging: l.averaging,
            limit_ugm3: l.limitUgm3,
            exceeded: l.exceeded,
            evaluated: l.evaluated,
          })),
        }
      : null,
  };
}

/** The JSON file of `reports`: an array, in the given order, indented, ending in a newline. */
export function reportsJson(reports: DistrictReport[]): string {
  return `${JSON.stringify(reports.map(reportJson), null, 2)}\n`;
}
