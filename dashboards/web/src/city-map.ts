// The city map as SVG, drawn from the districts' outlines (`GetDistrictMap`): no tiles, no
// network. A plain equirectangular projection (longitude scaled by the cosine of the map's middle
// latitude), which is true enough over a city. Each area is a link to its district's page,
// filled by the chosen figure, with the value in its accessible name; devices with a location
// are points coloured (and shaped by their outline) by state.

import { svg } from "./dom";
import type { Figure } from "./figures";
import { ColourScale, formatFigure } from "./figures";
import type { DistrictArea, MapRing } from "./gen/citytel/v1/report_pb";
import type { Device } from "./gen/citytel/v1/query_pb";
import { href } from "./router";
import { stateLook } from "./state";

const WIDTH = 1000;
const PAD = 16;

/** Map coordinates of a location. */
type Project = (longitude: number, latitude: number) => [number, number];

/** The projection fitting `areas` into the map's width, and the map's height. */
function projection(areas: DistrictArea[]): { project: Project; height: number } {
  const points = areas.flatMap((a) => a.polygons.flatMap((p) => p.rings.flatMap((r) => r.points)));
  const lons = points.map((p) => p.longitude);
  const lats = points.map((p) => p.latitude);
  const [west, east] = [Math.min(...lons), Math.max(...lons)];
  const [south, north] = [Math.min(...lats), Math.max(...lats)];
  const squeeze = Math.cos((((north + south) / 2) * Math.PI) / 180);
  const scale = (WIDTH - 2 * PAD) / Math.max((east - west) * squeeze, 1e-9);
  return {
    project: (lon, lat) => [PAD + (lon - west) * squeeze * scale, PAD + (north - lat) * scale],
    height: Math.round(Math.max(200, (north - south) * scale + 2 * PAD)),
  };
}

function ringPath(ring: MapRing, project: Project): string {
  const xy = ring.points.map((p) => project(p.longitude, p.latitude));
  return (
    xy.map(([x, y], i) => `${i === 0 ? "M" : "L"}${x.toFixed(1)} ${y.toFixed(1)}`).join("") + "Z"
  );
}

/** Where to write a district's name: the middle of its largest outer ring's corners. */
function labelAt(area: DistrictArea, project: Project): [number, number] {
  const rings = area.polygons.map((p) => p.rings[0]).filter((r) => r !== undefined);
  const largest = rings.reduce((a, b) => (b.points.length > a.points.length ? b : a), rings[0]);
  const xy = (largest?.points ?? []).map((p) => project(p.longitude, p.latitude));
  const n = Math.max(1, xy.length);
  return [xy.reduce((s, p) => s + p[0], 0) / n, xy.reduce((s, p) => s + p[1], 0) / n];
}

/** The map: one linked, filled path per area (to the district's page over `period`, the page
 * parameters that name it), the districts' names and the devices. */
export function cityMap(
  areas: DistrictArea[],
  figure: Figure,
  values: Map<string, number | undefined>,
  scale: ColourScale,
  devices: Device[],
  period: Record<string, string>,
): SVGSVGElement {
  const { project, height } = projection(areas);
  const shapes = areas.map((area) => {
    const value = values.get(area.district);
    const d = area.polygons.flatMap((p) => p.rings.map((r) => ringPath(r, project))).join("");
    const fill = scale.colour(value);
    return svg(
      "a",
      {
        href: href(["districts", area.district], period),
        "aria-label": `${area.district}: ${figure.label} ${formatFigure(figure, value)}`,
      },
      svg("path", {
        class: `district${fill ? "" : " no-figure"}`,
        d,
        "fill-rule": "evenodd",
        fill: fill ?? "url(#no-figure)",
        "data-district": area.district,
        "data-value": value ?? "",
      }),
    );
  });
  const named = new Set<string>();
  const labels = areas.flatMap((area) => {
    if (named.has(area.district)) return [];
    named.add(area.district);
    const [x, y] = labelAt(area, project);
    const value = formatFigure(figure, values.get(area.district));
    return [
      svg(
        "text",
        { class: "district-label", x, y, "text-anchor": "middle" },
        svg("tspan", { x, dy: "-0.2em" }, area.district),
        svg("tspan", { x, dy: "1.2em", class: "district-value" }, value),
      ),
    ];
  });
  const points = devices.flatMap((d) => {
    if (!d.location) return [];
    const [x, y] = project(d.location.longitude, d.location.latitude);
    const look = stateLook(d.state);
    return [
      svg(
        "circle",
        {
          class: `device-point state-${look.key}`,
          cx: x.toFixed(1),
          cy: y.toFixed(1),
          r: 4,
          "data-device": d.deviceId,
        },
        svg("title", {}, `${d.deviceId}: ${look.label}`),
      ),
    ];
  });
  return svg(
    "svg",
    {
      class: "city-map",
      id: "city-map",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "group",
      "aria-label": `Map of the districts coloured by ${figure.label}`,
    },
    svg(
      "defs",
      {},
      svg(
        "pattern",
        {
          id: "no-figure",
          width: 8,
          height: 8,
          patternUnits: "userSpaceOnUse",
          patternTransform: "rotate(45)",
        },
        svg("rect", { width: 8, height: 8, class: "no-figure-bg" }),
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "no-figure-line" }),
      ),
    ),
    svg("g", { class: "districts" }, shapes),
    svg("g", { class: "district-labels", "aria-hidden": "true" }, labels),
    svg("g", { class: "devices", "aria-hidden": "true" }, points),
  );
}
