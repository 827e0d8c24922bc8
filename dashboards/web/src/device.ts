// The device detail page: identity and state (GetDevice), a range picker (1 h to 30 d), the
// latest values and charts ({@link MetricsView}), the device's alerts ({@link DeviceAlerts}),
// and availability, outages and state history ({@link HistoryView}). State changes of this device arrive through the app's WatchEvents
// stream and update the header and reload the history.

import { describeError, isCancel } from "./api";
import { DeviceAlerts } from "./device-alerts";
import { append, h, replace } from "./dom";
import {
  agoElement,
  formatCount,
  formatDuration,
  formatPercent,
  ms,
  refreshAgo,
  timeElement,
} from "./format";
import type { Device } from "./gen/citytel/v1/query_pb";
import { HistoryView } from "./history";
import { MetricsView } from "./metrics";
import { Refresher } from "./refresh";
import { href, replaceParams, type AppContext, type Page, type Route } from "./router";
import { RANGES, rangeByKey } from "./series";
import { stateBadge } from "./state";

/** Mounts the detail page of the device named in the route. */
export function devicePage(root: HTMLElement, route: Route, ctx: AppContext): Page {
  const id = route.path[1];
  const abort = new AbortController();
  let range = rangeByKey(route.params.get("range"));
  let device: Device | undefined;

  const state = h("p", { class: "device-state" });
  const facts = h("dl", { class: "facts" });
  const details = h(
    "section",
    { class: "panel", "aria-label": "Device details", hidden: true },
    facts,
  );
  const metrics = new MetricsView(ctx, id);
  const history = new HistoryView(ctx, id);
  const alerts = new DeviceAlerts(ctx, id);
  const picker = h(
    "fieldset",
    { class: "ranges" },
    h("legend", {}, "Range"),
    RANGES.map((r) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name: "range",
          value: r.key,
          checked: r.key === range.key,
        }),
        h("span", {}, r.label),
      ),
    ),
  );

  append(
    root,
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: href(["devices"]) }, "Devices"),
      " / ",
      h("span", { "aria-current": "page" }, id),
    ),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, id), state),
    details,
    alerts.section,
    picker,
    h("div", { class: "columns" }, metrics.latestSection, history.availabilitySection),
    metrics.chartsSection,
    history.historySection,
  );

  async function loadDevice(): Promise<void> {
    try {
      const answer = await ctx.client.getDevice({ deviceId: id }, { signal: abort.signal });
      ctx.banner.clear("Device");
      const first = device === undefined;
      device = answer.device;
      if (!device) return;
      renderDevice(device);
      if (first) metrics.show(device.metrics, range);
    } catch (err) {
      if (isCancel(err)) return;
      ctx.banner.show("Device", describeError(err));
      if (!device) replace(state, "Not available.");
    }
  }

  function renderDevice(d: Device): void {
    replace(
      state,
      stateBadge(d.state),
      " since ",
      agoElement(ms(d.stateSinceUnixMs)),
      d.stateCause ? ` (${d.stateCause})` : "",
    );
    details.hidden = false;
    const gateway = d.gatewayId
      ? h("a", { href: href(["devices", d.gatewayId]) }, d.gatewayId)
      : "none (own connection)";
    replace(
      facts,
      fact("Kind", d.kind),
      fact("Site", h("a", { href: href(["devices"], { site: d.site }) }, d.site)),
      d.district ? fact("District", d.district) : null,
      fact("Gateway", gateway),
      fact("Firmware", d.firmwareVersion ?? "–"),
      fact("Boot id", d.bootId === undefined ? "–" : String(d.bootId)),
      fact(
        "Reports every",
        d.reportingIntervalMs === undefined ? "–" : formatDuration(d.reportingIntervalMs),
      ),
      fact("Last seen", agoElement(ms(d.lastSeenUnixMs))),
      fact("First seen", timeElement(ms(d.firstSeenUnixMs))),
      fact("Readings stored", formatCount(d.readingsTotal)),
      fact("Completeness", formatPercent(d.completenessPercent)),
      fact(
        "Clock offset",
        d.clockOffsetMs === undefined ? "–" : `${formatCount(d.clockOffsetMs)} ms`,
      ),
    );
  }

  picker.addEventListener("change", (e) => {
    const input = e.target as HTMLInputElement;
    range = rangeByKey(input.value);
    replaceParams(["devices", id], { range: range.key });
    if (device) metrics.show(device.metrics, range);
    void history.load(range);
  });

  const reload = new Refresher(async () => {
    await Promise.all([loadDevice(), history.load(range)]);
  }, 5_000);
  const stopEvents = ctx.events.subscribe((event) => {
    if (event.event.case === "transition" && event.event.value.deviceId === id && device) {
      const t = event.event.value;
      device.state = t.to;
      device.stateSinceUnixMs = t.atUnixMs;
      device.stateCause = t.cause;
      renderDevice(device);
      reload.request();
    }
  });
  const stopResume = ctx.events.onResume(() => reload.request());
  const ticker = setInterval(() => refreshAgo(root), 15_000);
  metrics.start();
  void loadDevice();
  void history.load(range);

  return {
    destroy() {
      abort.abort();
      reload.stop();
      stopEvents();
      stopResume();
      clearInterval(ticker);
      metrics.destroy();
      history.destroy();
      alerts.destroy();
    },
  };
}

function fact(term: string, value: Node | string): HTMLElement {
  return h("div", {}, h("dt", {}, term), h("dd", {}, value));
}
