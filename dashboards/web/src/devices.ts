// The device list: search and filters (kind, site, state; kept in the address so a view can be
// shared), one page of devices at a time from ListDevices, and their availability over the last
// 24 h, 7 d and 30 d from ListAvailability. State changes from the app's WatchEvents stream update
// the rows in place; a change the rows cannot show (a device not on the page, which may be new or
// may now match the filters, or any change while the list is filtered by state) triggers a quiet,
// coalesced reload of the page (at most one every 2 s). Availability is kept per device across
// reloads, asked for devices new to the page, and reloaded in full every five minutes.

import { describeError, isCancel } from "./api";
import { append, h, replace, section, table } from "./dom";
import { agoElement, DAY, formatCount, formatPercent, ms, refreshAgo } from "./format";
import type { Device } from "./gen/citytel/v1/query_pb";
import { Refresher } from "./refresh";
import { href, replaceParams, type AppContext, type Page, type Route } from "./router";
import { stateBadge, stateByKey, stateLook, STATES } from "./state";

const PAGE_SIZE = 100;
const WINDOWS = [DAY, 7 * DAY, 30 * DAY];
const AVAILABILITY_REFRESH = 5 * 60_000;
const SEARCH_DELAY = 300;
/** At most one reload of the page per this many ms, however many state changes arrive. */
const RELOAD_INTERVAL = 2_000;

interface Filters {
  q: string;
  kind: string;
  site: string;
  state: string;
}

interface Row {
  state: HTMLElement;
  since: HTMLElement;
  availability: HTMLElement[];
}

/** Mounts the device list into `root`. */
export function devicesPage(root: HTMLElement, route: Route, ctx: AppContext): Page {
  const { client, banner } = ctx;
  const page = new AbortController();
  let load = new AbortController();
  const filters: Filters = {
    q: route.params.get("q") ?? "",
    kind: route.params.get("kind") ?? "",
    site: route.params.get("site") ?? "",
    state: stateByKey(route.params.get("state")) ? (route.params.get("state") ?? "") : "",
  };
  /** Page tokens of the pages before the current one, and the current one's. */
  let tokens: string[] = [];
  let token = "";
  let nextToken = "";
  let rows = new Map<string, Row>();
  /** Availability per device over WINDOWS, as last loaded (kept across reloads of the page). */
  const known = new Map<string, (number | undefined)[]>();

  const search = h("input", {
    id: "f-q",
    type: "search",
    value: filters.q,
    autocomplete: "off",
    spellcheck: "false",
  });
  const kind = select("f-kind", "All kinds", filters.kind);
  const site = select("f-site", "All sites", filters.site);
  const state = select("f-state", "All states", "");
  for (const s of STATES) {
    const look = stateLook(s);
    state.append(
      h("option", { value: look.key, selected: look.key === filters.state }, look.label),
    );
  }
  const status = h("p", { class: "list-status", "aria-live": "polite" }, "Loading…");
  const results = h("div");
  const previous = h("button", { type: "button", disabled: true }, "← Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page →");

  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "Devices")),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter devices" },
      field("f-q", "Device id contains", search),
      field("f-kind", "Kind", kind),
      field("f-site", "Site", site),
      field("f-state", "State", state),
    ),
    section(
      "device-list",
      "Device list",
      status,
      results,
      h("nav", { class: "pager", "aria-label": "Pages" }, previous, next),
    ),
  );

  function apply(): void {
    filters.q = search.value.trim();
    filters.kind = kind.value;
    filters.site = site.value;
    filters.state = state.value;
    replaceParams(["devices"], { ...filters });
    tokens = [];
    token = "";
    void loadPage();
  }

  async function loadChoices(): Promise<void> {
    try {
      const summary = await client.getFleetSummary({ attentionLimit: 1 }, { signal: page.signal });
      fill(kind, Object.keys(summary.byKind));
      fill(site, Object.keys(summary.bySite));
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Filter choices", describeError(err));
    }
  }

  /** Loads the current page. A quiet load (after state changes) keeps the page as it is until
   * the answer arrives, and asks only for the availability of devices new to it. */
  async function loadPage(quiet = false): Promise<void> {
    load.abort();
    load = new AbortController();
    const signal = load.signal;
    if (!quiet) status.textContent = "Loading…";
    try {
      const answer = await client.listDevices(
        {
          kind: filters.kind,
          site: filters.site,
          state: stateByKey(filters.state),
          search: filters.q,
          pageSize: PAGE_SIZE,
          pageToken: token,
        },
        { signal },
      );
      banner.clear("Devices");
      nextToken = answer.nextPageToken;
      const first = tokens.length * PAGE_SIZE + 1;
      const last = first + answer.devices.length - 1;
      status.textContent =
        answer.total === 0
          ? "No devices match."
          : `Devices ${formatCount(first)}–${formatCount(last)} of ${formatCount(answer.total)}`;
      status.dataset.total = String(answer.total);
      renderRows(answer.devices);
      previous.disabled = tokens.length === 0;
      next.disabled = nextToken === "";
      const ids = answer.devices.map((d) => d.deviceId);
      await loadAvailability(quiet ? ids.filter((id) => !known.has(id)) : ids, signal);
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Devices", describeError(err));
      status.textContent = "The device list is not available.";
    }
  }

  function renderRows(devices: Device[]): void {
    // A reload must not take the keyboard focus away from the row it was on.
    const focused = results.contains(document.activeElement)
      ? document.activeElement?.closest("tr")?.dataset.device
      : undefined;
    rows = new Map();
    if (devices.length === 0) {
      replace(results);
      return;
    }
    const { wrap, body } = table(
      "Devices",
      [
        "Device",
        "State",
        "Since",
        "Kind",
        "Site",
        "Last seen",
        "Avail. 24 h",
        "Avail. 7 d",
        "Avail. 30 d",
        "Firmware",
      ],
      { numeric: [6, 7, 8], captionHidden: true },
    );
    for (const d of devices) {
      const row: Row = {
        state: h("td", {}, stateBadge(d.state)),
        since: h("td", {}, agoElement(ms(d.stateSinceUnixMs))),
        availability: WINDOWS.map(() => h("td", { class: "num muted" }, "…")),
      };
      const figures = known.get(d.deviceId);
      if (figures) showAvailability(row, figures);
      rows.set(d.deviceId, row);
      append(
        body,
        h(
          "tr",
          { "data-device": d.deviceId },
          h("th", { scope: "row" }, h("a", { href: href(["devices", d.deviceId]) }, d.deviceId)),
          row.state,
          row.since,
          h("td", {}, d.kind),
          h("td", {}, d.site),
          h("td", {}, agoElement(ms(d.lastSeenUnixMs))),
          row.availability,
          h("td", {}, d.firmwareVersion ?? "–"),
        ),
      );
    }
    replace(results, wrap);
    if (focused !== undefined) {
      for (const tr of body.querySelectorAll<HTMLElement>("tr[data-device]")) {
        if (tr.dataset.device === focused) tr.querySelector("a")?.focus();
      }
    }
  }

  function showAvailability(row: Row, figures: (number | undefined)[]): void {
    row.availability.forEach((cell, i) => {
      cell.textContent = formatPercent(figures[i]);
      cell.classList.remove("muted");
    });
  }

  async function loadAvailability(ids: string[], signal = load.signal): Promise<void> {
    if (ids.length === 0) return;
    const end = Date.now();
    try {
      const answer = await client.listAvailability(
        {
          devices: { deviceIds: ids },
          windows: WINDOWS.map((w) => ({
            startUnixMs: BigInt(end - w),
            endUnixMs: BigInt(end),
          })),
        },
        { signal },
      );
      banner.clear("Availability");
      for (const a of answer.devices) {
        known.set(a.deviceId, a.availabilityPercent);
        const row = rows.get(a.deviceId);
        if (row) showAvailability(row, a.availabilityPercent);
      }
    } catch (err) {
      if (isCancel(err)) return;
      banner.show("Availability", describeError(err));
      for (const row of rows.values()) {
        for (const cell of row.availability) cell.textContent = "–";
      }
    }
  }

  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(apply, SEARCH_DELAY);
  });
  for (const el of [kind, site, state]) el.addEventListener("change", apply);
  root.querySelector("form")?.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(searchTimer);
    apply();
  });
  previous.addEventListener("click", () => {
    token = tokens.pop() ?? "";
    void loadPage();
  });
  next.addEventListener("click", () => {
    tokens.push(token);
    token = nextToken;
    void loadPage();
  });

  const reload = new Refresher(() => loadPage(true), RELOAD_INTERVAL);
  const stopEvents = ctx.events.subscribe((event) => {
    if (event.event.case !== "transition") return;
    const t = event.event.value;
    const row = rows.get(t.deviceId);
    if (row) {
      replace(row.state, stateBadge(t.to));
      replace(row.since, agoElement(ms(t.atUnixMs)));
    }
    // A device without a row may be new, or may now match the filters; with a state filter, one
    // with a row may no longer match it. Only the server's answer can tell.
    if (!row || filters.state !== "") reload.request();
  });
  const stopResume = ctx.events.onResume(() => reload.request());
  const ticker = setInterval(() => refreshAgo(root), 15_000);
  const availabilityTimer = setInterval(
    () => void loadAvailability([...rows.keys()]),
    AVAILABILITY_REFRESH,
  );
  void loadChoices();
  void loadPage();

  return {
    destroy() {
      page.abort();
      load.abort();
      reload.stop();
      stopEvents();
      stopResume();
      clearTimeout(searchTimer);
      clearInterval(ticker);
      clearInterval(availabilityTimer);
    },
  };
}

/** A select with an "all" choice and the current value (so it shows before choices load). */
function select(id: string, all: string, current: string): HTMLSelectElement {
  const el = h("select", { id }, h("option", { value: "" }, all));
  if (current) el.append(h("option", { value: current, selected: true }, current));
  return el;
}

/** Replaces the choices of `el` with `names`, keeping its "all" choice and current value. */
function fill(el: HTMLSelectElement, names: string[]): void {
  const current = el.value;
  const values = [...new Set(current ? [...names, current] : names)].sort();
  el.replaceChildren(
    el.options[0],
    ...values.map((v) => h("option", { value: v, selected: v === current }, v)),
  );
}

/** A labelled form field. */
function field(id: string, label: string, control: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}
