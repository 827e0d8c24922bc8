// Hash routes: `#/` (overview), `#/devices?kind=&site=&state=&q=` (device list),
// `#/devices/{id}?range=6h` (device detail), `#/alerts` (alerts and silences), `#/city?figure=&period=`
// (the district map) and `#/districts/{name}?period=` (a district's report). The router mounts one page at a time, destroys the
// previous one (closing its streams and timers), sets the title and moves focus to the new
// page's heading so keyboard and screen-reader users land on it.

import type { AlertHub } from "./alert-hub";
import type { AlertClient, QueryClient, ReportClient } from "./api";
import type { Banner } from "./banner";
import type { EventHub } from "./live";
import type { Session } from "./session";

/** A parsed location: path segments and query parameters. */
export interface Route {
  path: string[];
  params: URLSearchParams;
}

/** What every page gets. */
export interface AppContext {
  client: QueryClient;
  /** The alert service, and the app's alert event stream with the firing count. */
  alerts: AlertClient;
  alertEvents: AlertHub;
  /** The report service: district reports and the districts' outlines. */
  reports: ReportClient;
  events: EventHub;
  banner: Banner;
  /** Who is signed in: pages hide what the role may not do (`allows(ctx.session, "operator")`). */
  session: Session;
}

/** A mounted page. */
export interface Page {
  /** Stops the page's calls, streams and timers. */
  destroy(): void;
}

/** Builds a page into `root` (a fresh element inside `<main>`). */
export type PageFactory = (root: HTMLElement, route: Route, ctx: AppContext) => Page;

/** The route of the current location. */
function currentRoute(): Route {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, query = ""] = hash.split("?", 2);
  return {
    path: path
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent),
    params: new URLSearchParams(query),
  };
}

/** The link to `path` with `params` (empty values left out). */
export function href(path: string[], params: Record<string, string> = {}): string {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "")).toString();
  return `#/${path.map(encodeURIComponent).join("/")}${query ? `?${query}` : ""}`;
}

/** Records new parameters of the current page in the address bar without re-rendering it. */
export function replaceParams(path: string[], params: Record<string, string>): void {
  history.replaceState(null, "", href(path, params));
}

/** Mounts the page for the current location into `main`, and again on every navigation. */
export class Router {
  private page: Page | undefined;

  constructor(
    private readonly main: HTMLElement,
    private readonly resolve: (route: Route) => { title: string; factory: PageFactory },
    private readonly ctx: AppContext,
  ) {}

  /** Renders the current location and follows navigations. */
  start(): void {
    window.addEventListener("hashchange", () => {
      // In-page anchors such as the skip link are not routes.
      if (location.hash === "" || location.hash.startsWith("#/")) this.render();
    });
    this.render();
  }

  private render(): void {
    this.page?.destroy();
    this.ctx.banner.clearPage();
    const route = currentRoute();
    const { title, factory } = this.resolve(route);
    document.title = `${title} · citytel`;
    const root = document.createElement("div");
    root.className = "page";
    this.main.replaceChildren(root);
    this.page = factory(root, route, this.ctx);
    for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
      const target = link.getAttribute("href") ?? "";
      // A district's page belongs to the city map.
      const top = route.path[0] === "districts" ? "city" : route.path[0];
      const current = target === "#/" ? route.path.length === 0 : top === target.slice(2);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    root.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}
