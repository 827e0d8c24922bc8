// A district's page (`#/districts/{name}?period=week`): its report over the chosen period
// (GetDistrictReport: connectivity, energy and carbon, small-cell capacity, air quality, each
// figure with its basis, and charts; see report-view.ts), buttons that download the report as
// CSV and JSON (as `citytel report` writes it), and its devices (ListDevices with the district
// filter, so the server sends only the district's devices, a page at a time), whose states
// follow the app's WatchEvents stream.

import { allDevices } from "./all-devices";
import { describeError, isCancel } from "./api";
import type { MetricChart } from "./chart";
import { append, h, replace, section, table } from "./dom";
import { formatClock } from "./format";
import type { Device } from "./gen/citytel/v1/query_pb";
import { describePeriod, periodFromParams, periodParams, periodPicker } from "./period";
import { Refresher } from "./refresh";
import { href, replaceParams, type AppContext, type Page, type Route } from "./router";
import { reportDownload } from "./report-download";
import { airSection, connectivitySection, energySection } from "./report-view";
import { stateBadge } from "./state";

/** The district's devices are asked for in pages of this many. */
const DEVICE_PAGE = 1000;

/** Mounts the page of the district named in the route. */
export function districtPage(root: HTMLElement, route: Route, ctx: AppContext): Page {
  const name = route.path[1];
  const abort = new AbortController();
  const { banner } = ctx;
  let period = periodFromParams(route.params);
  let charts: MetricChart[] = [];

  const updated = h("p", { class: "updated" }, "Loading…");
  const periodText = h("p", { class: "muted", id: "period-text" }, describePeriod(period));
  const reportBox = h("div", { id: "district-report" }, h("p", {}, "Loading the report…"));
  const devicesBox = h("div", {}, h("p", {}, "Loading…"));
  const download = reportDownload();
  const picker = periodPicker(period, (p) => {
    period = p;
    periodText.textContent = describePeriod(period);
    replaceParams(["districts", name], periodParams(period));
    download.show(undefined, name, period.start, period.end);
    cityLink.setAttribute("href", href(["city"], periodParams(period)));
    void loadReport();
  });
  const cityLink = h("a", { href: href(["city"], periodParams(period)) }, "City");
  append(
    root,
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      cityLink,
      " / ",
      h("span", { "aria-current": "page" }, name),
    ),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, name), updated),
    picker,
    periodText,
    download.element,
    reportBox,
    section("district-devices", "Devices", devicesBox),
  );

  function dropCharts(): void {
    for (const c of charts) c.destroy();
    charts = [];
  }

  async function loadReport(): Promise<void> {
    const asked = period;
    try {
      const { report } = await ctx.reports.getDistrictReport(
        { district: name, startUnixMs: BigInt(asked.start), endUnixMs: BigInt(asked.end) },
        { signal: abort.signal },
      );
      if (asked !== period) return; // the period changed meanwhile
      banner.clear("District report");
      updated.textContent = `Updated ${formatClock(Date.now())}`;
      dropCharts();
      download.show(report && [report], name, asked.start, asked.end);
      if (!report) {
        replace(reportBox, h("p", {}, "No report."));
        return;
      }
      replace(
        reportBox,
        connectivitySection(report, periodParams(period)),
        energySection(report),
        airSection(report, charts),
      );
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("District report", describeError(err));
      updated.textContent = "Not up to date";
      replace(reportBox, h("p", {}, "The report is not available."));
      download.show(undefined, name, asked.start, asked.end);
    }
  }

  async function loadDevices(): Promise<void> {
    try {
      const devices = await allDevices(ctx.client, abort.signal, name, DEVICE_PAGE);
      banner.clear("Devices");
      renderDevices(devices);
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Devices", describeError(err));
    }
  }

  function renderDevices(devices: Device[]): void {
    if (devices.length === 0) {
      replace(devicesBox, h("p", {}, "No device of this district is visible to this key."));
      return;
    }
    const { wrap, body } = table(
      `Devices in ${name}`,
      ["Device", "Kind", "Site", "State", "Location"],
      {
        captionHidden: true,
      },
    );
    for (const d of devices) {
      const at = d.location
        ? `${d.location.latitude.toFixed(5)}, ${d.location.longitude.toFixed(5)}`
        : "by its site";
      append(
        body,
        h(
          "tr",
          { "data-device": d.deviceId },
          h("th", { scope: "row" }, h("a", { href: href(["devices", d.deviceId]) }, d.deviceId)),
          h("td", {}, d.kind),
          h("td", {}, d.site),
          h("td", {}, stateBadge(d.state)),
          h("td", {}, at),
        ),
      );
    }
    replace(devicesBox, wrap);
  }

  const refresher = new Refresher(loadDevices, 2_000);
  const stopEvents = ctx.events.subscribe(() => refresher.request());
  const stopResume = ctx.events.onResume(() => refresher.request());
  void loadReport();
  void loadDevices();

  return {
    destroy() {
      abort.abort();
      refresher.stop();
      stopEvents();
      stopResume();
      dropCharts();
    },
  };
}
