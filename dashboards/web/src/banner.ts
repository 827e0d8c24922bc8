// The problem banner: one line per failing source (a query, a live stream), shown above the page
// and announced to screen readers, so a failure is visible instead of a blank or stale page.

import { h, replace } from "./dom";

interface Problem {
  message: string;
  /** Belongs to the current page and goes away with it. */
  page: boolean;
}

/** The banner below the page header. */
export class Banner {
  private readonly problems = new Map<string, Problem>();

  constructor(private readonly root: HTMLElement) {}

  /** Shows (or updates) the problem of `source`, e.g. "Fleet summary"; `page` problems are
   * removed when the page is left. */
  show(source: string, message: string, page = true): void {
    const old = this.problems.get(source);
    if (old?.message === message && old.page === page) return;
    this.problems.set(source, { message, page });
    this.render();
  }

  /** Removes the problem of `source`, once it works again. */
  clear(source: string): void {
    if (this.problems.delete(source)) this.render();
  }

  /** Removes the problems of the page being left. */
  clearPage(): void {
    const before = this.problems.size;
    for (const [source, problem] of this.problems) {
      if (problem.page) this.problems.delete(source);
    }
    if (this.problems.size !== before) this.render();
  }

  private render(): void {
    this.root.hidden = this.problems.size === 0;
    replace(
      this.root,
      h("h2", { class: "visually-hidden" }, "Problems"),
      h(
        "ul",
        {},
        [...this.problems].map(([source, problem]) =>
          h(
            "li",
            {},
            h("span", { class: "banner-icon", "aria-hidden": "true" }, "⚠ "),
            h("strong", {}, `${source}: `),
            problem.message,
          ),
        ),
      ),
    );
  }
}
