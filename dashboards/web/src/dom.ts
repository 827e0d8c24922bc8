// Tiny DOM helpers: build HTML and SVG elements from a tag, attributes and children, and empty them again.
// Attributes are set with setAttribute and text as text nodes (never innerHTML), so nothing from
// the server is ever parsed as markup.

/** What can be a child: nodes, text, and nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

/** Attributes: `true` sets an empty attribute; `false`, `null` and `undefined` none. */
export type Attrs = Record<string, string | number | boolean | null | undefined>;

/** Creates an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

/** Sets `attrs` on `el` (see {@link Attrs}). */
function setAttrs(el: Element, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === true) {
      el.setAttribute(name, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(name, String(value));
    }
  }
}

/** Appends children, skipping empty ones. */
export function append(parent: Node, ...children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** A section with a heading (the heading labels the section for assistive technology). */
export function section(id: string, title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h(
    "section",
    { class: "panel", "aria-labelledby": `${id}-h` },
    h("h2", { id: `${id}-h` }, title),
    ...children,
  );
}

/** A table with a caption and column headers, in a keyboard-scrollable wrapper for narrow
 * screens; rows go into the returned body. */
export function table(
  caption: string,
  columns: string[],
  opts: { numeric?: number[]; captionHidden?: boolean } = {},
): { wrap: HTMLElement; body: HTMLTableSectionElement } {
  const body = h("tbody");
  const headers = columns.map((c, i) =>
    h("th", { scope: "col", class: opts.numeric?.includes(i) ? "num" : null }, c),
  );
  const wrap = h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: 0 },
    h(
      "table",
      {},
      h("caption", { class: opts.captionHidden ? "visually-hidden" : null }, caption),
      h("thead", {}, h("tr", {}, headers)),
      body,
    ),
  );
  return { wrap, body };
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Creates an SVG element (in the SVG namespace) with attributes and children. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, ...children);
  return el;
}
