// The figures the city map can be coloured by (availability, energy, carbon, NO2), read from a
// district report, and the colour scale: a sequential scale (viridis: dark purple for the
// lowest value shown, bright yellow for the highest, lightness rising with the value) so the
// order of the colours is the order of the values, with a legend giving the range. Districts
// without the figure are grey and hatched, and every value is also written out in the table
// and the district's label, so nothing is told by colour alone.

import { h } from "./dom";
import { formatMeasure } from "./format";
import type { DistrictReport } from "./gen/citytel/v1/report_pb";

/** A figure of a district report. */
export interface Figure {
  /** The URL parameter value and `data-figure` name, e.g. "no2". */
  key: string;
  /** Its name on the page, e.g. "NO2 mean". */
  label: string;
  unit: string;
  /** What a higher value means, for the legend. */
  higher: string;
  /** The figure of `report`; undefined when nothing backs it. */
  value(report: DistrictReport): number | undefined;
}

/** The energy figures exist only when some device reported power. */
function withPower(
  report: DistrictReport,
  v: (e: NonNullable<DistrictReport["energy"]>) => number,
) {
  const e = report.energy;
  return e && (e.basis?.devices ?? 0) > 0 ? v(e) : undefined;
}

export const FIGURES: Figure[] = [
  {
    key: "availability",
    label: "Availability",
    unit: "%",
    higher: "better connected",
    value: (r) => r.connectivity?.all?.availabilityPercent,
  },
  {
    key: "energy",
    label: "Energy",
    unit: "kWh",
    higher: "more energy used",
    value: (r) => withPower(r, (e) => e.energyKwh),
  },
  {
    key: "carbon",
    label: "Carbon",
    unit: "kgCO2e",
    higher: "more carbon emitted",
    value: (r) => withPower(r, (e) => e.carbonKg),
  },
  {
    key: "no2",
    label: "NO2 mean",
    unit: "µg/m³",
    higher: "dirtier air",
    value: (r) => r.airQuality?.no2?.periodMeanUgm3?.value,
  },
];

/** The figure whose key is `key`, else availability. */
export function figureByKey(key: string | null): Figure {
  return FIGURES.find((f) => f.key === key) ?? FIGURES[0];
}

/** A value with its unit, or an en dash. */
export function formatFigure(figure: Figure, value: number | undefined): string {
  return value === undefined ? "–" : `${formatMeasure(value)} ${figure.unit}`;
}

/** Viridis at five stops: lightness rises from the first to the last. */
const STOPS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** The colour of `t` in [0, 1] on the scale. */
function colourAt(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** A scale over the values shown: the lowest gets the first colour, the highest the last. */
export class ColourScale {
  readonly low: number;
  readonly high: number;

  constructor(values: (number | undefined)[]) {
    const known = values.filter((v): v is number => v !== undefined);
    this.low = known.length > 0 ? Math.min(...known) : 0;
    this.high = known.length > 0 ? Math.max(...known) : 0;
  }

  /** The fill of `value`; undefined when there is none (the "no figure" pattern). */
  colour(value: number | undefined): string | undefined {
    if (value === undefined) return undefined;
    const span = this.high - this.low;
    return colourAt(span > 0 ? (value - this.low) / span : 0.5);
  }

  /** The legend: the gradient from the lowest to the highest value, and the "no figure" key. */
  legend(figure: Figure): HTMLElement {
    const gradient = STOPS.map((s, i) => `rgb(${s.join(", ")}) ${(i * 100) / (STOPS.length - 1)}%`);
    const bar = h("span", { class: "legend-bar", "aria-hidden": "true" });
    bar.style.background = `linear-gradient(to right, ${gradient.join(", ")})`;
    return h(
      "div",
      { class: "legend", id: "map-legend", "data-figure": figure.key },
      h(
        "p",
        { class: "legend-title" },
        `${figure.label} (${figure.unit}); brighter: ${figure.higher}`,
      ),
      h(
        "p",
        { class: "legend-scale" },
        h("span", { class: "legend-low" }, formatFigure(figure, this.low)),
        bar,
        h("span", { class: "legend-high" }, formatFigure(figure, this.high)),
      ),
      h(
        "p",
        { class: "legend-none" },
        h("span", { class: "legend-swatch no-figure", "aria-hidden": "true" }),
        " no figure (no device behind it)",
      ),
    );
  }
}
