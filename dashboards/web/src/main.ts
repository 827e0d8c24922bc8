// Entry point, bundled to dist/app.js (the styles are bundled separately from style.css): wires
// the client, the problem banner, the app's live event stream and its status line in the
// header, and the router with the three pages.

import { createQueryClient } from "./api";
import { Banner } from "./banner";
import { devicePage } from "./device";
import { devicesPage } from "./devices";
import { h, replace } from "./dom";
import { EventHub, type LiveStatus } from "./live";
import { overviewPage } from "./overview";
import { href, Router, type PageFactory, type Route } from "./router";

function resolve(route: Route): { title: string; factory: PageFactory } {
  const [first, second, ...rest] = route.path;
  if (first === undefined) return { title: "Fleet overview", factory: overviewPage };
  if (first === "devices" && second === undefined)
    return { title: "Devices", factory: devicesPage };
  if (first === "devices" && rest.length === 0) return { title: second, factory: devicePage };
  return { title: "Not found", factory: notFoundPage };
}

const notFoundPage: PageFactory = (root) => {
  root.append(
    h("h1", { tabindex: -1 }, "Page not found"),
    h(
      "p",
      {},
      "There is nothing at this address. ",
      h("a", { href: href([]) }, "Go to the overview."),
    ),
  );
  return { destroy() {} };
};

function showLiveStatus(el: HTMLElement, status: LiveStatus, banner: Banner): void {
  el.dataset.status = status.kind;
  const source = "Live updates";
  switch (status.kind) {
    case "live":
      replace(el, h("span", { "aria-hidden": "true" }, "● "), "Live");
      banner.clear(source);
      break;
    case "connecting":
      replace(el, h("span", { "aria-hidden": "true" }, "◌ "), "Connecting…");
      break;
    case "paused":
      replace(el, h("span", { "aria-hidden": "true" }, "◌ "), "Paused while the tab is hidden");
      banner.clear(source);
      break;
    case "retrying":
      replace(
        el,
        h("span", { "aria-hidden": "true" }, "⚠ "),
        `Reconnecting in ${Math.ceil(status.inMs / 1000)} s`,
      );
      banner.show(source, `${status.reason}; the page may be out of date`, false);
      break;
  }
}

function main(): void {
  const mainEl = document.getElementById("main");
  const bannerEl = document.getElementById("banner");
  const liveEl = document.getElementById("live-status");
  if (!mainEl || !bannerEl || !liveEl)
    throw new Error("index.html lacks #main, #banner or #live-status");
  const banner = new Banner(bannerEl);
  const client = createQueryClient();
  const events = new EventHub();
  events.onStatus((status) => showLiveStatus(liveEl, status, banner));
  events.start(client, new AbortController().signal);
  // The skip link moves focus without changing the route.
  document.querySelector(".skip-link")?.addEventListener("click", (e) => {
    e.preventDefault();
    mainEl.focus();
  });
  new Router(mainEl, resolve, { client, events, banner }).start();
}

main();
