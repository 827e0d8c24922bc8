// Entry point, bundled to dist/app.js (the styles are bundled separately from style.css): asks
// who the stored API key is (or whether citytel needs none) and shows the sign-in page when
// there is no working key; then wires the clients, the problem banner, the account area and
// the app's live event stream with its status line in the header, the alert stream with the
// header's firing badge, and the router with the six pages.

import { ConnectError } from "@connectrpc/connect";
import { showAccount } from "./account";
import { showAlertBadge } from "./alert-badge";
import { AlertHub } from "./alert-hub";
import { alertsPage } from "./alerts";
import { createClients, describeError, isUnauthenticated } from "./api";
import { Banner } from "./banner";
import { cityPage } from "./city";
import { devicePage } from "./device";
import { devicesPage } from "./devices";
import { districtPage } from "./district";
import { h, replace } from "./dom";
import { EventHub, type LiveStatus } from "./live";
import { overviewPage } from "./overview";
import { href, Router, type PageFactory, type Route } from "./router";
import {
  forgetKey,
  signOut,
  storedKey,
  storeKey,
  takeSignOutReason,
  whoAmI,
  type Session,
} from "./session";
import { signInPage } from "./signin";

function resolve(route: Route): { title: string; factory: PageFactory } {
  const [first, second, ...rest] = route.path;
  if (first === undefined) return { title: "Fleet overview", factory: overviewPage };
  if (first === "devices" && second === undefined)
    return { title: "Devices", factory: devicesPage };
  if (first === "devices" && rest.length === 0) return { title: second, factory: devicePage };
  if (first === "alerts" && second === undefined) return { title: "Alerts", factory: alertsPage };
  if (first === "city" && second === undefined) return { title: "City", factory: cityPage };
  if (first === "districts" && second !== undefined && rest.length === 0)
    return { title: second, factory: districtPage };
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

interface Elements {
  main: HTMLElement;
  banner: HTMLElement;
  live: HTMLElement;
  account: HTMLElement;
  nav: HTMLElement;
  alertBadge: HTMLElement;
}

function elements(): Elements {
  const get = (selector: string) => {
    const el = document.querySelector<HTMLElement>(selector);
    if (!el) throw new Error(`index.html lacks ${selector}`);
    return el;
  };
  return {
    main: get("#main"),
    banner: get("#banner"),
    live: get("#live-status"),
    account: get("#account"),
    nav: get("header nav"),
    alertBadge: get("#alert-badge"),
  };
}

/** Runs the app for `session`, whose calls carry `key`. */
function startApp(els: Elements, key: string | undefined, session: Session): void {
  let ended = false;
  // A call refused as UNAUTHENTICATED: the key was revoked or expired while the page was open.
  const refused = (err: ConnectError) => {
    if (ended || key === undefined) return;
    ended = true;
    signOut(`Signed out: ${describeError(err)}. Sign in with a key that works.`);
  };
  const clients = createClients(key, refused);
  els.nav.hidden = false;
  els.live.hidden = false;
  showAccount(els.account, session);
  document.body.dataset.role = session.role;
  const banner = new Banner(els.banner);
  const events = new EventHub();
  events.onStatus((status) => showLiveStatus(els.live, status, banner));
  events.start(clients.query, new AbortController().signal);
  const alertEvents = new AlertHub();
  showAlertBadge(els.alertBadge, alertEvents);
  alertEvents.start(clients.alerts, banner, new AbortController().signal);
  new Router(els.main, resolve, {
    client: clients.query,
    alerts: clients.alerts,
    alertEvents,
    reports: clients.reports,
    events,
    banner,
    session,
  }).start();
}

/** Shows the sign-in page, with `notice` if there is one. */
function signIn(els: Elements, notice: string | undefined): void {
  els.nav.hidden = true;
  els.live.hidden = true;
  els.account.hidden = true;
  signInPage(els.main, notice, (key, session) => {
    storeKey(key);
    startApp(els, key, session);
  });
}

async function main(): Promise<void> {
  const els = elements();
  // The skip link moves focus without changing the route.
  document.querySelector(".skip-link")?.addEventListener("click", (e) => {
    e.preventDefault();
    els.main.focus();
  });
  const reason = takeSignOutReason();
  const key = storedKey();
  let session: Session;
  try {
    session = await whoAmI(createClients(key).session);
  } catch (err) {
    if (isUnauthenticated(err)) {
      // No key yet, or the stored one stopped working while the tab was away.
      const notice = key === undefined ? reason : `Signed out: ${describeError(err)}.`;
      forgetKey();
      signIn(els, notice);
    } else {
      signIn(els, `citytel did not answer: ${describeError(err)}. Reload to try again.`);
    }
    return;
  }
  startApp(els, key, session);
}

void main();
