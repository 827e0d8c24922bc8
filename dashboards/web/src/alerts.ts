// The alerts page (`#/alerts`): the alerts the key sees (ListAlerts), firing first, then
// pending, then recently resolved, with Acknowledge and Silence, and the active silences with
// Expire. Alert events from the app's WatchAlerts stream trigger a coalesced reload (at most one
// every 2 s), and so does the stream coming back after an interruption.

import { actor, mayAct, setActor } from "./alert-actions";
import { AlertTable } from "./alert-table";
import { describeError, isCancel } from "./api";
import { append, h, section } from "./dom";
import { formatClock, formatCount, refreshAgo } from "./format";
import { Refresher } from "./refresh";
import type { AppContext, Page, Route } from "./router";
import { SilenceList } from "./silences";

/** Alerts asked for: every open one, and the most recent resolved ones. */
const LIMIT = 500;
/** At most one reload per this many ms, however many alert events arrive. */
const RELOAD_INTERVAL = 2_000;

/** Mounts the alerts page into `root`. */
export function alertsPage(root: HTMLElement, _route: Route, ctx: AppContext): Page {
  const abort = new AbortController();
  const status = h(
    "p",
    { class: "updated", id: "alert-counts", "aria-live": "polite" },
    "Loading…",
  );
  const alerts = new AlertTable(ctx, {
    id: "alerts",
    showTarget: true,
    compact: false,
    changed: () => reload.request(),
  });
  const silences = new SilenceList(ctx, abort.signal, "alerts-role-note");

  let name: HTMLElement | null = null;
  if (mayAct(ctx)) {
    const input = h("input", {
      id: "alert-actor",
      type: "text",
      value: actor() || ctx.session.keyName,
      autocomplete: "name",
      maxlength: 200,
    });
    setActor(input.value);
    input.addEventListener("change", () => setActor(input.value));
    name = h(
      "div",
      { class: "field actor" },
      h("label", { for: input.id }, "Your name, recorded with acknowledgements and silences"),
      input,
    );
  }

  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "Alerts"), status),
    name,
    section("alert-list", "Alerts", alerts.element),
    section("silences", "Active silences", silences.element),
  );

  async function load(): Promise<void> {
    try {
      const answer = await ctx.alerts.listAlerts({ limit: LIMIT }, { signal: abort.signal });
      ctx.banner.clear("Alert list");
      status.textContent =
        `${formatCount(answer.firing)} firing, ${formatCount(answer.pending)} pending · ` +
        `updated ${formatClock(Date.now())}`;
      status.dataset.firing = String(answer.firing);
      alerts.render(answer.alerts);
    } catch (err) {
      if (isCancel(err)) return;
      const message = describeError(err);
      ctx.banner.show("Alert list", message);
      status.textContent = "Not up to date";
      alerts.failed(message);
    }
  }

  const reload = new Refresher(async () => {
    await Promise.all([load(), silences.load()]);
  }, RELOAD_INTERVAL);
  const stopEvents = ctx.alertEvents.subscribe(() => reload.request());
  const stopResume = ctx.alertEvents.onResume(() => reload.request());
  const ticker = setInterval(() => refreshAgo(root), 15_000);
  reload.request();

  return {
    destroy() {
      abort.abort();
      reload.stop();
      stopEvents();
      stopResume();
      clearInterval(ticker);
    },
  };
}
