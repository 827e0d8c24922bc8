// The fleet overview: large counts per state, the devices needing attention (down or late
// first), counts per kind, site and district, and the latest state changes. GetFleetSummary
// answers the counts; ListDevices adds details to the attention list. State changes from the
// app's WatchEvents stream adjust the counts at once and trigger a coalesced reload.

import { describeError, isCancel } from "./api";
import { append, h, replace, section, table } from "./dom";
import { eventItem } from "./events";
import { agoElement, DAY, formatClock, formatCount, formatPercent, ms, refreshAgo } from "./format";
import {
  DeviceState,
  type GetFleetSummaryResponse,
  type StateCounts,
} from "./gen/citytel/v1/fleet_pb";
import type { Device } from "./gen/citytel/v1/query_pb";
import { Refresher } from "./refresh";
import { href, type AppContext, type Page, type Route } from "./router";
import { countOf, moveCount, stateBadge, stateLook, STATES } from "./state";

const ATTENTION_LIMIT = 50;
const FEED_LENGTH = 15;
/** Availability per site changes slowly: it is reloaded this often, not on every event. */
const AVAILABILITY_REFRESH = 5 * 60_000;

type Group = "kind" | "site" | "district";

/** Mounts the overview into `root`. */
export function overviewPage(root: HTMLElement, _route: Route, ctx: AppContext): Page {
  const abort = new AbortController();
  const { client, banner } = ctx;
  let summary: GetFleetSummaryResponse | undefined;
  const availability = new Map<string, number | undefined>();

  const updated = h("p", { class: "updated" }, "Loading…");
  const tiles = h("ul", { class: "tiles" });
  const attention = h("div", {}, h("p", {}, "Loading…"));
  const feed = h("ol", { class: "events" });
  const groups: Record<Group, HTMLElement> = {
    kind: h("div", {}, h("p", {}, "Loading…")),
    site: h("div", {}, h("p", {}, "Loading…")),
    district: h("div"),
  };
  const districtSection = section("by-district", "By district", groups.district);
  districtSection.hidden = true;
  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "Fleet overview"), updated),
    h(
      "section",
      { "aria-labelledby": "states-h" },
      h("h2", { id: "states-h", class: "visually-hidden" }, "Devices by state"),
      tiles,
    ),
    h(
      "div",
      { class: "columns columns-main" },
      section("attention", "Needs attention", attention),
      section("recent", "Recent state changes", feed),
    ),
    h("div", { class: "columns" }, section("by-kind", "By kind", groups.kind), districtSection),
    section("by-site", "By site", groups.site),
  );

  async function load(): Promise<void> {
    try {
      summary = await client.getFleetSummary(
        { attentionLimit: ATTENTION_LIMIT },
        { signal: abort.signal },
      );
      banner.clear("Fleet summary");
      updated.textContent = `Updated ${formatClock(Date.now())}`;
      renderCounts();
      await loadAttention(summary.attention);
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Fleet summary", describeError(err));
      updated.textContent = "Not up to date";
      if (!summary) {
        replace(tiles, h("li", { class: "tile" }, "Counts not available"));
        for (const el of [attention, groups.kind, groups.site]) {
          replace(el, h("p", {}, "Not available."));
        }
      }
    }
  }

  async function loadAttention(ids: string[]): Promise<void> {
    if (ids.length === 0) {
      replace(
        attention,
        h(
          "p",
          { class: "all-good" },
          h("span", { "aria-hidden": "true" }, "✓ "),
          "Every device is online.",
        ),
      );
      return;
    }
    const details = new Map<string, Device>();
    try {
      const states = [DeviceState.OFFLINE, DeviceState.UNREACHABLE, DeviceState.LATE];
      const pages = await Promise.all(
        states.map((state) =>
          client.listDevices({ state, pageSize: ATTENTION_LIMIT }, { signal: abort.signal }),
        ),
      );
      for (const page of pages) for (const d of page.devices) details.set(d.deviceId, d);
      banner.clear("Device details");
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Device details", describeError(err));
    }
    const { wrap, body } = table(
      "Devices needing attention, offline first",
      ["Device", "State", "Since", "Cause", "Site", "Last seen"],
      { captionHidden: true },
    );
    for (const id of ids) {
      const d = details.get(id);
      append(
        body,
        h(
          "tr",
          { "data-device": id },
          h("th", { scope: "row" }, h("a", { href: href(["devices", id]) }, id)),
          h("td", {}, d ? stateBadge(d.state) : "–"),
          h("td", {}, d ? agoElement(ms(d.stateSinceUnixMs)) : "–"),
          h("td", {}, d?.stateCause || "–"),
          h("td", {}, d?.site ?? "–"),
          h("td", {}, d ? agoElement(ms(d.lastSeenUnixMs)) : "–"),
        ),
      );
    }
    replace(attention, wrap);
  }

  async function loadAvailability(): Promise<void> {
    if (!summary) return;
    const end = Date.now();
    const targets: [Group, string][] = [
      ...Object.keys(summary.bySite).map((s): [Group, string] => ["site", s]),
      ...Object.keys(summary.byDistrict).map((d): [Group, string] => ["district", d]),
    ];
    const results = await Promise.allSettled(
      targets.map(([group, name]) =>
        client.getAvailability(
          {
            target: { case: group === "site" ? "site" : "district", value: name },
            startUnixMs: BigInt(end - DAY),
            endUnixMs: BigInt(end),
            outageLimit: 1,
          },
          { signal: abort.signal },
        ),
      ),
    );
    if (abort.signal.aborted) return;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) banner.show("Availability", describeError(failed.reason));
    else banner.clear("Availability");
    results.forEach((r, i) => {
      const [group, name] = targets[i];
      availability.set(
        `${group}:${name}`,
        r.status === "fulfilled" ? r.value.availabilityPercent : undefined,
      );
    });
    renderCounts();
  }

  function renderCounts(): void {
    if (!summary) return;
    renderTiles(tiles, summary.all);
    renderGroup(groups.kind, "kind", summary.byKind, undefined);
    renderGroup(groups.site, "site", summary.bySite, (name) => availability.get(`site:${name}`));
    const districts = Object.keys(summary.byDistrict).length > 0;
    districtSection.hidden = !districts;
    if (districts) {
      renderGroup(groups.district, "district", summary.byDistrict, (name) =>
        availability.get(`district:${name}`),
      );
    }
  }

  function renderFeed(): void {
    const items = ctx.events.recent.slice(0, FEED_LENGTH).map(eventItem);
    if (items.every((i) => i === undefined)) {
      replace(feed, h("li", { class: "muted" }, "No state changes since the dashboard opened."));
    } else {
      replace(
        feed,
        items.filter((i) => i !== undefined),
      );
    }
  }

  const refresher = new Refresher(load, 2_000);
  const slow = new Refresher(loadAvailability, AVAILABILITY_REFRESH);
  const stopEvents = ctx.events.subscribe((event) => {
    if (event.event.case === "transition" && summary?.all) {
      moveCount(summary.all, event.event.value.from, event.event.value.to);
      renderTiles(tiles, summary.all);
    }
    renderFeed();
    refresher.request();
  });
  const stopResume = ctx.events.onResume(() => refresher.request());
  const ticker = setInterval(() => refreshAgo(root), 15_000);
  const availabilityTimer = setInterval(() => slow.request(), AVAILABILITY_REFRESH);
  renderFeed();
  void load().then(() => slow.request());

  return {
    destroy() {
      abort.abort();
      refresher.stop();
      slow.stop();
      stopEvents();
      stopResume();
      clearInterval(ticker);
      clearInterval(availabilityTimer);
    },
  };
}

/** The big numbers: total, then one tile per state, each a link to the filtered device list. */
function renderTiles(tiles: HTMLElement, all: StateCounts | undefined): void {
  const total = all?.total ?? 0;
  replace(
    tiles,
    h(
      "li",
      { class: "tile tile-total" },
      h(
        "a",
        { href: href(["devices"]) },
        h("span", { class: "tile-value", "data-count": "total" }, formatCount(total)),
        h("span", { class: "tile-label" }, total === 1 ? "device" : "devices"),
      ),
    ),
    STATES.map((state) => {
      const look = stateLook(state);
      const n = countOf(all, state);
      return h(
        "li",
        { class: `tile state-${look.key}${n === 0 ? " tile-zero" : ""}` },
        h(
          "a",
          { href: href(["devices"], { state: look.key }) },
          h("span", { class: "tile-value", "data-count": look.key }, formatCount(n)),
          h(
            "span",
            { class: "tile-label" },
            h("span", { "aria-hidden": "true" }, `${look.icon} `),
            look.label,
          ),
        ),
      );
    }),
  );
}

/** Counts per kind, site or district, with 24 h availability where known. */
function renderGroup(
  el: HTMLElement,
  group: Group,
  counts: Record<string, StateCounts>,
  availability: ((name: string) => number | undefined) | undefined,
): void {
  const names = Object.keys(counts).sort();
  if (names.length === 0) {
    replace(el, h("p", {}, "No devices yet."));
    return;
  }
  const columns = [group[0].toUpperCase() + group.slice(1), "Devices"];
  columns.push(...STATES.map((s) => stateLook(s).label));
  if (availability) columns.push("Availability 24 h");
  const { wrap, body } = table(`Devices per ${group}`, columns, {
    numeric: columns.map((_, i) => i).slice(1),
    captionHidden: true,
  });
  for (const name of names) {
    const c = counts[name];
    const label =
      group === "district" ? name : h("a", { href: href(["devices"], { [group]: name }) }, name);
    append(
      body,
      h(
        "tr",
        {},
        h("th", { scope: "row" }, label, shareBar(c)),
        h("td", { class: "num" }, formatCount(c.total)),
        STATES.map((s) => {
          const n = countOf(c, s);
          return h("td", { class: `num${n > 0 ? ` count-${stateLook(s).key}` : " muted"}` }, n);
        }),
        availability ? h("td", { class: "num" }, formatPercent(availability(name))) : null,
      ),
    );
  }
  replace(el, wrap);
}

/** A thin stacked bar of the states (decorative: the numbers beside it say the same). */
function shareBar(c: StateCounts): HTMLElement {
  const bar = h("span", { class: "share", "aria-hidden": "true" });
  for (const state of STATES) {
    const n = countOf(c, state);
    if (n === 0 || c.total === 0) continue;
    const part = h("span", { class: `share-${stateLook(state).key}` });
    part.style.flexGrow = String(n);
    bar.append(part);
  }
  return bar;
}
