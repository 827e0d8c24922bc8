// The city page (`#/city?figure=no2&period=week`): the map of the districts (GetDistrictMap)
// coloured by the chosen figure of each district's report over the chosen period
// (ListDistrictReports), with its legend, the devices as points coloured by state (ListDevices),
// and the same figures as a table, whose every report downloads as CSV and JSON (as
// `citytel report --all` writes them). Clicking a district opens its page. Device states follow the
// app's WatchEvents stream (a coalesced reload of the devices); reports are asked again when the
// period changes and every 5 minutes.

import { allDevices } from "./all-devices";
import { describeError, isCancel } from "./api";
import { cityMap } from "./city-map";
import { append, h, replace, section, table } from "./dom";
import { ColourScale, type Figure, figureByKey, FIGURES, formatFigure } from "./figures";
import { formatClock } from "./format";
import type { DistrictArea, DistrictReport } from "./gen/citytel/v1/report_pb";
import type { Device } from "./gen/citytel/v1/query_pb";
import { describePeriod, periodFromParams, periodParams, periodPicker } from "./period";
import { Refresher } from "./refresh";
import { reportDownload } from "./report-download";
import { href, replaceParams, type AppContext, type Page, type Route } from "./router";
import { stateLook, STATES } from "./state";

const REPORT_REFRESH = 5 * 60_000;

/** Mounts the city page into `root`. */
export function cityPage(root: HTMLElement, route: Route, ctx: AppContext): Page {
  const abort = new AbortController();
  const { banner } = ctx;
  let period = periodFromParams(route.params);
  let figure = figureByKey(route.params.get("figure"));
  let areas: DistrictArea[] | undefined;
  let reports: DistrictReport[] | undefined;
  let devices: Device[] = [];

  const updated = h("p", { class: "updated" }, "Loading…");
  const periodText = h("p", { class: "muted", id: "period-text" }, describePeriod(period));
  const mapBox = h("div", { class: "map-box" }, h("p", {}, "Loading the map…"));
  const legend = h("div");
  const tableBox = h("div", {}, h("p", {}, "Loading…"));
  const download = reportDownload();
  const figurePicker = h(
    "fieldset",
    { class: "ranges", id: "figure-picker" },
    h("legend", {}, "Colour by"),
    FIGURES.map((f) =>
      h(
        "label",
        {},
        h("input", { type: "radio", name: "figure", value: f.key, checked: f.key === figure.key }),
        h("span", {}, f.label),
      ),
    ),
  );
  const params = () => ({ figure: figure.key, ...periodParams(period) });
  const picker = periodPicker(period, (p) => {
    period = p;
    periodText.textContent = describePeriod(period);
    replaceParams(["city"], params());
    reports = undefined;
    download.show(undefined, "all", period.start, period.end);
    render();
    void loadReports();
  });
  figurePicker.addEventListener("change", (e) => {
    figure = figureByKey((e.target as HTMLInputElement).value);
    replaceParams(["city"], params());
    render();
  });
  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "City"), updated),
    h("div", { class: "controls" }, picker, figurePicker),
    periodText,
    section("map", "Districts", mapBox, legend, stateKey()),
    section("district-figures", "Figures per district", download.element, tableBox),
  );

  function render(): void {
    if (!areas) return;
    const values = new Map<string, number | undefined>();
    for (const r of reports ?? []) values.set(r.district, figure.value(r));
    const scale = new ColourScale([...values.values()]);
    if (areas.length === 0) {
      replace(
        mapBox,
        h(
          "p",
          {},
          "No district outlines to draw: citytel has no districts file (availability.districts_file), ",
          "or this key sees no device in any of its districts.",
        ),
      );
    } else {
      replace(mapBox, cityMap(areas, figure, values, scale, devices, periodParams(period)));
    }
    replace(legend, reports ? scale.legend(figure) : h("p", {}, "Loading the figures…"));
    renderTable();
  }

  function renderTable(): void {
    if (!reports) return;
    if (reports.length === 0) {
      replace(tableBox, h("p", {}, "No district has a device this key sees."));
      return;
    }
    const columns = ["District", "Rank", ...FIGURES.map((f) => `${f.label} (${f.unit})`)];
    const { wrap, body } = table("Figures per district, best connected first", columns, {
      numeric: columns.map((_, i) => i).slice(1),
      captionHidden: true,
    });
    for (const r of reports) {
      append(
        body,
        h(
          "tr",
          { "data-district": r.district },
          h(
            "th",
            { scope: "row" },
            h("a", { href: href(["districts", r.district], periodParams(period)) }, r.district),
          ),
          h(
            "td",
            { class: "num" },
            r.connectivity ? `${r.connectivity.rank} of ${r.connectivity.districtsRanked}` : "–",
          ),
          FIGURES.map((f: Figure) => {
            const v = f.value(r);
            return h(
              "td",
              { class: "num", "data-figure": f.key, "data-value": v ?? "" },
              formatFigure(f, v).replace(` ${f.unit}`, ""),
            );
          }),
        ),
      );
    }
    replace(tableBox, wrap);
  }

  async function loadMap(): Promise<void> {
    try {
      const answer = await ctx.reports.getDistrictMap({}, { signal: abort.signal });
      areas = answer.areas;
      banner.clear("District map");
      render();
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("District map", describeError(err));
      replace(mapBox, h("p", {}, "The map is not available."));
    }
  }

  async function loadReports(): Promise<void> {
    const asked = period;
    try {
      const answer = await ctx.reports.listDistrictReports(
        { startUnixMs: BigInt(asked.start), endUnixMs: BigInt(asked.end) },
        { signal: abort.signal },
      );
      if (asked !== period) return; // the period changed meanwhile
      reports = answer.reports;
      download.show(reports, "all", asked.start, asked.end);
      banner.clear("District reports");
      updated.textContent = `Updated ${formatClock(Date.now())}`;
      render();
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("District reports", describeError(err));
      updated.textContent = "Not up to date";
    }
  }

  async function loadDevices(): Promise<void> {
    try {
      devices = await allDevices(ctx.client, abort.signal);
      banner.clear("Devices");
      render();
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Devices", describeError(err));
    }
  }

  const deviceRefresher = new Refresher(loadDevices, 2_000);
  const reportRefresher = new Refresher(loadReports, REPORT_REFRESH);
  const stopEvents = ctx.events.subscribe(() => deviceRefresher.request());
  const stopResume = ctx.events.onResume(() => deviceRefresher.request());
  const timer = setInterval(() => reportRefresher.request(), REPORT_REFRESH);
  void loadMap();
  void loadReports();
  void loadDevices();

  return {
    destroy() {
      abort.abort();
      deviceRefresher.stop();
      reportRefresher.stop();
      stopEvents();
      stopResume();
      clearInterval(timer);
    },
  };
}

/** What the devices' colours mean. */
function stateKey(): HTMLElement {
  return h(
    "ul",
    { class: "state-key", "aria-label": "Device points" },
    STATES.map((s) => {
      const look = stateLook(s);
      return h(
        "li",
        {},
        h("span", { class: `state-dot state-${look.key}`, "aria-hidden": "true" }),
        ` ${look.label}`,
      );
    }),
  );
}
